/* SPDX-License-Identifier: MIT */
#pragma once

/* TLS towards upstreams with GnuTLS: one TlsClient per upstream holds the credentials (system
 * trust plus ca_file, loaded once per file and content and shared by the clients that trust the
 * same), the priorities (TLS 1.2 minimum) and the verification policy, and a session cache keyed
 * by policy id, SNI and address so a new connection resumes instead of paying a full
 * handshake. */

#include <stdbool.h>

typedef struct Stream Stream;
typedef struct TlsClient TlsClient;

/* What a TlsClient trusts and checks: an https upstream's tls: block, with the top-level
 * defaults merged in. */
typedef struct TlsClientPolicy {
        const char *upstream; /* its name, for messages ("upstream 'NAME': ...") */
        const char *owner;    /* or what messages begin with instead ("store.etcd"), or NULL */
        const char *ca_file;  /* trust anchors beside the system store, or NULL */
        bool verify;          /* the certificate and the name */
        /* A client certificate (PEM, the chain) and its key, sent when the server asks (mutual
         * TLS); both or neither. Its identity is part of the policy id. */
        const char *cert_file;
        const char *key_file;
} TlsClientPolicy;

/* Builds the TLS client of an upstream with scheme https. On failure *ret_error (if given) says
 * why, naming the file. */
int tls_client_new(const TlsClientPolicy *p, TlsClient **ret, char **ret_error);
/* The TLS client for policy `p` where `old` (may be NULL) served before: `old` itself (a new
 * reference: its session cache goes on) when it was built for the same policy and its trust is
 * current, else a new one as tls_client_new() builds it. With `recheck` (a reload), ca_file is
 * read again, and `old` serves on only when the file holds what it held. */
int tls_client_update(const TlsClientPolicy *p, TlsClient *old, bool recheck, TlsClient **ret,
                      char **ret_error);
/* A reload looks at the system trust store once: when its anchors changed since a TlsClient's
 * trust read them, tls_client_update() builds a new client for it. Returns 1 when the store
 * changed, 0 when not (or when nothing has read it yet), or a negative errno. */
int tls_trust_check_system(void);
/* The policy id: a hex SHA-256 over everything that decides what a handshake accepts and who it
 * says we are (verify, the system trust, ca_file's path and content, the priorities as resolved,
 * the client certificate and key). Two TlsClients with
 * the same id accept the same servers, so their connections and sessions may serve each other,
 * across a reload too; with different ids they never may. It keys pooled connections and cached
 * sessions, beside the server name and the address. */
#define TLS_POLICY_ID_LEN 64
const char *tls_client_policy_id(const TlsClient *t);

TlsClient *tls_client_ref(TlsClient *t);
/* Drops the owner's reference. Streams attached keep the client alive until they are freed, so
 * an upstream retired by a reload may go while its connections idle in the pool. */
TlsClient *tls_client_free(TlsClient *t);

/* Puts a client TLS transport over `s` before it connects: SNI and the verified name are
 * `server_name` (not sent as SNI when it is an IP literal), and resumption data is looked up and
 * stored under `cache_key`. The handshake runs after the TCP connect; the stream's on_connect
 * reports its end: 0, -EKEYREJECTED when the certificate was refused, -ECONNRESET when the
 * peer went away, -EPROTO for any other TLS failure; stream_error_detail() says more. */
int tls_client_attach(TlsClient *t, Stream *s, const char *server_name, const char *cache_key);

/* Whether the stream's TLS session was resumed, on either side (false for plain streams and
 * before the end of the handshake). */
bool tls_stream_resumed(Stream *s);
/* Whether the stream's TLS handshake succeeded (false for plain streams). */
bool tls_stream_handshake_done(Stream *s);
