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

struct Probe {
        Stream stream;
        struct event timer;
        ProbeDone done;
        void *userdata;
        bool http;
        bool finished;
};

static void finish(Probe *p, const ProbeResult *r)
{
        assert(!p->finished);
        p->finished = true;
        event_del(&p->timer);
        stream_read_stop(&p->stream);
        p->done(p, r, p->userdata); /* may free p: nothing after this */
}

static void fail(Probe *p, int error, const char *detail)
{
        ProbeResult r = { .error = error, .detail = detail };
        finish(p, &r);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
        fail(userdata, -ETIMEDOUT, "timeout");
}

static void on_connect(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (error < 0) {
                fail(p, error, stream_error_detail(s));
                return;
        }
        if (!p->http) {
                ProbeResult r = { .resumed = tls_stream_resumed(s) };
                finish(p, &r);
                return;
        }
        int k = stream_flush(s);
        if (k < 0) {
                fail(p, k, NULL);
                return;
        }
        stream_read_start(s);
}

static void on_read(Stream *s, void *userdata)
{
        Probe *p = userdata;
        size_t len = evbuffer_get_length(s->in);
        const char *buf = (const char *)evbuffer_pullup(s->in, -1);
        HttpHead head;
        const char *reason = NULL;
        ssize_t k = len == 0 ? -EAGAIN
                             : http1_parse_response(buf, len, HTTP_MAX_HEADERS, PROBE_HEAD_MAX,
                                                    (HttpSlice){ "GET", 3 }, &head, &reason);
        if (k > 0) {
                ProbeResult r = { .status = head.status, .resumed = tls_stream_resumed(s) };
                finish(p, &r);
        } else if (k == -EAGAIN && s->eof)
                fail(p, -ECONNRESET, "closed before an answer");
        else if (k == -EMSGSIZE)
                fail(p, -EMSGSIZE, "answer head too long");
        else if (k != -EAGAIN)
                fail(p, -EBADMSG, reason ? reason : "not an HTTP answer");
}

static void on_error(Stream *s, int error, void *userdata)
{
        fail(userdata, error, stream_error_detail(s));
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

int probe_start(struct event_base *base, const ProbeSpec *spec, ProbeDone done, void *userdata,
                Probe **ret)
{
        _cleanup_close_ int fd = socket(spec->sa->sa_family,
                                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        _cleanup_free_ Probe *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->done = done;
        p->userdata = userdata;
        p->http = spec->request != NULL;
        int r = stream_init(&p->stream, base, TAKE_FD(fd), &probe_handler, p);
        if (r < 0)
                return r;
        /* Read no further than a head may reach: the body is not wanted. */
        p->stream.read_max = PROBE_HEAD_MAX + 1;
        evtimer_assign(&p->timer, base, on_timer, p);
        if (spec->tls)
                r = tls_client_attach(spec->tls, &p->stream, spec->server_name,
                                      spec->session_key);
        if (r >= 0 && p->http && evbuffer_add(p->stream.out, spec->request, spec->request_len) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = stream_connect(&p->stream, spec->sa, spec->sa_len);
        if (r < 0) {
                stream_done(&p->stream);
                return r;
        }
        struct timeval tv = { .tv_sec = (time_t)(spec->timeout_usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(spec->timeout_usec % USEC_PER_SEC) };
        evtimer_add(&p->timer, &tv);
        *ret = TAKE_PTR(p);
        return 0;
}

Probe *probe_free(Probe *p)
{
        if (!p)
                return NULL;
        /* A reset rather than a FIN: no closing handshake and no TIME_WAIT left behind, a
         * thousand a second (HAProxy ends its checks so). Nothing is left unsaid: the check
         * has its answer, or has failed. */
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        if (p->stream.fd >= 0)
                (void)setsockopt(p->stream.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        event_del(&p->timer);
        stream_done(&p->stream);
        free(p);
        return NULL;
}
