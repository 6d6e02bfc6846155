/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"

/* A plain check (http or tcp, no TLS) on a bare socket. It moves on at the steps of the wheel
 * (every PROBE_TICK_USEC, where checks start): a connect, a request or an answer started at one
 * step is most often done by the next (a loopback or LAN round trip is well under a step), so
 * one syscall there (getsockopt, send, recv) finds it done, with no epoll_ctl and no wake-up of
 * its own, and everything due at a step shares the step's one wake-up. What is not ready by
 * then is watched by epoll, within the check's deadline; the deadline needs no timer of its own
 * until then. */

/* A tcp check that connected: connect(AF_UNSPEC) resets the connection (RST, as close_reset)
 * and leaves the socket to connect again, from a new ephemeral port, without the socket(),
 * setsockopt() and close() of a new one. Only after a success: a socket whose connect failed
 * refuses the next (ECONNABORTED), and one disconnected while connecting keeps an error for
 * the next check to read as its own. */
static void disconnect_for_reuse(Probe *p)
{
        struct sockaddr unspec = { .sa_family = AF_UNSPEC };
        if (p->spare_fd < 0 && connect(p->fd, &unspec, sizeof(unspec)) == 0) {
                p->spare_fd = TAKE_FD(p->fd);
                p->spare_family = p->fd_family;
        }
        probe_close_conn(p);
}

static void raw_step(Probe *p);
static void raw_body(Probe *p);

void probe_plain_on_step(ProbeWheelEntry *e)
{
        raw_step((Probe *)((char *)e - offsetof(Probe, step)));
}

static void on_raw_event(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        if (what & EV_TIMEOUT)
                probe_fail(p, -ETIMEDOUT, "timeout");
        else if (p->state == CONN_BODY)
                raw_body(p);
        else
                raw_step(p);
}

static void raw_watch(Probe *p, short what, const struct timeval *tv)
{
        probe_unwatch(p);
        event_assign(&p->ev, p->base, p->fd, what | EV_PERSIST, on_raw_event, p);
        event_add(&p->ev, tv);
        p->watched = true;
}

/* Not ready when looked at: epoll says when, within what is left of the deadline. */
static void raw_wait(Probe *p, short what)
{
        if (p->watched && (event_get_events(&p->ev) & what))
                return; /* watched for it already, since an earlier look */
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= p->deadline_usec) {
                probe_fail(p, -ETIMEDOUT, "timeout");
                return;
        }
        uint64_t left = p->deadline_usec - now;
        struct timeval tv = { .tv_sec = (time_t)(left / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(left % USEC_PER_SEC) };
        raw_watch(p, what, &tv);
}

/* The next look at the next step. */
static void raw_next_step(Probe *p)
{
        probe_unwatch(p);
        probe_wheel_add(p->wheel, &p->step, PROBE_TICK_USEC / 2);
}

static void raw_send(Probe *p)
{
        ssize_t n = send(p->fd, p->request + p->sent, p->request_len - p->sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                raw_wait(p, EV_WRITE);
                return;
        }
        if (n < 0) {
                probe_fail(p, -errno, NULL);
                return;
        }
        p->sent += (size_t)n;
        if (p->sent < p->request_len) {
                raw_wait(p, EV_WRITE);
                return;
        }
        p->state = CONN_RAW_HEAD;
        raw_next_step(p);
}

/* The connect's outcome, from the socket's state (the first byte of TCP_INFO): one
 * getsockopt, where epoll would take two epoll_ctl and a wake-up. */
static void raw_connected(Probe *p)
{
        uint8_t state = 0;
        socklen_t len = sizeof(state);
        int error = 0;
        if (getsockopt(p->fd, IPPROTO_TCP, TCP_INFO, &state, &len) < 0)
                error = errno;
        else if (state == TCP_SYN_SENT) {
                raw_wait(p, EV_WRITE);
                return;
        } else if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT) {
                /* Closed: refused, unreachable, or reset after its SYN-ACK. */
                len = sizeof(error);
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
        p->state = CONN_RAW_SEND;
        p->sent = 0;
        raw_send(p);
}

