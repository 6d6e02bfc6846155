/* SPDX-License-Identifier: MIT */
#pragma once

/* Reads the server name (SNI) from the first bytes a TLS client sends, without terminating TLS:
 * for routing tls-passthrough connections. Pure: no allocation, no I/O. */

#include <stddef.h>
#include <sys/types.h>

/* The most a ClientHello may take before we give up on it (a record of 16 KiB and its header,
 * and a second one for a hello split over two records). */
#define TLS_SNI_MAX_INPUT (2 * (16384 + 5))
#define TLS_SNI_NAME_MAX 253

/* Looks at buf[0..len). Returns:
 *   > 0      the length of the server name written, lower-cased and NUL-terminated, to `name`
 *            (TLS_SNI_NAME_MAX + 1 bytes)
 *   0        a complete ClientHello without a (host_name) server name
 *   -EAGAIN  more bytes are needed
 *   -EBADMSG not a TLS ClientHello, malformed, or an invalid name */
ssize_t tls_sni_parse(const unsigned char *buf, size_t len, char *name);
