/* SPDX-License-Identifier: MIT */
/* One connection to etcd: a Stream (with a TLS transport for https://), the request written
 * whole, the answer read by lbproxy's HTTP/1.1 parser (the head) and body framer (dechunked into
 * conn->content), a watch's lines handed on as they come. It carries one call at a time. */

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "http/http1.h"
#include "store/etcd-client-internal.h"
#include "store/etcd-json.h"
#include "store/etcd-lines.h"

void etcd_conn_close(EtcdConn *conn)
{
        EtcdClient *c = conn->client;

        if (conn->state == CONN_CLOSED)
                return;
        if (!conn->watch) {
                EtcdEndpoint *e = &c->endpoints[conn->endpoint];
                LIST_UNLINK(e->conns, conn);
                e->n_conns--;
                if (e->queue)
                        etcd_client_kick(c); /* room for another connection */
        }
        conn->state = CONN_CLOSED;
        if (conn->call) {
                conn->call->conn = NULL;
                conn->call = NULL;
        }
        stream_done(&conn->stream);
        if (conn->content)
                evbuffer_free(conn->content);
        conn->content = NULL;
        LIST_PUSH(c->dead_conns, conn);
        etcd_client_reap_later(c);
}

/* The connection failed: its call ends with `r`, and so do the calls waiting for its endpoint
 * when it never connected (they would fail the same way, one after another). */
static void conn_fail(EtcdConn *conn, int r, const char *detail)
{
        EtcdClient *c = conn->client;
        EtcdEndpoint *e = &c->endpoints[conn->endpoint];
        bool connecting = conn->state == CONN_CONNECTING;
        EtcdCall *call = conn->call;
        uint64_t seq = c->next_seq;
        _cleanup_free_ char *why = detail ? strdup(detail) : NULL; /* outlives the stream */
        /* A kept connection the server closed while it idled fails the request written on it
         * before any answer: not etcd gone, so once more on another connection, unless the
         * request may have been carried out (a txn: its caller must read again). */
        bool retry = call && conn->served > 0 && conn->state == CONN_HEAD &&
                     evbuffer_get_length(conn->stream.in) == 0 && !call->retried &&
                     !streq(call->path, "/v3/kv/txn");

        etcd_conn_close(conn);
        if (retry) {
                call->retried = true;
                call->authenticating = false;
                etcd_call_retry(call);
                return;
        }
        if (call)
                etcd_call_finish(call, r, 0, why, why ? strlen(why) : 0);
        /* Those queued before are waiting for this endpoint, with no other connection to it;
         * a `done` may queue more (or cancel some), which get their own try. */
        if (connecting && !conn->watch)
                for (EtcdCall *q = e->queue; q && q->seq <= seq && e->n_conns == 0; q = e->queue)
                        etcd_call_finish(q, r, 0, why, why ? strlen(why) : 0);
}

static int send_request(EtcdConn *conn);

static void conn_idle(EtcdConn *conn)
{
        conn->state = CONN_IDLE;
        conn->idle_usec = now_usec(CLOCK_MONOTONIC);
        /* Watched while idle: the server's close is seen when it comes. */
        stream_read_start(&conn->stream);
        if (conn->client->endpoints[conn->endpoint].queue)
                etcd_client_kick(conn->client);
}

/* The answer whole: in conn->content, NUL-terminated. */
static void on_answer(EtcdConn *conn)
{
        EtcdClient *c = conn->client;
        EtcdCall *call = conn->call;
        unsigned status = conn->status;
        size_t len = evbuffer_get_length(conn->content);
        struct evbuffer *content;
        int r;

        if (evbuffer_add(conn->content, "", 1) < 0) {
                conn_fail(conn, -ENOMEM, NULL);
                return;
        }
        const char *body = (const char *)evbuffer_pullup(conn->content, -1);
        if (!body) {
                conn_fail(conn, -ENOMEM, NULL);
                return;
        }
        bool keep = conn->keep_alive && evbuffer_get_length(conn->stream.in) == 0 &&
                    !conn->stream.eof;

        if (call->authenticating) {
                call->authenticating = false;
                c->token = mfree(c->token);
                if (status != 200 || etcd_json_parse_authenticate(body, len, &c->token) < 0) {
                        r = -EACCES;
                        goto end;
                }
                /* The call proper, on the same connection. */
                if (!keep) {
                        conn_fail(conn, -EIO, "etcd closed the connection after authenticating");
                        return;
                }
                evbuffer_drain(conn->content, len + 1);
                r = send_request(conn);
                if (r < 0)
                        conn_fail(conn, r, NULL);
                return;
        }
        if (status == 401 && c->username && !call->reauthenticated && keep) {
                /* A token that expired (etcd's simple tokens last 5 minutes): once, a new one
                 * and the call again, on the same connection. */
                c->token = mfree(c->token);
                call->reauthenticated = true;
                evbuffer_drain(conn->content, len + 1);
                r = send_request(conn);
                if (r < 0)
                        conn_fail(conn, r, NULL);
                return;
        }
        if (conn->streaming)
                r = -EPIPE; /* the stream ended */
        else if (status == 401 && c->username)
                r = -EACCES;
        else
                r = status == 200 ? 0 : -EPROTO;
end:
        /* The connection is made ready for the next call before `done`, which may start one;
         * the body stays in conn->content until `done` returns. */
        content = TAKE_PTR(conn->content);
        conn->call = NULL;
        call->conn = NULL;
        if (keep && !conn->watch) {
                conn->served++;
                conn->content = evbuffer_new();
                if (conn->content)
                        conn_idle(conn);
                else
                        etcd_conn_close(conn);
        } else
                etcd_conn_close(conn);
        etcd_call_finish(call, r, status, body, len);
        evbuffer_free(content);
}

