/* SPDX-License-Identifier: MIT */
/* The heads lbproxy writes: every byte of a request and a response head at the header limit,
 * in the `Name:value` shape (no space) that the rewrite lengthens by one byte per line, and
 * what the parser makes of them again. (tests/fuzz/fuzz-rewrite.c does the same for any head.) */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http-rewrite.h"
#include "tap.h"

/* A growing string, for building heads and what their rewrite must be. */
typedef struct Text {
        char *p;
        size_t len;
} Text;

static void add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Text *t, const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        t->p = realloc(t->p, t->len + (size_t)n + 1);
        if (!t->p)
                abort();
        memcpy(t->p + t->len, s, (size_t)n + 1);
        t->len += (size_t)n;
        free(s);
}

#define N_PLAIN (HTTP_MAX_HEADERS - 7)
#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"
#define OTHER_DATE "Mon, 07 Nov 1994 08:49:37 GMT"

/* 125 request headers: Host, the three the proxy appends to or replaces, and Content-Length
 * among the others; with X-Forwarded-Host, X-Forwarded-Port and X-Real-IP the result has 128,
 * as many as a head can have here. */
static void test_request_at_the_limit(void)
{
        Text in = {}, want = {};

        add(&in, "POST /upload?x=1 HTTP/1.1\r\nHost:example.test\r\nX-Forwarded-For:10.0.0.1\r\n"
                 "X-Forwarded-Proto:https\r\nVia:1.0 edge\r\n");
        add(&want, "POST /upload?x=1 HTTP/1.1\r\nHost: example.test\r\n");
        for (unsigned i = 0; i < N_PLAIN; i++) {
                if (i == N_PLAIN / 2) {
                        add(&in, "Content-Length:4\r\n");
                        add(&want, "Content-Length: 4\r\n");
                        continue;
                }
                add(&in, "X-Header-%03u:value-%03u\r\n", i, i);
                add(&want, "X-Header-%03u: value-%03u\r\n", i, i);
        }
        add(&in, "\r\nBODY");
        add(&want, "X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.test\r\nX-Forwarded-Port: 8443\r\n"
                   "X-Real-IP: 192.0.2.7\r\nVia: 1.0 edge, 1.1 lbproxy\r\n\r\n");

        HttpHead h;
        ssize_t r = http1_parse_request(in.p, in.len, HTTP_MAX_HEADERS, 65536, &h, NULL);
        CHECK(r == (ssize_t)in.len - 4);
        CHECK(h.n_headers == HTTP_MAX_HEADERS - 3);

        RequestContext ctx = { .client_ip = "192.0.2.7", .client_ip_len = 9,
                               .server_port = "8443", .host_from = HTTP_HOST_CLIENT };
        char *out = NULL;
        size_t out_len = 0, host_at = 0;
        CHECK(http_rewrite_request_head(&h, &ctx, &out, &out_len, &host_at) == 0);
        CHECK(host_at == SIZE_MAX);
        CHECK(out_len == want.len && memcmp(out, want.p, want.len) == 0);

        /* The upstream reads one whole head of exactly that length, then the body. */
        HttpHead again;
        CHECK(http1_parse_request(out, out_len, HTTP_MAX_HEADERS, out_len, &again, NULL) ==
              (ssize_t)out_len);
        CHECK(again.n_headers == HTTP_MAX_HEADERS);
        CHECK(again.body == HTTP_BODY_LENGTH && again.content_length == 4);

        /* pass_host node: the same head without Host, and where the node's goes. */
        free(out);
        ctx.host_from = HTTP_HOST_NODE;
        CHECK(http_rewrite_request_head(&h, &ctx, &out, &out_len, &host_at) == 0);
        const char *host_line = "Host: example.test\r\n";
        size_t line_len = strlen("POST /upload?x=1 HTTP/1.1\r\n");
        CHECK(host_at == line_len);
        CHECK(out_len + strlen(host_line) == want.len);
        CHECK(memcmp(out, want.p, line_len) == 0 &&
              memcmp(out + line_len, want.p + line_len + strlen(host_line),
                     out_len - line_len) == 0);
        free(out);
        free(in.p);
        free(want.p);
}

/* An output buffer whose last chain has exactly `room` bytes free, behind a response already
 * queued: the head must come out whole however little room the buffer happens to have. */
static struct evbuffer *buffer_with_room(size_t room)
{
        struct evbuffer *b = evbuffer_new();
        struct evbuffer_iovec v;

        if (!b || evbuffer_expand(b, room + 64) < 0 || evbuffer_reserve_space(b, 1, &v, 1) != 1)
                abort();
        size_t fill = v.iov_len - room;
        char *filler = malloc(fill);
        memset(filler, 'x', fill);
        evbuffer_add(b, filler, fill);
        free(filler);
        return b;
}

