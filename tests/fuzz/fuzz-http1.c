/* SPDX-License-Identifier: MIT */
/* Feeds arbitrary bytes to the request and response parsers and checks what they promise: results
 * lie inside the buffer, prefixes of a good head ask for more, limits are honoured. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/http1.h"

static const char *const methods[] = { "GET", "HEAD", "CONNECT", "POST" };

static bool in_head(HttpSlice s, const char *buf, size_t len)
{
        return s.p == NULL ? s.len == 0 : s.p >= buf && s.len <= len && s.p - buf <= (ptrdiff_t)(len - s.len);
}

static bool is_tchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static ssize_t parse(bool request, const char *buf, size_t len, size_t max_headers,
                     size_t max_bytes, HttpSlice method, HttpHead *h, const char **reason)
{
        if (request)
                return http1_parse_request(buf, len, max_headers, max_bytes, h, reason);
        return http1_parse_response(buf, len, max_headers, max_bytes, method, h, reason);
}

static void check_head(bool request, const char *buf, size_t len, size_t max_headers,
                       size_t max_bytes, HttpSlice method)
{
        static HttpHead h, h2;
        const char *reason = (const char *)1;
        ssize_t r = parse(request, buf, len, max_headers, max_bytes, method, &h, &reason);

        if (r < 0) {
                CHECK(r == -EAGAIN || r == -EBADMSG || r == -ENOTSUP || r == -EMSGSIZE ||
                      r == -EPROTONOSUPPORT || (request && r == -ENAMETOOLONG));
                if (r == -EAGAIN) {
                        CHECK(reason == NULL);
                        CHECK(len < max_bytes);
                } else
                        CHECK(reason != NULL && strlen(reason) > 0);
                return;
        }

        size_t n = (size_t)r;
        CHECK(n > 0 && n <= len && n <= max_bytes);
        CHECK(reason == NULL);
        CHECK(h.head_len == n);
        CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
        CHECK(h.n_headers <= max_headers && h.n_headers <= HTTP_MAX_HEADERS);
        for (size_t i = 0; i < h.n_headers; i++) {
                const HttpHeader *hd = &h.headers[i];
                CHECK(in_head(hd->name, buf, n) && hd->name.len > 0);
                CHECK(in_head(hd->value, buf, n));
                for (size_t j = 0; j < hd->name.len; j++)
                        CHECK(is_tchar(hd->name.p[j]));
                for (size_t j = 0; j < hd->value.len; j++) {
                        unsigned char c = (unsigned char)hd->value.p[j];
                        CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
                }
                if (hd->value.len > 0) {
                        CHECK(hd->value.p[0] != ' ' && hd->value.p[0] != '\t');
                        CHECK(hd->value.p[hd->value.len - 1] != ' ' &&
                              hd->value.p[hd->value.len - 1] != '\t');
                }
                CHECK(h.header_flags[i] < (1u << 6));
        }
        CHECK(in_head(h.host, buf, n));
        CHECK(h.body != HTTP_BODY_LENGTH || h.content_length > 0);
        CHECK(h.body == HTTP_BODY_LENGTH || h.content_length == 0);
        CHECK(h.content_length <= (uint64_t)INT64_MAX);
        CHECK(h.version_minor <= 1);
        if (request) {
                CHECK(h.body != HTTP_BODY_CLOSE);
                CHECK(in_head(h.method, buf, n) && h.method.len > 0);
                CHECK(in_head(h.target, buf, n) && h.target.len > 0);
                CHECK(in_head(h.path, buf, n) || (h.path.len == 1 && h.path.p[0] == '/'));
                CHECK(in_head(h.query, buf, n));
                CHECK(h.version_minor == 0 || h.host.p != NULL);
        } else {
                CHECK(h.status >= 100 && h.status <= 599);
                CHECK(in_head(h.reason, buf, n));
                CHECK(h.body != HTTP_BODY_CLOSE || !h.keep_alive);
        }

        /* The same bytes, alone and in an exact-size buffer, give the same head. */
        char *copy = malloc(n);
        memcpy(copy, buf, n);
        CHECK(parse(request, copy, n, max_headers, n, method, &h2, &reason) == r);
        CHECK(h2.n_headers == h.n_headers && h2.body == h.body);
        CHECK(h2.keep_alive == h.keep_alive && h2.content_length == h.content_length);
        CHECK(memcmp(h2.header_flags, h.header_flags, h.n_headers) == 0);
        /* One byte less room is too little. */
        CHECK(parse(request, copy, n, max_headers, n - 1, method, &h2, &reason) == -EMSGSIZE);
        /* Every prefix wants more. Checking all of them is quadratic: only for small heads. */
        for (size_t k = 0; k < n; k += n < 512 ? 1 : n / 64 + 1) {
                char *pre = malloc(k ? k : 1);
                memcpy(pre, buf, k);
                CHECK(parse(request, pre, k, max_headers, max_bytes, method, &h2, &reason) ==
                      -EAGAIN);
                free(pre);
        }
        free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size ? size : 1);
        HttpSlice method;

        memcpy(buf, data, size);
        method.p = methods[size % 4];
        method.len = strlen(method.p);

        check_head(true, buf, size, HTTP_MAX_HEADERS, 65536, method);
        check_head(false, buf, size, HTTP_MAX_HEADERS, 65536, method);
        /* Tight limits, to reach the -EMSGSIZE paths. */
        check_head(true, buf, size, 3, size / 2 + 1, method);
        check_head(false, buf, size, 2, size / 2 + 1, method);

        free(buf);
        return 0;
}
