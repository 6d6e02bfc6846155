/* SPDX-License-Identifier: MIT */
/* The TLS client: its session cache, its ca_file errors, and whole handshakes over loopback
 * against a GnuTLS server in a thread (verification, resumption with TLS 1.2 and 1.3, records
 * left inside GnuTLS when a read stops at the stream's limit). The TLS server (https listeners):
 * certificate and key errors, the ticket keys and the handshake messages they are chosen from,
 * and handshakes from a GnuTLS client in a thread (certificate by SNI, ALPN, resumption across
 * a key rotation and a reload, TLS 1.1 refused). */
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

#include "net/stream.h"
#include "tap-gnutls.h"
#include "tls/tls-server.h"
#include "tls/tls-stream.h"
#include "tls/tls.h"

static unsigned failures;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        failures++;                                                                \
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
        TlsClientPolicy policy = { .upstream = "u", .ca_file = ca_file, .verify = verify != 0 };
        TlsClient *t = NULL;
        int r = tls_client_new(&policy, &t, ret_error);
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
        /* An IP literal as the name (etcd's endpoints are numeric): matched in an IP SAN. */
        static const unsigned char loopback[4] = { 127, 0, 0, 1 };
        GNUTLS_OK(gnutls_x509_crt_set_subject_alt_name(p->crt, GNUTLS_SAN_IPADDRESS, loopback,
                                                       sizeof(loopback), GNUTLS_FSAN_APPEND));
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

/* ---- the policy id ---- */

/* A self-signed CA of its own, as PEM (gnutls_free() its data). */
static gnutls_datum_t other_ca_pem(const char *cn, unsigned serial)
{
        gnutls_x509_privkey_t key = new_key();
        gnutls_x509_crt_t crt = new_crt(key, cn, serial);
        gnutls_datum_t pem;
        GNUTLS_OK(gnutls_x509_crt_set_basic_constraints(crt, 1, -1));
        GNUTLS_OK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
        GNUTLS_OK(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem));
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
        return pem;
}

/* The id of a client built from ca_file (or none) and verify; "" when it does not build. */
static void policy_id(const char *ca_file, int verify, char ret[TLS_POLICY_ID_LEN + 1])
{
        TlsClient *t = client_new(ca_file, verify, NULL);
        snprintf(ret, TLS_POLICY_ID_LEN + 1, "%s", t ? tls_client_policy_id(t) : "");
        tls_client_free(t);
}

static void test_policy_id(const Pki *pki)
{
        char none[TLS_POLICY_ID_LEN + 1], none2[TLS_POLICY_ID_LEN + 1];
        char unverified[TLS_POLICY_ID_LEN + 1], ca[TLS_POLICY_ID_LEN + 1];
        char ca2[TLS_POLICY_ID_LEN + 1], copy[TLS_POLICY_ID_LEN + 1];
        char other[TLS_POLICY_ID_LEN + 1], ca_unverified[TLS_POLICY_ID_LEN + 1];

        /* Built twice from the same policy (a reload that changed nothing): the same id, so
         * pooled connections are reused across it. */
        policy_id(NULL, 1, none);
        policy_id(NULL, 1, none2);
        CHECK(strlen(none) == TLS_POLICY_ID_LEN && strspn(none, "0123456789abcdef") ==
                                                           TLS_POLICY_ID_LEN);
        CHECK(streq(none, none2));
        policy_id(pki->ca_file, 1, ca);
        policy_id(pki->ca_file, 1, ca2);
        CHECK(streq(ca, ca2));

        /* Anything that changes what a handshake accepts changes the id. */
        policy_id(NULL, 0, unverified);
        policy_id(pki->ca_file, 0, ca_unverified);
        CHECK(!streq(none, unverified));
        CHECK(!streq(none, ca));
        CHECK(!streq(ca, ca_unverified));
        CHECK(!streq(unverified, ca_unverified));

        /* The same anchors under another path, and another anchor under the same path. */
        char *pem = NULL;
        size_t size = 0;
        CHECK(tls_read_file(pki->ca_file, 1 << 20, &pem, &size) == 0);
        _cleanup_free_ char *copy_file = write_tmp("ca-copy.pem", pem, size);
        policy_id(copy_file, 1, copy);
        CHECK(!streq(copy, ca));

        gnutls_datum_t other_pem = other_ca_pem("another CA", 3);
        free(write_tmp("ca-copy.pem", other_pem.data, other_pem.size));
        policy_id(copy_file, 1, other);
        CHECK(!streq(other, copy) && !streq(other, ca));
        /* And back: the id is the content's, not the moment's. */
        free(write_tmp("ca-copy.pem", pem, size));
        policy_id(copy_file, 1, other);
        CHECK(streq(other, copy));

        gnutls_free(other_pem.data);
        free(pem);
        unlink(copy_file);
}

/* ---- trust shared, clients reused ---- */

static TlsClient *client_update(const char *ca_file, int verify, TlsClient *old, bool recheck)
{
        TlsClientPolicy policy = { .upstream = "u", .ca_file = ca_file, .verify = verify != 0 };
        TlsClient *t = NULL;
        return tls_client_update(&policy, old, recheck, &t, NULL) < 0 ? NULL : t;
}

