/* SPDX-License-Identifier: MIT */
#pragma once

/* Base64 (RFC 4648, the standard alphabet with padding), as etcd's JSON gateway writes keys and
 * values. Here rather than through GnuTLS, the one library with it, which only src/tls may use
 * and whose encoder breaks lines every 64 characters; json-c and libevent have none. */

#include <stddef.h>

/* A NUL-terminated encoding of `len` bytes. 0, or -ENOMEM. */
int base64_encode(const void *data, size_t len, char **ret);

/* Decodes `len` characters (padding required, no whitespace) into a buffer with a NUL after the
 * `*ret_len` bytes, so that a text value reads as a string. 0, -EINVAL for what is not base64,
 * -ENOMEM. */
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
