/* SPDX-License-Identifier: MIT */
/* etcd's client against a tiny HTTP/1.1 server on the same loop: kept connections (three calls,
 * one connection; five at once, two at most), an error status on a kept connection, a watch's
 * lines split across chunks, the bounds (a call's timeout, a head too long), a refused endpoint
 * failing the calls queued behind it, and a watch cancelled from its own line callback. */

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/etcd-client.h"
#include "tap.h"

typedef enum Mode {
        SERVE_OK,     /* 200, chunked, written in pieces */
        SERVE_404,    /* 404 with a Content-Length body, kept alive */
        SERVE_WATCH,  /* 200, two lines over three chunks, then the last chunk */
        SERVE_SILENT, /* reads, never answers */
        SERVE_HUGE,   /* a head that does not end */
        SERVE_ONCE,   /* as SERVE_OK, but a connection's second request closes it unanswered */
} Mode;

typedef struct Server {
        struct event_base *base;
        int fd;
        struct event *ev;
        Mode mode;
        unsigned accepted, requests;
        char url[64];
        struct Peer *peers;
} Server;

typedef struct Peer {
        struct Peer *next;
        Server *srv;
        int fd;
        struct event *ev;
        char buf[16384];
        size_t len;
        unsigned requests;
} Peer;

static void say(int fd, const char *s)
{
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t)k;
        }
}

/* One chunk of a chunked body. */
static void say_chunk(int fd, const char *data)
{
        char size[32];

        snprintf(size, sizeof(size), "%zx\r\n", strlen(data));
        say(fd, size);
        say(fd, data);
        say(fd, "\r\n");
}

