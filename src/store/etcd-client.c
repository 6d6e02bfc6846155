/* SPDX-License-Identifier: MIT */
/* etcd's client over lbproxy's own pieces: a Stream (with a TLS transport for https://), the
 * HTTP/1.1 response parser and the body framer.
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "http/http-body.h"
#include "http/http1.h"
#include "net/stream.h"
#include "store/etcd-client.h"
#include "store/etcd-json.h"
#include "store/etcd-lines.h"
#include "tls/tls.h"

#define ETCD_CALL_MAGIC 0x65746364u /* "etcd" */
/* An answer's head: etcd's are a few hundred bytes. */
#define ETCD_HEAD_MAX (64 * 1024)
/* A unary answer's body: a range of the whole prefix is the big one; past this, something is
 * wrong with what answers. */
#define ETCD_BODY_MAX (UINT64_C(256) << 20)
/* A chunk size line (and the trailers, four times it). */
#define ETCD_CHUNK_LINE_MAX 1024
/* A kept connection idle this long is closed rather than used: a server that closed it
 * meanwhile would otherwise fail the next call. */
#define ETCD_IDLE_MAX_USEC (30 * USEC_PER_SEC)

typedef struct EtcdConn EtcdConn;

typedef struct EtcdEndpoint {
        char *url;
        char *host; /* without brackets: the verified name over TLS */
        char *host_header;
        bool https;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        EtcdConn *conns;   /* for unary calls */
        size_t n_conns;
        EtcdCall *queue;   /* unary calls waiting for a connection, oldest first */
        EtcdCall *queue_tail;
} EtcdEndpoint;

typedef enum ConnState {
        CONN_CONNECTING, /* TCP connect and TLS handshake */
        CONN_IDLE,
        CONN_HEAD, /* a request went out: waiting for the answer's head */
        CONN_BODY,
        CONN_CLOSED, /* in the client's list of the dead */
} ConnState;

struct EtcdConn {
        EtcdClient *client;
        size_t endpoint;
        Stream stream;
        ConnState state;
        bool watch;       /* a watch's own connection */
        EtcdCall *call;   /* the call on it, or NULL */
        unsigned status;  /* of the answer being read */
        bool keep_alive;
        bool streaming;   /* the answer is a watch's stream of lines */
        HttpBodyState body;
        struct evbuffer *content; /* the answer's body (dechunked) */
        uint64_t idle_usec;
        EtcdConn *next, *prev;
};

struct EtcdCall {
        unsigned magic;
        EtcdClient *client;
        size_t endpoint;
        char *path;
        char *body;
        bool watch;
        bool authenticating;  /* the request under way is /v3/auth/authenticate */
        bool reauthenticated; /* its token was refused once (expired) and a new one taken */
        bool dead;            /* ended or cancelled: in the client's list of the dead */
        bool queued;
        uint64_t seq; /* when it was queued: those before a failure share it */
        EtcdConn *conn;
        struct event *timer; /* the call's deadline; a watch's until its head */
        struct evbuffer *lines; /* a watch: what came and is not a whole line yet */
        EtcdCallDone done;
        EtcdWatchLine on_line;
        void *userdata;
        EtcdCall *next, *prev;
};

struct EtcdClient {
        struct event_base *base;
        EtcdEndpoint *endpoints;
        size_t n_endpoints;
        struct timeval timeout;
        TlsClient *tls; /* NULL without https:// endpoints */
        char *username, *password;
        char *token; /* from /v3/auth/authenticate; NULL until then, or after it was refused */
        EtcdCall *calls; /* live, not queued */
        EtcdCall *dead;
        EtcdConn *dead_conns;
        struct event *reap; /* frees the dead */
        struct event *kick; /* gives waiting calls their connections */
        uint64_t n_connects;
        uint64_t next_seq;
};

/* ---- lists ---- */

#define LIST_UNLINK(head, x)                                                                   \
        do {                                                                                   \
                if ((x)->prev)                                                                 \
                        (x)->prev->next = (x)->next;                                           \
                else                                                                           \
                        (head) = (x)->next;                                                    \
                if ((x)->next)                                                                 \
                        (x)->next->prev = (x)->prev;                                           \
                (x)->next = (x)->prev = NULL;                                                  \
        } while (0)

#define LIST_PUSH(head, x)                                                                     \
        do {                                                                                   \
                (x)->prev = NULL;                                                              \
                (x)->next = (head);                                                            \
                if (head)                                                                      \
                        (head)->prev = (x);                                                    \
                (head) = (x);                                                                  \
        } while (0)

static void queue_remove(EtcdEndpoint *e, EtcdCall *call)
{
        assert(call->queued);
        if (e->queue_tail == call)
                e->queue_tail = call->prev;
        LIST_UNLINK(e->queue, call);
        call->queued = false;
}

static void queue_append(EtcdEndpoint *e, EtcdCall *call)
{
        call->next = NULL;
        call->prev = e->queue_tail;
        if (e->queue_tail)
                e->queue_tail->next = call;
        else
                e->queue = call;
        e->queue_tail = call;
        call->queued = true;
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

static void conn_close(EtcdConn *conn);

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
        event_active(c->reap, EV_TIMEOUT, 1);
        if (call->conn) {
                EtcdConn *conn = call->conn;
                call->conn = NULL;
                conn->call = NULL;
                conn_close(conn);
        }
}

