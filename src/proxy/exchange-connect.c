/* SPDX-License-Identifier: MIT */

/* Getting a request (or a stream session) to a node: the balancer's pick, the node's address
 * (waiting for DNS when its name has no answer yet), an idle pooled connection or a new one,
 * connect failures moving on to the next node, timeouts, and the upstream stream's callbacks,
 * which hand over to the HTTP side or the tunnel. */

#include "base/log.h"
#include "proxy/exchange-internal.h"
#include "proxy/pool.h"
#include "proxy/stats-count.h"

static void arm_upstream_timer(Exchange *x, uint64_t usec)
{
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        event_add(&x->up->timer, &tv);
}

/* The timeout that applies to what the exchange waits for now. */
void exchange_rearm_timer(Exchange *x)
{
        const ConfigUpstream *cu = exchange_upstream_config(x);

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


static void mark_tried(Exchange *x)
{
        bitmap_set(x->tried, (size_t)(x->node - x->upstream->nodes));
}



const char *exchange_errno_text(int error)
{
        return strerror(abs(error));
}


/* The current upstream connection failed before any response byte. Another node gets the
 * request if one is left, else the client gets a status page. */
void exchange_attempt_failed(Exchange *x, int error, bool timed_out, bool connected)
{
        char text[640];
        bool retry_fresh = false;

        x->last_error = error;
        const char *detail = x->up ? stream_error_detail(&x->up->stream) : NULL;
        snprintf(x->error_detail, sizeof(x->error_detail), "%s",
                 detail ? detail : exchange_errno_text(error));
        /* A kept-alive connection the peer closed meanwhile says nothing about the node: retry
         * once on a fresh connection, when the request can be sent twice safely. */
        if (connected && x->up && x->up->reused && !timed_out && x->idempotent &&
            x->request.type == HTTP_BODY_NONE && !x->fresh_retry_done) {
                retry_fresh = true;
                x->fresh_retry_done = true;
        }
        x->up = upstream_conn_free(x->up);
        if (x->node && !retry_fresh) {
                exchange_report_failed(x);
                exchange_report_health(x, timed_out ? HEALTH_EVENT_TIMEOUT
                                                    : HEALTH_EVENT_TCP_FAILURE);
        }

        if (retry_fresh) {
                (void)exchange_run_attempts(x, ATTEMPT_SAME_FRESH);
                return;
        }
        x->last_timed_out = timed_out;
        if (!connected && x->node) {
                stats_count_connect(x->worker, x->node_stats, false, 0);
                /* Connect failures move on to the other nodes; anything later does not, as the
                 * request may have had effects. */
                mark_tried(x);
                if (x->attempts <= exchange_upstream_config(x)->retries) {
                        (void)exchange_run_attempts(x, ATTEMPT_NEXT_NODE); /* runs, or fails the request */
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


static void upstream_on_connect(Stream *s, int error, void *userdata)
{
        Exchange *x = userdata;

        /* The TLS failures tls_client_attach() names; -ECONNRESET may be TCP's. */
        if (x->use_tls && (error >= 0 || error == -EKEYREJECTED || error == -EPROTO))
                stats_count_tls(x->worker, false, error < 0 ? -1 : tls_stream_resumed(s));
        if (error < 0) {
                exchange_attempt_failed(x, error, false, false);
                return;
        }
        /* A session has nothing but its connect to tell a healthy node by; a request has its
         * response's status (exchange_report_status). */
        if (x->kind == EXCHANGE_STREAM)
                exchange_report_health(x, HEALTH_EVENT_SUCCESS);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        stats_count_connect(x->worker, x->node_stats, true, now - x->attempt_usec);
        /* A session has no response head: its node answers by accepting (ewma's sample is
         * the connect). A request's clock starts again as it goes out. */
        if (x->kind == EXCHANGE_STREAM)
                exchange_report_latency(x);
        x->attempt_usec = now;
        if (x->kind == EXCHANGE_STREAM)
                exchange_tunnel_start(x);
        else
                exchange_http_connected(x);
}

static void upstream_on_read(Stream *s, void *userdata)
{
        Exchange *x = userdata;
        if (x->tunnel)
                tunnel_on_read(x->tunnel, s);
        else
                exchange_http_upstream_read(x);
}

static void upstream_on_drain(Stream *s, void *userdata)
{
        Exchange *x = userdata;
        if (x->tunnel)
                tunnel_on_drain(x->tunnel, s);
        else
                exchange_http_upstream_drain(x); /* room upstream: the client may be read */
}

static void upstream_on_error(Stream *s, int error, void *userdata)
{
        Exchange *x = userdata;

        if (x->tunnel) {
                tunnel_on_error(x->tunnel, s, error);
                return;
        }

        if (!x->response_head_done && x->response_bytes == 0) {
                exchange_attempt_failed(x, error, false, true);
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
                exchange_attempt_failed(x, -ETIMEDOUT, true, false);
                return;
        }
        if (!x->response_head_done) {
                exchange_attempt_failed(x, -ETIMEDOUT, true, true);
                return;
        }
        x->error = "upstream timed out during the response";
        exchange_fail(x, 504, x->error, "upstream timed out");
}

const StreamHandler exchange_upstream_handler = {
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
                (void)exchange_run_attempts(x, ATTEMPT_SAME_NODE);
                return;
        }
        x->last_error = error;
        mark_tried(x);
        (void)exchange_run_attempts(x, ATTEMPT_NEXT_NODE);
}

/* The node's name answered (EV_READ, activated by the worker's resolve mailbox) or the wait
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
        resolved_name_wait(x->node->dns, &x->dns_wait, &x->worker->resolved);
        return 0;
}

/* Gets a connection to a node for the request. Returns 0 when the attempt runs (or waits for
 * DNS), -ENOENT when no node is left, another negative errno when this node failed at once (the
 * caller may try the next). */
/* The request is with the node picked now: counted in flight there, not at the one before. */
static void in_flight_at(Exchange *x, Node *n)
{
        if (x->in_flight_at == n->state)
                return;
        if (x->in_flight_at)
                worker_node_request_ended(x->worker, x->upstream->balancer, x->in_flight_index,
                                          x->in_flight_at);
        x->in_flight_at = n->state;
        x->in_flight_index = (size_t)(n - x->upstream->nodes);
        registry_in_flight_add(x->in_flight_at);
        balancer_load_changed(x->upstream->balancer, x->in_flight_index);
}

void exchange_report_latency(Exchange *x)
{
        if (!upstream_records_latency(x->upstream))
                return;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        balancer_latency_sample(x->node->state, now - x->attempt_usec, now);
}

void exchange_report_health(Exchange *x, HealthEvent ev)
{
        HealthChange c = node_health_report(x->node, x->upstream, HEALTH_SOURCE_PASSIVE, ev);
        if (c == HEALTH_UNCHANGED)
                return;
        char why[64];
        worker_node_health_changed(x->worker, x->upstream, x->node,
                                   c == HEALTH_WENT_DOWN
                                           ? node_health_reason(x->node, why, sizeof(why))
                                           : NULL);
}

void exchange_report_status(Exchange *x, unsigned status)
{
        int ev = health_classify_status(&exchange_upstream_config(x)->health_check,
                                        HEALTH_SOURCE_PASSIVE, status);
        if (ev >= 0)
                exchange_report_health(x, (HealthEvent)ev);
}

void exchange_report_failed(Exchange *x)
{
        if (upstream_records_latency(x->upstream))
                balancer_latency_sample(x->node->state, BALANCER_EWMA_FAILURE_USEC,
                                        now_usec(CLOCK_MONOTONIC));
}

static int start_attempt(Exchange *x, AttemptMode mode)
{
        if (mode == ATTEMPT_NEXT_NODE) {
                int r = upstream_pick_node(x->upstream, x->tried, x->balance_key, &x->node);
                if (r < 0)
                        return -ENOENT;
                x->attempts++;
                in_flight_at(x, x->node);
        }
        int r = node_pick_address(x->node, exchange_upstream_config(x)->scheme, &x->address);
        x->has_address = r >= 0;
        if (r == -EAGAIN)
                return wait_for_dns(x);
        if (r < 0) {
                x->last_error = r;
                mark_tried(x);
                return r;
        }
        x->request_sent = false;
        x->node_stats = stats_node_cells(x->worker, x->node);

        /* Stream sessions never share a connection: it becomes theirs for good. */
        if (mode != ATTEMPT_SAME_FRESH && x->kind == EXCHANGE_HTTP) {
                x->up = pool_take(x->worker->pool, x->address.pool_key, x->address.pool_key_len,
                                  x->address.pool_key_hash);
                if (x->up) {
                        /* The first attempt goes out now: the exchange's start is as good a
                         * clock reading, and one fewer per request. */
                        x->attempt_usec = x->attempts == 1 && mode == ATTEMPT_NEXT_NODE
                                                  ? x->start_usec
                                                  : now_usec(CLOCK_MONOTONIC);
                        stats_count_reused(x->node_stats);
                        stream_set_handler(&x->up->stream, &exchange_upstream_handler, x);
                        event_assign(&x->up->timer, x->worker->base, -1, 0, upstream_on_timer, x);
                        exchange_http_connected(x);
                        return 0;
                }
        }

        x->attempt_usec = now_usec(CLOCK_MONOTONIC);
        r = upstream_conn_connect(x->worker, &x->address, x->use_tls ? x->upstream->tls : NULL,
                                  x->node->server_name,
                                  &exchange_upstream_handler, x, upstream_on_timer, &x->up);
        if (r < 0) {
                x->last_error = r;
                mark_tried(x);
                return r;
        }
        exchange_rearm_timer(x);
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
                                                           : exchange_errno_text(x->last_error));
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
                         exchange_errno_text(x->last_error ? x->last_error : -ENOENT));
                exchange_fail(x, 502, "no node", text);
        }
}

/* Runs attempts until one is under way, or fails the request. Returns 0 while it runs, 1 when
 * the exchange ended. */
int exchange_run_attempts(Exchange *x, AttemptMode mode)
{
        for (;;) {
                int r = start_attempt(x, mode);
                if (r >= 0)
                        return 0;
                mode = ATTEMPT_NEXT_NODE;
                if (r == -ENOENT || x->attempts > exchange_upstream_config(x)->retries)
                        break;
        }
        fail_no_node(x);
        return 1;
}