static void answer(Peer *p)
{
        Server *srv = p->srv;
        char chunk[128];

        if (srv->mode == SERVE_ONCE && p->requests++ > 0) {
                shutdown(p->fd, SHUT_RDWR); /* as a server that closed it while it idled */
                return;
        }
        srv->requests++;
        switch (srv->mode) {
        case SERVE_ONCE:
        case SERVE_OK:
                say(p->fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
                snprintf(chunk, sizeof(chunk), "{\"n\":%u}", srv->requests);
                say_chunk(p->fd, "{\"n");
                say_chunk(p->fd, chunk + 3);
                say(p->fd, "0\r\n\r\n");
                return;
        case SERVE_404:
                say(p->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
                return;
        case SERVE_WATCH:
                say(p->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                say_chunk(p->fd, "{\"result\":{\"a\":1}}\n{\"re");
                say_chunk(p->fd, "sul");
                say_chunk(p->fd, "t\":{\"b\":2}}\n");
                say(p->fd, "0\r\n\r\n");
                return;
        case SERVE_SILENT:
                return;
        case SERVE_HUGE: {
                static char huge[66000];
                memset(huge, 'a', sizeof(huge) - 1);
                say(p->fd, "HTTP/1.1 200 OK\r\nX-Long: ");
                say(p->fd, huge);
                return;
        }
        }
}

static void on_peer(evutil_socket_t fd, short what, void *userdata)
{
        Peer *p = userdata;
        ssize_t k = read(fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);

        if (k <= 0) {
                event_del(p->ev); /* freed with the server */
                return;
        }
        p->len += (size_t)k;
        p->buf[p->len] = 0;
        for (;;) {
                char *end = strstr(p->buf, "\r\n\r\n");
                char *cl = strstr(p->buf, "Content-Length: ");
                if (!end || !cl)
                        return;
                size_t need = (size_t)(end + 4 - p->buf) + strtoul(cl + 16, NULL, 10);
                if (p->len < need)
                        return;
                answer(p);
                memmove(p->buf, p->buf + need, p->len - need + 1);
                p->len -= need;
        }
}

static void on_accept(evutil_socket_t fd, short what, void *userdata)
{
        Server *srv = userdata;
        int c = accept(fd, NULL, NULL);

        if (c < 0)
                return;
        Peer *p = calloc(1, sizeof(*p));
        if (!p)
                abort();
        /* The head too long goes out whole, with nobody reading yet. */
        int big = 1 << 20;
        (void)setsockopt(c, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        p->srv = srv;
        p->fd = c;
        p->next = srv->peers;
        srv->peers = p;
        p->ev = event_new(srv->base, c, EV_READ | EV_PERSIST, on_peer, p);
        event_add(p->ev, NULL);
        srv->accepted++;
}

static void server_start(Server *srv, struct event_base *base, Mode mode)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);

        *srv = (Server){.base = base, .mode = mode};
        srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (srv->fd < 0 || bind(srv->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(srv->fd, 16) < 0 || getsockname(srv->fd, (struct sockaddr *)&a, &l) < 0)
                abort();
        snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%u", ntohs(a.sin_port));
        srv->ev = event_new(base, srv->fd, EV_READ | EV_PERSIST, on_accept, srv);
        event_add(srv->ev, NULL);
}

static void server_stop(Server *srv)
{
        while (srv->peers) {
                Peer *p = srv->peers;
                srv->peers = p->next;
                event_free(p->ev);
                close(p->fd);
                free(p);
        }
        event_free(srv->ev);
        close(srv->fd);
}

/* What the calls said. */
typedef struct Results {
        unsigned n;
        int r[8];
        unsigned status[8];
        char *body[8];
        char *lines[8];
        unsigned n_lines;
        EtcdCall *watch;
        bool cancel_on_line;
} Results;

static void on_done(void *userdata, int r, unsigned status, const char *body, size_t len)
{
        Results *res = userdata;

        if (res->n < 8) {
                res->r[res->n] = r;
                res->status[res->n] = status;
                res->body[res->n] = body ? strndup(body, len) : NULL;
        }
        res->n++;
}

static void on_line(void *userdata, const char *line, size_t len)
{
        Results *res = userdata;

        if (res->n_lines < 8)
                res->lines[res->n_lines] = strndup(line, len);
        res->n_lines++;
        if (res->cancel_on_line) {
                etcd_call_cancel(res->watch);
                res->n++; /* nobody else says it ended */
        }
}

static void results_done(Results *res)
{
        for (unsigned i = 0; i < 8; i++) {
                free(res->body[i]);
                free(res->lines[i]);
        }
        *res = (Results){};
}

/* Runs the loop until `n` calls ended, for 5 s at most. */
static void wait_for(struct event_base *base, Results *res, unsigned n)
{
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        while (res->n < n && now_usec(CLOCK_MONOTONIC) < deadline)
                event_base_loop(base, EVLOOP_ONCE);
        CHECK(res->n == n);
}

static EtcdClient *client_for(struct event_base *base, const char *url, uint64_t timeout_usec)
{
        char *endpoints[] = {(char *)url, NULL};
        EtcdClientOptions o = {.endpoints = endpoints, .timeout_usec = timeout_usec};
        EtcdClient *c = NULL;

        CHECK(etcd_client_new(base, &o, &c, NULL) == 0);
        return c;
}

static void test_kept_connection(struct event_base *base)
{
        Server srv;
        Results res = {};

        server_start(&srv, base, SERVE_OK);
        EtcdClient *c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        for (unsigned i = 0; i < 3; i++) {
                CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
                CHECK(res.n == i); /* never from inside etcd_call() */
                wait_for(base, &res, i + 1);
                CHECK(res.r[i] == 0 && res.status[i] == 200);
        }
        CHECK_STR(res.body[2], "{\"n\":3}");
        CHECK(etcd_client_n_connects(c) == 1 && srv.accepted == 1);

        /* Five at once: two connections at most, the rest wait for them. */
        results_done(&res);
        for (unsigned i = 0; i < 5; i++)
                CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 5);
        for (unsigned i = 0; i < 5; i++)
                CHECK(res.r[i] == 0);
        CHECK(etcd_client_n_connects(c) <= ETCD_CONNS_MAX && srv.accepted <= ETCD_CONNS_MAX);
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);
}

static void test_error_status_keeps_the_connection(struct event_base *base)
{
        Server srv;
        Results res = {};

        server_start(&srv, base, SERVE_404);
        EtcdClient *c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 1);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 2);
        CHECK(res.r[0] == -EPROTO && res.status[0] == 404);
        CHECK_STR(res.body[0], "not found");
        CHECK(res.r[1] == -EPROTO && etcd_client_n_connects(c) == 1);
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);
}

