/* SPDX-License-Identifier: MIT */
/* A TLS check: its connection a Stream with TLS over it. The Stream's connect and handshake run
 * under the Probe's timer (the check's deadline); then the request is written without a copy
 * (stream_write) and the answer looked for on the wheel's steps (health-probe-step.c, which
 * reads it with stream_read_into): the Stream's read event is never used, so a kept connection
 * costs no epoll_ctl while idle, and an answer there by the next step no wake-up. */
#include <assert.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"
#include "tls/tls.h"

static void on_connect(Stream *s, int error, void *userdata)
{
        Probe *p = userdata;
        if (error < 0) {
                probe_fail(p, error, stream_error_detail(s));
                return;
        }
        event_del(&p->timer); /* the steps watch the deadline from here */
        if (!p->http) {
                /* A tcp check over TLS: the handshake was the check. */
                ProbeResult r = { .resumed = tls_stream_resumed(s) };
                probe_finish(p, &r, false);
                return;
        }
        int k = stream_write(s, p->request, p->request_len);
        if (k < 0) {
                probe_fail(p, k, stream_error_detail(s));
                return;
        }
        probe_sent(p);
}

static void on_read(Stream *s, void *userdata)
{
        /* Its read event is never added: the steps read (stream_read_into). */
        assert(!"a TLS check's stream read on its own");
        probe_close_conn(userdata);
}

static void on_error(Stream *s, int error, void *userdata)
{
        /* Writing the rest of a request the socket did not take at once failed. */
        Probe *p = userdata;
        if (p->running)
                probe_fail(p, error, stream_error_detail(s));
        else
                probe_close_conn(p);
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
        r = tls_client_attach(spec->tls, &p->stream, spec->server_name, spec->session_key);
        if (r < 0) {
                stream_done(&p->stream);
                return r;
        }
        p->tls = true;
        p->state = CONN_HANDSHAKE;
        r = stream_connect(&p->stream, spec->sa, spec->sa_len);
        if (r < 0)
                p->pending_error = r;
        return 0;
}

/* Written now, the answer looked for at the next step. An idle connection is not watched: one
 * the server closed shows here (a new one then) or in the answer (nothing: `stale`, and the
 * caller starts again at once). */
bool probe_tls_reuse(Probe *p)
{
        if (stream_write(&p->stream, p->request, p->request_len) < 0)
                return false;
        probe_sent(p);
        return true;
}