/* A watch's body: its lines to the caller as they come. Returns false when the call ended. */
static bool watch_lines(EtcdConn *conn)
{
        EtcdCall *call = conn->call;
        int r;

        if (evbuffer_add_buffer(call->lines, conn->content) < 0) {
                conn_fail(conn, -ENOMEM, NULL);
                return false;
        }
        for (;;) {
                _cleanup_free_ char *line = NULL;
                size_t len;

                r = etcd_lines_next(call->lines, ETCD_LINE_MAX, &line, &len);
                if (r <= 0)
                        break;
                call->on_line(call->userdata, line, len);
                if (call->dead)
                        return false; /* cancelled from the callback */
        }
        if (r < 0) {
                conn_fail(conn, r == -EMSGSIZE ? -EBADMSG : r, "a watch message too long");
                return false;
        }
        return true;
}

static void on_head(EtcdConn *conn)
{
        Stream *s = &conn->stream;
        size_t len = evbuffer_get_length(s->in);
        HttpHead head;
        const char *reason = NULL;
        const char *buf = (const char *)evbuffer_pullup(s->in, -1);
        ssize_t k = len == 0 ? -EAGAIN
                             : http1_parse_response(buf, len, HTTP_MAX_HEADERS, ETCD_HEAD_MAX,
                                                    (HttpSlice){"POST", 4}, &head, &reason);

        if (k == -EAGAIN) {
                if (s->eof)
                        conn_fail(conn, -ECONNRESET, "closed before an answer");
                return;
        }
        if (k < 0) {
                conn_fail(conn, -EBADMSG,
                          k == -EMSGSIZE ? "answer head too long" : reason ? reason : "not HTTP");
                return;
        }
        if (head.status >= 100 && head.status < 200) {
                evbuffer_drain(s->in, (size_t)k); /* 100 Continue and the like: not the answer */
                return;
        }
        if (head.body == HTTP_BODY_LENGTH && head.content_length > ETCD_BODY_MAX) {
                conn_fail(conn, -EBADMSG, "answer too long");
                return;
        }
        conn->status = head.status;
        conn->streaming = conn->call->watch && !conn->call->authenticating && head.status == 200;
        conn->keep_alive = head.keep_alive && head.body != HTTP_BODY_CLOSE;
        http_body_init(&conn->body, head.body, head.content_length);
        conn->body.dechunk = true;
        evbuffer_drain(s->in, (size_t)k);
        conn->state = CONN_BODY;
        /* A watch's head came: from here it has no deadline. */
        if (conn->streaming)
                event_del(conn->call->timer);
}

static void on_body(EtcdConn *conn)
{
        Stream *s = &conn->stream;
        int r = conn->body.done ? 1
                                : http_body_move(&conn->body, s->in, conn->content,
                                                 ETCD_CHUNK_LINE_MAX);

        if (r < 0) {
                conn_fail(conn, -EBADMSG, "broken chunked framing");
                return;
        }
        if (conn->streaming) {
                if (!watch_lines(conn))
                        return;
        } else if (evbuffer_get_length(conn->content) > ETCD_BODY_MAX) {
                conn_fail(conn, -EBADMSG, "answer too long");
                return;
        }
        if (r == 0 && s->eof) {
                if (conn->body.type == HTTP_BODY_CLOSE)
                        r = 1;
                else if (conn->streaming) {
                        conn_fail(conn, -EPIPE, NULL);
                        return;
                } else {
                        conn_fail(conn, -ECONNRESET, "closed in the middle of an answer");
                        return;
                }
        }
        if (r == 1)
                on_answer(conn);
}

