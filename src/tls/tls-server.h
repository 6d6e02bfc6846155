/* SPDX-License-Identifier: MIT */
#pragma once

/* TLS termination for `protocol: https` listeners, with GnuTLS. One TlsServer per listener and
 * model holds what every connection shares: the certificates (picked by the client's SNI, the
 * first one when there is none or no certificate has that name), the OCSP responses to staple,
 * the priorities (TLS 1.2 minimum, the server's cipher order), ALPN "http/1.1", and the session
 * ticket keys, rotated every ticket_rotate with the previous key still accepted for one more
 * period. The per-connection part is in tls-stream.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef struct Stream Stream;
typedef struct TlsServer TlsServer;

/* A certificate a listener presents, with its key. */
typedef struct TlsCertificateFiles {
        const char *cert_file; /* PEM chain */
        const char *key_file;  /* PEM key; a relative name is read from $CREDENTIALS_DIRECTORY */
        const char *ocsp_file; /* DER OCSP response to staple, or NULL */
        SourceMark mark;       /* where it was configured, for messages */
} TlsCertificateFiles;

/* What an https listener serves: its certificates (picked by SNI, the first is the default) and
 * how long a session ticket key lives. */
typedef struct TlsServerOptions {
        const char *listener; /* its name, for messages */
        SourceMark mark;
        const TlsCertificateFiles *certificates;
        size_t n_certificates;
        uint64_t ticket_rotate_usec; /* 0: 12 hours */
} TlsServerOptions;

/* Loads the certificates of an https listener. A key given as a relative name is read from
 * $CREDENTIALS_DIRECTORY (systemd's LoadCredential=). On failure *ret_error (if given) names
 * the file and says why, after the certificate's file:line:column:
 *   "lbproxy.yaml:7:9: listener 'https': certificates[0].key /etc/a.key: No such file or
 *   directory". */
int tls_server_new(const TlsServerOptions *o, TlsServer **ret, char **ret_error);
/* Drops the owner's reference; streams attached keep the server until they are freed. */
TlsServer *tls_server_free(TlsServer *t);

/* Whether the files of `o` (the options `t` was built with) still hold what `t` loaded: read
 * again and compared, so that a reload that finds them as they were keeps `t`. */
bool tls_server_files_unchanged(const TlsServer *t, const TlsServerOptions *o);
/* Another reference on `t`, for a model that keeps it. */
TlsServer *tls_server_ref(TlsServer *t);

/* Carries the session ticket keys of `old` (the same listener in the model being replaced) to
 * `t`, so that a reload does not cost every client its resumption. Before `t` is in use. */
void tls_server_carry_state(TlsServer *t, const TlsServer *old);

/* Puts a server TLS transport over `s`, an accepted connection not read from yet, and starts
 * the handshake (stream_start_handshake()). -ENOKEY when `t` is NULL (no certificates for the
 * listener in this model). */
int tls_server_attach(TlsServer *t, Stream *s);
