/* SPDX-License-Identifier: MIT */
/* etcd's client over lbproxy's own pieces: a Stream (with a TLS transport for https://), the
 * HTTP/1.1 response parser and the body framer (a connection's part is etcd-conn.c).
 *
 * Each endpoint keeps up to ETCD_CONNS_MAX connections for unary calls, each carrying one call
 * at a time (no pipelining: an answer that never comes must not hold the calls behind it);
 * calls wait in the endpoint's queue for one. A watch has a connection of its own, closed with
 * it. A connection that fails, closes, or whose call is given up (timeout, cancel) is closed,
 * and the next call opens a new one.
 *
 * Calls and connections are freed from an event of the client's own on the next turn of the
 * loop, never where they end: they end inside stream callbacks and inside the caller's `done`,
 * and whoever is up the stack may still look at them. */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "store/etcd-client-internal.h"

static void queue_remove(EtcdEndpoint *e, EtcdCall *call)
{
        assert(call->queued);
        if (e->queue_tail == call)
                e->queue_tail = call->prev;
        LIST_UNLINK(e->queue, call);
        call->queued = false;
}

/* At the tail (a new call, numbered), or at the head (a call sent again keeps its number). */
static void queue_add(EtcdEndpoint *e, EtcdCall *call, bool head)
{
        EtcdCall *before = head ? NULL : e->queue_tail, *after = head ? e->queue : NULL;

        call->prev = before;
        call->next = after;
        if (before)
                before->next = call;
        else
                e->queue = call;
        if (after)
                after->prev = call;
        else
                e->queue_tail = call;
        call->queued = true;
        if (!head)
                call->seq = ++call->client->next_seq;
}

/* ---- endpoints ---- */

static int parse_endpoint(const char *url, EtcdEndpoint *ret)
{
        const char *p, *colon;
        char host[INET6_ADDRSTRLEN + 2];
        size_t n;
        char *end;
        bool https = strncmp(url, "https://", 8) == 0;

        if (!https && strncmp(url, "http://", 7) != 0)
                return -EINVAL;
        p = url + (https ? 8 : 7);
        *ret = (EtcdEndpoint){.https = https};
        if (*p == '[') {
                const char *close = strchr(p, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t)(close - p - 1);
                if (n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, p + 1, n);
                host[n] = 0;
                colon = close + 1;
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ret->sa;
                sin6->sin6_family = AF_INET6;
                if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
                        return -EINVAL;
                ret->sa_len = sizeof(*sin6);
        } else {
                colon = strrchr(p, ':');
                if (!colon || (size_t)(colon - p) >= sizeof(host))
                        return -EINVAL;
                n = (size_t)(colon - p);
                memcpy(host, p, n);
                host[n] = 0;
                struct sockaddr_in *sin = (struct sockaddr_in *)&ret->sa;
                sin->sin_family = AF_INET;
                if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                        return -EINVAL;
                ret->sa_len = sizeof(*sin);
        }
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (errno || end == colon + 1 || (*end && !streq(end, "/")) || port == 0 || port > 65535)
                return -EINVAL;
        if (ret->sa.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ret->sa)->sin6_port = htons((uint16_t)port);
        else
                ((struct sockaddr_in *)&ret->sa)->sin_port = htons((uint16_t)port);
        ret->url = strdup(url);
        ret->host = strdup(host);
        ret->host_header = strndup(p, (size_t)(end - p));
        if (!ret->url || !ret->host || !ret->host_header)
                return -ENOMEM;
        return 0;
}

/* ---- calls ---- */

static void call_free(EtcdCall *call)
{
        if (!call)
                return;
        if (call->timer)
                event_free(call->timer);
        if (call->lines)
                evbuffer_free(call->lines);
        free(call->path);
        free(call->body);
        call->magic = 0;
        free(call);
}

/* The call is over for its caller: its connection, if it was on one, is closed (an answer may
 * still be coming on it), and the call is freed on the next turn of the loop. */
static void bury(EtcdCall *call)
{
        EtcdClient *c = call->client;

        if (call->dead)
                return;
        call->dead = true;
        if (call->timer)
                event_del(call->timer);
        if (call->queued)
                queue_remove(&c->endpoints[call->endpoint], call);
        else
                LIST_UNLINK(c->calls, call);
        LIST_PUSH(c->dead, call);
        etcd_client_reap_later(c);
        if (call->conn) {
                EtcdConn *conn = call->conn;
                call->conn = NULL;
                conn->call = NULL;
                etcd_conn_close(conn);
        }
}

void etcd_call_cancel(EtcdCall *call)
{
        if (call)
                bury(call);
}

/* Ends the call for its caller: buried first, so that the caller may start another from
 * `done`. The connection is detached before, so that it stays open when it may serve on. */
