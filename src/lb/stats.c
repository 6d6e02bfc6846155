/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "base/util.h"
#include "lb/stats.h"

#define STATS_INITIAL_CAP 64

void stats_buckets_default(StatsBuckets *b)
{
        /* About a factor 2.5 apart: enough for histogram_quantile() to place a latency within a
         * bucket of its own size, from a cached answer to a slow upstream's timeout. */
        static const uint64_t usec[] = { 500,     1000,    2500,     5000,     10000,
                                         25000,   50000,   100000,   250000,   500000,
                                         1000000, 2500000, 5000000, 10000000, 30000000,
                                         60000000 };
        memcpy(b->bound_usec, usec, sizeof(usec));
        b->n = ELEMENTSOF(usec);
}

size_t stats_kind_cells(StatsKind kind, const StatsBuckets *b)
{
        switch (kind) {
        case STATS_REQUESTS:
                return 1;
        case STATS_ROUTE:
                return 2 + stats_histogram_cells(b);
        case STATS_NODE:
                return STATS_NODE_HISTOGRAMS + 2 * stats_histogram_cells(b);
        case STATS_LISTENER:
                return _STATS_LISTENER_MAX;
        case STATS_WORKER:
                return _STATS_WORKER_MAX;
        default:
                assert(!"unknown stats kind");
                return 1;
        }
}

int stats_table_init(StatsTable *t, const StatsBuckets *buckets)
{
        *t = (StatsTable){ .buckets = buckets, .cap = STATS_INITIAL_CAP };
        StatsSlot *s = calloc(t->cap, sizeof(StatsSlot));
        if (!s)
                return -ENOMEM;
        atomic_init(&t->slots, s);
        int r = pthread_mutex_init(&t->lock, NULL);
        if (r != 0) {
                free(s);
                return -r;
        }
        return 0;
}

void stats_table_done(StatsTable *t)
{
        StatsSlot *s = atomic_load_explicit(&t->slots, memory_order_relaxed);
        if (!s)
                return;
        for (size_t i = 0; i < t->cap; i++)
                free(atomic_load_explicit(&s[i].cells, memory_order_relaxed));
        free(s);
        t->slots = NULL;
        pthread_mutex_destroy(&t->lock);
}

static inline size_t key_hash(uint64_t key)
{
        /* A multiplicative hash: keys differ in a few middle bits. */
        key *= UINT64_C(0x9e3779b97f4a7c15);
        return (size_t)(key ^ (key >> 29));
}

static void slot_put(StatsSlot *s, size_t cap, uint64_t key, atomic_uint_fast64_t *cells)
{
        for (size_t i = key_hash(key) & (cap - 1);; i = (i + 1) & (cap - 1))
                if (atomic_load_explicit(&s[i].key, memory_order_relaxed) == 0) {
                        atomic_store_explicit(&s[i].cells, cells, memory_order_relaxed);
                        atomic_store_explicit(&s[i].key, key, memory_order_release);
                        return;
                }
}

/* Twice the size, under the lock: readers never see a table being filled. */
static int grow(StatsTable *t)
{
        size_t cap = t->cap * 2;
        StatsSlot *n = calloc(cap, sizeof(StatsSlot));
        if (!n)
                return -ENOMEM;
        StatsSlot *o = atomic_load_explicit(&t->slots, memory_order_relaxed);
        for (size_t i = 0; i < t->cap; i++) {
                uint64_t k = atomic_load_explicit(&o[i].key, memory_order_relaxed);
                if (k)
                        slot_put(n, cap, k, atomic_load_explicit(&o[i].cells, memory_order_relaxed));
        }
        pthread_mutex_lock(&t->lock);
        atomic_store_explicit(&t->slots, n, memory_order_release);
        t->cap = cap;
        pthread_mutex_unlock(&t->lock);
        free(o);
        return 0;
}

atomic_uint_fast64_t *stats_table_get(StatsTable *t, uint64_t key)
{
        assert(key != 0);
        StatsSlot *s = atomic_load_explicit(&t->slots, memory_order_relaxed);
        size_t mask = t->cap - 1;
        for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
                uint64_t k = atomic_load_explicit(&s[i].key, memory_order_relaxed);
                if (_likely_(k == key))
                        return atomic_load_explicit(&s[i].cells, memory_order_relaxed);
                if (k == 0)
                        break;
        }

        /* New: at most half full, so probes stay short. */
        if ((t->used + 1) * 2 > t->cap && grow(t) < 0)
                return NULL;
        size_t n = stats_kind_cells(stats_key_kind(key), t->buckets);
        atomic_uint_fast64_t *cells = calloc(n, sizeof(*cells));
        if (!cells)
                return NULL;
        slot_put(atomic_load_explicit(&t->slots, memory_order_relaxed), t->cap, key, cells);
        t->used++;
        return cells;
}

void stats_observe(const StatsBuckets *b, atomic_uint_fast64_t *cells, size_t at, uint64_t usec)
{
        size_t i = 0;
        while (i < b->n && usec > b->bound_usec[i])
                i++;
        stats_add(cells, at + i, 1);
        stats_add(cells, at + b->n + 1, usec);
}

void stats_table_foreach(StatsTable *t,
                         void (*f)(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata),
                         void *userdata)
{
        pthread_mutex_lock(&t->lock);
        StatsSlot *s = atomic_load_explicit(&t->slots, memory_order_acquire);
        for (size_t i = 0; i < t->cap; i++) {
                uint64_t k = atomic_load_explicit(&s[i].key, memory_order_acquire);
                if (k)
                        f(k, atomic_load_explicit(&s[i].cells, memory_order_relaxed), userdata);
        }
        pthread_mutex_unlock(&t->lock);
}

static bool marked(const uint64_t *bits, size_t n_bits, uint32_t slot_plus_one)
{
        if (slot_plus_one == 0)
                return false;
        size_t s = slot_plus_one - 1;
        return s < n_bits && (bits[s / 64] >> (s % 64) & 1);
}

void stats_table_forget(StatsTable *t, const uint64_t *dropped, size_t n_bits)
{
        pthread_mutex_lock(&t->lock);
        StatsSlot *s = atomic_load_explicit(&t->slots, memory_order_acquire);
        for (size_t i = 0; i < t->cap; i++) {
                uint64_t k = atomic_load_explicit(&s[i].key, memory_order_acquire);
                if (!k)
                        continue;
                StatsKind kind = stats_key_kind(k);
                /* A listener's index is no slot; its b is. */
                bool hit = (kind != STATS_LISTENER && marked(dropped, n_bits, stats_key_a(k))) ||
                           marked(dropped, n_bits, stats_key_b(k) & ~STATS_B_UPSTREAM);
                if (!hit)
                        continue;
                atomic_uint_fast64_t *c = atomic_load_explicit(&s[i].cells, memory_order_relaxed);
                size_t n = stats_kind_cells(kind, t->buckets);
                for (size_t j = 0; j < n; j++)
                        atomic_store_explicit(&c[j], 0, memory_order_relaxed);
        }
        pthread_mutex_unlock(&t->lock);
}
