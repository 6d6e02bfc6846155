/* SPDX-License-Identifier: MIT */
#pragma once

/* What a front end of the control plane (the D-Bus service, bus/) sees of the daemon: the model
 * serving now, to read; changes, made as a whole new configuration; a reload; the connection
 * counts. Not the Manager's inside. Everything here runs on the control loop. */

#include <event2/event.h>
#include <stddef.h>

#include "config/config.h"

typedef struct Manager Manager;
typedef struct Config Config;
typedef struct Model Model;
typedef struct Upstream Upstream;

/* The model serving now; borrowed until the control loop goes on (a change or a reload replaces
 * it). Its Config is where an edit starts from. */
const Model *manager_model(const Manager *m);

/* The configuration a change starts from: the newest accepted, serving or waiting to be. */
const Config *manager_config(const Manager *m);

/* How a change or a reload ended, on the control loop: r = 0, it is durable and serving;
 * r < 0, it is not and nothing of it serves (`message` says why: the state could not be written;
 * -ESTALE: a reload came first; -ECANCELED: lbproxy is stopping). */
typedef void (*ManagerChangeDone)(void *userdata, int r, const char *message);

/* Applies a configuration changed at run time, taking ownership of `config`: builds the model,
 * has the state written (off the loop), and swaps the model in once the state is durable.
 * Returns a negative errno when refused now (*ret_error, if given, says why; nothing changed);
 * 1 when it serves already (no state directory) and `done` is not called; 0 when `done` will be,
 * once it is durable, or not. */
int manager_apply_config(Manager *m, Config *config, ManagerChangeDone done, void *userdata,
                         char **ret_error);

/* With a shared store (etcd; control/store-sync.h) a change made by a front end is not applied
 * here: the object `name` of `config` (the configuration the change makes, taken; an object
 * missing from it is removed) is written to the store in a transaction that fails when the
 * object changed there since this instance saw it, and every instance, this one included,
 * applies it from its watch. Returns -EOPNOTSUPP without a store (the caller applies it itself);
 * else a negative errno when refused now (-EHOSTUNREACH: the store is unreachable, so that no
 * instance drifts on its own; *ret_error says why), or 0: `done` is called once it serves here,
 * or with -EBUSY when the object changed in the store meanwhile (a conflict: nothing changed),
 * or another errno when the store did not answer. */
int manager_store_change(Manager *m, Config *config, ConfigObjectKind kind, const char *name,
                         ManagerChangeDone done, void *userdata, char **ret_error);

/* A change the front end refused before it came to manager_apply_config() (no such object, or
 * the configuration it made is invalid): counted with the changes that failed. */
void manager_change_refused(Manager *m);

/* Re-reads the configuration files and swaps the new model in at once; changes over D-Bus are
 * dropped, those waiting to be written included, and the state is removed. On failure nothing
 * changes and *ret_errors (if given) holds the "file:line:column: message" lines. Returns as
 * manager_apply_config(): 0 when `done` is called once the state is removed. */
int manager_reload(Manager *m, ManagerChangeDone done, void *userdata, char **ret_errors);

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
        /* A node of `u` changed health or admin state. From any thread. */
        void (*upstream_health_changed)(void *userdata, const Upstream *u);
        /* A draining node has no request in flight left (once per drain). From any thread. */
        void (*node_drained)(void *userdata, const char *upstream, const char *host,
                             uint16_t port);
} ControlFrontend;
