/* SPDX-License-Identifier: MIT */
#pragma once

/* HTTP/1.1 to etcd's JSON gateway, non-blocking on an event loop, over lbproxy's own Stream,
 * TLS client and HTTP/1.1 parser: unary calls (POST a JSON body, get the answer's body) and a
 * watch (POST once, then one message a line for as long as the stream lasts). Unary calls to an
 * endpoint share a kept connection (keep-alive), or a second one while the first is busy; a
 * watch has a connection of its own. The caller picks the endpoint of each call: trying the
 * others in turn is the caller's policy. With a user name, the client authenticates first and
 * sends the token with every call. */

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef struct EtcdClientOptions {
        char *const *endpoints; /* "http://127.0.0.1:2379", "https://[::1]:2379" */
        uint64_t timeout_usec;  /* of a unary call: the wait for a connection, the connect and
                                   the TLS handshake included */
        const char *username;   /* NULL: no authentication */
        const char *password;
        /* For https:// endpoints: the trust beside the system store (NULL: none), and the
         * client certificate and its key (both or neither), for etcd's --client-cert-auth. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
} EtcdClientOptions;

typedef struct EtcdClient EtcdClient;
typedef struct EtcdCall EtcdCall;

/* At most this many connections for unary calls per endpoint: calls beyond wait for one. */
#define ETCD_CONNS_MAX 2

/* -EINVAL when an endpoint is not "http[s]://<IP address>:<port>" (then *ret_error, if given,
 * may say more); the TLS credentials' failures as tls_client_new() has them, with *ret_error
 * naming the file. */
int etcd_client_new(struct event_base *base, const EtcdClientOptions *o, EtcdClient **ret,
                    char **ret_error);
/* Ends every call without calling anyone back. */
EtcdClient *etcd_client_free(EtcdClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(EtcdClient *, etcd_client_free);

size_t etcd_client_n_endpoints(const EtcdClient *c);
const char *etcd_client_endpoint(const EtcdClient *c, size_t i);
/* TCP connections opened since the client was made (for tests and the journal). */
uint64_t etcd_client_n_connects(const EtcdClient *c);

/* How a call ended: r = 0 and `status` 200 with the answer's body; r = -EPROTO for another
 * status (body: etcd's error, status 400 for a compacted revision, 503 without a leader);
 * status 0 when no answer came: -ECONNREFUSED, -ECONNRESET or -EIO when the connection failed
 * or closed, -ETIMEDOUT, -EKEYREJECTED when etcd's certificate was refused, -EPROTO for
 * another TLS failure (body, when not NULL: the TLS layer's words for it, e.g. why the
 * certificate was refused), -EBADMSG for an answer that is not HTTP or exceeds the bounds;
 * -EACCES when authentication failed (body: why), -ENOMEM. A watch ends this way too, once its
 * stream does (r = -EPIPE when it ended cleanly). */
typedef void (*EtcdCallDone)(void *userdata, int r, unsigned status, const char *body,
                             size_t len);
/* One message of a watch (a line, without the newline, NUL-terminated). */
typedef void (*EtcdWatchLine)(void *userdata, const char *line, size_t len);

/* POSTs `body` to `path` ("/v3/kv/range") at endpoint `endpoint`. `done` is called once, later
 * (never from inside this), unless the call is cancelled first. *ret (may be NULL) is valid
 * until then. 0 or -ENOMEM. */
int etcd_call(EtcdClient *c, size_t endpoint, const char *path, const char *body,
              EtcdCallDone done, void *userdata, EtcdCall **ret);
/* A watch: `body` is a create_request; each message goes to `on_line`, then `done` once the
 * stream ends. The timeout bounds the connect and the answer's head only: a quiet watch is the
 * caller's to check. */
int etcd_watch(EtcdClient *c, size_t endpoint, const char *body, EtcdWatchLine on_line,
               EtcdCallDone done, void *userdata, EtcdCall **ret);
/* Ends a call: nobody is called back for it any more. Safe inside its own callbacks. */
void etcd_call_cancel(EtcdCall *call);

/* A call's failure in words, for the journal: etcd's answer when it gave one (status != 0,
 * trailing newlines cut), else what went wrong on the way (refused, timed out, the TLS layer's
 * words for a refused certificate). Returns `buf` (truncated to `size`) or a static string. */
const char *etcd_why(int r, unsigned status, const char *body, char *buf, size_t size);
