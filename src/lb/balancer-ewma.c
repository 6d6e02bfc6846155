/* SPDX-License-Identifier: MIT */

/* Peak EWMA of response time, picked by the power of two choices (as APISIX's ewma, after
 * Finagle's): each node keeps an average of the time its responses took to start, which jumps
 * up at once to a sample above it (peak) and otherwise moves towards the samples by
 * exp(-elapsed / 10 s). A pick draws two nodes at random among those it may take and takes the
 * one with the lower cost: the average decayed to now (a node nobody picks drifts back towards
 * zero and gets tried again), times its requests in flight plus one, divided by its weight
 * (APISIX ignores weights; we do not). A node never measured costs nothing, so new nodes are
 * tried first. A request that failed on a node counts as a sample of
 * BALANCER_EWMA_FAILURE_USEC: the node scores as slow.
 *
 * The average and its time stamp are two atomics in the node's registry entry, on the line of
 * its requests in flight, written by whichever worker got the response: two workers writing at
 * once may lose one sample of the two, which an average shrugs off; no lock. O(1) a pick. */

#include <math.h>

#include "base/util.h"
#include "lb/balancer.h"

#define EWMA_DECAY_USEC (10.0 * USEC_PER_SEC)

void balancer_latency_sample(RegistryEntry *e, uint64_t usec, uint64_t now)
{
        uint64_t peak = atomic_load_explicit(&e->latency_peak_nsec, memory_order_relaxed);
        uint64_t stamp = atomic_load_explicit(&e->latency_stamp_usec, memory_order_relaxed);
        double rtt = (double)usec * 1000.0, ewma = rtt;

        if (stamp != 0 && rtt < (double)peak) {
                double w = exp(-(double)(now > stamp ? now - stamp : 0) / EWMA_DECAY_USEC);
                ewma = (double)peak * w + rtt * (1.0 - w);
        }
        atomic_store_explicit(&e->latency_peak_nsec, (uint64_t)ewma, memory_order_relaxed);
        atomic_store_explicit(&e->latency_stamp_usec, now ? now : 1, memory_order_relaxed);
}

static double cost(Balancer *b, size_t i, uint64_t now)
{
        const RegistryEntry *e = b->entries[i];
        uint64_t peak = atomic_load_explicit(&e->latency_peak_nsec, memory_order_relaxed);
        uint64_t stamp = atomic_load_explicit(&e->latency_stamp_usec, memory_order_relaxed);
        double decayed = (double)peak * exp(-(double)(now > stamp ? now - stamp : 0) /
                                            EWMA_DECAY_USEC);
        return decayed * (registry_in_flight(e) + 1) / (double)balancer_weight_now(b, i, &now);
}

/* A per-thread generator (splitmix64): the draws need to be cheap, not secret. */
static uint64_t draw(void)
{
        static _Thread_local uint64_t state;
        if (state == 0)
                state = now_usec(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)&state;
        state += UINT64_C(0x9e3779b97f4a7c15);
        return balancer_mix64(state);
}

static inline bool eligible(Balancer *b, size_t i, const BalancerRequest *req, uint64_t *now,
                            bool *down)
{
        return b->weights[i] > 0 && !bitmap_test(req->skip, i) &&
               balancer_item_health(b, i, req, false, now, down);
}

/* The first eligible item at or after `from` (wrapping), other than `not`, or -ENOENT. */
static ssize_t eligible_from(Balancer *b, size_t from, ssize_t not, const BalancerRequest *req,
                             uint64_t *now, bool *down)
{
        for (size_t k = 0; k < b->n; k++) {
                size_t i = from + k < b->n ? from + k : from + k - b->n;
                if ((ssize_t)i != not && eligible(b, i, req, now, down))
                        return (ssize_t)i;
        }
        return -ENOENT;
}

static ssize_t ewma_pick(Balancer *b, const BalancerRequest *req)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool down = false;
        ssize_t x = eligible_from(b, draw() % b->n, -1, req, &now, &down);
        if (x < 0)
                return balancer_none(down);
        ssize_t y = eligible_from(b, draw() % b->n, x, req, &now, &down);
        if (y < 0)
                return x;
        double cx = cost(b, (size_t)x, now), cy = cost(b, (size_t)y, now);
        if (cx != cy)
                return cx < cy ? x : y;
        return registry_in_flight(b->entries[y]) < registry_in_flight(b->entries[x]) ? y : x;
}

const BalancerOps balancer_ewma_ops = {
        .name = "ewma",
        .pick = ewma_pick,
        .needs_entries = true,
        .records_latency = true,
};
