/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "proxy/conn-limit.h"
#include "proxy/worker.h"

#define BACKOFF_MIN_USEC (100 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC USEC_PER_SEC
#define MESSAGE_INTERVAL_USEC USEC_PER_SEC

/* Counts an event under cl->lock; returns how many to report now (this one included), or 0
 * while the last message is less than MESSAGE_INTERVAL_USEC old. */
static unsigned count_event(ConnLimitEvents *e, uint64_t now)
{
        e->count++;
        if (e->logged_usec != 0 && now - e->logged_usec < MESSAGE_INTERVAL_USEC)
                return 0;
        unsigned n = e->count;
        e->count = 0;
        e->logged_usec = now;
        return n;
}

/* The daemon's own descriptors, beside the listeners and the workers': standard input, output
 * and error, the journal, the bus and sd_notify's sockets, c-ares' (one or two per DNS server),
 * the signal pipe, and files opened now and then (configuration files and directories read at
 * a reload, certificates, keys and CA files, state.yaml's temporary file and its directory).
 * About twenty at most; the rest is headroom for what the libraries open on their own. */
#define OWN_FILES 32
/* Per worker: its epoll descriptor and the eventfd (or pipe) that wakes its loop. */
#define FILES_PER_WORKER 3
/* Per client connection, on average:
 *   1  the client's socket;
 *   1  the upstream connection it holds while a request or a session runs (at most one);
 *   1  the rest, shared: idle upstream connections kept in the pools (keepalive_pool per node
 *      address and worker), and the two pipes (four descriptors) a tcp tunnel or WebSocket
 *      moving bulk data takes for splice(2). Neither is needed to serve: when pipe2() fails the
 *      tunnel goes on copying through its buffers, and a pool only keeps what it has.
 * HAProxy counts 2 per connection and half a descriptor more for pipes; lbproxy pools more
 * idle connections than HAProxy (per worker), hence 3. */
#define FILES_PER_CONNECTION 3

void conn_limit_init(ConnLimit *cl)
{
        *cl = (ConnLimit){ 0 };
        atomic_init(&cl->current, 0);
        atomic_init(&cl->max, SIZE_MAX);
        atomic_init(&cl->n_waiting, 0);
        atomic_init(&cl->retry_at_usec, 0);
        atomic_init(&cl->backoff_usec, 0);
        pthread_mutex_init(&cl->lock, NULL);
}

void conn_limit_done(ConnLimit *cl)
{
        pthread_mutex_destroy(&cl->lock);
}

void conn_limit_set_workers(ConnLimit *cl, Worker *workers, size_t n)
{
        cl->workers = workers;
        cl->n_workers = n;
}

size_t conn_limit_current(const ConnLimit *cl)
{
        return atomic_load_explicit(&cl->current, memory_order_relaxed);
}

size_t conn_limit_max(const ConnLimit *cl)
{
        return atomic_load_explicit(&cl->max, memory_order_relaxed);
}

/* Wakes every registered worker. `backoff_over`: a descriptor came free, so the back-off in
 * progress ends now. */
static void wake(ConnLimit *cl, bool backoff_over)
{
        /* The order that makes a wake-up never lost, with conn_limit_wait: a waiter registers
         * (n_waiting), then looks at the count and the back-off again; a waker changes them
         * (a slot given back, the back-off cleared), then looks at n_waiting. Both sequentially
         * consistent, so one of the two sees the other's change: either the waiter goes on by
         * itself, or the waker sees it registered and wakes it. */
        if (atomic_load(&cl->n_waiting) == 0)
                return;
        if (backoff_over)
                atomic_store(&cl->retry_at_usec, 0);
        for (size_t i = 0; i < cl->n_workers; i++) {
                Worker *w = &cl->workers[i];
                if (atomic_exchange(&w->accept_waiting, false)) {
                        atomic_fetch_sub(&cl->n_waiting, 1);
                        worker_wake_accept(w);
                }
        }
}

void conn_limit_set_max(ConnLimit *cl, size_t max)
{
        size_t old = atomic_exchange(&cl->max, max);
        if (max > old)
                wake(cl, false);
}

bool conn_limit_take(ConnLimit *cl)
{
        size_t n = atomic_load_explicit(&cl->current, memory_order_relaxed);
        do {
                if (n >= atomic_load_explicit(&cl->max, memory_order_relaxed))
                        return false;
        } while (!atomic_compare_exchange_weak(&cl->current, &n, n + 1));
        return true;
}

