/* SPDX-License-Identifier: MIT */
/* One probe target's connection (health-probe-conn.c) against a server of the test's own, which
 * counts the connections it accepts: HTTP checks keep theirs while the server does (bodies of a
 * length, chunked and split, read to their end), and take a new one when the server said
 * `Connection: close`, sent a body too large to read, or was not asked to keep it; a head in
 * two parts is read whole; no answer in time is a timeout; a kept connection the server closed
 * while idle, or closes as the request comes, is `stale`, not a failure; a tcp check succeeds on
 * a listening port (again from one socket), half open (the server accepts nothing of it), and
 * is refused on a closed one. */
#include <pthread.h>

#include "base/util.h"
#include "probe-test-server.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"
#include "tap.h"

enum {
        KEEP,         /* 200 with a body of 5, kept */
        CHUNKED,      /* 200, chunked, in three writes, kept */
        CLOSE_HEADER, /* 200 with Connection: close, then closed */
        CLOSE_AFTER,  /* 200 (keep-alive), then closed anyway */
        SILENT_CLOSE, /* the request read, closed without an answer */
        BIG,          /* 200 with a body past PROBE_BODY_MAX */
        SPLIT_HEAD,   /* 200 whose head comes in two writes, 30 ms apart, kept */
        HANG,         /* the request read, no answer for 300 ms, then closed */
};

static struct {
        int listen_fd;
        struct sockaddr_in sin;
        atomic_int mode;
        atomic_uint accepts, requests, closes;
        atomic_uint answered; /* answers sent in full */
        atomic_uint port; /* the client's port of the last connection */
        atomic_bool stop;
} srv;

static void say(int fd, const char *s)
{
        (void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/* Answers one request on `fd`: false when the connection is over. */
static bool serve_one(int fd)
{
        char buf[2048];
        size_t n = 0;
        while (!memmem(buf, n, "\r\n\r\n", 4)) {
                if (n == sizeof(buf))
                        return false;
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);
                if (k <= 0)
                        return false;
                n += (size_t)k;
        }
        atomic_fetch_add(&srv.requests, 1);
        switch (atomic_load(&srv.mode)) {
        case KEEP:
                say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                return true;
        case CHUNKED:
                say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
                usleep(20 * 1000);
                say(fd, "lo\r\n0\r\n");
                usleep(20 * 1000);
                say(fd, "\r\n");
                atomic_fetch_add(&srv.answered, 1);
                return true;
        case CLOSE_HEADER:
                say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return false;
        case CLOSE_AFTER:
                say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                return false;
        case SILENT_CLOSE:
                return false;
        case SPLIT_HEAD:
                say(fd, "HTTP/1.1 200 OK\r\nContent-");
                usleep(30 * 1000);
                say(fd, "Length: 5\r\n\r\nhello");
                return true;
        case HANG:
                usleep(300 * 1000);
                return false;
        case BIG: {
                char head[128];
                snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                         PROBE_BODY_MAX + 1);
                say(fd, head);
                static char body[PROBE_BODY_MAX + 1];
                memset(body, 'x', sizeof(body));
                (void)send(fd, body, sizeof(body), MSG_NOSIGNAL);
                return true;
        }
        }
        return false;
}

static void *serve(void *arg)
{
        while (!atomic_load(&srv.stop)) {
                int fd = probe_test_accept(srv.listen_fd);
                if (fd < 0)
                        continue;
                atomic_fetch_add(&srv.accepts, 1);
                struct sockaddr_in peer;
                socklen_t peer_len = sizeof(peer);
                if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0)
                        atomic_store(&srv.port, ntohs(peer.sin_port));
                while (serve_one(fd))
                        ;
                close(fd);
                atomic_fetch_add(&srv.closes, 1);
        }
        return NULL;
}

static struct {
        bool done;
        ProbeResult r;
} last;

