/* SPDX-License-Identifier: MIT */
/* The TlsServer of an https listener: certificates, OCSP responses and priorities loaded once
 * per model, and the session ticket keys, which outlive models. The per-connection part is in
 * tls-stream.c.
 *
 * Ticket keys. GnuTLS 3.7 takes one key per session (gnutls_session_ticket_enable_server) and
 * derives the key it encrypts with from it and the time; a ticket made under any other key does
 * not decrypt, so rotating the key would cost every client its resumption at once. So each
 * listener keeps two keys: `current`, which new tickets are made under, and `previous`. The
 * session's key is chosen when its ClientHello arrives (a handshake hook, before GnuTLS reads
 * the hello): `previous` when the ticket offered starts with a key name `previous` was seen to
 * issue tickets under (learnt from the NewSessionTicket messages sent), else `current`. Keys
 * rotate when a handshake finds `current` ticket_rotate old: no timer runs, so a listener nobody
 * connects to keeps its keys until the next connection, which replaces them. Tickets say they
 * are good for ticket_rotate, which GnuTLS also enforces. */
#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdarg.h>

#include "base/util.h"
#include "tls/tls-stream.h"

/* Certificate chains, keys and OCSP responses are a few kilobytes; anything this big is not
 * one. */
#define CREDENTIAL_FILE_MAX (1024 * 1024)

/* ---- ticket keys ---- */

static int ticket_key_make(TlsTickets *t, TlsTicketKey *k)
{
        gnutls_datum_t d = {};
        int r = gnutls_session_ticket_key_generate(&d);
        if (r < 0)
                return -ENOMEM;
        if (d.size != TLS_TICKET_KEY_SIZE) {
                gnutls_memset(d.data, 0, d.size);
                gnutls_free(d.data);
                return -EINVAL;
        }
        explicit_bzero(k, sizeof(*k));
        memcpy(k->key, d.data, TLS_TICKET_KEY_SIZE);
        gnutls_memset(d.data, 0, d.size);
        gnutls_free(d.data);
        k->id = ++t->last_id;
        return 0;
}

int tls_tickets_new(uint64_t now, TlsTickets **ret)
{
        TlsTickets *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        atomic_init(&t->n_ref, 1);
        int r = pthread_mutex_init(&t->lock, NULL);
        if (r != 0) {
                free(t);
                return -r;
        }
        r = ticket_key_make(t, &t->current);
        if (r < 0) {
                tls_tickets_unref(t);
                return r;
        }
        t->rotated_usec = now;
        *ret = t;
        return 0;
}

TlsTickets *tls_tickets_ref(TlsTickets *t)
{
        if (t)
                atomic_fetch_add_explicit(&t->n_ref, 1, memory_order_relaxed);
        return t;
}

TlsTickets *tls_tickets_unref(TlsTickets *t)
{
        if (!t || atomic_fetch_sub_explicit(&t->n_ref, 1, memory_order_acq_rel) > 1)
                return NULL;
        pthread_mutex_destroy(&t->lock);
        /* The keys decrypt every ticket made under them: gone means gone. */
        explicit_bzero(t, sizeof(*t));
        free(t);
        return NULL;
}

static bool key_issued(const TlsTicketKey *k, const unsigned char *name)
{
        for (unsigned i = 0; i < k->n_names; i++)
                if (memcmp(k->names[i], name, TLS_TICKET_NAME_SIZE) == 0)
                        return true;
        return false;
}

uint64_t tls_tickets_pick(TlsTickets *t, uint64_t now, uint64_t period,
                          const unsigned char *name, unsigned char ret_key[TLS_TICKET_KEY_SIZE])
{
        pthread_mutex_lock(&t->lock);
        if (now - t->rotated_usec >= period) {
                TlsTicketKey next;
                /* Should the RNG fail, the old key serves on and the next handshake retries. */
                if (ticket_key_make(t, &next) >= 0) {
                        t->previous = t->current;
                        t->current = next;
                        t->rotated_usec = now;
                }
                explicit_bzero(&next, sizeof(next));
        }
        const TlsTicketKey *k = &t->current;
        if (name && t->previous.id != 0 && key_issued(&t->previous, name))
                k = &t->previous;
        memcpy(ret_key, k->key, TLS_TICKET_KEY_SIZE);
        uint64_t id = k->id;
        pthread_mutex_unlock(&t->lock);
        return id;
}

