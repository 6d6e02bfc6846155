/* SPDX-License-Identifier: MIT */
#include "base/util.h"
#include "http/http-body.h"

void http_body_init(HttpBodyState *b, HttpBody type, uint64_t content_length)
{
        *b = (HttpBodyState){ .type = type, .remaining = content_length };
        if (type == HTTP_BODY_CHUNKED)
                http_chunked_init(&b->chunked);
        b->done = type == HTTP_BODY_NONE || (type == HTTP_BODY_LENGTH && content_length == 0);
}

static int move_chunked(HttpBodyState *b, struct evbuffer *src, struct evbuffer *dst,
                        size_t max_line)
{
        while (evbuffer_get_length(src) > 0) {
                struct evbuffer_iovec v[16];
                int n = evbuffer_peek(src, -1, NULL, v, ELEMENTSOF(v));
                size_t take = 0;
                int done = 0;

                if (n > (int)ELEMENTSOF(v))
                        n = ELEMENTSOF(v);
                for (int i = 0; i < n && !done; i++) {
                        size_t used = 0;
                        int r = http_chunked_feed(&b->chunked, v[i].iov_base, v[i].iov_len,
                                                  max_line, &used);
                        if (r < 0)
                                return r;
                        take += used;
                        done = r;
                }
                evbuffer_remove_buffer(src, dst, take);
                if (done) {
                        b->done = true;
                        return 1;
                }
        }
        return 0;
}

/* Chunked in, payload out: data ranges are moved whole; the framing (size lines, CRLFs,
 * trailers), a few bytes per chunk, goes through the framer a byte at a time and is dropped. */
static int move_dechunked(HttpBodyState *b, struct evbuffer *src, struct evbuffer *dst,
                          size_t max_line)
{
        for (;;) {
                size_t have = evbuffer_get_length(src);
                if (have == 0)
                        return 0;
                uint64_t data = http_chunked_data_left(&b->chunked);
                if (data > 0) {
                        size_t n = have < data ? have : (size_t)data;
                        /* Moved whole, extent by extent; the framer is fed the same bytes,
                         * which it skips in O(1) to count them off the chunk. */
                        while (n > 0) {
                                struct evbuffer_iovec v;
                                if (evbuffer_peek(src, (ev_ssize_t)n, NULL, &v, 1) < 1)
                                        break;
                                size_t len = v.iov_len < n ? v.iov_len : n;
                                size_t used = 0;
                                (void)http_chunked_feed(&b->chunked, v.iov_base, len, max_line,
                                                        &used);
                                evbuffer_remove_buffer(src, dst, len);
                                n -= len;
                        }
                        continue;
                }
                unsigned char c;
                size_t used = 0;
                if (evbuffer_copyout(src, &c, 1) != 1)
                        return 0;
                int r = http_chunked_feed(&b->chunked, (const char *)&c, 1, max_line, &used);
                if (r < 0)
                        return r;
                evbuffer_drain(src, used);
                if (r == 1) {
                        b->done = true;
                        return 1;
                }
        }
}

int http_body_move(HttpBodyState *b, struct evbuffer *src, struct evbuffer *dst, size_t max_line)
{
        if (b->done)
                return 1;

        switch (b->type) {
        case HTTP_BODY_NONE:
                return 1;
        case HTTP_BODY_LENGTH: {
                size_t have = evbuffer_get_length(src);
                size_t n = have < b->remaining ? have : (size_t)b->remaining;
                evbuffer_remove_buffer(src, dst, n);
                b->remaining -= n;
                b->done = b->remaining == 0;
                return b->done;
        }
        case HTTP_BODY_CLOSE:
                evbuffer_add_buffer(dst, src);
                return 0; /* the caller sees the end of input */
        case HTTP_BODY_CHUNKED:
                return b->dechunk ? move_dechunked(b, src, dst, max_line)
                                  : move_chunked(b, src, dst, max_line);
        }
        return -EINVAL;
}