void etcd_call_finish(EtcdCall *call, int r, unsigned status, const char *body, size_t len)
{
        EtcdCallDone done = call->done;
        void *userdata = call->userdata;

        assert(!call->dead);
        bury(call);
        done(userdata, r, status, body, len);
}

void etcd_call_retry(EtcdCall *call)
{
        EtcdClient *c = call->client;
        EtcdEndpoint *e = &c->endpoints[call->endpoint];

        assert(!call->dead && !call->queued && !call->conn);
        LIST_UNLINK(c->calls, call);
        queue_add(e, call, true);
        etcd_client_kick(c);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *userdata)
{
        EtcdCall *call = userdata;

        assert(call->magic == ETCD_CALL_MAGIC);
        etcd_call_finish(call, -ETIMEDOUT, 0, NULL, 0);
}

/* ---- giving calls connections ---- */

static void on_reap(evutil_socket_t fd, short what, void *userdata)
{
        EtcdClient *c = userdata;

        while (c->dead) {
                EtcdCall *call = c->dead;
                LIST_UNLINK(c->dead, call);
                call_free(call);
        }
        while (c->dead_conns) {
                EtcdConn *conn = c->dead_conns;
                LIST_UNLINK(c->dead_conns, conn);
                free(conn);
        }
}

void etcd_client_kick(EtcdClient *c)
{
        event_active(c->kick, EV_TIMEOUT, 1);
}

void etcd_client_reap_later(EtcdClient *c)
{
        event_active(c->reap, EV_TIMEOUT, 1);
}

/* A kept connection free for a call, or NULL. One idle too long is closed on the way. */
static EtcdConn *idle_conn(EtcdEndpoint *e)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        EtcdConn *next;

        for (EtcdConn *k = e->conns; k; k = next) {
                next = k->next;
                if (k->state == CONN_IDLE && now - k->idle_usec > ETCD_IDLE_MAX_USEC)
                        etcd_conn_close(k);
                else if (k->state == CONN_IDLE)
                        return k;
        }
        return NULL;
}

/* Takes the call out of the queue onto `conn` (NULL: a new connection, a watch's own). False
 * when that failed and the call ended: its `done` may have changed the queue. */
static bool assign(EtcdClient *c, size_t endpoint, EtcdCall *call, EtcdConn *conn)
{
        int r = 0;

        queue_remove(&c->endpoints[endpoint], call);
        LIST_PUSH(c->calls, call);
        if (!conn)
                r = etcd_conn_open(c, endpoint, call->watch, &conn);
        if (r >= 0)
                r = etcd_conn_take(conn, call);
        if (r >= 0)
                return true;
        if (conn)
                etcd_conn_close(conn);
        etcd_call_finish(call, r, 0, NULL, 0);
        return false;
}

/* Gives each waiting call a connection: a watch a new one of its own; a unary call an idle kept
 * one, else a new one up to the cap, else it waits. */
static void dispatch(EtcdClient *c, size_t endpoint)
{
        EtcdEndpoint *e = &c->endpoints[endpoint];
        EtcdCall *next;

        for (EtcdCall *call = e->queue; call; call = next) {
                EtcdConn *conn = NULL;

                next = call->next;
                if (!call->watch) {
                        conn = idle_conn(e);
                        if (!conn && e->n_conns >= ETCD_CONNS_MAX)
                                continue; /* one will be free; a watch further on goes */
                }
                if (!assign(c, endpoint, call, conn)) {
                        etcd_client_kick(c); /* the rest on the next turn */
                        return;
                }
        }
}

static int start(EtcdClient *c, size_t endpoint, const char *path, const char *body, bool watch,
                 EtcdWatchLine on_line, EtcdCallDone done, void *userdata, EtcdCall **ret)
{
        EtcdCall *call;

        assert(endpoint < c->n_endpoints && done);
        call = calloc(1, sizeof(*call));
        if (!call)
                return -ENOMEM;
        *call = (EtcdCall){
                .magic = ETCD_CALL_MAGIC,
                .client = c,
                .endpoint = endpoint,
                .path = strdup(path),
                .body = strdup(body),
                .watch = watch,
                .done = done,
                .on_line = on_line,
                .userdata = userdata,
        };
        call->timer = evtimer_new(c->base, on_call_timeout, call);
        if (watch)
                call->lines = evbuffer_new();
        if (!call->path || !call->body || !call->timer || (watch && !call->lines)) {
                call_free(call);
                return -ENOMEM;
        }
        evtimer_add(call->timer, &c->timeout);
        /* Even a watch goes through the queue's event: `done` is never called from here. */
        queue_add(&c->endpoints[endpoint], call, false);
        etcd_client_kick(c);
        if (ret)
                *ret = call;
        return 0;
}

int etcd_call(EtcdClient *c, size_t endpoint, const char *path, const char *body,
              EtcdCallDone done, void *userdata, EtcdCall **ret)
{
        return start(c, endpoint, path, body, false, NULL, done, userdata, ret);
}

