/* SPDX-License-Identifier: MIT */

/* Least connections: the node with the lowest (requests in flight + 1) / weight, counted over
 * every worker (the counts are the registry's atomics, one per node on its own cache line, so
 * a pick on one worker sees what the others sent). Ties are broken by round robin: the scan
 * starts at the next place of a rotating ticket and keeps the first of the lowest, so equal
 * loads (an idle upstream) still rotate. A failing node is left alone while healthy ones exist
 * (else, answering fastest with a refusal, it would draw every request), but one request may
 * find out whether it is back once BALANCER_RETRY_FAILING_USEC passed.
 *
 * A pick reads every node's count: O(n), without a lock. Scores are compared as
 * (a + 1) * w_b < (b + 1) * w_a, in integers. */

#include "base/util.h"
#include "lb/balancer.h"

/* Whether item i (load li, weight wi) scores below item j. */
static inline bool lower(uint64_t li, uint64_t wi, uint64_t lj, uint64_t wj)
{
        return (li + 1) * wj < (lj + 1) * wi;
}

static ssize_t least_conn_pick(Balancer *b, const BalancerRequest *req)
{
        size_t n = b->n;
        uint64_t now = 0;
        ssize_t best = -ENOENT, fallback = -ENOENT;
        uint64_t best_load = 0, fallback_load = 0;

        size_t start = (size_t)(atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed) % n);
        for (size_t k = 0; k < n; k++) {
                size_t i = start + k < n ? start + k : start + k - n;
                uint32_t w = b->weights[i];
                if (w == 0 || bitmap_test(req->skip, i))
                        continue;
                uint64_t load = registry_in_flight(b->entries[i]);
                if (fallback < 0 || lower(load, w, fallback_load, b->weights[fallback])) {
                        fallback = (ssize_t)i;
                        fallback_load = load;
                }
                if (!balancer_entry_available(b->entries[i], &now))
                        continue;
                if (best < 0 || lower(load, w, best_load, b->weights[best])) {
                        best = (ssize_t)i;
                        best_load = load;
                }
        }
        return best >= 0 ? best : fallback;
}

const BalancerOps balancer_least_conn_ops = {
        .name = "least_conn",
        .pick = least_conn_pick,
        .needs_entries = true,
};
