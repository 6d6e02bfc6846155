/* SPDX-License-Identifier: MIT */
/* The TlsClient of an https upstream: what every connection to it shares. The per-connection
 * part is in tls-stream.c. */
#include <assert.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <sys/stat.h>

#include "base/util.h"
#include "tls/tls-stream.h"

/* On top of the system's default priorities: Debian's NORMAL still allows TLS 1.0 and 1.1. */
#define CLIENT_PRIORITY "-VERS-TLS1.0:-VERS-TLS1.1"

struct TlsCacheEntry {
        TlsCacheEntry *newer, *older;
        char *key;
        void *data;
        size_t size;
};

static void cache_entry_free(TlsCacheEntry *e)
{
        if (!e)
                return;
        /* Resumption data holds the session's master secret: do not leave it in freed memory. */
        if (e->data) {
                explicit_bzero(e->data, e->size);
                free(e->data);
        }
        free(e->key);
        free(e);
}

int tls_read_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;

        size_t cap = (size_t)st.st_size + 1, n = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (n == cap) /* the file grew meanwhile */
                        return -EFBIG;
                ssize_t k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* ---- the policy id ----
 *
 * A connection or a session made under one TlsClient may serve another only when both would
 * have accepted the same peers in the same way: everything that decides a handshake goes into
 * one SHA-256, fed field by field as client_new() sets it up, so that what is configured and
 * what is hashed stay side by side. Each field is its name, its length and its bytes, so no two
 * policies feed the same stream. The policy is hashed, never the object's address: a reload
 * that leaves an upstream's TLS as it was keeps its pooled connections. */

typedef struct PolicyHash {
        gnutls_hash_hd_t h;
        int error; /* the first GnuTLS error, or 0 */
} PolicyHash;

static void policy_add(PolicyHash *p, const char *field, const void *data, size_t size)
{
        uint64_t len = size;

        if (p->error < 0)
                return;
        int r = gnutls_hash(p->h, field, strlen(field) + 1);
        if (r >= 0)
                r = gnutls_hash(p->h, &len, sizeof(len));
        if (r >= 0 && size > 0)
                r = gnutls_hash(p->h, data, size);
        if (r < 0)
                p->error = r;
}

static void policy_add_int(PolicyHash *p, const char *field, int64_t value)
{
        policy_add(p, field, &value, sizeof(value));
}

static void policy_add_list(PolicyHash *p, const char *field, int n, const unsigned *list)
{
        policy_add_int(p, field, n);
        if (n > 0)
                policy_add(p, field, list, (size_t)n * sizeof(*list));
}

/* What the priority string resolved to, on top of the string: the system-wide default it is
 * appended to may change between two reloads (GnuTLS reads its config file again). */
static void policy_add_priority(PolicyHash *p, gnutls_priority_t prio)
{
        static const struct {
                const char *field;
                int (*get)(gnutls_priority_t prio, const unsigned **list);
        } lists[] = {
                { "protocols", gnutls_priority_protocol_list },
                { "ciphers", gnutls_priority_cipher_list },
                { "macs", gnutls_priority_mac_list },
                { "kx", gnutls_priority_kx_list },
                { "groups", gnutls_priority_group_list },
                { "signatures", gnutls_priority_sign_list },
        };
        const unsigned *list = NULL;
        int n;

        policy_add(p, "priority", CLIENT_PRIORITY, strlen(CLIENT_PRIORITY));
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                n = lists[i].get(prio, &list);
                policy_add_list(p, lists[i].field, n, list);
        }
        n = gnutls_priority_certificate_type_list2(prio, &list, GNUTLS_CTYPE_SERVER);
        policy_add_list(p, "server certificate types", n, list);
}

static void hex_encode(const unsigned char *p, size_t n, char *ret)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 15];
        }
        ret[2 * n] = '\0';
}

/* A certificate or key file is a few kilobytes; a bigger one is a mistake. */
#define CERT_FILE_MAX (1024 * 1024)

