/* SPDX-License-Identifier: MIT */
/* evhttp as etcd's client. A call owns its evhttp_connection; when a call ends (or is
 * cancelled), its connection is not freed there and then, since that may be inside one of
 * evhttp's own callbacks, which go on using it: it goes to the client's list of the dead, freed
 * from an event of the client's own on the next turn of the loop. */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "store/etcd-client.h"
#include "store/etcd-json.h"
#include "store/etcd-lines.h"

#define ETCD_CALL_MAGIC 0x65746364u /* "etcd" */
/* A watch has no timeout of its own (the caller checks that it is alive), but evhttp wants one. */
#define WATCH_TIMEOUT_SEC (7 * 24 * 3600)

typedef struct EtcdEndpoint {
        char *url;
        char *host; /* without brackets */
        uint16_t port;
        char *host_header;
} EtcdEndpoint;

struct EtcdCall {
        unsigned magic;
        EtcdClient *client;
        struct evhttp_connection *conn;
        size_t endpoint;
        char *path;
        char *body;
        bool watch;
        bool authenticating; /* the request under way is /v3/auth/authenticate */
        bool reauthenticated; /* its token was refused once (expired) and a new one taken */
        bool dead;           /* ended or cancelled: in the client's list of the dead */
        enum evhttp_request_error error; /* the last evhttp said, or -1 */
        bool errored;
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
        char *username, *password;
        char *token; /* from /v3/auth/authenticate; NULL until then, or after it was refused */
        EtcdCall *calls; /* live */
        EtcdCall *dead;
        struct event *reap;
};

static int parse_endpoint(const char *url, EtcdEndpoint *ret)
{
        const char *p, *colon;
        char host[INET6_ADDRSTRLEN + 2];
        unsigned char addr[sizeof(struct in6_addr)];
        size_t n;
        char *end;

        if (strncmp(url, "http://", 7) != 0)
                return -EINVAL;
        p = url + 7;
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
                if (inet_pton(AF_INET6, host, addr) != 1)
                        return -EINVAL;
        } else {
                colon = strrchr(p, ':');
                if (!colon || (size_t)(colon - p) >= sizeof(host))
                        return -EINVAL;
                n = (size_t)(colon - p);
                memcpy(host, p, n);
                host[n] = 0;
                if (inet_pton(AF_INET, host, addr) != 1)
                        return -EINVAL;
        }
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (errno || end == colon + 1 || (*end && !streq(end, "/")) || port == 0 || port > 65535)
                return -EINVAL;
        *ret = (EtcdEndpoint){.url = strdup(url), .host = strdup(host), .port = (uint16_t)port};
        ret->host_header = ret->url ? strndup(p, (size_t)(end - p)) : NULL;
        if (!ret->url || !ret->host || !ret->host_header)
                return -ENOMEM;
        return 0;
}

static void call_free(EtcdCall *call)
{
        if (!call)
                return;
        if (call->conn)
                evhttp_connection_free(call->conn);
        if (call->lines)
                evbuffer_free(call->lines);
        free(call->path);
        free(call->body);
        call->magic = 0;
        free(call);
}

static void unlink_call(EtcdCall **list, EtcdCall *call)
{
        if (call->prev)
                call->prev->next = call->next;
        else
                *list = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->next = call->prev = NULL;
}

static void push_call(EtcdCall **list, EtcdCall *call)
{
        call->prev = NULL;
        call->next = *list;
        if (*list)
                (*list)->prev = call;
        *list = call;
}

static void on_reap(evutil_socket_t fd, short what, void *userdata)
{
        EtcdClient *c = userdata;

        while (c->dead) {
                EtcdCall *call = c->dead;
                unlink_call(&c->dead, call);
                call_free(call);
        }
}

