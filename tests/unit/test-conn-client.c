/* SPDX-License-Identifier: MIT */

/* The client connection on a loop of its own, over a socketpair: pipelined requests are served
 * in a loop (no recursion), a bounded number per turn of the loop; none is read while the
 * responses wait above the output high-water mark; the header timeout runs from accept. The
 * requests have no route, so every answer is lbproxy's own 404, made at once. */

#include <assert.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "base/log.h"
#include "lb/model.h"
#include "lb/publisher.h"
#include "net/listener.h"
#include "proxy/conn-client.h"
#include "proxy/conn-limit.h"
#include "proxy/pool.h"
#include "proxy/worker.h"
#include "tap.h"

/* conn-client.c's REQUESTS_PER_TURN. */
#define PER_TURN 16

static const char config_yaml[] = "access_log: false\n"
                                  "timeouts: {header: 300ms, keepalive: 30s}\n"
                                  "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n";

typedef struct Fixture {
        struct event_base *base;
        Registry *registry;
        ModelPublisher models;
        ConnLimit conn_limit;
        WorkerShared shared;
        Worker worker;
        Listener listener;
        int peer; /* the client's end */
} Fixture;

static void fixture_init(Fixture *f)
{
        Config *config = NULL;
        Model *model = NULL;
        char *errors = NULL;

        *f = (Fixture){ .peer = -EBADF };
        f->base = event_base_new();
        CHECK(f->base);
        CHECK(config_load_string("t.yaml", config_yaml, strlen(config_yaml), &errors, &config) ==
              0);
        free(errors);
        CHECK(registry_new(&f->registry) == 0);
        CHECK(model_new(config, &(ModelContext){ .registry = f->registry }, &model, NULL) == 0);
        model_publisher_init(&f->models);
        model_publisher_set(&f->models, model);
        conn_limit_init(&f->conn_limit);
        conn_limit_set_max(&f->conn_limit, 16);
        f->shared = (WorkerShared){ .models = &f->models, .conn_limit = &f->conn_limit };
        f->worker = (Worker){ .id = 1, .base = f->base, .shared = &f->shared };
        f->worker.pool = pool_new(&f->worker);
        worker_refresh_model(&f->worker);
        f->listener = (Listener){ .name = (char *)"web", .nodelay = true,
                                  .protocol = LISTENER_HTTP };
}

static void fixture_done(Fixture *f)
{
        while (f->worker.clients)
                client_conn_free(f->worker.clients);
        f->worker.pool = pool_free(f->worker.pool);
        f->worker.model = model_unref(f->worker.model);
        model_publisher_done(&f->models);
        f->registry = registry_free(f->registry);
        conn_limit_done(&f->conn_limit);
        f->peer = safe_close(f->peer);
        event_base_free(f->base);
}

/* A new client connection on the worker; the client's end in f->peer (non-blocking). */
static ClientConn *connect_client(Fixture *f)
{
        int fds[2];
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40000),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        f->peer = fds[1];
        /* The slot the listener takes before accept(2); the connection gives it back. */
        CHECK(conn_limit_take(&f->conn_limit));
        CHECK(client_conn_new(&f->worker, fds[0], (struct sockaddr *)&sin, &f->listener) == 0);
        return f->worker.clients;
}

