/* SPDX-License-Identifier: MIT */
#pragma once

/* What a front end of the control plane (the D-Bus service, bus/) sees of the daemon: the model
 * serving now, to read; changes, made as a whole new configuration; a reload; the connection
 * counts. Not the Manager's inside. Everything here runs on the control loop. */

#include <event2/event.h>
#include <stddef.h>

typedef struct Manager Manager;
typedef struct Config Config;
typedef struct Model Model;
typedef struct Upstream Upstream;

/* The model serving now; borrowed until the control loop goes on (a change or a reload replaces
 * it). Its Config is where an edit starts from. */
const Model *manager_model(const Manager *m);

/* The configuration a change starts from: the model's. */
const Config *manager_config(const Manager *m);

/* Swaps in a configuration changed at run time, taking ownership of `config`: builds the model,
 * persists it to the state directory, then swaps. On failure nothing changed and *ret_error
 * (if given) says why. */
int manager_apply_config(Manager *m, Config *config, char **ret_error);

/* Re-reads the configuration files and swaps the new model in. On failure nothing changes and
 * *ret_errors (if given) holds the "file:line:column: message" lines. */
int manager_reload(Manager *m, char **ret_errors);

/* Client connections open now, and the most that may be. */
size_t manager_connections(const Manager *m);
size_t manager_max_connections(const Manager *m);

/* A front end: started by manager_start() once the listeners are open and before the worker
 * threads run, told of every model swap and node health change, freed with the Manager. */
typedef struct ControlFrontend {
        int (*start)(Manager *m, struct event_base *base, void **ret_userdata);
        void (*free)(void *userdata);
        /* Before a swap, while what goes away is still findable (`old` is NULL for the first
         * model). */
        void (*model_removing)(void *userdata, const Model *old, const Model *new);
        /* After a swap. */
        void (*model_swapped)(void *userdata, const Model *old, const Model *new);
        /* A node of `u` turned failing or healthy again. From any thread. */
        void (*upstream_health_changed)(void *userdata, const Upstream *u);
} ControlFrontend;
