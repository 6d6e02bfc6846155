/* SPDX-License-Identifier: MIT */
#pragma once

/* A strict HTTP/1.1 message-head parser (RFC 9112) and a chunked-body framer. Pure functions over
 * a contiguous buffer: no allocation, no I/O. Everything it returns points into the caller's
 * buffer, which must stay unchanged while the result is used.
 *
 * Strictness is the point: anything that two HTTP implementations could read two ways (request
 * smuggling) is refused, never guessed at. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct HttpSlice {
        const char *p;
        size_t len;
} HttpSlice;

typedef struct HttpHeader {
        HttpSlice name;  /* as received (case kept) */
        HttpSlice value; /* leading and trailing whitespace removed */
} HttpHeader;

typedef enum HttpBody {
        HTTP_BODY_NONE,    /* no body follows the head */
        HTTP_BODY_LENGTH,  /* exactly content_length bytes */
        HTTP_BODY_CHUNKED, /* chunked coding; use HttpChunked to find its end */
        HTTP_BODY_CLOSE,   /* responses only: until the connection closes */
} HttpBody;

/* Hop-by-hop and framing headers, found once while parsing so nobody scans twice. */
typedef enum HttpHeaderFlag {
        HTTP_HEADER_HOP = 1u << 0, /* Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
                                      Transfer-Encoding, Upgrade, or named in Connection */
        HTTP_HEADER_HOST = 1u << 1,
        HTTP_HEADER_CONTENT_LENGTH = 1u << 2,
        HTTP_HEADER_FORWARDED_FOR = 1u << 3, /* X-Forwarded-For */
        HTTP_HEADER_PROXY_SET = 1u << 4, /* X-Forwarded-Proto, -Host, -Port, X-Real-IP: the
                                            proxy writes its own, the client's are dropped */
        HTTP_HEADER_VIA = 1u << 5,
} HttpHeaderFlag;

#define HTTP_MAX_HEADERS 128

typedef struct HttpHead {
        /* Request line (requests only) */
        HttpSlice method;
        HttpSlice target; /* request-target as sent */
        HttpSlice path;   /* target up to '?'; for absolute-form the part after the authority, or a
                             static "/" when that is empty (the one slice not in the buffer);
                             "*" for asterisk-form; empty for CONNECT */
        HttpSlice query;  /* after '?', without it; p == NULL when there is no '?' */
        /* Status line (responses only) */
        unsigned status;
        HttpSlice reason;

        unsigned version_minor; /* HTTP/1.x */
        HttpHeader headers[HTTP_MAX_HEADERS];
        uint8_t header_flags[HTTP_MAX_HEADERS]; /* HttpHeaderFlag per header */
        size_t n_headers;

        HttpSlice host; /* the Host header's value; p == NULL when absent. A request with an
                           absolute-form or CONNECT target has the target's authority here,
                           whatever its Host field says (RFC 9112 3.2.2). */
        HttpBody body;
        uint64_t content_length; /* with HTTP_BODY_LENGTH (never above INT64_MAX); else 0 */
        bool keep_alive;         /* per version and Connection: close / keep-alive */
        bool expect_continue;    /* Expect: 100-continue */
        bool upgrade;            /* Connection: upgrade with an Upgrade header */
        bool has_date;           /* a Date field */
        size_t head_len;         /* bytes of the head, through the empty line, including the
                                    empty lines skipped before a request line */
} HttpHead;

/* Parses a request head from buf[0..len). max_headers (clamped to HTTP_MAX_HEADERS) and max_bytes
 * bound it. Up to 4 empty lines before the request line are skipped (RFC 9112 2.2). Returns:
 *   > 0          the head is complete; the value is head_len, the bytes it used
 *   -EAGAIN      incomplete: more bytes needed (and len < max_bytes)
 *   -EMSGSIZE    head larger than max_bytes, or more than max_headers lines (431)
 *   -EBADMSG     malformed or ambiguous (400)
 *   -ENAMETOOLONG requests only: the request line alone is max_bytes or longer (414)
 *   -EPROTONOSUPPORT a version we do not speak: HTTP/2 preface, HTTP/1.x with x > 1, HTTP/0.9
 *                (505)
 *   -ENOTSUP     a Transfer-Encoding other than chunked (501)
 * On every error *ret_reason (when not NULL) is set to a short static English reason, for the
 * 400 body and the log; on success and -EAGAIN to NULL. *ret is only meaningful on success.
 * A request without Host in HTTP/1.1 is -EBADMSG. A request body is never HTTP_BODY_CLOSE.
 * Content-Length may repeat (as headers or as a list) only with identical values. */
ssize_t http1_parse_request(const char *buf, size_t len, size_t max_headers, size_t max_bytes,
                            HttpHead *ret, const char **ret_reason);

/* Parses a response head. `request_method` decides bodies (HEAD, CONNECT 2xx), as does the
 * status (1xx, 204, 304: none). Same returns as http1_parse_request. */
ssize_t http1_parse_response(const char *buf, size_t len, size_t max_headers, size_t max_bytes,
                             HttpSlice request_method, HttpHead *ret, const char **ret_reason);

/* True when name equals `lower` ignoring ASCII case; `lower` must be lower case. */
bool http_slice_case_eq(HttpSlice name, const char *lower);

/* Finds the first header by lower-case name, or NULL. */
const HttpHeader *http_head_find(const HttpHead *h, const char *lower_name);

/* The chunked framing of a body: fed the raw bytes as they arrive, it says where the body ends
 * (last chunk and trailers included) without copying data. Chunk data is skipped in O(1); only
 * size lines and trailers are scanned. */
typedef struct HttpChunked {
        int state;
        uint64_t remaining; /* data bytes left in the current chunk */
        size_t line_len;    /* bytes of the current size line seen so far */
        size_t trailer_bytes; /* bytes of the trailer section seen so far */
} HttpChunked;

void http_chunked_init(HttpChunked *c);

/* The data bytes the framer expects next, before any more framing: > 0 only inside a chunk's
 * data. For decoding: those bytes are payload, everything else is framing. */
uint64_t http_chunked_data_left(const HttpChunked *c);

/* Feeds buf[0..len). Returns:
 *   0         all of it belongs to the body and more is needed; *ret_used = len
 *   1         the body ended; *ret_used = the bytes that belong to it (the rest is the next
 *             message)
 *   -EBADMSG  invalid chunk size line, missing CRLF after data, size overflow, bare LF, ...
 *   -EMSGSIZE a size line or the trailers grew past max_line (trailers: past max_line * 4)
 * Once it returned 1 it keeps returning 1 with *ret_used = 0; once it failed, -EBADMSG.
 * Trailer fields are checked for syntax only, and passed on with the body. */
int http_chunked_feed(HttpChunked *c, const char *buf, size_t len, size_t max_line,
                      size_t *ret_used);
