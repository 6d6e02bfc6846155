/* SPDX-License-Identifier: MIT */

/* Least connections: the node with the lowest (requests in flight + 1) / weight, counted over
 * every worker (the counts are the registry's atomics, one per node on its own cache line, so
 * a pick on one worker sees what the others sent). Ties are broken by round robin: the scan
 * starts at the next place of a rotating ticket and keeps the first of the lowest, so equal
 * loads (an idle upstream) still rotate. A node its health passes over (down, draining) is
 * left alone; one ramping up (slow start) counts with the part of its weight it has reached.
 *
 * No node can score below (m + 1) / max_weight, where m is the lowest count of them all: a
 * node of the largest weight holding m is the answer, and the scan stops at the first one. m
 * is kept as a lower bound in the upstream's entry: lowered by every request that ends on a
 * node below it (registry_node_in_flight_sub), raised to the true minimum by a scan that went
 * all the way round. So a pick is O(1) while some node of the largest weight sits at the
 * lowest count (an idle upstream, or evenly loaded equal nodes: least_conn keeps them so), and
 * O(n) when none does. Counts read while other workers change them are no snapshot: a pick is
 * exact but for requests starting or ending as it reads, and a bound raised from counts one of
 * which dropped meanwhile stands above that node's count until its next request ends.
 *
 * Scores are compared as (a + 1) * w_b < (b + 1) * w_a, in integers. */

#include "base/util.h"
#include "lb/balancer.h"

typedef struct LeastConnState {
        uint32_t max_weight;
} LeastConnState;

static int least_conn_init(Balancer *b)
{
        LeastConnState *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        for (size_t i = 0; i < b->n; i++)
                st->max_weight = b->weights[i] > st->max_weight ? b->weights[i] : st->max_weight;
        b->state = st;
        /* Nodes new to the upstream start at 0: any bound above would be wrong for them. */
        atomic_store_explicit(&b->total->min_in_flight, 0, memory_order_relaxed);
        return 0;
}

static void least_conn_done(Balancer *b)
{
        free(b->state);
        b->state = NULL;
}

/* Whether item i (load li, weight wi) scores below item j. */
static inline bool lower(uint64_t li, uint64_t wi, uint64_t lj, uint64_t wj)
{
        return (li + 1) * wj < (lj + 1) * wi;
}

static ssize_t least_conn_pick(Balancer *b, const BalancerRequest *req)
{
        const LeastConnState *st = b->state;
        size_t n = b->n;
        uint64_t now = 0;
        bool down = false;
        ssize_t best = -ENOENT;
        uint64_t best_load = 0, best_weight = 0;
        unsigned bound = atomic_load_explicit(&b->total->min_in_flight, memory_order_relaxed);
        unsigned lowest = UINT_MAX;

        size_t start = (size_t)(atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed) % n);
        for (size_t k = 0; k < n; k++) {
                size_t i = start + k < n ? start + k : start + k - n;
                unsigned load = registry_in_flight(b->entries[i]);
                lowest = load < lowest ? load : lowest;
                if (b->weights[i] == 0 || bitmap_test(req->skip, i) ||
                    !balancer_item_health(b, i, req, false, &now, &down))
                        continue;
                uint64_t w = balancer_weight_now(b, i, &now);
                if (load <= bound && w == st->max_weight)
                        return (ssize_t)i; /* none scores lower */
                if (best < 0 || lower(load, w, best_load, best_weight)) {
                        best = (ssize_t)i;
                        best_load = load;
                        best_weight = w;
                }
        }
        /* All the way round: the lowest count is known, unless a request ended meanwhile and
         * lowered the bound (the exchange fails then, and the bound stays as that one set it). */
        if (lowest != UINT_MAX && lowest > bound)
                (void)atomic_compare_exchange_strong_explicit(&b->total->min_in_flight, &bound,
                                                              lowest, memory_order_relaxed,
                                                              memory_order_relaxed);
        return best >= 0 ? best : balancer_none(down);
}

const BalancerOps balancer_least_conn_ops = {
        .name = "least_conn",
        .init = least_conn_init,
        .done = least_conn_done,
        .pick = least_conn_pick,
        .needs_entries = true,
};
