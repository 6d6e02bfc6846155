/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "base/event-alloc.h"
#include "base/log.h"
#include "base/thread-sched.h"
#include "lb/balancer.h"
#include "lb/model.h"
#include "proxy/accept.h"
#include "proxy/conn-client.h"
#include "proxy/conn-limit.h"
#include "proxy/exchange.h"
#include "proxy/pool.h"
#include "proxy/worker.h"

Model *worker_borrow_model(Worker *w)
{
        w->model_exchanges++;
        return w->model;
}

void worker_return_model(Worker *w, Model *m)
{
        if (_likely_(m == w->model)) {
                assert(w->model_exchanges > 0);
                w->model_exchanges--;
                return;
        }
        for (size_t i = 0; i < w->n_retired; i++) {
                WorkerModel *wm = &w->retired[i];
                if (wm->model != m)
                        continue;
                assert(wm->n_exchanges > 0);
                if (--wm->n_exchanges > 0)
                        return;
                model_unref(wm->model);
                *wm = w->retired[--w->n_retired];
                return;
        }
        assert(!"an exchange returns a model its worker lent");
}

void worker_refresh_model(Worker *w)
{
        if (_likely_(!model_publisher_has_newer(w->shared->models, w->generation)))
                return;
        if (w->model_exchanges > 0) {
                /* Kept until its last exchange ends. Without memory for that, the worker stays
                 * on it and looks again at its next request. */
                WorkerModel *l = realloc(w->retired, (w->n_retired + 1) * sizeof(WorkerModel));
                if (!l)
                        return;
                w->retired = l;
        }
        Model *model = model_publisher_get_newer(w->shared->models, &w->generation);
        if (!model)
                return;
        if (w->model_exchanges > 0)
                w->retired[w->n_retired++] = (WorkerModel){ .model = w->model,
                                                            .n_exchanges = w->model_exchanges };
        else
                model_unref(w->model);
        w->model = model;
        w->model_exchanges = 0;
}

void worker_node_health_changed(Worker *w, const Upstream *u, const Node *n, const char *why)
{
        const WorkerHooks *h = &w->shared->hooks;
        if (h->node_health_changed)
                h->node_health_changed(h->userdata, u, n, why);
}

void worker_node_request_ended(Worker *w, Balancer *b, size_t i, RegistryEntry *e)
{
        registry_in_flight_sub(e);
        balancer_load_changed(b, i);
        const WorkerHooks *h = &w->shared->hooks;
        if (h->node_drained && node_health_claim_drained(e))
                h->node_drained(h->userdata, e);
}

/* A stopping worker without connections has nothing left to do: its loop ends. */
static void check_done(Worker *w)
{
        if (!w->stopping || w->n_clients > 0)
                return;
        event_base_loopexit(w->base, NULL);
}

void worker_client_closed(Worker *w)
{
        conn_limit_closed(w->shared->conn_limit);
        check_done(w);
}

void worker_post(Worker *w, unsigned bits)
{
        /* A bit already set has its wake-up on the way: the worker clears the bits (below)
         * after the eventfd woke it, so a bit set after that clearing finds it clear and
         * writes again. */
        if ((atomic_fetch_or(&w->mail_bits, bits) & bits) != bits)
                wake_signal(&w->mail);
}

void worker_wake_accept(Worker *w)
{
        worker_post(w, WORKER_MAIL_ACCEPT);
}

static void on_accept_timer(evutil_socket_t fd, short what, void *userdata)
{
        listeners_resume(userdata);
}

static void on_resolved(void *userdata)
{
        worker_post(userdata, WORKER_MAIL_RESOLVED);
}

void worker_stop(Worker *w)
{
        if (w->stopping)
                return;
        w->stopping = true;
        listeners_unwatch(w);
        /* Idle connections go now; busy ones close after their current response. */
        for (ClientConn *c = w->clients, *next; c; c = next) {
                next = c->next;
                client_conn_stop(c);
        }
        check_done(w);
}

static void on_mail(evutil_socket_t fd, short what, void *userdata)
{
        Worker *w = userdata;
        unsigned bits = atomic_exchange(&w->mail_bits, 0);

        if (bits & WORKER_MAIL_EXIT) {
                event_base_loopexit(w->base, NULL);
                return;
        }
        if (bits & WORKER_MAIL_RESOLVED)
                resolve_mailbox_deliver(&w->resolved);
        if (bits & WORKER_MAIL_STOP)
                worker_stop(w);
        if (bits & WORKER_MAIL_ACCEPT)
                listeners_resume(w);
        if (bits & WORKER_MAIL_HANDOFF)
                listeners_take_handed(w);
}

