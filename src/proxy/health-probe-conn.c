/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/util.h"
#include "http/http1.h"
#include "net/stream.h"
#include "proxy/health-probe-conn.h"
#include "tls/tls.h"

typedef enum ConnState {
        CONN_NONE,
        CONN_TCP,     /* a plain tcp check's connect: a bare socket, no Stream */
        CONN_CONNECT, /* the Stream's connect, and TLS handshake */
        CONN_HEAD,    /* the request sent, its answer's head awaited */
        CONN_BODY,    /* the head read (the check is over), its body read to its end */
        CONN_IDLE,    /* kept for the next check */
} ConnState;

struct Probe {
        struct event_base *base;
        ProbeDone done;
        void *userdata;
        struct event timer; /* the running check's deadline */
        int pending_error;  /* the connect failed at once: said by the timer, run at once */
        ConnState state;
        Stream stream;      /* with CONN_CONNECT and after */
        int tcp_fd;         /* with CONN_TCP */
        struct event tcp_ev;
        bool running;       /* a check runs: its callback is still to come */
        bool http;
        bool keep;          /* this check's connection may be kept */
        bool reused;        /* this check runs on a kept connection */
        HttpBody body;
        uint64_t body_left;
        HttpChunked chunked;
        uint64_t opened_usec, idle_usec;
};

/* A reset rather than a FIN: no closing handshake and no TIME_WAIT left behind, a thousand a
 * second (HAProxy ends its checks so). Nothing is left unsaid: the check has its answer, or has
 * failed. When the server closed first, its FIN is answered by a plain close. */
