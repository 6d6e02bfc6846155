/* SPDX-License-Identifier: MIT */

/* One HTTP request's journey: route, balance (exchange-connect.c gets the connection), the
 * request head and body forwarded, the response streamed back, one journal entry. */

#include <assert.h>
#include <inttypes.h>

#include "base/log.h"
#include "http/http-date.h"
#include "http/http-rewrite.h"
#include "lb/router.h"
#include "net/listener.h"
#include "proxy/balance-key.h"
#include "proxy/exchange-internal.h"
#include "proxy/pool.h"
#include "proxy/stats-count.h"

/* Enough for the requests one worker starts in a burst; beyond that, back to malloc. */
#define SPARE_EXCHANGES_MAX 64

Exchange *exchange_alloc(Worker *w)
{
        Exchange *x = w->spare_exchanges;
        if (!x)
                return calloc(1, sizeof(*x));
        w->spare_exchanges = x->next_spare;
        w->n_spare_exchanges--;
        memset(x, 0, sizeof(*x));
        return x;
}

void exchange_spares_free(Worker *w)
{
        while (w->spare_exchanges) {
                Exchange *x = w->spare_exchanges;
                w->spare_exchanges = x->next_spare;
                free(x);
        }
        w->n_spare_exchanges = 0;
}

void exchange_free(Exchange *x)
{
        tunnel_free(x->tunnel);
        if (x->upstream)
                registry_in_flight_sub(x->upstream->state);
        if (x->in_flight_at)
                worker_node_request_ended(x->worker, x->upstream->balancer, x->in_flight_index,
                                          x->in_flight_at);
        resolved_name_cancel_wait(&x->dns_wait);
        if (x->dns_timer)
                event_free(x->dns_timer);
        if (x->tried != &x->tried_inline)
                free(x->tried);
        upstream_conn_free(x->up);
        free(x->head);
        Worker *w = x->worker;
        /* Last: the model holds what the exchange counted in flight. */
        if (x->model)
                worker_return_model(w, x->model);
        if (!HAVE_ASAN && w && w->n_spare_exchanges < SPARE_EXCHANGES_MAX && !w->stopping) {
                x->next_spare = w->spare_exchanges;
                w->spare_exchanges = x;
                w->n_spare_exchanges++;
        } else
                free(x);
}

const ConfigUpstream *exchange_upstream_config(const Exchange *x)
{
        return x->upstream->config;
}

void exchange_count_answered(Exchange *x)
{
        Worker *w = x->worker;
        registry_counter_add(&w->requests, 1);
        if (!w->counters)
                return;
        uint64_t usec = now_usec(CLOCK_MONOTONIC) - x->start_usec;
        registry_count(w->counters, x->node->state, x->request_bytes, x->response_bytes, usec);
        registry_count(w->counters, x->upstream->state, x->request_bytes, x->response_bytes, 0);
        if (x->route)
                registry_count(w->counters, x->route->state, x->request_bytes, x->response_bytes,
                               0);
}

void exchange_log(Exchange *x)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        /* Every exchange ends here once: the metrics count it whether or not it is logged. */
        stats_count_exchange(x, now);
        if (!x->model->config->access_log)
                return;
        AccessRecord a = {
                .route = x->route ? x->route->config->name : x->label ? x->label : "-",
                .upstream = x->upstream ? x->upstream->config->name : "-",
                .node = x->node ? x->node->name : "-",
                .node_address = x->has_address ? x->address.text : "-",
                .client = x->client->peer,
                .method = x->method,
                .method_len = x->method_len,
                .path = x->path,
                .path_len = x->path_len,
                .status = x->status,
                .duration_usec = now - x->start_usec,
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

        exchange_log(x);
        if (x->up) {
                event_del(&x->up->timer);
                if (keep_upstream) {
                        x->up->requests++;
                        pool_put(x->worker->pool, TAKE_PTR(x->up), exchange_upstream_config(x)->keepalive_pool,
                                 exchange_upstream_config(x)->keepalive_idle_usec);
                }
        }
        c->exchange = NULL;
        c->said_last = !x->client_keep_alive && x->request.done;
        exchange_free(x);
        client_conn_exchange_done(c, client_keep_alive);
}

/* Fails the request with a status page when nothing was sent to the client yet, else cuts the
 * client connection: a response cannot be taken back half way. */
