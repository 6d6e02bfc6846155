/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls-base64.h"

/* A copy of `len` bytes with a NUL after them, leaving out `skip` characters (GnuTLS's line
 * breaks), in malloc's memory rather than gnutls_malloc's. */
static char *copy_without(const unsigned char *p, size_t len, const char *skip, size_t *ret_len)
{
        char *s = malloc(len + 1);
        if (!s)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
                if (!skip || !strchr(skip, p[i]))
                        s[k++] = (char)p[i];
        s[k] = '\0';
        if (ret_len)
                *ret_len = k;
        return s;
}

int tls_base64_encode(const void *data, size_t len, char **ret)
{
        gnutls_datum_t in = { .data = (unsigned char *)data, .size = (unsigned)len }, out = {};
        if (len == 0) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        if (len > UINT32_MAX / 2 || gnutls_base64_encode2(&in, &out) < 0)
                return -ENOMEM;
        /* GnuTLS writes PEM's lines of 64 characters: one line here. */
        *ret = copy_without(out.data, out.size, "\r\n", NULL);
        gnutls_free(out.data);
        return *ret ? 0 : -ENOMEM;
}

int tls_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
        gnutls_datum_t in = { .data = (unsigned char *)s, .size = (unsigned)len }, out = {};
        if (len == 0) {
                *ret = strdup("");
                *ret_len = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (len > UINT32_MAX || memchr(s, '\n', len) || memchr(s, '\r', len))
                return -EINVAL; /* etcd's are one line: what has breaks is not its */
        int r = gnutls_base64_decode2(&in, &out);
        if (r == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        if (r < 0)
                return -EINVAL;
        *ret = copy_without(out.data, out.size, NULL, ret_len);
        gnutls_free(out.data);
        return *ret ? 0 : -ENOMEM;
}
