/* SPDX-License-Identifier: MIT */
#pragma once

/* Picks one of n weighted items. Each algorithm sits behind an ops table (as HAProxy's lb_ops),
 * one per balancer-*.c file: smooth weighted round robin (balancer-swrr.c), least connections
 * (balancer-least-conn.c), consistent hashing (balancer-chash.c) and peak EWMA
 * (balancer-ewma.c).
 *
 * A Balancer is shared by every worker thread, and picks take no lock: what an algorithm
 * decides from is either immutable once built (round robin's schedule, chash's ring) or atomics
 * every worker reads and writes (one ticket for round robin, so splits stay exact whatever
 * worker serves; requests in flight, health and latency in the nodes' registry entries, each
 * on a cache line of its own). Successive models share a Balancer while its items, weights and
 * options stay as they are, so a change elsewhere does not restart its schedule. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lb/health.h"
#include "lb/registry.h"

typedef struct Balancer Balancer;

/* What a pick is asked for. */
typedef struct BalancerRequest {
        const uint64_t *skip; /* a bitmap of n bits: items not to pick (tried); may be NULL */
        uint64_t key;         /* chash: the request's key, hashed (balance-key.c) */
        /* Every node is down: take them all as if healthy (Envoy's panic, APISIX's "all
         * unhealthy, use all"); drain and maint still take nothing. */
        bool panic;
} BalancerRequest;

typedef struct BalancerOps {
        const char *name; /* as the configuration says it (config_balancer_names) */
        /* Sets up algorithm state for b->n items with b->weights; NULL: none needed. */
        int (*init)(Balancer *b);
        void (*done)(Balancer *b);
        /* Returns the index picked among items with weight > 0 that are not marked in
         * req->skip and whose health allows (balancer_item_health), or -EHOSTDOWN when only
         * down ones are left (the caller picks again in panic), or -ENOENT. Runs on any worker
         * at once with others: no lock. */
        ssize_t (*pick)(Balancer *b, const BalancerRequest *req);
        /* Item i's requests in flight changed (the proxy calls it after each +1 and -1);
         * NULL: the algorithm reads the counts when it picks. Any worker, no lock. */
        void (*load_changed)(Balancer *b, size_t i);
        bool needs_entries; /* reads the items' load or latency in their registry entries */
        bool hashes_requests; /* wants BalancerRequest.key */
        bool records_latency; /* wants balancer_latency_sample() at each response head */
} BalancerOps;

/* What a Balancer is built from. */
typedef struct BalancerSpec {
        const BalancerOps *ops;
        const uint32_t *weights;
        size_t n;
        /* Per item: its node's registry entry (health; and load or latency with
         * ops->needs_entries); NULL for items that are no nodes (a route's upstreams). The
         * entries outlive the Balancer: every model object sharing it holds them. */
        RegistryEntry *const *entries;
        HealthPickPolicy health; /* with entries */
        /* With ops->needs_entries: the upstream's entry, whose requests in flight are those of
         * all the items together (and the one being picked for): chash's bounded loads; and
         * the way to the registry (least_conn's health epoch). */
        RegistryEntry *total;
        /* Per item, for chash: what places it on the ring ("host:port" as configured), so a
         * node keeps its points whatever else is added or removed. */
        const char *const *names;
        /* chash: bounded loads, a node takes at most this percentage of the average load
         * (requests in flight per unit of weight); 0 = unbounded. */
        unsigned hash_balance_factor;
} BalancerSpec;

struct Balancer {
        unsigned n_ref; /* the model objects sharing it; taken and dropped on one thread */
        const BalancerOps *ops;
        size_t n;
        uint32_t *weights;
        RegistryEntry **entries; /* per item, or NULL (a route's) */
        HealthPickPolicy health;
        RegistryEntry *total;    /* with entries */
        char **names;            /* NULL unless chash */
        unsigned hash_balance_factor;
        uint64_t total_weight;
        /* Round robin's place in its schedule, and the tie-breaker of the others: one atomic
         * for every worker, on a line of its own. */
        alignas(REGISTRY_CACHE_LINE) atomic_uint_fast64_t ticket;
        alignas(REGISTRY_CACHE_LINE) void *state; /* the algorithm's, immutable once built */
};

extern const BalancerOps balancer_swrr_ops;
extern const BalancerOps balancer_least_conn_ops;
extern const BalancerOps balancer_chash_ops;
extern const BalancerOps balancer_ewma_ops;

/* Finds ops by configuration name ("roundrobin"), or NULL. */
const BalancerOps *balancer_ops_find(const char *name);

int balancer_new(const BalancerSpec *spec, Balancer **ret);
Balancer *balancer_ref(Balancer *b);
/* Drops a reference; the last one frees it. */
Balancer *balancer_free(Balancer *b);
/* Whether `b` was built from exactly this spec (a schedule a new model may share). */
bool balancer_same(const Balancer *b, const BalancerSpec *spec);

ssize_t balancer_pick(Balancer *b, const BalancerRequest *req);

/* Item i's requests in flight went up or down by one (after the registry's count changed). */
static inline void balancer_load_changed(Balancer *b, size_t i)
{
        if (b->ops->load_changed && b->n > 1)
                b->ops->load_changed(b, i);
}

/* ewma: a response head arrived `usec` after the request went to the node of `e`; a failed
 * request is recorded as BALANCER_EWMA_FAILURE_USEC. Any worker, no lock. */
#define BALANCER_EWMA_FAILURE_USEC (10 * USEC_PER_SEC)
void balancer_latency_sample(RegistryEntry *e, uint64_t usec, uint64_t now_usec);

/* Whether item i may take this request as far as its node's health and admin state say (see
 * health_pick); a down item passed over sets *down. `thin`: slow start passes the item over
 * for part of the picks (round robin, chash); the others scale its weight
 * (balancer_weight_now). `*now` is read at most once per pick. */
static inline bool balancer_item_health(Balancer *b, size_t i, const BalancerRequest *req,
                                        bool thin, uint64_t *now, bool *down)
{
        if (!b->entries)
                return true;
        HealthPick p = health_pick(b->entries[i], &b->health, req->panic, thin, now);
        if (p == HEALTH_PICK_DOWN)
                *down = true;
        return p == HEALTH_PICK_YES;
}

/* Item i's weight now: less while it ramps up (slow start), never below 1. */
static inline uint64_t balancer_weight_now(Balancer *b, size_t i, uint64_t *now)
{
        uint64_t w = b->weights[i];
        if (!b->entries ||
            !(atomic_load_explicit(&b->entries[i]->health, memory_order_relaxed) & HEALTH_SLOW_START))
                return w;
        uint64_t scaled = w * health_slow_start_permille(b->entries[i], &b->health, now) / 1000;
        return scaled > 0 ? scaled : 1;
}

/* What a pick that found nothing returns: -EHOSTDOWN when it passed over down items. */
static inline ssize_t balancer_none(bool down)
{
        return down ? -EHOSTDOWN : -ENOENT;
}

/* The finalizer of splitmix64: spreads a hash (FNV's low bits are weak) over 64 bits. */
static inline uint64_t balancer_mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        return x ^ (x >> 31);
}

#define BITMAP_WORDS(n) (((n) + 63) / 64)
static inline bool bitmap_test(const uint64_t *bm, size_t i)
{
        return bm && (bm[i / 64] >> (i % 64)) & 1;
}
static inline void bitmap_set(uint64_t *bm, size_t i)
{
        bm[i / 64] |= UINT64_C(1) << (i % 64);
}
