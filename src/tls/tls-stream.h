/* SPDX-License-Identifier: MIT */
#pragma once

/* Between tls.c (the TlsClient: credentials, priorities, session cache), tls-server.c (the
 * TlsServer: certificates, ticket keys) and tls-stream.c (the GnuTLS transport under a Stream,
 * both sides). Not for the rest of the daemon, which sees tls.h and tls-server.h only; the unit
 * test uses it to reach the session cache and the ticket keys. */

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/hashmap.h"
#include "net/stream.h"
#include "tls/tls-server.h"
#include "tls/tls.h"

/* Resumption data kept per TlsClient: one entry per cache key, the oldest dropped first. */
#define TLS_CACHE_MAX 1024

typedef struct TlsCacheEntry TlsCacheEntry;

/* What a TlsClient trusts (tls-trust.c): the system store and a ca_file, shared by every client
 * with the same file and content. */
typedef struct TlsTrust TlsTrust;

/* The TlsTrust of ca_file (NULL: the system store alone) as it is now: the file is read, and a
 * TlsTrust loaded from the same path and content is shared, else one is built. `who` ("upstream
 * 'u'") begins *ret_error. */
int tls_trust_get(const char *who, const char *ca_file, TlsTrust **ret, char **ret_error);
TlsTrust *tls_trust_ref(TlsTrust *t);
TlsTrust *tls_trust_unref(TlsTrust *t);
/* Whether tls_trust_get() would still give `t` for its file as it was (not whether the file
 * changed since: that needs reading it). False once the system store changed under it. */
bool tls_trust_current(TlsTrust *t);
gnutls_certificate_credentials_t tls_trust_credentials(const TlsTrust *t);
/* A SHA-256 over the system store's anchors, the ca_file's path and its content. */
const unsigned char *tls_trust_digest(const TlsTrust *t);
const char *tls_trust_ca_file(const TlsTrust *t);

struct TlsClient {
        atomic_uint n_ref; /* the upstream's, plus one per attached stream */
        TlsTrust *trust;
        gnutls_certificate_credentials_t credentials; /* the trust's, or own_credentials */
        /* With a client certificate: the trust's anchors and the certificate, the client's
         * alone (credentials hold one identity). */
        gnutls_certificate_credentials_t own_credentials;
        char *cert_file, *key_file;
        gnutls_priority_t priority;
        bool verify;
        char policy_id[TLS_POLICY_ID_LEN + 1]; /* see tls_client_policy_id() */

        /* Worker threads share the cache: every access holds the lock. */
        pthread_mutex_t cache_lock;
        Hashmap *cache;                   /* key → TlsCacheEntry */
        TlsCacheEntry *newest, *oldest; /* insertion order, for eviction */
        size_t cache_max;
};

/* Stores (or replaces) the resumption data for `key`; the data is copied. */
int tls_client_cache_put(TlsClient *t, const char *key, const void *data, size_t size);
/* Removes the data for `key` and hands it over (free() it): a TLS 1.3 ticket is good for one
 * connection. -ENOENT when there is none. */
int tls_client_cache_take(TlsClient *t, const char *key, void **ret_data, size_t *ret_size);
size_t tls_client_cache_size(TlsClient *t);

/* Reads a whole regular file of at most `max` bytes: 0, or a negative errno to say why not
 * (-EISDIR, -EBADFD for a file that is not regular, -EFBIG). */
int tls_read_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* ---- the server side ---- */

/* GnuTLS's session ticket encryption key (STEK), and the key name a ticket starts with. */
#define TLS_TICKET_KEY_SIZE 64
#define TLS_TICKET_NAME_SIZE 16
/* Names a key was seen to issue tickets under (GnuTLS derives one per time step). */
#define TLS_TICKET_NAMES_MAX 4

typedef struct TlsTicketKey {
        uint64_t id; /* 0: no key */
        unsigned char key[TLS_TICKET_KEY_SIZE];
        unsigned char names[TLS_TICKET_NAMES_MAX][TLS_TICKET_NAME_SIZE];
        unsigned n_names, next_name;
} TlsTicketKey;

/* The ticket keys of one listener: shared by its TlsServers across reloads (carried over like
 * balancer state) and by every worker thread, under the lock. */
typedef struct TlsTickets {
        atomic_uint n_ref;
        pthread_mutex_t lock;
        uint64_t rotated_usec; /* CLOCK_BOOTTIME when `current` was made */
        uint64_t last_id;
        TlsTicketKey current, previous;
} TlsTickets;

int tls_tickets_new(uint64_t now_usec, TlsTickets **ret);
TlsTickets *tls_tickets_ref(TlsTickets *t);
TlsTickets *tls_tickets_unref(TlsTickets *t);
/* The key a new session uses at `now`: first `current` is rotated when it is `period` old (it
 * becomes `previous`, whose tickets stay good for one more period). `name` is the key name of a
 * ticket the client offers, or NULL: when `previous` issued it, `previous` is returned, so that
 * the ticket resumes. The key is copied to ret_key; the return value is its id. */
uint64_t tls_tickets_pick(TlsTickets *t, uint64_t now_usec, uint64_t period_usec,
                          const unsigned char *name, unsigned char ret_key[TLS_TICKET_KEY_SIZE]);
/* Key `id` issued a ticket under `name`. */
void tls_tickets_learn(TlsTickets *t, uint64_t id, const unsigned char *name);

/* Where the key name of the ticket a ClientHello offers is (TLS 1.2 session_ticket, or the first
 * TLS 1.3 pre_shared_key identity). `p` is the message body. Returns 1 and sets *ret_name, 0
 * when none is offered, -EBADMSG when the message is malformed. */
int tls_client_hello_ticket_name(const unsigned char *p, size_t n, const unsigned char **ret_name);
/* The same for a NewSessionTicket message body the server sends. */
int tls_new_session_ticket_name(const unsigned char *p, size_t n, bool tls13,
                                const unsigned char **ret_name);

struct TlsServer {
        atomic_uint n_ref; /* the model's, plus one per attached stream */
        gnutls_certificate_credentials_t credentials;
        gnutls_priority_t priority;
        TlsTickets *tickets;
        uint64_t ticket_rotate_usec;
        unsigned ticket_lifetime_sec; /* what tickets say they are good for */
        unsigned char files_digest[32]; /* what its files held (tls_server_files_unchanged) */
};

extern const StreamTransport tls_transport;
