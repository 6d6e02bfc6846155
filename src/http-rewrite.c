/* SPDX-License-Identifier: MIT */
#include <strings.h>

#include "http-rewrite.h"
#include "model.h"
#include "util.h"

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

/* A bump allocator over one buffer sized in advance: heads are built without reallocations. */
typedef struct Writer {
        char *p;
        size_t len, size;
} Writer;

static void put(Writer *w, const char *s, size_t n)
{
        if (w->len + n > w->size)
                return; /* sized in advance; cannot happen */
        memcpy(w->p + w->len, s, n);
        w->len += n;
}
#define PUT_LITERAL(w, s) put((w), (s), sizeof(s) - 1)

static void put_slice(Writer *w, HttpSlice s)
{
        put(w, s.p, s.len);
}

static void put_header(Writer *w, HttpSlice name, HttpSlice value)
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

int http_rewrite_request_head(const HttpHead *h, const Upstream *u, const RequestContext *ctx,
                              char **ret, size_t *ret_len, size_t *ret_host_at)
{
        const ConfigUpstream *cu = u->config;
        HttpSlice host = { NULL, 0 };

        if (cu->pass_host == PASS_HOST_REWRITE)
                host = (HttpSlice){ cu->upstream_host, strlen(cu->upstream_host) };
        else if (cu->pass_host == PASS_HOST_PASS)
                host = h->host; /* an HTTP/1.0 request without Host gets the node's */

        size_t size = h->head_len + host.len + ctx->client_ip_len + ctx->upgrade.len + 256;
        Writer w = { .p = malloc(size), .size = size };
        if (!w.p)
                return -ENOMEM;

        /* Request line: origin-form, so an absolute-form target is not passed on. */
        put_slice(&w, h->method);
        PUT_LITERAL(&w, " ");
        if (h->target.len > 0 && h->target.p[0] == '/')
                put_slice(&w, h->target);
        else {
                put_slice(&w, h->path);
                if (h->query.len > 0) {
                        PUT_LITERAL(&w, "?");
                        put_slice(&w, h->query);
                }
        }
        /* An HTTP/1.0 client gets an HTTP/1.0 exchange upstream, so no chunked response can
         * come back that it would not understand. */
        if (h->version_minor == 0)
                PUT_LITERAL(&w, " HTTP/1.0\r\n");
        else
                PUT_LITERAL(&w, " HTTP/1.1\r\n");
        if (host.p) {
                PUT_LITERAL(&w, "Host: ");
                put_slice(&w, host);
                PUT_LITERAL(&w, "\r\n");
                *ret_host_at = SIZE_MAX;
        } else
                *ret_host_at = w.len; /* the node's name goes here, once a node is picked */

        ssize_t last_xff = last_with_flag(h, HTTP_HEADER_FORWARDED_FOR);
        ssize_t last_via = last_with_flag(h, HTTP_HEADER_VIA);
        for (size_t i = 0; i < h->n_headers; i++) {
                uint8_t f = h->header_flags[i];
                if (f & (HTTP_HEADER_HOP | HTTP_HEADER_HOST | HTTP_HEADER_FORWARDED_PROTO))
                        continue;
                if ((ssize_t)i == last_xff || (ssize_t)i == last_via)
                        continue;
                put_header(&w, h->headers[i].name, h->headers[i].value);
        }

        PUT_LITERAL(&w, "X-Forwarded-For: ");
        if (last_xff >= 0) {
                put_slice(&w, h->headers[last_xff].value);
                PUT_LITERAL(&w, ", ");
        }
        put(&w, ctx->client_ip, ctx->client_ip_len);
        if (ctx->https)
                PUT_LITERAL(&w, "\r\nX-Forwarded-Proto: https\r\nVia: ");
        else
                PUT_LITERAL(&w, "\r\nX-Forwarded-Proto: http\r\nVia: ");
        if (last_via >= 0) {
                put_slice(&w, h->headers[last_via].value);
                PUT_LITERAL(&w, ", ");
        }
        PUT_LITERAL(&w, VIA_TOKEN "\r\n");
        if (h->body == HTTP_BODY_CHUNKED)
                PUT_LITERAL(&w, "Transfer-Encoding: chunked\r\n");
        if (ctx->upgrade.p) {
                PUT_LITERAL(&w, "Connection: upgrade\r\nUpgrade: ");
                put_slice(&w, ctx->upgrade);
                PUT_LITERAL(&w, "\r\n");
        } else if (h->version_minor == 0)
                PUT_LITERAL(&w, "Connection: keep-alive\r\n");
        PUT_LITERAL(&w, "\r\n");

        *ret = w.p;
        *ret_len = w.len;
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
        *ret = w.p;
        *ret_len = w.len;
        return 0;
}

void http_rewrite_switching_head(const HttpHead *h, struct evbuffer *out)
{
        const HttpHeader *up = http_head_find(h, "upgrade");
        HttpSlice upgrade = up ? up->value : (HttpSlice){ "websocket", 9 };

        evbuffer_add_printf(out, "HTTP/1.1 101 %.*s\r\n", (int)h->reason.len, h->reason.p);
        for (size_t i = 0; i < h->n_headers; i++) {
                if (h->header_flags[i] & HTTP_HEADER_HOP)
                        continue;
                evbuffer_add(out, h->headers[i].name.p, h->headers[i].name.len);
                evbuffer_add(out, ": ", 2);
                evbuffer_add(out, h->headers[i].value.p, h->headers[i].value.len);
                evbuffer_add(out, "\r\n", 2);
        }
        evbuffer_add_printf(out, "Connection: upgrade\r\nUpgrade: %.*s\r\n\r\n",
                            (int)upgrade.len, upgrade.p);
}

void http_rewrite_response_head(const HttpHead *h, struct evbuffer *out, bool close,
                                bool http10_client)
{
        /* "HTTP/1.x NNN ", by hand: snprintf cost more than the rest of this function. */
        unsigned status = h->status % 1000;
        char line[] = { 'H', 'T', 'T', 'P', '/', '1', '.', http10_client ? '0' : '1', ' ',
                        (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                        (char)('0' + status % 10), ' ' };
        size_t size = h->head_len + 128;
        struct evbuffer_iovec v;

        /* Written straight into the output buffer's free space: one reservation, no copies
         * beyond the header bytes themselves. */
        if (evbuffer_reserve_space(out, (ev_ssize_t)size, &v, 1) < 1)
                return;
        Writer w = { .p = v.iov_base, .size = v.iov_len };
        put(&w, line, sizeof(line));
        put_slice(&w, h->reason);
        PUT_LITERAL(&w, "\r\n");
        for (size_t i = 0; i < h->n_headers; i++) {
                if (h->header_flags[i] & HTTP_HEADER_HOP)
                        continue;
                put_header(&w, h->headers[i].name, h->headers[i].value);
        }
        if (h->body == HTTP_BODY_CHUNKED && !http10_client)
                PUT_LITERAL(&w, "Transfer-Encoding: chunked\r\n");
        if (close)
                PUT_LITERAL(&w, "Connection: close\r\n");
        else if (http10_client)
                PUT_LITERAL(&w, "Connection: keep-alive\r\n");
        PUT_LITERAL(&w, "\r\n");
        v.iov_len = w.len;
        evbuffer_commit_space(out, &v, 1);
}