static void test_trust_shared(const Pki *pki)
{
        /* The system store (and a ca_file) are loaded once and shared by the clients that
         * trust the same: each has its own session cache, not its own credentials. */
        TlsClient *a = client_new(NULL, 1, NULL), *b = client_new(NULL, 0, NULL);
        CHECK(a && b && a != b && a->credentials == b->credentials);
        TlsClient *c = client_new(pki->ca_file, 1, NULL), *d = client_new(pki->ca_file, 1, NULL);
        CHECK(c && d && c != d && c->credentials == d->credentials);
        CHECK(c->credentials != a->credentials);
        CHECK(streq(tls_client_policy_id(c), tls_client_policy_id(d)));

        /* The same policy: the client itself serves on, its sessions with it; a D-Bus change
         * (no recheck) does not even read the file. */
        CHECK(client_update(pki->ca_file, 1, c, false) == c);
        CHECK(client_update(pki->ca_file, 1, c, true) == c);
        tls_client_free(c); /* the two references taken above */
        tls_client_free(c);
        /* Another verify or another file: a new client. */
        TlsClient *e = client_update(pki->ca_file, 0, c, false);
        CHECK(e && e != c && e->credentials == c->credentials);
        tls_client_free(e);
        e = client_update(NULL, 1, c, false);
        CHECK(e && e != c && e->credentials == a->credentials);
        tls_client_free(e);

        /* The file rewritten: a reload (recheck) sees it, a D-Bus change does not look. */
        char *pem = NULL;
        size_t size = 0;
        CHECK(tls_read_file(pki->ca_file, 1 << 20, &pem, &size) == 0);
        _cleanup_free_ char *file = write_tmp("ca-shared.pem", pem, size);
        TlsClient *f = client_new(file, 1, NULL);
        CHECK(f && f->credentials != c->credentials); /* another path */
        gnutls_datum_t other = other_ca_pem("yet another CA", 4);
        free(write_tmp("ca-shared.pem", other.data, other.size));
        TlsClient *g = client_update(file, 1, f, false);
        CHECK(g == f);
        tls_client_free(g);
        g = client_update(file, 1, f, true);
        CHECK(g && g != f && g->credentials != f->credentials);
        CHECK(g && !streq(tls_client_policy_id(g), tls_client_policy_id(f)));
        /* Back to the first content while a client of it lives: its trust is found again. */
        free(write_tmp("ca-shared.pem", pem, size));
        TlsClient *h = client_update(file, 1, g, true);
        CHECK(h && h != g && h->credentials == f->credentials);
        CHECK(h && streq(tls_client_policy_id(h), tls_client_policy_id(f)));

        /* Nothing changed in the system store since these read it. */
        CHECK(tls_trust_check_system() == 0);

        TlsClient *all[] = { a, b, c, d, f, g, h };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                tls_client_free(all[i]);
        gnutls_free(other.data);
        free(pem);
        unlink(file);
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
        /* > 0: answer with this many TLS 1.3 tickets and a short response in one write, then
         * wait for the client to close (no end of input to wake its loop) */
        unsigned burst_tickets;
        /* results of the last connection */
        int handshake;
        bool resumed;
        size_t sent;
} Server;

/* The burst server's output, gathered for one send(). */
typedef struct Gather {
        int fd;
        bool on;
        char buf[64 * 1024];
        size_t len;
} Gather;

static ssize_t gather_push(gnutls_transport_ptr_t ptr, const void *data, size_t size)
{
        Gather *g = ptr;
        if (!g->on)
                return send(g->fd, data, size, MSG_NOSIGNAL);
        if (size > sizeof(g->buf) - g->len)
                abort();
        memcpy(g->buf + g->len, data, size);
        g->len += size;
        return (ssize_t)size;
}

#define BURST_RESPONSE "a response behind the tickets"

static void serve_burst(Server *srv, gnutls_session_t s, int fd)
{
        Gather g = { .fd = fd };
        gnutls_transport_set_ptr(s, &g);
        gnutls_transport_set_push_function(s, gather_push);
        g.on = true;
        for (unsigned i = 0; i < srv->burst_tickets; i++)
                GNUTLS_OK(gnutls_session_ticket_send(s, 1, 0));
        CHECK(gnutls_record_send(s, BURST_RESPONSE, strlen(BURST_RESPONSE)) > 0);
        g.on = false;
        CHECK(send(fd, g.buf, g.len, MSG_NOSIGNAL) == (ssize_t)g.len);
        srv->sent = strlen(BURST_RESPONSE);
        char c;
        while (recv(fd, &c, 1, 0) > 0) /* until the client closes */
                ;
}

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
                if (srv->burst_tickets > 0) {
                        if (n > 0)
                                serve_burst(srv, s, fd);
                        gnutls_deinit(s);
                        close(fd);
                        return NULL;
                }
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
        size_t want; /* > 0: done once this much arrived */
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
        if (c->want > 0 && c->received >= c->want) {
                event_base_loopbreak(c->base);
                return;
        }
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
        Client c = { .base = event_base_new(),
                     .want = srv->burst_tickets > 0 ? strlen(BURST_RESPONSE) : 0 };
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

        struct timeval limit = { .tv_sec = srv->burst_tickets > 0 ? 5 : 20 };
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

        /* An IP address as the name: the certificate's IP SAN says 127.0.0.1 (no SNI is sent
         * for it); another address is refused, and so is the address as a DNS name would be. */
        c = run_one(t, &srv, "127.0.0.1", &resumed, detail, sizeof(detail));
        CHECK(c.connect_error == 0 && c.received == PAYLOAD);
        c = run_one(t, &srv, "127.0.0.9", &resumed, detail, sizeof(detail));
        CHECK(c.connect_error == -EKEYREJECTED);
        CHECK(strstr(detail, "certificate verification failed for '127.0.0.9'"));
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

