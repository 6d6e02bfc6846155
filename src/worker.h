/* SPDX-License-Identifier: MIT */
#pragma once

/* One event loop and what belongs to it alone: its client connections and its pool of idle
 * upstream connections. The model and the balancers are shared by all workers. */

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct Pool Pool;
typedef struct ClientConn ClientConn;
typedef struct Model Model;

typedef struct Worker {
        unsigned id;
        struct event_base *base;
        Manager *manager;
        Pool *pool;
        Model *model; /* the current model as this worker sees it (a reference) */
        ClientConn *clients; /* every client connection, for shutdown */
        size_t n_clients;
        bool stopping;       /* finish what is in flight, take nothing new */
        uint64_t requests;   /* served by this worker */
} Worker;

/* The model new requests use (a new reference). */
Model *worker_get_model(Worker *w);
/* Called when a client connection of the worker closed; lets shutdown finish. */
void worker_client_closed(Worker *w);
