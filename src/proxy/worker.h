/* SPDX-License-Identifier: MIT */
#pragma once

/* One event loop and what belongs to it alone: its client connections and its pool of idle
 * upstream connections. The model, the balancers and the resolved names are shared by all
 * workers. Each runs on a thread of its own, so the control loop (the main thread: D-Bus, DNS,
 * the building of models) serves no request.
 *
 * libevent runs without its locks (evthread is never turned on: they cost about 10% more
 * instructions a request). So no thread touches another's loop: what another thread asks of a
 * worker is a bit in its mailbox (`mail_bits`) and a write to its eventfd (base/wake.h). */

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/wake.h"
#include "lb/publisher.h"
#include "lb/registry.h"
#include "net/listener.h"
#include "net/resolver.h"
#include "proxy/handoff.h"

typedef struct Pool Pool;
typedef struct ClientConn ClientConn;
typedef struct ConnLimit ConnLimit;
typedef struct Model Model;
typedef struct Upstream Upstream;
typedef struct Node Node;
typedef struct Balancer Balancer;

/* How what happens in a worker reaches the layer above (control), which sets them before the
 * workers start. Any may be NULL: nobody above listens (a unit test's worker). */
typedef struct WorkerHooks {
        /* A node went down (`why` says what failed) or came up again (`why` NULL). On the
         * worker's thread. */
        void (*node_health_changed)(void *userdata, const Upstream *u, const Node *n,
                                    const char *why);
        /* The last request in flight to a draining node (its entry, which names it) ended. On
         * the worker's thread. */
        void (*node_drained)(void *userdata, const RegistryEntry *node);
        /* A worker thread left its loop (called on that thread). */
        void (*thread_exited)(void *userdata);
        void *userdata;
} WorkerHooks;

/* What the workers share, set up before the first one starts and not written while they run. */
typedef struct WorkerShared {
        ModelPublisher *models;   /* the model new requests use */
        Registry *registry;       /* where requests are counted; NULL: not counted */
        ConnLimit *conn_limit;    /* client connections, all workers together */
        Listener *listeners;      /* every worker accepts on each (proxy/accept.h) */
        size_t n_listeners;
        struct Worker *workers;   /* all of them, whom connections may be handed to */
        size_t n_workers;         /* 0 or 1: connections are never handed on */
        WorkerHooks hooks;
} WorkerShared;

/* A model a worker still holds after a newer one came, for the exchanges started on it. */
typedef struct WorkerModel {
        Model *model;          /* a reference */
        unsigned n_exchanges;  /* still running on it */
} WorkerModel;

typedef struct Worker {
        unsigned id;
        struct event_base *base;
        const WorkerShared *shared;
        Pool *pool;
        Model *model;        /* the current model as this worker sees it (a reference) */
        unsigned generation; /* of that model, against the publisher's */
        /* Exchanges borrow the worker's reference rather than take one each (an atomic on a
         * line every worker writes): counted here, by this worker alone. */
        unsigned model_exchanges; /* running on `model` */
        WorkerModel *retired;     /* earlier models with exchanges still running */
        size_t n_retired;
        ClientConn *clients; /* every client connection, for shutdown */
        atomic_size_t n_clients; /* written by the worker, read by the status line */
        bool stopping;       /* finish what is in flight, take nothing new */
        atomic_uint_fast64_t requests; /* served by this worker (read by the control loop) */
        /* Client connections this worker took on, and the times a listening socket woke it
         * and accept(2) had nothing for it (another worker took the connection first): said
         * at the end, per worker, so that how the kernel spread the load is seen. Written by
         * the worker alone, read by the control loop. */
        atomic_uint_fast64_t connections;
        atomic_uint_fast64_t accept_empty;
        RegistryWorker *counters; /* its own blocks of the registry's counters, or NULL */
        struct ListenerWatch *watches; /* this loop's watch on each shared socket */
        size_t n_watches;
        Wake mail;                  /* other threads' requests, the bits of mail_bits */
        atomic_uint mail_bits;      /* WORKER_MAIL_* not yet seen by the worker */
        ResolveMailbox resolved;    /* DNS answers for its exchanges that waited for one */
        struct event *accept_timer; /* the end of an accept back-off */
        atomic_bool accept_waiting; /* paused and registered to be woken (conn-limit.c) */
        Handoff handoff;            /* connections another worker accepted for this one */
        size_t handoff_next;        /* the acceptor's rotation over the workers */
        bool accept_paused;         /* its watches on the listening sockets are off */
        struct Exchange *spare_exchanges; /* freed ones kept for reuse (exchange_alloc) */
        unsigned n_spare_exchanges;
        pthread_t thread;
        bool has_thread;
        atomic_bool exited; /* its thread left the loop */
} Worker;

/* The model a new exchange uses, borrowed from the worker until worker_return_model(). */
Model *worker_borrow_model(Worker *w);
/* An exchange is done with `m`: the worker lets go of a model it no longer uses. */
void worker_return_model(Worker *w, Model *m);
/* Picks up a model swapped in since the last look: one atomic load when nothing changed. */
void worker_refresh_model(Worker *w);
/* Called when a client connection of the worker closed: gives its slot of the connection limit
 * back, and lets shutdown finish. */
void worker_client_closed(Worker *w);
/* What another thread asks of a worker (worker_post). */
enum {
        WORKER_MAIL_STOP = 1u << 0,     /* stop accepting, finish what is in flight */
        WORKER_MAIL_EXIT = 1u << 1,     /* the grace period is over: leave the loop */
        WORKER_MAIL_ACCEPT = 1u << 2,   /* it paused accepting, and may go on */
        WORKER_MAIL_HANDOFF = 1u << 3,  /* its handoff queue has connections */
        WORKER_MAIL_RESOLVED = 1u << 4, /* its resolve mailbox has answers */
};
/* From any thread, the worker's own included: the worker's loop runs what `bits` ask, once
 * however often they were asked before it looked. */
void worker_post(Worker *w, unsigned bits);
/* From any thread: the worker paused accepting, and may go on (listeners_resume). */
void worker_wake_accept(Worker *w);

/* A node's health changed (node_report_failure/success said so): the hook hears it. */
void worker_node_health_changed(Worker *w, const Upstream *u, const Node *n, const char *why);
/* A request to the node of `e`, item i of balancer `b`, ended: its count drops, the balancer
 * hears it, and when it was the last of a draining node, the hook does. */
void worker_node_request_ended(Worker *w, Balancer *b, size_t i, RegistryEntry *e);

/* `shared` outlives the worker. */
int worker_init(Worker *w, unsigned id, const WorkerShared *shared, struct event_base *base);
void worker_done(Worker *w);
/* Runs the worker's loop on a thread of its own. */
int worker_start_thread(Worker *w);
/* From the control thread: stop accepting, close idle connections, finish the rest. */
void worker_request_stop(Worker *w);
/* From the control thread: the grace period is over. */
void worker_force_exit(Worker *w);
void worker_join(Worker *w);
/* Stops accepting and closes idle connections; on the worker's own thread. */
void worker_stop(Worker *w);
