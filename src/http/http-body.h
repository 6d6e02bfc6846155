/* SPDX-License-Identifier: MIT */
#pragma once

/* Moves one message body from one buffer to another as it arrives, by its framing, without
 * looking at the data: Content-Length counts, chunked is walked by the framer, close-delimited
 * takes everything. */

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http1.h"

typedef struct HttpBodyState {
        HttpBody type;
        uint64_t remaining; /* HTTP_BODY_LENGTH */
        HttpChunked chunked;
        bool dechunk; /* chunked in, payload out: for an HTTP/1.0 client */
        bool done;
} HttpBodyState;

void http_body_init(HttpBodyState *b, HttpBody type, uint64_t content_length);

/* Moves the bytes of `src` that belong to the body into `dst` (chains are moved, not copied).
 * Returns 1 when the body ended (what stays in src is the next message), 0 when more is needed,
 * or -EBADMSG / -EMSGSIZE for broken chunked framing. */
int http_body_move(HttpBodyState *b, struct evbuffer *src, struct evbuffer *dst, size_t max_line);
