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

typedef struct StoreSync StoreSync;

/* At start, before the Manager: the files' Config with the store's upstreams and routes in
 * place of theirs, read from the first endpoint that answers (each given the store's timeout;
 * this blocks). Returns 1 and *ret, *ret_revision; 0 when no endpoint answered (*ret_error says
 * why: the files and the state serve meanwhile); a negative errno when the store's objects do
 * not make a valid configuration with the files (*ret_error: the problems). */
int store_read_initial(const Config *files, Config **ret, int64_t *ret_revision,
                       char **ret_error);

/* Follows the store from `revision` (the one read at start), or, with 0, reads it whole as soon
 * as it can be reached (it could not at start: `unreachable_why`). `files`: the Config the
 * files gave, which a whole read starts from. */
int store_sync_new(Manager *m, const Config *files, int64_t revision, const char *unreachable_why,
                   StoreSync **ret);
StoreSync *store_sync_free(StoreSync *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(StoreSync *, store_sync_free);