/* GnuTLS stops reading at each TLS 1.3 ticket. With the tickets and the response taken off the
 * socket in one read ahead, and nothing more coming, only the stream itself can bring the
 * response out: epoll will not signal it. */
static void test_ticket_burst(const Pki *pki)
{
        Server srv;
        char detail[256];
        bool resumed;

        fprintf(stderr, "tickets and a response in one write\n");
        server_init(&srv, pki, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
        TlsClient *t = client_new(pki->ca_file, 1, NULL);
        CHECK(t);
        for (unsigned n = 1; t && n <= 40; n = n * 3 + 1) { /* 1, 4, 13, 40 */
                srv.burst_tickets = n;
                Client c = run_one(t, &srv, "test.example", &resumed, detail, sizeof(detail));
                CHECK(c.connect_error == 0 && c.error == 0);
                if (c.received != strlen(BURST_RESPONSE))
                        fprintf(stderr, "  %u tickets: %zu bytes of the response arrived\n", n,
                                c.received);
                CHECK(c.received == strlen(BURST_RESPONSE));
        }
        tls_client_free(t);
        server_done(&srv);
}

/* ---- the server: certificates ---- */

static gnutls_x509_crt_t leaf_crt(const Pki *pki, gnutls_x509_privkey_t key, const char *name,
                                  unsigned serial)
{
        gnutls_x509_crt_t c = new_crt(key, name, serial);
        GNUTLS_OK(gnutls_x509_crt_set_basic_constraints(c, 0, -1));
        GNUTLS_OK(gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE));
        GNUTLS_OK(gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0));
        GNUTLS_OK(gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, name,
                                                       (unsigned)strlen(name),
                                                       GNUTLS_FSAN_APPEND));
        GNUTLS_OK(gnutls_x509_crt_sign2(c, pki->ca, pki->ca_key, GNUTLS_DIG_SHA256, 0));
        return c;
}

/* Writes a key pair for `name` as name.pem and name.key. */
static void write_pair(const Pki *pki, const char *name, unsigned serial, char **ret_cert,
                       char **ret_key)
{
        gnutls_x509_privkey_t key = new_key();
        gnutls_x509_crt_t crt = leaf_crt(pki, key, name, serial);
        gnutls_datum_t pem;
        char file[128];

        GNUTLS_OK(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem));
        snprintf(file, sizeof(file), "%s.pem", name);
        *ret_cert = write_tmp(file, pem.data, pem.size);
        gnutls_free(pem.data);
        GNUTLS_OK(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem));
        snprintf(file, sizeof(file), "%s.key", name);
        *ret_key = write_tmp(file, pem.data, pem.size);
        gnutls_free(pem.data);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
}

typedef struct ServerFiles {
        char *a_cert, *a_key, *b_cert, *b_key;
} ServerFiles;

#define CERT(c, k) { .cert_file = (c), .key_file = (k), \
                     .mark = { .file = "t.yaml", .line = 5, .column = 9 } }

static TlsServer *server_new(TlsCertificateFiles *certs, size_t n, char **ret_error)
{
        TlsServerOptions o = {
                .listener = "https",
                .certificates = certs,
                .n_certificates = n,
                .ticket_rotate_usec = 12 * 3600 * USEC_PER_SEC,
        };
        TlsServer *t = NULL;
        if (tls_server_new(&o, &t, ret_error) < 0)
                return NULL;
        return t;
}

/* The server refuses to start without what it was told to load: which file, and why. */
static void expect_server_error(TlsCertificateFiles *certs, size_t n, const char *want_prefix,
                                const char *want_suffix, int line)
{
        char *error = NULL;
        TlsServer *t = server_new(certs, n, &error);
        bool ok = !t && error && strncmp(error, want_prefix, strlen(want_prefix)) == 0 &&
                  (!want_suffix || (strlen(error) >= strlen(want_suffix) &&
                                    streq(error + strlen(error) - strlen(want_suffix),
                                          want_suffix)));
        if (!ok) {
                fprintf(stderr, "%s:%d: got %s\n  want: %s...%s\n", __FILE__, line,
                        error ? error : t ? "a server" : "(null)", want_prefix,
                        want_suffix ? want_suffix : "");
                failures++;
        }
        tls_server_free(t);
        free(error);
}

