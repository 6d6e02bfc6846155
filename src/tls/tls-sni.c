/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tls/tls-sni.h"

#define RECORD_HANDSHAKE 22
#define HANDSHAKE_CLIENT_HELLO 1
#define EXTENSION_SERVER_NAME 0
#define NAME_TYPE_HOST 0

/* A cursor over bytes that fails (sets bad) instead of reading past the end. */
typedef struct Reader {
        const unsigned char *p;
        size_t left;
        int bad;
} Reader;

static unsigned get(Reader *r, size_t n)
{
        unsigned v = 0;
        if (r->bad || r->left < n) {
                r->bad = 1;
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                v = v << 8 | r->p[i];
        r->p += n;
        r->left -= n;
        return v;
}

static Reader sub(Reader *r, size_t n)
{
        Reader s = { r->p, n, r->bad || r->left < n };
        if (s.bad) {
                r->bad = 1;
                s.left = 0;
        } else {
                r->p += n;
                r->left -= n;
        }
        return s;
}

static int valid_name_char(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_';
}

/* Joins the payloads of the handshake records at the start of buf into `out`. Returns the
 * handshake bytes gathered once the ClientHello is whole, -EAGAIN, or -EBADMSG. */
static ssize_t gather(const unsigned char *buf, size_t len, unsigned char *out, size_t out_size)
{
        size_t used = 0, have = 0;

        for (int records = 0; records < 2; records++) {
                if (len - used < 5)
                        return -EAGAIN;
                const unsigned char *h = buf + used;
                if (h[0] != RECORD_HANDSHAKE || h[1] != 3)
                        return -EBADMSG;
                size_t n = (size_t)h[3] << 8 | h[4];
                if (n == 0 || n > 16384 + 2048)
                        return -EBADMSG;
                if (len - used - 5 < n)
                        return -EAGAIN;
                if (have + n > out_size)
                        return -EBADMSG;
                memcpy(out + have, h + 5, n);
                have += n;
                used += 5 + n;

                if (have >= 4) {
                        if (out[0] != HANDSHAKE_CLIENT_HELLO)
                                return -EBADMSG;
                        size_t body = (size_t)out[1] << 16 | (size_t)out[2] << 8 | out[3];
                        if (body + 4 > out_size)
                                return -EBADMSG;
                        if (have >= body + 4)
                                return (ssize_t)(body + 4);
                }
        }
        return -EBADMSG; /* a hello over more than two records is not worth waiting for */
}

ssize_t tls_sni_parse(const unsigned char *buf, size_t len, char *name)
{
        unsigned char hs[TLS_SNI_MAX_INPUT];
        ssize_t n = gather(buf, len, hs, sizeof(hs));
        if (n < 0)
                return n;

        Reader r = { hs + 4, (size_t)n - 4, 0 };
        get(&r, 2);                  /* client_version */
        sub(&r, 32);                 /* random */
        sub(&r, get(&r, 1));         /* session_id */
        sub(&r, get(&r, 2));         /* cipher_suites */
        sub(&r, get(&r, 1));         /* compression_methods */
        if (r.bad)
                return -EBADMSG;
        if (r.left == 0)
                return 0; /* no extensions at all */

        Reader ext = sub(&r, get(&r, 2));
        while (!ext.bad && ext.left > 0) {
                unsigned type = get(&ext, 2);
                Reader data = sub(&ext, get(&ext, 2));
                if (ext.bad)
                        break;
                if (type != EXTENSION_SERVER_NAME)
                        continue;

                Reader list = sub(&data, get(&data, 2));
                while (!list.bad && list.left > 0) {
                        unsigned name_type = get(&list, 1);
                        size_t len_name = get(&list, 2);
                        Reader host = sub(&list, len_name);
                        if (list.bad)
                                return -EBADMSG;
                        if (name_type != NAME_TYPE_HOST)
                                continue;
                        if (len_name == 0 || len_name > TLS_SNI_NAME_MAX)
                                return -EBADMSG;
                        for (size_t i = 0; i < len_name; i++) {
                                unsigned char c = host.p[i];
                                if (!valid_name_char(c))
                                        return -EBADMSG;
                                name[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                        }
                        name[len_name] = 0;
                        return (ssize_t)len_name;
                }
                return -EBADMSG;
        }
        return ext.bad || r.bad ? -EBADMSG : 0;
}
