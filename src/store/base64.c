/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t len, char **ret)
{
        const uint8_t *p = data;
        char *out, *o;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return -ENOMEM;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        o = out;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                size_t n = len - i;

                if (n > 1)
                        v |= (uint32_t)p[i + 1] << 8;
                if (n > 2)
                        v |= p[i + 2];
                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = n > 1 ? alphabet[(v >> 6) & 63] : '=';
                *o++ = n > 2 ? alphabet[v & 63] : '=';
        }
        *o = 0;
        *ret = out;
        return 0;
}

static int value_of(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
        char *out;
        size_t n = 0;

        if (len % 4 != 0)
                return -EINVAL;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                size_t pad = 0;

                for (size_t k = 0; k < 4; k++) {
                        /* '=' only as the last one or two characters of the last group. */
                        if (s[i + k] == '=' && last && k >= 2 && (k == 3 || s[i + 3] == '=')) {
                                v[k] = 0;
                                pad++;
                                continue;
                        }
                        v[k] = value_of(s[i + k]);
                        if (v[k] < 0 || pad > 0) {
                                free(out);
                                return -EINVAL;
                        }
                }
                uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                             (uint32_t)v[3];
                out[n++] = (char)(w >> 16);
                if (pad < 2)
                        out[n++] = (char)(w >> 8 & 0xff);
                if (pad < 1)
                        out[n++] = (char)(w & 0xff);
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
}
