/* SPDX-License-Identifier: MIT */

/* Consistent hashing on a ring, as nginx's and APISIX's chash: each node with weight w has
 * 160 * w points, placed by hashing its name ("host:port" as configured) and the point's
 * number, so a node's points are where they are whatever other nodes come and go: removing one
 * moves only its keys, adding it back restores them. A request's key (balance-key.c, hashed
 * by the proxy) goes to the first point at or after it, clockwise; O(log n) a pick by binary
 * search over the sorted points, and no lock: the ring is built once with the balancer.
 *
 * From that point the walk goes on past nodes that cannot take the request: tried already,
 * passed over by their health (down, draining, part of the picks while ramping up: see
 * health.h), or, with hash_balance_factor (HAProxy's bounded
 * loads), holding their share of the load already: a node takes at most factor% of the
 * average requests in flight per unit of weight, rounded up. Nodes are never taken off the
 * ring for it, so the keys of the others stay where they are (apisix#13532). When no node
 * is under its share, the first one its health allows takes the request all the same.
 *
 * Weights large enough to make more than CHASH_POINTS_MAX points are scaled down together
 * (each node keeps at least one point). */

#include "base/hashmap.h"
#include "base/util.h"
#include "lb/balancer.h"

#define CHASH_POINTS_PER_WEIGHT 160
#define CHASH_POINTS_MAX (UINT64_C(1) << 20)

typedef struct ChashPoint {
        uint64_t at;
        uint32_t item;
} ChashPoint;

typedef struct ChashState {
        size_t n_points;
        uint64_t *at;    /* sorted */
        uint32_t *items; /* the node of each point */
} ChashState;

static inline uint64_t at_least_one(uint64_t v)
{
        return v > 0 ? v : 1;
}

static int point_compare(const void *a, const void *b)
{
        const ChashPoint *x = a, *y = b;
        if (x->at != y->at)
                return x->at < y->at ? -1 : 1;
        return x->item < y->item ? -1 : x->item > y->item;
}

static int chash_init(Balancer *b)
{
        uint64_t per_weight = CHASH_POINTS_PER_WEIGHT, scale = 1;
        size_t n_points = 0;

        if (b->total_weight * per_weight > CHASH_POINTS_MAX)
                scale = (b->total_weight * per_weight + CHASH_POINTS_MAX - 1) / CHASH_POINTS_MAX;
        for (size_t i = 0; i < b->n; i++)
                if (b->weights[i] > 0)
                        n_points += (size_t)at_least_one(b->weights[i] * per_weight / scale);

        ChashState *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        b->state = st;
        _cleanup_free_ ChashPoint *points = calloc(n_points + 1, sizeof(ChashPoint));
        st->at = calloc(n_points + 1, sizeof(uint64_t));
        st->items = calloc(n_points + 1, sizeof(uint32_t));
        if (!points || !st->at || !st->items)
                return -ENOMEM;

        size_t k = 0;
        for (size_t i = 0; i < b->n; i++) {
                if (b->weights[i] == 0)
                        continue;
                size_t m = (size_t)at_least_one(b->weights[i] * per_weight / scale);
                uint64_t base = hashmap_hash(b->names[i], strlen(b->names[i]));
                for (size_t j = 0; j < m; j++)
                        points[k++] = (ChashPoint){
                                .at = balancer_mix64(base + (j + 1) * UINT64_C(0x9e3779b97f4a7c15)),
                                .item = (uint32_t)i,
                        };
        }
        qsort(points, n_points, sizeof(ChashPoint), point_compare);
        for (size_t j = 0; j < n_points; j++) {
                st->at[j] = points[j].at;
                st->items[j] = points[j].item;
        }
        st->n_points = n_points;
        return 0;
}

static void chash_done(Balancer *b)
{
        ChashState *st = b->state;
        free(st->at);
        free(st->items);
        free(st);
        b->state = NULL;
}

/* The first point at or after `h`, wrapping to 0. */
static size_t ring_find(const ChashState *st, uint64_t h)
{
        size_t lo = 0, hi = st->n_points;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (st->at[mid] < h)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo == st->n_points ? 0 : lo;
}

/* Bounded loads: whether item i holds less than its share. */
static bool under_cap(const Balancer *b, size_t i, uint64_t total_load)
{
        uint64_t slots = (total_load * b->hash_balance_factor + 99) / 100;
        uint64_t cap = (slots * b->weights[i] + b->total_weight - 1) / b->total_weight;
        return registry_in_flight(b->entries[i]) < at_least_one(cap);
}

static ssize_t chash_pick(Balancer *b, const BalancerRequest *req)
{
        const ChashState *st = b->state;
        uint64_t now = 0, total_load = 0;
        ssize_t available = -ENOENT;
        bool down = false;

        if (st->n_points == 0)
                return -ENOENT;
        /* The upstream's count: every item's requests and this one, read at once. */
        if (b->hash_balance_factor > 0)
                total_load = registry_in_flight(b->total);
        if (total_load == 0)
                total_load = 1;

        size_t p = ring_find(st, balancer_mix64(req->key));
        for (size_t k = 0; k < st->n_points; k++, p = p + 1 < st->n_points ? p + 1 : 0) {
                size_t i = st->items[p];
                if (bitmap_test(req->skip, i) || available == (ssize_t)i ||
                    !balancer_item_health(b, i, req, true, &now, &down))
                        continue;
                if (available < 0)
                        available = (ssize_t)i;
                if (b->hash_balance_factor == 0 || under_cap(b, i, total_load))
                        return (ssize_t)i;
        }
        return available >= 0 ? available : balancer_none(down);
}

const BalancerOps balancer_chash_ops = {
        .name = "chash",
        .init = chash_init,
        .done = chash_done,
        .pick = chash_pick,
        .needs_entries = true,
        .hashes_requests = true,
};
