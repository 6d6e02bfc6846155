/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/log.h"
#include "http/http-date.h"
#include "http/http-status.h"
#include "lb/model.h"
#include "net/listener.h"
#include "proxy/conn-client.h"
#include "proxy/exchange.h"
#include "proxy/stats-count.h"
#include "proxy/worker.h"
#include "tls/tls-server.h"
#include "tls/tls.h"

/* After the last response of a closing connection, unread input is read and dropped for this
 * long, so that closing with input pending does not reset the connection before the client has
 * read the response (nginx's lingering close). */
#define LINGER_USEC (2 * USEC_PER_SEC)

/* Requests answered in one turn of a connection (a read event, a drain, a resumption) before it
 * yields to the loop. One read can hold a thousand small pipelined requests; answering them all
 * at once would make one client's burst the wait of every other connection of the worker. 16
 * keeps a turn to tens of microseconds, and the yield (one more pass of the loop) a small part
 * of the cost of the 16 requests. */
#define REQUESTS_PER_TURN 16

static void client_process(ClientConn *c);

static void set_timer(ClientConn *c, uint64_t usec)
{
        if (usec == 0) {
                event_del(&c->timer);
                return;
        }
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        event_add(&c->timer, &tv);
}

void client_conn_set_timer(ClientConn *c, uint64_t usec)
{
        set_timer(c, usec);
}

/* The worker's current configuration; borrowed, valid until this callback returns. */
static const Config *client_config(const ClientConn *c)
{
        return c->worker->model->config;
}

/* An https connection's handshake, once: at its first input after it, or at the close (failed
 * when it never finished). */
static void count_handshake(ClientConn *c)
{
        if (!c->https || c->tls_counted)
                return;
        c->tls_counted = true;
        stats_count_tls(c->worker, true,
                        tls_stream_handshake_done(&c->stream) ? tls_stream_resumed(&c->stream)
                                                              : -1);
}

void client_conn_free(ClientConn *c)
{
        if (!c)
                return;
        if (c->exchange)
                exchange_abort(c->exchange, "connection closed");
        if (c->gone)
                *c->gone = true;
        event_del(&c->timer);
        event_del(&c->resume);
        count_handshake(c);
        stats_count_client(c, true);
        stream_done(&c->stream);
        if (c->prev)
                c->prev->next = c->next;
        else
                c->worker->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->worker->n_clients--;
        Worker *w = c->worker;
        free(c);
        worker_client_closed(w);
}

void client_conn_abort(ClientConn *c)
{
        client_conn_free(c);
}

void client_conn_abort_reset(ClientConn *c)
{
        stream_tcp_reset_on_close(c->stream.fd);
        client_conn_free(c);
}

/* The last response is out: shut the write side and drop what the client still sends. A client
 * that said its request was the last sends nothing more (RFC 9112 9.6): it is closed at once,
 * as nginx does, without the shutdown, the wait and the read of its end. */
static void start_lingering(ClientConn *c)
{
        if (c->said_last && evbuffer_get_length(c->stream.in) == 0) {
                client_conn_free(c);
                return;
        }
        c->state = CLIENT_LINGERING;
        if (stream_shutdown_write(&c->stream) < 0 || c->stream.eof) {
                client_conn_free(c);
                return;
        }
        evbuffer_drain(c->stream.in, evbuffer_get_length(c->stream.in));
        set_timer(c, LINGER_USEC);
        stream_read_start(&c->stream);
}

static void close_after_flush(ClientConn *c)
{
        c->state = CLIENT_CLOSING;
        stream_read_stop(&c->stream);
        int r = stream_flush(&c->stream);
        if (r < 0) {
                client_conn_free(c);
                return;
        }
        if (stream_pending_out(&c->stream) == 0)
                start_lingering(c);
        else
                set_timer(c, 10 * USEC_PER_SEC); /* a client that never reads is not waited on */
}

void client_conn_respond(ClientConn *c, unsigned status, const char *text, bool close)
{
        /* Date: lbproxy is the origin of this answer, and an origin with a clock sends one
         * (RFC 9110 6.6.1). An HTTP/1.0 client that stays is told so, or it would take the
         * answer for its connection's last. */
        evbuffer_add_printf(c->stream.out,
                            "HTTP/1.1 %u %s\r\n"
                            "Date: %s\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %zu\r\n"
                            "%s"
                            "\r\n"
                            "lbproxy: %s\n",
                            status, http_status_reason(status), http_date_now(),
                            strlen(text) + 10,
                            close ? "Connection: close\r\n"
                            : c->http10 ? "Connection: keep-alive\r\n"
                                        : "",
                            text);
}