void etcd_call_cancel(EtcdCall *call)
{
        if (call)
                bury(call);
}

/* Ends the call for its caller: buried first, so that the caller may start another from
 * `done`. The connection is detached before, so that it stays open when it may serve on. */
static void finish(EtcdCall *call, int r, unsigned status, const char *body, size_t len)
{
        EtcdCallDone done = call->done;
        void *userdata = call->userdata;

        assert(!call->dead);
        bury(call);
        done(userdata, r, status, body, len);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *userdata)
{
        EtcdCall *call = userdata;

        assert(call->magic == ETCD_CALL_MAGIC);
        finish(call, -ETIMEDOUT, 0, NULL, 0);
}

/* ---- connections ---- */

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

static void kick(EtcdClient *c)
{
        event_active(c->kick, EV_TIMEOUT, 1);
}

/* Closes the socket now; the memory goes on the next turn. The call on it, if any, is not told:
 * the caller does that. */
static void conn_close(EtcdConn *conn)
{
        EtcdClient *c = conn->client;

        if (conn->state == CONN_CLOSED)
                return;
        if (!conn->watch) {
                EtcdEndpoint *e = &c->endpoints[conn->endpoint];
                LIST_UNLINK(e->conns, conn);
                e->n_conns--;
                if (e->queue)
                        kick(c); /* room for another connection */
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
        event_active(c->reap, EV_TIMEOUT, 1);
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

        conn_close(conn);
        if (call)
                finish(call, r, 0, why, why ? strlen(why) : 0);
        /* Those queued before are waiting for this endpoint, with no other connection to it;
         * a `done` may queue more (or cancel some), which get their own try. */
        if (connecting && !conn->watch)
                for (EtcdCall *q = e->queue; q && q->seq <= seq && e->n_conns == 0; q = e->queue)
                        finish(q, r, 0, why, why ? strlen(why) : 0);
}

static int send_request(EtcdConn *conn);

static void conn_idle(EtcdConn *conn)
{
        conn->state = CONN_IDLE;
        conn->idle_usec = now_usec(CLOCK_MONOTONIC);
        /* Watched while idle: the server's close is seen when it comes. */
        stream_read_start(&conn->stream);
        if (conn->client->endpoints[conn->endpoint].queue)
                kick(conn->client);
}

/* The answer whole: in conn->content, NUL-terminated. */
static void on_answer(EtcdConn *conn)
{
        EtcdClient *c = conn->client;
        EtcdCall *call = conn->call;
        unsigned status = conn->status;
        size_t len = evbuffer_get_length(conn->content);
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
        struct evbuffer *content = TAKE_PTR(conn->content);
        conn->call = NULL;
        call->conn = NULL;
        if (keep && !conn->watch) {
                conn->content = evbuffer_new();
                if (conn->content)
                        conn_idle(conn);
                else
                        conn_close(conn);
        } else
                conn_close(conn);
        finish(call, r, status, body, len);
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
                conn_close(conn);
                return;
        case CONN_CONNECTING:
        case CONN_CLOSED:
                break;
        }
        assert(!"input on a connection that does not wait for any");
        conn_close(conn);
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
                conn_close(conn);
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

static int conn_open(EtcdClient *c, size_t endpoint, bool watch, EtcdConn **ret)
{
        EtcdEndpoint *e = &c->endpoints[endpoint];
        _cleanup_close_ int fd = socket(e->sa.ss_family,
                                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

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

/* Puts a call on a connection: the request goes out now, or once connected. */
static int conn_take(EtcdConn *conn, EtcdCall *call)
{
        assert(!conn->call);
        conn->call = call;
        call->conn = conn;
        if (conn->state == CONN_IDLE)
                conn->state = CONN_HEAD;
        return send_request(conn);
}

/* A kept connection free for a call, or NULL. One idle too long is closed on the way. */
static EtcdConn *idle_conn(EtcdEndpoint *e)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        EtcdConn *next;

        for (EtcdConn *k = e->conns; k; k = next) {
                next = k->next;
                if (k->state == CONN_IDLE && now - k->idle_usec > ETCD_IDLE_MAX_USEC)
                        conn_close(k);
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
                r = conn_open(c, endpoint, call->watch, &conn);
        if (r >= 0)
                r = conn_take(conn, call);
        if (r >= 0)
                return true;
        if (conn)
                conn_close(conn);
        finish(call, r, 0, NULL, 0);
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
                        kick(c); /* the rest on the next turn */
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
        queue_append(&c->endpoints[endpoint], call);
        kick(c);
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
                        conn_close(conn);
                }
        }
        while (c->calls) {
                EtcdCall *call = c->calls;
                LIST_UNLINK(c->calls, call);
                if (call->conn) {
                        call->conn->call = NULL;
                        conn_close(call->conn); /* a watch's */
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

        if (status && body)
                return body;
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