/* 128 response headers, the hop-by-hop ones among them replaced by what the proxy adds, for
 * each way a head ends. Chunked with Connection: close makes the head longest: 141 bytes over
 * what was read, more than the 128 the writer once reserved beyond it. */
static void test_response_at_the_limit(bool chunked, bool close, bool http10_client)
{
        Text in = {}, want = {};
        HttpBody body = chunked ? (http10_client ? HTTP_BODY_CLOSE : HTTP_BODY_CHUNKED)
                                : HTTP_BODY_LENGTH;

        add(&in, "HTTP/1.1 200 OK\r\n");
        add(&want, "HTTP/1.%c 200 OK\r\n", http10_client ? '0' : '1');
        if (chunked)
                add(&in, "Transfer-Encoding:chunked\r\nTE:\r\n");
        else
                add(&in, "Connection:keep-alive\r\n");
        for (unsigned i = chunked ? 2 : 1; i < HTTP_MAX_HEADERS; i++) {
                if (i == 9) {
                        add(&in, "Date:" DATE "\r\n");
                        add(&want, "Date: " DATE "\r\n");
                        continue;
                }
                if (i == 7 && !chunked) {
                        add(&in, "Content-Length:4\r\n");
                        add(&want, "Content-Length: 4\r\n");
                        continue;
                }
                add(&in, "X-Header-%03u:value-%03u\r\n", i, i);
                add(&want, "X-Header-%03u: value-%03u\r\n", i, i);
        }
        add(&in, chunked ? "\r\n4\r\nBODY\r\n0\r\n\r\n" : "\r\nBODY");
        if (body == HTTP_BODY_CHUNKED)
                add(&want, "Transfer-Encoding: chunked\r\n");
        if (close)
                add(&want, "Connection: close\r\n");
        else if (http10_client)
                add(&want, "Connection: keep-alive\r\n");
        add(&want, "\r\n");

        HttpHead h;
        ssize_t r = http1_parse_response(in.p, in.len, HTTP_MAX_HEADERS, 65536,
                                         (HttpSlice){ "GET", 3 }, &h, NULL);
        CHECK(r > 0 && memcmp(in.p + r - 4, "\r\n\r\n", 4) == 0);
        CHECK(h.n_headers == HTTP_MAX_HEADERS);

        for (size_t room = want.len > 200 ? want.len - 200 : 0; room <= want.len + 8; room++) {
                struct evbuffer *out = buffer_with_room(room);
                size_t before = evbuffer_get_length(out);
                CHECK(http_rewrite_response_head(&h, out, close, http10_client, OTHER_DATE) ==
                      0);
                size_t out_len = evbuffer_get_length(out) - before;
                const char *p = (const char *)evbuffer_pullup(out, -1) + before;
                if (out_len != want.len || memcmp(p, want.p, want.len) != 0) {
                        fprintf(stderr, "  %zu bytes of room: %zu written, %zu wanted\n", room,
                                out_len, want.len);
                        CHECK(!"the head written whole");
                        evbuffer_free(out);
                        break;
                }

                HttpHead again;
                CHECK(http1_parse_response(p, out_len, HTTP_MAX_HEADERS, out_len,
                                           (HttpSlice){ "GET", 3 }, &again,
                                           NULL) == (ssize_t)out_len);
                CHECK(again.body == body);
                CHECK(again.content_length == (chunked ? 0 : 4));
                CHECK(again.keep_alive == (!close && body != HTTP_BODY_CLOSE));
                evbuffer_free(out);
        }
        free(in.p);
        free(want.p);
}

/* A final response without Date gets the one given, after the upstream's fields; an interim
 * one does not, nor one with its own. */
static void test_response_date(void)
{
        static const struct {
                const char *in, *want;
        } cases[] = {
                { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: " OTHER_DATE "\r\n\r\n" },
                { "HTTP/1.1 204 No\r\ndate: " DATE "\r\n\r\n",
                  "HTTP/1.1 204 No\r\ndate: " DATE "\r\n\r\n" },
                { "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                  "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                HttpHead h;
                CHECK(http1_parse_response(cases[i].in, strlen(cases[i].in), 100, 65536,
                                           (HttpSlice){ "GET", 3 }, &h, NULL) > 0);
                struct evbuffer *out = evbuffer_new();
                CHECK(http_rewrite_response_head(&h, out, false, false, OTHER_DATE) == 0);
                size_t n = evbuffer_get_length(out);
                const char *p = (const char *)evbuffer_pullup(out, -1);
                CHECK(n == strlen(cases[i].want) && memcmp(p, cases[i].want, n) == 0);
                evbuffer_free(out);
        }
}

int main(void)
{
        test_response_date();
        test_request_at_the_limit();
        for (unsigned i = 0; i < 8; i++)
                test_response_at_the_limit(i & 1, i & 2, i & 4);
        TEST_MAIN_END();
}
