/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/util.h"
#include "http/http1.h"
#include "net/stream.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"
#include "tls/tls.h"

typedef enum ConnState {
        CONN_NONE,
        /* A plain (not TLS) check on a bare socket, looked at on the wheel's steps: */
        CONN_RAW_CONNECT, /* connect() called */
        CONN_RAW_SEND,    /* connected, the request not all sent */
        CONN_RAW_HEAD,    /* the request sent, its answer's head awaited */
        /* A TLS check on a Stream: */
        CONN_CONNECT, /* the Stream's connect, and TLS handshake */
        CONN_HEAD,    /* the request sent, its answer's head awaited */
        /* Either: */
        CONN_BODY, /* the head read (the check is over), its body read to its end */
        CONN_IDLE, /* kept for the next check */
} ConnState;

struct Probe {
        struct event_base *base;
        ProbeWheel *wheel;
        ProbeDone done;
        void *userdata;
        ConnState state;
        bool running;  /* a check runs: its callback is still to come */
        bool http;
        bool keep;     /* this check's connection may be kept */
        bool reused;   /* this check runs on a kept connection */
        bool tls;      /* the connection is a Stream's */
        char *request; /* a copy of the spec's, made when it changes */
        size_t request_len;
        uint64_t deadline_usec;
        HttpBody body;
        uint64_t body_left;
        HttpChunked chunked;
        uint64_t opened_usec, idle_usec;
        /* TLS */
        struct event timer; /* the running check's deadline */
        int pending_error;  /* the connect failed at once: said by the timer, run at once */
        Stream stream;
        /* Plain */
        int fd;
        int fd_family;
        int spare_fd;       /* a tcp check's socket, disconnected, for the next connect */
        int spare_family;
        ProbeWheelEntry step; /* the next step's look at fd */
        struct event ev;      /* fd watched by epoll: what a step found not ready yet */
        bool watched;
        size_t sent;        /* of the request, in CONN_RAW_SEND */
        char *partial;      /* a head that came in parts so far (PROBE_HEAD_MAX + 1) */
        size_t partial_len;
        size_t received;    /* of this check's answer */
};

/* A reset rather than a FIN: no closing handshake and no TIME_WAIT left behind, a thousand a
 * second (HAProxy ends its checks so). Nothing is left unsaid: the check has its answer, or has
 * failed. When the server closed first, its FIN is answered by a plain close. */
static void close_reset(int fd)
{
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void unwatch(Probe *p)
{
        if (p->watched)
                event_del(&p->ev);
        p->watched = false;
}

static void close_conn(Probe *p)
{
        unwatch(p);
        probe_wheel_del(p->wheel, &p->step);
        if (p->tls && p->state != CONN_NONE) {
                if (p->stream.fd >= 0 && !p->stream.eof)
                        close_reset(p->stream.fd);
                stream_done(&p->stream);
        }
        if (p->fd >= 0)
                close_reset(p->fd);
        p->fd = safe_close(p->fd);
        p->partial = mfree(p->partial);
        p->partial_len = 0;
        p->state = CONN_NONE;
}

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
        close_conn(p);
}

static void finish(Probe *p, const ProbeResult *r, bool keep)
{
        assert(p->running);
        p->running = false;
        if (p->tls)
                event_del(&p->timer);
        if (!keep)
                close_conn(p);
        p->done(p, r, p->userdata); /* may free p: nothing after this */
}

/* Nothing of the answer came. */
static bool got_nothing(Probe *p)
{
        return p->tls ? evbuffer_get_length(p->stream.in) == 0 : p->received == 0;
}

static void fail(Probe *p, int error, const char *detail)
{
        /* The detail may be the stream's (its TLS state's), which finish() closes before the
         * result is reported: a copy, on this frame, outlives it. */
        char text[256];
        if (detail) {
                snprintf(text, sizeof(text), "%s", detail);
                detail = text;
        }
        ProbeResult r = { .error = error, .detail = detail };
        /* Nothing of the answer on a kept connection, which the server ended: it closed it as
         * the request went out (or before, while idle). Said as such, not as the node's
         * failure. */
        if (p->reused &&
            (p->state == CONN_HEAD || p->state == CONN_RAW_SEND || p->state == CONN_RAW_HEAD) &&
            error != -ETIMEDOUT && got_nothing(p)) {
                r.stale = true;
                r.detail = "kept connection closed by the server";
        }
        finish(p, &r, false);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        int error = p->pending_error;
        p->pending_error = 0;
        if (error < 0)
                fail(p, error, NULL);
        else
                fail(p, -ETIMEDOUT, "timeout");
}

/* Feeds bytes of the body: 1 when they end it exactly, 0 when more is to come, -1 when the
 * connection is not to be kept (something after the answer, which nothing asked for, or a
 * broken chunked framing). */
