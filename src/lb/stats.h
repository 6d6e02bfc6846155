/* SPDX-License-Identifier: MIT */
#pragma once

/* Counters by label combination, per worker: requests by (route, node, status code), durations by
 * (route, upstream), a node's histograms, a listener's connections. The Registry's counter blocks
 * have one place per entry; these have one per combination that happened, made by the worker
 * the first time it counts one.
 *
 * A StatsTable belongs to one worker, which alone writes it: a lookup and a load and store per
 * cell, no locked instruction, no line another worker writes. The scrape reads it from another
 * thread: a key is published (release) after its cells are set up, and the table is replaced
 * only under its mutex, which the worker takes for that alone (when it grows) and readers take
 * to walk it. The cells of a key are a fixed array of uint64 whose meaning the key's kind says
 * (StatsCell...).
 *
 * Keys name registry slots (registry.h), which are handed out again after an entry is dropped:
 * before a slot is reused, stats_table_forget() zeroes every cell of the keys that name it, in
 * every worker's table (no worker counts into it then: no model has the entry). A key with only
 * zero cells is left out of the scrape. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum StatsKind {
        /* a: route slot + 1 (0: none), b: node slot + 1, or upstream slot + 1 with
         * STATS_B_UPSTREAM (lbproxy answered), or 0; code: the status sent. Cells: [count]. */
        STATS_REQUESTS = 1,
        /* a: route slot + 1 (0: none), b: upstream slot + 1 (0: none). Cells: bytes in, bytes
         * out, then a histogram of the request's duration. */
        STATS_ROUTE,
        /* b: node slot + 1. Cells: STATS_NODE_* then the histograms of the response's first
         * byte and of the connect. */
        STATS_NODE,
        /* a: listener index + 1, b: upstream slot + 1 (0: none). Cells: STATS_LISTENER_*. */
        STATS_LISTENER,
        /* Counters of the worker as a whole; a, b 0. Cells: STATS_WORKER_*. */
        STATS_WORKER,
        _STATS_KIND_MAX,
} StatsKind;

#define STATS_B_UPSTREAM (UINT32_C(1) << 23)
#define STATS_SLOT_BITS 24 /* a and b: a registry slot (< 2^22) + 1, and a flag */

enum {
        STATS_NODE_OPENED,     /* connections opened (connected, TLS included) */
        STATS_NODE_REUSED,     /* requests on a pooled connection */
        STATS_NODE_FAILED,     /* connects that failed (a passive health check failed) */
        STATS_NODE_HISTOGRAMS, /* first histogram */
};

enum {
        STATS_LISTENER_ACCEPTED,   /* client connections */
        STATS_LISTENER_CLOSED,
        STATS_LISTENER_SESSIONS,   /* tcp and tls-passthrough sessions to b's upstream */
        STATS_LISTENER_BYTES_IN,   /* of those sessions, client to upstream */
        STATS_LISTENER_BYTES_OUT,
        _STATS_LISTENER_MAX,
};

enum {
        STATS_WORKER_TLS_CLIENT_FULL, /* TLS handshakes towards nodes, without resumption */
        STATS_WORKER_TLS_CLIENT_RESUMED,
        STATS_WORKER_TLS_SERVER_FULL, /* with clients */
        STATS_WORKER_TLS_SERVER_RESUMED,
        STATS_WORKER_TLS_FAILED_CLIENT, /* handshakes that failed */
        STATS_WORKER_TLS_FAILED_SERVER,
        _STATS_WORKER_MAX,
};

/* The bucket bounds of every histogram, in µs, increasing; fixed at start. */
#define STATS_BUCKETS_MAX 32
typedef struct StatsBuckets {
        uint64_t bound_usec[STATS_BUCKETS_MAX];
        size_t n;
} StatsBuckets;

/* A histogram's cells: a count per bucket (not cumulative; the last is above every bound),
 * then the sum of the samples in µs. */
static inline size_t stats_histogram_cells(const StatsBuckets *b)
{
        return b->n + 2;
}

typedef struct StatsSlot {
        atomic_uint_fast64_t key; /* 0: empty */
        atomic_uint_fast64_t *_Atomic cells;
} StatsSlot;

typedef struct StatsTable {
        pthread_mutex_t lock; /* replacing `slots`; readers walking it */
        StatsSlot *_Atomic slots;
        size_t cap;  /* a power of two; written under the lock */
        size_t used; /* the worker's */
        const StatsBuckets *buckets;
} StatsTable;

static inline uint64_t stats_key(StatsKind kind, uint32_t a, uint32_t b, unsigned code)
{
        return (uint64_t)kind << 58 | (uint64_t)a << 34 | (uint64_t)b << 10 | (code & 0x3ff);
}
static inline StatsKind stats_key_kind(uint64_t key)
{
        return (StatsKind)(key >> 58);
}
static inline uint32_t stats_key_a(uint64_t key)
{
        return (uint32_t)(key >> 34) & ((UINT32_C(1) << STATS_SLOT_BITS) - 1);
}
static inline uint32_t stats_key_b(uint64_t key)
{
        return (uint32_t)(key >> 10) & ((UINT32_C(1) << STATS_SLOT_BITS) - 1);
}
static inline unsigned stats_key_code(uint64_t key)
{
        return (unsigned)(key & 0x3ff);
}

size_t stats_kind_cells(StatsKind kind, const StatsBuckets *b);

int stats_table_init(StatsTable *t, const StatsBuckets *buckets);
void stats_table_done(StatsTable *t);

/* The cells of `key`, made (zeroed) the first time; NULL when out of memory (then the sample
 * is not counted). The worker's thread. */
atomic_uint_fast64_t *stats_table_get(StatsTable *t, uint64_t key);

/* Adds to a cell only the table's worker writes. */
static inline void stats_add(atomic_uint_fast64_t *cells, size_t i, uint64_t n)
{
        atomic_store_explicit(&cells[i],
                              atomic_load_explicit(&cells[i], memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* One sample of `usec` into the histogram at cells[at]. */
void stats_observe(const StatsBuckets *b, atomic_uint_fast64_t *cells, size_t at, uint64_t usec);

/* Calls `f` for every key of the table with its cells, under the table's lock. Any thread. */
void stats_table_foreach(StatsTable *t,
                         void (*f)(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata),
                         void *userdata);

/* Zeroes the cells of every key whose a or b names a slot (+ 1) marked in `dropped` (a bitmap
 * of slots, n_bits long). Control thread, while no worker counts into those slots. */
void stats_table_forget(StatsTable *t, const uint64_t *dropped, size_t n_bits);

/* Default buckets: 0.5 ms to 60 s. */
void stats_buckets_default(StatsBuckets *b);
