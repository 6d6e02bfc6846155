/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon as a whole: configuration paths, the current model, listeners, the workers, signals
 * and what systemd is told. Owns everything else. */

#include <event2/event.h>
#include <stdbool.h>

#include "base/wake.h"
#include "control/control.h"
#include "proxy/metrics-server.h"
#include "lb/model.h"
#include "lb/publisher.h"
#include "net/listener.h"
#include "net/resolver.h"
#include "proxy/conn-limit.h"
#include "proxy/health-probe.h"
#include "proxy/worker.h"

typedef struct StateWriter StateWriter;
typedef struct StoreSync StoreSync;

/* A change accepted, its model built, waiting for the state to be written; or a reload waiting
 * for the state to be removed (model NULL: the reload swapped at once). */
typedef struct PendingChange {
        uint64_t generation;
        Model *model;
        ManagerChangeDone done;
        void *userdata;
} PendingChange;

typedef struct Manager {
        char **config_paths;
        char *state_dir; /* runtime state (D-Bus changes); NULL: not persisted */
        StateWriter *writer; /* writes it, off this loop */
        PendingChange *pending; /* oldest first */
        size_t n_pending;
        uint64_t generation; /* of the newest in `pending` */
        char *status_note; /* appended to STATUS= until a change or reload is accepted */
        StoreSync *store; /* a shared store followed (store-sync.c), or NULL */
        const ControlFrontend *frontend; /* the D-Bus service */
        void *frontend_data;             /* NULL until it started */
        ModelPublisher models; /* the current model, for the workers */
        Registry *registry;    /* runtime state of the models' objects, across swaps */
        Resolver *resolver;
        WorkerShared shared; /* what the workers are given */
        Worker *workers; /* each on a thread of its own */
        size_t n_workers;
        size_t threads_running;
        Wake thread_exited; /* a worker thread left its loop */
        Wake health_wake; /* a node's health changed: panics worked out again */
        pthread_mutex_t release_lock; /* models retired on worker threads, freed here */
        Model **released;
        size_t n_released;
        Wake release_wake; /* models retired on other threads wait in `released` */
        struct event_base *base;
        Listener *listeners; /* the workers': the first n_proxy_listeners; then metrics' */
        size_t n_listeners;
        size_t n_proxy_listeners;
        const char **listener_names; /* of the workers' listeners, for the metrics */
        MetricsServer *metrics;      /* NULL without a metrics listener */
        HealthProber *prober;        /* NULL while no upstream has active checks */
        MetricsControl counts;       /* reloads and changes, for the metrics */
        ConnLimit conn_limit; /* client connections against max_connections, all workers */
        uint64_t nofile;      /* the soft RLIMIT_NOFILE at start */
        size_t default_max_connections; /* derived from it; 0 before the start */
        struct event *sig_term, *sig_int, *sig_hup;
        struct event *status_timer, *grace_timer, *watchdog;
        bool stopping;
        int exit_code;
} Manager;

/* Takes ownership of `config`. `state_dir` (may be NULL) is where D-Bus changes are kept. On
 * failure *ret_error may say why. */
int manager_new(char **config_paths, const char *state_dir, Config *config, Manager **ret,
                char **ret_error);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* A line STATUS= keeps until the next accepted D-Bus change or reload (why the runtime state
 * was rejected at start). NULL clears it. Returns 0 or -ENOMEM. */
int manager_set_status_note(Manager *m, const char *note);

/* Opens the listeners, starts `frontend` (may be NULL), starts accepting and tells systemd
 * READY=1. */
int manager_start(Manager *m, const ControlFrontend *frontend);
/* Runs until stopped; returns the exit code. */
int manager_run(Manager *m);

/* Starts a graceful stop: no new connections, requests in flight may finish. */
void manager_stop(Manager *m);
