/* SPDX-License-Identifier: MIT */
#pragma once

/* etcd's keys and values as the store's ConfigSource (config-source.h), and the build that
 * refuses a value by its key rather than the whole. */

#include <stdbool.h>

#include "config/config-source.h"
#include "store/etcd-json.h"

/* "<prefix>upstreams/<name>", "<prefix>routes/<name>": 0 and what it names (pointing into
 * `key`), or -EINVAL for any other key. */
int store_key_parse(const char *prefix, const char *key, ConfigObjectKind *ret_kind,
                    const char **ret_name);

/* Items of the store's ConfigSource; their values are borrowed (from an EtcdRange or a watch
 * message), their paths ("etcd <key>") owned. */
typedef struct StoreItems {
        ConfigStoreItem *items;
        size_t n, allocated;
} StoreItems;

void store_items_done(StoreItems *s);
/* Adds the key's object (value NULL: removed). 1 when added, 0 when the key names none (it is
 * skipped), -ENOMEM. */
int store_items_add(StoreItems *s, const char *prefix, const char *key, const char *value,
                    size_t len);

/* [loaded(start), store(items)], `whole` or as changes. A value the loader refuses (its
 * problems under the item's path) is logged by key, then left out: its object stays as it is in
 * `current` (may be NULL); the rest is built again. -EINVAL with *ret_error when what is wrong
 * is not one value's (a file's listener naming an upstream the store lacks). */
int store_build(const Config *start, bool whole, StoreItems *s, const Config *current,
                Config **ret, char **ret_error);
/* store_build() of a whole read: the files and every key of `range` under `prefix`. */
int store_build_range(const Config *files, const char *prefix, const EtcdRange *range,
                      const Config *current, Config **ret, char **ret_error);