void client_conn_exchange_done(ClientConn *c, bool keep_alive)
{
        c->requests++;
        if (!keep_alive || c->worker->stopping) {
                close_after_flush(c);
                return;
        }
        c->state = CLIENT_IDLE;
        set_timer(c, 0);
        /* When the exchange ended inside client_process() (answered at once), this returns at
         * once and that loop takes the next request. */
        client_process(c);
}

/* A request the client got wrong: status page, then close (the framing can no longer be
 * trusted, so nothing after it is read as a request). */
static void refuse(ClientConn *c, unsigned status, const char *reason)
{
        char text[160];
        snprintf(text, sizeof(text), "%s: %s", http_status_reason(status), reason);
        log_peer_warning("%s: refused request: %u %s", c->peer, status, reason);
        stats_count_refused(c, status);
        client_conn_respond(c, status, text, true);
        close_after_flush(c);
}

/* tcp and tls-passthrough listeners: no HTTP, a stream session per connection. */
static void process_stream(ClientConn *c, const bool *gone)
{
        if (c->exchange || c->state == CLIENT_CLOSING || c->state == CLIENT_LINGERING)
                return;
        int r = exchange_start_stream(c);
        if (*gone)
                return;
        if (r == -EAGAIN) {
                /* A passthrough ClientHello still on its way: bounded by the header timeout,
                 * armed at accept. */
                c->state = CLIENT_HEAD;
                stream_read_start(&c->stream);
        } else if (r == 0)
                set_timer(c, 0); /* the upstream's timeouts, then the tunnel's idle one */
}

/* Waits for the next request: a new connection under the header timeout armed at accept, a
 * kept-alive one under the keep-alive timeout, from the end of its last response. */
static void wait_for_request(ClientConn *c)
{
        if (c->state != CLIENT_NEW) {
                if (c->state != CLIENT_IDLE || !event_pending(&c->timer, EV_TIMEOUT, NULL))
                        set_timer(c, client_config(c)->keepalive_timeout_usec);
                c->state = CLIENT_IDLE;
        }
        stream_read_start(&c->stream);
}

/* The client does not read its responses: its next requests are not read either (the kernel's
 * buffers then hold its writes back) until they drained (client_on_drain). Bounded like an idle
 * connection: the client is not reading. */
static void wait_for_drain(ClientConn *c)
{
        c->state = CLIENT_OUT_FULL;
        stream_read_stop(&c->stream);
        set_timer(c, client_config(c)->keepalive_timeout_usec);
}

/* Takes the next request from the input buffer and starts its exchange. Returns true when an
 * exchange was started (it may have ended already), false when the connection waits (for
 * input, or for the client to read) or closes; `c` may be gone either way. */
static bool serve_next(ClientConn *c)
{
        if (stream_pending_out(&c->stream) >= STREAM_OUT_HIGH_WATER) {
                if (stream_flush(&c->stream) < 0) {
                        client_conn_free(c);
                        return false;
                }
                if (stream_pending_out(&c->stream) >= STREAM_OUT_HIGH_WATER) {
                        wait_for_drain(c);
                        return false;
                }
        }
        size_t len = evbuffer_get_length(c->stream.in);
        if (len == 0) {
                /* A stopping worker keeps no idle connection (client_conn_stop() left this one
                 * its turn, which found nothing more). */
                if (c->stream.eof || (c->worker->stopping && c->state != CLIENT_NEW))
                        close_after_flush(c);
                else
                        wait_for_request(c);
                return false;
        }

        const Config *cfg = client_config(c);
        size_t max = cfg->max_header_bytes;
        size_t n = len < max ? len : max;
        const char *p = (const char *)evbuffer_pullup(c->stream.in, (ssize_t)n);
        HttpHead h;
        const char *reason = "malformed request";
        ssize_t r = http1_parse_request(p, n, cfg->max_headers, max, &h, &reason);

        if (r == -EAGAIN) {
                if (c->stream.eof) {
                        refuse(c, 400, "incomplete request head");
                        return false;
                }
                /* From the head's first byte; a new connection's runs from accept already. */
                if (c->state == CLIENT_IDLE)
                        set_timer(c, cfg->header_timeout_usec);
                c->state = CLIENT_HEAD;
                stream_read_start(&c->stream);
                return false;
        }
        if (r == -ENOTSUP) {
                refuse(c, 501, reason ? reason : "not implemented");
                return false;
        }
        if (r == -EPROTONOSUPPORT) {
                /* HTTP/2's preface, HTTP/1.2, HTTP/0.9: the version, not the request, is what
                 * is refused (RFC 9110 15.6.6). */
                refuse(c, 505, reason ? reason : "unsupported HTTP version");
                return false;
        }
        if (r == -ENAMETOOLONG) {
                refuse(c, 414, reason ? reason : "request line too long");
                return false;
        }
        if (r == -EMSGSIZE) {
                /* limits.max_header_bytes or limits.max_headers: RFC 6585's answer, as Envoy
                 * gives it (nginx and HAProxy say 400). */
                refuse(c, 431, reason ? reason : "request head too large");
                return false;
        }
        if (r < 0) {
                refuse(c, 400, reason ? reason : "malformed request");
                return false;
        }

        /* A forward proxy's method: a reverse proxy has nothing to tunnel to (no route can
         * match an authority), and what the client sends next is tunnel data, never a request.
         * RFC 9110 9.1: a method the server does not implement is 501. */
        if (h.method.len == 7 && memcmp(h.method.p, "CONNECT", 7) == 0) {
                refuse(c, 501, "CONNECT is not supported (lbproxy is not a forward proxy)");
                return false;
        }

        set_timer(c, 0);
        c->state = CLIENT_BUSY;
        c->http10 = h.version_minor == 0;
        (void)exchange_start(c, &h); /* runs, or ended: the caller looks */
        return true;
}

