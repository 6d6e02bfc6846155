/* SPDX-License-Identifier: MIT */
#include <sys/socket.h>

#include "base/log.h"
#include "proxy/accept.h"
#include "proxy/conn-client.h"
#include "proxy/conn-limit.h"
#include "proxy/handoff.h"
#include "proxy/worker.h"

/* At most this many connections are taken per readiness event of a listening socket (HAProxy's
 * tune.maxaccept is 64 too): then the loop serves the connections it has before it takes more,
 * so a burst of thousands does not hold up the requests already accepted. The socket stays
 * readable, so the rest is taken at the loop's next round. */
#define ACCEPT_BATCH 64

/* Errors accept(2) passes on from one connection (see its man page: "treat them like EAGAIN by
 * retrying"): that connection is lost, the next one may be fine. */
static bool accept_error_is_transient(int e)
{
        switch (e) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM: /* a firewall rule */
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case ETIMEDOUT:
                return true;
        default:
                return false;
        }
}

static void watches_set(Worker *w, bool on)
{
        if (w->accept_paused == !on)
                return;
        for (size_t i = 0; i < w->n_watches; i++) {
                struct event *ev = w->watches[i].ev;
                if (ev && on)
                        event_add(ev, NULL);
                else if (ev)
                        event_del(ev);
        }
        w->accept_paused = !on;
}

void listeners_resume(Worker *w)
{
        conn_limit_unwait(w->shared->conn_limit, w);
        if (w->accept_timer)
                evtimer_del(w->accept_timer);
        if (!w->stopping)
                watches_set(w, true);
}

/* Stops accepting on every listener of this worker, until `until` (CLOCK_MONOTONIC) or, with 0,
 * until a slot comes free. Returns false when that happened already: it goes on accepting. */
static bool pause_accepting(Worker *w, uint64_t until)
{
        watches_set(w, false);
        if (until > 0) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), d = until > now ? until - now : 0;
                struct timeval tv = { .tv_sec = (time_t)(d / USEC_PER_SEC),
                                      .tv_usec = (suseconds_t)(d % USEC_PER_SEC) };
                evtimer_add(w->accept_timer, &tv);
        }
        if (conn_limit_wait(w->shared->conn_limit, w, until))
                return true;
        listeners_resume(w);
        return false;
}

