/* SPDX-License-Identifier: MIT */
#pragma once

/* The Manager's side of nodes' health (manager-health.c). */

#include <stddef.h>

typedef struct Manager Manager;
typedef struct Model Model;
typedef struct Upstream Upstream;
typedef struct Node Node;
typedef struct RegistryEntry RegistryEntry;

int manager_health_setup(Manager *m);
void manager_health_done(Manager *m);
/* WorkerHooks (and the prober's): a node went down (`why`) or came up (NULL); a draining
 * node's last request ended. Any thread. */
void manager_node_health_changed(void *userdata, const Upstream *u, const Node *n,
                                 const char *why);
void manager_node_drained(void *userdata, const RegistryEntry *e);
/* `model` is about to replace `old` (NULL at start): its new upstreams' admin states go into
 * their nodes' health. */
void manager_health_commit(Manager *m, const Model *old, Model *model);
/* The upstreams of `model` in panic, "a, b" into buf (cut to size); returns how many. */
size_t manager_format_panics(const Model *model, char *buf, size_t size);
/* STATUS= again (manager.c). */
void manager_update_status(Manager *m);
