/* SPDX-License-Identifier: MIT */
/* The TLS client: its session cache, its ca_file errors, and whole handshakes over loopback
 * against a GnuTLS server in a thread (verification, resumption with TLS 1.2 and 1.3, records
 * left inside GnuTLS when a read stops at the stream's limit). */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "tls-stream.h"
#include "tls.h"

static unsigned failures;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        failures++;                                                                \
                }                                                                                  \
        } while (0)

#define GNUTLS_OK(expr)                                                                            \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                if (_r < 0) {                                                                      \
                        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,              \
                                gnutls_strerror(_r));                                              \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

static char tmpdir[] = "/tmp/test-tls-XXXXXX";

static char *tmp_path(const char *name)
{
        char *p;
        if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
                abort();
        return p;
}

static char *write_tmp(const char *name, const void *data, size_t size)
{
        char *p = tmp_path(name);
        FILE *f = fopen(p, "w");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
                abort();
        return p;
}

static TlsClient *client_new(const char *ca_file, int verify, char **ret_error)
{
        ConfigUpstream cu = {
                .name = (char *)"u",
                .scheme = SCHEME_HTTPS,
                .tls = { .ca_file = (char *)ca_file, .verify = verify },
        };
        TlsClient *t = NULL;
        int r = tls_client_new(&cu, &t, ret_error);
        if (r < 0)
                return NULL;
        return t;
}

/* ---- the session cache ---- */

static bool take_is(TlsClient *t, const char *key, const char *want)
{
        void *data;
        size_t size;
        if (tls_client_cache_take(t, key, &data, &size) < 0)
                return want == NULL;
        bool ok = want && size == strlen(want) && memcmp(data, want, size) == 0;
        free(data);
        return ok;
}

static void test_cache(void)
{
        TlsClient *t = client_new(NULL, 1, NULL);
        CHECK(t);
        if (!t)
                return;

        CHECK(take_is(t, "https|a|1.2.3.4:443", NULL));
        CHECK(tls_client_cache_put(t, "https|a|1.2.3.4:443", "one", 3) == 0);
        CHECK(tls_client_cache_put(t, "https|b|1.2.3.4:443", "two", 3) == 0);
        CHECK(tls_client_cache_size(t) == 2);
        /* A newer ticket replaces the older. */
        CHECK(tls_client_cache_put(t, "https|a|1.2.3.4:443", "three", 5) == 0);
        CHECK(tls_client_cache_size(t) == 2);
        CHECK(tls_client_cache_put(t, "https|a|1.2.3.4:443", "x", 0) == -EINVAL);
        /* Taken once: a TLS 1.3 ticket is not offered twice. */
        CHECK(take_is(t, "https|a|1.2.3.4:443", "three"));
        CHECK(take_is(t, "https|a|1.2.3.4:443", NULL));
        CHECK(take_is(t, "https|b|1.2.3.4:443", "two"));
        CHECK(tls_client_cache_size(t) == 0);

        /* Bounded: the oldest go first; a replaced entry counts as new. */
        char key[64], val[64];
        for (unsigned i = 0; i < TLS_CACHE_MAX + 10; i++) {
                snprintf(key, sizeof(key), "https|n%u|10.0.0.1:443", i);
                snprintf(val, sizeof(val), "v%u", i);
                CHECK(tls_client_cache_put(t, key, val, strlen(val)) == 0);
                if (i == 500)
                        CHECK(tls_client_cache_put(t, "https|n0|10.0.0.1:443", "v0b", 3) == 0);
        }
        CHECK(tls_client_cache_size(t) == TLS_CACHE_MAX);
        CHECK(take_is(t, "https|n0|10.0.0.1:443", "v0b"));
        CHECK(take_is(t, "https|n1|10.0.0.1:443", NULL));
        CHECK(take_is(t, "https|n10|10.0.0.1:443", NULL));
        CHECK(take_is(t, "https|n11|10.0.0.1:443", "v11"));
        snprintf(key, sizeof(key), "https|n%u|10.0.0.1:443", TLS_CACHE_MAX + 9);
        snprintf(val, sizeof(val), "v%u", TLS_CACHE_MAX + 9);
        CHECK(take_is(t, key, val));
        CHECK(tls_client_cache_size(t) == TLS_CACHE_MAX - 3);

        /* References: the last one frees (with entries still cached: ASan and LSan watch). */
        CHECK(tls_client_ref(t) == t);
        CHECK(tls_client_free(t) == NULL);
        CHECK(tls_client_cache_size(t) == TLS_CACHE_MAX - 3);
        CHECK(tls_client_free(t) == NULL);
        CHECK(tls_client_free(NULL) == NULL);
}