static void set_file_error(char **ret_error, const char *who, const char *field,
                           const char *path, const char *why)
{
        if (ret_error && asprintf(ret_error, "%s: tls.%s %s: %s", who, field, path, why) < 0)
                *ret_error = NULL;
}

/* Credentials of t's own: the anchors of its trust, and the client certificate of `p`, whose
 * PEM is added to the policy. */
static int load_client_certificate(TlsClient *t, const TlsClientPolicy *p, const char *who,
                                   PolicyHash *policy, char **ret_error)
{
        _cleanup_free_ char *cert = NULL, *key = NULL;
        size_t cert_size, key_size;
        gnutls_x509_trust_list_t list;
        gnutls_x509_trust_list_iter_t iter = NULL;
        gnutls_x509_crt_t crt;
        int r;

        assert(p->cert_file && p->key_file);
        r = tls_read_file(p->cert_file, CERT_FILE_MAX, &cert, &cert_size);
        if (r < 0) {
                set_file_error(ret_error, who, "cert", p->cert_file,
                               r == -EBADFD ? "not a regular file" : strerror(-r));
                return r;
        }
        r = tls_read_file(p->key_file, CERT_FILE_MAX, &key, &key_size);
        if (r < 0) {
                set_file_error(ret_error, who, "key", p->key_file,
                               r == -EBADFD ? "not a regular file" : strerror(-r));
                return r;
        }
        if (gnutls_certificate_allocate_credentials(&t->own_credentials) < 0) {
                t->own_credentials = NULL;
                r = -ENOMEM;
                goto out;
        }
        /* The anchors, copied: a gnutls credentials object holds trust and identity both, and
         * the trust's is shared by clients without a certificate. */
        gnutls_certificate_get_trust_list(tls_trust_credentials(t->trust), &list);
        while ((r = gnutls_x509_trust_list_iter_get_ca(list, &iter, &crt)) >= 0) {
                r = gnutls_certificate_set_x509_trust(t->own_credentials, &crt, 1);
                gnutls_x509_crt_deinit(crt);
                if (r < 0)
                        break;
        }
        gnutls_x509_trust_list_iter_deinit(iter);
        if (r != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
                r = -ENOMEM;
                goto out;
        }
        gnutls_datum_t c = {.data = (unsigned char *)cert, .size = (unsigned)cert_size};
        gnutls_datum_t k = {.data = (unsigned char *)key, .size = (unsigned)key_size};
        r = gnutls_certificate_set_x509_key_mem2(t->own_credentials, &c, &k, GNUTLS_X509_FMT_PEM,
                                                 NULL, 0);
        if (r < 0) {
                set_file_error(ret_error, who, "cert", p->cert_file, gnutls_strerror(r));
                r = -EINVAL;
                goto out;
        }
        t->credentials = t->own_credentials;
        policy_add(policy, "client certificate", cert, cert_size);
        policy_add(policy, "client key file", p->key_file, strlen(p->key_file));
        r = 0;
out:
        if (key)
                explicit_bzero(key, key_size);
        return r;
}

