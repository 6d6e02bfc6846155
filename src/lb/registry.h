/* SPDX-License-Identifier: MIT */
#pragma once

/* Runtime state that outlives models: one entry per node (upstream, host, port), upstream and
 * route, found by name. A Model's Node, Upstream and Route point at their entry, so a swap (a
 * reload, a D-Bus change) finds the same entry by name and loses nothing: requests that finish
 * on the old model count where the new one reads, a failure reported on the old model is the
 * new one's health. An entry lives while some model's object refers to it; one whose object
 * went away is dropped with the last model that had it, and comes back fresh.
 *
 * What a request changes is written where no other thread writes:
 * - counters (requests, bytes, the latency average) are per worker: each worker has its own
 *   block of counters per entry, indexed by the entry's slot, written by that worker alone and
 *   summed when read (D-Bus, STATUS);
 * - requests in flight must be exact and readable at once (ActiveConnections now, least_conn's
 *   picks later): one atomic per node and per upstream, alone on its cache line, so it is
 *   shared only by the requests to that node;
 * - health is written when it changes, which a healthy node never does.
 *
 * Entries are made, found and dropped on the control thread (where models are built and
 * freed); workers only count into entries of the models they hold. */

#include <assert.h>
#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "lb/node-address-health.h"
#include "lb/stats.h"

typedef struct Registry Registry;

typedef enum RegistryKind {
        REGISTRY_NODE,
        REGISTRY_UPSTREAM,
        REGISTRY_ROUTE,
} RegistryKind;

#define REGISTRY_CACHE_LINE 64

typedef struct RegistryEntry {
        Registry *registry;
        char *key; /* kind, then the names, NUL-separated (see entry_key()) */
        size_t key_len;
        unsigned n_ref; /* the model objects that point here; control thread only */
        uint32_t slot;  /* of its counters in every worker's blocks */
        RegistryKind kind;
        bool fresh; /* made by the model being built (not found): control thread */
        /* Nodes: health (lb/health.c). The word packs the counters of events in a row, down,
         * the admin state and slow start, so that a pick reads one word and finds it 0 while
         * all is well; only a change of state writes it. */
        atomic_uint_fast64_t health;
        atomic_uint_fast64_t health_since_usec; /* CLOCK_REALTIME of the last transition */
        atomic_uint_fast64_t trial_at_usec; /* down, passive only: when the next trial may go */
        atomic_uint_fast64_t up_since_usec; /* slow start: when it came up (CLOCK_MONOTONIC) */
        atomic_uint slow_start_seen;       /* picks that fell on it while ramping */
        atomic_bool panic; /* upstreams: every node down, all are used (upstream_in_panic) */
        /* Nodes named by DNS: the addresses active checks found down (the prober writes). */
        alignas(REGISTRY_CACHE_LINE) NodeAddressHealth address_health;
        /* Written by every request to the node or upstream: a line of its own. The balancers
         * read it there (least_conn's counts, chash's bounded loads, ewma's latency), shared by
         * every worker, so a pick sees what all of them sent. */
        alignas(REGISTRY_CACHE_LINE) atomic_uint in_flight;
        /* Nodes, with balancer: least_conn: the balancer's ticket when it last picked the node
         * (equal scores go to the least recent). */
        atomic_uint_fast64_t pick_stamp;
        /* Nodes, with balancer: ewma: the peak EWMA of response time (ns) and when it was last
         * touched (CLOCK_MONOTONIC, µs); see balancer-ewma.c. */
        atomic_uint_fast64_t latency_peak_nsec;
        atomic_uint_fast64_t latency_stamp_usec;
} RegistryEntry;

/* One worker's counters of an entry. Only that worker writes them (load, add, store: no locked
 * instruction), anyone may read them. */
typedef struct RegistryCounters {
        atomic_uint_fast64_t requests;  /* answered (a whole response, or a stream session) */
        atomic_uint_fast64_t bytes_in;  /* of requests, as sent to the node */
        atomic_uint_fast64_t bytes_out; /* of responses, as sent to the client */
        /* Nodes: an exponentially weighted moving average of the time a request took, from
         * its start to its response's end, in 1/16 µs; 0 before the first. */
        atomic_uint_fast64_t latency_ewma;
} RegistryCounters;

