/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "conn-client.h"
#include "conn-upstream.h"
#include "exchange.h"
#include "http-body.h"
#include "http-rewrite.h"
#include "log.h"
#include "manager.h"
#include "model.h"
#include "pool.h"
#include "resolver.h"
#include "router.h"
#include "worker.h"

/* Past this much waiting in a peer's output buffer, the other side stops being read. */
#define OUT_HIGH_WATER (256 * 1024)

struct Exchange {
        ClientConn *client;
        Worker *worker;
        Model *model; /* the snapshot this request started with */
        Route *route;
        Upstream *upstream;
        Node *node;
        NodeAddress address; /* valid when has_address */
        bool has_address;
        ResolveWaiter dns_wait; /* while the node's name has no first answer */
        struct event *dns_timer;
        UpstreamConn *up;
        uint64_t start_usec;

        char *head; /* the request head as sent upstream, kept for a retry */
        size_t head_len;
        size_t host_at; /* where the node's Host line goes, or SIZE_MAX */
        char *method; /* copies for the log and for reading the response */
        size_t method_len;
        char *path;
        size_t path_len;
        bool idempotent;
        bool client_keep_alive;
        bool client_http10;

        HttpBodyState request;
        bool request_sent; /* head written upstream */
        uint64_t request_bytes;

        bool response_head_done;
        HttpBodyState response;
        bool response_started; /* bytes went to the client: no status page can follow */
        bool response_keep_alive;
        bool upstream_paused;  /* not reading upstream until the client drains */
        unsigned status;
        uint64_t response_bytes;

        unsigned attempts;
        bool fresh_retry_done;
        uint64_t *tried; /* bitmap over the upstream's nodes */
        uint64_t tried_inline;
        int last_error;
        bool last_timed_out;
        const char *error; /* why it failed, for the log */
        char error_detail[256];
};

static void exchange_free(Exchange *x)
{
        resolved_name_cancel_wait(&x->dns_wait);
        if (x->dns_timer)
                event_free(x->dns_timer);
        if (x->tried != &x->tried_inline)
                free(x->tried);
        upstream_conn_free(x->up);
        model_unref(x->model);
        free(x->head);
        free(x);
}

static const ConfigUpstream *upstream_config(const Exchange *x)
{
        return x->upstream->config;
}

static void log_exchange(Exchange *x)
{
        if (!x->model->config->access_log)
                return;
        AccessRecord a = {
                .route = x->route ? x->route->config->name : "-",
                .upstream = x->upstream ? x->upstream->config->name : "-",
                .node = x->node ? x->node->name : "-",
                .node_address = x->has_address ? x->address.text : "-",
                .client = x->client->peer,
                .method = x->method,
                .method_len = x->method_len,
                .path = x->path,
                .path_len = x->path_len,
                .status = x->status,
                .duration_usec = now_usec(CLOCK_MONOTONIC) - x->start_usec,
                .bytes_in = x->request_bytes,
                .bytes_out = x->response_bytes,
                .error = x->error,
        };
        log_access(&a);
}

/* Ends the exchange. With keep_upstream the connection goes back to the pool. */
static void exchange_finish(Exchange *x, bool keep_upstream, bool client_keep_alive)
{
        ClientConn *c = x->client;

        log_exchange(x);
        if (x->up) {
                event_del(&x->up->timer);
                if (keep_upstream) {
                        x->up->requests++;
                        pool_put(x->worker->pool, TAKE_PTR(x->up), upstream_config(x)->keepalive_pool,
                                 upstream_config(x)->keepalive_idle_usec);
                }
        }
        c->exchange = NULL;
        exchange_free(x);
        client_conn_exchange_done(c, client_keep_alive);
}

/* Fails the request with a status page when nothing was sent to the client yet, else cuts the
 * client connection: a response cannot be taken back half way. */
static void exchange_fail(Exchange *x, unsigned status, const char *error, const char *text)
{
        ClientConn *c = x->client;

        x->error = error;
        if (x->response_started) {
                log_exchange(x);
                c->exchange = NULL;
                exchange_free(x);
                client_conn_abort(c);
                return;
        }
        x->status = status;
        log_exchange(x);
        c->exchange = NULL;
        /* The request body may be unread: the connection cannot carry another request. */
        bool keep = x->request.done && x->client_keep_alive;
        exchange_free(x);
        client_conn_respond(c, status, text, !keep);
        client_conn_exchange_done(c, keep);
}