/* A new client for `p` over `trust` (handed over, also on failure). */
static int client_new(const TlsClientPolicy *p, const char *who, TlsTrust *trust,
                      TlsClient **ret, char **ret_error)
{
        TlsClient *t = calloc(1, sizeof(*t));
        if (!t) {
                tls_trust_unref(trust);
                return -ENOMEM;
        }
        atomic_init(&t->n_ref, 1);
        t->trust = trust;
        t->credentials = tls_trust_credentials(trust);
        t->verify = p->verify;
        t->cache_max = TLS_CACHE_MAX;
        t->cert_file = p->cert_file ? strdup(p->cert_file) : NULL;
        t->key_file = p->key_file ? strdup(p->key_file) : NULL;
        int r = pthread_mutex_init(&t->cache_lock, NULL);
        if (r != 0) {
                tls_trust_unref(trust);
                free(t);
                return -r;
        }
        t->cache = hashmap_new();
        if (!t->cache || (p->cert_file && !t->cert_file) || (p->key_file && !t->key_file)) {
                tls_client_free(t);
                return -ENOMEM;
        }

        PolicyHash policy = {};
        r = gnutls_hash_init(&policy.h, GNUTLS_DIG_SHA256);
        if (r < 0) {
                tls_client_free(t);
                return -ENOMEM;
        }
        policy_add(&policy, "lbproxy upstream TLS policy", "2", 1);
        policy_add_int(&policy, "verify", t->verify);
        /* The system store's anchors, ca_file's path and what it held when read. */
        policy_add(&policy, "trust", tls_trust_digest(trust), 32);

        const char *err_pos = NULL;
        r = gnutls_priority_init2(&t->priority, CLIENT_PRIORITY, &err_pos,
                                  GNUTLS_PRIORITY_INIT_DEF_APPEND);
        if (r < 0) {
                t->priority = NULL;
                if (ret_error && asprintf(ret_error, "%s: TLS priorities: %s", who,
                                          gnutls_strerror(r)) < 0)
                        *ret_error = NULL;
                r = -EINVAL;
                goto fail;
        }
        policy_add_priority(&policy, t->priority);
        /* Who we say we are: sessions of one identity never resume as another. */
        if (p->cert_file) {
                r = load_client_certificate(t, p, who, &policy, ret_error);
                if (r < 0)
                        goto fail;
        }
        /* Not in the policy, as it is the same for every TlsClient: no ALPN is offered (an
         * upstream speaks HTTP/1.1). The server name, sent and verified, is per node and sits
         * beside the id in the keys. */

        unsigned char digest[32];
        static_assert(sizeof(t->policy_id) == 2 * sizeof(digest) + 1, "hex SHA-256 and a NUL");
        gnutls_hash_deinit(policy.h, digest);
        policy.h = NULL;
        if (policy.error < 0) {
                r = -EIO;
                goto fail;
        }
        hex_encode(digest, sizeof(digest), t->policy_id);

        *ret = t;
        return 0;

fail:
        if (policy.h)
                gnutls_hash_deinit(policy.h, NULL);
        tls_client_free(t);
        return r;
}

int tls_client_update(const TlsClientPolicy *p, TlsClient *old, bool recheck, TlsClient **ret,
                      char **ret_error)
{
        assert(p);
        assert(ret);

        if (ret_error)
                *ret_error = NULL;
        assert(!p->cert_file == !p->key_file);
        bool alike = old && old->verify == p->verify &&
                     streq_ptr(tls_trust_ca_file(old->trust), p->ca_file) &&
                     streq_ptr(old->cert_file, p->cert_file) &&
                     streq_ptr(old->key_file, p->key_file) && tls_trust_current(old->trust);
        if (alike && !recheck) {
                *ret = tls_client_ref(old);
                return 0;
        }
        _cleanup_free_ char *who = NULL;
        if (p->owner ? !(who = strdup(p->owner))
                     : asprintf(&who, "upstream '%s'", p->upstream) < 0) {
                who = NULL;
                return -ENOMEM;
        }
        TlsTrust *trust;
        int r = tls_trust_get(who, p->ca_file, &trust, ret_error);
        if (r < 0)
                return r;
        /* A client certificate is read again on a recheck: a new one makes a new client. */
        if (alike && trust == old->trust && !p->cert_file) {
                tls_trust_unref(trust);
                *ret = tls_client_ref(old);
                return 0;
        }
        return client_new(p, who, trust, ret, ret_error);
}

int tls_client_new(const TlsClientPolicy *p, TlsClient **ret, char **ret_error)
{
        return tls_client_update(p, NULL, true, ret, ret_error);
}

