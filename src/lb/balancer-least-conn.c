/* SPDX-License-Identifier: MIT */

/* Least connections: the node with the lowest (requests in flight + 1) / weight, counted over
 * every worker (the counts are the registry's atomics, one per node on its own cache line, so
 * a pick on one worker sees what the others sent). Equal scores go to the node picked least
 * recently (a stamp per node from the balancer's ticket), so equal loads (an idle upstream)
 * rotate as round robin does.
 *
 * A tournament tree keeps the answer ready: each inner node holds the index of the better of
 * its two children's winners, compared on their counts as they are now; the root holds the
 * pick. A request that starts or ends on a node changes its count and replays the matches on
 * the way up from its leaf (balancer_load_changed, from the proxy), stopping where the winner
 * stays the same other node. So a pick is O(1) (the root, checked) and a count change
 * O(log n), at most, for any weights; no lock. Replays race: two of them on one path may leave
 * a winner that another count has overtaken meanwhile, until a later replay passes there. A
 * pick is the least loaded node but for requests starting or ending as the tree is replayed,
 * as HAProxy's leastconn is but for its lock.
 *
 * What the counts do not say the tree learns as it goes: a node gone down (or draining) loses
 * every match it plays, and a pick that finds the root's winner unable to take the request
 * replays that leaf and takes the long way for itself: a scan of every node, as a retry
 * (nodes tried already) and panic do. A node's health or admin state changing anywhere bumps
 * the registry's health epoch; the next pick replays the whole tree (O(n), once). While nodes
 * are down with no active check, each pick also looks at those nodes' trials (one load each).
 * Slow start's ramping weight counts in the matches as it is when they are played.
 *
 * Scores are compared as (a + 1) * w_b < (b + 1) * w_a, in integers. */

#include <assert.h>
#include <limits.h>

#include "base/util.h"
#include "lb/balancer.h"

#define NONE UINT_MAX

typedef struct LeastConnState {
        size_t size; /* leaves: a power of two, at least n */
        /* The health epoch the tree was last replayed whole at. */
        atomic_uint_fast64_t epoch;
        /* Items down with no active check when it was (their trials are looked at). */
        size_t n_down;
        uint32_t *down;
        /* winner[k] for inner node k, 1 <= k < size; leaf k >= size is item k - size. */
        atomic_uint winner[];
} LeastConnState;

static bool takes_traffic(const Balancer *b, size_t i)
{
        uint64_t w = atomic_load_explicit(&b->entries[i]->health, memory_order_relaxed);
        return b->weights[i] > 0 && !(w & (HEALTH_DOWN | HEALTH_ADMIN_MASK));
}

static inline uint64_t stamp_of(const Balancer *b, size_t i)
{
        return atomic_load_explicit(&b->entries[i]->pick_stamp, memory_order_relaxed);
}

/* Whether item i beats item j (NONE loses to anything). */
static bool beats(Balancer *b, unsigned i, unsigned j, uint64_t *now)
{
        if (i == NONE || j == NONE)
                return j == NONE && i != NONE;
        bool ti = takes_traffic(b, i), tj = takes_traffic(b, j);
        if (ti != tj)
                return ti;
        uint64_t li = registry_in_flight(b->entries[i]), lj = registry_in_flight(b->entries[j]);
        uint64_t wi = balancer_weight_now(b, i, now), wj = balancer_weight_now(b, j, now);
        uint64_t x = (li + 1) * wj, y = (lj + 1) * wi;
        if (x != y)
                return x < y;
        uint64_t si = stamp_of(b, i), sj = stamp_of(b, j);
        return si != sj ? si < sj : i < j;
}

static inline unsigned winner_at(const Balancer *b, const LeastConnState *st, size_t k)
{
        if (k >= st->size)
                return k - st->size < b->n ? (unsigned)(k - st->size) : NONE;
        return atomic_load_explicit(&st->winner[k], memory_order_relaxed);
}

static unsigned play(Balancer *b, LeastConnState *st, size_t k, uint64_t *now)
{
        unsigned l = winner_at(b, st, 2 * k), r = winner_at(b, st, 2 * k + 1);
        unsigned w = beats(b, r, l, now) ? r : l;
        atomic_store_explicit(&st->winner[k], w, memory_order_relaxed);
        return w;
}

static void replay_all(Balancer *b, LeastConnState *st)
{
        uint64_t now = 0;
        for (size_t k = st->size - 1; k >= 1; k--)
                (void)play(b, st, k, &now);
}