/* The call is over for its caller: freed on the next turn of the loop. */
static void bury(EtcdCall *call)
{
        EtcdClient *c = call->client;

        if (call->dead)
                return;
        call->dead = true;
        unlink_call(&c->calls, call);
        push_call(&c->dead, call);
        event_active(c->reap, EV_TIMEOUT, 1);
}

void etcd_call_cancel(EtcdCall *call)
{
        if (call)
                bury(call);
}

/* Ends the call for its caller: buried first, so that the caller may start another from
 * `done`. */
static void finish(EtcdCall *call, int r, unsigned status, const char *body, size_t len)
{
        EtcdCallDone done = call->done;
        void *userdata = call->userdata;

        bury(call);
        done(userdata, r, status, body, len);
}

static int send_request(EtcdCall *call);

static int error_to_errno(const EtcdCall *call)
{
        if (!call->errored)
                return -EIO;
        switch (call->error) {
        case EVREQ_HTTP_TIMEOUT:
                return -ETIMEDOUT;
        case EVREQ_HTTP_EOF:
                return -EPIPE;
        case EVREQ_HTTP_INVALID_HEADER:
        case EVREQ_HTTP_DATA_TOO_LONG:
                return -EBADMSG;
        default:
                return -ECONNREFUSED;
        }
}

static void on_error(enum evhttp_request_error error, void *userdata)
{
        EtcdCall *call = userdata;

        assert(call->magic == ETCD_CALL_MAGIC);
        call->error = error;
        call->errored = true;
}

static void on_done(struct evhttp_request *req, void *userdata)
{
        EtcdCall *call = userdata;
        EtcdClient *c = call->client;

        assert(call->magic == ETCD_CALL_MAGIC);
        if (call->dead)
                return;
        if (!req || evhttp_request_get_response_code(req) == 0) {
                finish(call, error_to_errno(call), 0, NULL, 0);
                return;
        }
        unsigned status = (unsigned)evhttp_request_get_response_code(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        /* NUL-terminated for the JSON reader's messages. */
        if (evbuffer_add(in, "", 1) < 0) {
                finish(call, -ENOMEM, status, NULL, 0);
                return;
        }
        const char *body = (const char *)evbuffer_pullup(in, -1);
        if (!body) {
                finish(call, -ENOMEM, status, NULL, 0);
                return;
        }

        if (call->authenticating) {
                call->authenticating = false;
                free(c->token);
                c->token = NULL;
                if (status != 200 || etcd_json_parse_authenticate(body, len, &c->token) < 0) {
                        finish(call, -EACCES, status, body, len);
                        return;
                }
                /* The call proper, on the same connection. */
                int r = send_request(call);
                if (r < 0)
                        finish(call, r, 0, NULL, 0);
                return;
        }
        if (call->watch && status == 200) {
                finish(call, -EPIPE, status, NULL, 0);
                return;
        }
        if (status == 401 && c->username) {
                /* A token that expired (etcd's simple tokens last 5 minutes): once, a new one
                 * and the call again, on the same connection. */
                c->token = mfree(c->token);
                int r = call->reauthenticated ? -EACCES : send_request(call);
                call->reauthenticated = true;
                if (r < 0)
                        finish(call, r, status, body, len);
                return;
        }
        finish(call, status == 200 ? 0 : -EPROTO, status, body, len);
}

static void on_chunk(struct evhttp_request *req, void *userdata)
{
        EtcdCall *call = userdata;
        int r;

        assert(call->magic == ETCD_CALL_MAGIC);
        if (call->dead || evhttp_request_get_response_code(req) != 200)
                return; /* an error's body is read whole, for on_done */
        if (evbuffer_add_buffer(call->lines, evhttp_request_get_input_buffer(req)) < 0) {
                finish(call, -ENOMEM, 200, NULL, 0);
                return;
        }
        for (;;) {
                _cleanup_free_ char *line = NULL;
                size_t len;

                r = etcd_lines_next(call->lines, ETCD_LINE_MAX, &line, &len);
                if (r <= 0)
                        break;
                call->on_line(call->userdata, line, len);
                if (call->dead)
                        return; /* cancelled from the callback */
        }
        if (r < 0)
                finish(call, r == -EMSGSIZE ? -EBADMSG : r, 200, NULL, 0);
}

static int send_request(EtcdCall *call)
{
        EtcdClient *c = call->client;
        const EtcdEndpoint *e = &c->endpoints[call->endpoint];
        _cleanup_free_ char *auth = NULL;
        struct evhttp_request *req;
        const char *path = call->path, *body = call->body;

        if (c->username && !c->token) {
                int r = etcd_json_authenticate(c->username, c->password, &auth);
                if (r < 0)
                        return r;
                call->authenticating = true;
                path = "/v3/auth/authenticate";
                body = auth;
        }
        req = evhttp_request_new(on_done, call);
        if (!req)
                return -ENOMEM;
        evhttp_request_set_error_cb(req, on_error);
        if (call->watch && !call->authenticating)
                evhttp_request_set_chunked_cb(req, on_chunk);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        if (evhttp_add_header(h, "Host", e->host_header) < 0 ||
            evhttp_add_header(h, "Content-Type", "application/json") < 0 ||
            (!call->authenticating && c->token &&
             evhttp_add_header(h, "Authorization", c->token) < 0) ||
            evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body)) < 0) {
                evhttp_request_free(req);
                return -ENOMEM;
        }
        /* On failure evhttp has freed the request. */
        if (evhttp_make_request(call->conn, req, EVHTTP_REQ_POST, path) < 0)
                return -ENOMEM;
        return 0;
}

