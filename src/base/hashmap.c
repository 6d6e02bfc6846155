/* SPDX-License-Identifier: MIT */
#include <stdint.h>

#include "base/hashmap.h"
#include "base/util.h"

typedef struct Entry {
        char *key; /* NULL = empty slot; TOMBSTONE = deleted */
        size_t key_len;
        uint64_t hash;
        void *value;
} Entry;

static char tombstone_key;
#define TOMBSTONE (&tombstone_key)

struct Hashmap {
        Entry *entries;
        size_t capacity; /* a power of two */
        size_t size;     /* live entries */
        size_t used;     /* live entries + tombstones */
        bool borrowed;   /* keys are the caller's, not copies */
};

/* FNV-1a: keys are short (paths, host:port), so a simple hash with good spread is enough. */
static uint64_t hash_bytes(const char *p, size_t n)
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h ^ (h >> 29);
}

static Hashmap *new_map(size_t capacity, bool borrowed)
{
        Hashmap *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->capacity = capacity;
        m->borrowed = borrowed;
        m->entries = calloc(m->capacity, sizeof(Entry));
        if (!m->entries)
                return free(m), NULL;
        return m;
}

Hashmap *hashmap_new(void)
{
        return new_map(16, false);
}

Hashmap *hashmap_new_borrowing(size_t expected)
{
        size_t capacity = 16;
        /* Room for `expected` under the load limit of hashmap_put(): it never grows. */
        while (capacity < SIZE_MAX / 8 && (expected + 1) * 4 > capacity * 3)
                capacity *= 2;
        return new_map(capacity, true);
}

Hashmap *hashmap_free(Hashmap *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->capacity && !m->borrowed; i++)
                if (m->entries[i].key && m->entries[i].key != TOMBSTONE)
                        free(m->entries[i].key);
        free(m->entries);
        free(m);
        return NULL;
}

static Entry *find_slot(const Hashmap *m, const char *key, size_t key_len, uint64_t hash,
                        bool for_insert)
{
        size_t mask = m->capacity - 1;
        Entry *first_free = NULL;

        for (size_t i = hash & mask, probes = 0; probes < m->capacity; i = (i + 1) & mask, probes++) {
                Entry *e = &m->entries[i];
                if (!e->key)
                        return for_insert && first_free ? first_free : e;
                if (e->key == TOMBSTONE) {
                        if (!first_free)
                                first_free = e;
                        continue;
                }
                if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
                        return e;
        }
        return first_free;
}

static int grow(Hashmap *m)
{
        size_t old_capacity = m->capacity;
        Entry *old = m->entries;
        size_t capacity = m->size * 4 >= old_capacity ? old_capacity * 2 : old_capacity;
        Entry *entries = calloc(capacity, sizeof(Entry));
        if (!entries)
                return -ENOMEM;

        m->entries = entries;
        m->capacity = capacity;
        m->used = m->size;
        for (size_t i = 0; i < old_capacity; i++) {
                if (!old[i].key || old[i].key == TOMBSTONE)
                        continue;
                Entry *e = find_slot(m, old[i].key, old[i].key_len, old[i].hash, true);
                *e = old[i];
        }
        free(old);
        return 0;
}

/* Adds or replaces; with `only_new` an entry there already is left as it is (-EEXIST). */
static int put(Hashmap *m, const char *key, size_t key_len, void *value, bool only_new,
               void **ret_existing)
{
        uint64_t hash = hash_bytes(key, key_len);

        /* Keep the load (tombstones included) under 3/4 so probes stay short. */
        if ((m->used + 1) * 4 > m->capacity * 3) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }

        Entry *e = find_slot(m, key, key_len, hash, true);
        if (e->key && e->key != TOMBSTONE) {
                if (only_new) {
                        if (ret_existing)
                                *ret_existing = e->value;
                        return -EEXIST;
                }
                e->value = value;
                return 0;
        }
        char *copy = (char *)key;
        if (!m->borrowed) {
                copy = malloc(key_len + 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, key, key_len);
                copy[key_len] = 0;
        }
        if (!e->key)
                m->used++;
        *e = (Entry){ .key = copy, .key_len = key_len, .hash = hash, .value = value };
        m->size++;
        return 0;
}

int hashmap_put(Hashmap *m, const char *key, size_t key_len, void *value)
{
        return put(m, key, key_len, value, false, NULL);
}

int hashmap_put_new(Hashmap *m, const char *key, size_t key_len, void *value,
                    void **ret_existing)
{
        return put(m, key, key_len, value, true, ret_existing);
}

uint64_t hashmap_hash(const char *key, size_t key_len)
{
        return hash_bytes(key, key_len);
}

void *hashmap_get_hashed(const Hashmap *m, const char *key, size_t key_len, uint64_t hash)
{
        Entry *e = find_slot(m, key, key_len, hash, false);
        if (!e || !e->key || e->key == TOMBSTONE)
                return NULL;
        return e->value;
}

void *hashmap_get(const Hashmap *m, const char *key, size_t key_len)
{
        return hashmap_get_hashed(m, key, key_len, hash_bytes(key, key_len));
}

void *hashmap_remove(Hashmap *m, const char *key, size_t key_len)
{
        Entry *e = find_slot(m, key, key_len, hash_bytes(key, key_len), false);
        if (!e || !e->key || e->key == TOMBSTONE)
                return NULL;
        void *value = e->value;
        if (!m->borrowed)
                free(e->key);
        e->key = TOMBSTONE;
        e->value = NULL;
        m->size--;
        return value;
}

size_t hashmap_size(const Hashmap *m)
{
        return m->size;
}

int hashmap_foreach(const Hashmap *m,
                    int (*fn)(const char *key, size_t key_len, void *value, void *userdata),
                    void *userdata)
{
        for (size_t i = 0; i < m->capacity; i++) {
                Entry *e = &m->entries[i];
                if (!e->key || e->key == TOMBSTONE)
                        continue;
                int r = fn(e->key, e->key_len, e->value, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}
