/* SPDX-License-Identifier: MIT */

/* Smooth weighted round robin, nginx's algorithm: every pick adds each item's weight to its
 * current value, takes the largest, and subtracts the total from the winner. Over any run of
 * sum(weights) picks each item is chosen exactly weight times, spread evenly (3:1 gives
 * a a b a a a b a ..., never a a a b in bursts beyond what the weights force).
 *
 * The sequence depends on nothing but the weights, and repeats with period sum(weights) (of the
 * weights divided by their greatest common divisor): it is computed once, when the balancer is
 * built, and a pick is the entry at an atomic ticket taken by fetch-and-add. One sequence for
 * every worker, so splits stay exact (25:25, 30:10), O(1) a pick for any weights, and no lock.
 * Equal weights need no schedule at all: the sequence is 0, 1, ..., n-1. Weights whose reduced
 * sum exceeds SWRR_SCHEDULE_MAX (a schedule of more than 256 KiB) fall back to running the
 * algorithm under a lock, O(n) a pick. */

#include <pthread.h>

#include "base/util.h"
#include "lb/balancer.h"

#define SWRR_SCHEDULE_MAX 65536

typedef struct SwrrState {
        bool uniform;      /* all weights equal and > 0: the schedule is the rotation */
        size_t len;        /* of the schedule; 0 with no weight or in the fallback */
        /* The fallback: the algorithm itself, under a lock. */
        bool locked;
        pthread_mutex_t lock;
        int64_t *current;
        uint32_t schedule[];
} SwrrState;

static uint64_t gcd(uint64_t a, uint64_t b)
{
        while (b) {
                uint64_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

/* One step of the algorithm over `weights`, skipping items marked in `skip` and, with `b`,
 * those whose health says no (then *down tells whether a down one was passed over). */
static ssize_t swrr_step(const uint32_t *weights, size_t n, int64_t *current, const uint64_t *skip,
                         Balancer *b, const BalancerRequest *req, bool *down)
{
        int64_t total = 0;
        ssize_t best = -ENOENT;
        uint64_t now = 0;

        for (size_t i = 0; i < n; i++) {
                if (weights[i] == 0 || bitmap_test(skip, i))
                        continue;
                if (b && !balancer_item_health(b, i, req, false, &now, down))
                        continue;
                current[i] += weights[i];
                total += weights[i];
                if (best < 0 || current[i] > current[best])
                        best = (ssize_t)i;
        }
        if (best >= 0)
                current[best] -= total;
        return best;
}

static int swrr_init(Balancer *b)
{
        size_t n = b->n;
        uint64_t g = 0, total = 0;
        bool uniform = n > 0 && b->weights[0] > 0;

        for (size_t i = 0; i < n; i++) {
                g = gcd(b->weights[i], g);
                uniform = uniform && b->weights[i] == b->weights[0];
        }
        for (size_t i = 0; g > 0 && i < n; i++)
                total += b->weights[i] / g;
        bool scheduled = !uniform && total > 0 && total <= SWRR_SCHEDULE_MAX;

        SwrrState *st = calloc(1, sizeof(SwrrState) + (scheduled ? total : 0) * sizeof(uint32_t));
        if (!st)
                return -ENOMEM;
        b->state = st;
        st->uniform = uniform;
        st->current = calloc(n + 1, sizeof(int64_t));
        if (!st->current)
                return -ENOMEM;
        if (uniform)
                st->len = n;
        else if (scheduled) {
                _cleanup_free_ uint32_t *reduced = calloc(n + 1, sizeof(uint32_t));
                if (!reduced)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        reduced[i] = (uint32_t)(b->weights[i] / g);
                /* Weights scaled by one factor give the same sequence: the period is shorter. */
                for (size_t k = 0; k < total; k++)
                        st->schedule[k] = (uint32_t)swrr_step(reduced, n, st->current, NULL, NULL,
                                                               NULL, NULL);
                st->len = total;
        } else if (total > 0) {
                st->locked = true;
                pthread_mutex_init(&st->lock, NULL);
                memset(st->current, 0, n * sizeof(int64_t));
        }
        return 0;
}

static void swrr_done(Balancer *b)
{
        SwrrState *st = b->state;

        if (st->locked)
                pthread_mutex_destroy(&st->lock);
        free(st->current);
        free(st);
        b->state = NULL;
}

static inline size_t schedule_at(const SwrrState *st, uint64_t t)
{
        return st->uniform ? (size_t)(t % st->len) : st->schedule[t % st->len];
}

/* The first item from a place of the rotation that may take the request, slow start's share
 * aside, or what balancer_none() says. */
static ssize_t swrr_scan(Balancer *b, const BalancerRequest *req, size_t from, uint64_t *now,
                         bool *down)
{
        for (size_t k = 0; k < b->n; k++) {
                size_t i = (from + k) % b->n;
                if (b->weights[i] > 0 && !bitmap_test(req->skip, i) &&
                    balancer_item_health(b, i, req, false, now, down))
                        return (ssize_t)i;
        }
        return balancer_none(*down);
}

static ssize_t swrr_pick(Balancer *b, const BalancerRequest *req)
{
        SwrrState *st = b->state;
        uint64_t now = 0;
        bool down = false;

        if (st->locked) {
                pthread_mutex_lock(&st->lock);
                ssize_t i = swrr_step(b->weights, b->n, st->current, req->skip, b, req, &down);
                pthread_mutex_unlock(&st->lock);
                return i >= 0 ? i : balancer_none(down);
        }
        if (st->len == 0)
                return -ENOENT;

        /* Items passed over (tried by this request, down, draining, ramping up) give their
         * ticket away: each ticket serves one pick, so over a period of the schedule every
         * item left takes exactly its weight's share, whatever worker picks. A period holds
         * every item; past one (or a bound, for long schedules of a few heavy items) the
         * first item that may take it does. */
        size_t tries = st->len < 2 * b->n + 64 ? st->len : 2 * b->n + 64;
        uint64_t t = 0;
        for (size_t k = 0; k < tries; k++) {
                t = atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed);
                size_t i = schedule_at(st, t);
                if (!bitmap_test(req->skip, i) && balancer_item_health(b, i, req, true, &now, &down))
                        return (ssize_t)i;
        }
        return swrr_scan(b, req, schedule_at(st, t), &now, &down);
}

const BalancerOps balancer_swrr_ops = {
        .name = "roundrobin",
        .init = swrr_init,
        .done = swrr_done,
        .pick = swrr_pick,
};
