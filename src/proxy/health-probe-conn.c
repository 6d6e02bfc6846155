/* SPDX-License-Identifier: MIT */
/* A Probe's checks: starting one on the kept connection or a new one, and what both kinds of
 * connection share (their results, the answer's head, its body, their end). The steps that read
 * the answer: health-probe-step.c; the connections themselves: health-probe-plain.c (a bare
 * socket) and health-probe-tls.c (a Stream). */
#include <assert.h>
#include <sys/socket.h>

#include "base/util.h"
#include "proxy/health-probe-conn-private.h"

/* A check's connection ends with a reset rather than a FIN (stream_tcp_reset_on_close): no
 * closing handshake and no TIME_WAIT left behind, a thousand a second (HAProxy ends its checks
 * so). Nothing is left unsaid: the check has its answer, or has failed. When the server closed
 * first, its FIN is answered by a plain close. */
void probe_close_conn(Probe *p)
{
        probe_unwatch(p);
        probe_wheel_del(p->wheel, &p->step);
        if (p->tls && p->state != CONN_NONE) {
                if (p->stream.fd >= 0 && !p->stream.eof)
                        stream_tcp_reset_on_close(p->stream.fd);
                stream_done(&p->stream);
        }
        if (p->fd >= 0)
                stream_tcp_reset_on_close(p->fd);
        p->fd = safe_close(p->fd);
        p->partial = mfree(p->partial);
        p->partial_len = 0;
        p->state = CONN_NONE;
}

void probe_finish(Probe *p, const ProbeResult *r, bool keep)
{
        assert(p->running);
        p->running = false;
        if (p->state == CONN_HANDSHAKE)
                event_del(&p->timer);
        if (!keep)
                probe_close_conn(p);
        p->done(p, r, p->userdata); /* may free p: nothing after this */
}

void probe_fail(Probe *p, int error, const char *detail)
{
        /* The detail may be the stream's (its TLS state's), which probe_finish() closes before
         * the result is reported: a copy, on this frame, outlives it. */
        char text[256];
        if (detail) {
                snprintf(text, sizeof(text), "%s", detail);
                detail = text;
        }
        ProbeResult r = { .error = error, .detail = detail };
        /* Nothing of the answer on a kept connection, which the server ended: it closed it as
         * the request went out (or before, while idle). Said as such, not as the node's
         * failure. */
        if (p->reused && (p->state == CONN_HEAD || p->state == CONN_SEND) &&
            error != -ETIMEDOUT && p->received == 0) {
                r.stale = true;
                r.detail = "kept connection closed by the server";
        }
        probe_finish(p, &r, false);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
        Probe *p = userdata;
        int error = p->pending_error;
        p->pending_error = 0;
        if (error < 0)
                probe_fail(p, error, NULL);
        else
                probe_fail(p, -ETIMEDOUT, "timeout");
}

/* Feeds bytes of the body: 1 when they end it exactly, 0 when more is to come, -1 when the
 * connection is not to be kept (something after the answer, which nothing asked for, or a
 * broken chunked framing). */
int probe_body_feed(Probe *p, const char *data, size_t len)
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
void probe_went_idle(Probe *p)
{
        p->state = CONN_IDLE;
        p->idle_usec = now_usec(CLOCK_MONOTONIC);
}

/* Whether the connection can be kept after an answer with this head: its body is read to its
 * end only for that, so one of unknown length (to the close), or a large one, ends it instead. */
bool probe_keepable(const Probe *p, const HttpHead *head)
{
        return p->keep && head->keep_alive &&
               (head->body == HTTP_BODY_NONE || head->body == HTTP_BODY_CHUNKED ||
                (head->body == HTTP_BODY_LENGTH && head->content_length <= PROBE_BODY_MAX));
}

void probe_body_start(Probe *p, const HttpHead *head)
{
        p->state = CONN_BODY;
        p->body = head->body;
        p->body_left = head->content_length;
        http_chunked_init(&p->chunked);
}

/* An answer's head in buf[0..len): its length (> 0), or 0 when more is needed; or the check
 * failed, said (the Probe may be gone): -1. `eof`: no more comes. */
ssize_t probe_parse_head(Probe *p, const char *buf, size_t len, bool eof, HttpHead *head)
{
        const char *reason = NULL;
        ssize_t k = len == 0 ? -EAGAIN
                             : http1_parse_response(buf, len, HTTP_MAX_HEADERS, PROBE_HEAD_MAX,
                                                    (HttpSlice){ "GET", 3 }, head, &reason);
        if (k == -EAGAIN && eof)
                probe_fail(p, -ECONNRESET, "closed before an answer");
        else if (k == -EMSGSIZE)
                probe_fail(p, -EMSGSIZE, "answer head too long");
        else if (k < 0 && k != -EAGAIN)
                probe_fail(p, -EBADMSG, reason ? reason : "not an HTTP answer");
        else
                return k == -EAGAIN ? 0 : k;
        return -1;
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
        p->step.due = probe_on_step;
        evtimer_assign(&p->timer, base, on_timer, p);
        *ret = p;
        return 0;
}

/* The kept connection takes the request: false when it cannot (then it is closed). */
static bool conn_reuse(Probe *p, const ProbeSpec *spec, uint64_t now)
{
        if (p->state != CONN_IDLE || !p->http || p->tls != (spec->tls != NULL) ||
            now - p->idle_usec > PROBE_KEEPALIVE_IDLE_MAX ||
            now - p->opened_usec > PROBE_KEEPALIVE_AGE_MAX ||
            !(p->tls ? probe_tls_reuse(p) : probe_plain_reuse(p))) {
                probe_close_conn(p);
                return false;
        }
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
                r = spec->tls ? probe_tls_open(p, spec) : probe_plain_open(p, spec);
                if (r < 0)
                        return r;
        }
        p->running = true;
        if (!p->tls || p->reused)
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
                probe_close_conn(p);
}

Probe *probe_free(Probe *p)
{
        if (!p)
                return NULL;
        event_del(&p->timer);
        probe_close_conn(p);
        safe_close(p->spare_fd);
        free(p->request);
        free(p);
        return NULL;
}