static void test_watch(struct event_base *base)
{
        Server srv;
        Results res = {};

        server_start(&srv, base, SERVE_WATCH);
        EtcdClient *c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        CHECK(etcd_watch(c, 0, "{}", on_line, on_done, &res, NULL) == 0);
        wait_for(base, &res, 1);
        CHECK(res.n_lines == 2);
        CHECK_STR(res.lines[0], "{\"result\":{\"a\":1}}");
        CHECK_STR(res.lines[1], "{\"result\":{\"b\":2}}");
        CHECK(res.r[0] == -EPIPE);
        results_done(&res);

        /* Cancelled from its first line: no second line, no `done`. */
        res.cancel_on_line = true;
        CHECK(etcd_watch(c, 0, "{}", on_line, on_done, &res, &res.watch) == 0);
        wait_for(base, &res, 1);
        for (unsigned i = 0; i < 20; i++)
                event_base_loop(base, EVLOOP_NONBLOCK);
        CHECK(res.n == 1 && res.n_lines == 1);
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);
}

/* A kept connection that the server closed: a range is sent again on a new one, a txn is not
 * (it may have been carried out). */
static void test_retry_on_a_closed_kept_connection(struct event_base *base)
{
        Server srv;
        Results res = {};

        server_start(&srv, base, SERVE_ONCE);
        EtcdClient *c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 1);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 2);
        CHECK(res.r[0] == 0 && res.r[1] == 0);
        CHECK(etcd_client_n_connects(c) == 2);
        CHECK(etcd_call(c, 0, "/v3/kv/txn", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 3);
        CHECK(res.r[2] == -ECONNRESET || res.r[2] == -EPIPE);
        CHECK(etcd_client_n_connects(c) == 2);
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);
}

static void test_bounds(struct event_base *base)
{
        Server srv;
        Results res = {};

        server_start(&srv, base, SERVE_SILENT);
        EtcdClient *c = client_for(base, srv.url, 200 * USEC_PER_MSEC);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 1);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(res.r[0] == -ETIMEDOUT && res.status[0] == 0);
        CHECK(took >= 150 * USEC_PER_MSEC && took < 2 * USEC_PER_SEC);
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);

        server_start(&srv, base, SERVE_HUGE);
        c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 1);
        CHECK(res.r[0] == -EBADMSG);
        CHECK_STR(res.body[0], "answer head too long");
        results_done(&res);
        etcd_client_free(c);
        server_stop(&srv);
}

static void test_refused(struct event_base *base)
{
        Server srv;
        Results res = {};

        /* A port that was ours a moment ago: nobody listens there now. */
        server_start(&srv, base, SERVE_OK);
        server_stop(&srv);
        EtcdClient *c = client_for(base, srv.url, 5 * USEC_PER_SEC);
        for (unsigned i = 0; i < 4; i++)
                CHECK(etcd_call(c, 0, "/v3/kv/range", "{}", on_done, &res, NULL) == 0);
        wait_for(base, &res, 4);
        for (unsigned i = 0; i < 4; i++)
                CHECK(res.r[i] == -ECONNREFUSED);
        /* The queued calls failed with the connections they waited for, none tried again. */
        CHECK(etcd_client_n_connects(c) <= ETCD_CONNS_MAX);
        results_done(&res);
        etcd_client_free(c);
}

static void test_endpoints(struct event_base *base)
{
        char *bad[][2] = {{"127.0.0.1:2379", NULL}, {"http://etcd:2379", NULL},
                          {"ftp://127.0.0.1:2379", NULL}, {"https://[::1]:0", NULL}};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                EtcdClientOptions o = {.endpoints = bad[i], .timeout_usec = USEC_PER_SEC};
                EtcdClient *c = NULL;
                CHECK(etcd_client_new(base, &o, &c, NULL) == -EINVAL && !c);
        }
        char *good[] = {"http://127.0.0.1:2379/", "https://[::1]:2379", NULL};
        EtcdClientOptions o = {.endpoints = good, .timeout_usec = USEC_PER_SEC};
        EtcdClient *c = NULL;
        CHECK(etcd_client_new(base, &o, &c, NULL) == 0);
        if (c) {
                CHECK(etcd_client_n_endpoints(c) == 2);
                CHECK_STR(etcd_client_endpoint(c, 1), "https://[::1]:2379");
        }
        etcd_client_free(c);
}

int main(void)
{
        struct event_base *base = event_base_new();

        test_endpoints(base);
        test_kept_connection(base);
        test_error_status_keeps_the_connection(base);
        test_watch(base);
        test_retry_on_a_closed_kept_connection(base);
        test_bounds(base);
        test_refused(base);
        event_base_free(base);
        TEST_MAIN_END();
}