void tls_tickets_learn(TlsTickets *t, uint64_t id, const unsigned char *name)
{
        pthread_mutex_lock(&t->lock);
        TlsTicketKey *k = t->current.id == id    ? &t->current
                          : t->previous.id == id ? &t->previous
                                                 : NULL;
        if (k && !key_issued(k, name)) {
                memcpy(k->names[k->next_name], name, TLS_TICKET_NAME_SIZE);
                k->next_name = (k->next_name + 1) % TLS_TICKET_NAMES_MAX;
                if (k->n_names < TLS_TICKET_NAMES_MAX)
                        k->n_names++;
        }
        pthread_mutex_unlock(&t->lock);
}

/* ---- handshake messages ---- */

static size_t get16(const unsigned char *p)
{
        return (size_t)p[0] << 8 | p[1];
}

int tls_client_hello_ticket_name(const unsigned char *p, size_t n, const unsigned char **ret_name)
{
        /* legacy_version, random, session_id, cipher_suites, compression_methods, extensions */
        size_t o = 2 + 32;

        if (n < o + 1)
                return -EBADMSG;
        o += 1 + p[o];
        if (n < o + 2)
                return -EBADMSG;
        o += 2 + get16(p + o);
        if (n < o + 1)
                return -EBADMSG;
        o += 1 + p[o];
        if (n == o)
                return 0; /* no extensions at all */
        if (n < o + 2)
                return -EBADMSG;
        size_t end = o + 2 + get16(p + o);
        if (end > n)
                return -EBADMSG;
        for (o += 2; o + 4 <= end;) {
                unsigned type = (unsigned)get16(p + o);
                size_t len = get16(p + o + 2);
                const unsigned char *d = p + o + 4;

                o += 4;
                if (o + len > end)
                        return -EBADMSG;
                o += len;
                if (type == 35 && len >= TLS_TICKET_NAME_SIZE) { /* session_ticket */
                        *ret_name = d;
                        return 1;
                }
                /* pre_shared_key: identities<7..2^16-1>, each identity<1..2^16-1> then a
                 * 4-byte obfuscated age. GnuTLS offers one; the first is the one to match. */
                if (type == 41 && len >= 4 && get16(d) >= 2 &&
                    get16(d + 2) >= TLS_TICKET_NAME_SIZE &&
                    4 + get16(d + 2) <= len) {
                        *ret_name = d + 4;
                        return 1;
                }
        }
        return 0;
}

int tls_new_session_ticket_name(const unsigned char *p, size_t n, bool tls13,
                                const unsigned char **ret_name)
{
        size_t o;

        if (tls13) {
                /* ticket_lifetime, ticket_age_add, ticket_nonce<0..255>, ticket<1..2^16-1> */
                if (n < 9 || n < 9 + (size_t)p[8] + 2)
                        return -EBADMSG;
                o = 9 + p[8];
        } else {
                /* ticket_lifetime_hint, ticket<0..2^16-1> (RFC 5077) */
                if (n < 6)
                        return -EBADMSG;
                o = 4;
        }
        size_t len = get16(p + o);
        o += 2;
        if (o + len > n)
                return -EBADMSG;
        if (len < TLS_TICKET_NAME_SIZE)
                return 0;
        *ret_name = p + o;
        return 1;
}

/* ---- the server ---- */

/* "file:line:column: listener 'name': <what>: <why>", what made from the format. */
static void set_error(char **ret_error, const TlsServerOptions *o, const SourceMark *mark,
                      const char *why, const char *what_fmt, ...) _printf_(5, 6);

