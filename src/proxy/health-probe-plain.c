/* SPDX-License-Identifier: MIT */
/* A plain check (http or tcp, no TLS) on a bare socket: its connect and its request, looked at
 * on the wheel's steps (health-probe-step.c, which reads the answer). */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"

/* A tcp check that connected: connect(AF_UNSPEC) resets the connection (RST, as
 * stream_tcp_reset_on_close) and leaves the socket to connect again, from a new ephemeral port,
 * without the socket(), setsockopt() and close() of a new one. Only after a success: a socket
 * whose connect failed refuses the next (ECONNABORTED), and one disconnected while connecting
 * keeps an error for the next check to read as its own. */
static void disconnect_for_reuse(Probe *p)
{
        struct sockaddr unspec = { .sa_family = AF_UNSPEC };
        if (p->spare_fd < 0 && connect(p->fd, &unspec, sizeof(unspec)) == 0) {
                p->spare_fd = TAKE_FD(p->fd);
                p->spare_family = p->fd_family;
        }
        probe_close_conn(p);
}

void probe_plain_send(Probe *p)
{
        ssize_t n = send(p->fd, p->request + p->sent, p->request_len - p->sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                probe_wait(p, EV_WRITE);
                return;
        }
        if (n < 0) {
                probe_fail(p, -errno, NULL);
                return;
        }
        p->sent += (size_t)n;
        if (p->sent < p->request_len) {
                probe_wait(p, EV_WRITE);
                return;
        }
        probe_sent(p);
}

/* The wheel's set of connects, once a step: what each tcp check's socket did since the last
 * step took them, marked on its Probe while it connects. The set is edge-triggered and nothing
 * sleeps on it, so a socket's change wakes nobody, and each comes once, with the socket's
 * state as it is now (epoll asks the socket again as it reports it): a connect made, or failed,
 * or nothing yet. One epoll_wait for a step's checks, where each took a getsockopt. */
static void take_connects(ProbeWheel *w)
{
        if (w->connects_tick == w->done_tick)
                return;
        w->connects_tick = w->done_tick;
        struct epoll_event ev[64];
        int n;
        do {
                n = epoll_wait(w->connects_fd, ev, ELEMENTSOF(ev), 0);
                for (int i = 0; i < n; i++) {
                        Probe *q = ev[i].data.ptr;
                        if (q->state == CONN_CONNECT)
                                q->connect_events = ev[i].events;
                }
        } while (n == (int)ELEMENTSOF(ev));
}

/* The connect's state, from the set of connects at a step: 0 when it is not done, 1 when it
 * is, -1 when it failed; or, without the set or out of a step (epoll said the socket is
 * writable, after a look found it connecting), from the socket's state (the first byte of
 * TCP_INFO). */
static int connect_state(Probe *p)
{
        if (p->in_connects && p->wheel->running) {
                take_connects(p->wheel);
                uint32_t e = p->connect_events;
                return e & (EPOLLERR | EPOLLHUP) ? -1 : e & EPOLLOUT ? 1 : 0;
        }
        uint8_t state = 0;
        socklen_t len = sizeof(state);
        if (getsockopt(p->fd, IPPROTO_TCP, TCP_INFO, &state, &len) < 0)
                return -1;
        return state == TCP_SYN_SENT                                ? 0
               : state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT ? 1
                                                                     : -1;
}

/* The connect's outcome, from the set of connects or the socket's state: no syscall of its own
 * or one, where epoll would take two epoll_ctl and a wake-up. */
void probe_plain_connected(Probe *p)
{
        int error = 0;
        int state = connect_state(p);
        if (state == 0) {
                probe_wait(p, EV_WRITE);
                return;
        }
        if (state < 0) {
                /* Closed: refused, unreachable, or reset after its SYN-ACK. */
                socklen_t len = sizeof(error);
                if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error == 0)
                        error = ECONNRESET;
        }
        if (error != 0) {
                probe_fail(p, -error, NULL);
                return;
        }
        if (!p->http) {
                ProbeResult r = { 0 };
                disconnect_for_reuse(p);
                probe_finish(p, &r, true);
                return;
        }
        p->state = CONN_SEND;
        p->sent = 0;
        probe_plain_send(p);
}

/* A tcp check is half open: SYN, the server's SYN-ACK, and our reset, as F5's "TCP half open"
 * monitor does. On a connecting socket TCP_DEFER_ACCEPT makes the kernel hold back the
 * handshake's last ACK (for a delayed-ACK time, 200 ms, to ride on data that never comes): the
 * socket is ESTABLISHED on the SYN-ACK, and the reset at the next step (10 ms) reaches a request
 * the server still holds in its SYN queue. So the server makes no connection, wakes no
 * application and accepts nothing: three packets where a full connect makes six with the
 * server's accept and close (four with HAProxy's reset), and on loopback, where the prober's
 * thread runs the server's side too, a fifth less of its CPU (a loop of 1,000 targets: 23 µs a
 * check against 28). What it shows is what a connect shows: the node's kernel answers on the port
 * and its listener's queue has room (a full queue drops the SYN). Kept on the socket when it is
 * reused. Best effort: without it the check is a full connect, as before. */
static void half_open(int fd)
{
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
}

/* A tcp check's socket joins the wheel's set of connects for its life (its reuses too); closed,
 * it leaves it. Without it, each look at its connect is a getsockopt. */
static void join_connects(Probe *p, int fd)
{
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = p };
        p->in_connects = p->wheel->connects_fd >= 0 &&
                         epoll_ctl(p->wheel->connects_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

/* An immediate failure is said at the next step. */
int probe_plain_open(Probe *p, const ProbeSpec *spec)
{
        int family = spec->sa->sa_family;
        _cleanup_close_ int fd = -EBADF;
        if (!p->http && p->spare_fd >= 0 && p->spare_family == family)
                fd = TAKE_FD(p->spare_fd); /* half open already */
        else {
                p->spare_fd = safe_close(p->spare_fd);
                fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
                if (fd < 0)
                        return -errno;
                p->in_connects = false;
                if (p->http) {
                        /* The request in one send most often, but one in parts must not wait. */
                        int one = 1;
                        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                } else {
                        half_open(fd);
                        join_connects(p, fd);
                }
        }
        p->connect_events = 0;
        if (connect(fd, spec->sa, spec->sa_len) < 0 && errno != EINPROGRESS)
                p->pending_error = -errno;
        p->fd = TAKE_FD(fd);
        p->fd_family = family;
        p->tls = false;
        p->state = CONN_CONNECT;
        probe_next_step(p);
        return 0;
}

/* Sent now, the answer looked for at the next step. An idle connection is not watched: one the
 * server closed shows here (EPIPE, ECONNRESET: a new one then) or in the answer (nothing:
 * `stale`, and the caller starts again). */
bool probe_plain_reuse(Probe *p)
{
        ssize_t n = send(p->fd, p->request, p->request_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
                return false;
        p->sent = n < 0 ? 0 : (size_t)n;
        if (p->sent < p->request_len) {
                p->state = CONN_SEND;
                probe_next_step(p);
        } else
                probe_sent(p);
        return true;
}
