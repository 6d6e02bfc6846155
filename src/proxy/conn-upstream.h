/* SPDX-License-Identifier: MIT */
#pragma once

/* A connection to one address of a node. Owned by one exchange while a request uses it, by the
 * worker's pool while idle; never by two at once. */

#include <stdbool.h>

#include "base/util.h"
#include "net/stream.h"

typedef struct Worker Worker;
typedef struct NodeAddress NodeAddress;
typedef struct UpstreamConn UpstreamConn;

struct UpstreamConn {
        Stream stream;
        struct event timer; /* connect, send, read or idle timeout, by phase */
        Worker *worker;
        char *pool_key; /* copied: the model it came from may be gone while it idles */
        size_t pool_key_len;
        uint64_t pool_key_hash;
        char address[SOCKADDR_STR_MAX];
        bool reused;     /* has served a request before the current one */
        unsigned requests;
        UpstreamConn *pool_prev, *pool_next; /* while idle */
};

typedef struct TlsClient TlsClient;

/* Opens a socket and starts connecting to `a` (then a TLS handshake when `tls` is given, for
 * `server_name`); `handler` (with `userdata`) hears the result through on_connect. */
int upstream_conn_connect(Worker *w, const NodeAddress *a, TlsClient *tls,
                          const char *server_name, const StreamHandler *handler, void *userdata,
                          event_callback_fn on_timer, UpstreamConn **ret);
UpstreamConn *upstream_conn_free(UpstreamConn *c);