void exchange_fail(Exchange *x, unsigned status, const char *error, const char *text)
{
        ClientConn *c = x->client;

        x->error = error;
        if (x->response_started || x->kind == EXCHANGE_STREAM) {
                /* An answer that ends at the close (an HTTP/1.0 client's decoded chunked one,
                 * one without a length) is cut with a reset: at a FIN, the client would take
                 * what it has for all of it. */
                bool reset = x->response_started &&
                             (x->response.dechunk || x->response.type == HTTP_BODY_CLOSE);
                if (!x->status)
                        x->status = status;
                exchange_log(x);
                c->exchange = NULL;
                exchange_free(x);
                if (reset)
                        client_conn_abort_reset(c);
                else
                        client_conn_abort(c);
                return;
        }
        x->status = status;
        exchange_log(x);
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
        exchange_log(x);
        c->exchange = NULL;
        exchange_free(x);
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
                        exchange_attempt_failed(x, r, false, true);
                        return r;
                }
        }

        if (!x->request.done && cs->eof) {
                exchange_abort(x, "client closed during the request body");
                client_conn_abort(c);
                return -ECONNRESET;
        }

        /* Backpressure: no body is read while the upstream has enough to chew on. Once the
         * request is whole the client stays readable: a pipelined request waits in the input
         * buffer (bounded by its read limit), and not toggling the read event saves two
         * epoll_ctl calls per request. */
        if (!x->request.done &&
            (!x->request_sent || stream_pending_out(&x->up->stream) >= STREAM_OUT_HIGH_WATER))
                stream_read_stop(cs);
        else
                stream_read_start(cs);
        exchange_rearm_timer(x);
        return 0;
}

/* Connected (or reused): send the head, then whatever body has arrived. */
void exchange_http_connected(Exchange *x)
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
                exchange_attempt_failed(x, r, false, true);
                return;
        }
        exchange_rearm_timer(x); /* sent: from now on the read timeout runs */
}

/* Everything of the response is with the client (or on its way): finish. */
static void response_complete(Exchange *x)
{
        bool keep_upstream = x->response_keep_alive && x->request.done &&
                             evbuffer_get_length(x->up->stream.in) == 0;
        /* A client whose request body is not all read cannot send its next request. */
        bool keep_client = x->client_keep_alive && x->request.done &&
                           x->response.type != HTTP_BODY_CLOSE;

        exchange_count_answered(x);
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
                ClientConn *c = x->client; /* exchange_abort() frees x */
                exchange_abort(x, "client write failed");
                client_conn_abort(c);
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

        x->upstream_paused = stream_pending_out(cs) >= STREAM_OUT_HIGH_WATER;
        if (x->upstream_paused) {
                stream_read_stop(us);
                client_conn_set_timer(x->client, exchange_upstream_config(x)->send_timeout_usec);
        } else {
                stream_read_start(us);
                client_conn_set_timer(x->client, 0);
        }
        exchange_rearm_timer(x);
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
                if (!x->first_byte_seen) {
                        x->first_byte_seen = true;
                        stats_count_first_byte(x->worker, x->node_stats,
                                               now_usec(CLOCK_MONOTONIC) - x->attempt_usec);
                }

                if (h.status == 101) {
                        /* Only an Upgrade we passed on can be answered with a 101. */
                        if (!x->upgrade) {
                                exchange_fail(x, 502, "unexpected 101 from upstream",
                                              "upstream switched protocols unasked");
                                return -1;
                        }
                        size_t before = evbuffer_get_length(c->stream.out);
                        if (http_rewrite_switching_head(&h, c->stream.out) < 0) {
                                exchange_fail(x, 500, "out of memory", "out of memory");
                                return -1;
                        }
                        x->status = 101;
                        x->response_head_done = true;
                        exchange_report_latency(x);
                        exchange_report_status(x, 101);
                        x->response_bytes += evbuffer_get_length(c->stream.out) - before;
                        evbuffer_drain(us->in, (size_t)r);
                        exchange_tunnel_start(x); /* what follows the head is the tunnel's */
                        return -1;
                }
                if (h.status >= 100 && h.status < 200) {
                        /* Interim responses go through as they are (100 Continue). */
                        /* The head points into us->in: write it out before draining. */
                        if (!c->http10 &&
                            http_rewrite_response_head(&h, c->stream.out, false, false,
                                                       http_date_now()) < 0) {
                                exchange_fail(x, 500, "out of memory", "out of memory");
                                return -1;
                        }
                        evbuffer_drain(us->in, (size_t)r);
                        if (!c->http10) {
                                /* The client may be waiting for it before it sends the body. */
                                if (stream_flush(&c->stream) < 0) {
                                        exchange_abort(x, "client write failed");
                                        client_conn_abort(c);
                                        return -1;
                                }
                        }
                        continue;
                }

                /* An HTTP/1.0 client cannot read chunked coding (an upstream may send it all
                 * the same): it gets the payload, delimited by the close. */
                bool dechunk = c->http10 && h.body == HTTP_BODY_CHUNKED;
                bool client_close = !x->client_keep_alive || !x->request.done ||
                                    h.body == HTTP_BODY_CLOSE || dechunk || c->worker->stopping;
                size_t before = evbuffer_get_length(c->stream.out);
                if (http_rewrite_response_head(&h, c->stream.out, client_close,
                                               c->http10, http_date_now()) < 0) {
                        exchange_fail(x, 500, "out of memory", "out of memory");
                        return -1;
                }
                x->status = h.status;
                x->response_head_done = true;
                exchange_report_latency(x);
                exchange_report_status(x, h.status);
                http_body_init(&x->response, h.body, h.content_length);
                x->response_keep_alive = h.keep_alive;
                x->response.dechunk = dechunk;
                x->response_bytes += evbuffer_get_length(c->stream.out) - before;
                if (client_close)
                        x->client_keep_alive = false;
                x->response_started = true;
                evbuffer_drain(us->in, (size_t)r);
                return 1;
        }
}

