/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <strings.h>

#include "base/util.h"
#include "http/http-date.h"
#include "http/http-rewrite.h"

#define VIA_TOKEN "1.1 lbproxy"

static bool slice_eq(HttpSlice s, const char *lit, size_t n)
{
        return s.len == n && memcmp(s.p, lit, n) == 0;
}

bool http_method_is_idempotent(HttpSlice m)
{
        return slice_eq(m, "GET", 3) || slice_eq(m, "HEAD", 4) || slice_eq(m, "OPTIONS", 7) ||
               slice_eq(m, "TRACE", 5) || slice_eq(m, "PUT", 3) || slice_eq(m, "DELETE", 6);
}

/* Heads are written twice by the same code: first with no buffer, which only counts, then into
 * a buffer of exactly that size. The size cannot drift from what is written, and nothing is ever
 * cut: a head that lost its blank line would have its body read as headers. */
typedef struct Writer {
        char *p; /* NULL: counting */
        size_t len, size;
} Writer;

static _always_inline_ void put(Writer *w, const char *s, size_t n)
{
        if (w->p) {
                assert(n <= w->size - w->len);
                memcpy(w->p + w->len, s, n);
        }
        w->len += n;
}
#define PUT_LITERAL(w, s) put((w), (s), sizeof(s) - 1)

static _always_inline_ void put_slice(Writer *w, HttpSlice s)
{
        put(w, s.p, s.len);
}

static _always_inline_ void put_header(Writer *w, HttpSlice name, HttpSlice value)
{
        put_slice(w, name);
        PUT_LITERAL(w, ": ");
        put_slice(w, value);
        PUT_LITERAL(w, "\r\n");
}

/* The last index of headers with `flag`, or -1: a value is appended to the last one only. */
static ssize_t last_with_flag(const HttpHead *h, uint8_t flag)
{
        for (size_t i = h->n_headers; i > 0; i--)
                if (h->header_flags[i - 1] & flag)
                        return (ssize_t)(i - 1);
        return -1;
}

typedef struct RequestRewrite {
        const HttpHead *h;
        const RequestContext *ctx;
        HttpSlice host; /* p == NULL: the node's, added per attempt at host_at */
        ssize_t last_xff, last_via;
        size_t host_at;
} RequestRewrite;