static void test_server_errors(const Pki *pki, const ServerFiles *f)
{
        char *p1 = NULL, *p2 = NULL;
        _cleanup_free_ char *garbage = write_tmp("garbage.pem", "-----BEGIN CERTIFICATE-----\n"
                                                 "bm90IGEgY2VydGlmaWNhdGU=\n"
                                                 "-----END CERTIFICATE-----\n", 78);
        _cleanup_free_ char *empty = write_tmp("empty.pem", "", 0);
        _cleanup_free_ char *bad_key = write_tmp("bad.key", "-----BEGIN PRIVATE KEY-----\n"
                                                 "bm90IGEga2V5\n"
                                                 "-----END PRIVATE KEY-----\n", 67);
        _cleanup_free_ char *ocsp = write_tmp("bad.ocsp", "not DER", 7);

        TlsCertificateFiles c1[] = { CERT("/nonexistent/a.pem", f->a_key) };
        expect_server_error(c1, 1,
                            "t.yaml:5:9: listener 'https': certificates[0].cert "
                            "/nonexistent/a.pem: No such file or directory", "", __LINE__);
        TlsCertificateFiles c2[] = { CERT(garbage, f->a_key) };
        CHECK(asprintf(&p1, "t.yaml:5:9: listener 'https': certificates[0].cert %s: ",
                       garbage) > 0);
        expect_server_error(c2, 1, p1, NULL, __LINE__);
        free(TAKE_PTR(p1));
        TlsCertificateFiles c3[] = { CERT(empty, f->a_key) };
        CHECK(asprintf(&p1, "t.yaml:5:9: listener 'https': certificates[0].cert %s: No "
                            "certificate was found.", empty) > 0);
        expect_server_error(c3, 1, p1, "", __LINE__);
        free(TAKE_PTR(p1));
        TlsCertificateFiles c4[] = { CERT(tmpdir, f->a_key) };
        expect_server_error(c4, 1, "t.yaml:5:9: listener 'https': certificates[0].cert /tmp/",
                            ": Is a directory", __LINE__);

        /* The second entry's key: missing, not a key, not the certificate's. */
        TlsCertificateFiles c5[] = { CERT(f->a_cert, f->a_key), CERT(f->b_cert, "/nonexistent.key") };
        expect_server_error(c5, 2,
                            "t.yaml:5:9: listener 'https': certificates[1].key /nonexistent.key: "
                            "No such file or directory", "", __LINE__);
        TlsCertificateFiles c6[] = { CERT(f->a_cert, bad_key) };
        CHECK(asprintf(&p1, "t.yaml:5:9: listener 'https': certificates[0].key %s: ", bad_key) >
              0);
        expect_server_error(c6, 1, p1, NULL, __LINE__);
        free(TAKE_PTR(p1));
        TlsCertificateFiles c7[] = { CERT(f->a_cert, f->b_key) };
        CHECK(asprintf(&p1, "t.yaml:5:9: listener 'https': certificates[0] %s and %s: ",
                       f->a_cert, f->b_key) > 0);
        expect_server_error(c7, 1, p1, "The certificate and the given key do not match.",
                            __LINE__);
        free(TAKE_PTR(p1));

        /* A relative key is a credential: $CREDENTIALS_DIRECTORY must say where. */
        const char *slash = strrchr(f->a_key, '/');
        TlsCertificateFiles c8[] = { CERT(f->a_cert, slash + 1) };
        unsetenv("CREDENTIALS_DIRECTORY");
        expect_server_error(c8, 1,
                            "t.yaml:5:9: listener 'https': certificates[0].key a.example.key: a "
                            "relative key is a credential's name, but $CREDENTIALS_DIRECTORY is "
                            "not set (LoadCredential= in the service unit)", "", __LINE__);
        setenv("CREDENTIALS_DIRECTORY", "/nonexistent/creds/", 1);
        expect_server_error(c8, 1,
                            "t.yaml:5:9: listener 'https': certificates[0].key "
                            "/nonexistent/creds/a.example.key: No such file or directory", "",
                            __LINE__);
        setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
        TlsServer *t = server_new(c8, 1, NULL);
        CHECK(t);
        tls_server_free(t);
        unsetenv("CREDENTIALS_DIRECTORY");

        /* An OCSP response that is none. */
        TlsCertificateFiles c9[] = { CERT(f->a_cert, f->a_key) };
        c9[0].ocsp_file = ocsp;
        CHECK(asprintf(&p1, "t.yaml:5:9: listener 'https': certificates[0].ocsp %s: ", ocsp) > 0);
        expect_server_error(c9, 1, p1, NULL, __LINE__);
        free(TAKE_PTR(p1));

        /* Without a mark (a listener made at run time), the message starts at the listener. */
        TlsCertificateFiles c10[] = { { .cert_file = "/nonexistent/a.pem",
                                        .key_file = f->a_key } };
        expect_server_error(c10, 1,
                            "listener 'https': certificates[0].cert /nonexistent/a.pem: No such "
                            "file or directory", "", __LINE__);

        /* Two pairs load, and references outlive the owner's. */
        TlsCertificateFiles ok[] = { CERT(f->a_cert, f->a_key), CERT(f->b_cert, f->b_key) };
        char *error = NULL;
        t = server_new(ok, 2, &error);
        CHECK(t && !error);
        CHECK(tls_server_free(t) == NULL);
        CHECK(tls_server_free(NULL) == NULL);

        (void)pki;
        free(p2);
        unlink(garbage);
        unlink(empty);
        unlink(bad_key);
        unlink(ocsp);
}

/* ---- the server: ticket keys and the messages they are chosen from ---- */