void exchange_abort(Exchange *x, const char *why)
{
        ClientConn *c = x->client;

        x->error = why;
        if (!x->status)
                x->status = 499; /* nginx's "client closed request" */
        log_exchange(x);
        c->exchange = NULL;
        exchange_free(x);
}

static void arm_upstream_timer(Exchange *x, uint64_t usec)
{
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        event_add(&x->up->timer, &tv);
}

/* The timeout that applies to what the exchange waits for now. */
static void rearm_upstream_timer(Exchange *x)
{
        const ConfigUpstream *cu = upstream_config(x);

        if (!x->up)
                return;
        if (x->up->stream.connecting)
                arm_upstream_timer(x, cu->connect_timeout_usec);
        else if (x->upstream_paused)
                event_del(&x->up->timer); /* the client is slow, not the upstream */
        else if (stream_pending_out(&x->up->stream) > 0 || !x->request.done)
                arm_upstream_timer(x, cu->send_timeout_usec);
        else
                arm_upstream_timer(x, cu->read_timeout_usec);
}

typedef enum AttemptMode {
        ATTEMPT_NEXT_NODE,  /* the balancer picks a node not tried yet */
        ATTEMPT_SAME_NODE,  /* the node picked before (its name has just resolved) */
        ATTEMPT_SAME_FRESH, /* the node picked before, on a new connection, never a pooled one */
} AttemptMode;

static int run_attempts(Exchange *x, AttemptMode mode);

static void mark_tried(Exchange *x)
{
        bitmap_set(x->tried, (size_t)(x->node - x->upstream->nodes));
}


static const char *errno_text(int error)
{
        return strerror(abs(error));
}

/* The current upstream connection failed before any response byte. Another node gets the
 * request if one is left, else the client gets a status page. */
static void attempt_failed(Exchange *x, int error, bool timed_out, bool connected)
{
        char text[640];
        bool retry_fresh = false;

        x->last_error = error;
        const char *detail = x->up ? stream_error_detail(&x->up->stream) : NULL;
        snprintf(x->error_detail, sizeof(x->error_detail), "%s",
                 detail ? detail : errno_text(error));
        /* A kept-alive connection the peer closed meanwhile says nothing about the node: retry
         * once on a fresh connection, when the request can be sent twice safely. */
        if (connected && x->up && x->up->reused && !timed_out && x->idempotent &&
            x->request.type == HTTP_BODY_NONE && !x->fresh_retry_done) {
                retry_fresh = true;
                x->fresh_retry_done = true;
        }
        x->up = upstream_conn_free(x->up);

        if (retry_fresh) {
                (void)run_attempts(x, ATTEMPT_SAME_FRESH);
                return;
        }
        x->last_timed_out = timed_out;
        if (!connected && x->node) {
                if (node_report_failure(x->node))
                        manager_node_health_changed(x->worker->manager, x->upstream, x->node,
                                                    x->error_detail);
                /* Connect failures move on to the other nodes; anything later does not, as the
                 * request may have had effects. */
                mark_tried(x);
                if (x->attempts <= upstream_config(x)->retries) {
                        (void)run_attempts(x, ATTEMPT_NEXT_NODE); /* runs, or fails the request */
                        return;
                }
        }

        if (timed_out) {
                snprintf(text, sizeof(text), "upstream '%s' timed out (%s)",
                         x->upstream->config->name, x->has_address ? x->address.text : "-");
                exchange_fail(x, 504, "upstream timeout", text);
        } else {
                snprintf(text, sizeof(text), "upstream '%s' unreachable (%s: %s)",
                         x->upstream->config->name, x->has_address ? x->address.text : "-",
                         x->error_detail);
                exchange_fail(x, 502, x->error_detail, text);
        }
}

/* Moves what the client sent of the request body to the upstream. Returns 0 or a negative
 * errno after which the exchange was ended. */
