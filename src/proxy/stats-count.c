/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "lb/stats.h"
#include "proxy/conn-client.h"
#include "proxy/exchange-internal.h"
#include "proxy/stats-count.h"
#include "proxy/worker.h"

static atomic_uint_fast64_t *cells_of(Worker *w, StatsKind kind, uint32_t a, uint32_t b,
                                      unsigned code)
{
        if (!w->counters)
                return NULL;
        return stats_table_get(&w->counters->stats, stats_key(kind, a, b, code));
}

static uint32_t slot_of(const RegistryEntry *e)
{
        return e ? e->slot + 1 : 0;
}

/* + 1, as slots are: the workers' listeners are one array, the shared one. */
static uint32_t listener_index(const ClientConn *c)
{
        const WorkerShared *s = c->worker->shared;
        assert(c->listener >= s->listeners && c->listener < s->listeners + s->n_listeners);
        return (uint32_t)(c->listener - s->listeners) + 1;
}

void stats_count_exchange(Exchange *x, uint64_t now)
{
        Worker *w = x->worker;
        if (!w->counters)
                return;
        const StatsBuckets *b = w->counters->stats.buckets;
        uint32_t upstream = x->upstream ? slot_of(x->upstream->state) : 0;
        atomic_uint_fast64_t *c;

        if (x->kind == EXCHANGE_STREAM) {
                c = cells_of(w, STATS_LISTENER, listener_index(x->client), upstream, 0);
                if (!c)
                        return;
                stats_add(c, STATS_LISTENER_SESSIONS, 1);
                stats_add(c, STATS_LISTENER_BYTES_IN, x->request_bytes);
                stats_add(c, STATS_LISTENER_BYTES_OUT, x->response_bytes);
                return;
        }

        uint32_t route = x->route ? slot_of(x->route->state) : 0;
        /* The node answered when its response head came; else the status is lbproxy's. */
        uint32_t target = x->node && x->response_head_done ? slot_of(x->node->state)
                          : upstream                        ? upstream | STATS_B_UPSTREAM
                                                            : 0;
        c = cells_of(w, STATS_REQUESTS, route, target, x->status);
        if (c)
                stats_add(c, 0, 1);
        c = cells_of(w, STATS_ROUTE, route, upstream, 0);
        if (c) {
                stats_add(c, 0, x->request_bytes);
                stats_add(c, 1, x->response_bytes);
                stats_observe(b, c, 2, now - x->start_usec);
        }
}

void stats_count_refused(ClientConn *c, unsigned status)
{
        atomic_uint_fast64_t *cells = cells_of(c->worker, STATS_REQUESTS, 0, 0, status);
        if (cells)
                stats_add(cells, 0, 1);
}

void stats_count_client(ClientConn *c, bool closed)
{
        if (!c->worker->counters)
                return;
        atomic_uint_fast64_t *cells = cells_of(c->worker, STATS_LISTENER, listener_index(c), 0, 0);
        if (cells)
                stats_add(cells, closed ? STATS_LISTENER_CLOSED : STATS_LISTENER_ACCEPTED, 1);
}

atomic_uint_fast64_t *stats_node_cells(Worker *w, const Node *n)
{
        return cells_of(w, STATS_NODE, 0, slot_of(n->state), 0);
}

void stats_count_connect(Worker *w, atomic_uint_fast64_t *c, bool ok, uint64_t usec)
{
        if (!c)
                return;
        if (!ok) {
                stats_add(c, STATS_NODE_FAILED, 1);
                return;
        }
        const StatsBuckets *b = w->counters->stats.buckets;
        stats_add(c, STATS_NODE_OPENED, 1);
        stats_observe(b, c, STATS_NODE_HISTOGRAMS + stats_histogram_cells(b), usec);
}

void stats_count_first_byte(Worker *w, atomic_uint_fast64_t *c, uint64_t usec)
{
        if (c)
                stats_observe(w->counters->stats.buckets, c, STATS_NODE_HISTOGRAMS, usec);
}

void stats_count_tls(Worker *w, bool server, int outcome)
{
        atomic_uint_fast64_t *c = cells_of(w, STATS_WORKER, 0, 0, 0);
        if (!c)
                return;
        size_t cell = outcome < 0 ? (server ? STATS_WORKER_TLS_FAILED_SERVER
                                            : STATS_WORKER_TLS_FAILED_CLIENT)
                      : server    ? (outcome ? STATS_WORKER_TLS_SERVER_RESUMED
                                             : STATS_WORKER_TLS_SERVER_FULL)
                                  : (outcome ? STATS_WORKER_TLS_CLIENT_RESUMED
                                             : STATS_WORKER_TLS_CLIENT_FULL);
        stats_add(c, cell, 1);
}
