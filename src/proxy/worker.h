/* SPDX-License-Identifier: MIT */
#pragma once

/* One event loop and what belongs to it alone: its client connections and its pool of idle
 * upstream connections. The model, the balancers and the resolved names are shared by all
 * workers. Worker 0 runs on the control loop (the main thread, with D-Bus and DNS); the others
 * each on a thread of their own. */

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct Pool Pool;
typedef struct ClientConn ClientConn;
typedef struct Model Model;
typedef struct Listener Listener;

typedef struct Worker {
        unsigned id;
        struct event_base *base;
        Manager *manager;
        Pool *pool;
        Model *model;        /* the current model as this worker sees it (a reference) */
        unsigned generation; /* of that model, against the manager's */
        ClientConn *clients; /* every client connection, for shutdown */
        atomic_size_t n_clients; /* written by the worker, read by the status line */
        bool stopping;       /* finish what is in flight, take nothing new */
        atomic_uint_fast64_t requests; /* served by this worker (read by the control loop) */
        struct ListenerWatch *watches; /* this loop's watch on each shared socket */
        size_t n_watches;
        struct event *stop_event; /* activated from the control thread */
        struct event *accept_timer; /* the end of an accept back-off */
        struct event *accept_wake;  /* activated by the thread where a connection closed */
        atomic_bool accept_waiting; /* paused and registered to be woken (conn-limit.c) */
        bool accept_paused;         /* its watches on the listening sockets are off */
        struct Exchange *spare_exchanges; /* freed ones kept for reuse (exchange_alloc) */
        unsigned n_spare_exchanges;
        pthread_t thread;
        bool has_thread;
        atomic_bool exited; /* its thread left the loop */
} Worker;

/* The model new requests use (a new reference). */
Model *worker_get_model(Worker *w);
/* Picks up a model swapped in since the last look: one atomic load when nothing changed. */
void worker_refresh_model(Worker *w);
/* Called when a client connection of the worker closed: gives its slot of the connection limit
 * back, and lets shutdown finish. */
void worker_client_closed(Worker *w);
/* From any thread: the worker paused accepting, and may go on (listeners_resume). */
void worker_wake_accept(Worker *w);

int worker_init(Worker *w, unsigned id, Manager *m, struct event_base *base);
void worker_done(Worker *w);
/* Runs the worker's loop on a thread of its own (workers other than 0). */
int worker_start_thread(Worker *w);
/* From the control thread: stop accepting, close idle connections, finish the rest. */
void worker_request_stop(Worker *w);
/* From the control thread: the grace period is over. */
void worker_force_exit(Worker *w);
void worker_join(Worker *w);
/* Stops accepting and closes idle connections; on the worker's own thread. */
void worker_stop(Worker *w);