static int start(EtcdClient *c, size_t endpoint, const char *path, const char *body, bool watch,
                 EtcdWatchLine on_line, EtcdCallDone done, void *userdata, EtcdCall **ret)
{
        const EtcdEndpoint *e;
        EtcdCall *call;
        int r;

        assert(endpoint < c->n_endpoints && done);
        e = &c->endpoints[endpoint];
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
        call->conn = evhttp_connection_base_new(c->base, NULL, e->host, e->port);
        if (watch)
                call->lines = evbuffer_new();
        if (!call->path || !call->body || !call->conn || (watch && !call->lines)) {
                call_free(call);
                return -ENOMEM;
        }
        if (watch) {
                struct timeval tv = {.tv_sec = WATCH_TIMEOUT_SEC};
                evhttp_connection_set_timeout_tv(call->conn, &tv);
        } else
                evhttp_connection_set_timeout_tv(call->conn, &c->timeout);
        r = send_request(call);
        if (r < 0) {
                call_free(call);
                return r;
        }
        push_call(&c->calls, call);
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

int etcd_client_new(struct event_base *base, const EtcdClientOptions *o, EtcdClient **ret)
{
        _cleanup_(etcd_client_freep) EtcdClient *c = NULL;
        size_t n = strv_length((char **)o->endpoints);
        int r;

        if (n == 0)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base = base;
        c->endpoints = calloc(n, sizeof(EtcdEndpoint));
        c->reap = event_new(base, -1, 0, on_reap, c);
        if (!c->endpoints || !c->reap)
                return -ENOMEM;
        for (; c->n_endpoints < n; c->n_endpoints++) {
                r = parse_endpoint(o->endpoints[c->n_endpoints], &c->endpoints[c->n_endpoints]);
                if (r < 0) {
                        c->n_endpoints++; /* freed with what it has */
                        return r;
                }
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
        while (c->calls) {
                EtcdCall *call = c->calls;
                unlink_call(&c->calls, call);
                call_free(call);
        }
        on_reap(-1, 0, c);
        if (c->reap)
                event_free(c->reap);
        for (size_t i = 0; i < c->n_endpoints; i++) {
                free(c->endpoints[i].url);
                free(c->endpoints[i].host);
                free(c->endpoints[i].host_header);
        }
        free(c->endpoints);
        free(c->username);
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
