/* SPDX-License-Identifier: MIT */

/* Smooth weighted round robin, nginx's algorithm: every pick adds each item's weight to its
 * current value, takes the largest, and subtracts the total from the winner. Over any run of
 * sum(weights) picks each item is chosen exactly weight times, spread evenly (3:1 gives
 * a a b a a a b a ..., never a a a b in bursts beyond what the weights force). */

#include "balancer.h"
#include "util.h"

static int swrr_init(Balancer *b)
{
        b->state = calloc(b->n ? b->n : 1, sizeof(int64_t));
        return b->state ? 0 : -ENOMEM;
}

static void swrr_done(Balancer *b)
{
        free(b->state);
        b->state = NULL;
}

static ssize_t swrr_pick(Balancer *b, const uint64_t *skip)
{
        int64_t *current = b->state;
        int64_t total = 0;
        ssize_t best = -ENOENT;

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
        memset(b->state, 0, b->n * sizeof(int64_t));
}

static void swrr_copy_state(Balancer *b, const Balancer *from)
{
        memcpy(b->state, from->state, b->n * sizeof(int64_t));
}

const BalancerOps balancer_swrr_ops = {
        .name = "roundrobin",
        .init = swrr_init,
        .done = swrr_done,
        .pick = swrr_pick,
        .set_weight = swrr_set_weight,
        .copy_state = swrr_copy_state,
};
