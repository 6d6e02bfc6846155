/* SPDX-License-Identifier: MIT */
#pragma once

/* The control side of a shared store (etcd; README, "Running several instances"): its upstreams
 * and routes read at start, then followed through one watch, every change through the loader's
 * rules and manager_apply_config(). A value the loader refuses is logged by key and its object
 * keeps its last good value; the rest applies. A compacted revision, a revision that went
 * backwards or a reconnect reads the whole prefix again and swaps it in whole. While etcd cannot
 * be reached, what serves goes on serving (state.yaml keeps the last good configuration for a
 * start without etcd), and STATUS= says since when. */

#include <stdint.h>

#include "config/config.h"
#include "control/manager.h"
#include "store/etcd-json.h"

typedef struct StoreSync StoreSync;

/* At start, before the Manager: the files' Config with the store's upstreams and routes in
 * place of theirs, read from the first endpoint that answers (all are asked at once, and the
 * store's timeout bounds the whole; this blocks). Returns 1 and *ret, and *ret_range (what was
 * read: its revision, each key's); 0 when no endpoint answered, or the client's TLS files do
 * not load (*ret_error says why, endpoint by endpoint, also in the journal: the files and the
 * state serve meanwhile); a negative errno when the store's objects do
 * not make a valid configuration with the files (*ret_error: the problems). */
int store_read_initial(const Config *files, Config **ret, EtcdRange *ret_range,
                       char **ret_error);

/* Follows the store from `start` (what was read at start), or, with NULL, reads it whole as soon
 * as it can be reached (it could not at start: `unreachable_why`; NULL when it could, but what
 * it held was refused). `files`: the Config the
 * files gave, which a whole read starts from. */
int store_sync_new(Manager *m, const Config *files, const EtcdRange *start,
                   const char *unreachable_why, StoreSync **ret);
StoreSync *store_sync_free(StoreSync *s);

/* A reload read the files into *config: it becomes what whole reads start from, and *config
 * the files with the store's objects serving now (taken, replaced), which a read of the whole
 * prefix, started here, brings up to date. On failure (the files do not fit the store's objects)
 * *ret_errors says why and nothing changed. */
int store_sync_reloaded(StoreSync *s, Config **config, char **ret_errors);
DEFINE_TRIVIAL_CLEANUP_FUNC(StoreSync *, store_sync_free);