static void test_ticket_keys(void)
{
        const uint64_t period = 1000, t0 = 5000;
        unsigned char k1[TLS_TICKET_KEY_SIZE], k[TLS_TICKET_KEY_SIZE];
        unsigned char name1[TLS_TICKET_NAME_SIZE], name2[TLS_TICKET_NAME_SIZE];
        TlsTickets *t = NULL;

        memset(name1, 0x11, sizeof(name1));
        memset(name2, 0x22, sizeof(name2));
        CHECK(tls_tickets_new(t0, &t) == 0);
        if (!t)
                return;

        /* Within the period: the same key, whatever is offered. */
        uint64_t id1 = tls_tickets_pick(t, t0, period, NULL, k1);
        CHECK(id1 != 0);
        CHECK(tls_tickets_pick(t, t0 + period - 1, period, name1, k) == id1);
        CHECK(memcmp(k, k1, sizeof(k)) == 0);
        tls_tickets_learn(t, id1, name1);
        tls_tickets_learn(t, id1, name1); /* once is enough */
        CHECK(t->current.n_names == 1);
        tls_tickets_learn(t, 999, name2); /* no such key: nothing */
        CHECK(t->current.n_names == 1);

        /* A period on: a new key for new sessions, the old one for its own tickets. */
        uint64_t id2 = tls_tickets_pick(t, t0 + period, period, NULL, k);
        CHECK(id2 != id1 && memcmp(k, k1, sizeof(k)) != 0);
        CHECK(tls_tickets_pick(t, t0 + period + 1, period, name2, k) == id2);
        CHECK(tls_tickets_pick(t, t0 + period + 2, period, name1, k) == id1);
        CHECK(memcmp(k, k1, sizeof(k)) == 0);
        tls_tickets_learn(t, id2, name2);

        /* Two periods on: the first key is gone. */
        uint64_t id3 = tls_tickets_pick(t, t0 + 2 * period, period, name1, k);
        CHECK(id3 != id1 && id3 != id2);
        CHECK(tls_tickets_pick(t, t0 + 2 * period, period, name2, k) == id2);

        /* Names are bounded: the oldest go. */
        for (unsigned i = 0; i < TLS_TICKET_NAMES_MAX + 2; i++) {
                unsigned char n[TLS_TICKET_NAME_SIZE];
                memset(n, (int)(0x40 + i), sizeof(n));
                tls_tickets_learn(t, id3, n);
        }
        CHECK(t->current.n_names == TLS_TICKET_NAMES_MAX);

        CHECK(tls_tickets_ref(t) == t);
        CHECK(tls_tickets_unref(t) == NULL);
        CHECK(tls_tickets_unref(t) == NULL);
        CHECK(tls_tickets_unref(NULL) == NULL);
}

/* A ClientHello body: version, random, session id, suites, compression, then `ext`. */
static size_t client_hello(unsigned char *buf, const unsigned char *ext, size_t ext_len)
{
        size_t o = 0;
        buf[o++] = 3;
        buf[o++] = 3;
        memset(buf + o, 0xaa, 32);
        o += 32;
        buf[o++] = 32; /* session id */
        memset(buf + o, 0xbb, 32);
        o += 32;
        buf[o++] = 0;
        buf[o++] = 2; /* one suite */
        buf[o++] = 0x13;
        buf[o++] = 0x01;
        buf[o++] = 1; /* compression: null */
        buf[o++] = 0;
        buf[o++] = (unsigned char)(ext_len >> 8);
        buf[o++] = (unsigned char)ext_len;
        if (ext_len > 0) /* memcpy from NULL is undefined even for 0 bytes */
                memcpy(buf + o, ext, ext_len);
        return o + ext_len;
}

static void test_ticket_messages(void)
{
        unsigned char m[512];
        const unsigned char *name = NULL;
        size_t n;

        /* server_name, then session_ticket with a 20-byte ticket. */
        unsigned char e12[] = { 0, 0, 0, 5, 0, 3, 0, 0, 0, 0, 35, 0, 20,
                                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                20 };
        n = client_hello(m, e12, sizeof(e12));
        CHECK(tls_client_hello_ticket_name(m, n, &name) == 1 && name && name[0] == 1 &&
              name[15] == 16);
        /* Cut anywhere: never read past the end. */
        for (size_t k = 0; k < n; k++) {
                name = NULL;
                int r = tls_client_hello_ticket_name(m, k, &name);
                CHECK(r == -EBADMSG || r == 0);
        }
        /* An empty session_ticket (asking for one) offers none. */
        unsigned char e0[] = { 0, 35, 0, 0 };
        n = client_hello(m, e0, sizeof(e0));
        CHECK(tls_client_hello_ticket_name(m, n, &name) == 0);
        n = client_hello(m, NULL, 0);
        CHECK(tls_client_hello_ticket_name(m, n, &name) == 0);

        /* pre_shared_key: identities (one of 17 bytes + age), then binders. */
        unsigned char e13[] = { 0, 41, 0, 2 + 2 + 17 + 4 + 2 + 1 + 32,
                                0, 23, 0, 17, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                15, 16, 0, 0, 0, 0,
                                0, 33, 32 };
        unsigned char big[sizeof(e13) + 32] = {};
        memcpy(big, e13, sizeof(e13));
        n = client_hello(m, big, sizeof(big));
        name = NULL;
        CHECK(tls_client_hello_ticket_name(m, n, &name) == 1 && name && name[0] == 9 &&
              name[15] == 15);
        /* An identity shorter than a key name: not ours to match. */
        unsigned char e13s[] = { 0, 41, 0, 12, 0, 8, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0 };
        n = client_hello(m, e13s, sizeof(e13s));
        CHECK(tls_client_hello_ticket_name(m, n, &name) == 0);
        /* An extension longer than the block. */
        unsigned char bad[] = { 0, 35, 0, 200, 1, 2 };
        n = client_hello(m, bad, sizeof(bad));
        CHECK(tls_client_hello_ticket_name(m, n, &name) == -EBADMSG);

        /* NewSessionTicket, TLS 1.2: lifetime hint, ticket. */
        unsigned char nst12[4 + 2 + 20] = { 0, 0, 1, 0, 0, 20, 7 };
        name = NULL;
        CHECK(tls_new_session_ticket_name(nst12, sizeof(nst12), false, &name) == 1 && name &&
              name[0] == 7);
        CHECK(tls_new_session_ticket_name(nst12, sizeof(nst12) - 1, false, &name) == -EBADMSG);
        /* TLS 1.3: lifetime, age add, nonce (2 bytes), ticket, extensions. */
        unsigned char nst13[4 + 4 + 1 + 2 + 2 + 20 + 2] = { 0, 0, 1, 0, 1, 2, 3, 4, 2, 0, 1,
                                                           0, 20, 8 };
        name = NULL;
        CHECK(tls_new_session_ticket_name(nst13, sizeof(nst13), true, &name) == 1 && name &&
              name[0] == 8);
        CHECK(tls_new_session_ticket_name(nst13, 12, true, &name) == -EBADMSG);
        for (size_t k = 0; k < sizeof(nst13); k++)
                (void)tls_new_session_ticket_name(nst13, k, true, &name);
}