const char *tls_client_policy_id(const TlsClient *t)
{
        assert(t);
        return t->policy_id;
}

TlsClient *tls_client_ref(TlsClient *t)
{
        if (t)
                atomic_fetch_add_explicit(&t->n_ref, 1, memory_order_relaxed);
        return t;
}

static int free_entry(const char *key, size_t key_len, void *value, void *userdata)
{
        cache_entry_free(value);
        return 0;
}

TlsClient *tls_client_free(TlsClient *t)
{
        if (!t)
                return NULL;
        if (atomic_fetch_sub_explicit(&t->n_ref, 1, memory_order_acq_rel) > 1)
                return NULL;

        if (t->cache) {
                hashmap_foreach(t->cache, free_entry, NULL);
                hashmap_free(t->cache);
        }
        pthread_mutex_destroy(&t->cache_lock);
        if (t->priority)
                gnutls_priority_deinit(t->priority);
        if (t->own_credentials)
                gnutls_certificate_free_credentials(t->own_credentials);
        free(t->cert_file);
        free(t->key_file);
        tls_trust_unref(t->trust);
        free(t);
        return NULL;
}

/* ---- the session cache (callers hold cache_lock) ---- */

static void cache_unlink(TlsClient *t, TlsCacheEntry *e)
{
        if (e->newer)
                e->newer->older = e->older;
        else
                t->newest = e->older;
        if (e->older)
                e->older->newer = e->newer;
        else
                t->oldest = e->newer;
        e->newer = e->older = NULL;
        (void)hashmap_remove(t->cache, e->key, strlen(e->key));
}

static void cache_push_newest(TlsClient *t, TlsCacheEntry *e)
{
        e->newer = NULL;
        e->older = t->newest;
        if (t->newest)
                t->newest->newer = e;
        else
                t->oldest = e;
        t->newest = e;
}

int tls_client_cache_put(TlsClient *t, const char *key, const void *data, size_t size)
{
        assert(t);
        assert(key);

        if (size == 0)
                return -EINVAL;
        TlsCacheEntry *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->key = strdup(key);
        e->data = memdup(data, size);
        e->size = size;
        if (!e->key || !e->data) {
                cache_entry_free(e);
                return -ENOMEM;
        }

        pthread_mutex_lock(&t->cache_lock);
        size_t key_len = strlen(key);
        TlsCacheEntry *old = hashmap_get(t->cache, key, key_len);
        if (old)
                cache_unlink(t, old);
        int r = hashmap_put(t->cache, e->key, key_len, e);
        if (r >= 0) {
                cache_push_newest(t, e);
                e = NULL;
        }
        TlsCacheEntry *evicted = NULL;
        if (hashmap_size(t->cache) > t->cache_max) {
                evicted = t->oldest;
                cache_unlink(t, evicted);
        }
        pthread_mutex_unlock(&t->cache_lock);

        /* Freed outside the lock: nothing else needs to wait for it. */
        cache_entry_free(old);
        cache_entry_free(evicted);
        cache_entry_free(e);
        return r < 0 ? r : 0;
}

int tls_client_cache_take(TlsClient *t, const char *key, void **ret_data, size_t *ret_size)
{
        assert(t);
        assert(key);
        assert(ret_data);
        assert(ret_size);

        pthread_mutex_lock(&t->cache_lock);
        TlsCacheEntry *e = hashmap_get(t->cache, key, strlen(key));
        if (e)
                cache_unlink(t, e);
        pthread_mutex_unlock(&t->cache_lock);

        if (!e)
                return -ENOENT;
        *ret_data = TAKE_PTR(e->data);
        *ret_size = e->size;
        e->size = 0;
        cache_entry_free(e);
        return 0;
}

size_t tls_client_cache_size(TlsClient *t)
{
        pthread_mutex_lock(&t->cache_lock);
        size_t n = hashmap_size(t->cache);
        pthread_mutex_unlock(&t->cache_lock);
        return n;
}
