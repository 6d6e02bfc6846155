/* SPDX-License-Identifier: MIT */

/* Stream sessions: a tcp listener's connection balanced over an upstream's nodes, a
 * tls-passthrough connection routed by the SNI of its ClientHello, and a WebSocket after a 101.
 * Each becomes a tunnel between the client's stream and the upstream connection's; its journal
 * entry, written when it ends, records bytes each way and the duration. */

#include <strings.h>

#include "base/log.h"
#include "net/listener.h"
#include "proxy/balance-key.h"
#include "proxy/exchange-internal.h"
#include "tls/tls-sni.h"

static void tunnel_done(void *userdata, int error)
{
        Exchange *x = userdata;
        ClientConn *c = x->client;

        /* The client's bytes went upstream (a to b), the upstream's came back (b to a). */
        x->request_bytes += tunnel_bytes_a_to_b(x->tunnel);
        x->response_bytes += tunnel_bytes_b_to_a(x->tunnel);
        if (error == -ETIMEDOUT)
                x->error = "idle timeout";
        else if (error < 0)
                x->error = exchange_errno_text(error);
        exchange_count_answered(x);
        exchange_log(x);
        c->exchange = NULL;
        exchange_free(x);
        client_conn_abort(c); /* both sides are done with: close */
}

void exchange_tunnel_start(Exchange *x)
{
        ClientConn *c = x->client;

        event_del(&x->up->timer); /* the tunnel's idle timer takes over */
        client_conn_set_timer(c, 0);
        int r = tunnel_new(x->worker->base, &c->stream, &x->up->stream, x->idle_usec, tunnel_done,
                           x, &x->tunnel);
        if (r < 0) {
                exchange_fail(x, 502, "out of memory", "out of memory");
                return;
        }
        if (!x->status)
                x->status = 200; /* a stream session that got its connection */
        x->response_started = true;
        tunnel_start(x->tunnel);
}

/* "*.example.org" matches one or more labels before ".example.org". */
static bool server_name_matches(const char *pattern, const char *name)
{
        if (pattern[0] == '*' && pattern[1] == '.') {
                size_t n = strlen(name), suffix = strlen(pattern + 1);
                return n > suffix && strcasecmp(name + n - suffix, pattern + 1) == 0;
        }
        return strcasecmp(pattern, name) == 0;
}

static const char *sni_route_upstream(const ConfigListener *cl, const char *sni)
{
        /* Exact names first, then wildcards, whatever their order in the file. */
        for (int wild = 0; wild < 2; wild++)
                for (size_t i = 0; i < cl->n_sni_routes; i++)
                        for (char **n = cl->sni_routes[i].server_names; n && *n; n++)
                                if ((((*n)[0] == '*') == wild) && server_name_matches(*n, sni))
                                        return cl->sni_routes[i].upstream;
        return NULL;
}

/* Starts a stream session for `c` towards the upstream named `upstream`. Returns 0 when it
 * runs, 1 when it ended at once (the client connection is then closed). */
static int start_session(ClientConn *c, const ConfigListener *cl, const char *upstream)
{
        Exchange *x = exchange_alloc(c->worker);
        if (!x) {
                client_conn_abort(c);
                return 1;
        }
        x->kind = EXCHANGE_STREAM;
        x->client = c;
        x->worker = c->worker;
        Model *model = x->model = worker_borrow_model(c->worker);
        x->start_usec = now_usec(CLOCK_MONOTONIC);
        x->label = c->listener->name;
        x->tried = &x->tried_inline;
        x->idle_usec = cl ? cl->idle_timeout_usec : 0;
        http_body_init(&x->request, HTTP_BODY_NONE, 0);
        c->exchange = x;
        c->state = CLIENT_BUSY;

        /* The log's "method" and "path" say what kind of session it was. */
        static const char tcp[] = "TCP", tls[] = "TLS";
        x->method = (char *)(c->listener->protocol == LISTENER_TCP ? tcp : tls);
        x->method_len = 3;
        x->path = (char *)"-";
        x->path_len = 1;

        x->upstream = upstream ? model_find_upstream(model, upstream) : NULL;
        if (!x->upstream) {
                exchange_fail(x, 502, "no upstream", "no upstream for this connection");
                return 1;
        }
        registry_in_flight_add(x->upstream->state);
        if (upstream_hashes_requests(x->upstream))
                x->balance_key = balance_key(x->upstream->config, NULL,
                                             c->peer + c->peer_ip_offset, c->peer_ip_len);
        x->use_tls = cl && cl->tls_originate;
        if (x->use_tls && !x->upstream->tls) {
                exchange_fail(x, 502, "tls: originate needs an upstream with scheme https",
                              "misconfigured upstream");
                return 1;
        }
        size_t words = BITMAP_WORDS(x->upstream->n_nodes);
        if (words > 1) {
                x->tried = calloc(words, sizeof(uint64_t));
                if (!x->tried) {
                        x->tried = &x->tried_inline;
                        exchange_fail(x, 502, "out of memory", "out of memory");
                        return 1;
                }
        }
        stream_read_stop(&c->stream); /* the client's bytes wait for the connection */
        return exchange_run_attempts(x, ATTEMPT_NEXT_NODE);
}

int exchange_start_stream(ClientConn *c)
{
        /* The worker's model, which stays while this runs; the session borrows it. */
        const ConfigListener *cl = model_find_listener(c->worker->model, c->listener->name);

        if (c->listener->protocol == LISTENER_TCP)
                return start_session(c, cl, cl ? cl->upstream : NULL);

        /* tls-passthrough: the ClientHello's SNI picks the upstream; its bytes stay in the
         * input buffer and are the first the upstream gets. */
        size_t len = evbuffer_get_length(c->stream.in);
        if (len > TLS_SNI_MAX_INPUT)
                len = TLS_SNI_MAX_INPUT;
        const unsigned char *p = evbuffer_pullup(c->stream.in, (ssize_t)len);
        char sni[TLS_SNI_NAME_MAX + 1];
        ssize_t r = tls_sni_parse(p, len, sni);
        if (r == -EAGAIN && !c->stream.eof)
                return -EAGAIN;
        if (r < 0) {
                log_peer_warning("%s: listener '%s': not a TLS ClientHello, closing", c->peer,
                                 c->listener->name);
                client_conn_abort(c);
                return 1;
        }
        const char *upstream = r > 0 && cl ? sni_route_upstream(cl, sni) : NULL;
        if (!upstream) {
                log_peer_warning("%s: listener '%s': no route for server name '%s', closing",
                                 c->peer, c->listener->name, r > 0 ? sni : "(none)");
                client_conn_abort(c);
                return 1;
        }
        return start_session(c, cl, upstream);
}
