/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as a request head and as a response head; every head that parses is
 * rewritten as lbproxy would send it on, in every way it can be (requests: each source of the
 * Host line, from an http and an https client, with and without an Upgrade passed on; responses:
 * closing, kept alive, to an HTTP/1.0 client; a 101's switching head), and the result is parsed
 * again. It must be one complete head of exactly the written length that carries the same
 * message: method, target in origin-form, the end-to-end headers in order with their values, the
 * Host the mode says, the X-Forwarded-For/-Proto and Via added, the same body framing. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/http-rewrite.h"

/* What the proxy adds: a request may gain Host, X-Forwarded-For/-Proto/-Host, X-Real-IP, Via,
 * Transfer-Encoding, Connection and Upgrade; a response Date, Transfer-Encoding and Connection.
 * Heads are read with that much room below the parser's limit, so the result can be parsed
 * again. */
#define REQUEST_ADDS 9
#define RESPONSE_ADDS 3
#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"

#define CLIENT_IP "203.0.113.9"
#define NODE_HOST "node.example:8080"
#define UPSTREAM_HOST "upstream.example"

static const char *const methods[] = { "GET", "HEAD", "CONNECT", "POST" };

static bool slice_eq(HttpSlice a, HttpSlice b)
{
        return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static HttpSlice lit(const char *s)
{
        return (HttpSlice){ s, strlen(s) };
}

/* "prefix, value" when there was a prefix, else "value", in `buf`. */
static HttpSlice joined(const HttpHead *h, ssize_t i, HttpSlice value, char *buf, size_t size)
{
        int n = i < 0 ? snprintf(buf, size, "%.*s", (int)value.len, value.p)
                      : snprintf(buf, size, "%.*s, %.*s", (int)h->headers[i].value.len,
                                 h->headers[i].value.p, (int)value.len, value.p);
        CHECK(n >= 0 && (size_t)n < size);
        return (HttpSlice){ buf, (size_t)n };
}

/* Header `*k` of `o` is name: value; moves *k on. */
static void expect_header(const HttpHead *o, size_t *k, const char *name, HttpSlice value)
{
        CHECK(*k < o->n_headers);
        CHECK(slice_eq(o->headers[*k].name, lit(name)));
        CHECK(slice_eq(o->headers[*k].value, value));
        (*k)++;
}

/* The end-to-end headers of `in` (those not skipped) come next in `o`, in order, unchanged. */
static void expect_kept(const HttpHead *in, const HttpHead *o, size_t *k, uint8_t skip_flags,
                        ssize_t skip1, ssize_t skip2)
{
        for (size_t i = 0; i < in->n_headers; i++) {
                if ((in->header_flags[i] & skip_flags) || (ssize_t)i == skip1 ||
                    (ssize_t)i == skip2)
                        continue;
                CHECK(*k < o->n_headers);
                CHECK(slice_eq(o->headers[*k].name, in->headers[i].name));
                CHECK(slice_eq(o->headers[*k].value, in->headers[i].value));
                (*k)++;
        }
}

static ssize_t last_with(const HttpHead *h, uint8_t flag)
{
        for (size_t i = h->n_headers; i > 0; i--)
                if (h->header_flags[i - 1] & flag)
                        return (ssize_t)(i - 1);
        return -1;
}

static void check_request_rewrite(const HttpHead *in, HttpHostFrom mode, bool https,
                                  bool upgrade)
{
        RequestContext ctx = { .client_ip = CLIENT_IP, .client_ip_len = strlen(CLIENT_IP),
                               .https = https, .host_from = mode, .host = UPSTREAM_HOST };
        if (upgrade) {
                const HttpHeader *up = http_head_find(in, "upgrade");
                ctx.upgrade = up ? up->value : lit("websocket");
        }

        char *out;
        size_t out_len, host_at;
        CHECK(http_rewrite_request_head(in, &ctx, &out, &out_len, &host_at) == 0);

        /* The node's Host goes where the rewrite says, as the exchange puts it per attempt. */
        bool node_host = mode == HTTP_HOST_NODE || (mode == HTTP_HOST_CLIENT && !in->host.p);
        CHECK(node_host == (host_at != SIZE_MAX));
        if (node_host) {
                CHECK(host_at <= out_len);
                const char *line = "Host: " NODE_HOST "\r\n";
                char *full = malloc(out_len + strlen(line));
                memcpy(full, out, host_at);
                memcpy(full + host_at, line, strlen(line));
                memcpy(full + host_at + strlen(line), out + host_at, out_len - host_at);
                free(out);
                out = full;
                out_len += strlen(line);
        }

        static HttpHead o;
        CHECK(http1_parse_request(out, out_len, HTTP_MAX_HEADERS, out_len, &o, NULL) ==
              (ssize_t)out_len);

        CHECK(slice_eq(o.method, in->method));
        CHECK(o.version_minor == in->version_minor);
        if (in->target.p[0] == '/')
                CHECK(slice_eq(o.target, in->target));
        else {
                CHECK(slice_eq(o.path, in->path));
                CHECK(o.query.p ? in->query.p && slice_eq(o.query, in->query) : !in->query.p);
                CHECK(o.target.len == in->path.len + (in->query.p ? 1 + in->query.len : 0));
        }

        HttpSlice host = node_host ? lit(NODE_HOST)
                         : mode == HTTP_HOST_GIVEN ? lit(UPSTREAM_HOST)
                                                     : in->host;
        CHECK(slice_eq(o.host, host));
        size_t k = 0;
        expect_header(&o, &k, "Host", host);

        ssize_t xff = last_with(in, HTTP_HEADER_FORWARDED_FOR);
        ssize_t via = last_with(in, HTTP_HEADER_VIA);
        expect_kept(in, &o, &k, HTTP_HEADER_HOP | HTTP_HEADER_HOST | HTTP_HEADER_PROXY_SET,
                    xff, via);
        static char buf[65536 + 64];
        expect_header(&o, &k, "X-Forwarded-For", joined(in, xff, lit(CLIENT_IP), buf, sizeof(buf)));
        expect_header(&o, &k, "X-Forwarded-Proto", lit(https ? "https" : "http"));
        if (in->host.p)
                expect_header(&o, &k, "X-Forwarded-Host", in->host);
        expect_header(&o, &k, "X-Real-IP", lit(CLIENT_IP));
        expect_header(&o, &k, "Via", joined(in, via, lit("1.1 lbproxy"), buf, sizeof(buf)));
        if (in->body == HTTP_BODY_CHUNKED)
                expect_header(&o, &k, "Transfer-Encoding", lit("chunked"));
        if (upgrade) {
                expect_header(&o, &k, "Connection", lit("upgrade"));
                expect_header(&o, &k, "Upgrade", ctx.upgrade);
                CHECK(o.upgrade);
        } else if (in->version_minor == 0)
                expect_header(&o, &k, "Connection", lit("keep-alive"));
        CHECK(k == o.n_headers);

        CHECK(o.body == in->body && o.content_length == in->content_length);
        CHECK(o.expect_continue == in->expect_continue);
        free(out);
}

static void check_request(const char *buf, size_t size)
{
        static HttpHead in;
        if (http1_parse_request(buf, size, HTTP_MAX_HEADERS - REQUEST_ADDS, 65536, &in, NULL) <= 0)
                return;
        /* CONNECT has no path to write in origin-form; no route matches it, so it is never
         * rewritten (routes' paths start with '/'). */
        if (in.path.len == 0)
                return;
        for (HttpHostFrom mode = HTTP_HOST_CLIENT; mode <= HTTP_HOST_GIVEN; mode++)
                for (unsigned i = 0; i < 4; i++)
                        check_request_rewrite(&in, mode, i & 1, i & 2);
}

/* A copy of what the rewrite appended to `out` after its first `before` bytes. */
static char *written(struct evbuffer *out, size_t before, size_t *ret_len)
{
        *ret_len = evbuffer_get_length(out) - before;
        char *p = malloc(*ret_len ? *ret_len : 1);
        struct evbuffer_ptr pos;
        CHECK(evbuffer_ptr_set(out, &pos, before, EVBUFFER_PTR_SET) == 0);
        CHECK(evbuffer_copyout_from(out, &pos, p, *ret_len) == (ev_ssize_t)*ret_len);
        return p;
}

/* An output buffer that holds `fill` bytes (a response queued before) and whose last chain has
 * exactly `room` bytes free after them: a head that does not fit must go elsewhere, not be cut. */
static struct evbuffer *buffer_with_room(size_t room, size_t *ret_fill)
{
        struct evbuffer *b = evbuffer_new();
        struct evbuffer_iovec v;

        CHECK(b && evbuffer_expand(b, room + 64) == 0 && evbuffer_reserve_space(b, 1, &v, 1) == 1);
        CHECK(v.iov_len >= room);
        size_t fill = v.iov_len - room;
        memset(v.iov_base, 'x', fill);
        v.iov_len = fill;
        CHECK(evbuffer_commit_space(b, &v, 1) == 0);
        *ret_fill = fill;
        return b;
}

static void check_response_rewrite(const HttpHead *in, HttpSlice method, bool close,
                                   bool http10_client, size_t tight)
{
        /* Its length first, then the head again into a buffer with a little less room than
         * that (`tight` bytes less), or exactly enough. */
        struct evbuffer *probe = evbuffer_new();
        CHECK(probe && http_rewrite_response_head(in, probe, close, http10_client, DATE) == 0);
        size_t want = evbuffer_get_length(probe);
        evbuffer_free(probe);
        size_t before;
        struct evbuffer *out = buffer_with_room(want > tight ? want - tight : 0, &before);
        CHECK(http_rewrite_response_head(in, out, close, http10_client, DATE) == 0);
        size_t len;
        char *p = written(out, before, &len);
        evbuffer_free(out);
        CHECK(len == want);

        static HttpHead o;
        CHECK(http1_parse_response(p, len, HTTP_MAX_HEADERS, len, method, &o, NULL) ==
              (ssize_t)len);
        CHECK(o.status == in->status && slice_eq(o.reason, in->reason));
        CHECK(o.version_minor == (http10_client ? 0 : 1));
        size_t k = 0;
        expect_kept(in, &o, &k, HTTP_HEADER_HOP, -1, -1);
        if (!in->has_date && in->status >= 200)
                expect_header(&o, &k, "Date", lit(DATE));
        /* An HTTP/1.0 client gets a chunked body decoded, delimited by the close. */
        bool dechunk = http10_client && in->body == HTTP_BODY_CHUNKED;
        if (in->body == HTTP_BODY_CHUNKED && !dechunk)
                expect_header(&o, &k, "Transfer-Encoding", lit("chunked"));
        if (close)
                expect_header(&o, &k, "Connection", lit("close"));
        else if (http10_client)
                expect_header(&o, &k, "Connection", lit("keep-alive"));
        CHECK(k == o.n_headers);
        HttpBody body = dechunk ? HTTP_BODY_CLOSE : in->body;
        CHECK(o.body == body && o.content_length == in->content_length);
        CHECK(o.keep_alive == (!close && body != HTTP_BODY_CLOSE));
        free(p);
}

static void check_switching(const HttpHead *in)
{
        struct evbuffer *out = evbuffer_new();
        CHECK(out);
        CHECK(http_rewrite_switching_head(in, out) == 0);
        size_t len;
        char *p = written(out, 0, &len);
        evbuffer_free(out);

        static HttpHead o;
        CHECK(http1_parse_response(p, len, HTTP_MAX_HEADERS, len, lit("GET"), &o, NULL) ==
              (ssize_t)len);
        CHECK(o.status == 101 && slice_eq(o.reason, in->reason) && o.version_minor == 1);
        size_t k = 0;
        expect_kept(in, &o, &k, HTTP_HEADER_HOP, -1, -1);
        const HttpHeader *up = http_head_find(in, "upgrade");
        expect_header(&o, &k, "Connection", lit("upgrade"));
        expect_header(&o, &k, "Upgrade", up ? up->value : lit("websocket"));
        CHECK(k == o.n_headers);
        CHECK(o.body == HTTP_BODY_NONE);
        free(p);
}

static void check_response(const char *buf, size_t size, HttpSlice method, size_t tight)
{
        static HttpHead in;
        if (http1_parse_response(buf, size, HTTP_MAX_HEADERS - RESPONSE_ADDS, 65536, method, &in,
                                 NULL) <= 0)
                return;
        for (unsigned i = 0; i < 4; i++)
                check_response_rewrite(&in, method, i & 1, i & 2, tight);
        if (in.status == 101)
                check_switching(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* An exact-size copy: ASan sees a read past the end. */
        char *buf = malloc(size ? size : 1);
        memcpy(buf, data, size);

        check_request(buf, size);
        check_response(buf, size, lit(methods[size % 4]), size / 4 % 256);
        free(buf);
        return 0;
}