/* One pass of the loop: what is ready runs, nothing is waited for. */
static void loop_pass(Fixture *f)
{
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* The client's side: n pipelined requests for /nope/0.. /nope/(n-1), how far they were written,
 * and what came back. */
typedef struct Traffic {
        unsigned n;
        char *req;
        size_t len, at;
        char *got;
        size_t got_len, got_cap;
} Traffic;

static void traffic_init(Traffic *t, unsigned n)
{
        size_t cap = (size_t)n * 48;
        *t = (Traffic){ .n = n, .req = malloc(cap) };
        assert(t->req);
        for (unsigned i = 0; i < n; i++)
                t->len += (size_t)snprintf(t->req + t->len, cap - t->len,
                                           "GET /nope/%u HTTP/1.1\r\nHost: a\r\n\r\n", i);
}

static void traffic_done(Traffic *t)
{
        free(t->req);
        free(t->got);
}

/* Writes what the socket takes of the requests not written yet. */
static void feed(int fd, Traffic *t)
{
        while (t->at < t->len) {
                ssize_t n = write(fd, t->req + t->at, t->len - t->at);
                if (n <= 0)
                        return;
                t->at += (size_t)n;
        }
}

/* Reads what is there. */
static void drain(int fd, Traffic *t)
{
        for (;;) {
                if (t->got_cap - t->got_len < 65536) {
                        t->got_cap = t->got_cap * 2 + 65536;
                        t->got = realloc(t->got, t->got_cap);
                        assert(t->got);
                }
                ssize_t n = read(fd, t->got + t->got_len, t->got_cap - t->got_len);
                if (n <= 0)
                        return;
                t->got_len += (size_t)n;
        }
}

/* Every request got its 404, in order, and nothing else came. */
static bool answers_in_order(const Traffic *t)
{
        const char *p = t->got, *end = t->got + t->got_len;
        for (unsigned i = 0; i < t->n; i++) {
                char want[64];
                snprintf(want, sizeof(want), "no route for GET /nope/%u\n", i);
                const char *status = memmem(p, (size_t)(end - p), "HTTP/1.1 404 ", 13);
                const char *text = memmem(p, (size_t)(end - p), want, strlen(want));
                if (!status || !text || text < status) {
                        fprintf(stderr, "answer %u missing or out of order\n", i);
                        return false;
                }
                p = text + strlen(want);
        }
        return memmem(p, (size_t)(end - p), "HTTP/1.1", 8) == NULL;
}

/* 10,000 pipelined requests, read as they come: all answered in order, never more than
 * PER_TURN in one pass of the loop (the old recursion answered a whole read at once, one stack
 * frame per request, until the stack overflowed). */
static void test_pipelined_bounded_turns(void)
{
        Fixture f;
        Traffic t;
        fixture_init(&f);
        traffic_init(&t, 10000);
        ClientConn *c = connect_client(&f);
        unsigned passes = 0, max_per_pass = 0;

        for (unsigned i = 0; i < 100000 && c->requests < t.n; i++) {
                feed(f.peer, &t);
                unsigned before = c->requests;
                loop_pass(&f);
                passes++;
                if (c->requests - before > max_per_pass)
                        max_per_pass = c->requests - before;
                drain(f.peer, &t);
        }
        for (unsigned i = 0; i < 100; i++) {
                loop_pass(&f);
                drain(f.peer, &t);
        }
        CHECK(c->requests == t.n);
        CHECK(max_per_pass > 0 && max_per_pass <= PER_TURN);
        CHECK(passes >= t.n / PER_TURN);
        CHECK(answers_in_order(&t));
        CHECK(c->state == CLIENT_IDLE);
        traffic_done(&t);
        fixture_done(&f);
}

/* A client that pipelines and does not read: answers stop at the output high-water mark, and
 * so does reading its requests; once it reads, the rest is answered, in order. */
static void test_pipelined_not_reading(void)
{
        Fixture f;
        Traffic t;
        fixture_init(&f);
        traffic_init(&t, 20000);
        ClientConn *c = connect_client(&f);

        for (unsigned i = 0; i < 100000 && c->state != CLIENT_OUT_FULL; i++) {
                feed(f.peer, &t);
                loop_pass(&f);
        }
        CHECK(c->state == CLIENT_OUT_FULL);
        CHECK(stream_pending_out(&c->stream) >= STREAM_OUT_HIGH_WATER);
        /* The client writes on; nothing more is read or answered. */
        unsigned answered = c->requests;
        uint64_t read = c->stream.bytes_read;
        for (unsigned i = 0; i < 1000; i++) {
                feed(f.peer, &t);
                loop_pass(&f);
        }
        CHECK(c->requests == answered);
        CHECK(c->stream.bytes_read == read);
        CHECK(t.at < t.len); /* its writes are held back */
        /* One answer past the mark at most. */
        CHECK(stream_pending_out(&c->stream) < STREAM_OUT_HIGH_WATER + 512);

        for (unsigned i = 0; i < 200000 && c->requests < t.n; i++) {
                feed(f.peer, &t);
                drain(f.peer, &t);
                loop_pass(&f);
        }
        for (unsigned i = 0; i < 100; i++) {
                loop_pass(&f);
                drain(f.peer, &t);
        }
        CHECK(c->requests == t.n);
        CHECK(answers_in_order(&t));
        traffic_done(&t);
        fixture_done(&f);
}

/* A stop between two turns of a pipelining connection: the turn still comes, and a connection
 * that then has nothing more to answer closes instead of idling until the keep-alive timeout. */
static void test_stop_between_turns(void)
{
        Fixture f;
        Traffic t;
        fixture_init(&f);
        traffic_init(&t, PER_TURN);
        ClientConn *c = connect_client(&f);

        feed(f.peer, &t);
        CHECK(t.at == t.len);
        for (unsigned i = 0; i < 100 && c->requests < t.n; i++)
                loop_pass(&f);
        CHECK(c->requests == t.n);
        worker_stop(&f.worker);
        CHECK(f.worker.clients == c); /* its turn is due */
        for (unsigned i = 0; i < 100 && f.worker.clients; i++) {
                loop_pass(&f);
                drain(f.peer, &t);
        }
        CHECK(c->state == CLIENT_LINGERING); /* write side shut: the client sees the end */
        drain(f.peer, &t);
        CHECK(answers_in_order(&t));
        CHECK(read(f.peer, &(char){ 0 }, 1) == 0);
        traffic_done(&t);
        fixture_done(&f);
}

/* Waits (bounded) for the client's end to see the close; returns the bytes it got first. */
static size_t run_until_closed(Fixture *f, char *buf, size_t size, bool *closed)
{
        size_t got = 0;
        *closed = false;
        for (unsigned i = 0; i < 400 && !*closed; i++) {
                struct timeval tv = { 0, 10000 };
                event_base_loopexit(f->base, &tv);
                event_base_dispatch(f->base);
                for (;;) {
                        ssize_t n = read(f->peer, buf + got, size - got - 1);
                        if (n == 0 || (n < 0 && errno != EAGAIN)) {
                                *closed = true;
                                break;
                        }
                        if (n < 0)
                                break;
                        got += (size_t)n;
                }
        }
        buf[got] = 0;
        return got;
}

/* The header timeout (300 ms) runs from accept: a connection that sends nothing is closed
 * then, without a word; one that sent part of a head gets 408. */
static void test_header_timeout_from_accept(void)
{
        char buf[4096];
        bool closed;

        Fixture f;
        fixture_init(&f);
        connect_client(&f);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        size_t got = run_until_closed(&f, buf, sizeof(buf), &closed);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(closed);
        CHECK(got == 0);
        CHECK(took >= 250 * USEC_PER_MSEC && took < 3 * USEC_PER_SEC);
        CHECK(f.worker.clients == NULL);
        fixture_done(&f);

        fixture_init(&f);
        connect_client(&f);
        static const char part[] = "GET /slow HTTP/1.1\r\nHost: a\r\n";
        CHECK(write(f.peer, part, strlen(part)) == (ssize_t)strlen(part));
        t0 = now_usec(CLOCK_MONOTONIC);
        got = run_until_closed(&f, buf, sizeof(buf), &closed);
        took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(closed);
        CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
        CHECK(took < 3 * USEC_PER_SEC);
        fixture_done(&f);
}

int main(void)
{
        log_setup(); /* lbproxy's own lines go to stderr */
        test_pipelined_bounded_turns();
        test_pipelined_not_reading();
        test_stop_between_turns();
        test_header_timeout_from_accept();
        TEST_MAIN_END();
}