static void close_reset(int fd)
{
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void close_conn(Probe *p)
{
        if (p->state == CONN_TCP) {
                event_del(&p->tcp_ev);
                close_reset(p->tcp_fd);
                p->tcp_fd = safe_close(p->tcp_fd);
        } else if (p->state != CONN_NONE) {
                if (p->stream.fd >= 0 && !p->stream.eof)
                        close_reset(p->stream.fd);
                stream_done(&p->stream);
        }
        p->state = CONN_NONE;
}

static void finish(Probe *p, const ProbeResult *r, bool keep)
{
        assert(p->running);
        p->running = false;
        event_del(&p->timer);
        if (!keep)
                close_conn(p);
        p->done(p, r, p->userdata); /* may free p: nothing after this */
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
         * the request went out (or before). Said as such, not as the node's failure. */
        if (p->reused && p->state == CONN_HEAD && error != -ETIMEDOUT &&
            evbuffer_get_length(p->stream.in) == 0) {
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

/* A plain tcp check's socket is ready. Watched for reading too: an error (a refusal) wakes
 * both, a connect that succeeded only writing, so success costs no getsockopt. */
static void on_tcp_event(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        int error = 0;
        socklen_t len = sizeof(error);
        if ((what & EV_READ) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        ProbeResult r = { .error = -error };
        finish(p, &r, false);
}

/* A tick after a tcp check's connect: most have their answer by now, and one getsockopt (the
 * first byte of TCP_INFO, the state) says it, where epoll would take two epoll_ctl and a
 * wake-up of its own. */
static void on_tcp_poll(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        uint8_t state = 0;
        socklen_t len = sizeof(state);
        int error = 0;
        if (getsockopt(p->tcp_fd, IPPROTO_TCP, TCP_INFO, &state, &len) < 0)
                error = errno;
        else if (state == TCP_SYN_SENT) {
                /* Not yet: epoll tells when. */
                event_assign(&p->tcp_ev, p->base, p->tcp_fd, EV_READ | EV_WRITE, on_tcp_event,
                             p);
                event_add(&p->tcp_ev, NULL);
                return;
        } else if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT) {
                /* Closed: refused, unreachable, or reset after its SYN-ACK. */
                len = sizeof(error);
                if (getsockopt(p->tcp_fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error == 0)
                        error = ECONNRESET;
        }
        ProbeResult r = { .error = -error };
        finish(p, &r, false);
}

/* Timer `ev` `usec` after `now`, rounded up to the grid, where the wheel's steps fall. */
static void add_on_grid(struct event *ev, uint64_t now, uint64_t usec)
{
        uint64_t due = (now + usec + PROBE_TICK_USEC - 1) / PROBE_TICK_USEC * PROBE_TICK_USEC;
        struct timeval tv = { .tv_sec = (time_t)((due - now) / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)((due - now) % USEC_PER_SEC) };
        evtimer_add(ev, &tv);
}

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
        size_t len = evbuffer_get_length(in);
        if (p->body == HTTP_BODY_LENGTH) {
                size_t n = len < p->body_left ? len : (size_t)p->body_left;
                evbuffer_drain(in, n);
                p->body_left -= n;
                len -= n;
                if (p->body_left > 0)
                        return more(p);
        } else if (p->body == HTTP_BODY_CHUNKED) {
                /* Fed by the evbuffer's own chunks: nothing is copied. */
                int k = 0;
                while (len > 0 && k == 0) {
                        struct evbuffer_iovec v;
                        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                                return -1;
                        size_t used;
                        k = http_chunked_feed(&p->chunked, v.iov_base, v.iov_len, 1024, &used);
                        if (k < 0)
                                return -1;
                        evbuffer_drain(in, used);
                        len -= used;
                }
                if (k == 0)
                        return more(p);
        }
        if (len > 0)
                return -1; /* something after the answer: nothing asked for it */
        p->state = CONN_IDLE;
        p->idle_usec = now_usec(CLOCK_MONOTONIC);
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
        const char *reason = NULL;
        ssize_t k = len == 0 ? -EAGAIN
                             : http1_parse_response(buf, len, HTTP_MAX_HEADERS, PROBE_HEAD_MAX,
                                                    (HttpSlice){ "GET", 3 }, &head, &reason);
        if (k == -EAGAIN && s->eof)
                fail(p, -ECONNRESET, "closed before an answer");
        else if (k == -EMSGSIZE)
                fail(p, -EMSGSIZE, "answer head too long");
        else if (k < 0 && k != -EAGAIN)
                fail(p, -EBADMSG, reason ? reason : "not an HTTP answer");
        if (k <= 0)
                return;

        ProbeResult r = { .status = head.status, .resumed = tls_stream_resumed(s) };
        /* The body is read to its end only to keep the connection: one of unknown length (to
         * the close), or a large one, ends it instead. */
        bool keep = p->keep && head.keep_alive &&
                    (head.body == HTTP_BODY_NONE || head.body == HTTP_BODY_CHUNKED ||
                     (head.body == HTTP_BODY_LENGTH && head.content_length <= PROBE_BODY_MAX));
        if (keep) {
                evbuffer_drain(s->in, (size_t)k);
                p->state = CONN_BODY;
                p->body = head.body;
                p->body_left = head.content_length;
                http_chunked_init(&p->chunked);
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

int probe_new(struct event_base *base, ProbeDone done, void *userdata, Probe **ret)
{
        Probe *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->base = base;
        p->done = done;
        p->userdata = userdata;
        p->tcp_fd = -EBADF;
        p->stream.fd = -EBADF;
        evtimer_assign(&p->timer, base, on_timer, p);
        *ret = p;
        return 0;
}

/* A new connection for the check; an immediate failure of the connect is the check's result,
 * said through the timer (run at once) like any other. */
static int conn_open(Probe *p, const ProbeSpec *spec, uint64_t now)
{
        assert(p->state == CONN_NONE);
        _cleanup_close_ int fd = socket(spec->sa->sa_family,
                                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        p->opened_usec = now;
        if (!spec->tls && !p->http) {
                /* A tcp check is a connect: a bare socket and one event, no buffers. */
                if (connect(fd, spec->sa, spec->sa_len) < 0 && errno != EINPROGRESS) {
                        p->pending_error = -errno;
                        return 0;
                }
                p->tcp_fd = TAKE_FD(fd);
                p->state = CONN_TCP;
                /* Half a tick at least: the next grid point, where the next checks start. */
                evtimer_assign(&p->tcp_ev, p->base, on_tcp_poll, p);
                add_on_grid(&p->tcp_ev, now, PROBE_TICK_USEC / 2);
                return 0;
        }

        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int r = stream_init(&p->stream, p->base, TAKE_FD(fd), &probe_handler, p);
        if (r < 0)
                return r;
        /* Read no further than a head may reach: a body is read as it is drained. */
        p->stream.read_max = PROBE_HEAD_MAX + 1;
        if (spec->tls)
                r = tls_client_attach(spec->tls, &p->stream, spec->server_name,
                                      spec->session_key);
        if (r >= 0 && p->http &&
            evbuffer_add(p->stream.out, spec->request, spec->request_len) < 0)
                r = -ENOMEM;
        if (r < 0) {
                stream_done(&p->stream);
                return r;
        }
        p->state = CONN_CONNECT;
        r = stream_connect(&p->stream, spec->sa, spec->sa_len);
        if (r < 0)
                p->pending_error = r;
        return 0;
}

/* The kept connection takes the request: false when it cannot (then it is closed). */
static bool conn_reuse(Probe *p, const ProbeSpec *spec, uint64_t now)
{
        if (p->state != CONN_IDLE || !p->http || now - p->idle_usec > PROBE_KEEPALIVE_IDLE_MAX ||
            now - p->opened_usec > PROBE_KEEPALIVE_AGE_MAX) {
                close_conn(p);
                return false;
        }
        if (evbuffer_add(p->stream.out, spec->request, spec->request_len) < 0 ||
            stream_flush(&p->stream) < 0) {
                close_conn(p);
                return false;
        }
        p->state = CONN_HEAD;
        return true;
}

int probe_start(Probe *p, const ProbeSpec *spec)
{
        assert(!p->running);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        p->http = spec->request != NULL;
        p->keep = p->http && spec->keep_alive;
        p->pending_error = 0;
        p->reused = conn_reuse(p, spec, now);
        if (!p->reused) {
                int r = conn_open(p, spec, now);
                if (r < 0)
                        return r;
        }
        p->running = true;
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
        free(p);
        return NULL;
}