/* ---- the server: handshakes from a GnuTLS client ---- */

typedef struct Peer {
        /* the client's settings */
        const char *priority;
        const char *sni;  /* NULL: none */
        const char *alpn; /* NULL: none offered */
        gnutls_datum_t session; /* to resume (in), the newest (out) */
        int fd;
        /* what it saw */
        int handshake;
        char cn[64];
        char alpn_got[32];
        bool resumed;
        char echo[16];
} Peer;

static void *peer_run(void *arg)
{
        Peer *p = arg;
        gnutls_certificate_credentials_t cred;
        gnutls_session_t s;

        GNUTLS_OK(gnutls_certificate_allocate_credentials(&cred));
        GNUTLS_OK(gnutls_init(&s, GNUTLS_CLIENT));
        GNUTLS_OK(gnutls_priority_set_direct(s, p->priority, NULL));
        GNUTLS_OK(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred));
        if (p->sni)
                GNUTLS_OK(gnutls_server_name_set(s, GNUTLS_NAME_DNS, p->sni, strlen(p->sni)));
        if (p->alpn) {
                gnutls_datum_t a = { .data = (unsigned char *)p->alpn,
                                     .size = (unsigned)strlen(p->alpn) };
                GNUTLS_OK(gnutls_alpn_set_protocols(s, &a, 1, 0));
        }
        if (p->session.size)
                GNUTLS_OK(gnutls_session_set_data(s, p->session.data, p->session.size));
        gnutls_transport_set_int(s, p->fd);

        int r;
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        p->handshake = r;
        if (r >= 0) {
                p->resumed = gnutls_session_is_resumed(s);
                unsigned n = 0;
                const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
                gnutls_x509_crt_t crt;
                size_t size = sizeof(p->cn);
                if (n > 0 && gnutls_x509_crt_init(&crt) >= 0) {
                        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0)
                                (void)gnutls_x509_crt_get_dn_by_oid(
                                        crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, p->cn, &size);
                        gnutls_x509_crt_deinit(crt);
                }
                gnutls_datum_t a = {};
                if (gnutls_alpn_get_selected_protocol(s, &a) >= 0)
                        snprintf(p->alpn_got, sizeof(p->alpn_got), "%.*s", (int)a.size, a.data);

                /* The echo proves the data path; reading also takes TLS 1.3 tickets in. */
                ssize_t k;
                do
                        k = gnutls_record_send(s, "ping", 4);
                while (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED);
                size_t got = 0;
                while (got < 4) {
                        k = gnutls_record_recv(s, p->echo + got, 4 - got);
                        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                                continue;
                        if (k <= 0)
                                break;
                        got += (size_t)k;
                }
                gnutls_free(p->session.data);
                p->session = (gnutls_datum_t){};
                (void)gnutls_session_get_data2(s, &p->session);
                (void)gnutls_bye(s, GNUTLS_SHUT_WR);
        }
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cred);
        close(p->fd);
        return NULL;
}

typedef struct Accepted {
        struct event_base *base;
        int error;
        bool eof;
} Accepted;

static void accepted_on_read(Stream *s, void *userdata)
{
        Accepted *a = userdata;
        evbuffer_add_buffer(s->out, s->in);
        CHECK(stream_flush(s) == 0);
        if (s->eof) {
                a->eof = true;
                event_base_loopbreak(a->base);
        }
}

static void accepted_on_error(Stream *s, int error, void *userdata)
{
        Accepted *a = userdata;
        a->error = error;
        event_base_loopbreak(a->base);
}