void exchange_http_upstream_read(Exchange *x)
{
        Stream *s = &x->up->stream;

        if (!x->response_head_done) {
                if (s->eof && evbuffer_get_length(s->in) == 0) {
                        exchange_attempt_failed(x, -ECONNRESET, false, true);
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
                                exchange_rearm_timer(x);
                        return;
                }
        }
        pump_response(x);
}

void exchange_http_upstream_drain(Exchange *x)
{
        (void)pump_request(x);
}

void exchange_on_client_read(Exchange *x)
{
        ClientConn *c = x->client;

        if (x->tunnel) {
                tunnel_on_read(x->tunnel, &c->stream);
                return;
        }
        if (x->kind == EXCHANGE_STREAM) {
                /* Connecting: the client's bytes wait; an early end is seen by the tunnel. */
                stream_read_stop(&c->stream);
                return;
        }

        if (!x->request.done) {
                (void)pump_request(x);
                return;
        }
        /* Bytes after the request are the next pipelined one: they wait in the buffer. */
}

void exchange_on_client_drain(Exchange *x)
{
        if (x->tunnel) {
                tunnel_on_drain(x->tunnel, &x->client->stream);
                return;
        }
        if (x->upstream_paused && x->up)
                pump_response(x);
}

/* Copies what outlives the client's input buffer: method, path, and the upstream head. */
static int exchange_new(ClientConn *c, const HttpHead *h, Exchange **ret)
{
        Exchange *x = exchange_alloc(c->worker);
        if (!x)
                return -ENOMEM;
        x->client = c;
        x->worker = c->worker;
        x->start_usec = now_usec(CLOCK_MONOTONIC);
        x->client_keep_alive = h->keep_alive;
        x->idempotent = http_method_is_idempotent(h->method);
        x->tried = &x->tried_inline;
        http_body_init(&x->request, h->body, h->content_length);
        *ret = x;
        return 0;
}

/* An upstream's pass_host, as the head writer takes it. */
static HttpHostFrom host_from(PassHost p)
{
        switch (p) {
        case PASS_HOST_PASS:
                return HTTP_HOST_CLIENT;
        case PASS_HOST_NODE:
                return HTTP_HOST_NODE;
        case PASS_HOST_REWRITE:
                return HTTP_HOST_GIVEN;
        default:
                assert(!"pass_host was checked by the loader");
                return HTTP_HOST_CLIENT;
        }
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
        x->model = worker_borrow_model(c->worker);

        x->route = router_match(x->model->router, x->model->routes, h->method,
                                host_without_port(h->host), h->path);
        if (x->route && route_pick_upstream(x->route, &x->upstream) >= 0) {
                registry_in_flight_add(x->upstream->state);
                if (upstream_hashes_requests(x->upstream))
                        x->balance_key = balance_key(x->upstream->config, h,
                                                     c->peer + c->peer_ip_offset, c->peer_ip_len);
                x->use_tls = x->upstream->tls != NULL; /* scheme https */
                size_t words = BITMAP_WORDS(x->upstream->n_nodes);
                if (words > 1)
                        x->tried = calloc(words, sizeof(uint64_t));
                RequestContext ctx = {
                        .client_ip = c->peer + c->peer_ip_offset,
                        .client_ip_len = c->peer_ip_len,
                        .https = c->https,
                        .server_port = c->listener->port,
                        .host_from = host_from(x->upstream->config->pass_host),
                        .host = x->upstream->config->upstream_host,
                };
                /* WebSocket: only on routes that allow it, and only GET without a body. */
                const HttpHeader *up = h->upgrade ? http_head_find(h, "upgrade") : NULL;
                if (up && x->route->config->websocket && h->body == HTTP_BODY_NONE &&
                    http_slice_case_eq(h->method, "get")) {
                        x->upgrade = true;
                        ctx.upgrade = up->value;
                        /* The listener's idle_timeout bounds a WebSocket tunnel too. */
                        const ConfigListener *cl = model_find_listener(x->model,
                                                                       c->listener->name);
                        x->idle_usec = cl ? cl->idle_timeout_usec : 0;
                }
                r = x->tried ? http_rewrite_request_head(h, &ctx, &x->head, &x->head_len,
                                                         &x->host_at)
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
        /* `h` points into the input buffer: not to be read after this. */
        evbuffer_drain(c->stream.in, h->head_len);

        char text[256];
        if (!x->route) {
                snprintf(text, sizeof(text), "no route for %.*s %.*s", (int)x->method_len,
                         x->method, (int)(x->path_len > 200 ? 200 : x->path_len), x->path);
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
        return exchange_run_attempts(x, ATTEMPT_NEXT_NODE);
}
