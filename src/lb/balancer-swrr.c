/* SPDX-License-Identifier: MIT */

/* Smooth weighted round robin, nginx's algorithm: every pick adds each item's weight to its
 * current value, takes the largest, and subtracts the total from the winner. Over any run of
 * sum(weights) picks each item is chosen exactly weight times, spread evenly (3:1 gives
 * a a b a a a b a ..., never a a a b in bursts beyond what the weights force). */

#include "base/util.h"
#include "lb/balancer.h"

/* With every weight equal (the common case: nodes of one kind) the smooth schedule is plain
 * rotation, 0, 1, ..., n-1, so a pick is O(1) instead of a pass over all n items; unequal weights
 * take the full algorithm. */
typedef struct SwrrState {
        bool uniform; /* all weights equal and > 0 */
        size_t next;  /* uniform: the index the rotation gives next */
        int64_t current[];
} SwrrState;

static void swrr_reset(Balancer *b)
{
        SwrrState *st = b->state;

        st->uniform = b->n > 0 && b->weights[0] > 0;
        for (size_t i = 1; i < b->n && st->uniform; i++)
                st->uniform = b->weights[i] == b->weights[0];
        st->next = 0;
        memset(st->current, 0, b->n * sizeof(int64_t));
}

static int swrr_init(Balancer *b)
{
        b->state = calloc(1, sizeof(SwrrState) + (b->n ? b->n : 1) * sizeof(int64_t));
        if (!b->state)
                return -ENOMEM;
        swrr_reset(b);
        return 0;
}

static void swrr_done(Balancer *b)
{
        free(b->state);
        b->state = NULL;
}

static ssize_t pick_uniform(Balancer *b, SwrrState *st, const uint64_t *skip)
{
        for (size_t k = 0; k < b->n; k++) {
                size_t i = (st->next + k) % b->n;
                if (bitmap_test(skip, i))
                        continue;
                st->next = (i + 1) % b->n;
                return (ssize_t)i;
        }
        return -ENOENT;
}

static ssize_t swrr_pick(Balancer *b, const uint64_t *skip)
{
        SwrrState *st = b->state;
        int64_t *current = st->current;
        int64_t total = 0;
        ssize_t best = -ENOENT;

        if (st->uniform)
                return pick_uniform(b, st, skip);

        for (size_t i = 0; i < b->n; i++) {
                if (b->weights[i] == 0 || bitmap_test(skip, i))
                        continue;
                current[i] += b->weights[i];
                total += b->weights[i];
                if (best < 0 || current[i] > current[best])
                        best = (ssize_t)i;
        }
        if (best >= 0)
                current[best] -= total;
        return best;
}

static void swrr_set_weight(Balancer *b, size_t i, uint32_t weight)
{
        /* Restart the schedule: from all-zero the picks repeat with period sum(weights), so the
         * next sum(weights) picks after a change split exactly by the new weights. Keeping the old
         * current values would carry a debt of up to one total into the new split. */
        swrr_reset(b);
}

const BalancerOps balancer_swrr_ops = {
        .name = "roundrobin",
        .init = swrr_init,
        .done = swrr_done,
        .pick = swrr_pick,
        .set_weight = swrr_set_weight,
};
