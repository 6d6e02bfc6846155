/* SPDX-License-Identifier: MIT */
#pragma once

/* Base64 (RFC 4648, the standard alphabet with padding) through GnuTLS, as etcd's JSON gateway
 * writes keys and values: here, since only this layer may use GnuTLS. */

#include <stddef.h>

/* A NUL-terminated encoding of `len` bytes, on one line. 0, or -ENOMEM. */
int tls_base64_encode(const void *data, size_t len, char **ret);

/* Decodes `len` characters into a buffer with a NUL after the `*ret_len` bytes, so that a text
 * value reads as a string. 0, -EINVAL for what is not base64, -ENOMEM. */
int tls_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
