/* SPDX-License-Identifier: MIT */
/* What TlsClients trust, loaded once per file and content and shared: the system store (about
 * 30 ms to parse, the heavy part of building an https upstream) with an upstream's ca_file on
 * top. A TlsTrust is found by the ca_file's path and the SHA-256 of what it holds, so a hundred
 * upstreams with the same ca_file (or none) share one, and a reload that finds the file as it
 * was builds nothing. Entries go when their last TlsClient does; the streams of a retired
 * client keep it, so a TlsTrust may go on any thread: the cache is under a lock. */

#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <pthread.h>

#include "base/hashmap.h"
#include "tls/tls-stream.h"

/* A CA bundle is a few hundred kilobytes at most; a bigger file is a mistake. */
#define CA_FILE_MAX (16 * 1024 * 1024)
#define DIGEST_SIZE 32

struct TlsTrust {
        unsigned n_ref; /* under trust_lock */
        bool cached;    /* findable by its key; under trust_lock */
        char *key;      /* ca_file's path (empty: none), NUL, the content's SHA-256 */
        size_t key_len;
        gnutls_certificate_credentials_t credentials;
        char *ca_file;
        unsigned char system_digest[DIGEST_SIZE]; /* the system store's anchors when read */
        unsigned char digest[DIGEST_SIZE]; /* all of it: system store, ca_file and content */
};

static pthread_mutex_t trust_lock = PTHREAD_MUTEX_INITIALIZER;
static Hashmap *trusts; /* key -> TlsTrust; NULL when empty */

static void set_error(char **ret_error, const char *who, const char *path, const char *why)
{
        if (ret_error && asprintf(ret_error, "%s: tls.ca_file %s: %s", who, path, why) < 0)
                *ret_error = NULL;
}

/* The SHA-256 of the anchors `cred` holds (each DER, in the store's order), to see whether the
 * system store changed: its path is GnuTLS's business, its content is not. */
static int anchors_digest(gnutls_certificate_credentials_t cred, unsigned char ret[DIGEST_SIZE])
{
        gnutls_x509_trust_list_t list;
        gnutls_x509_trust_list_iter_t iter = NULL;
        gnutls_x509_crt_t crt;
        gnutls_hash_hd_t h;
        int r;

        gnutls_certificate_get_trust_list(cred, &list);
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -ENOMEM;
        while ((r = gnutls_x509_trust_list_iter_get_ca(list, &iter, &crt)) >= 0) {
                gnutls_datum_t der;
                r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
                gnutls_x509_crt_deinit(crt);
                if (r < 0)
                        break;
                uint64_t len = der.size;
                r = gnutls_hash(h, &len, sizeof(len));
                if (r >= 0)
                        r = gnutls_hash(h, der.data, der.size);
                gnutls_free(der.data);
                if (r < 0)
                        break;
        }
        gnutls_x509_trust_list_iter_deinit(iter);
        gnutls_hash_deinit(h, ret);
        return r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ? 0 : -EIO;
}

/* The system store, in new credentials. One that is missing (a minimal container) loads
 * nothing, while ca_file may have the anchor that matters; a handshake that finds no anchor
 * says "issuer is unknown" anyway. */
static int system_store(gnutls_certificate_credentials_t *ret, unsigned char digest[DIGEST_SIZE])
{
        gnutls_certificate_credentials_t cred;
        if (gnutls_certificate_allocate_credentials(&cred) < 0)
                return -ENOMEM;
        (void)gnutls_certificate_set_x509_system_trust(cred);
        int r = anchors_digest(cred, digest);
        if (r < 0) {
                gnutls_certificate_free_credentials(cred);
                return r;
        }
        *ret = cred;
        return 0;
}

static TlsTrust *trust_free(TlsTrust *t)
{
        if (t->credentials)
                gnutls_certificate_free_credentials(t->credentials);
        free(t->ca_file);
        free(t->key);
        free(t);
        return NULL;
}

/* A new TlsTrust over the system store and `pem` (ca_file's content, when there is one). */
static int trust_new(const char *who, const char *ca_file, const char *pem, size_t size,
                     const unsigned char ca_digest[DIGEST_SIZE], TlsTrust **ret,
                     char **ret_error)
{
        TlsTrust *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->n_ref = 1;
        if (ca_file && !(t->ca_file = strdup(ca_file)))
                return trust_free(t), -ENOMEM;
        int r = system_store(&t->credentials, t->system_digest);
        if (r < 0)
                return trust_free(t), r;
        if (ca_file) {
                gnutls_datum_t d = { .data = (unsigned char *)pem, .size = (unsigned)size };
                r = gnutls_certificate_set_x509_trust_mem(t->credentials, &d,
                                                          GNUTLS_X509_FMT_PEM);
                /* A file that holds no certificate is an error: a typo there must not quietly
                 * leave only the system store. */
                if (r <= 0) {
                        set_error(ret_error, who, ca_file,
                                  r < 0 ? gnutls_strerror(r) : "no PEM certificate found");
                        return trust_free(t), -EINVAL;
                }
        }

        /* What decides a handshake's verdict, for the policy id: the system store as read, the
         * ca_file's name and what it held (the same path with other anchors in it, as after a
         * renewal and a reload, is another trust). */
        gnutls_hash_hd_t h;
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return trust_free(t), -ENOMEM;
        r = gnutls_hash(h, t->system_digest, DIGEST_SIZE);
        if (r >= 0 && ca_file)
                r = gnutls_hash(h, ca_file, strlen(ca_file) + 1);
        if (r >= 0 && ca_file)
                r = gnutls_hash(h, ca_digest, DIGEST_SIZE);
        gnutls_hash_deinit(h, t->digest);
        if (r < 0)
                return trust_free(t), -EIO;
        *ret = t;
        return 0;
}

