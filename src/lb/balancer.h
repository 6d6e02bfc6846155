/* SPDX-License-Identifier: MIT */
#pragma once

/* Picks one of n weighted items. The algorithm sits behind an ops table (as HAProxy's lb_ops) so
 * others can be added beside smooth weighted round robin; one algorithm per balancer-*.c file.
 *
 * A Balancer is shared by every worker thread: exact splits (25:25, 30:10) are a property of one
 * sequence of picks, so the state is one, guarded by a lock held for the pick only. Successive
 * models share it too while its items and weights stay as they are, so a change elsewhere does
 * not restart its schedule. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Balancer Balancer;

typedef struct BalancerOps {
        const char *name;
        /* Sets up algorithm state for b->n items with b->weights; called with the lock free. */
        int (*init)(Balancer *b);
        void (*done)(Balancer *b);
        /* Returns the index picked among items with weight > 0 that are not marked in `skip`
         * (a bitmap of n bits, may be NULL), or -ENOENT. Called with the lock held. */
        ssize_t (*pick)(Balancer *b, const uint64_t *skip);
        /* Takes a new weight for item i (already stored in b->weights). */
        void (*set_weight)(Balancer *b, size_t i, uint32_t weight);
} BalancerOps;

struct Balancer {
        unsigned n_ref; /* the model objects sharing it; taken and dropped on one thread */
        const BalancerOps *ops;
        pthread_mutex_t lock;
        size_t n;
        uint32_t *weights;
        void *state; /* the algorithm's */
};

extern const BalancerOps balancer_swrr_ops;

/* Finds ops by configuration name ("roundrobin"), or NULL. */
const BalancerOps *balancer_ops_find(const char *name);

int balancer_new(const BalancerOps *ops, const uint32_t *weights, size_t n, Balancer **ret);
Balancer *balancer_ref(Balancer *b);
/* Drops a reference; the last one frees it. */
Balancer *balancer_free(Balancer *b);
/* Whether `b` runs `ops` over exactly these weights (a schedule a new model may share). */
bool balancer_same(const Balancer *b, const BalancerOps *ops, const uint32_t *weights, size_t n);

ssize_t balancer_pick(Balancer *b, const uint64_t *skip);
void balancer_set_weight(Balancer *b, size_t i, uint32_t weight);

#define BITMAP_WORDS(n) (((n) + 63) / 64)
static inline bool bitmap_test(const uint64_t *bm, size_t i)
{
        return bm && (bm[i / 64] >> (i % 64)) & 1;
}
static inline void bitmap_set(uint64_t *bm, size_t i)
{
        bm[i / 64] |= UINT64_C(1) << (i % 64);
}