static int pump_request(Exchange *x)
{
        ClientConn *c = x->client;
        Stream *cs = &c->stream;

        if (!x->request.done && x->request_sent) {
                size_t before = evbuffer_get_length(x->up->stream.out);
                int r = http_body_move(&x->request, cs->in, x->up->stream.out,
                                       x->model->config->max_header_bytes);
                if (r < 0) {
                        x->error = "invalid chunked request body";
                        exchange_fail(x, 400, x->error, "invalid chunked request body");
                        return -EBADMSG;
                }
                x->request_bytes += evbuffer_get_length(x->up->stream.out) - before;
                r = stream_flush(&x->up->stream);
                if (r < 0) {
                        attempt_failed(x, r, false, true);
                        return r;
                }
        }

        if (!x->request.done && cs->eof) {
                exchange_abort(x, "client closed during the request body");
                client_conn_abort(c);
                return -ECONNRESET;
        }

        /* Backpressure: stop reading the client while the upstream has enough to chew on. */
        if (x->request.done || !x->request_sent ||
            stream_pending_out(&x->up->stream) >= OUT_HIGH_WATER)
                stream_read_stop(cs);
        else
                stream_read_start(cs);
        rearm_upstream_timer(x);
        return 0;
}

static void upstream_on_read(Stream *s, void *userdata);

/* Connected (or reused): send the head, then whatever body has arrived. */
static void send_request(Exchange *x)
{
        struct evbuffer *out = x->up->stream.out;
        size_t before = evbuffer_get_length(out);

        if (x->host_at == SIZE_MAX)
                evbuffer_add(out, x->head, x->head_len);
        else {
                const char *host = x->node->host_header;
                evbuffer_add(out, x->head, x->host_at);
                evbuffer_add(out, "Host: ", 6);
                evbuffer_add(out, host, strlen(host));
                evbuffer_add(out, "\r\n", 2);
                evbuffer_add(out, x->head + x->host_at, x->head_len - x->host_at);
        }
        x->request_bytes += evbuffer_get_length(out) - before;
        x->request_sent = true;
        stream_read_start(&x->up->stream);
        if (pump_request(x) < 0)
                return;
        int r = stream_flush(&x->up->stream);
        if (r < 0) {
                attempt_failed(x, r, false, true);
                return;
        }
        rearm_upstream_timer(x); /* sent: from now on the read timeout runs */
}

static void upstream_on_connect(Stream *s, int error, void *userdata)
{
        Exchange *x = userdata;

        if (error < 0) {
                attempt_failed(x, error, false, false);
                return;
        }
        if (node_report_success(x->node))
                manager_node_health_changed(x->worker->manager, x->upstream, x->node, NULL);
        send_request(x);
}

static void upstream_on_drain(Stream *s, void *userdata)
{
        Exchange *x = userdata;
        /* Room upstream: the client may be read again. */
        (void)pump_request(x);
}

static void upstream_on_error(Stream *s, int error, void *userdata)
{
        Exchange *x = userdata;

        if (!x->response_head_done && x->response_bytes == 0) {
                attempt_failed(x, error, false, true);
                return;
        }
        x->error = "upstream connection failed during the response";
        exchange_fail(x, 502, x->error, "upstream connection failed");
}

static void upstream_on_timer(evutil_socket_t fd, short what, void *userdata)
{
        Exchange *x = userdata;
        bool connecting = x->up && x->up->stream.connecting;

        if (connecting) {
                attempt_failed(x, -ETIMEDOUT, true, false);
                return;
        }
        if (!x->response_head_done) {
                attempt_failed(x, -ETIMEDOUT, true, true);
                return;
        }
        x->error = "upstream timed out during the response";
        exchange_fail(x, 504, x->error, "upstream timed out");
}

static const StreamHandler upstream_handler = {
        .on_read = upstream_on_read,
        .on_drain = upstream_on_drain,
        .on_connect = upstream_on_connect,
        .on_error = upstream_on_error,
};

static void dns_wait_over(Exchange *x, int error)
{
        if (x->dns_timer)
                event_del(x->dns_timer);
        if (error == 0) {
                (void)run_attempts(x, ATTEMPT_SAME_NODE);
                return;
        }
        x->last_error = error;
        mark_tried(x);
        (void)run_attempts(x, ATTEMPT_NEXT_NODE);
}

/* The node's name answered (EV_READ, maybe activated from the control thread) or the wait
 * timed out. */
static void on_dns_event(evutil_socket_t fd, short what, void *userdata)
{
        Exchange *x = userdata;

        if (what & EV_READ) {
                dns_wait_over(x, x->dns_wait.error);
                return;
        }
        resolved_name_cancel_wait(&x->dns_wait);
        dns_wait_over(x, -ETIMEDOUT);
}