/* ---- test certificates, made with GnuTLS itself ---- */

typedef struct Pki {
        gnutls_x509_privkey_t ca_key, key;
        gnutls_x509_crt_t ca, crt;
        char *ca_file;
} Pki;

static gnutls_x509_privkey_t new_key(void)
{
        gnutls_x509_privkey_t k;
        GNUTLS_OK(gnutls_x509_privkey_init(&k));
        GNUTLS_OK(gnutls_x509_privkey_generate(
                k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
        return k;
}

static gnutls_x509_crt_t new_crt(gnutls_x509_privkey_t key, const char *cn, unsigned serial)
{
        gnutls_x509_crt_t c;
        time_t now = time(NULL);
        unsigned char sn[4] = { 0, 0, (unsigned char)(serial >> 8), (unsigned char)serial };

        GNUTLS_OK(gnutls_x509_crt_init(&c));
        GNUTLS_OK(gnutls_x509_crt_set_version(c, 3));
        GNUTLS_OK(gnutls_x509_crt_set_serial(c, sn, sizeof(sn)));
        GNUTLS_OK(gnutls_x509_crt_set_activation_time(c, now - 3600));
        GNUTLS_OK(gnutls_x509_crt_set_expiration_time(c, now + 86400));
        GNUTLS_OK(gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                (unsigned)strlen(cn)));
        GNUTLS_OK(gnutls_x509_crt_set_key(c, key));
        return c;
}

static void pki_make(Pki *p)
{
        p->ca_key = new_key();
        p->ca = new_crt(p->ca_key, "test-tls CA", 1);
        GNUTLS_OK(gnutls_x509_crt_set_basic_constraints(p->ca, 1, -1));
        GNUTLS_OK(gnutls_x509_crt_set_key_usage(p->ca, GNUTLS_KEY_KEY_CERT_SIGN));
        GNUTLS_OK(gnutls_x509_crt_sign2(p->ca, p->ca, p->ca_key, GNUTLS_DIG_SHA256, 0));

        p->key = new_key();
        p->crt = new_crt(p->key, "test.example", 2);
        GNUTLS_OK(gnutls_x509_crt_set_basic_constraints(p->crt, 0, -1));
        GNUTLS_OK(gnutls_x509_crt_set_key_usage(p->crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
        GNUTLS_OK(gnutls_x509_crt_set_key_purpose_oid(p->crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
        GNUTLS_OK(gnutls_x509_crt_set_subject_alt_name(p->crt, GNUTLS_SAN_DNSNAME, "test.example",
                                                       12, GNUTLS_FSAN_APPEND));
        GNUTLS_OK(gnutls_x509_crt_sign2(p->crt, p->ca, p->ca_key, GNUTLS_DIG_SHA256, 0));

        gnutls_datum_t pem;
        GNUTLS_OK(gnutls_x509_crt_export2(p->ca, GNUTLS_X509_FMT_PEM, &pem));
        p->ca_file = write_tmp("ca.pem", pem.data, pem.size);
        gnutls_free(pem.data);
}

static void pki_done(Pki *p)
{
        gnutls_x509_crt_deinit(p->crt);
        gnutls_x509_crt_deinit(p->ca);
        gnutls_x509_privkey_deinit(p->key);
        gnutls_x509_privkey_deinit(p->ca_key);
        unlink(p->ca_file);
        free(p->ca_file);
}

/* ---- ca_file errors ---- */

static void test_ca_file(const Pki *pki)
{
        char *error = NULL;

        CHECK(!client_new("/nonexistent/ca.pem", 1, &error));
        CHECK(error && streq(error, "upstream 'u': tls.ca_file /nonexistent/ca.pem: No such file "
                                    "or directory"));
        free(TAKE_PTR(error));

        CHECK(!client_new(tmpdir, 1, &error));
        CHECK(error && strstr(error, "tls.ca_file /tmp/test-tls-") &&
              strstr(error, ": Is a directory"));
        free(TAKE_PTR(error));

        _cleanup_free_ char *garbage = write_tmp("garbage.pem", "-----BEGIN CERTIFICATE-----\n"
                                                 "bm90IGEgY2VydGlmaWNhdGU=\n"
                                                 "-----END CERTIFICATE-----\n", 78);
        CHECK(!client_new(garbage, 1, &error));
        _cleanup_free_ char *prefix = NULL;
        CHECK(asprintf(&prefix, "upstream 'u': tls.ca_file %s: ", garbage) > 0);
        CHECK(error && strncmp(error, prefix, strlen(prefix)) == 0 &&
              strlen(error) > strlen(prefix));
        free(TAKE_PTR(error));

        _cleanup_free_ char *empty = write_tmp("empty.pem", "", 0);
        CHECK(!client_new(empty, 1, &error));
        CHECK(error && strstr(error, "empty.pem: no PEM certificate found"));
        free(TAKE_PTR(error));

        TlsClient *t = client_new(pki->ca_file, 1, &error);
        CHECK(t && !error);
        tls_client_free(t);
        unlink(garbage);
        unlink(empty);
}

/* ---- handshakes against a GnuTLS server ---- */

#define PAYLOAD (300 * 1024 + 17)

typedef struct Server {
        int listen_fd;
        struct sockaddr_in addr;
        gnutls_certificate_credentials_t cred;
        gnutls_datum_t ticket_key;
        const char *priority;
        pthread_t thread;
        /* results of the last connection */
        int handshake;
        bool resumed;
        size_t sent;
} Server;

static void *server_run(void *arg)
{
        Server *srv = arg;
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0)
                return NULL;

        gnutls_session_t s;
        GNUTLS_OK(gnutls_init(&s, GNUTLS_SERVER));
        GNUTLS_OK(gnutls_priority_set_direct(s, srv->priority, NULL));
        GNUTLS_OK(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, srv->cred));
        GNUTLS_OK(gnutls_session_ticket_enable_server(s, &srv->ticket_key));
        gnutls_transport_set_int(s, fd);

        int r;
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        srv->handshake = r;
        if (r >= 0) {
                srv->resumed = gnutls_session_is_resumed(s);
                char buf[64];
                ssize_t n;
                do
                        n = gnutls_record_recv(s, buf, sizeof(buf));
                while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
                static char block[10000];
                memset(block, 'x', sizeof(block));
                while (n > 0 && srv->sent < PAYLOAD) {
                        size_t k = PAYLOAD - srv->sent < sizeof(block) ? PAYLOAD - srv->sent
                                                                       : sizeof(block);
                        ssize_t w = gnutls_record_send(s, block, k);
                        if (w < 0)
                                break;
                        srv->sent += (size_t)w;
                }
                (void)gnutls_bye(s, GNUTLS_SHUT_RDWR);
        }
        gnutls_deinit(s);
        close(fd);
        return NULL;
}

static void server_init(Server *srv, const Pki *pki, const char *priority)
{
        *srv = (Server){ .priority = priority };
        GNUTLS_OK(gnutls_certificate_allocate_credentials(&srv->cred));
        gnutls_x509_crt_t chain[1] = { pki->crt };
        GNUTLS_OK(gnutls_certificate_set_x509_key(srv->cred, chain, 1, pki->key));
        GNUTLS_OK(gnutls_session_ticket_key_generate(&srv->ticket_key));

        srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        srv->addr = (struct sockaddr_in){ .sin_family = AF_INET,
                                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(srv->addr);
        if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&srv->addr, len) < 0 ||
            listen(srv->listen_fd, 4) < 0 ||
            getsockname(srv->listen_fd, (struct sockaddr *)&srv->addr, &len) < 0)
                abort();
}

static void server_done(Server *srv)
{
        close(srv->listen_fd);
        gnutls_free(srv->ticket_key.data);
        gnutls_certificate_free_credentials(srv->cred);
}

typedef struct Client {
        struct event_base *base;
        int connect_error;
        bool connected;
        size_t received;
        bool eof;
        int error;
} Client;

static void client_on_connect(Stream *s, int error, void *userdata)
{
        Client *c = userdata;
        c->connect_error = error;
        if (error < 0) {
                event_base_loopbreak(c->base);
                return;
        }
        c->connected = true;
        evbuffer_add(s->out, "GET\n", 4);
        CHECK(stream_flush(s) == 0);
        stream_read_start(s);
}

static void client_on_read(Stream *s, void *userdata)
{
        Client *c = userdata;
        size_t n = evbuffer_get_length(s->in);
        /* No more than the limit in one read: the rest waited inside GnuTLS. */
        CHECK(n <= s->read_max);
        c->received += n;
        evbuffer_drain(s->in, n);
        if (s->eof) {
                c->eof = true;
                event_base_loopbreak(c->base);
                return;
        }
        stream_read_start(s); /* drained: reading may go on */
}

static void client_on_drain(Stream *s, void *userdata)
{
}

static void client_on_error(Stream *s, int error, void *userdata)
{
        Client *c = userdata;
        c->error = error;
        event_base_loopbreak(c->base);
}

static const StreamHandler client_handler = {
        .on_read = client_on_read,
        .on_drain = client_on_drain,
        .on_connect = client_on_connect,
        .on_error = client_on_error,
};

/* One connection: returns what the client saw; the detail of a failure is copied out. */
static Client run_one(TlsClient *t, Server *srv, const char *server_name, bool *ret_resumed,
                      char *detail, size_t detail_size)
{
        Client c = { .base = event_base_new() };
        Stream s;
        char key[128];

        srv->sent = 0;
        srv->resumed = false;
        CHECK(pthread_create(&srv->thread, NULL, server_run, srv) == 0);

        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && stream_init(&s, c.base, fd, &client_handler, &c) == 0);
        /* A small limit: reads stop inside records, which only the kick brings out. */
        s.read_max = 1000;
        snprintf(key, sizeof(key), "https|%s|127.0.0.1:%u", server_name,
                 ntohs(srv->addr.sin_port));
        CHECK(tls_client_attach(t, &s, server_name, key) == 0);
        CHECK(stream_connect(&s, (struct sockaddr *)&srv->addr, sizeof(srv->addr)) == 0);

        struct timeval limit = { .tv_sec = 20 };
        event_base_loopexit(c.base, &limit);
        event_base_dispatch(c.base);

        *ret_resumed = tls_stream_resumed(&s);
        const char *d = stream_error_detail(&s);
        snprintf(detail, detail_size, "%s", d ? d : "");
        stream_done(&s);
        CHECK(pthread_join(srv->thread, NULL) == 0);
        event_base_free(c.base);
        return c;
}

static void test_handshakes(const Pki *pki, const char *priority, const char *what)
{
        Server srv;
        char detail[256];
        bool resumed;

        fprintf(stderr, "handshakes, %s\n", what);
        server_init(&srv, pki, priority);
        TlsClient *t = client_new(pki->ca_file, 1, NULL);
        CHECK(t);
        if (!t) {
                server_done(&srv);
                return;
        }

        /* Full handshake, then resumed ones: each connection leaves a ticket for the next. */
        for (unsigned i = 0; i < 3; i++) {
                Client c = run_one(t, &srv, "test.example", &resumed, detail, sizeof(detail));
                CHECK(c.connect_error == 0);
                CHECK(c.error == 0);
                CHECK(c.received == PAYLOAD);
                CHECK(c.eof);
                CHECK(srv.handshake == 0);
                CHECK(resumed == (i > 0));
                CHECK(srv.resumed == (i > 0));
                CHECK(!detail[0]);
        }

        /* The wrong name: refused, in words. */
        Client c = run_one(t, &srv, "other.example", &resumed, detail, sizeof(detail));
        CHECK(c.connect_error == -EKEYREJECTED);
        CHECK(!c.connected && c.received == 0);
        CHECK(strstr(detail, "certificate verification failed for 'other.example': "));
        CHECK(strstr(detail, "The name in the certificate does not match the expected"));
        CHECK(srv.handshake < 0);
        tls_client_free(t);

        /* An unknown issuer: only the system store, which does not know the test CA. */
        t = client_new(NULL, 1, NULL);
        c = run_one(t, &srv, "test.example", &resumed, detail, sizeof(detail));
        CHECK(c.connect_error == -EKEYREJECTED);
        CHECK(strstr(detail, "The certificate issuer is unknown"));
        tls_client_free(t);

        /* verify: false takes any certificate. */
        t = client_new(NULL, 0, NULL);
        c = run_one(t, &srv, "other.example", &resumed, detail, sizeof(detail));
        CHECK(c.connect_error == 0 && c.received == PAYLOAD);
        tls_client_free(t);

        server_done(&srv);
}

int main(void)
{
        if (!mkdtemp(tmpdir))
                abort();
        Pki pki = {};
        pki_make(&pki);

        test_cache();
        test_ca_file(&pki);
        test_handshakes(&pki, "NORMAL", "TLS 1.3");
        test_handshakes(&pki, "NORMAL:-VERS-TLS1.3", "TLS 1.2");

        pki_done(&pki);
        rmdir(tmpdir);
        if (failures) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
