/* SPDX-License-Identifier: MIT */
/* A TLS check: its connection a Stream with TLS over it, one request at a time; the check's
 * deadline is the Probe's timer (health-probe-conn.c). */
#include <assert.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"
#include "tls/tls.h"

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
                k = probe_body_feed(p, NULL, 0); /* no body, or an empty one */
        /* Fed by the evbuffer's own chunks: nothing is copied. */
        while (k == 0 && evbuffer_get_length(in) > 0) {
                struct evbuffer_iovec v;
                if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                        return -1;
                k = probe_body_feed(p, v.iov_base, v.iov_len);
                evbuffer_drain(in, v.iov_len);
        }
        if (k < 0 || (k > 0 && evbuffer_get_length(in) > 0))
                return -1; /* something after the answer: nothing asked for it */
        if (k == 0)
                return more(p);
        probe_went_idle(p);
        /* Watched while idle: the server's close is seen (and answered) when it comes. */
        stream_read_start(&p->stream);
        return 1;
}

static void on_connect(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (error < 0) {
                probe_fail(p, error, stream_error_detail(s));
                return;
        }
        if (!p->http) {
                /* A tcp check over TLS: the handshake was the check. */
                ProbeResult r = { .resumed = tls_stream_resumed(s) };
                probe_finish(p, &r, false);
                return;
        }
        p->state = CONN_HEAD;
        int k = stream_flush(s);
        if (k < 0) {
                probe_fail(p, k, NULL);
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
        ssize_t k = probe_parse_head(p, buf, len, s->eof, &head);
        if (k <= 0)
                return;
        ProbeResult r = { .status = head.status, .resumed = tls_stream_resumed(s) };
        bool keep = probe_keepable(p, &head);
        if (keep) {
                evbuffer_drain(s->in, (size_t)k);
                probe_body_start(p, &head);
                keep = body_consume(p) >= 0 && !s->eof;
        }
        probe_finish(p, &r, keep);
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
                        probe_close_conn(p);
                return;
        case CONN_IDLE:
                /* The server closed it (or said what nobody asked for): gone, quietly. */
                probe_close_conn(p);
                return;
        default:
                assert(!"input before the connect ended");
                probe_close_conn(p);
        }
}

static void on_error(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (p->running)
                probe_fail(p, error, stream_error_detail(s));
        else
                probe_close_conn(p); /* the body of a check that is over, or an idle connection */
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

/* An immediate failure of the connect is said through the timer (run at once). */
int probe_tls_open(Probe *p, const ProbeSpec *spec)
{
        _cleanup_close_ int fd = stream_tcp_socket(spec->sa->sa_family);
        if (fd < 0)
                return fd;
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


bool probe_tls_reuse(Probe *p)
{
        if (evbuffer_add(p->stream.out, p->request, p->request_len) < 0 ||
            stream_flush(&p->stream) < 0)
                return false;
        p->state = CONN_HEAD;
        return true;
}
