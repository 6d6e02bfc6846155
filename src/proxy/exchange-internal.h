/* SPDX-License-Identifier: MIT */
#pragma once

/* What the exchange files share: exchange.c (HTTP requests), exchange-connect.c (picking nodes,
 * DNS waits, connecting, retries) and exchange-stream.c (tcp and tls-passthrough sessions,
 * WebSocket tunnels). Not for other modules: they use exchange.h. */

#include "http/http-body.h"
#include "lb/model.h"
#include "net/resolver.h"
#include "net/tunnel.h"
#include "proxy/conn-client.h"
#include "proxy/conn-upstream.h"
#include "proxy/exchange.h"
#include "proxy/worker.h"

typedef struct Tunnel Tunnel;

typedef enum ExchangeKind {
        EXCHANGE_HTTP,   /* a request and its response */
        EXCHANGE_STREAM, /* a tcp or tls-passthrough connection: bytes both ways */
} ExchangeKind;

struct Exchange {
        ExchangeKind kind;
        ClientConn *client;
        Worker *worker;
        Model *model; /* the snapshot this request started with */
        Route *route;
        Upstream *upstream;
        Node *node;
        RegistryEntry *in_flight_at; /* the node whose requests in flight count this one */
        size_t in_flight_index;      /* its place in the upstream's nodes (and balancer) */
        NodeAddress address; /* valid when has_address */
        bool has_address;
        ResolveWaiter dns_wait; /* while the node's name has no first answer */
        struct event *dns_timer;
        UpstreamConn *up;
        uint64_t start_usec;
        uint64_t balance_key;  /* chash: the request's key, hashed (balance-key.c) */
        uint64_t attempt_usec; /* the connect began, or the request went to the connection: the
                                * clock of the connect and response durations, and of ewma */
        atomic_uint_fast64_t *node_stats; /* the node's cells in the worker's stats table */
        bool first_byte_seen;  /* of the response: counted */

        char *head; /* the request head as sent upstream, kept for a retry */
        size_t head_len;
        size_t host_at; /* where the node's Host line goes, or SIZE_MAX */
        char *method; /* copies for the log and for reading the response */
        size_t method_len;
        char *path;
        size_t path_len;
        bool idempotent;
        bool client_keep_alive;

        HttpBodyState request;
        bool request_sent; /* head written upstream */
        uint64_t request_bytes;

        bool response_head_done;
        HttpBodyState response;
        bool response_started; /* bytes went to the client: no status page can follow */
        bool response_keep_alive;
        bool upstream_paused;  /* not reading upstream until the client drains */
        unsigned status;
        uint64_t response_bytes;

        unsigned attempts;
        bool fresh_retry_done;
        uint64_t *tried; /* bitmap over the upstream's nodes */
        uint64_t tried_inline;
        int last_error;
        bool last_timed_out;
        const char *error; /* why it failed, for the log */
        char error_detail[256];

        /* Tunnels: tcp and tls-passthrough sessions, and WebSocket after a 101. */
        Tunnel *tunnel;
        const char *label;  /* what the log calls the route of a stream session (listener) */
        bool use_tls;       /* towards the upstream */
        bool upgrade;       /* the request asked for a WebSocket on a route that allows it */
        uint64_t idle_usec; /* of the tunnel */
        Exchange *next_spare; /* while kept by the worker for reuse */
};

typedef enum AttemptMode {
        ATTEMPT_NEXT_NODE,  /* the balancer picks a node not tried yet */
        ATTEMPT_SAME_NODE,  /* the node picked before (its name has just resolved) */
        ATTEMPT_SAME_FRESH, /* the node picked before, on a new connection, never a pooled one */
} AttemptMode;

/* A zeroed exchange: one kept by the worker when it has one. An Exchange is over a kilobyte,
 * which misses glibc's per-thread cache: a fresh calloc and free cost more than the rest of
 * starting a request. */
Exchange *exchange_alloc(Worker *w);
void exchange_free(Exchange *x);
const ConfigUpstream *exchange_upstream_config(const Exchange *x);
void exchange_log(Exchange *x);
/* The request was answered (a whole response, or a stream session that ended): counted for
 * its worker, node, upstream and route. */
void exchange_count_answered(Exchange *x);
/* Fails the request: a status page when nothing was sent yet (HTTP), else the client
 * connection is cut. Frees the exchange. */
void exchange_fail(Exchange *x, unsigned status, const char *error, const char *text);
const char *exchange_errno_text(int error);

/* exchange-connect.c */
/* ewma: the node answered (its response head came) or failed the request: a latency sample. */
void exchange_report_latency(Exchange *x);
void exchange_report_failed(Exchange *x);
/* Passive health: the node answered with `status`, or failed in the way `ev` says. */
void exchange_report_status(Exchange *x, unsigned status);
void exchange_report_health(Exchange *x, HealthEvent ev);
extern const StreamHandler exchange_upstream_handler;
void exchange_rearm_timer(Exchange *x);
int exchange_run_attempts(Exchange *x, AttemptMode mode);
void exchange_attempt_failed(Exchange *x, int error, bool timed_out, bool connected);

/* exchange.c: the HTTP side, called by the upstream handler */
void exchange_http_connected(Exchange *x);
void exchange_http_upstream_read(Exchange *x);
void exchange_http_upstream_drain(Exchange *x);

/* exchange-stream.c */
void exchange_tunnel_start(Exchange *x);
