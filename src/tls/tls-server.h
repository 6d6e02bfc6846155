/* SPDX-License-Identifier: MIT */
#pragma once

/* TLS termination for `protocol: https` listeners, with GnuTLS. One TlsServer per listener and
 * model holds what every connection shares: the certificates (picked by the client's SNI, the
 * first one when there is none or no certificate has that name), the OCSP responses to staple,
 * the priorities (TLS 1.2 minimum, the server's cipher order), ALPN "http/1.1", and the session
 * ticket keys, rotated every ticket_rotate with the previous key still accepted for one more
 * period. The per-connection part is in tls-stream.c. */

#include "config/config.h"

typedef struct Stream Stream;
typedef struct TlsServer TlsServer;

/* Loads the certificates of an https listener. A key given as a relative name is read from
 * $CREDENTIALS_DIRECTORY (systemd's LoadCredential=). On failure *ret_error (if given) names
 * the file and says why, after the certificate's file:line:column:
 *   "lbproxy.yaml:7:9: listener 'https': certificates[0].key /etc/a.key: No such file or
 *   directory". */
int tls_server_new(const ConfigListener *cl, TlsServer **ret, char **ret_error);
/* Drops the owner's reference; streams attached keep the server until they are freed. */
TlsServer *tls_server_free(TlsServer *t);

/* Carries the session ticket keys of `old` (the same listener in the model being replaced) to
 * `t`, so that a reload does not cost every client its resumption. Before `t` is in use. */
void tls_server_carry_state(TlsServer *t, const TlsServer *old);

/* Puts a server TLS transport over `s`, an accepted connection not read from yet, and starts
 * the handshake (stream_start_handshake()). -ENOKEY when `t` is NULL (no certificates for the
 * listener in this model). */
int tls_server_attach(TlsServer *t, Stream *s);
