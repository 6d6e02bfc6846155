/* SPDX-License-Identifier: MIT */
/* Variables as nginx (and so APISIX) reads them: $uri is the path without the query (not
 * normalized here: lbproxy routes on the path as sent), $request_uri the target as sent, $host
 * the Host without its port, lower-cased, $arg_NAME the raw value of the query's first NAME
 * (names compared without case), $http_NAME a header, '_' standing for '-'. */

#include <strings.h>

#include "base/hashmap.h"
#include "proxy/balance-key.h"

static uint64_t hash_slice(HttpSlice s)
{
        return hashmap_hash(s.p, s.len);
}

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether a header's name is `name`, ignoring case, where `name` may say '_' for '-'. */
static bool header_name_is(HttpSlice header, const char *name, size_t len, bool underscores)
{
        if (header.len != len)
                return false;
        for (size_t i = 0; i < len; i++) {
                char want = lower(name[i]);
                if (underscores && want == '_')
                        want = '-';
                if (lower(header.p[i]) != want)
                        return false;
        }
        return true;
}

static bool find_header(const HttpHead *h, const char *name, bool underscores, HttpSlice *ret)
{
        size_t len = strlen(name);
        for (size_t i = 0; i < h->n_headers; i++)
                if (header_name_is(h->headers[i].name, name, len, underscores)) {
                        *ret = h->headers[i].value;
                        return true;
                }
        return false;
}

/* The first `name=value` of the query, by name without case; the value as sent. */
static bool find_arg(const HttpHead *h, const char *name, HttpSlice *ret)
{
        size_t len = strlen(name);
        const char *p = h->query.p, *end = p ? p + h->query.len : NULL;

        while (p && p < end) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                const char *stop = amp ? amp : end;
                if ((size_t)(stop - p) >= len && strncasecmp(p, name, len) == 0 &&
                    (p + len == stop || p[len] == '=')) {
                        const char *v = p + len < stop ? p + len + 1 : stop;
                        *ret = (HttpSlice){ v, (size_t)(stop - v) };
                        return true;
                }
                p = amp ? amp + 1 : NULL;
        }
        return false;
}

/* A cookie by name (case kept, as browsers send it) in any Cookie header. */
static bool find_cookie(const HttpHead *h, const char *name, HttpSlice *ret)
{
        size_t len = strlen(name);

        for (size_t i = 0; i < h->n_headers; i++) {
                if (!http_slice_case_eq(h->headers[i].name, "cookie"))
                        continue;
                const char *p = h->headers[i].value.p, *end = p + h->headers[i].value.len;
                while (p < end) {
                        while (p < end && (*p == ' ' || *p == '\t'))
                                p++;
                        const char *semi = memchr(p, ';', (size_t)(end - p));
                        const char *stop = semi ? semi : end;
                        if ((size_t)(stop - p) > len && memcmp(p, name, len) == 0 &&
                            p[len] == '=') {
                                *ret = (HttpSlice){ p + len + 1, (size_t)(stop - p - len - 1) };
                                return true;
                        }
                        p = semi ? semi + 1 : end;
                }
        }
        return false;
}

static uint64_t hash_host(HttpSlice host)
{
        char buf[256];
        size_t n = 0;

        /* "[::1]:80" keeps its brackets; a port goes. */
        for (size_t i = 0; i < host.len && n < sizeof(buf); i++) {
                if (host.p[i] == ':' && (host.p[0] != '[' || (i > 0 && host.p[i - 1] == ']')))
                        break;
                buf[n++] = lower(host.p[i]);
        }
        return hashmap_hash(buf, n);
}

uint64_t balance_key(const ConfigUpstream *cu, const HttpHead *h, const char *client_ip,
                     size_t client_ip_len)
{
        const char *key = cu->hash_key;
        HttpSlice v;

        if (h && key) {
                switch (cu->hash_on) {
                case HASH_ON_VARS:
                        if (streq(key, "uri"))
                                return hash_slice(h->path);
                        if (streq(key, "request_uri"))
                                return hash_slice(h->target);
                        if (streq(key, "host") && h->host.p)
                                return hash_host(h->host);
                        if (strncmp(key, "arg_", 4) == 0 && find_arg(h, key + 4, &v))
                                return hash_slice(v);
                        if (strncmp(key, "http_", 5) == 0 && find_header(h, key + 5, true, &v))
                                return hash_slice(v);
                        break;
                case HASH_ON_HEADER:
                        if (find_header(h, key, false, &v))
                                return hash_slice(v);
                        break;
                case HASH_ON_COOKIE:
                        if (find_cookie(h, key, &v))
                                return hash_slice(v);
                        break;
                default:
                        break;
                }
        }
        /* remote_addr, and every key the request lacks. */
        return hashmap_hash(client_ip, client_ip_len);
}