int etcd_watch(EtcdClient *c, size_t endpoint, const char *body, EtcdWatchLine on_line,
               EtcdCallDone done, void *userdata, EtcdCall **ret)
{
        assert(on_line);
        return start(c, endpoint, "/v3/watch", body, true, on_line, done, userdata, ret);
}

static void on_kick(evutil_socket_t fd, short what, void *userdata)
{
        EtcdClient *c = userdata;

        for (size_t i = 0; i < c->n_endpoints; i++)
                dispatch(c, i);
}

/* ---- the client ---- */

int etcd_client_new(struct event_base *base, const EtcdClientOptions *o, EtcdClient **ret,
                    char **ret_error)
{
        _cleanup_(etcd_client_freep) EtcdClient *c = NULL;
        size_t n = strv_length((char **)o->endpoints);
        bool https = false;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (n == 0)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base = base;
        c->endpoints = calloc(n, sizeof(EtcdEndpoint));
        c->reap = event_new(base, -1, 0, on_reap, c);
        c->kick = event_new(base, -1, 0, on_kick, c);
        if (!c->endpoints || !c->reap || !c->kick)
                return -ENOMEM;
        for (; c->n_endpoints < n; c->n_endpoints++) {
                r = parse_endpoint(o->endpoints[c->n_endpoints], &c->endpoints[c->n_endpoints]);
                if (r < 0) {
                        c->n_endpoints++; /* freed with what it has */
                        return r;
                }
                https = https || c->endpoints[c->n_endpoints].https;
        }
        if (https) {
                TlsClientPolicy p = {
                        .upstream = "store.etcd",
                        .owner = "store.etcd",
                        .ca_file = o->ca_file,
                        .cert_file = o->cert_file,
                        .key_file = o->key_file,
                        .verify = true,
                };
                r = tls_client_new(&p, &c->tls, ret_error);
                if (r < 0)
                        return r;
        }
        c->timeout = (struct timeval){.tv_sec = (time_t)(o->timeout_usec / USEC_PER_SEC),
                                      .tv_usec = (suseconds_t)(o->timeout_usec % USEC_PER_SEC)};
        if (o->username) {
                c->username = strdup(o->username);
                c->password = strdup(o->password ? o->password : "");
                if (!c->username || !c->password)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

EtcdClient *etcd_client_free(EtcdClient *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_endpoints; i++) {
                EtcdEndpoint *e = &c->endpoints[i];
                while (e->queue) {
                        EtcdCall *call = e->queue;
                        queue_remove(e, call);
                        call_free(call);
                }
                while (e->conns) {
                        EtcdConn *conn = e->conns;
                        conn->call = NULL;
                        etcd_conn_close(conn);
                }
        }
        while (c->calls) {
                EtcdCall *call = c->calls;
                LIST_UNLINK(c->calls, call);
                if (call->conn) {
                        call->conn->call = NULL;
                        etcd_conn_close(call->conn); /* a watch's */
                }
                call_free(call);
        }
        if (c->reap) {
                on_reap(-1, 0, c);
                event_free(c->reap);
        }
        if (c->kick)
                event_free(c->kick);
        for (size_t i = 0; i < c->n_endpoints; i++) {
                free(c->endpoints[i].url);
                free(c->endpoints[i].host);
                free(c->endpoints[i].host_header);
        }
        free(c->endpoints);
        tls_client_free(c->tls);
        free(c->username);
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        free(c->token);
        free(c);
        return NULL;
}

size_t etcd_client_n_endpoints(const EtcdClient *c)
{
        return c->n_endpoints;
}

const char *etcd_client_endpoint(const EtcdClient *c, size_t i)
{
        assert(i < c->n_endpoints);
        return c->endpoints[i].url;
}

uint64_t etcd_client_n_connects(const EtcdClient *c)
{
        return c->n_connects;
}

const char *etcd_why(int r, unsigned status, const char *body, char *buf, size_t size)
{
        const char *what;

        if (status && body) {
                /* As one journal line: etcd's plain-text errors end with a newline. */
                snprintf(buf, size, "%s", body);
                for (size_t n = strlen(buf); n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                                                       buf[n - 1] == ' ');)
                        buf[--n] = 0;
                return buf;
        }
        switch (r) {
        case -EKEYREJECTED:
                what = "TLS: etcd's certificate refused";
                break;
        case -EPROTO:
                what = "TLS handshake failed";
                break;
        case -ECONNRESET:
                what = "connection closed by etcd";
                break;
        case -ETIMEDOUT:
                what = "no answer in time";
                break;
        case -EBADMSG:
                what = "not an answer etcd gives";
                break;
        default:
                what = strerror(r < 0 ? -r : r);
        }
        if (!body)
                return what;
        snprintf(buf, size, "%s: %s", what, body);
        return buf;
}
