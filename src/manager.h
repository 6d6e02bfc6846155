/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon as a whole: configuration paths, the current model, listeners, the workers, signals
 * and what systemd is told. Owns everything else. */

#include <event2/event.h>
#include <stdbool.h>

#include "listener.h"
#include "model.h"
#include "resolver.h"
#include "worker.h"

typedef struct Manager {
        char **config_paths;
        Model *model;
        Resolver *resolver;
        Worker worker;
        struct event_base *base;
        Listener *listeners;
        size_t n_listeners;
        struct event *sig_term, *sig_int, *sig_hup;
        struct event *status_timer, *grace_timer, *watchdog;
        bool stopping;
        int exit_code;
} Manager;

/* Takes ownership of `config`. On failure *ret_error may say why. */
int manager_new(char **config_paths, Config *config, Manager **ret, char **ret_error);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the listeners, starts accepting and tells systemd READY=1. */
int manager_start(Manager *m);
/* Runs until stopped; returns the exit code. */
int manager_run(Manager *m);

/* Re-reads the configuration files and swaps the new model in. On failure nothing changes and
 * *ret_errors (if given) holds the "file:line:column: message" lines. */
int manager_reload(Manager *m, char **ret_errors);

/* Starts a graceful stop: no new connections, requests in flight may finish. */
void manager_stop(Manager *m);