static bool out_of_resources(int e)
{
        return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* `cfd`, accepted with a slot of the connection limit, becomes a ClientConn of `w`. Returns
 * false when `w` paused accepting for want of descriptors or memory. */
static bool take_on(Worker *w, int cfd, const struct sockaddr *sa, const Listener *l)
{
        ConnLimit *cl = w->shared->conn_limit;
        int r = client_conn_new(w, cfd, sa, l);
        if (r >= 0) {
                registry_counter_add(&w->connections, 1);
                return true;
        }
        /* The connection is closed; its slot was never the connection's. */
        conn_limit_put(cl);
        if (out_of_resources(-r)) {
                (void)pause_accepting(w, conn_limit_back_off(cl, l->name, -r));
                return false;
        }
        log_warning_errno(r, "Failed to set up a connection on listener '%s': %m", l->name);
        return true;
}

/* A connection accepted on an activated socket goes to the workers in turn, the acceptor
 * included. Returns true when it was handed on (the other worker owns it from here on). */
static bool hand_on(Worker *w, int cfd, const struct sockaddr *sa, socklen_t len,
                    const Listener *l)
{
        const WorkerShared *s = w->shared;
        Worker *t = &s->workers[w->handoff_next++ % s->n_workers];
        if (t == w)
                return false;
        int r = handoff_push(&t->handoff, cfd, sa, len, l);
        if (r > 0)
                /* The queue was empty: its worker is not draining it (see listeners_take_handed). */
                worker_post(t, WORKER_MAIL_HANDOFF);
        /* Without memory for the queue, it is served here. */
        return r >= 0;
}

void listeners_take_handed(Worker *w)
{
        HandedConn batch[ACCEPT_BATCH];
        bool more;
        size_t n = handoff_take(&w->handoff, batch, ELEMENTSOF(batch), &more);
        for (size_t i = 0; i < n; i++) {
                if (w->stopping) {
                        /* Stopping takes nothing new: closed, as the backlog is at exit. */
                        safe_close(batch[i].fd);
                        conn_limit_put(w->shared->conn_limit);
                        continue;
                }
                (void)take_on(w, batch[i].fd, (struct sockaddr *)&batch[i].peer,
                              batch[i].listener);
        }
        /* Bounded work per event; a push that finds the queue non-empty wakes nobody, so the
         * rest is this worker's to come back for. */
        if (more)
                worker_post(w, WORKER_MAIL_HANDOFF);
}

static void on_listener_ready(evutil_socket_t fd, short what, void *userdata)
{
        ListenerWatch *lw = userdata;
        Worker *w = lw->worker;
        ConnLimit *cl = w->shared->conn_limit;
        unsigned accepted = 0;

        /* Another worker ran out of descriptors a moment ago: this one waits too, rather than
         * fail the same way. */
        uint64_t until = conn_limit_retry_at(cl);
        if (until > 0 && pause_accepting(w, until))
                return;

        for (unsigned i = 0; i < ACCEPT_BATCH && !w->accept_paused; i++) {
                /* The slot first, so that max_connections holds exactly: past it, connections
                 * stay in the kernel's backlog until one closes. */
                if (!conn_limit_take(cl)) {
                        if (pause_accepting(w, 0))
                                conn_limit_report_full(cl);
                        continue;
                }
                struct sockaddr_storage sa;
                socklen_t len = sizeof(sa);
                int cfd = accept4(fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        int e = errno;
                        conn_limit_put(cl);
                        if (e == EAGAIN || e == EWOULDBLOCK) {
                                if (i == 0)
                                        registry_counter_add(&w->accept_empty, 1);
                                break;
                        }
                        if (accept_error_is_transient(e))
                                continue;
                        /* Out of descriptors or memory, or a socket gone bad: retrying at once
                         * would fail the same way, as fast as the loop spins. */
                        (void)pause_accepting(w, conn_limit_back_off(cl, lw->listener->name, e));
                        break;
                }
                accepted++;
                if (lw->hand_on && hand_on(w, cfd, (struct sockaddr *)&sa, len, lw->listener))
                        continue;
                if (!take_on(w, cfd, (struct sockaddr *)&sa, lw->listener))
                        break;
        }
        if (accepted > 0)
                conn_limit_accepted(cl);
}

int listeners_watch(Listener *l, size_t n, Worker *w, ListenerWatch *watches)
{
        bool several = w->shared->n_workers > 1;
        for (size_t i = 0; i < n; i++) {
                watches[i] = (ListenerWatch){ .listener = &l[i], .worker = w };
                int fd;
                if (!l[i].activated)
                        /* Its own socket of the SO_REUSEPORT group. */
                        fd = l[i].fds[w->id < l[i].n_fds ? w->id : 0];
                else if (!several || w->id == 0) {
                        /* The one socket systemd passed: watched by worker 0 alone, which hands
                         * connections on, rather than by every worker, which would wake them all
                         * for each connection. */
                        fd = l[i].fds[0];
                        watches[i].hand_on = several;
                } else
                        continue;
                watches[i].ev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_listener_ready,
                                          &watches[i]);
                if (!watches[i].ev || event_add(watches[i].ev, NULL) < 0)
                        return log_error_errno(ENOMEM, "Failed to watch listener '%s'",
                                               l[i].name);
        }
        return 0;
}

void listeners_unwatch(Worker *w)
{
        conn_limit_unwait(w->shared->conn_limit, w);
        if (w->accept_timer)
                evtimer_del(w->accept_timer);
        for (size_t i = 0; w->watches && i < w->n_watches; i++)
                if (w->watches[i].ev) {
                        event_free(w->watches[i].ev);
                        w->watches[i].ev = NULL;
                }
}
