/* SPDX-License-Identifier: MIT */
#pragma once

/* Between etcd-client.c (the client, its endpoints and calls, the queue that gives calls their
 * connections) and etcd-conn.c (one connection: the request out, the answer in). */

#include <event2/event.h>
#include <sys/socket.h>

#include "http/http-body.h"
#include "net/stream.h"
#include "store/etcd-client.h"
#include "tls/tls.h"

#define ETCD_CALL_MAGIC 0x65746364u /* "etcd" */
/* An answer's head: etcd's are a few hundred bytes. */
#define ETCD_HEAD_MAX (64 * 1024)
/* A unary answer's body: a range of the whole prefix is the big one; past this, something is
 * wrong with what answers. */
#define ETCD_BODY_MAX (UINT64_C(256) << 20)
/* A chunk size line (and the trailers, four times it). */
#define ETCD_CHUNK_LINE_MAX 1024
/* A kept connection idle this long is closed rather than used: a server that closed it
 * meanwhile would otherwise fail the next call. */
#define ETCD_IDLE_MAX_USEC (30 * USEC_PER_SEC)

typedef struct EtcdConn EtcdConn;

typedef struct EtcdEndpoint {
        char *url;
        char *host; /* without brackets: the verified name over TLS */
        char *host_header;
        bool https;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        EtcdConn *conns;   /* for unary calls */
        size_t n_conns;
        EtcdCall *queue;   /* unary calls waiting for a connection, oldest first */
        EtcdCall *queue_tail;
} EtcdEndpoint;

typedef enum ConnState {
        CONN_CONNECTING, /* TCP connect and TLS handshake */
        CONN_IDLE,
        CONN_HEAD, /* a request went out: waiting for the answer's head */
        CONN_BODY,
        CONN_CLOSED, /* in the client's list of the dead */
} ConnState;

struct EtcdConn {
        EtcdClient *client;
        size_t endpoint;
        Stream stream;
        ConnState state;
        bool watch;       /* a watch's own connection */
        EtcdCall *call;   /* the call on it, or NULL */
        unsigned status;  /* of the answer being read */
        unsigned served;  /* answers it gave before the one under way */
        bool keep_alive;
        bool streaming;   /* the answer is a watch's stream of lines */
        HttpBodyState body;
        struct evbuffer *content; /* the answer's body (dechunked) */
        uint64_t idle_usec;
        EtcdConn *next, *prev;
};

struct EtcdCall {
        unsigned magic;
        EtcdClient *client;
        size_t endpoint;
        char *path;
        char *body;
        bool watch;
        bool authenticating;  /* the request under way is /v3/auth/authenticate */
        bool reauthenticated; /* its token was refused once (expired) and a new one taken */
        bool retried;         /* sent once on a kept connection that turned out closed */
        bool dead;            /* ended or cancelled: in the client's list of the dead */
        bool queued;
        uint64_t seq; /* when it was queued: those before a failure share it */
        EtcdConn *conn;
        struct event *timer; /* the call's deadline; a watch's until its head */
        struct evbuffer *lines; /* a watch: what came and is not a whole line yet */
        EtcdCallDone done;
        EtcdWatchLine on_line;
        void *userdata;
        EtcdCall *next, *prev;
};

struct EtcdClient {
        struct event_base *base;
        EtcdEndpoint *endpoints;
        size_t n_endpoints;
        struct timeval timeout;
        TlsClient *tls; /* NULL without https:// endpoints */
        char *username, *password;
        char *token; /* from /v3/auth/authenticate; NULL until then, or after it was refused */
        EtcdCall *calls; /* live, not queued */
        EtcdCall *dead;
        EtcdConn *dead_conns;
        struct event *reap; /* frees the dead */
        struct event *kick; /* gives waiting calls their connections */
        uint64_t n_connects;
        uint64_t next_seq;
};

/* ---- lists ---- */

#define LIST_UNLINK(head, x)                                                                   \
        do {                                                                                   \
                if ((x)->prev)                                                                 \
                        (x)->prev->next = (x)->next;                                           \
                else                                                                           \
                        (head) = (x)->next;                                                    \
                if ((x)->next)                                                                 \
                        (x)->next->prev = (x)->prev;                                           \
                (x)->next = (x)->prev = NULL;                                                  \
        } while (0)

#define LIST_PUSH(head, x)                                                                     \
        do {                                                                                   \
                (x)->prev = NULL;                                                              \
                (x)->next = (head);                                                            \
                if (head)                                                                      \
                        (head)->prev = (x);                                                    \
                (head) = (x);                                                                  \
        } while (0)

/* etcd-client.c: the call ends for its caller, `done` called (its connection detached first, or
 * closed with it). */
void etcd_call_finish(EtcdCall *call, int r, unsigned status, const char *body, size_t len);
/* Puts the call back at the head of its endpoint's queue, for another connection. */
void etcd_call_retry(EtcdCall *call);
/* Waiting calls get connections on the next turn of the loop. */
void etcd_client_kick(EtcdClient *c);
/* The dead (calls, connections) are freed on the next turn of the loop. */
void etcd_client_reap_later(EtcdClient *c);

/* etcd-conn.c */
int etcd_conn_open(EtcdClient *c, size_t endpoint, bool watch, EtcdConn **ret);
/* Puts a call on a connection: the request goes out now, or once connected. */
int etcd_conn_take(EtcdConn *conn, EtcdCall *call);
/* Closes the socket now; the memory goes on the next turn. The call on it, if any, is detached
 * and not told: the caller does that. */
void etcd_conn_close(EtcdConn *conn);