/* Waits (bounded by dns.timeout) for the first answer about the node's name. */
static int wait_for_dns(Exchange *x)
{
        if (!x->dns_timer) {
                x->dns_timer = event_new(x->worker->base, -1, 0, on_dns_event, x);
                if (!x->dns_timer)
                        return -ENOMEM;
        }
        uint64_t usec = x->model->config->dns.timeout_usec;
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        x->dns_wait.wake = x->dns_timer;
        event_add(x->dns_timer, &tv);
        resolved_name_wait(x->node->dns, &x->dns_wait);
        return 0;
}

/* Gets a connection to a node for the request. Returns 0 when the attempt runs (or waits for
 * DNS), -ENOENT when no node is left, another negative errno when this node failed at once (the
 * caller may try the next). */
static int start_attempt(Exchange *x, AttemptMode mode)
{
        if (mode == ATTEMPT_NEXT_NODE) {
                int r = upstream_pick_node(x->upstream, x->tried, &x->node);
                if (r < 0)
                        return -ENOENT;
                x->attempts++;
        }
        int r = node_pick_address(x->node, upstream_config(x)->scheme, &x->address);
        x->has_address = r >= 0;
        if (r == -EAGAIN)
                return wait_for_dns(x);
        if (r < 0) {
                x->last_error = r;
                mark_tried(x);
                return r;
        }
        x->request_sent = false;

        if (mode != ATTEMPT_SAME_FRESH) {
                x->up = pool_take(x->worker->pool, x->address.pool_key);
                if (x->up) {
                        stream_set_handler(&x->up->stream, &upstream_handler, x);
                        event_assign(&x->up->timer, x->worker->base, -1, 0, upstream_on_timer, x);
                        send_request(x);
                        return 0;
                }
        }

        r = upstream_conn_connect(x->worker, &x->address, x->upstream->tls, x->node->server_name,
                                  &upstream_handler, x, upstream_on_timer, &x->up);
        if (r < 0) {
                x->last_error = r;
                mark_tried(x);
                return r;
        }
        rearm_upstream_timer(x);
        return 0;
}

/* No node could take the request: a status page that says why. */
static void fail_no_node(Exchange *x)
{
        char text[512];
        const char *name = x->upstream->config->name;

        /* The last node tried had a name and got no address: say which and why. */
        if (x->node && x->node->dns && !x->has_address && x->last_error < 0) {
                const char *why = resolved_name_error(x->node->dns);
                snprintf(text, sizeof(text), "upstream '%s': cannot resolve %s (%s)", name,
                         resolved_name_host(x->node->dns),
                         why                               ? why
                         : x->last_error == -ETIMEDOUT     ? "no answer in time"
                                                           : errno_text(x->last_error));
                exchange_fail(x, 502, "DNS resolution failed", text);
                return;
        }
        if (x->last_timed_out) {
                snprintf(text, sizeof(text), "upstream '%s' timed out (%s)", name,
                         x->has_address ? x->address.text : "-");
                exchange_fail(x, 504, "upstream timeout", text);
        } else if (x->error_detail[0]) {
                snprintf(text, sizeof(text), "upstream '%s' unreachable (%s: %s)", name,
                         x->has_address ? x->address.text : "-", x->error_detail);
                exchange_fail(x, 502, x->error_detail, text);
        } else {
                snprintf(text, sizeof(text), "upstream '%s' has no node available (%s)", name,
                         errno_text(x->last_error ? x->last_error : -ENOENT));
                exchange_fail(x, 502, "no node", text);
        }
}

/* Runs attempts until one is under way, or fails the request. Returns 0 while it runs, 1 when
 * the exchange ended. */
static int run_attempts(Exchange *x, AttemptMode mode)
{
        for (;;) {
                int r = start_attempt(x, mode);
                if (r >= 0)
                        return 0;
                mode = ATTEMPT_NEXT_NODE;
                if (r == -ENOENT || x->attempts > upstream_config(x)->retries)
                        break;
        }
        fail_no_node(x);
        return 1;
}

/* Everything of the response is with the client (or on its way): finish. */
static void response_complete(Exchange *x)
{
        bool keep_upstream = x->response_keep_alive && x->request.done &&
                             evbuffer_get_length(x->up->stream.in) == 0;
        /* A client whose request body is not all read cannot send its next request. */
        bool keep_client = x->client_keep_alive && x->request.done &&
                           x->response.type != HTTP_BODY_CLOSE;

        x->node->requests++;
        x->upstream->requests++;
        x->route->requests++;
        atomic_fetch_add_explicit(&x->worker->requests, 1, memory_order_relaxed);
        exchange_finish(x, keep_upstream, keep_client);
}