static void set_error(char **ret_error, const TlsServerOptions *o, const SourceMark *mark,
                      const char *why, const char *what_fmt, ...)
{
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int r;

        if (!ret_error)
                return;
        *ret_error = NULL;
        va_start(ap, what_fmt);
        r = vasprintf(&what, what_fmt, ap);
        va_end(ap);
        if (r < 0) {
                what = NULL;
                return;
        }
        r = mark && mark->file ? asprintf(ret_error, "%s:%u:%u: listener '%s': %s: %s",
                                          mark->file, mark->line, mark->column, o->listener,
                                          what, why)
                               : asprintf(ret_error, "listener '%s': %s: %s", o->listener, what,
                                          why);
        if (r < 0)
                *ret_error = NULL;
}

static const char *file_error(int r)
{
        return r == -EBADFD ? "not a regular file"
               : r == -EFBIG ? "too large for a certificate, key or OCSP response"
                             : strerror(-r);
}

/* A relative key is a credential name: $CREDENTIALS_DIRECTORY/name. */
static int key_path(const char *key_file, char **ret, const char **ret_why)
{
        if (key_file[0] == '/') {
                *ret = strdup(key_file);
                return *ret ? 0 : -ENOMEM;
        }
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir) {
                *ret_why = "a relative key is a credential's name, but $CREDENTIALS_DIRECTORY is "
                           "not set (LoadCredential= in the service unit)";
                return -ENOKEY;
        }
        size_t l = strlen(dir);
        if (asprintf(ret, "%s%s%s", dir, l > 0 && dir[l - 1] == '/' ? "" : "/", key_file) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

typedef struct KeyPair {
        gnutls_x509_crt_t *crts;
        unsigned n_crts;
        gnutls_x509_privkey_t key;
} KeyPair;

static void key_pair_done(KeyPair *kp)
{
        for (unsigned i = 0; i < kp->n_crts; i++)
                gnutls_x509_crt_deinit(kp->crts[i]);
        gnutls_free(kp->crts);
        if (kp->key)
                gnutls_x509_privkey_deinit(kp->key);
        *kp = (KeyPair){};
}

/* What the server's files held when read: each file's role, path and content go into one
 * SHA-256, so that a reload that finds them as they were reuses the server whole. */
static void files_hash_add(gnutls_hash_hd_t h, const char *key, const char *path,
                           const char *data, size_t size)
{
        uint64_t len = size;
        (void)gnutls_hash(h, key, strlen(key) + 1);
        (void)gnutls_hash(h, path, strlen(path) + 1);
        (void)gnutls_hash(h, &len, sizeof(len));
        (void)gnutls_hash(h, data, size);
}

/* Reads one file of certificates[i] into `files`; `key` names it in messages ("cert", "key",
 * "ocsp"). */
static int load_file(const TlsServerOptions *o, size_t i, const char *key, const char *path,
                     gnutls_hash_hd_t files, char **ret_data, size_t *ret_size,
                     char **ret_error)
{
        int r = tls_read_file(path, CREDENTIAL_FILE_MAX, ret_data, ret_size);
        if (r < 0) {
                set_error(ret_error, o, &o->certificates[i].mark, file_error(r),
                          "certificates[%zu].%s %s", i, key, path);
                return r;
        }
        files_hash_add(files, key, path, *ret_data, *ret_size);
        return 0;
}

static int load_certificate(const TlsServerOptions *o, size_t i,
                            gnutls_certificate_credentials_t cred, gnutls_hash_hd_t files,
                            char **ret_error)
{
        const TlsCertificateFiles *cc = &o->certificates[i];
        _cleanup_free_ char *key_file = NULL, *cert_pem = NULL, *key_pem = NULL;
        const char *why = NULL;
        size_t size;
        KeyPair kp = {};
        int r;

        r = load_file(o, i, "cert", cc->cert_file, files, &cert_pem, &size, ret_error);
        if (r < 0)
                return r;
        gnutls_datum_t d = { .data = (unsigned char *)cert_pem, .size = (unsigned)size };
        r = gnutls_x509_crt_list_import2(&kp.crts, &kp.n_crts, &d, GNUTLS_X509_FMT_PEM,
                                         GNUTLS_X509_CRT_LIST_SORT);
        if (r < 0 || kp.n_crts == 0) {
                set_error(ret_error, o, &cc->mark,
                          r < 0 ? gnutls_strerror(r) : "no PEM certificate found",
                          "certificates[%zu].cert %s", i, cc->cert_file);
                if (r < 0)
                        kp = (KeyPair){};
                key_pair_done(&kp);
                return -EINVAL;
        }

        r = key_path(cc->key_file, &key_file, &why);
        if (r < 0) {
                if (why)
                        set_error(ret_error, o, &cc->mark, why, "certificates[%zu].key %s", i,
                                  cc->key_file);
                key_pair_done(&kp);
                return r;
        }
        r = load_file(o, i, "key", key_file, files, &key_pem, &size, ret_error);
        if (r < 0) {
                key_pair_done(&kp);
                return r;
        }
        d = (gnutls_datum_t){ .data = (unsigned char *)key_pem, .size = (unsigned)size };
        r = gnutls_x509_privkey_init(&kp.key);
        if (r >= 0)
                r = gnutls_x509_privkey_import2(kp.key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
        explicit_bzero(key_pem, size);
        if (r < 0) {
                set_error(ret_error, o, &cc->mark, gnutls_strerror(r),
                          "certificates[%zu].key %s", i, key_file);
                key_pair_done(&kp);
                return -EINVAL;
        }

        /* With GNUTLS_CERTIFICATE_API_V2: the pair's index, which the OCSP response needs. */
        int index = gnutls_certificate_set_x509_key(cred, kp.crts, (int)kp.n_crts, kp.key);
        key_pair_done(&kp);
        if (index < 0) {
                set_error(ret_error, o, &cc->mark, gnutls_strerror(index),
                          "certificates[%zu] %s and %s", i, cc->cert_file, key_file);
                return -EINVAL;
        }

        if (!cc->ocsp_file)
                return 0;
        _cleanup_free_ char *ocsp = NULL;
        r = load_file(o, i, "ocsp", cc->ocsp_file, files, &ocsp, &size, ret_error);
        if (r < 0)
                return r;
        d = (gnutls_datum_t){ .data = (unsigned char *)ocsp, .size = (unsigned)size };
        /* Checked against the certificate: a response for another one is refused here, not
         * stapled to every handshake. */
        r = gnutls_certificate_set_ocsp_status_request_mem(cred, &d, (unsigned)index,
                                                           GNUTLS_X509_FMT_DER);
        if (r < 0) {
                set_error(ret_error, o, &cc->mark, gnutls_strerror(r),
                          "certificates[%zu].ocsp %s", i, cc->ocsp_file);
                return -EINVAL;
        }
        return 0;
}

int tls_server_new(const TlsServerOptions *o, TlsServer **ret, char **ret_error)
{
        assert(o);
        assert(ret);

        if (ret_error)
                *ret_error = NULL;
        if (o->n_certificates == 0) {
                set_error(ret_error, o, &o->mark, "none given", "certificates");
                return -EINVAL;
        }

        TlsServer *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        atomic_init(&t->n_ref, 1);
        t->ticket_rotate_usec = o->ticket_rotate_usec > 0 ? o->ticket_rotate_usec
                                                          : 12 * 3600 * USEC_PER_SEC;
        uint64_t secs = t->ticket_rotate_usec / USEC_PER_SEC;
        t->ticket_lifetime_sec = secs < 1 ? 1 : secs > 7 * 24 * 3600 ? 7 * 24 * 3600 : (unsigned)secs;

        int r = gnutls_certificate_allocate_credentials(&t->credentials);
        if (r < 0) {
                t->credentials = NULL;
                tls_server_free(t);
                return -ENOMEM;
        }
        gnutls_certificate_set_flags(t->credentials, GNUTLS_CERTIFICATE_API_V2);
        gnutls_hash_hd_t files;
        if (gnutls_hash_init(&files, GNUTLS_DIG_SHA256) < 0) {
                tls_server_free(t);
                return -ENOMEM;
        }
        /* The first pair is GnuTLS's choice when no certificate matches the SNI. */
        for (size_t i = 0; i < o->n_certificates; i++) {
                r = load_certificate(o, i, t->credentials, files, ret_error);
                if (r < 0) {
                        gnutls_hash_deinit(files, NULL);
                        tls_server_free(t);
                        return r;
                }
        }
        gnutls_hash_deinit(files, t->files_digest);

        /* Debian's NORMAL still allows TLS 1.0 and 1.1; the server's order of ciphers wins. */
        const char *err_pos = NULL;
        /* X25519 first: it is the one key share most clients send at once (OpenSSL sends only
         * it), so preferring another group would cost them a HelloRetryRequest round trip. */
        r = gnutls_priority_init2(&t->priority,
                                  "-VERS-TLS1.0:-VERS-TLS1.1:%SERVER_PRECEDENCE:-GROUP-ALL:"
                                  "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
                                  "+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072",
                                  &err_pos, GNUTLS_PRIORITY_INIT_DEF_APPEND);
        if (r < 0) {
                t->priority = NULL;
                set_error(ret_error, o, &o->mark, gnutls_strerror(r), "TLS priorities");
                tls_server_free(t);
                return -EINVAL;
        }

        r = tls_tickets_new(now_usec(CLOCK_BOOTTIME), &t->tickets);
        if (r < 0) {
                set_error(ret_error, o, &o->mark, strerror(-r), "session ticket key");
                tls_server_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

TlsServer *tls_server_ref(TlsServer *t)
{
        if (t)
                atomic_fetch_add_explicit(&t->n_ref, 1, memory_order_relaxed);
        return t;
}

TlsServer *tls_server_free(TlsServer *t)
{
        if (!t || atomic_fetch_sub_explicit(&t->n_ref, 1, memory_order_acq_rel) > 1)
                return NULL;
        tls_tickets_unref(t->tickets);
        if (t->priority)
                gnutls_priority_deinit(t->priority);
        if (t->credentials)
                gnutls_certificate_free_credentials(t->credentials);
        free(t);
        return NULL;
}

/* The SHA-256 of what the files of `o` hold now, as load_certificate() feeds it. */
static int files_digest(const TlsServerOptions *o, unsigned char ret[32])
{
        gnutls_hash_hd_t h;
        int r = 0;

        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_certificates && r >= 0; i++) {
                const TlsCertificateFiles *cc = &o->certificates[i];
                _cleanup_free_ char *key_file = NULL, *data = NULL;
                const char *why = NULL;
                size_t size;

                r = load_file(o, i, "cert", cc->cert_file, h, &data, &size, NULL);
                if (r >= 0)
                        r = key_path(cc->key_file, &key_file, &why);
                if (r >= 0) {
                        data = mfree(data);
                        r = load_file(o, i, "key", key_file, h, &data, &size, NULL);
                        if (r >= 0)
                                explicit_bzero(data, size);
                }
                if (r >= 0 && cc->ocsp_file) {
                        data = mfree(data);
                        r = load_file(o, i, "ocsp", cc->ocsp_file, h, &data, &size, NULL);
                }
        }
        gnutls_hash_deinit(h, ret);
        return r;
}

bool tls_server_files_unchanged(const TlsServer *t, const TlsServerOptions *o)
{
        unsigned char digest[sizeof(t->files_digest)];
        return files_digest(o, digest) >= 0 && memcmp(digest, t->files_digest, sizeof(digest)) == 0;
}

void tls_server_carry_state(TlsServer *t, const TlsServer *old)
{
        if (!t || !old || t->tickets == old->tickets)
                return;
        tls_tickets_unref(t->tickets);
        t->tickets = tls_tickets_ref(old->tickets);
}
