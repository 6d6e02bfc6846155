/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "base/hashmap.h"
#include "lb/registry.h"

struct Registry {
        Hashmap *entries; /* key -> RegistryEntry */
        uint32_t next_slot; /* never handed out yet */
        uint32_t *free_slots; /* of dropped entries, zeroed, handed out again first */
        size_t n_free_slots;
        size_t free_slots_cap; /* at least next_slot: giving a slot back never fails */
        size_t n_chunks; /* allocated in every worker's blocks */
        RegistryWorker **workers; /* by id; NULL where none attached */
        size_t n_workers;
        StatsBuckets buckets;
        /* Slots given back whose keys in the workers' stats tables still hold counts: a bitmap
         * (free_slots_cap bits), swept before one of them is handed out again. */
        uint64_t *unswept;
        atomic_uint_fast64_t health_epoch; /* registry_bump_health_epoch() */
        size_t n_unswept;
};

int registry_new(Registry **ret)
{
        Registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->entries = hashmap_new();
        if (!r->entries) {
                free(r);
                return -ENOMEM;
        }
        stats_buckets_default(&r->buckets);
        *ret = r;
        return 0;
}

static int free_entry(const char *key, size_t key_len, void *value, void *userdata)
{
        RegistryEntry *e = value;
        free(e->key);
        free(e);
        return 0;
}

static void worker_free(RegistryWorker *w, size_t n_chunks)
{
        if (!w)
                return;
        stats_table_done(&w->stats);
        for (size_t i = 0; i < n_chunks; i++)
                free(w->chunks[i]);
        free(w);
}

Registry *registry_free(Registry *r)
{
        if (!r)
                return NULL;
        /* Entries left belong to a model that was leaked (out of memory when it was retired):
         * nothing reads them any more. */
        hashmap_foreach(r->entries, free_entry, NULL);
        hashmap_free(r->entries);
        for (size_t i = 0; i < r->n_workers; i++)
                worker_free(r->workers[i], r->n_chunks);
        free(r->workers);
        free(r->free_slots);
        free(r->unswept);
        free(r);
        return NULL;
}

void registry_set_buckets(Registry *r, const StatsBuckets *b)
{
        assert(r->n_workers == 0);
        r->buckets = *b;
}

const StatsBuckets *registry_buckets(const Registry *r)
{
        return &r->buckets;
}

size_t registry_n_workers(const Registry *r)
{
        return r->n_workers;
}

RegistryWorker *registry_worker(const Registry *r, size_t id)
{
        return id < r->n_workers ? r->workers[id] : NULL;
}

/* The keys of dropped entries' slots zeroed in every worker's table, before a slot is reused:
 * one walk per table for every slot dropped since the last. */
static void sweep(Registry *r)
{
        if (r->n_unswept == 0)
                return;
        for (size_t i = 0; i < r->n_workers; i++)
                if (r->workers[i])
                        stats_table_forget(&r->workers[i]->stats, r->unswept, r->free_slots_cap);
        memset(r->unswept, 0, r->free_slots_cap / 64 * sizeof(uint64_t));
        r->n_unswept = 0;
}

size_t registry_size(const Registry *r)
{
        return hashmap_size(r->entries);
}

static RegistryCounters *chunk_new(void)
{
        /* A worker's blocks on lines of their own: no other worker writes next to them. */
        size_t size = REGISTRY_CHUNK_SLOTS * sizeof(RegistryCounters);
        RegistryCounters *c = aligned_alloc(REGISTRY_CACHE_LINE, size);
        if (c)
                memset(c, 0, size);
        return c;
}

/* A slot whose counters are zero in every worker. */
static int slot_take(Registry *r, uint32_t *ret)
{
        if (r->n_free_slots > 0) {
                sweep(r);
                *ret = r->free_slots[--r->n_free_slots];
                return 0;
        }
        uint32_t slot = r->next_slot;
        size_t chunk = slot / REGISTRY_CHUNK_SLOTS;
        if (chunk >= REGISTRY_MAX_CHUNKS)
                return -ENOSPC;
        if (r->free_slots_cap <= slot) {
                size_t cap = r->free_slots_cap ? 2 * r->free_slots_cap : 64;
                uint32_t *l = realloc(r->free_slots, cap * sizeof(uint32_t));
                if (!l)
                        return -ENOMEM;
                r->free_slots = l;
                uint64_t *u = realloc(r->unswept, cap / 64 * sizeof(uint64_t));
                if (!u)
                        return -ENOMEM;
                memset(u + r->free_slots_cap / 64, 0,
                       (cap - r->free_slots_cap) / 64 * sizeof(uint64_t));
                r->unswept = u;
                r->free_slots_cap = cap;
        }
        if (chunk == r->n_chunks) {
                /* The first slot of a chunk: every worker gets its blocks before any model
                 * with the entry is published to it. */
                _cleanup_free_ RegistryCounters **made = calloc(r->n_workers + 1,
                                                                sizeof(RegistryCounters *));
                if (!made)
                        return -ENOMEM;
                for (size_t i = 0; i < r->n_workers; i++) {
                        made[i] = r->workers[i] ? chunk_new() : NULL;
                        if (r->workers[i] && !made[i]) {
                                while (i-- > 0)
                                        free(made[i]);
                                return -ENOMEM;
                        }
                }
                for (size_t i = 0; i < r->n_workers; i++)
                        if (r->workers[i])
                                r->workers[i]->chunks[chunk] = made[i];
                r->n_chunks++;
        }
        r->next_slot++;
        *ret = slot;
        return 0;
}