/* Slots come in chunks, allocated for every worker when the first slot of one is handed out,
 * and never moved: a worker indexes them without a lock. */
#define REGISTRY_CHUNK_SLOTS 1024
#define REGISTRY_MAX_CHUNKS 4096 /* 4 million entries */

typedef struct RegistryWorker {
        /* By label combination (stats.h): requests by status code, histograms, connections. */
        StatsTable stats;
        RegistryCounters *chunks[REGISTRY_MAX_CHUNKS];
} RegistryWorker;

int registry_new(Registry **ret);
/* The histograms' buckets (default: stats_buckets_default()); before any worker attaches. */
void registry_set_buckets(Registry *r, const StatsBuckets *b);
const StatsBuckets *registry_buckets(const Registry *r);
/* The workers' blocks, for reading (the scrape): set before the workers start, not changed
 * while they run. */
size_t registry_n_workers(const Registry *r);
RegistryWorker *registry_worker(const Registry *r, size_t id);
/* After the models: the entries go with it. */
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

/* The entry of a node, an upstream or a route: a new reference on the one that exists, or a
 * fresh entry. Control thread. */
int registry_node(Registry *r, const char *upstream, const char *host, uint16_t port,
                  RegistryEntry **ret);
int registry_upstream(Registry *r, const char *name, RegistryEntry **ret);
int registry_route(Registry *r, const char *name, RegistryEntry **ret);
/* Looks up without taking a reference, or NULL (for tests). */
RegistryEntry *registry_find_node(Registry *r, const char *upstream, const char *host,
                                  uint16_t port);
size_t registry_size(const Registry *r);

RegistryEntry *registry_entry_ref(RegistryEntry *e);
/* Drops a reference; the last one forgets the entry and zeroes its counters. Control thread. */
RegistryEntry *registry_entry_unref(RegistryEntry *e);

/* Worker `id`'s counter blocks, made for the entries that exist and those to come. On the
 * control thread, before the worker counts. */
int registry_worker_attach(Registry *r, unsigned id, RegistryWorker **ret);

static inline RegistryCounters *registry_counters(RegistryWorker *w, const RegistryEntry *e)
{
        return &w->chunks[e->slot / REGISTRY_CHUNK_SLOTS][e->slot % REGISTRY_CHUNK_SLOTS];
}

/* Adds to a counter only its worker writes. */
static inline void registry_counter_add(atomic_uint_fast64_t *c, uint64_t n)
{
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* One answered request of `e` on worker `w`: its bytes, and for a node its time. */
void registry_count(RegistryWorker *w, const RegistryEntry *e, uint64_t bytes_in,
                    uint64_t bytes_out, uint64_t usec);

/* The counters of an entry summed over the workers (latency_ewma: their averages weighted by
 * their requests, in µs). Control thread. */
typedef struct RegistryTotals {
        uint64_t requests;
        uint64_t bytes_in;
        uint64_t bytes_out;
        uint64_t latency_usec;
} RegistryTotals;
void registry_entry_totals(const RegistryEntry *e, RegistryTotals *ret);

static inline unsigned registry_in_flight(const RegistryEntry *e)
{
        return atomic_load_explicit(&e->in_flight, memory_order_relaxed);
}

static inline void registry_in_flight_add(RegistryEntry *e)
{
        atomic_fetch_add_explicit(&e->in_flight, 1, memory_order_relaxed);
}

static inline void registry_in_flight_sub(RegistryEntry *e)
{
        unsigned before = atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
        (void)before;
        assert(before > 0);
}

/* Bumped at every change of a node's health or admin state, anywhere: a balancer that keeps
 * what it derived from them (least_conn's tree) sees that it must look again. Any thread. */
void registry_bump_health_epoch(Registry *r);
uint64_t registry_health_epoch(const Registry *r);