/* Comes back to the connection after the loop polled the other sockets. A zero timeout, not
 * event_active(): libevent runs an event activated from a callback in the same pass over its
 * active queue, before it polls again, so only connections already found ready would get their
 * turn. */
static void yield(ClientConn *c)
{
        static const struct timeval now = { 0, 0 };
        event_add(&c->resume, &now);
}

/* One request at a time, in order: pipelined ones wait their turn in the input buffer. A loop,
 * not a recursion: an exchange that ends at once (a status page) calls
 * client_conn_exchange_done() inside serve_next(), and the loop goes on from here. */
static void serve_requests(ClientConn *c, const bool *gone)
{
        for (unsigned served = 0;; served++) {
                if (served == REQUESTS_PER_TURN) {
                        yield(c);
                        break;
                }
                bool started = serve_next(c);
                if (*gone)
                        return;
                if (!started || c->exchange || c->state != CLIENT_IDLE)
                        break; /* waits, runs, or closes */
        }
        if (c->state == CLIENT_CLOSING || c->state == CLIENT_LINGERING)
                return; /* close_after_flush() flushed */
        /* The answers of this turn, in one write. */
        if (stream_flush(&c->stream) < 0)
                client_conn_free(c);
}

static void client_process(ClientConn *c)
{
        bool gone = false;

        /* Inside this function already (an exchange ended at once), or a turn is due: the input
         * waits for it. */
        if (c->gone || event_pending(&c->resume, EV_TIMEOUT, NULL))
                return;
        worker_refresh_model(c->worker);
        if (c->https && !c->tls_counted && tls_stream_handshake_done(&c->stream))
                count_handshake(c);
        c->gone = &gone;
        if (c->listener->protocol == LISTENER_TCP ||
            c->listener->protocol == LISTENER_TLS_PASSTHROUGH)
                process_stream(c, &gone);
        else
                serve_requests(c, &gone);
        if (!gone)
                c->gone = NULL;
}

static void client_on_read(Stream *s, void *userdata)
{
        ClientConn *c = userdata;

        switch (c->state) {
        case CLIENT_BUSY:
                if (c->exchange)
                        exchange_on_client_read(c->exchange);
                return;
        case CLIENT_LINGERING:
                evbuffer_drain(s->in, evbuffer_get_length(s->in));
                if (s->eof)
                        client_conn_free(c);
                return;
        case CLIENT_CLOSING:
        case CLIENT_OUT_FULL: /* not reading: what came meanwhile waits for the drain */
                return;
        default:
                client_process(c);
        }
}

static void client_on_drain(Stream *s, void *userdata)
{
        ClientConn *c = userdata;

        if (c->state == CLIENT_CLOSING) {
                start_lingering(c);
                return;
        }
        if (c->state == CLIENT_OUT_FULL) {
                c->state = CLIENT_IDLE;
                set_timer(c, 0);
                client_process(c);
                return;
        }
        if (c->exchange)
                exchange_on_client_drain(c->exchange);
}

static void client_on_connect(Stream *s, int error, void *userdata)
{
}

static void client_on_error(Stream *s, int error, void *userdata)
{
        ClientConn *c = userdata;
        client_conn_free(c);
}

static const StreamHandler client_handler = {
        .on_read = client_on_read,
        .on_drain = client_on_drain,
        .on_connect = client_on_connect,
        .on_error = client_on_error,
};