static void accepted_on_connect(Stream *s, int error, void *userdata)
{
        CHECK(!"no on_connect on an accepted stream");
}

static const StreamHandler accepted_handler = {
        .on_read = accepted_on_read,
        .on_drain = client_on_drain,
        .on_connect = accepted_on_connect,
        .on_error = accepted_on_error,
};

/* One connection from a client thread to `t`; `p` holds its settings and gets its results. */
static Accepted serve_one(TlsServer *t, Peer *p, bool *ret_resumed, char *detail, size_t size)
{
        Accepted a = { .base = event_base_new() };
        int sv[2];
        Stream s;
        pthread_t thread;

        p->handshake = 1;
        p->resumed = false;
        p->cn[0] = p->alpn_got[0] = p->echo[0] = 0;
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        p->fd = sv[0];
        CHECK(evutil_make_socket_nonblocking(sv[1]) == 0);
        CHECK(stream_init(&s, a.base, sv[1], &accepted_handler, &a) == 0);
        CHECK(tls_server_attach(t, &s) == 0);
        stream_read_start(&s);
        CHECK(pthread_create(&thread, NULL, peer_run, p) == 0);

        struct timeval limit = { .tv_sec = 20 };
        event_base_loopexit(a.base, &limit);
        event_base_dispatch(a.base);

        *ret_resumed = tls_stream_resumed(&s);
        const char *d = stream_error_detail(&s);
        snprintf(detail, size, "%s", d ? d : "");
        stream_done(&s);
        CHECK(pthread_join(thread, NULL) == 0);
        event_base_free(a.base);
        return a;
}

static void test_server_handshakes(const ServerFiles *f, const char *priority, const char *what)
{
        TlsCertificateFiles certs[] = { CERT(f->a_cert, f->a_key), CERT(f->b_cert, f->b_key) };
        TlsServer *t = server_new(certs, 2, NULL);
        Peer p = { .priority = priority, .alpn = "http/1.1" };
        char detail[256];
        bool resumed;
        Accepted a;

        fprintf(stderr, "server handshakes, %s\n", what);
        CHECK(t);
        if (!t)
                return;

        /* The certificate by SNI; the first without SNI or for an unknown name. */
        const char *names[][2] = { { "a.example", "a.example" },
                                   { "b.example", "b.example" },
                                   { NULL, "a.example" },
                                   { "z.example", "a.example" } };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                p.sni = names[i][0];
                a = serve_one(t, &p, &resumed, detail, sizeof(detail));
                CHECK(p.handshake == 0);
                CHECK(streq(p.cn, names[i][1]));
                CHECK(streq(p.alpn_got, "http/1.1"));
                CHECK(memcmp(p.echo, "ping", 4) == 0);
                CHECK(a.eof && a.error == 0 && !resumed);
                gnutls_free(p.session.data);
                p.session = (gnutls_datum_t){};
        }

        /* No ALPN offered: none chosen, HTTP/1.1 all the same. A client that wants h2 only
         * gets none. */
        p.sni = "a.example";
        p.alpn = NULL;
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake == 0 && !p.alpn_got[0] && a.eof);
        gnutls_free(p.session.data);
        p.session = (gnutls_datum_t){};
        p.alpn = "h2";
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake == 0 && !p.alpn_got[0] && a.eof);
        p.alpn = "http/1.1";

        /* Resumption: each connection leaves a ticket for the next. */
        gnutls_free(p.session.data);
        p.session = (gnutls_datum_t){};
        for (unsigned i = 0; i < 3; i++) {
                a = serve_one(t, &p, &resumed, detail, sizeof(detail));
                CHECK(p.handshake == 0 && a.eof);
                CHECK(p.resumed == (i > 0));
                CHECK(resumed == (i > 0));
        }

        /* A rotation: tickets of the previous key still resume, for one period. */
        gnutls_datum_t kept = p.session;
        p.session.data = gnutls_malloc(kept.size);
        memcpy(p.session.data, kept.data, kept.size);
        t->tickets->rotated_usec -= t->ticket_rotate_usec;
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake == 0 && p.resumed && resumed);
        /* Two rotations: no more. A ticket of the current key still resumes. */
        t->tickets->rotated_usec -= t->ticket_rotate_usec;
        gnutls_free(p.session.data);
        p.session = kept;
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake == 0 && !p.resumed && !resumed);
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake == 0 && p.resumed && resumed);

        /* A reload: the same listener's new server takes the keys over, and the tickets stay
         * good. Without that, they would not. */
        TlsServer *t2 = server_new(certs, 2, NULL), *t3 = server_new(certs, 2, NULL);
        CHECK(t2 && t3);
        if (t2 && t3) {
                gnutls_datum_t copy = { .data = gnutls_malloc(p.session.size),
                                        .size = p.session.size };
                memcpy(copy.data, p.session.data, copy.size);
                tls_server_carry_state(t2, t);
                CHECK(t2->tickets == t->tickets);
                a = serve_one(t3, &p, &resumed, detail, sizeof(detail));
                CHECK(p.handshake == 0 && !p.resumed);
                gnutls_free(p.session.data);
                p.session = copy;
                a = serve_one(t2, &p, &resumed, detail, sizeof(detail));
                CHECK(p.handshake == 0 && p.resumed && resumed);
        }
        tls_server_free(t3);
        tls_server_free(t2);
        gnutls_free(p.session.data);
        p.session = (gnutls_datum_t){};

        /* TLS 1.1 is refused: the handshake fails, reported as the stream's error. */
        p.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1";
        a = serve_one(t, &p, &resumed, detail, sizeof(detail));
        CHECK(p.handshake < 0);
        CHECK(a.error == -EPROTO && !a.eof);
        CHECK(strstr(detail, "TLS handshake failed: "));

        /* Streams hold the server: it may go first. */
        tls_server_free(t);
        Stream unused = {};
        CHECK(tls_server_attach(NULL, &unused) == -ENOKEY);
}