/* The cache key: the path (empty for none), NUL, the content's SHA-256. */
static char *trust_key(const char *ca_file, const unsigned char ca_digest[DIGEST_SIZE],
                       size_t *ret_len)
{
        size_t n = ca_file ? strlen(ca_file) : 0;
        char *k = malloc(n + 1 + DIGEST_SIZE);
        if (!k)
                return NULL;
        memcpy(k, ca_file ? ca_file : "", n + 1);
        memcpy(k + n + 1, ca_digest, DIGEST_SIZE);
        *ret_len = n + 1 + DIGEST_SIZE;
        return k;
}

int tls_trust_get(const char *who, const char *ca_file, TlsTrust **ret, char **ret_error)
{
        _cleanup_free_ char *pem = NULL;
        size_t size = 0;
        unsigned char ca_digest[DIGEST_SIZE] = {};

        if (ca_file) {
                int r = tls_read_file(ca_file, CA_FILE_MAX, &pem, &size);
                if (r < 0) {
                        set_error(ret_error, who, ca_file,
                                  r == -EBADFD ? "not a regular file" : strerror(-r));
                        return r;
                }
                if (gnutls_hash_fast(GNUTLS_DIG_SHA256, pem, size, ca_digest) < 0)
                        return -EIO;
        }
        size_t key_len;
        _cleanup_free_ char *key = trust_key(ca_file, ca_digest, &key_len);
        if (!key)
                return -ENOMEM;

        pthread_mutex_lock(&trust_lock);
        TlsTrust *t = trusts ? hashmap_get(trusts, key, key_len) : NULL;
        if (t)
                t->n_ref++;
        pthread_mutex_unlock(&trust_lock);
        if (t) {
                *ret = t;
                return 0;
        }

        /* Built outside the lock: a worker dropping another one need not wait 30 ms. */
        int r = trust_new(who, ca_file, pem, size, ca_digest, &t, ret_error);
        if (r < 0)
                return r;
        t->key = TAKE_PTR(key);
        t->key_len = key_len;
        pthread_mutex_lock(&trust_lock);
        if (!trusts)
                trusts = hashmap_new();
        r = trusts ? hashmap_put(trusts, t->key, t->key_len, t) : -ENOMEM;
        t->cached = r >= 0;
        pthread_mutex_unlock(&trust_lock);
        /* Not cached (no memory): still good, only not shared. */
        *ret = t;
        return 0;
}

TlsTrust *tls_trust_ref(TlsTrust *t)
{
        pthread_mutex_lock(&trust_lock);
        t->n_ref++;
        pthread_mutex_unlock(&trust_lock);
        return t;
}

/* Forgets `t` in the cache; under the lock. */
static void uncache(TlsTrust *t)
{
        if (!t->cached)
                return;
        (void)hashmap_remove(trusts, t->key, t->key_len);
        t->cached = false;
        if (hashmap_size(trusts) == 0)
                trusts = hashmap_free(trusts);
}

TlsTrust *tls_trust_unref(TlsTrust *t)
{
        if (!t)
                return NULL;
        pthread_mutex_lock(&trust_lock);
        assert(t->n_ref > 0);
        bool last = --t->n_ref == 0;
        if (last)
                uncache(t);
        pthread_mutex_unlock(&trust_lock);
        if (last)
                trust_free(t);
        return NULL;
}

bool tls_trust_current(TlsTrust *t)
{
        pthread_mutex_lock(&trust_lock);
        bool cached = t->cached;
        pthread_mutex_unlock(&trust_lock);
        return cached;
}

gnutls_certificate_credentials_t tls_trust_credentials(const TlsTrust *t)
{
        return t->credentials;
}

const unsigned char *tls_trust_digest(const TlsTrust *t)
{
        return t->digest;
}

const char *tls_trust_ca_file(const TlsTrust *t)
{
        return t->ca_file;
}

typedef struct StaleWalk {
        const unsigned char *digest; /* the system store now */
        TlsTrust **cursor;
} StaleWalk;

static int collect_stale(const char *key, size_t key_len, void *value, void *userdata)
{
        StaleWalk *w = userdata;
        TlsTrust *t = value;
        if (memcmp(t->system_digest, w->digest, DIGEST_SIZE) != 0)
                *w->cursor++ = t;
        return 0;
}

int tls_trust_check_system(void)
{
        pthread_mutex_lock(&trust_lock);
        bool any = trusts != NULL;
        pthread_mutex_unlock(&trust_lock);
        if (!any)
                return 0; /* nothing read yet: the next one reads it as it is */

        gnutls_certificate_credentials_t cred;
        unsigned char digest[DIGEST_SIZE];
        int r = system_store(&cred, digest);
        if (r < 0)
                return r;
        gnutls_certificate_free_credentials(cred);

        bool changed = false;
        pthread_mutex_lock(&trust_lock);
        size_t n = trusts ? hashmap_size(trusts) : 0;
        TlsTrust **l = calloc(n + 1, sizeof(TlsTrust *));
        if (l && trusts) {
                /* Collected first: the map is not changed while it is walked. */
                StaleWalk w = { .digest = digest, .cursor = l };
                hashmap_foreach(trusts, collect_stale, &w);
                for (TlsTrust **p = l; p < w.cursor; p++)
                        uncache(*p);
                changed = w.cursor > l;
        }
        pthread_mutex_unlock(&trust_lock);
        free(l);
        return !l ? -ENOMEM : changed;
}