static void client_on_resume(evutil_socket_t fd, short what, void *userdata)
{
        client_process(userdata);
}

static void client_on_timer(evutil_socket_t fd, short what, void *userdata)
{
        ClientConn *c = userdata;

        switch (c->state) {
        case CLIENT_NEW:
                /* Not a byte of a request: nothing to answer, and nothing to log (browsers open
                 * connections ahead of need; probes). */
                client_conn_free(c);
                return;
        case CLIENT_HEAD:
                if (c->listener->protocol != LISTENER_HTTP &&
                    c->listener->protocol != LISTENER_HTTPS) {
                        client_conn_free(c); /* no HTTP to answer with */
                        return;
                }
                refuse(c, 408, "request head not received in time");
                return;
        case CLIENT_BUSY:
                /* The exchange waited on this client (it does not read) for too long. */
                client_conn_free(c);
                return;
        default:
                client_conn_free(c);
        }
}

static void set_peer(ClientConn *c, const struct sockaddr *peer)
{
        sockaddr_to_string(peer, c->peer, sizeof(c->peer));
        if (peer->sa_family == AF_INET6) {
                const char *end = strchr(c->peer, ']');
                c->peer_ip_offset = 1;
                c->peer_ip_len = (uint8_t)(end ? end - c->peer - 1 : 0);
        } else {
                const char *colon = strrchr(c->peer, ':');
                c->peer_ip_offset = 0;
                c->peer_ip_len = (uint8_t)(colon ? colon - c->peer : (ptrdiff_t)strlen(c->peer));
        }
}

int client_conn_new(Worker *w, int fd, const struct sockaddr *peer, const Listener *l)
{
        ClientConn *c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        int r = stream_init(&c->stream, w->base, fd, &client_handler, c);
        if (r < 0) {
                free(c);
                return r;
        }
        if (!l->nodelay) {
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bool https = l->protocol == LISTENER_HTTPS;
        if (https) {
                /* TLS terminated here: the handshake runs before the first request byte. */
                worker_refresh_model(w);
                r = tls_server_attach(model_find_tls_server(w->model, l->name), &c->stream);
                if (r < 0) {
                        stream_done(&c->stream);
                        free(c);
                        return r;
                }
        }

        c->worker = w;
        c->listener = l;
        c->https = https;
        set_peer(c, peer);
        event_assign(&c->timer, w->base, -1, 0, client_on_timer, c);
        event_assign(&c->resume, w->base, -1, 0, client_on_resume, c);

        c->next = w->clients;
        if (w->clients)
                w->clients->prev = c;
        w->clients = c;
        w->n_clients++;
        stats_count_client(c, false);

        /* Head parsing needs a whole head in the buffer: allow reads up to that size. */
        if (c->stream.read_max < client_config(c)->max_header_bytes)
                c->stream.read_max = client_config(c)->max_header_bytes;

        /* The header timeout runs from accept, as nginx's client_header_timeout and HAProxy's
         * timeout http-request do: a connection that sends nothing is not kept for the
         * keep-alive timeout. It bounds the TLS handshake too, and a passthrough ClientHello.
         * A tcp listener's client may wait for the server to speak first: its session starts
         * at once. */
        c->state = CLIENT_NEW;
        if (l->protocol != LISTENER_TCP)
                set_timer(c, client_config(c)->header_timeout_usec);
        client_process(c);
        return 0;
}

/* How long a connection accepted just before a stop may take to send its first request. */
#define STOP_FIRST_REQUEST_USEC (2 * USEC_PER_SEC)

void client_conn_stop(ClientConn *c)
{
        switch (c->state) {
        case CLIENT_NEW:
                /* Accepted, but its request has not arrived yet: the client has sent it, or is
                 * about to, and has no reason to expect a close. Serve it (then close), within
                 * a short bound, so a restart under load answers every request that got through
                 * accept(). */
                if (client_config(c)->header_timeout_usec > STOP_FIRST_REQUEST_USEC)
                        set_timer(c, STOP_FIRST_REQUEST_USEC);
                return;
        case CLIENT_IDLE:
                if (event_pending(&c->resume, EV_TIMEOUT, NULL))
                        return; /* its next request is answered, then it closes (stopping) */
                /* Idle between requests: the client knows a kept-alive connection may go, once
                 * it has what was answered. */
                if (stream_pending_out(&c->stream) == 0) {
                        client_conn_free(c);
                        return;
                }
                close_after_flush(c);
                return;
        case CLIENT_OUT_FULL:
                close_after_flush(c);
                return;
        default:
                return; /* closes after its current response (worker->stopping) */
        }
}