static void pump_response(Exchange *x)
{
        Stream *cs = &x->client->stream;
        Stream *us = &x->up->stream;

        size_t before = evbuffer_get_length(cs->out);
        int r = http_body_move(&x->response, us->in, cs->out, x->model->config->max_header_bytes);
        x->response_bytes += evbuffer_get_length(cs->out) - before;
        if (r < 0) {
                x->error = "invalid chunked response body";
                exchange_fail(x, 502, x->error, "invalid response from upstream");
                return;
        }
        if (x->response.type == HTTP_BODY_CLOSE && us->eof)
                x->response.done = true;

        r = stream_flush(cs);
        if (r < 0) {
                exchange_abort(x, "client write failed");
                client_conn_abort(x->client);
                return;
        }
        if (x->response.done) {
                response_complete(x);
                return;
        }
        if (us->eof) {
                x->error = "upstream closed during the response";
                exchange_fail(x, 502, x->error, "upstream closed during the response");
                return;
        }

        x->upstream_paused = stream_pending_out(cs) >= OUT_HIGH_WATER;
        if (x->upstream_paused) {
                stream_read_stop(us);
                client_conn_set_timer(x->client, upstream_config(x)->send_timeout_usec);
        } else {
                stream_read_start(us);
                client_conn_set_timer(x->client, 0);
        }
        rearm_upstream_timer(x);
}

/* Parses the response head; returns 1 when the body phase can start, 0 to wait for more, or
 * -1 when the exchange was ended. */
static int read_response_head(Exchange *x)
{
        Stream *us = &x->up->stream;
        ClientConn *c = x->client;
        const Config *cfg = x->model->config;

        for (;;) {
                size_t len = evbuffer_get_length(us->in);
                if (len == 0)
                        return 0;
                size_t n = len < cfg->max_header_bytes ? len : cfg->max_header_bytes;
                const char *p = (const char *)evbuffer_pullup(us->in, (ssize_t)n);
                HttpHead h;
                const char *reason = NULL;
                HttpSlice method = { x->method, x->method_len };

                ssize_t r = http1_parse_response(p, n, cfg->max_headers, cfg->max_header_bytes,
                                                 method, &h, &reason);
                if (r == -EAGAIN)
                        return 0;
                if (r < 0) {
                        x->error = reason ? reason : "invalid response head";
                        char text[256];
                        snprintf(text, sizeof(text), "invalid response from upstream '%s': %s",
                                 x->upstream->config->name, x->error);
                        exchange_fail(x, 502, x->error, text);
                        return -1;
                }

                if (h.status >= 100 && h.status < 200) {
                        /* Interim responses go through as they are (100 Continue); 101 cannot
                         * come, Upgrade is not forwarded. */
                        if (h.status == 101) {
                                exchange_fail(x, 502, "unexpected 101 from upstream",
                                              "upstream switched protocols unasked");
                                return -1;
                        }
                        /* The head points into us->in: write it out before draining. */
                        if (!x->client_http10)
                                http_rewrite_response_head(&h, c->stream.out, false, false);
                        evbuffer_drain(us->in, (size_t)r);
                        if (!x->client_http10) {
                                /* The client may be waiting for it before it sends the body. */
                                if (stream_flush(&c->stream) < 0) {
                                        exchange_abort(x, "client write failed");
                                        client_conn_abort(c);
                                        return -1;
                                }
                        }
                        continue;
                }

                x->status = h.status;
                x->response_head_done = true;
                http_body_init(&x->response, h.body, h.content_length);
                x->response_keep_alive = h.keep_alive;
                bool client_close = !x->client_keep_alive || !x->request.done ||
                                    h.body == HTTP_BODY_CLOSE || c->worker->stopping;
                size_t before = evbuffer_get_length(c->stream.out);
                http_rewrite_response_head(&h, c->stream.out, client_close, x->client_http10);
                x->response_bytes += evbuffer_get_length(c->stream.out) - before;
                if (client_close)
                        x->client_keep_alive = false;
                x->response_started = true;
                evbuffer_drain(us->in, (size_t)r);
                return 1;
        }
}