static void on_done(Probe *p, const ProbeResult *r, void *userdata)
{
        last.done = true;
        last.r = *r;
        event_base_loopbreak(userdata);
}

static const char request[] = "GET /status HTTP/1.1\r\nHost: t\r\n\r\n";
static const char request_close[] = "GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
static uint64_t timeout_usec = 2 * USEC_PER_SEC;

/* One check, to its end. */
static ProbeResult check(struct event_base *base, Probe *p, bool http, bool keep_alive)
{
        ProbeSpec spec = { .sa = (struct sockaddr *)&srv.sin,
                           .sa_len = sizeof(srv.sin),
                           .request = !http ? NULL : keep_alive ? request : request_close,
                           .request_len = !http        ? 0
                                          : keep_alive ? strlen(request)
                                                       : strlen(request_close),
                           .keep_alive = keep_alive,
                           .timeout_usec = timeout_usec };
        last.done = false;
        if (probe_start(p, &spec) < 0)
                return (ProbeResult){ .error = -EIO };
        event_base_dispatch(base);
        return last.r;
}

/* Waits (at most 2 s) until the server counted `want` in `counter`, then lets the loop take
 * what it sent (on loopback, there by then): a body's end, or its close of an idle
 * connection. */
static void settle(struct event_base *base, atomic_uint *counter, unsigned want)
{
        probe_test_wait_count(counter, want);
        struct timeval tv = { .tv_usec = 20 * 1000 };
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
}

/* Takes the one connection a full queue held (event_base_once callback). */
static void empty_queue(evutil_socket_t fd, short what, void *userdata)
{
        int c = accept(*(int *)userdata, NULL, NULL);
        if (c >= 0)
                close(c);
}

static bool ok(ProbeResult r)
{
        return r.error == 0 && r.status == 200 && !r.stale;
}

