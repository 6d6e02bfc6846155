/* SPDX-License-Identifier: MIT */
#pragma once

/* HTTP/1.1 to etcd's JSON gateway, non-blocking on an event loop, through libevent's evhttp:
 * unary calls (POST a JSON body, get the answer's body) and a watch (POST once, then one message
 * a line for as long as the stream lasts). Each call has a connection of its own, to one endpoint
 * of the list, which the caller picks: trying the others in turn is the caller's policy. With a
 * user name, the client authenticates first and sends the token with every call. */

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef struct EtcdClientOptions {
        char *const *endpoints; /* "http://127.0.0.1:2379", "http://[::1]:2379" */
        uint64_t timeout_usec;  /* of a unary call, connect included */
        const char *username;   /* NULL: no authentication */
        const char *password;
} EtcdClientOptions;

typedef struct EtcdClient EtcdClient;
typedef struct EtcdCall EtcdCall;

/* -EINVAL when an endpoint is not "http://<IP address>:<port>". */
int etcd_client_new(struct event_base *base, const EtcdClientOptions *o, EtcdClient **ret);
/* Ends every call without calling anyone back. */
EtcdClient *etcd_client_free(EtcdClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(EtcdClient *, etcd_client_free);

size_t etcd_client_n_endpoints(const EtcdClient *c);
const char *etcd_client_endpoint(const EtcdClient *c, size_t i);

/* How a call ended: r = 0 and `status` 200 with the answer's body; r = -EPROTO for another
 * status (body: etcd's error, status 400 for a compacted revision, 503 without a leader);
 * -ECONNREFUSED or -EIO when the connection failed or closed, -ETIMEDOUT, -EACCES when
 * authentication failed (body: why), -ENOMEM. A watch ends this way too, once its stream does
 * (r = -EPIPE when it ended cleanly). */
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
 * stream ends. No timeout: a quiet watch is the caller's to check. */
int etcd_watch(EtcdClient *c, size_t endpoint, const char *body, EtcdWatchLine on_line,
               EtcdCallDone done, void *userdata, EtcdCall **ret);
/* Ends a call: nobody is called back for it any more. Safe inside its own callbacks. */
void etcd_call_cancel(EtcdCall *call);