/* The dropped entry's counters back to zero before another takes its slot. No worker counts
 * into it: the models that had the entry are gone, and whoever takes the slot next is
 * published to the workers after this (the publisher's release and acquire order it). */
static void slot_give_back(Registry *r, uint32_t slot)
{
        for (size_t i = 0; i < r->n_workers; i++) {
                if (!r->workers[i])
                        continue;
                RegistryCounters *c = &r->workers[i]->chunks[slot / REGISTRY_CHUNK_SLOTS]
                                                          [slot % REGISTRY_CHUNK_SLOTS];
                atomic_store_explicit(&c->requests, 0, memory_order_relaxed);
                atomic_store_explicit(&c->bytes_in, 0, memory_order_relaxed);
                atomic_store_explicit(&c->bytes_out, 0, memory_order_relaxed);
                atomic_store_explicit(&c->latency_ewma, 0, memory_order_relaxed);
        }
        assert(r->n_free_slots < r->free_slots_cap);
        r->free_slots[r->n_free_slots++] = slot;
        r->unswept[slot / 64] |= UINT64_C(1) << (slot % 64);
        r->n_unswept++;
}

int registry_worker_attach(Registry *r, unsigned id, RegistryWorker **ret)
{
        if (id >= r->n_workers) {
                RegistryWorker **l = realloc(r->workers, (id + 1) * sizeof(RegistryWorker *));
                if (!l)
                        return -ENOMEM;
                for (size_t i = r->n_workers; i <= id; i++)
                        l[i] = NULL;
                r->workers = l;
                r->n_workers = id + 1;
        }
        if (!r->workers[id]) {
                RegistryWorker *w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                int k = stats_table_init(&w->stats, &r->buckets);
                if (k < 0) {
                        free(w);
                        return k;
                }
                for (size_t i = 0; i < r->n_chunks; i++) {
                        w->chunks[i] = chunk_new();
                        if (!w->chunks[i]) {
                                worker_free(w, i);
                                return -ENOMEM;
                        }
                }
                r->workers[id] = w;
        }
        *ret = r->workers[id];
        return 0;
}

/* The kind, then the names: "n" upstream NUL host NUL port (two bytes), "u" name, "r" name. */
static char *entry_key(RegistryKind kind, const char *name, const char *host, uint16_t port,
                       size_t *ret_len)
{
        static const char kinds[] = { [REGISTRY_NODE] = 'n', [REGISTRY_UPSTREAM] = 'u',
                                      [REGISTRY_ROUTE] = 'r' };
        size_t name_len = strlen(name), host_len = host ? strlen(host) : 0;
        size_t len = 1 + name_len + (host ? 1 + host_len + 1 + 2 : 0);
        char *k = malloc(len);
        if (!k)
                return NULL;
        k[0] = kinds[kind];
        memcpy(k + 1, name, name_len);
        if (host) {
                char *p = k + 1 + name_len;
                *p++ = '\0';
                memcpy(p, host, host_len);
                p += host_len;
                *p++ = '\0';
                *p++ = (char)(port >> 8);
                *p++ = (char)(port & 0xff);
        }
        *ret_len = len;
        return k;
}

