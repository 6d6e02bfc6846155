/* SPDX-License-Identifier: MIT */
/* A check moves on at the steps of the wheel (every PROBE_TICK_USEC, where checks start): a
 * connect, a request or an answer started at one step is most often done by the next (a loopback
 * or LAN round trip is well under a step), so one look there (getsockopt, send, recv; for TLS the
 * Stream's one read, which decrypts what that recv brought) finds it done, with no epoll_ctl and
 * no wake-up of its own, and everything due at a step shares the step's one wake-up. What is not
 * ready by then is watched by epoll, within the check's deadline; the deadline needs no timer of
 * its own until then. The answer's head is read into a buffer on the stack and parsed there; its
 * body is read to its end when the connection is kept. Plain and TLS checks alike, once the
 * request went: only their connects differ (health-probe-plain.c, health-probe-tls.c). */
#include <assert.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"
#include "tls/tls.h"

static void step(Probe *p);
static void read_body(Probe *p);

void probe_on_step(ProbeWheelEntry *e)
{
        step((Probe *)((char *)e - offsetof(Probe, step)));
}

static void on_event(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        if (what & EV_TIMEOUT)
                probe_fail(p, -ETIMEDOUT, "timeout");
        else if (p->state == CONN_BODY)
                read_body(p);
        else
                step(p);
}

void probe_unwatch(Probe *p)
{
        if (p->watched)
                event_del(&p->ev);
        p->watched = false;
}

/* Input the TLS layer took off the socket and holds (records behind a full buffer, an end met
 * after bytes) is not signalled by epoll: the event is run at the loop's next turn instead. */
static void watch(Probe *p, short what, const struct timeval *tv)
{
        probe_unwatch(p);
        event_assign(&p->ev, p->base, probe_fd(p), what | EV_PERSIST, on_event, p);
        event_add(&p->ev, tv);
        p->watched = true;
        if ((what & EV_READ) && p->tls && stream_has_pending_in(&p->stream))
                event_active(&p->ev, EV_READ, 0);
}

void probe_wait(Probe *p, short what)
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
        watch(p, what, &tv);
}

void probe_next_step(Probe *p)
{
        probe_unwatch(p);
        probe_wheel_add_next_step(p->wheel, &p->step);
}

void probe_sent(Probe *p)
{
        p->state = CONN_HEAD;
        probe_next_step(p);
}

/* What has come of the answer, now, into buf[0..len): bytes, 0 at its end, -EAGAIN, or a
 * negative errno. */
static ssize_t conn_recv(Probe *p, char *buf, size_t len)
{
        if (p->tls)
                return stream_read_into(&p->stream, buf, len);
        ssize_t n = recv(p->fd, buf, len, MSG_DONTWAIT);
        return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
}

static const char *conn_detail(Probe *p)
{
        return p->tls ? stream_error_detail(&p->stream) : NULL;
}

/* The answer's head: read into a buffer on this frame, which is enough when it came whole
 * (most do); a head that comes in parts is kept in one of the Probe's own until it ends. */
static void read_head(Probe *p)
{
        char stack[PROBE_HEAD_MAX + 1];
        char *buf = p->partial ? p->partial : stack;
        size_t have = p->partial_len;
        ssize_t n = conn_recv(p, buf + have, PROBE_HEAD_MAX + 1 - have);
        if (n == -EAGAIN) {
                probe_wait(p, EV_READ);
                return;
        }
        if (n < 0) {
                probe_fail(p, (int)n, conn_detail(p));
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
                probe_wait(p, EV_READ);
                return;
        }

        ProbeResult r = { .status = head.status,
                          .resumed = p->tls && tls_stream_resumed(&p->stream) };
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
                watch(p, EV_READ, NULL); /* the rest of the body */
        probe_finish(p, &r, keep);
}

/* More of a kept connection's body, after its check: what has come, in reads of a buffer's
 * length (a full one may have left more in the TLS layer). */
static void read_body(Probe *p)
{
        char buf[16 * 1024];
        ssize_t n;
        int b;
        do {
                n = conn_recv(p, buf, sizeof(buf));
                b = n > 0 ? probe_body_feed(p, buf, (size_t)n) : n == -EAGAIN ? 0 : -1;
        } while (b == 0 && n == (ssize_t)sizeof(buf));
        if (b < 0)
                probe_close_conn(p);
        else if (b > 0) {
                probe_unwatch(p);
                probe_went_idle(p);
        } else if (p->tls && stream_has_pending_in(&p->stream))
                event_active(&p->ev, EV_READ, 0); /* an end held back: see watch() */
}

static void step(Probe *p)
{
        if (p->pending_error < 0) {
                probe_fail(p, p->pending_error, NULL);
                return;
        }
        switch (p->state) {
        case CONN_CONNECT:
                probe_plain_connected(p);
                return;
        case CONN_SEND:
                probe_plain_send(p);
                return;
        case CONN_HEAD:
                read_head(p);
                return;
        default:
                assert(!"a step of a check in this state");
                probe_fail(p, -EIO, NULL);
        }
}
