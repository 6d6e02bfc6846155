/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "conn-client.h"
#include "exchange.h"
#include "http-status.h"
#include "listener.h"
#include "log.h"
#include "model.h"
#include "tls-server.h"
#include "worker.h"

/* After the last response of a closing connection, unread input is read and dropped for this
 * long, so that closing with input pending does not reset the connection before the client has
 * read the response (nginx's lingering close). */
#define LINGER_USEC (2 * USEC_PER_SEC)

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

void client_conn_free(ClientConn *c)
{
        if (!c)
                return;
        if (c->exchange)
                exchange_abort(c->exchange, "connection closed");
        event_del(&c->timer);
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
        evbuffer_add_printf(c->stream.out,
                            "HTTP/1.1 %u %s\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %zu\r\n"
                            "%s"
                            "\r\n"
                            "lbproxy: %s\n",
                            status, http_status_reason(status), strlen(text) + 10,
                            close ? "Connection: close\r\n" : "", text);
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
        client_process(c);
}

/* A request the client got wrong: status page, then close (the framing can no longer be
 * trusted, so nothing after it is read as a request). */
static void refuse(ClientConn *c, unsigned status, const char *reason)
{
        char text[160];
        snprintf(text, sizeof(text), "%s: %s", http_status_reason(status), reason);
        log_peer_warning("%s: refused request: %u %s", c->peer, status, reason);
        client_conn_respond(c, status, text, true);
        close_after_flush(c);
}

/* tcp and tls-passthrough listeners: no HTTP, a stream session per connection. */
static void client_process_stream(ClientConn *c)
{
        if (c->exchange || c->state == CLIENT_CLOSING || c->state == CLIENT_LINGERING)
                return;
        int r = exchange_start_stream(c);
        if (r == -EAGAIN) {
                /* A passthrough ClientHello still on its way: bounded by the header timeout. */
                if (c->state == CLIENT_IDLE)
                        set_timer(c, client_config(c)->header_timeout_usec);
                c->state = CLIENT_HEAD;
                stream_read_start(&c->stream);
        }
        /* 0: runs; 1: ended, and `c` is gone. */
}

static void client_process(ClientConn *c)
{
        const Config *cfg;

        worker_refresh_model(c->worker);
        if (c->listener->protocol == LISTENER_TCP ||
            c->listener->protocol == LISTENER_TLS_PASSTHROUGH) {
                client_process_stream(c);
                return;
        }
        /* One request at a time; pipelined ones wait their turn in the input buffer. */
        while (!c->exchange && c->state != CLIENT_CLOSING && c->state != CLIENT_LINGERING) {
                size_t len = evbuffer_get_length(c->stream.in);
                if (len == 0) {
                        if (c->stream.eof) {
                                close_after_flush(c);
                                return;
                        }
                        cfg = client_config(c);
                        if (c->state != CLIENT_IDLE || !event_pending(&c->timer, EV_TIMEOUT, NULL))
                                set_timer(c, cfg->keepalive_timeout_usec);
                        c->state = CLIENT_IDLE;
                        stream_read_start(&c->stream);
                        (void)stream_flush(&c->stream);
                        return;
                }

                cfg = client_config(c);
                size_t max = cfg->max_header_bytes;
                size_t max_headers = cfg->max_headers;
                uint64_t header_timeout = cfg->header_timeout_usec;

                size_t n = len < max ? len : max;
                const char *p = (const char *)evbuffer_pullup(c->stream.in, (ssize_t)n);
                HttpHead h;
                const char *reason = "malformed request";
                ssize_t r = http1_parse_request(p, n, max_headers, max, &h, &reason);

                if (r == -EAGAIN) {
                        if (c->stream.eof) {
                                refuse(c, 400, "incomplete request head");
                                return;
                        }
                        if (c->state == CLIENT_IDLE)
                                set_timer(c, header_timeout);
                        c->state = CLIENT_HEAD;
                        stream_read_start(&c->stream);
                        return;
                }
                if (r == -ENOTSUP) {
                        refuse(c, 501, reason ? reason : "not implemented");
                        return;
                }
                if (r < 0) {
                        refuse(c, 400, reason ? reason : "malformed request");
                        return;
                }

                set_timer(c, 0);
                c->state = CLIENT_BUSY;
                if (exchange_start(c, &h) == 0)
                        return; /* runs; client_conn_exchange_done() continues */
                /* Answered at once: client_conn_exchange_done() already looped back here, or
                 * the connection is closing. Either way this call is done. */
                return;
        }
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

static void client_on_timer(evutil_socket_t fd, short what, void *userdata)
{
        ClientConn *c = userdata;

        switch (c->state) {
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
        if (l->https) {
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
        c->https = l->https;
        set_peer(c, peer);
        event_assign(&c->timer, w->base, -1, 0, client_on_timer, c);

        c->next = w->clients;
        if (w->clients)
                w->clients->prev = c;
        w->clients = c;
        w->n_clients++;

        /* Head parsing needs a whole head in the buffer: allow reads up to that size. */
        if (c->stream.read_max < client_config(c)->max_header_bytes)
                c->stream.read_max = client_config(c)->max_header_bytes;

        c->state = CLIENT_IDLE;
        client_process(c);
        return 0;
}

/* How long a connection accepted just before a stop may take to send its first request. */
#define STOP_FIRST_REQUEST_USEC (2 * USEC_PER_SEC)

void client_conn_stop(ClientConn *c)
{
        if (c->state != CLIENT_IDLE)
                return; /* closes after its current response (worker->stopping) */
        if (c->requests > 0) {
                /* Idle between requests: the client knows a kept-alive connection may go. */
                client_conn_free(c);
                return;
        }
        /* Accepted, but its request has not arrived yet: the client has sent it, or is about
         * to, and has no reason to expect a close. Serve it (then close), within a short
         * bound, so a restart under load answers every request that got through accept(). */
        set_timer(c, STOP_FIRST_REQUEST_USEC);
}