static int entry_get(Registry *r, RegistryKind kind, const char *name, const char *host,
                     uint16_t port, RegistryEntry **ret)
{
        size_t len;
        _cleanup_free_ char *key = entry_key(kind, name, host, port, &len);
        if (!key)
                return -ENOMEM;
        RegistryEntry *e = hashmap_get(r->entries, key, len);
        if (e) {
                *ret = registry_entry_ref(e);
                return 0;
        }

        size_t size = (sizeof(RegistryEntry) + REGISTRY_CACHE_LINE - 1) &
                      ~(size_t)(REGISTRY_CACHE_LINE - 1);
        e = aligned_alloc(REGISTRY_CACHE_LINE, size);
        if (!e)
                return -ENOMEM;
        memset(e, 0, size);
        *e = (RegistryEntry){ .registry = r, .key_len = len, .n_ref = 1, .kind = kind };
        atomic_init(&e->health, 0);
        atomic_init(&e->in_flight, 0);
        int k = slot_take(r, &e->slot);
        if (k < 0) {
                free(e);
                return k;
        }
        e->fresh = true;
        e->key = TAKE_PTR(key);
        k = hashmap_put(r->entries, e->key, e->key_len, e);
        if (k < 0) {
                slot_give_back(r, e->slot);
                free(e->key);
                free(e);
                return k;
        }
        *ret = e;
        return 0;
}

int registry_node(Registry *r, const char *upstream, const char *host, uint16_t port,
                  RegistryEntry **ret)
{
        return entry_get(r, REGISTRY_NODE, upstream, host, port, ret);
}

int registry_upstream(Registry *r, const char *name, RegistryEntry **ret)
{
        return entry_get(r, REGISTRY_UPSTREAM, name, NULL, 0, ret);
}

int registry_route(Registry *r, const char *name, RegistryEntry **ret)
{
        return entry_get(r, REGISTRY_ROUTE, name, NULL, 0, ret);
}

RegistryEntry *registry_find_node(Registry *r, const char *upstream, const char *host,
                                  uint16_t port)
{
        size_t len;
        _cleanup_free_ char *key = entry_key(REGISTRY_NODE, upstream, host, port, &len);
        return key ? hashmap_get(r->entries, key, len) : NULL;
}

RegistryEntry *registry_entry_ref(RegistryEntry *e)
{
        if (e)
                e->n_ref++;
        return e;
}

RegistryEntry *registry_entry_unref(RegistryEntry *e)
{
        if (!e)
                return NULL;
        assert(e->n_ref > 0);
        if (--e->n_ref > 0)
                return NULL;
        /* No request is in flight on it: every model that had it is gone. */
        assert(registry_in_flight(e) == 0);
        Registry *r = e->registry;
        (void)hashmap_remove(r->entries, e->key, e->key_len);
        slot_give_back(r, e->slot);
        free(e->key);
        free(e);
        return NULL;
}

/* Weight of the newest sample: 1/8, as TCP's smoothed round-trip time. */
#define EWMA_SHIFT 3
#define EWMA_SCALE 16

void registry_count(RegistryWorker *w, const RegistryEntry *e, uint64_t bytes_in,
                    uint64_t bytes_out, uint64_t usec)
{
        RegistryCounters *c = registry_counters(w, e);
        registry_counter_add(&c->requests, 1);
        registry_counter_add(&c->bytes_in, bytes_in);
        registry_counter_add(&c->bytes_out, bytes_out);
        if (e->kind != REGISTRY_NODE)
                return;
        uint64_t sample = usec * EWMA_SCALE;
        uint64_t avg = atomic_load_explicit(&c->latency_ewma, memory_order_relaxed);
        avg = avg == 0 ? sample : avg - (avg >> EWMA_SHIFT) + (sample >> EWMA_SHIFT);
        atomic_store_explicit(&c->latency_ewma, avg ? avg : 1, memory_order_relaxed);
}

void registry_entry_totals(const RegistryEntry *e, RegistryTotals *ret)
{
        const Registry *r = e->registry;
        RegistryTotals t = {};
        /* long double: a weighted sum of large averages must not wrap. */
        long double weighted = 0;
        uint64_t weights = 0;

        for (size_t i = 0; i < r->n_workers; i++) {
                if (!r->workers[i])
                        continue;
                const RegistryCounters *c = registry_counters(r->workers[i], e);
                uint64_t n = atomic_load_explicit(&c->requests, memory_order_relaxed);
                uint64_t avg = atomic_load_explicit(&c->latency_ewma, memory_order_relaxed);
                t.requests += n;
                t.bytes_in += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
                t.bytes_out += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
                if (avg > 0 && n > 0) {
                        weighted += (long double)avg * n;
                        weights += n;
                }
        }
        if (weights > 0)
                t.latency_usec = (uint64_t)(weighted / weights / EWMA_SCALE);
        *ret = t;
}

void registry_bump_health_epoch(Registry *r)
{
        atomic_fetch_add_explicit(&r->health_epoch, 1, memory_order_relaxed);
}

uint64_t registry_health_epoch(const Registry *r)
{
        return atomic_load_explicit(&((Registry *)r)->health_epoch, memory_order_relaxed);
}