static void on_read(Stream *s, void *userdata)
{
        EtcdConn *conn = userdata;

        switch (conn->state) {
        case CONN_HEAD:
                on_head(conn);
                if (conn->state == CONN_BODY)
                        on_body(conn);
                return;
        case CONN_BODY:
                on_body(conn);
                return;
        case CONN_IDLE:
                /* The server closed it (or said what nobody asked for): gone, quietly. */
                etcd_conn_close(conn);
                return;
        case CONN_CONNECTING:
        case CONN_CLOSED:
                break;
        }
        assert(!"input on a connection that does not wait for any");
        etcd_conn_close(conn);
}

static void on_connect(Stream *s, int error, void *userdata)
{
        EtcdConn *conn = userdata;

        if (error < 0) {
                conn_fail(conn, error, stream_error_detail(s));
                return;
        }
        if (!conn->call) {
                conn_idle(conn);
                return;
        }
        conn->state = CONN_HEAD;
        int r = stream_flush(s);
        if (r < 0) {
                conn_fail(conn, r, stream_error_detail(s));
                return;
        }
        stream_read_start(s);
}

static void on_error(Stream *s, int error, void *userdata)
{
        EtcdConn *conn = userdata;

        if (conn->call)
                conn_fail(conn, error, stream_error_detail(s));
        else
                etcd_conn_close(conn);
}

static void on_drain(Stream *s, void *userdata)
{
}

static const StreamHandler conn_handler = {
        .on_read = on_read,
        .on_drain = on_drain,
        .on_connect = on_connect,
        .on_error = on_error,
};

/* Writes the call's request (or the authentication before it) on the connection. */
static int send_request(EtcdConn *conn)
{
        EtcdClient *c = conn->client;
        EtcdCall *call = conn->call;
        const EtcdEndpoint *e = &c->endpoints[conn->endpoint];
        _cleanup_free_ char *auth = NULL;
        const char *path = call->path, *body = call->body;
        int r;

        if (c->username && !c->token) {
                r = etcd_json_authenticate(c->username, c->password, &auth);
                if (r < 0)
                        return r;
                call->authenticating = true;
                path = "/v3/auth/authenticate";
                body = auth;
        }
        size_t len = strlen(body);
        r = evbuffer_add_printf(conn->stream.out,
                                "POST %s HTTP/1.1\r\nHost: %s\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                                path, e->host_header, len);
        if (r >= 0 && !call->authenticating && c->token)
                r = evbuffer_add_printf(conn->stream.out, "Authorization: %s\r\n", c->token);
        if (r >= 0)
                r = evbuffer_add(conn->stream.out, "\r\n", 2);
        if (r >= 0)
                r = evbuffer_add(conn->stream.out, body, len);
        if (r < 0)
                return -ENOMEM;
        if (conn->state != CONN_CONNECTING)
                conn->state = CONN_HEAD;
        return stream_flush(&conn->stream);
}

int etcd_conn_open(EtcdClient *c, size_t endpoint, bool watch, EtcdConn **ret)
{
        EtcdEndpoint *e = &c->endpoints[endpoint];
        _cleanup_close_ int fd = stream_tcp_socket(e->sa.ss_family);
        if (fd < 0)
                return fd;

        EtcdConn *conn = calloc(1, sizeof(*conn));
        if (!conn)
                return -ENOMEM;
        *conn = (EtcdConn){.client = c, .endpoint = endpoint, .watch = watch,
                           .state = CONN_CONNECTING};
        conn->content = evbuffer_new();
        int r = conn->content ? stream_init(&conn->stream, c->base, TAKE_FD(fd), &conn_handler,
                                            conn)
                              : -ENOMEM;
        if (r < 0) {
                if (conn->content)
                        evbuffer_free(conn->content);
                free(conn);
                return r;
        }
        /* The session cache key: one identity (the client's policy) per endpoint. */
        if (e->https)
                r = tls_client_attach(c->tls, &conn->stream, e->host, e->url);
        if (r >= 0)
                r = stream_connect(&conn->stream, (const struct sockaddr *)&e->sa, e->sa_len);
        if (r < 0) {
                stream_done(&conn->stream);
                evbuffer_free(conn->content);
                free(conn);
                return r;
        }
        c->n_connects++;
        if (!watch) {
                LIST_PUSH(e->conns, conn);
                e->n_conns++;
        }
        *ret = conn;
        return 0;
}

int etcd_conn_take(EtcdConn *conn, EtcdCall *call)
{
        assert(!conn->call);
        conn->call = call;
        call->conn = conn;
        if (conn->state == CONN_IDLE)
                conn->state = CONN_HEAD;
        return send_request(conn);
}