int worker_init(Worker *w, unsigned id, const WorkerShared *shared, struct event_base *base)
{
        *w = (Worker){ .id = id, .shared = shared, .base = base };
        atomic_init(&w->exited, false);
        w->mail.fd = -EBADF;
        atomic_init(&w->mail_bits, 0);
        resolve_mailbox_init(&w->resolved, on_resolved, w);
        w->pool = pool_new(w);
        atomic_init(&w->accept_waiting, false);
        handoff_init(&w->handoff);
        w->accept_timer = evtimer_new(base, on_accept_timer, w);
        w->n_watches = shared->n_listeners;
        w->watches = calloc(shared->n_listeners ? shared->n_listeners : 1, sizeof(ListenerWatch));
        if (!w->pool || !w->accept_timer || !w->watches)
                return -ENOMEM;
        int r = wake_init(&w->mail, base, on_mail, w);
        if (r < 0)
                return r;
        if (shared->registry) {
                r = registry_worker_attach(shared->registry, id, &w->counters);
                if (r < 0)
                        return r;
        }
        worker_refresh_model(w);
        return listeners_watch(shared->listeners, shared->n_listeners, w, w->watches);
}

/* What belongs to the worker's loop and must be freed on its thread: its connections, its
 * watches on the listening sockets, its pool and its spare exchanges. */
static void free_loop_objects(Worker *w)
{
        while (w->clients)
                client_conn_free(w->clients);
        listeners_unwatch(w);
        w->pool = pool_free(w->pool);
        exchange_spares_free(w);
}

void worker_done(Worker *w)
{
        free_loop_objects(w);
        free(w->watches);
        w->watches = NULL;
        /* Every loop has ended (the threads are joined, the control loop's is the caller's):
         * nothing
         * activates them any more, and the events can go. */
        if (w->accept_timer)
                event_free(w->accept_timer);
        w->accept_timer = NULL;
        wake_done(&w->mail);
        /* Its exchanges, waiters included, went with its connections. */
        resolve_mailbox_done(&w->resolved);
        /* Handed over after this worker stopped: closed unserved, as the backlog is at exit. */
        for (size_t n = handoff_done(&w->handoff); n > 0; n--)
                conn_limit_put(w->shared->conn_limit);
        /* Its exchanges went with its connections. */
        assert(w->n_retired == 0 && w->model_exchanges == 0);
        free(w->retired);
        w->retired = NULL;
        w->model = model_unref(w->model);
}

static void *worker_thread(void *userdata)
{
        Worker *w = userdata;
        log_attach(w->id + 1); /* queue 0 is the control loop's */
        /* A request is not to wait for a change being built on the same core. */
        (void)thread_ask_short_slice();
        /* Until told to end (check_done, worker_force_exit): a worker that accepts on no socket
         * of its own (an activated one is worker 0's) may have no event yet. */
        event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
        /* Connections of this loop are freed here, on its own thread. */
        free_loop_objects(w);
        event_alloc_thread_done();
        atomic_store(&w->exited, true);
        if (w->shared->hooks.thread_exited)
                w->shared->hooks.thread_exited(w->shared->hooks.userdata);
        return NULL;
}

int worker_start_thread(Worker *w)
{
        int r = pthread_create(&w->thread, NULL, worker_thread, w);
        if (r != 0)
                return -r;
        w->has_thread = true;
        /* Told apart in top -H, perf and /proc: lbproxy-w0, lbproxy-w1... */
        char name[16];
        snprintf(name, sizeof(name), "lbproxy-w%u", (unsigned)w->id);
        (void)pthread_setname_np(w->thread, name);
        return 0;
}

void worker_request_stop(Worker *w)
{
        worker_post(w, WORKER_MAIL_STOP);
}

void worker_force_exit(Worker *w)
{
        worker_post(w, WORKER_MAIL_EXIT);
}

void worker_join(Worker *w)
{
        if (w->has_thread) {
                pthread_join(w->thread, NULL);
                w->has_thread = false;
        }
}
