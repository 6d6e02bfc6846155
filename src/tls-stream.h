/* SPDX-License-Identifier: MIT */
#pragma once

/* Between tls.c (the TlsClient: credentials, priorities, session cache) and tls-stream.c (the
 * GnuTLS transport under a Stream). Not for the rest of the daemon, which sees tls.h only; the
 * unit test uses it to reach the session cache. */

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hashmap.h"
#include "stream.h"
#include "tls.h"

/* Resumption data kept per TlsClient: one entry per cache key, the oldest dropped first. */
#define TLS_CACHE_MAX 1024

typedef struct TlsCacheEntry TlsCacheEntry;

struct TlsClient {
        atomic_uint n_ref; /* the upstream's, plus one per attached stream */
        gnutls_certificate_credentials_t credentials;
        gnutls_priority_t priority;
        bool verify;

        /* Worker threads share the cache: every access holds the lock. */
        pthread_mutex_t cache_lock;
        Hashmap *cache;                   /* key → TlsCacheEntry */
        TlsCacheEntry *newest, *oldest; /* insertion order, for eviction */
        size_t cache_max;
};

TlsClient *tls_client_ref(TlsClient *t);

/* Stores (or replaces) the resumption data for `key`; the data is copied. */
int tls_client_cache_put(TlsClient *t, const char *key, const void *data, size_t size);
/* Removes the data for `key` and hands it over (free() it): a TLS 1.3 ticket is good for one
 * connection. -ENOENT when there is none. */
int tls_client_cache_take(TlsClient *t, const char *key, void **ret_data, size_t *ret_size);
size_t tls_client_cache_size(TlsClient *t);

extern const StreamTransport tls_transport;