int main(void)
{
        srv.listen_fd = probe_test_listen(&srv.sin);
        if (srv.listen_fd < 0)
                return 1;
        pthread_t server;
        pthread_create(&server, NULL, serve, NULL);
        struct event_base *base = event_base_new();
        static ProbeWheel wheel;
        probe_wheel_init(&wheel, base);
        Probe *p = NULL;
        CHECK(probe_new(base, &wheel, on_done, base, &p) == 0);

        /* Kept alive: three checks, one connection. */
        atomic_store(&srv.mode, KEEP);
        for (int i = 0; i < 3; i++)
                CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 1);
        CHECK(atomic_load(&srv.requests) == 3);

        /* A chunked body in pieces: the result at its head, the rest read after, and the
         * connection kept. */
        atomic_store(&srv.mode, CHUNKED);
        CHECK(ok(check(base, p, true, true)));
        settle(base, &srv.answered, 1);
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 1);

        /* The server says Connection: close: the next check on a new connection. */
        atomic_store(&srv.mode, CLOSE_HEADER);
        CHECK(ok(check(base, p, true, true)));
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 2);

        /* The server closes it after answering, without saying so: an idle plain connection
         * is not watched, so the close is found as the next request goes, `stale` (not a
         * failure), and the check after goes on a new connection. */
        atomic_store(&srv.mode, CLOSE_AFTER);
        unsigned closes = atomic_load(&srv.closes);
        CHECK(ok(check(base, p, true, true)));
        settle(base, &srv.closes, closes + 1);
        atomic_store(&srv.mode, KEEP);
        ProbeResult r = check(base, p, true, true);
        CHECK(r.stale && r.error < 0);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 3);

        /* Closed as the request comes on a kept connection: stale, then fine on a new one. */
        atomic_store(&srv.mode, SILENT_CLOSE);
        r = check(base, p, true, true);
        CHECK(r.stale && r.error < 0);
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 4);
        /* On a new connection the same is the node's failure. */
        atomic_store(&srv.mode, SILENT_CLOSE);
        probe_forget(p);
        r = check(base, p, true, true);
        CHECK(!r.stale && r.error == -ECONNRESET);
        CHECK(atomic_load(&srv.accepts) == 5);

        /* A body too large to read: not kept. */
        atomic_store(&srv.mode, BIG);
        CHECK(ok(check(base, p, true, true)));
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 7);

        /* A head in two parts (the first step finds half of it, epoll the rest), the
         * connection kept. */
        atomic_store(&srv.mode, SPLIT_HEAD);
        CHECK(ok(check(base, p, true, true)));
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 7);

        /* No answer within the timeout: a timeout, and the next check on a new connection. */
        atomic_store(&srv.mode, HANG);
        timeout_usec = 100 * USEC_PER_MSEC;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        r = check(base, p, true, true);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(r.error == -ETIMEDOUT && !r.stale);
        CHECK(took >= 100 * USEC_PER_MSEC);
        timeout_usec = 2 * USEC_PER_SEC;
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p, true, true)));
        CHECK(atomic_load(&srv.accepts) == 8);

        /* Not asked to keep it (the next check is too far off): Connection: close, and a new
         * connection each time but the first, which the kept one serves. */
        for (int i = 0; i < 3; i++)
                CHECK(ok(check(base, p, true, false)));
        CHECK(atomic_load(&srv.accepts) == 10);

        /* tcp: half open, each time (SYN, SYN-ACK, reset), the second from the first's socket,
         * disconnected. The server accepts neither: the next connection it accepts is one of
         * the test's own, made after them (its queue is in order). */
        unsigned before = atomic_load(&srv.requests);
        r = check(base, p, false, false);
        CHECK(r.error == 0);
        r = check(base, p, false, false);
        CHECK(r.error == 0);
        int own = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(own >= 0 && connect(own, (struct sockaddr *)&srv.sin, sizeof(srv.sin)) == 0);
        struct sockaddr_in own_sin;
        socklen_t own_len = sizeof(own_sin);
        CHECK(getsockname(own, (struct sockaddr *)&own_sin, &own_len) == 0);
        probe_test_wait_count(&srv.accepts, 11);
        CHECK(atomic_load(&srv.accepts) == 11);
        CHECK(atomic_load(&srv.port) == ntohs(own_sin.sin_port));
        close(own);
        CHECK(atomic_load(&srv.requests) == before);

        atomic_store(&srv.stop, true);
        pthread_join(server, NULL);
        close(srv.listen_fd);
        /* Nobody listens now: refused. */
        r = check(base, p, false, false);
        CHECK(r.error == -ECONNREFUSED);
        r = check(base, p, true, true);
        CHECK(r.error == -ECONNREFUSED);

        /* A listener whose queue is full drops the SYN: the look at the next step finds the
         * check connecting, and epoll watches it, to its timeout. Once the queue has room, the
         * SYN sent again (after 1 s) is answered, and the check is done when epoll says so. */
        int full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        (void)setsockopt(full, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        CHECK(bind(full, (struct sockaddr *)&srv.sin, sizeof(srv.sin)) == 0);
        CHECK(listen(full, 0) == 0);
        int filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(connect(filler, (struct sockaddr *)&srv.sin, sizeof(srv.sin)) == 0);
        timeout_usec = 300 * USEC_PER_MSEC;
        r = check(base, p, false, false);
        CHECK(r.error == -ETIMEDOUT);
        timeout_usec = 3 * USEC_PER_SEC;
        struct timeval soon = { .tv_usec = 100 * 1000 };
        CHECK(event_base_once(base, -1, EV_TIMEOUT, empty_queue, &full, &soon) == 0);
        t0 = now_usec(CLOCK_MONOTONIC);
        r = check(base, p, false, false);
        took = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(r.error == 0);
        CHECK(took >= 500 * USEC_PER_MSEC); /* the SYN's second sending */
        close(filler);
        close(full);

        probe_free(p);
        probe_wheel_done(&wheel);
        event_base_free(base);
        TEST_MAIN_END();
}