static int body_feed(Probe *p, const char *data, size_t len)
{
        if (p->body == HTTP_BODY_LENGTH) {
                size_t n = len < p->body_left ? len : (size_t)p->body_left;
                p->body_left -= n;
                len -= n;
                if (p->body_left > 0)
                        return 0;
        } else if (p->body == HTTP_BODY_CHUNKED) {
                size_t used;
                int k = http_chunked_feed(&p->chunked, data, len, 1024, &used);
                if (k < 0)
                        return -1;
                if (k == 0)
                        return 0;
                len -= used;
        }
        return len > 0 ? -1 : 1;
}

/* The body ended: the connection waits for the next check. */
static void went_idle(Probe *p)
{
        p->state = CONN_IDLE;
        p->idle_usec = now_usec(CLOCK_MONOTONIC);
}

/* Whether the connection can be kept after an answer with this head: its body is read to its
 * end only for that, so one of unknown length (to the close), or a large one, ends it instead. */
static bool keepable(const Probe *p, const HttpHead *head)
{
        return p->keep && head->keep_alive &&
               (head->body == HTTP_BODY_NONE || head->body == HTTP_BODY_CHUNKED ||
                (head->body == HTTP_BODY_LENGTH && head->content_length <= PROBE_BODY_MAX));
}

static void body_start(Probe *p, const HttpHead *head)
{
        p->state = CONN_BODY;
        p->body = head->body;
        p->body_left = head->content_length;
        http_chunked_init(&p->chunked);
}

/* An answer's head in buf[0..len): its length (> 0), or 0 when more is needed; or the check
 * failed, said (the Probe may be gone): -1. `eof`: no more comes. */
static ssize_t parse_head(Probe *p, const char *buf, size_t len, bool eof, HttpHead *head)
{
        const char *reason = NULL;
        ssize_t k = len == 0 ? -EAGAIN
                             : http1_parse_response(buf, len, HTTP_MAX_HEADERS, PROBE_HEAD_MAX,
                                                    (HttpSlice){ "GET", 3 }, head, &reason);
        if (k == -EAGAIN && eof)
                fail(p, -ECONNRESET, "closed before an answer");
        else if (k == -EMSGSIZE)
                fail(p, -EMSGSIZE, "answer head too long");
        else if (k < 0 && k != -EAGAIN)
                fail(p, -EBADMSG, reason ? reason : "not an HTTP answer");
        else
                return k == -EAGAIN ? 0 : k;
        return -1;
}

/* ---- TLS: a Stream ---- */

/* More of the body is to come: the stream stopped reading when its input reached read_max,
 * which draining made room under. */
static int more(Probe *p)
{
        stream_read_start(&p->stream);
        return 0;
}

/* Reads what came of the body: the connection is kept when it ends with nothing after it.
 * Returns 1 (ended: idle now), 0 (more to come) or -1 (not to be kept). */
static int body_consume(Probe *p)
{
        struct evbuffer *in = p->stream.in;
        int k = 0;
        if (evbuffer_get_length(in) == 0)
                k = body_feed(p, NULL, 0); /* no body, or an empty one */
        /* Fed by the evbuffer's own chunks: nothing is copied. */
        while (k == 0 && evbuffer_get_length(in) > 0) {
                struct evbuffer_iovec v;
                if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                        return -1;
                k = body_feed(p, v.iov_base, v.iov_len);
                evbuffer_drain(in, v.iov_len);
        }
        if (k < 0 || (k > 0 && evbuffer_get_length(in) > 0))
                return -1; /* something after the answer: nothing asked for it */
        if (k == 0)
                return more(p);
        went_idle(p);
        /* Watched while idle: the server's close is seen (and answered) when it comes. */
        stream_read_start(&p->stream);
        return 1;
}

static void on_connect(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (error < 0) {
                fail(p, error, stream_error_detail(s));
                return;
        }
        if (!p->http) {
                /* A tcp check over TLS: the handshake was the check. */
                ProbeResult r = { .resumed = tls_stream_resumed(s) };
                finish(p, &r, false);
                return;
        }
        p->state = CONN_HEAD;
        int k = stream_flush(s);
        if (k < 0) {
                fail(p, k, NULL);
                return;
        }
        stream_read_start(s);
}

static void on_head(Probe *p)
{
        Stream *s = &p->stream;
        size_t len = evbuffer_get_length(s->in);
        const char *buf = (const char *)evbuffer_pullup(s->in, -1);
        HttpHead head;
        ssize_t k = parse_head(p, buf, len, s->eof, &head);
        if (k <= 0)
                return;
        ProbeResult r = { .status = head.status, .resumed = tls_stream_resumed(s) };
        bool keep = keepable(p, &head);
        if (keep) {
                evbuffer_drain(s->in, (size_t)k);
                body_start(p, &head);
                keep = body_consume(p) >= 0 && !s->eof;
        }
        finish(p, &r, keep);
}