static void upstream_on_read(Stream *s, void *userdata)
{
        Exchange *x = userdata;

        if (!x->response_head_done) {
                if (s->eof && evbuffer_get_length(s->in) == 0) {
                        attempt_failed(x, -ECONNRESET, false, true);
                        return;
                }
                int r = read_response_head(x);
                if (r < 0)
                        return;
                if (r == 0) {
                        if (s->eof) {
                                x->error = "upstream closed inside the response head";
                                exchange_fail(x, 502, x->error, "incomplete response from upstream");
                        } else
                                rearm_upstream_timer(x);
                        return;
                }
        }
        pump_response(x);
}

void exchange_on_client_read(Exchange *x)
{
        ClientConn *c = x->client;

        if (!x->request.done) {
                (void)pump_request(x);
                return;
        }
        /* Bytes after the request are the next pipelined one: they wait. */
        stream_read_stop(&c->stream);
}

void exchange_on_client_drain(Exchange *x)
{
        if (x->upstream_paused && x->up)
                pump_response(x);
}

/* Copies what outlives the client's input buffer: method, path, and the upstream head. */
static int exchange_new(ClientConn *c, const HttpHead *h, Exchange **ret)
{
        Exchange *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->client = c;
        x->worker = c->worker;
        x->start_usec = now_usec(CLOCK_MONOTONIC);
        x->client_keep_alive = h->keep_alive;
        x->client_http10 = h->version_minor == 0;
        x->idempotent = http_method_is_idempotent(h->method);
        x->tried = &x->tried_inline;
        http_body_init(&x->request, h->body, h->content_length);
        *ret = x;
        return 0;
}

static HttpSlice host_without_port(HttpSlice host)
{
        const char *end = host.p + host.len;
        const char *colon = NULL;

        if (host.len > 0 && host.p[0] == '[') {
                const char *bracket = memchr(host.p, ']', host.len);
                return bracket ? (HttpSlice){ host.p + 1, (size_t)(bracket - host.p - 1) } : host;
        }
        for (const char *q = host.p; q < end; q++)
                if (*q == ':')
                        colon = q;
        return colon ? (HttpSlice){ host.p, (size_t)(colon - host.p) } : host;
}

int exchange_start(ClientConn *c, const HttpHead *h)
{
        Exchange *x;
        int r = exchange_new(c, h, &x);
        if (r < 0) {
                evbuffer_drain(c->stream.in, h->head_len);
                client_conn_respond(c, 500, "out of memory", true);
                client_conn_exchange_done(c, false);
                return 1;
        }
        c->exchange = x;
        x->model = worker_get_model(c->worker);

        x->route = router_match(x->model->router, h->method, host_without_port(h->host), h->path);
        if (x->route && route_pick_upstream(x->route, &x->upstream) >= 0) {
                size_t words = BITMAP_WORDS(x->upstream->n_nodes);
                if (words > 1)
                        x->tried = calloc(words, sizeof(uint64_t));
                RequestContext ctx = {
                        .client_ip = c->peer + c->peer_ip_offset,
                        .client_ip_len = c->peer_ip_len,
                        .https = c->https,
                };
                r = x->tried ? http_rewrite_request_head(h, x->upstream, &ctx, &x->head,
                                                         &x->head_len, &x->host_at)
                             : -ENOMEM;
        } else
                r = http_rewrite_copy_line(h, &x->head, &x->head_len);
        if (r < 0) {
                x->tried = x->tried ? x->tried : &x->tried_inline;
                evbuffer_drain(c->stream.in, h->head_len);
                exchange_fail(x, 500, "out of memory", "out of memory");
                return 1;
        }
        /* The method and path for the log live inside the copied head's request line. */
        x->method = x->head;
        x->method_len = h->method.len;
        x->path = x->head + h->method.len + 1;
        x->path_len = h->path.len;
        evbuffer_drain(c->stream.in, h->head_len);

        char text[256];
        if (!x->route) {
                snprintf(text, sizeof(text), "no route for %.*s %.*s", (int)h->method.len,
                         h->method.p, (int)(h->path.len > 200 ? 200 : h->path.len), h->path.p);
                exchange_fail(x, 404, "no route", text);
                return 1;
        }
        if (!x->upstream) {
                snprintf(text, sizeof(text), "route '%s' has no upstream with weight",
                         x->route->config->name);
                exchange_fail(x, 503, "no upstream", text);
                return 1;
        }

        c->state = CLIENT_BUSY;
        return run_attempts(x, ATTEMPT_NEXT_NODE);
}