void conn_limit_put(ConnLimit *cl)
{
        size_t old = atomic_fetch_sub(&cl->current, 1);
        assert(old > 0);
        wake(cl, false);
}

void conn_limit_closed(ConnLimit *cl)
{
        size_t old = atomic_fetch_sub(&cl->current, 1);
        assert(old > 0);
        wake(cl, true);
}

uint64_t conn_limit_retry_at(ConnLimit *cl)
{
        uint64_t at = atomic_load_explicit(&cl->retry_at_usec, memory_order_relaxed);
        if (_likely_(at == 0))
                return 0;
        if (now_usec(CLOCK_MONOTONIC) < at)
                return at;
        /* Over: cleared, so that the next look costs no clock reading (unless a new one
         * started meanwhile). */
        (void)atomic_compare_exchange_strong(&cl->retry_at_usec, &at, 0);
        return 0;
}

uint64_t conn_limit_back_off(ConnLimit *cl, const char *listener, int error)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC), until, backoff;
        unsigned failed;

        pthread_mutex_lock(&cl->lock);
        until = atomic_load(&cl->retry_at_usec);
        backoff = atomic_load(&cl->backoff_usec);
        if (until <= now) {
                /* No back-off in progress (another worker may have started one a moment ago:
                 * then this failure joins it). */
                backoff = backoff == 0 ? BACKOFF_MIN_USEC
                                       : backoff * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC
                                                                        : backoff * 2;
                until = now + backoff;
                atomic_store(&cl->backoff_usec, backoff);
                atomic_store(&cl->retry_at_usec, until);
        }
        failed = count_event(&cl->failed, now);
        pthread_mutex_unlock(&cl->lock);

        if (failed > 0)
                log_warning("Cannot accept connections on listener '%s': %s. Not accepting on any "
                            "listener for %llu ms; failed accepts since the last message: %u; "
                            "connections open: %zu (max_connections %zu)",
                            listener, strerror(error),
                            (unsigned long long)(backoff / USEC_PER_MSEC), failed,
                            conn_limit_current(cl), conn_limit_max(cl));
        return until;
}

void conn_limit_accepted(ConnLimit *cl)
{
        if (_likely_(atomic_load_explicit(&cl->backoff_usec, memory_order_relaxed) == 0))
                return;
        atomic_store(&cl->backoff_usec, 0);
}

void conn_limit_report_full(ConnLimit *cl)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        unsigned full;

        pthread_mutex_lock(&cl->lock);
        full = count_event(&cl->full, now);
        pthread_mutex_unlock(&cl->lock);

        if (full > 0)
                log_warning("Connection limit reached: %zu connections open (max_connections %zu). "
                            "New connections wait in the listen backlog; pauses since the last "
                            "message: %u", conn_limit_current(cl), conn_limit_max(cl), full);
}

bool conn_limit_wait(ConnLimit *cl, Worker *w, uint64_t until)
{
        if (!atomic_exchange(&w->accept_waiting, true))
                atomic_fetch_add(&cl->n_waiting, 1);
        /* See wake() for why looking again after registering is enough. */
        bool over = until == 0 ? atomic_load(&cl->current) < atomic_load(&cl->max)
                               : atomic_load(&cl->retry_at_usec) == 0;
        if (!over)
                return true;
        conn_limit_unwait(cl, w);
        return false;
}

void conn_limit_unwait(ConnLimit *cl, Worker *w)
{
        if (atomic_exchange(&w->accept_waiting, false))
                atomic_fetch_sub(&cl->n_waiting, 1);
}

size_t conn_limit_fds_needed(size_t max, size_t n_listen_fds, size_t n_workers)
{
        size_t own = OWN_FILES + n_listen_fds + FILES_PER_WORKER * n_workers;
        return max > (SIZE_MAX - own) / FILES_PER_CONNECTION ? SIZE_MAX
                                                             : own + FILES_PER_CONNECTION * max;
}

size_t conn_limit_default(uint64_t nofile, size_t n_listen_fds, size_t n_workers)
{
        size_t own = conn_limit_fds_needed(0, n_listen_fds, n_workers);
        if (nofile > SIZE_MAX / 2)
                nofile = SIZE_MAX / 2; /* RLIM_INFINITY: the count is bounded by memory anyway */
        /* A limit too small for the daemon's own files still serves one client at a time. */
        if (nofile < own + FILES_PER_CONNECTION)
                return 1;
        return (size_t)(nofile - own) / FILES_PER_CONNECTION;
}
