/* SPDX-License-Identifier: MIT */
#pragma once

/* Writes the heads a proxy sends on: the request head for the upstream (Host by pass_host,
 * hop-by-hop fields gone, X-Forwarded-For/-Proto/-Host/-Port, X-Real-IP and Via added) and the response head for the
 * client (hop-by-hop fields gone, its own Connection). Pure functions over parsed heads. */

#include <event2/buffer.h>
#include <stdbool.h>

#include "http/http1.h"

/* Where the Host line of a request sent on comes from (an upstream's pass_host). */
typedef enum HttpHostFrom {
        HTTP_HOST_CLIENT, /* the client's Host; an HTTP/1.0 request without one gets the node's */
        HTTP_HOST_NODE,   /* the node's */
        HTTP_HOST_GIVEN,  /* RequestContext.host */
} HttpHostFrom;

typedef struct RequestContext {
        const char *client_ip; /* not NUL-terminated */
        size_t client_ip_len;
        bool https; /* the client reached us over TLS */
        const char *server_port; /* the port it reached (X-Forwarded-Port), NUL-terminated; "" or
                                    NULL: none sent */
        HttpSlice upgrade; /* an Upgrade to pass on (WebSocket), or p == NULL */
        HttpHostFrom host_from;
        const char *host; /* with HTTP_HOST_GIVEN */
} RequestContext;

bool http_method_is_idempotent(HttpSlice method);

/* The request head to send on, in a new buffer of exactly its length. When the Host line is the
 * node's it depends on the node, which a retry may change: it is left out and *ret_host_at says
 * where it goes (else SIZE_MAX). The target is written in origin-form, so `h` must have a path (not
 * CONNECT's authority-form: no route matches it). */
int http_rewrite_request_head(const HttpHead *h, const RequestContext *ctx, char **ret,
                              size_t *ret_len, size_t *ret_host_at);

/* Just "METHOD SP path" for a request that goes nowhere (for the log). */
int http_rewrite_copy_line(const HttpHead *h, char **ret, size_t *ret_len);

/* Appends the head of a 101 Switching Protocols for the client: the upstream's fields, with its
 * Connection: upgrade and Upgrade kept (they are hop-by-hop, but this hop is switching). 0, or
 * -ENOMEM with nothing appended. */
int http_rewrite_switching_head(const HttpHead *h, struct evbuffer *out);

/* Appends the response head for the client to `out`. `close` adds Connection: close; an HTTP/1.0
 * client that stays gets Connection: keep-alive; a final response without Date gets `date`
 * (HTTP_DATE_LEN characters: http_date_now()). 0, or -ENOMEM with nothing appended. */
int http_rewrite_response_head(const HttpHead *h, struct evbuffer *out, bool close,
                               bool http10_client, const char *date);