static void on_read(Stream *s, void *userdata)
{
        Probe *p = userdata;
        switch (p->state) {
        case CONN_HEAD:
                on_head(p);
                return;
        case CONN_BODY:
                if (body_consume(p) < 0 || s->eof)
                        close_conn(p);
                return;
        case CONN_IDLE:
                /* The server closed it (or said what nobody asked for): gone, quietly. */
                close_conn(p);
                return;
        default:
                assert(!"input before the connect ended");
                close_conn(p);
        }
}

static void on_error(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (p->running)
                fail(p, error, stream_error_detail(s));
        else
                close_conn(p); /* the body of a check that is over, or an idle connection */
}

static void on_drain(Stream *s, void *userdata)
{
}

static const StreamHandler probe_handler = {
        .on_read = on_read,
        .on_drain = on_drain,
        .on_connect = on_connect,
        .on_error = on_error,
};

/* ---- Plain: a bare socket, looked at on the wheel's steps ----
 *
 * A check moves on at the steps of the wheel (every PROBE_TICK_USEC, where checks start): a
 * connect, a request or an answer started at one step is most often done by the next (a
 * loopback or LAN round trip is well under a step), so one syscall there (getsockopt, send,
 * recv) finds it done, with no epoll_ctl and no wake-up of its own, and everything due at a
 * step shares the step's one wake-up. What is not ready by then is watched by epoll, within
 * the check's deadline; the deadline needs no timer of its own until then. */

static void raw_step(Probe *p);
static void raw_body(Probe *p);

static void on_step(ProbeWheelEntry *e)
{
        raw_step((Probe *)((char *)e - offsetof(Probe, step)));
}

static void on_raw_event(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        if (what & EV_TIMEOUT)
                fail(p, -ETIMEDOUT, "timeout");
        else if (p->state == CONN_BODY)
                raw_body(p);
        else
                raw_step(p);
}

static void raw_watch(Probe *p, short what, const struct timeval *tv)
{
        unwatch(p);
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
                fail(p, -ETIMEDOUT, "timeout");
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
        unwatch(p);
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
                fail(p, -errno, NULL);
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
                fail(p, -error, NULL);
                return;
        }
        if (!p->http) {
                ProbeResult r = { 0 };
                disconnect_for_reuse(p);
                finish(p, &r, true);
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
                fail(p, -errno, NULL);
                return;
        }
        have += (size_t)n;
        p->received = have;
        HttpHead head;
        ssize_t k = parse_head(p, buf, have, n == 0, &head);
        if (k < 0)
                return;
        if (k == 0) {
                if (!p->partial) {
                        p->partial = malloc(PROBE_HEAD_MAX + 1);
                        if (!p->partial) {
                                fail(p, -ENOMEM, NULL);
                                return;
                        }
                        memcpy(p->partial, stack, have);
                }
                p->partial_len = have;
                raw_wait(p, EV_READ);
                return;
        }

        ProbeResult r = { .status = head.status };
        bool keep = keepable(p, &head);
        int b = -1;
        if (keep) {
                body_start(p, &head);
                b = body_feed(p, buf + k, have - (size_t)k);
                keep = b >= 0 && n > 0;
        }
        p->partial = mfree(p->partial);
        p->partial_len = 0;
        if (keep && b > 0) {
                unwatch(p);
                went_idle(p); /* not watched: a close while idle is found by the next check */
        } else if (keep)
                raw_watch(p, EV_READ, NULL); /* the rest of the body */
        finish(p, &r, keep);
}

/* More of a kept connection's body, after its check. */
static void raw_body(Probe *p)
{
        char buf[16 * 1024];
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        int b = n > 0 ? body_feed(p, buf, (size_t)n) : -1;
        if (b < 0)
                close_conn(p);
        else if (b > 0) {
                unwatch(p);
                went_idle(p);
        }
}

static void raw_step(Probe *p)
{
        if (p->pending_error < 0) {
                fail(p, p->pending_error, NULL);
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
                fail(p, -EIO, NULL);
        }
}

/* ---- checks ---- */

int probe_new(struct event_base *base, ProbeWheel *wheel, ProbeDone done, void *userdata,
              Probe **ret)
{
        Probe *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->base = base;
        p->wheel = wheel;
        p->done = done;
        p->userdata = userdata;
        p->fd = -EBADF;
        p->spare_fd = -EBADF;
        p->stream.fd = -EBADF;
        p->step.due = on_step;
        evtimer_assign(&p->timer, base, on_timer, p);
        *ret = p;
        return 0;
}

/* A plain check's socket, connecting; an immediate failure is said at the next step. */
static int raw_open(Probe *p, const ProbeSpec *spec)
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