static void least_conn_load_changed(Balancer *b, size_t i)
{
        LeastConnState *st = b->state;
        uint64_t now = 0;
        assert(i < b->n);
        for (size_t k = (st->size + i) / 2; k >= 1; k /= 2) {
                unsigned before = atomic_load_explicit(&st->winner[k], memory_order_relaxed);
                unsigned after = play(b, st, k, &now);
                /* Above, the matches are played by the same nodes on the same counts. */
                if (after == before && after != i)
                        break;
        }
}

/* The items down with no active check now: their trials are looked at by each pick. */
static void note_down(Balancer *b, LeastConnState *st)
{
        st->n_down = 0;
        for (size_t i = 0; b->health.trials && i < b->n; i++)
                if (atomic_load_explicit(&b->entries[i]->health, memory_order_relaxed) &
                    HEALTH_DOWN)
                        st->down[st->n_down++] = (uint32_t)i;
}

static int least_conn_init(Balancer *b)
{
        size_t size = 1;
        while (size < b->n)
                size *= 2;
        LeastConnState *st = calloc(1, sizeof(*st) + size * sizeof(atomic_uint));
        if (!st)
                return -ENOMEM;
        st->size = size;
        st->down = calloc(b->n + 1, sizeof(uint32_t));
        if (!st->down) {
                free(st);
                return -ENOMEM;
        }
        b->state = st;
        atomic_init(&st->epoch, registry_health_epoch(b->total->registry));
        note_down(b, st);
        replay_all(b, st);
        return 0;
}

static void least_conn_done(Balancer *b)
{
        LeastConnState *st = b->state;
        free(st->down);
        free(st);
        b->state = NULL;
}

/* The long way: every node, for a retry, panic, or a root that cannot take the request. */
static ssize_t scan(Balancer *b, const BalancerRequest *req, uint64_t *now, bool *down)
{
        ssize_t best = -ENOENT;
        size_t start = (size_t)(atomic_load_explicit(&b->ticket, memory_order_relaxed) % b->n);
        for (size_t k = 0; k < b->n; k++) {
                size_t i = start + k < b->n ? start + k : start + k - b->n;
                if (b->weights[i] == 0 || bitmap_test(req->skip, i) ||
                    !balancer_item_health(b, i, req, false, now, down))
                        continue;
                if (best < 0 || beats(b, (unsigned)i, (unsigned)best, now))
                        best = (ssize_t)i;
        }
        return best >= 0 ? best : balancer_none(*down);
}

static ssize_t picked(Balancer *b, size_t i)
{
        uint64_t t = atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed) + 1;
        atomic_store_explicit(&b->entries[i]->pick_stamp, t, memory_order_relaxed);
        return (ssize_t)i;
}

static ssize_t least_conn_pick(Balancer *b, const BalancerRequest *req)
{
        LeastConnState *st = b->state;
        uint64_t now = 0;
        bool down = false;

        if (b->n == 0)
                return -ENOENT;
        /* Health changed somewhere: the one pick that claims the new epoch replays it all. */
        uint64_t seen = atomic_load_explicit(&st->epoch, memory_order_relaxed);
        uint64_t epoch = registry_health_epoch(b->total->registry);
        if (seen != epoch && atomic_compare_exchange_strong_explicit(
                                     &st->epoch, &seen, epoch, memory_order_relaxed,
                                     memory_order_relaxed)) {
                note_down(b, st);
                replay_all(b, st);
        }
        for (size_t k = 0; k < st->n_down; k++) {
                size_t i = st->down[k];
                if (!bitmap_test(req->skip, i) &&
                    balancer_item_health(b, i, req, false, &now, &down))
                        return picked(b, i); /* its trial */
        }
        if (!req->skip && !req->panic) {
                unsigned w = winner_at(b, st, 1);
                if (w != NONE && b->weights[w] > 0 &&
                    balancer_item_health(b, w, req, false, &now, &down))
                        return picked(b, w);
                if (w != NONE)
                        least_conn_load_changed(b, w); /* it loses its matches now */
        }
        ssize_t i = scan(b, req, &now, &down);
        return i >= 0 ? picked(b, (size_t)i) : i;
}

const BalancerOps balancer_least_conn_ops = {
        .name = "least_conn",
        .init = least_conn_init,
        .done = least_conn_done,
        .pick = least_conn_pick,
        .load_changed = least_conn_load_changed,
        .needs_entries = true,
};