/* A reload that finds a listener's files as they were keeps its TlsServer: they are read again
 * and compared, not loaded. */
static void test_server_files(const ServerFiles *f)
{
        TlsCertificateFiles certs[] = { CERT(f->a_cert, f->a_key) };
        TlsServerOptions o = { .listener = "https", .certificates = certs, .n_certificates = 1 };
        TlsServer *t = server_new(certs, 1, NULL);
        CHECK(t && tls_server_files_unchanged(t, &o));

        char *pem = NULL, *other = NULL;
        size_t size = 0, other_size = 0;
        CHECK(tls_read_file(f->a_cert, 1 << 20, &pem, &size) == 0);
        CHECK(tls_read_file(f->b_cert, 1 << 20, &other, &other_size) == 0);
        free(write_tmp("a.example.pem", other, other_size));
        CHECK(!tls_server_files_unchanged(t, &o));
        free(write_tmp("a.example.pem", pem, size));
        CHECK(tls_server_files_unchanged(t, &o));
        /* A file gone is a change (the new server then says what is wrong). */
        TlsCertificateFiles gone[] = { CERT(f->a_cert, "/nonexistent/a.key") };
        o.certificates = gone;
        CHECK(!tls_server_files_unchanged(t, &o));
        tls_server_free(t);
        free(pem);
        free(other);
}

/* A client certificate (mutual TLS, etcd's --client-cert-auth): loaded with its key, part of
 * the policy id (sessions of two identities never mix), and its files' errors named. */
static void test_client_certificate(const Pki *pki, const ServerFiles *f)
{
        TlsClientPolicy p = { .upstream = "u", .owner = "store.etcd", .ca_file = pki->ca_file,
                              .verify = true };
        TlsClient *none = NULL, *a = NULL, *a2 = NULL, *b = NULL, *t = NULL;
        _cleanup_free_ char *error = NULL;

        CHECK(tls_client_new(&p, &none, NULL) == 0);
        p.cert_file = f->a_cert;
        p.key_file = f->a_key;
        CHECK(tls_client_new(&p, &a, NULL) == 0);
        CHECK(tls_client_new(&p, &a2, NULL) == 0);
        p.cert_file = f->b_cert;
        p.key_file = f->b_key;
        CHECK(tls_client_new(&p, &b, NULL) == 0);
        if (none && a && a2 && b) {
                CHECK(!streq(tls_client_policy_id(none), tls_client_policy_id(a)));
                CHECK(!streq(tls_client_policy_id(a), tls_client_policy_id(b)));
                CHECK(streq(tls_client_policy_id(a), tls_client_policy_id(a2)));
        }
        /* Without a recheck, the same policy keeps the client; with one, the files are read
         * again. */
        CHECK(tls_client_update(&p, b, false, &t, NULL) == 0 && t == b);
        tls_client_free(t);

        p.key_file = "/nonexistent/client.key";
        CHECK(tls_client_new(&p, &t, &error) == -ENOENT);
        CHECK(error && streq(error, "store.etcd: tls.key /nonexistent/client.key: No such file "
                                    "or directory"));
        error = mfree(error);
        p.key_file = f->a_key; /* b's certificate with a's key */
        CHECK(tls_client_new(&p, &t, &error) == -EINVAL);
        CHECK(error && strncmp(error, "store.etcd: tls.cert ", 21) == 0);
        tls_client_free(none);
        tls_client_free(a);
        tls_client_free(a2);
        tls_client_free(b);
}

int main(void)
{
        if (!mkdtemp(tmpdir))
                abort();
        Pki pki = {};
        pki_make(&pki);

        test_cache();
        test_ca_file(&pki);
        test_policy_id(&pki);
        test_trust_shared(&pki);
        test_handshakes(&pki, "NORMAL", "TLS 1.3");
        test_handshakes(&pki, "NORMAL:-VERS-TLS1.3", "TLS 1.2");
        test_ticket_burst(&pki);

        ServerFiles f = {};
        write_pair(&pki, "a.example", 10, &f.a_cert, &f.a_key);
        write_pair(&pki, "b.example", 11, &f.b_cert, &f.b_key);
        test_server_errors(&pki, &f);
        test_server_files(&f);
        test_client_certificate(&pki, &f);
        test_ticket_keys();
        test_ticket_messages();
        test_server_handshakes(&f, "NORMAL", "TLS 1.3");
        test_server_handshakes(&f, "NORMAL:-VERS-TLS1.3", "TLS 1.2");
        char *files[] = { f.a_cert, f.a_key, f.b_cert, f.b_key };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                unlink(files[i]);
                free(files[i]);
        }

        pki_done(&pki);
        rmdir(tmpdir);
        if (failures) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
