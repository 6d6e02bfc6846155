/* SPDX-License-Identifier: MIT */
/* A TLS check's connection (health-probe-conn.c, health-probe-tls.c, health-probe-step.c)
 * against a GnuTLS server of the test's own in a thread (TLS 1.3 with session tickets, which
 * come after the handshake, before the first answer): the answer is looked for at the wheel's
 * next step, and one not there by then is waited for (epoll) and taken; a head in two records,
 * a chunked body in three, and a body larger than a read, each read whole with the connection
 * kept; a kept connection the server closed while idle (not watched: the close is found by the
 * next check, `stale`, which the caller retries at once, resumed on a new connection) or closes
 * as the request comes; no answer in time is a timeout. */
#include <gnutls/x509.h>
#include <pthread.h>

#include "base/util.h"
#include "probe-test-server.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"
#include "tap-gnutls.h"
#include "tap.h"
#include "tls/tls.h"

enum {
        KEEP,         /* 200 with a body of 5, kept */
        LATE,         /* 200, kept, sent 80 ms after the request: after the next step */
        SPLIT_HEAD,   /* a head in two records, 30 ms apart, kept */
        CHUNKED,      /* 200, chunked, in three records 20 ms apart, kept */
        LARGE,        /* 200 with a body of 60,000 bytes (records of 16 KiB), kept */
        CLOSE_AFTER,  /* 200 (keep-alive), then close_notify and closed */
        SILENT_CLOSE, /* the request read, closed without an answer */
        HANG,         /* the request read, no answer for 300 ms, then closed */
};

#define LATE_MSEC 80
#define LARGE_BODY 60000

static struct {
        int listen_fd;
        struct sockaddr_in sin;
        gnutls_certificate_credentials_t cred;
        gnutls_datum_t ticket_key;
        atomic_int mode;
        atomic_uint accepts, requests, closes, resumed;
        atomic_bool stop;
} srv;

static void say(gnutls_session_t s, const char *text)
{
        (void)gnutls_record_send(s, text, strlen(text));
}

