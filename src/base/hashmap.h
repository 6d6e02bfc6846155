/* SPDX-License-Identifier: MIT */
#pragma once

/* A string-keyed hash map with open addressing, for lookups on the request path (router, pool).
 * Keys are copied; values are borrowed pointers. Not thread-safe: each owner guards its own. */

#include <stddef.h>
#include <stdint.h>

typedef struct Hashmap Hashmap;

Hashmap *hashmap_new(void);
/* A map whose keys are not copied (each must outlive its entry), sized for `expected` entries:
 * for a map built whole and dropped soon after, with no allocation per key. */
Hashmap *hashmap_new_borrowing(size_t expected);
Hashmap *hashmap_free(Hashmap *m);

/* Adds or replaces. Returns 0 or -ENOMEM. */
int hashmap_put(Hashmap *m, const char *key, size_t key_len, void *value);
/* Adds unless the key is there: then -EEXIST, and *ret_existing (when given) its value; one
 * hash and one probe, where a get then a put take two. Returns 0, -EEXIST or -ENOMEM. */
int hashmap_put_new(Hashmap *m, const char *key, size_t key_len, void *value,
                    void **ret_existing);
void *hashmap_get(const Hashmap *m, const char *key, size_t key_len);
/* The hash every lookup starts with, for keys looked up often enough to hash once. */
uint64_t hashmap_hash(const char *key, size_t key_len);
void *hashmap_get_hashed(const Hashmap *m, const char *key, size_t key_len, uint64_t hash);
/* Removes and returns the value, or NULL. */
void *hashmap_remove(Hashmap *m, const char *key, size_t key_len);
size_t hashmap_size(const Hashmap *m);

/* Visits every entry; stops early when `fn` returns non-zero and returns that value. */
int hashmap_foreach(const Hashmap *m, int (*fn)(const char *key, size_t key_len, void *value,
                                                void *userdata),
                    void *userdata);
