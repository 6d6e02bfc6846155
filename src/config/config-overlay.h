/* SPDX-License-Identifier: MIT */
#pragma once

/* The overlay: upstreams and routes changed while lbproxy runs (D-Bus), kept as state.yaml. A
 * change is an edit of one object's document (config-tree.h): a new upstream or route, a new
 * version of one, or its removal. The loader reads that document with the tables a file's
 * upstream or route is read with, and checks the result whole (names, references) as it
 * checks files; every other object is shared with the Config the edit starts from. */

#include <sys/types.h>

#include "config/config-tree.h"
#include "config/config.h"

typedef struct ConfigEdit {
        ConfigObjectKind kind;
        const char *name;     /* the object replaced or removed; NULL to add one */
        ConfigTree *document; /* its new document; NULL to remove `name` */
} ConfigEdit;

/* A new Config: `c` with `edit` applied. On -EINVAL *ret_problems (when given) says why, each
 * problem about the edit's document marked in_document with a path in it ("nodes[1].port");
 * problems about other objects name them ("route 'r': upstreams[0].name"). -ENOENT when `name`
 * is not there, -ENOMEM. */
int config_edit_apply(const Config *c, const ConfigEdit *edit, Config **ret,
                      ConfigProblems *ret_problems);

/* The document of an upstream or route of `c`, as the state keeps it (every value written):
 * the start of an edit. -ENOENT when there is none of that name. */
int config_object_document(const Config *c, ConfigObjectKind kind, const char *name,
                           ConfigTree **ret);

/* The index of the node `host`:`port` of `u` ("[::1]" and "::1" are one host, names compare
 * without regard to case), or -ENOENT. */
ssize_t config_upstream_find_node(const ConfigUpstream *u, const char *host, uint16_t port);

/* The document of upstream `upstream` of `c` (as config_object_document() gives it) and the id
 * of its node host:port's mapping in it, where a method that changes one key of a node (its
 * weight, its state) sets it; *ret_index is the node's place in `nodes` (for "nodes[3]" in
 * problems). -ENOENT when there is no such upstream, -ENXIO when it has no such node. */
int config_node_document(const Config *c, const char *upstream, const char *host, uint16_t port,
                         ConfigTree **ret, int *ret_node, size_t *ret_index);

/* The edit that sets the `state:` of node host:port of `upstream` to `state` (SetNodeState:
 * "ready", "drain" or "maint", checked by the loader when the edit is applied, as in a file:
 * "nodes[3].state: unknown state ..."). ret_edit->name points at `upstream`; its document is
 * the caller's to free. Errors as config_node_document(). */
int config_edit_node_state(const Config *c, const char *upstream, const char *host, uint16_t port,
                           const char *state, ConfigEdit *ret_edit, size_t *ret_index);

/* Whether an upstream's or a route's document may have the key `path` ("tls.sni"). */
bool config_schema_has_key(ConfigObjectKind kind, const char *path);