/* Inlined into each pass, so that the counting one is only additions. */
static _always_inline_ void write_request_head(Writer *w, RequestRewrite *rw)
{
        const HttpHead *h = rw->h;
        const RequestContext *ctx = rw->ctx;

        /* Request line: origin-form, so an absolute-form target is not passed on. */
        put_slice(w, h->method);
        PUT_LITERAL(w, " ");
        if (h->target.len > 0 && h->target.p[0] == '/')
                put_slice(w, h->target);
        else {
                put_slice(w, h->path);
                if (h->query.p) {
                        PUT_LITERAL(w, "?");
                        put_slice(w, h->query);
                }
        }
        /* An HTTP/1.0 client gets an HTTP/1.0 exchange upstream, so no chunked response can
         * come back that it would not understand. */
        if (h->version_minor == 0)
                PUT_LITERAL(w, " HTTP/1.0\r\n");
        else
                PUT_LITERAL(w, " HTTP/1.1\r\n");
        if (rw->host.p) {
                PUT_LITERAL(w, "Host: ");
                put_slice(w, rw->host);
                PUT_LITERAL(w, "\r\n");
                rw->host_at = SIZE_MAX;
        } else
                rw->host_at = w->len; /* the node's name goes here, once a node is picked */

        for (size_t i = 0; i < h->n_headers; i++) {
                uint8_t f = h->header_flags[i];
                if (f & (HTTP_HEADER_HOP | HTTP_HEADER_HOST | HTTP_HEADER_PROXY_SET))
                        continue;
                if ((ssize_t)i == rw->last_xff || (ssize_t)i == rw->last_via)
                        continue;
                put_header(w, h->headers[i].name, h->headers[i].value);
        }

        PUT_LITERAL(w, "X-Forwarded-For: ");
        if (rw->last_xff >= 0) {
                put_slice(w, h->headers[rw->last_xff].value);
                PUT_LITERAL(w, ", ");
        }
        put(w, ctx->client_ip, ctx->client_ip_len);
        if (ctx->https)
                PUT_LITERAL(w, "\r\nX-Forwarded-Proto: https\r\n");
        else
                PUT_LITERAL(w, "\r\nX-Forwarded-Proto: http\r\n");
        /* APISIX's defaults, which the applications behind it read: the Host the client asked
         * for (whatever pass_host sends upstream), and the address it came from. A client's own
         * values were dropped above, so neither can be forged from outside. */
        if (h->host.p) {
                PUT_LITERAL(w, "X-Forwarded-Host: ");
                put_slice(w, h->host);
                PUT_LITERAL(w, "\r\n");
        }
        if (ctx->server_port && ctx->server_port[0]) {
                PUT_LITERAL(w, "X-Forwarded-Port: ");
                put(w, ctx->server_port, strlen(ctx->server_port));
                PUT_LITERAL(w, "\r\n");
        }
        PUT_LITERAL(w, "X-Real-IP: ");
        put(w, ctx->client_ip, ctx->client_ip_len);
        PUT_LITERAL(w, "\r\nVia: ");
        if (rw->last_via >= 0) {
                put_slice(w, h->headers[rw->last_via].value);
                PUT_LITERAL(w, ", ");
        }
        PUT_LITERAL(w, VIA_TOKEN "\r\n");
        if (h->body == HTTP_BODY_CHUNKED)
                PUT_LITERAL(w, "Transfer-Encoding: chunked\r\n");
        if (ctx->upgrade.p) {
                PUT_LITERAL(w, "Connection: upgrade\r\nUpgrade: ");
                put_slice(w, ctx->upgrade);
                PUT_LITERAL(w, "\r\n");
        } else if (h->version_minor == 0)
                PUT_LITERAL(w, "Connection: keep-alive\r\n");
        PUT_LITERAL(w, "\r\n");
}

int http_rewrite_request_head(const HttpHead *h, const RequestContext *ctx, char **ret,
                              size_t *ret_len, size_t *ret_host_at)
{
        RequestRewrite rw = {
                .h = h,
                .ctx = ctx,
                .last_xff = last_with_flag(h, HTTP_HEADER_FORWARDED_FOR),
                .last_via = last_with_flag(h, HTTP_HEADER_VIA),
        };

        if (ctx->host_from == HTTP_HOST_GIVEN)
                rw.host = (HttpSlice){ ctx->host, strlen(ctx->host) };
        else if (ctx->host_from == HTTP_HOST_CLIENT)
                rw.host = h->host; /* an HTTP/1.0 request without Host gets the node's */

        Writer count = {};
        write_request_head(&count, &rw);
        Writer w = { .p = malloc(count.len), .size = count.len };
        if (!w.p)
                return -ENOMEM;
        write_request_head(&w, &rw);
        assert(w.len == w.size);

        *ret = w.p;
        *ret_len = w.len;
        *ret_host_at = rw.host_at;
        return 0;
}

int http_rewrite_copy_line(const HttpHead *h, char **ret, size_t *ret_len)
{
        size_t size = h->method.len + 1 + h->path.len;
        Writer w = { .p = malloc(size), .size = size };
        if (!w.p)
                return -ENOMEM;
        put_slice(&w, h->method);
        PUT_LITERAL(&w, " ");
        put_slice(&w, h->path);
        assert(w.len == w.size);
        *ret = w.p;
        *ret_len = w.len;
        return 0;
}

/* Room for exactly `size` bytes in `out`'s free space, for a writer: one reservation, no copies
 * beyond the header bytes themselves. */