/* A TLS check's Stream; an immediate failure of the connect is the check's result, said
 * through the timer (run at once) like any other. */
static int stream_open(Probe *p, const ProbeSpec *spec)
{
        _cleanup_close_ int fd = socket(spec->sa->sa_family,
                                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int r = stream_init(&p->stream, p->base, TAKE_FD(fd), &probe_handler, p);
        if (r < 0)
                return r;
        /* Read no further than a head may reach: a body is read as it is drained. */
        p->stream.read_max = PROBE_HEAD_MAX + 1;
        r = tls_client_attach(spec->tls, &p->stream, spec->server_name, spec->session_key);
        if (r >= 0 && p->http && evbuffer_add(p->stream.out, p->request, p->request_len) < 0)
                r = -ENOMEM;
        if (r < 0) {
                stream_done(&p->stream);
                return r;
        }
        p->tls = true;
        p->state = CONN_CONNECT;
        r = stream_connect(&p->stream, spec->sa, spec->sa_len);
        if (r < 0)
                p->pending_error = r;
        return 0;
}

/* The kept connection takes the request: false when it cannot (then it is closed). */
static bool conn_reuse(Probe *p, const ProbeSpec *spec, uint64_t now)
{
        if (p->state != CONN_IDLE || !p->http || p->tls != (spec->tls != NULL) ||
            now - p->idle_usec > PROBE_KEEPALIVE_IDLE_MAX ||
            now - p->opened_usec > PROBE_KEEPALIVE_AGE_MAX) {
                close_conn(p);
                return false;
        }
        if (p->tls) {
                if (evbuffer_add(p->stream.out, p->request, p->request_len) < 0 ||
                    stream_flush(&p->stream) < 0) {
                        close_conn(p);
                        return false;
                }
                p->state = CONN_HEAD;
                return true;
        }
        /* Sent now, the answer looked for at the next step. An idle connection is not watched:
         * one the server closed shows here (EPIPE, ECONNRESET: a new one then) or in the answer
         * (nothing: `stale`, and the caller starts again). */
        ssize_t n = send(p->fd, p->request, p->request_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                close_conn(p);
                return false;
        }
        p->sent = n < 0 ? 0 : (size_t)n;
        p->state = p->sent < p->request_len ? CONN_RAW_SEND : CONN_RAW_HEAD;
        raw_next_step(p);
        return true;
}

/* The request of this check, copied when it changed: the connection may send it after `spec`
 * is gone. */
static int take_request(Probe *p, const ProbeSpec *spec)
{
        if (!spec->request)
                return 0;
        if (p->request && p->request_len == spec->request_len &&
            memcmp(p->request, spec->request, spec->request_len) == 0)
                return 0;
        char *copy = memdup(spec->request, spec->request_len);
        if (!copy)
                return -ENOMEM;
        free(p->request);
        p->request = copy;
        p->request_len = spec->request_len;
        return 0;
}

int probe_start(Probe *p, const ProbeSpec *spec)
{
        assert(!p->running);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        p->http = spec->request != NULL;
        p->keep = p->http && spec->keep_alive;
        p->pending_error = 0;
        p->received = 0;
        p->deadline_usec = now + spec->timeout_usec;
        int r = take_request(p, spec);
        if (r < 0)
                return r;
        p->reused = conn_reuse(p, spec, now);
        if (!p->reused) {
                p->opened_usec = now;
                r = spec->tls ? stream_open(p, spec) : raw_open(p, spec);
                if (r < 0)
                        return r;
        }
        p->running = true;
        if (!p->tls)
                return 0; /* the steps look at it, and set its deadline when they wait */
        if (p->pending_error < 0)
                event_active(&p->timer, EV_TIMEOUT, 0);
        else {
                struct timeval tv = { .tv_sec = (time_t)(spec->timeout_usec / USEC_PER_SEC),
                                      .tv_usec = (suseconds_t)(spec->timeout_usec %
                                                               USEC_PER_SEC) };
                /* Every check of an upstream has the same timeout: libevent keeps such timers
                 * in a list in deadline order, added and removed in O(1), rather than in its
                 * heap, where each add and remove walks a thousand others' events (a cache miss
                 * a level). Past libevent's 256 kinds, the heap. */
                const struct timeval *common = event_base_init_common_timeout(p->base, &tv);
                evtimer_add(&p->timer, common ? common : &tv);
        }
        return 0;
}

void probe_forget(Probe *p)
{
        if (p->running)
                p->keep = false;
        else
                close_conn(p);
}

Probe *probe_free(Probe *p)
{
        if (!p)
                return NULL;
        event_del(&p->timer);
        close_conn(p);
        safe_close(p->spare_fd);
        free(p->request);
        free(p);
        return NULL;
}