/* Answers one request: false when the connection is over. */
static bool serve_one(gnutls_session_t s)
{
        char buf[2048];
        size_t n = 0;
        while (!memmem(buf, n, "\r\n\r\n", 4)) {
                if (n == sizeof(buf))
                        return false;
                ssize_t k = gnutls_record_recv(s, buf + n, sizeof(buf) - n);
                if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) {
                        if (atomic_load(&srv.stop))
                                return false;
                        continue; /* SO_RCVTIMEO: the test may be over */
                }
                if (k <= 0)
                        return false;
                n += (size_t)k;
        }
        atomic_fetch_add(&srv.requests, 1);
        switch (atomic_load(&srv.mode)) {
        case KEEP:
                say(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                return true;
        case LATE:
                usleep(LATE_MSEC * 1000);
                say(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                return true;
        case SPLIT_HEAD:
                say(s, "HTTP/1.1 200 OK\r\nContent-");
                usleep(30 * 1000);
                say(s, "Length: 5\r\n\r\nhello");
                return true;
        case CHUNKED:
                say(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
                usleep(20 * 1000);
                say(s, "lo\r\n0\r\n");
                usleep(20 * 1000);
                say(s, "\r\n");
                return true;
        case LARGE: {
                char head[128];
                snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                         LARGE_BODY);
                say(s, head);
                static char body[LARGE_BODY];
                memset(body, 'x', sizeof(body));
                for (size_t at = 0; at < sizeof(body);) {
                        ssize_t k = gnutls_record_send(s, body + at, sizeof(body) - at);
                        if (k < 0)
                                return false;
                        at += (size_t)k;
                }
                return true;
        }
        case CLOSE_AFTER:
                say(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                (void)gnutls_bye(s, GNUTLS_SHUT_WR);
                return false;
        case HANG:
                usleep(300 * 1000);
                return false;
        default: /* SILENT_CLOSE */
                return false;
        }
}

static void *serve(void *arg)
{
        while (!atomic_load(&srv.stop)) {
                int fd = probe_test_accept(srv.listen_fd);
                if (fd < 0)
                        continue;
                atomic_fetch_add(&srv.accepts, 1);
                struct timeval tv = { .tv_usec = 100 * 1000 };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                gnutls_session_t s;
                GNUTLS_OK(gnutls_init(&s, GNUTLS_SERVER));
                GNUTLS_OK(gnutls_set_default_priority(s));
                GNUTLS_OK(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, srv.cred));
                GNUTLS_OK(gnutls_session_ticket_enable_server(s, &srv.ticket_key));
                gnutls_transport_set_int(s, fd);
                int r;
                do
                        r = gnutls_handshake(s);
                while (r < 0 && !gnutls_error_is_fatal(r) && !atomic_load(&srv.stop));
                if (r >= 0) {
                        if (gnutls_session_is_resumed(s))
                                atomic_fetch_add(&srv.resumed, 1);
                        while (serve_one(s))
                                ;
                }
                gnutls_deinit(s);
                close(fd);
                atomic_fetch_add(&srv.closes, 1);
        }
        return NULL;
}

/* A self-signed certificate for the server: the probe does not verify it. */
static void server_credentials(void)
{
        gnutls_x509_privkey_t key;
        gnutls_x509_crt_t crt;
        time_t now = time(NULL);
        GNUTLS_OK(gnutls_x509_privkey_init(&key));
        GNUTLS_OK(gnutls_x509_privkey_generate(
                key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
        GNUTLS_OK(gnutls_x509_crt_init(&crt));
        GNUTLS_OK(gnutls_x509_crt_set_version(crt, 3));
        GNUTLS_OK(gnutls_x509_crt_set_serial(crt, "\x01", 1));
        GNUTLS_OK(gnutls_x509_crt_set_activation_time(crt, now - 3600));
        GNUTLS_OK(gnutls_x509_crt_set_expiration_time(crt, now + 86400));
        GNUTLS_OK(gnutls_x509_crt_set_key(crt, key));
        GNUTLS_OK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
        GNUTLS_OK(gnutls_certificate_allocate_credentials(&srv.cred));
        GNUTLS_OK(gnutls_certificate_set_x509_key(srv.cred, &crt, 1, key));
        GNUTLS_OK(gnutls_session_ticket_key_generate(&srv.ticket_key));
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
}

static struct {
        ProbeResult r;
        uint64_t took_usec;
} last;

static void on_done(Probe *p, const ProbeResult *r, void *userdata)
{
        last.r = *r;
        last.r.detail = NULL;
        event_base_loopbreak(userdata);
}

static const char request[] = "GET /status HTTP/1.1\r\nHost: t\r\n\r\n";
static TlsClient *client;
static uint64_t timeout_usec = 2 * USEC_PER_SEC;

/* One check, to its end. */
static ProbeResult check(struct event_base *base, Probe *p)
{
        ProbeSpec spec = { .sa = (struct sockaddr *)&srv.sin,
                           .sa_len = sizeof(srv.sin),
                           .tls = client,
                           .server_name = "test.example",
                           .session_key = "probe|test",
                           .request = request,
                           .request_len = strlen(request),
                           .keep_alive = true,
                           .timeout_usec = timeout_usec };
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        if (probe_start(p, &spec) < 0)
                return (ProbeResult){ .error = -EIO };
        event_base_dispatch(base);
        last.took_usec = now_usec(CLOCK_MONOTONIC) - t0;
        return last.r;
}

static bool ok(ProbeResult r)
{
        return r.error == 0 && r.status == 200 && !r.stale;
}

int main(void)
{
        server_credentials();
        srv.listen_fd = probe_test_listen(&srv.sin);
        if (srv.listen_fd < 0)
                return 1;
        TlsClientPolicy policy = { .upstream = "u", .verify = false };
        char *error = NULL;
        if (tls_client_new(&policy, &client, &error) < 0) {
                fprintf(stderr, "%s\n", error);
                return 1;
        }
        pthread_t server;
        pthread_create(&server, NULL, serve, NULL);
        struct event_base *base = event_base_new();
        static ProbeWheel wheel;
        probe_wheel_init(&wheel, base);
        Probe *p = NULL;
        CHECK(probe_new(base, &wheel, on_done, base, &p) == 0);

        /* Kept alive: three checks, one connection (the first reads the session tickets that
         * came after the handshake, with its answer). */
        atomic_store(&srv.mode, KEEP);
        for (int i = 0; i < 3; i++)
                CHECK(ok(check(base, p)));
        CHECK(atomic_load(&srv.accepts) == 1);
        CHECK(atomic_load(&srv.requests) == 3);

        /* The answer comes after the step that looks for it: waited for, then taken, within
         * the deadline, and the connection kept. */
        atomic_store(&srv.mode, LATE);
        CHECK(ok(check(base, p)));
        CHECK(last.took_usec >= LATE_MSEC * USEC_PER_MSEC);
        CHECK(last.took_usec < timeout_usec);
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p)));
        CHECK(atomic_load(&srv.accepts) == 1);

        /* A head in two records; a chunked body in three, read after the result; a body of
         * several records larger than a read: each read whole, the connection kept. */
        atomic_store(&srv.mode, SPLIT_HEAD);
        CHECK(ok(check(base, p)));
        atomic_store(&srv.mode, CHUNKED);
        CHECK(ok(check(base, p)));
        /* The rest of the body, then a check on the same connection. */
        struct timeval tv = { .tv_usec = 100 * 1000 };
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        atomic_store(&srv.mode, LARGE);
        CHECK(ok(check(base, p)));
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p)));
        CHECK(atomic_load(&srv.accepts) == 1);

        /* The server closes the kept connection after answering (close_notify, FIN), while it
         * is idle: nothing watches it, so the next check finds the close at once (`stale`, not
         * a failure, well before the timeout), and the retry the caller makes at once goes on
         * a new connection, resumed, and succeeds. */
        atomic_store(&srv.mode, CLOSE_AFTER);
        unsigned closes = atomic_load(&srv.closes);
        CHECK(ok(check(base, p)));
        probe_test_wait_count(&srv.closes, closes + 1);
        atomic_store(&srv.mode, KEEP);
        ProbeResult r = check(base, p);
        CHECK(r.stale && r.error < 0);
        CHECK(last.took_usec < timeout_usec / 4);
        r = check(base, p);
        CHECK(ok(r) && r.resumed);
        CHECK(atomic_load(&srv.accepts) == 2);
        CHECK(atomic_load(&srv.resumed) == 1);

        /* Closed as the request comes on a kept connection: stale, then fine on a new one. */
        atomic_store(&srv.mode, SILENT_CLOSE);
        r = check(base, p);
        CHECK(r.stale && r.error < 0);
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p)));
        CHECK(atomic_load(&srv.accepts) == 3);
        /* On a new connection the same is the node's failure. */
        atomic_store(&srv.mode, SILENT_CLOSE);
        probe_forget(p);
        r = check(base, p);
        CHECK(!r.stale && r.error == -ECONNRESET);
        CHECK(atomic_load(&srv.accepts) == 4);

        /* No answer within the timeout, on a kept connection: a timeout, and the next check on
         * a new connection. */
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p)));
        atomic_store(&srv.mode, HANG);
        timeout_usec = 100 * USEC_PER_MSEC;
        r = check(base, p);
        CHECK(r.error == -ETIMEDOUT && !r.stale);
        CHECK(last.took_usec >= 100 * USEC_PER_MSEC);
        timeout_usec = 2 * USEC_PER_SEC;
        atomic_store(&srv.mode, KEEP);
        CHECK(ok(check(base, p)));
        CHECK(atomic_load(&srv.accepts) == 6);

        atomic_store(&srv.stop, true);
        pthread_join(server, NULL);
        close(srv.listen_fd);
        /* Nobody listens now: refused, said through the handshake's timer. */
        probe_forget(p);
        r = check(base, p);
        CHECK(r.error == -ECONNREFUSED);

        probe_free(p);
        probe_wheel_done(&wheel);
        event_base_free(base);
        tls_client_free(client);
        gnutls_free(srv.ticket_key.data);
        gnutls_certificate_free_credentials(srv.cred);
        TEST_MAIN_END();
}