static int reserve_head(struct evbuffer *out, size_t size, struct evbuffer_iovec *v, Writer *w)
{
        if (evbuffer_reserve_space(out, (ev_ssize_t)size, v, 1) < 1)
                return -ENOMEM;
        assert(v->iov_len >= size);
        *w = (Writer){ .p = v->iov_base, .size = size };
        return 0;
}

static int commit_head(struct evbuffer *out, struct evbuffer_iovec *v, const Writer *w)
{
        assert(w->len == w->size);
        v->iov_len = w->len;
        return evbuffer_commit_space(out, v, 1) < 0 ? -ENOMEM : 0;
}

static void write_switching_head(Writer *w, const HttpHead *h)
{
        const HttpHeader *up = http_head_find(h, "upgrade");

        PUT_LITERAL(w, "HTTP/1.1 101 ");
        put_slice(w, h->reason);
        PUT_LITERAL(w, "\r\n");
        for (size_t i = 0; i < h->n_headers; i++) {
                if (h->header_flags[i] & HTTP_HEADER_HOP)
                        continue;
                put_header(w, h->headers[i].name, h->headers[i].value);
        }
        PUT_LITERAL(w, "Connection: upgrade\r\nUpgrade: ");
        if (up)
                put_slice(w, up->value);
        else
                PUT_LITERAL(w, "websocket");
        PUT_LITERAL(w, "\r\n\r\n");
}

int http_rewrite_switching_head(const HttpHead *h, struct evbuffer *out)
{
        Writer count = {}, w;
        struct evbuffer_iovec v;

        write_switching_head(&count, h);
        if (reserve_head(out, count.len, &v, &w) < 0)
                return -ENOMEM;
        write_switching_head(&w, h);
        return commit_head(out, &v, &w);
}

/* Inlined into each pass, so that the counting one is only additions. */
static _always_inline_ void write_response_head(Writer *w, const HttpHead *h, bool close,
                                                bool http10_client, const char *date)
{
        /* "HTTP/1.x NNN ", by hand: snprintf cost more than the rest of this function. */
        unsigned status = h->status % 1000;
        char line[] = { 'H', 'T', 'T', 'P', '/', '1', '.', http10_client ? '0' : '1', ' ',
                        (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                        (char)('0' + status % 10), ' ' };

        put(w, line, sizeof(line));
        put_slice(w, h->reason);
        PUT_LITERAL(w, "\r\n");
        for (size_t i = 0; i < h->n_headers; i++) {
                if (h->header_flags[i] & HTTP_HEADER_HOP)
                        continue;
                put_header(w, h->headers[i].name, h->headers[i].value);
        }
        /* RFC 9110 6.6.1: a final answer forwarded without a Date gets the time it came. */
        if (!h->has_date && h->status >= 200) {
                PUT_LITERAL(w, "Date: ");
                put(w, date, HTTP_DATE_LEN);
                PUT_LITERAL(w, "\r\n");
        }
        if (h->body == HTTP_BODY_CHUNKED && !http10_client)
                PUT_LITERAL(w, "Transfer-Encoding: chunked\r\n");
        if (close)
                PUT_LITERAL(w, "Connection: close\r\n");
        else if (http10_client)
                PUT_LITERAL(w, "Connection: keep-alive\r\n");
        PUT_LITERAL(w, "\r\n");
}

int http_rewrite_response_head(const HttpHead *h, struct evbuffer *out, bool close,
                               bool http10_client, const char *date)
{
        Writer count = {}, w;
        struct evbuffer_iovec v;

        assert(date && strlen(date) == HTTP_DATE_LEN);
        write_response_head(&count, h, close, http10_client, date);
        if (reserve_head(out, count.len, &v, &w) < 0)
                return -ENOMEM;
        write_response_head(&w, h, close, http10_client, date);
        return commit_head(out, &v, &w);
}