/* The answer's head: read into a buffer on this frame, which is enough when it came whole
 * (most do); a head that comes in parts is kept in one of the Probe's own until it ends. */
static void raw_head(Probe *p)
{
        char stack[PROBE_HEAD_MAX + 1];
        char *buf = p->partial ? p->partial : stack;
        size_t have = p->partial_len;
        ssize_t n = recv(p->fd, buf + have, PROBE_HEAD_MAX + 1 - have, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                raw_wait(p, EV_READ);
                return;
        }
        if (n < 0) {
                probe_fail(p, -errno, NULL);
                return;
        }
        have += (size_t)n;
        p->received = have;
        HttpHead head;
        ssize_t k = probe_parse_head(p, buf, have, n == 0, &head);
        if (k < 0)
                return;
        if (k == 0) {
                if (!p->partial) {
                        p->partial = malloc(PROBE_HEAD_MAX + 1);
                        if (!p->partial) {
                                probe_fail(p, -ENOMEM, NULL);
                                return;
                        }
                        memcpy(p->partial, stack, have);
                }
                p->partial_len = have;
                raw_wait(p, EV_READ);
                return;
        }

        ProbeResult r = { .status = head.status };
        bool keep = probe_keepable(p, &head);
        int b = -1;
        if (keep) {
                probe_body_start(p, &head);
                b = probe_body_feed(p, buf + k, have - (size_t)k);
                keep = b >= 0 && n > 0;
        }
        p->partial = mfree(p->partial);
        p->partial_len = 0;
        if (keep && b > 0) {
                probe_unwatch(p);
                probe_went_idle(p); /* not watched: a close while idle is found by the next check */
        } else if (keep)
                raw_watch(p, EV_READ, NULL); /* the rest of the body */
        probe_finish(p, &r, keep);
}

/* More of a kept connection's body, after its check. */
static void raw_body(Probe *p)
{
        char buf[16 * 1024];
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        int b = n > 0 ? probe_body_feed(p, buf, (size_t)n) : -1;
        if (b < 0)
                probe_close_conn(p);
        else if (b > 0) {
                probe_unwatch(p);
                probe_went_idle(p);
        }
}

static void raw_step(Probe *p)
{
        if (p->pending_error < 0) {
                probe_fail(p, p->pending_error, NULL);
                return;
        }
        switch (p->state) {
        case CONN_RAW_CONNECT:
                raw_connected(p);
                return;
        case CONN_RAW_SEND:
                raw_send(p);
                return;
        case CONN_RAW_HEAD:
                raw_head(p);
                return;
        default:
                assert(!"a step of a plain check in this state");
                probe_fail(p, -EIO, NULL);
        }
}


/* An immediate failure is said at the next step. */
int probe_plain_open(Probe *p, const ProbeSpec *spec)
{
        int family = spec->sa->sa_family;
        _cleanup_close_ int fd = -EBADF;
        if (!p->http && p->spare_fd >= 0 && p->spare_family == family)
                fd = TAKE_FD(p->spare_fd);
        else {
                p->spare_fd = safe_close(p->spare_fd);
                fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
                if (fd < 0)
                        return -errno;
        }
        if (p->http) {
                /* The request in one send most often, but one in parts must not wait. */
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (connect(fd, spec->sa, spec->sa_len) < 0 && errno != EINPROGRESS)
                p->pending_error = -errno;
        p->fd = TAKE_FD(fd);
        p->fd_family = family;
        p->tls = false;
        p->state = CONN_RAW_CONNECT;
        raw_next_step(p);
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
        p->state = p->sent < p->request_len ? CONN_RAW_SEND : CONN_RAW_HEAD;
        raw_next_step(p);
        return true;
}
