/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http/http1.h"

/* A client that sends a request body followed by a stray CRLF (old browsers did, after POST)
 * must not be refused, so a few empty lines before the request line are skipped (RFC 9112
 * 2.2). More than this is not a confused client. */
#define MAX_LEADING_EMPTY_LINES 4

/* Content-Length and chunk sizes above this are refused, so callers can hold them in off_t. */
#define MAX_BODY_LENGTH ((uint64_t)INT64_MAX)

/* Character classes, one table lookup per byte instead of a chain of comparisons. */
enum {
        C_TCHAR = 1u << 0,   /* token (RFC 9110 5.6.2) */
        C_VALUE = 1u << 1,   /* field-vchar, SP, HTAB, obs-text */
        C_TARGET = 1u << 2,  /* request-target: visible ASCII except '#' */
        C_REGNAME = 1u << 3, /* reg-name: unreserved, sub-delims, '%' */
        C_HEX = 1u << 4,
        C_DIGIT = 1u << 5,
};

#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_TCHAR(c)                                                                                \
        (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||     \
         (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||      \
         (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_VALUE(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define IS_TARGET(c) ((c) > 0x20 && (c) < 0x7f && (c) != '#')
#define IS_REGNAME(c)                                                                              \
        (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||     \
         (c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||      \
         (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' || (c) == '%')

#define CLASS(c)                                                                                   \
        ((IS_TCHAR(c) ? C_TCHAR : 0) | (IS_VALUE(c) ? C_VALUE : 0) |                               \
         (IS_TARGET(c) ? C_TARGET : 0) | (IS_REGNAME(c) ? C_REGNAME : 0) |                         \
         (IS_HEX(c) ? C_HEX : 0) | (IS_DIGIT(c) ? C_DIGIT : 0))
#define ROW(b)                                                                                     \
        CLASS((b) + 0), CLASS((b) + 1), CLASS((b) + 2), CLASS((b) + 3), CLASS((b) + 4),            \
                CLASS((b) + 5), CLASS((b) + 6), CLASS((b) + 7), CLASS((b) + 8), CLASS((b) + 9),    \
                CLASS((b) + 10), CLASS((b) + 11), CLASS((b) + 12), CLASS((b) + 13),                \
                CLASS((b) + 14), CLASS((b) + 15)

static const uint8_t char_class[256] = {
        ROW(0x00), ROW(0x10), ROW(0x20), ROW(0x30), ROW(0x40), ROW(0x50), ROW(0x60), ROW(0x70),
        ROW(0x80), ROW(0x90), ROW(0xa0), ROW(0xb0), ROW(0xc0), ROW(0xd0), ROW(0xe0), ROW(0xf0),
};

static inline bool is_class(char c, unsigned cls)
{
        return char_class[(uint8_t)c] & cls;
}

static inline bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

/* Field values and request-targets are most of a head's bytes, so they are checked 16 at a time
 * where the CPU allows; the scalar loops finish the last bytes. Each returns the first byte at or
 * after p that does not belong, reading no further than e. */
static inline const char *skip_value(const char *p, const char *e)
{
#ifdef __SSE2__
        const __m128i low = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'),
                      del = _mm_set1_epi8(0x7f), zero = _mm_setzero_si128();
        while (e - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* signed: 0x20..0x7f are > 0x1f, obs-text 0x80..0xff is < 0 */
                __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpgt_epi8(v, low),
                                                       _mm_cmplt_epi8(v, zero)),
                                          _mm_cmpeq_epi8(v, tab));
                ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del), ok);
                unsigned bad = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
                if (bad)
                        return p + __builtin_ctz(bad);
                p += 16;
        }
#endif
        while (p < e && is_class(*p, C_VALUE))
                p++;
        return p;
}

static inline const char *skip_target(const char *p, const char *e)
{
#ifdef __SSE2__
        const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f),
                      hash = _mm_set1_epi8('#');
        while (e - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* signed: bytes >= 0x80 are < 0 and fail the first test */
                __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, sp), _mm_cmplt_epi8(v, del));
                ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, hash), ok);
                unsigned bad = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
                if (bad)
                        return p + __builtin_ctz(bad);
                p += 16;
        }
#endif
        while (p < e && is_class(*p, C_TARGET))
                p++;
        return p;
}

/* Header names are letters, digits and '-' almost always: those are passed 16 at a time, and
 * the table finishes with any other token character. The caller knows a CR ends the line
 * before e. */
static inline const char *skip_name(const char *p, const char *e)
{
#ifdef __SSE2__
        const __m128i fold = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a' - 1),
                      z = _mm_set1_epi8('z' + 1), d0 = _mm_set1_epi8('0' - 1),
                      d9 = _mm_set1_epi8('9' + 1), dash = _mm_set1_epi8('-');
        while (e - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* signed: bytes >= 0x80 are < 0 and fail both ranges */
                __m128i x = _mm_or_si128(v, fold);
                __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(x, a), _mm_cmplt_epi8(x, z));
                ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, d0), _mm_cmplt_epi8(v, d9)));
                ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, dash));
                unsigned bad = (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
                if (bad) {
                        p += __builtin_ctz(bad);
                        break;
                }
                p += 16;
        }
#endif
        while (is_class(*p, C_TCHAR))
                p++;
        return p;
}

static inline char lower_ascii(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static inline unsigned hex_value(char c)
{
        if (c <= '9')
                return (unsigned)(c - '0');
        return (unsigned)(lower_ascii(c) - 'a' + 10);
}

static bool case_eq(const char *p, size_t n, const char *lower, size_t lower_len)
{
        if (n != lower_len)
                return false;
        for (size_t i = 0; i < n; i++)
                if (lower_ascii(p[i]) != lower[i])
                        return false;
        return true;
}

/* Both sides as received, so both are folded. */
static bool case_eq_both(const char *a, size_t a_len, const char *b, size_t b_len)
{
        if (a_len != b_len)
                return false;
        for (size_t i = 0; i < a_len; i++)
                if (lower_ascii(a[i]) != lower_ascii(b[i]))
                        return false;
        return true;
}

/* Literal-only shorthand, so the length is computed at compile time. */
#define CASE_EQ(p, n, lit) case_eq((p), (n), "" lit, sizeof(lit) - 1)

/* case_eq for bytes already checked to be token or field-value characters, against a literal of
 * lowercase letters, digits, '-', ':' and '/', eight at a time. OR-ing 0x20 folds A-Z onto a-z;
 * of the other bytes it could make equal to such a literal byte only control characters, which
 * those checks refused. */
static inline bool token_eq(const char *p, size_t n, const char *lit, size_t len)
{
        if (n != len)
                return false;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
                uint64_t x, y;
                memcpy(&x, p + i, 8);
                memcpy(&y, lit + i, 8);
                if ((x | UINT64_C(0x2020202020202020)) != y)
                        return false;
        }
        for (; i < n; i++)
                if ((char)(p[i] | 0x20) != lit[i])
                        return false;
        return true;
}
#define TOKEN_EQ(p, n, lit) token_eq((p), (n), "" lit, sizeof(lit) - 1)

bool http_slice_case_eq(HttpSlice name, const char *lower)
{
        return case_eq(name.p, name.len, lower, strlen(lower));
}

const HttpHeader *http_head_find(const HttpHead *h, const char *lower_name)
{
        size_t n = strlen(lower_name);

        for (size_t i = 0; i < h->n_headers; i++)
                if (case_eq(h->headers[i].name.p, h->headers[i].name.len, lower_name, n))
                        return &h->headers[i];
        return NULL;
}

static inline int fail(const char **ret_reason, int r, const char *reason)
{
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

/* Why a scan over a line stopped at `p` when it should not have. A CR there is either the line's
 * own end (then `what` was cut short) or a bare CR; reading p[1] is safe as every line scanned
 * is known to end in CRLF. */
static int bad_char(const char *p, const char *what, const char **ret_reason)
{
        if (*p == '\n')
                return fail(ret_reason, -EBADMSG, "bare LF");
        if (*p == '\r' && p[1] != '\n')
                return fail(ret_reason, -EBADMSG, "bare CR");
        return fail(ret_reason, -EBADMSG, what);
}

/* Facts gathered over the header lines, judged together once the head is complete. */
typedef struct HeadScan {
        unsigned n_host;
        bool has_content_length;
        uint64_t content_length;
        bool has_transfer_encoding;
        unsigned n_chunked;
        bool te_final_chunked;
        bool te_other; /* a coding other than chunked */
        bool conn_close;
        bool conn_keep_alive;
        bool conn_upgrade;
        bool conn_options; /* Connection names headers besides the standard hop-by-hop ones */
        bool has_upgrade;
        bool expect_continue;
} HeadScan;

typedef enum HeaderKind {
        HK_OTHER,
        HK_HOST,
        HK_CONTENT_LENGTH,
        HK_TRANSFER_ENCODING,
        HK_CONNECTION,
        HK_HOP, /* hop-by-hop, nothing more to it */
        HK_UPGRADE,
        HK_EXPECT,
        HK_FORWARDED_FOR,
        HK_PROXY_SET, /* X-Forwarded-Proto, -Host, -Port, X-Real-IP */
        HK_VIA,
        HK_DATE,
} HeaderKind;

/* Most headers (Accept, Cookie, User-Agent) are none of these: the switch on the length rejects
 * them without comparing a byte. */
static HeaderKind header_kind(const char *p, size_t n)
{
        switch (n) {
        case 2:
                return TOKEN_EQ(p, n, "te") ? HK_HOP : HK_OTHER;
        case 3:
                return TOKEN_EQ(p, n, "via") ? HK_VIA : HK_OTHER;
        case 4:
                if (TOKEN_EQ(p, n, "host"))
                        return HK_HOST;
                return TOKEN_EQ(p, n, "date") ? HK_DATE : HK_OTHER;
        case 6:
                return TOKEN_EQ(p, n, "expect") ? HK_EXPECT : HK_OTHER;
        case 7:
                if (TOKEN_EQ(p, n, "upgrade"))
                        return HK_UPGRADE;
                return TOKEN_EQ(p, n, "trailer") ? HK_HOP : HK_OTHER;
        case 9:
                return TOKEN_EQ(p, n, "x-real-ip") ? HK_PROXY_SET : HK_OTHER;
        case 10:
                if (TOKEN_EQ(p, n, "connection"))
                        return HK_CONNECTION;
                return TOKEN_EQ(p, n, "keep-alive") ? HK_HOP : HK_OTHER;
        case 14:
                return TOKEN_EQ(p, n, "content-length") ? HK_CONTENT_LENGTH : HK_OTHER;
        case 15:
                return TOKEN_EQ(p, n, "x-forwarded-for") ? HK_FORWARDED_FOR : HK_OTHER;
        case 16:
                if (TOKEN_EQ(p, n, "proxy-connection"))
                        return HK_HOP;
                if (TOKEN_EQ(p, n, "x-forwarded-host") || TOKEN_EQ(p, n, "x-forwarded-port"))
                        return HK_PROXY_SET;
                return HK_OTHER;
        case 17:
                if (TOKEN_EQ(p, n, "transfer-encoding"))
                        return HK_TRANSFER_ENCODING;
                return TOKEN_EQ(p, n, "x-forwarded-proto") ? HK_PROXY_SET : HK_OTHER;
        default:
                return HK_OTHER;
        }
}

static const char *skip_ows(const char *p, const char *e)
{
        while (p < e && is_ows(*p))
                p++;
        return p;
}

/* Content-Length = 1*DIGIT, or a list of identical values as left by a merge upstream
 * (RFC 9110 8.6). Any other shape, or a value differing from an earlier one, is refused: two
 * lengths are exactly what request smuggling feeds on. */
static int scan_content_length(HttpSlice v, HeadScan *s, const char **ret_reason)
{
        const char *p = v.p, *e = v.p + v.len;

        for (;;) {
                const char *digits = p;
                uint64_t n = 0;

                for (; p < e && is_class(*p, C_DIGIT); p++) {
                        unsigned d = (unsigned)(*p - '0');
                        if (n > (MAX_BODY_LENGTH - d) / 10)
                                return fail(ret_reason, -EBADMSG, "Content-Length too large");
                        n = n * 10 + d;
                }
                if (p == digits)
                        return fail(ret_reason, -EBADMSG, "invalid Content-Length");
                if (s->has_content_length && s->content_length != n)
                        return fail(ret_reason, -EBADMSG, "conflicting Content-Length values");
                s->has_content_length = true;
                s->content_length = n;

                p = skip_ows(p, e);
                if (p == e)
                        return 0;
                if (*p != ',')
                        return fail(ret_reason, -EBADMSG, "invalid Content-Length");
                p = skip_ows(p + 1, e);
        }
}

/* Transfer-Encoding = 1#transfer-coding. Parameters and empty list elements are refused, though
 * RFC 9110 allows them: nobody sends them, and any leeway here is a second way to read the
 * framing. Whether the final coding is chunked is judged per message kind afterwards. */
static int scan_transfer_encoding(HttpSlice v, HeadScan *s, const char **ret_reason)
{
        const char *p = v.p, *e = v.p + v.len;

        s->has_transfer_encoding = true;
        for (;;) {
                const char *tok = p;

                while (p < e && is_class(*p, C_TCHAR))
                        p++;
                if (p == tok)
                        return fail(ret_reason, -EBADMSG, "invalid Transfer-Encoding");
                if (TOKEN_EQ(tok, (size_t)(p - tok), "chunked")) {
                        if (s->n_chunked++ > 0)
                                return fail(ret_reason, -EBADMSG, "chunked applied twice");
                        s->te_final_chunked = true;
                } else {
                        s->te_other = true;
                        s->te_final_chunked = false;
                }

                p = skip_ows(p, e);
                if (p == e)
                        return 0;
                if (*p != ',')
                        return fail(ret_reason, -EBADMSG, "invalid Transfer-Encoding");
                p = skip_ows(p + 1, e);
        }
}

/* Connection = #connection-option. Empty list elements are allowed (RFC 9110 5.6.1). Naming Host
 * or Content-Length would make a proxy drop them before forwarding, leaving the next hop to frame
 * or route the message differently than we did, so that is refused. */
static int scan_connection(HttpSlice v, HeadScan *s, const char **ret_reason)
{
        const char *p = v.p, *e = v.p + v.len;

        for (;;) {
                const char *tok = p;

                while (p < e && is_class(*p, C_TCHAR))
                        p++;
                size_t n = (size_t)(p - tok);
                if (n == 0) {
                        /* empty element: only OWS and commas may be here */
                } else if (TOKEN_EQ(tok, n, "close"))
                        s->conn_close = true;
                else if (TOKEN_EQ(tok, n, "keep-alive"))
                        s->conn_keep_alive = true;
                else if (TOKEN_EQ(tok, n, "upgrade"))
                        s->conn_upgrade = true;
                else if (TOKEN_EQ(tok, n, "host") || TOKEN_EQ(tok, n, "content-length"))
                        return fail(ret_reason, -EBADMSG, "Connection names a framing header");
                else
                        s->conn_options = true;

                p = skip_ows(p, e);
                if (p == e)
                        return 0;
                if (*p != ',')
                        return fail(ret_reason, -EBADMSG, "invalid Connection header");
                p = skip_ows(p + 1, e);
        }
}

/* uri-host [ ":" port ], as in Host and in authority-form and absolute-form targets. Userinfo
 * ("user@host") is refused (RFC 9110 4.2.4), as are IPvFuture literals. */
static bool valid_authority(HttpSlice v, bool need_port)
{
        const char *p = v.p, *e = v.p + v.len;

        if (p < e && *p == '[') {
                const char *s = ++p;
                while (p < e && (is_class(*p, C_HEX) || *p == ':' || *p == '.'))
                        p++;
                if (p == s || p == e || *p != ']')
                        return false;
                p++;
        } else {
                const char *s = p;
                while (p < e && is_class(*p, C_REGNAME)) {
                        if (*p == '%') {
                                if (e - p < 3 || !is_class(p[1], C_HEX) || !is_class(p[2], C_HEX))
                                        return false;
                                p += 2;
                        }
                        p++;
                }
                if (p == s)
                        return false;
        }

        if (p == e)
                return !need_port;
        if (*p != ':')
                return false;
        p++;

        unsigned port = 0;
        const char *digits = p;
        for (; p < e && is_class(*p, C_DIGIT) && p - digits < 5; p++)
                port = port * 10 + (unsigned)(*p - '0');
        return p == e && p > digits && port <= 65535;
}

/* Splits an absolute path at '?': query.p is NULL without '?', so "/a?" and "/a" differ. */
static void split_query(const char *p, const char *e, HttpHead *h)
{
        const char *q = memchr(p, '?', (size_t)(e - p));

        if (q) {
                h->path = (HttpSlice){ p, (size_t)(q - p) };
                h->query = (HttpSlice){ q + 1, (size_t)(e - q - 1) };
        } else {
                h->path = (HttpSlice){ p, (size_t)(e - p) };
                h->query = (HttpSlice){ NULL, 0 };
        }
}

/* Methods are case-sensitive (RFC 9110 9.1). */
static bool slice_eq(HttpSlice s, const char *m, size_t n)
{
        return s.len == n && memcmp(s.p, m, n) == 0;
}
#define SLICE_EQ(s, lit) slice_eq((s), "" lit, sizeof(lit) - 1)
#define METHOD_IS(h, lit) SLICE_EQ((h)->method, lit)

/* Sorts the request-target into its form (RFC 9112 3.2) and fills path/query. The authority of
 * authority-form and absolute-form targets goes to *ret_authority, for the Host check. */
static int parse_target(HttpHead *h, HttpSlice *ret_authority, const char **ret_reason)
{
        const char *p = h->target.p, *e = p + h->target.len;
        bool connect = METHOD_IS(h, "CONNECT");

        *ret_authority = (HttpSlice){ NULL, 0 };

        if (*p == '/') {
                if (connect)
                        return fail(ret_reason, -EBADMSG, "CONNECT needs an authority-form target");
                split_query(p, e, h);
                return 0;
        }

        if (h->target.len == 1 && *p == '*') {
                if (!METHOD_IS(h, "OPTIONS"))
                        return fail(ret_reason, -EBADMSG, "asterisk-form target outside OPTIONS");
                h->path = h->target;
                h->query = (HttpSlice){ NULL, 0 };
                return 0;
        }

        if (connect) {
                if (!valid_authority(h->target, true))
                        return fail(ret_reason, -EBADMSG, "invalid CONNECT target");
                h->path = (HttpSlice){ p, 0 };
                h->query = (HttpSlice){ NULL, 0 };
                *ret_authority = h->target;
                return 0;
        }

        size_t scheme;
        if (h->target.len >= 7 && TOKEN_EQ(p, 7, "http://"))
                scheme = 7;
        else if (h->target.len >= 8 && TOKEN_EQ(p, 8, "https://"))
                scheme = 8;
        else
                return fail(ret_reason, -EBADMSG, "invalid request-target");

        const char *a = p + scheme, *ae = a;
        while (ae < e && *ae != '/' && *ae != '?')
                ae++;
        HttpSlice authority = { a, (size_t)(ae - a) };
        if (!valid_authority(authority, false))
                return fail(ret_reason, -EBADMSG, "invalid authority in request-target");
        *ret_authority = authority;

        if (ae < e && *ae == '/')
                split_query(ae, e, h);
        else {
                /* "http://host" and "http://host?q" mean path "/", which is not in the buffer. */
                h->path = (HttpSlice){ "/", 1 };
                h->query = ae < e ? (HttpSlice){ ae + 1, (size_t)(e - ae - 1) }
                                  : (HttpSlice){ NULL, 0 };
        }
        return 0;
}

/* "HTTP/1.0" or "HTTP/1.1" exactly; another well-formed "HTTP/d.d" is -EPROTONOSUPPORT. */
static int parse_version(const char *p, size_t n, HttpHead *h, const char **ret_reason)
{
        if (n == 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1')) {
                h->version_minor = (unsigned)(p[7] - '0');
                return 0;
        }
        if (n == 8 && memcmp(p, "HTTP/", 5) == 0 && IS_DIGIT(p[5]) && p[6] == '.' &&
            IS_DIGIT(p[7]))
                return fail(ret_reason, -EPROTONOSUPPORT, "unsupported HTTP version");
        return fail(ret_reason, -EBADMSG, "invalid HTTP version");
}

/* method SP request-target SP HTTP-version, over [p, eol) where eol points at the line's CR. */
static int parse_request_line(const char *p, const char *eol, HttpHead *h, HttpSlice *ret_authority,
                              const char **ret_reason)
{
        const char *s = p;
        int r;

        while (is_class(*p, C_TCHAR))
                p++;
        if (p == s || *p != ' ')
                return bad_char(p, "invalid method", ret_reason);
        h->method = (HttpSlice){ s, (size_t)(p - s) };

        s = ++p;
        p = skip_target(p, eol);
        if (p == s)
                return bad_char(p, "invalid request-target", ret_reason);
        if (p == eol)
                return fail(ret_reason, -EPROTONOSUPPORT, "HTTP/0.9 request");
        if (*p != ' ')
                return bad_char(p, "invalid request-target", ret_reason);
        h->target = (HttpSlice){ s, (size_t)(p - s) };

        p++;
        r = parse_version(p, (size_t)(eol - p), h, ret_reason);
        if (r < 0)
                return r;

        return parse_target(h, ret_authority, ret_reason);
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ]. The SP before an empty reason is optional: RFC 9112
 * requires it, but enough servers omit it that refusing would only break them. */
static int parse_status_line(const char *p, const char *eol, HttpHead *h, const char **ret_reason)
{
        int r;

        if (eol - p < 12 || p[8] != ' ') {
                const char *sp = memchr(p, ' ', (size_t)(eol - p));
                r = parse_version(p, (size_t)((sp ?: eol) - p), h, ret_reason);
                return r < 0 ? r : fail(ret_reason, -EBADMSG, "invalid status line");
        }
        r = parse_version(p, 8, h, ret_reason);
        if (r < 0)
                return r;

        p += 9;
        if (!IS_DIGIT(p[0]) || !IS_DIGIT(p[1]) || !IS_DIGIT(p[2]))
                return fail(ret_reason, -EBADMSG, "invalid status code");
        h->status = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
                    (unsigned)(p[2] - '0');
        if (h->status < 100 || h->status > 599)
                return fail(ret_reason, -EBADMSG, "invalid status code");
        p += 3;

        if (p == eol) {
                h->reason = (HttpSlice){ p, 0 };
                return 0;
        }
        if (*p != ' ')
                return bad_char(p, "invalid status code", ret_reason);
        const char *s = ++p;
        p = skip_value(p, eol);
        if (p != eol)
                return bad_char(p, "control character in reason phrase", ret_reason);
        h->reason = (HttpSlice){ s, (size_t)(p - s) };
        return 0;
}

static int parse_first_line(bool request, const char *p, const char *eol, HttpHead *h,
                            HttpSlice *ret_authority, const char **ret_reason)
{
        if (request)
                return parse_request_line(p, eol, h, ret_authority, ret_reason);
        *ret_authority = (HttpSlice){ NULL, 0 };
        return parse_status_line(p, eol, h, ret_reason);
}

/* Classifies one header and gathers what the framing and connection decisions need. */
static int scan_header(HttpHead *h, size_t i, HeadScan *s, const char **ret_reason)
{
        const HttpHeader *hdr = &h->headers[i];
        uint8_t *flags = &h->header_flags[i];

        *flags = 0;
        switch (header_kind(hdr->name.p, hdr->name.len)) {
        case HK_OTHER:
                return 0;
        case HK_HOST:
                *flags = HTTP_HEADER_HOST;
                if (s->n_host++ == 0)
                        h->host = hdr->value;
                return 0;
        case HK_CONTENT_LENGTH:
                *flags = HTTP_HEADER_CONTENT_LENGTH;
                return scan_content_length(hdr->value, s, ret_reason);
        case HK_TRANSFER_ENCODING:
                *flags = HTTP_HEADER_HOP;
                return scan_transfer_encoding(hdr->value, s, ret_reason);
        case HK_CONNECTION:
                *flags = HTTP_HEADER_HOP;
                return scan_connection(hdr->value, s, ret_reason);
        case HK_HOP:
                *flags = HTTP_HEADER_HOP;
                return 0;
        case HK_UPGRADE:
                *flags = HTTP_HEADER_HOP;
                s->has_upgrade = true;
                return 0;
        case HK_EXPECT:
                if (TOKEN_EQ(hdr->value.p, hdr->value.len, "100-continue"))
                        s->expect_continue = true;
                return 0;
        case HK_FORWARDED_FOR:
                *flags = HTTP_HEADER_FORWARDED_FOR;
                return 0;
        case HK_PROXY_SET:
                *flags = HTTP_HEADER_PROXY_SET;
                return 0;
        case HK_VIA:
                *flags = HTTP_HEADER_VIA;
                return 0;
        case HK_DATE:
                h->has_date = true;
                return 0;
        }
        return 0;
}

/* Marks HOP on every header named by a Connection option. Runs only when Connection names
 * something beyond close/keep-alive/upgrade, which is rare; its cost is bounded by
 * n_headers * options, both bounded by the head limits. */
static void mark_connection_options(HttpHead *h)
{
        for (size_t i = 0; i < h->n_headers; i++) {
                const HttpHeader *c = &h->headers[i];
                if (!CASE_EQ(c->name.p, c->name.len, "connection"))
                        continue;

                const char *p = c->value.p, *e = p + c->value.len;
                while (p < e) {
                        const char *tok = p;
                        while (p < e && is_class(*p, C_TCHAR))
                                p++;
                        size_t n = (size_t)(p - tok);
                        for (size_t j = 0; n > 0 && j < h->n_headers; j++)
                                if (!(h->header_flags[j] & HTTP_HEADER_HOP) &&
                                    case_eq_both(h->headers[j].name.p, h->headers[j].name.len,
                                                 tok, n))
                                        h->header_flags[j] |= HTTP_HEADER_HOP;
                        while (p < e && (is_ows(*p) || *p == ','))
                                p++;
                }
        }
}

/* Only syntax could be checked before the end of the head was found; this is the rest. */
static int finish_request(HttpHead *h, const HeadScan *s, HttpSlice authority,
                          const char **ret_reason)
{
        bool http11 = h->version_minor == 1;

        if (s->n_host > 1)
                return fail(ret_reason, -EBADMSG, "duplicate Host");
        if (s->n_host == 0 && http11)
                return fail(ret_reason, -EBADMSG, "missing Host");
        if (s->n_host == 1 && h->host.len > 0 && !valid_authority(h->host, false))
                return fail(ret_reason, -EBADMSG, "invalid Host");
        /* RFC 9112 3.2.2: the target's authority is the host, whatever Host says (HTTP/1.0
         * may leave Host out). It is what the route is matched on and what the next hop gets
         * as its Host (the client's Host field is flagged and not passed on), so the two
         * cannot read the request differently. */
        if (authority.p)
                h->host = authority;

        if (s->has_transfer_encoding) {
                if (!http11)
                        return fail(ret_reason, -EBADMSG, "Transfer-Encoding in HTTP/1.0");
                if (s->has_content_length)
                        return fail(ret_reason, -EBADMSG,
                                    "Content-Length and Transfer-Encoding together");
                if (!s->te_final_chunked)
                        return fail(ret_reason, -EBADMSG,
                                    "Transfer-Encoding does not end in chunked");
                if (s->te_other)
                        return fail(ret_reason, -ENOTSUP, "unsupported transfer coding");
                h->body = HTTP_BODY_CHUNKED;
        } else if (s->has_content_length && s->content_length > 0) {
                h->body = HTTP_BODY_LENGTH;
                h->content_length = s->content_length;
        }

        /* What follows a CONNECT head is tunnel data; a length there would be read two ways. */
        if (h->body != HTTP_BODY_NONE && METHOD_IS(h, "CONNECT"))
                return fail(ret_reason, -EBADMSG, "CONNECT with content");

        h->keep_alive = !s->conn_close && (http11 || s->conn_keep_alive);
        h->upgrade = s->conn_upgrade && s->has_upgrade;
        /* An HTTP/1.0 client cannot know 100 Continue, so its expectation is ignored
         * (RFC 9110 10.1.1). */
        h->expect_continue = s->expect_continue && http11;
        return 0;
}

static int finish_response(HttpHead *h, const HeadScan *s, HttpSlice request_method,
                           const char **ret_reason)
{
        bool http11 = h->version_minor == 1;
        unsigned st = h->status;

        /* RFC 9112 6.1: the framing of an HTTP/1.0 message with Transfer-Encoding is faulty. */
        if (s->has_transfer_encoding && !http11)
                return fail(ret_reason, -EBADMSG, "Transfer-Encoding in HTTP/1.0");
        /* Transfer-Encoding overrides Content-Length, which must then not be forwarded
         * (RFC 9112 6.3). */
        if (s->has_transfer_encoding && s->has_content_length)
                for (size_t i = 0; i < h->n_headers; i++)
                        if (h->header_flags[i] & HTTP_HEADER_CONTENT_LENGTH)
                                h->header_flags[i] |= HTTP_HEADER_HOP;

        if (SLICE_EQ(request_method, "HEAD") || st < 200 || st == 204 || st == 304)
                h->body = HTTP_BODY_NONE;
        else if (st < 300 && SLICE_EQ(request_method, "CONNECT"))
                h->body = HTTP_BODY_NONE; /* a tunnel follows */
        else if (s->has_transfer_encoding)
                h->body = s->te_final_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
        else if (s->has_content_length) {
                if (s->content_length > 0) {
                        h->body = HTTP_BODY_LENGTH;
                        h->content_length = s->content_length;
                }
        } else
                h->body = HTTP_BODY_CLOSE;

        h->keep_alive = !s->conn_close && (http11 || s->conn_keep_alive) &&
                        h->body != HTTP_BODY_CLOSE &&
                        /* both lengths: a sign of trouble upstream, do not reuse it */
                        !(s->has_transfer_encoding && s->has_content_length);
        h->upgrade = s->conn_upgrade && s->has_upgrade;
        return 0;
}

/* Zeroes all but the header arrays: they are 4 KiB, and written as headers are found. */
static void head_reset(HttpHead *h)
{
        h->method = h->target = h->path = h->query = h->reason = h->host = (HttpSlice){ NULL, 0 };
        h->status = 0;
        h->version_minor = 0;
        h->n_headers = 0;
        h->body = HTTP_BODY_NONE;
        h->content_length = 0;
        h->keep_alive = h->expect_continue = h->upgrade = h->has_date = false;
        h->head_len = 0;
}

static ssize_t parse_head(bool request, const char *buf, size_t len, size_t max_headers,
                          size_t max_bytes, HttpSlice request_method, HttpHead *h,
                          const char **ret_reason)
{
        size_t window = len < max_bytes ? len : max_bytes, start = 0;
        HeadScan scan = {};
        HttpSlice authority;
        int r;

        assert(buf || len == 0);
        assert(h);

        if (max_headers > HTTP_MAX_HEADERS)
                max_headers = HTTP_MAX_HEADERS;

        head_reset(h);
        if (ret_reason)
                *ret_reason = NULL;

        if (request)
                for (unsigned n = 0; start < window && buf[start] == '\r'; n++) {
                        if (start + 1 == window)
                                break;
                        if (buf[start + 1] != '\n')
                                return fail(ret_reason, -EBADMSG, "bare CR");
                        if (n == MAX_LEADING_EMPTY_LINES)
                                return fail(ret_reason, -EBADMSG,
                                            "too many empty lines before request line");
                        start += 2;
                }
        if (start < window && buf[start] == '\n')
                return fail(ret_reason, -EBADMSG, "bare LF");

        /* Find the end of the head first: most heads arrive whole, and an incomplete one then
         * costs little however often a slow client makes us come back. Already refused on the
         * way: a bare LF, and more lines than max_headers allows. */
        const char *s = buf + start, *e = buf + window, *p = s, *end = NULL, *first_eol = NULL;
        size_t lines = 0;
        for (const char *b = s; b < e && !end; b += 16) {
                unsigned lfs = 0; /* bit i: b[i] is a LF */
#ifdef __SSE2__
                const __m128i lf = _mm_set1_epi8('\n');
                if (e - b >= 16)
                        lfs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
                                _mm_loadu_si128((const __m128i *)(const void *)b), lf));
                else if (e - s >= 16)
                        /* The last 16 bytes, shifted past those already looked at. */
                        lfs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
                                      _mm_loadu_si128((const __m128i *)(const void *)(e - 16)),
                                      lf)) >>
                              (16 - (e - b));
                else
#endif
                        for (unsigned i = 0; i < 16 && b + i < e; i++)
                                lfs |= (unsigned)(b[i] == '\n') << i;
                for (; lfs; lfs &= lfs - 1) {
                        const char *nl = b + __builtin_ctz(lfs);
                        if (nl == s || nl[-1] != '\r')
                                return fail(ret_reason, -EBADMSG, "bare LF");
                        if (nl - 1 == p && first_eol) {
                                end = nl + 1;
                                break;
                        }
                        if (!first_eol)
                                first_eol = nl - 1;
                        else if (++lines > max_headers)
                                return fail(ret_reason, -EMSGSIZE, "too many header fields");
                        p = nl + 1;
                }
        }

        if (first_eol) {
                r = parse_first_line(request, s, first_eol, h, &authority, ret_reason);
                if (r < 0)
                        return r;
        }
        if (!end) {
                /* A request line that alone fills the limit is a URI too long (414, as nginx
                 * answers), not a header section too large. */
                if (len >= max_bytes && request && !first_eol)
                        return fail(ret_reason, -ENAMETOOLONG, "request line too long");
                if (len >= max_bytes)
                        return fail(ret_reason, -EMSGSIZE, "header section too large");
                return fail(ret_reason, -EAGAIN, NULL);
        }

        /* From here on every line is known to end in CRLF before `end`: each scan below stops at
         * the latest at a CR, without bounds checks. */
        p = first_eol + 2;
        for (;;) {
                const char *name = p;

                if (*p == '\r') {
                        if (p[1] != '\n')
                                return fail(ret_reason, -EBADMSG, "bare CR");
                        p += 2;
                        break;
                }
                if (is_ows(*p))
                        return fail(ret_reason, -EBADMSG, "obs-fold header line");

                p = skip_name(p, end);
                if (*p != ':') {
                        if (is_ows(*p) && p > name)
                                return fail(ret_reason, -EBADMSG, "space before colon");
                        if (*p == '\r' && p[1] == '\n')
                                return fail(ret_reason, -EBADMSG, "header line without colon");
                        return bad_char(p, p == name ? "empty header name" : "invalid header name",
                                        ret_reason);
                }
                if (p == name)
                        return fail(ret_reason, -EBADMSG, "empty header name");
                if (h->n_headers == max_headers)
                        return fail(ret_reason, -EMSGSIZE, "too many header fields");
                size_t name_len = (size_t)(p - name);

                p++;
                while (is_ows(*p))
                        p++;
                const char *value = p;
                p = skip_value(p, end);
                if (*p != '\r' || p[1] != '\n')
                        return bad_char(p, "control character in header value", ret_reason);
                const char *value_end = p;
                while (value_end > value && is_ows(value_end[-1]))
                        value_end--;
                p += 2;

                size_t i = h->n_headers++;
                h->headers[i] = (HttpHeader){
                        .name = { name, name_len },
                        .value = { value, (size_t)(value_end - value) },
                };
                r = scan_header(h, i, &scan, ret_reason);
                if (r < 0)
                        return r;
        }
        assert(p == end);

        if (request)
                r = finish_request(h, &scan, authority, ret_reason);
        else
                r = finish_response(h, &scan, request_method, ret_reason);
        if (r < 0)
                return r;
        if (scan.conn_options)
                mark_connection_options(h);

        h->head_len = (size_t)(end - buf);
        return (ssize_t)h->head_len;
}

ssize_t http1_parse_request(const char *buf, size_t len, size_t max_headers, size_t max_bytes,
                            HttpHead *ret, const char **ret_reason)
{
        return parse_head(true, buf, len, max_headers, max_bytes, (HttpSlice){ NULL, 0 }, ret,
                          ret_reason);
}

ssize_t http1_parse_response(const char *buf, size_t len, size_t max_headers, size_t max_bytes,
                             HttpSlice request_method, HttpHead *ret, const char **ret_reason)
{
        return parse_head(false, buf, len, max_headers, max_bytes, request_method, ret,
                          ret_reason);
}

/* The chunked framer's states. A size line is size [BWS ; extensions] CRLF; data is skipped by
 * counting; trailer lines are validated as field lines. */
enum {
        CH_SIZE_START, /* the first hex digit of a size line */
        CH_SIZE,       /* more hex digits, or what ends them */
        CH_SIZE_WS,    /* whitespace after the size: only ';' may follow (BWS) */
        CH_EXT,        /* chunk extensions, up to CR */
        CH_SIZE_LF,
        CH_DATA,
        CH_DATA_CR,
        CH_DATA_LF,
        CH_TRAILER_START, /* a trailer line, or the final CRLF */
        CH_TRAILER_NAME,
        CH_TRAILER_VALUE,
        CH_TRAILER_LF,
        CH_LAST_LF,
        CH_DONE,
        CH_ERROR,
};

#define MAX_CHUNK_SIZE_DIGITS 16

void http_chunked_init(HttpChunked *c)
{
        *c = (HttpChunked){ .state = CH_SIZE_START };
}

uint64_t http_chunked_data_left(const HttpChunked *c)
{
        return c->state == CH_DATA ? c->remaining : 0;
}

static int chunked_fail(HttpChunked *c, int r, const char *p, const char *buf, size_t *ret_used)
{
        c->state = CH_ERROR;
        *ret_used = (size_t)(p - buf);
        return r;
}

int http_chunked_feed(HttpChunked *c, const char *buf, size_t len, size_t max_line,
                      size_t *ret_used)
{
        const char *p = buf, *e = buf + len;
        size_t max_trailer = max_line > SIZE_MAX / 4 ? SIZE_MAX : max_line * 4;

        assert(c);
        assert(ret_used);

#define FAIL(r) return chunked_fail(c, (r), p, buf, ret_used)

        while (p < e) {
                char ch = *p;

                switch (c->state) {
                case CH_DATA: {
                        size_t n = (size_t)(e - p);
                        if (c->remaining < n)
                                n = (size_t)c->remaining;
                        p += n;
                        c->remaining -= n;
                        if (c->remaining == 0)
                                c->state = CH_DATA_CR;
                        continue;
                }

                case CH_SIZE_START:
                        if (!is_class(ch, C_HEX))
                                FAIL(-EBADMSG);
                        c->remaining = 0;
                        c->line_len = 0;
                        c->state = CH_SIZE;
                        __attribute__((fallthrough));
                case CH_SIZE:
                        if (is_class(ch, C_HEX)) {
                                if (c->line_len == MAX_CHUNK_SIZE_DIGITS ||
                                    c->remaining > (MAX_BODY_LENGTH >> 4))
                                        FAIL(-EBADMSG);
                                c->remaining = (c->remaining << 4) | hex_value(ch);
                        } else if (ch == '\r')
                                c->state = CH_SIZE_LF;
                        else if (ch == ';')
                                c->state = CH_EXT;
                        else if (is_ows(ch))
                                c->state = CH_SIZE_WS;
                        else
                                FAIL(-EBADMSG);
                        break;

                case CH_SIZE_WS:
                        if (ch == ';')
                                c->state = CH_EXT;
                        else if (!is_ows(ch))
                                FAIL(-EBADMSG);
                        break;

                case CH_EXT:
                        /* Extensions are passed on, not interpreted; only their bytes are
                         * checked, so no CR or LF can hide in them. */
                        if (ch == '\r')
                                c->state = CH_SIZE_LF;
                        else if (!is_class(ch, C_VALUE))
                                FAIL(-EBADMSG);
                        break;

                case CH_SIZE_LF:
                        if (ch != '\n')
                                FAIL(-EBADMSG);
                        p++;
                        if (c->remaining == 0) {
                                c->state = CH_TRAILER_START;
                                c->trailer_bytes = 0;
                        } else
                                c->state = CH_DATA;
                        continue;

                case CH_DATA_CR:
                        if (ch != '\r')
                                FAIL(-EBADMSG);
                        c->state = CH_DATA_LF;
                        p++;
                        continue;

                case CH_DATA_LF:
                        if (ch != '\n')
                                FAIL(-EBADMSG);
                        c->state = CH_SIZE_START;
                        p++;
                        continue;

                case CH_TRAILER_START:
                        if (ch == '\r') {
                                c->state = CH_LAST_LF;
                                break;
                        }
                        /* An obs-fold or empty name is refused here as in the head. */
                        if (!is_class(ch, C_TCHAR))
                                FAIL(-EBADMSG);
                        c->state = CH_TRAILER_NAME;
                        break;

                case CH_TRAILER_NAME:
                        if (ch == ':')
                                c->state = CH_TRAILER_VALUE;
                        else if (!is_class(ch, C_TCHAR))
                                FAIL(-EBADMSG);
                        break;

                case CH_TRAILER_VALUE:
                        if (ch == '\r')
                                c->state = CH_TRAILER_LF;
                        else if (!is_class(ch, C_VALUE))
                                FAIL(-EBADMSG);
                        break;

                case CH_TRAILER_LF:
                        if (ch != '\n')
                                FAIL(-EBADMSG);
                        c->state = CH_TRAILER_START;
                        break;

                case CH_LAST_LF:
                        if (ch != '\n')
                                FAIL(-EBADMSG);
                        c->state = CH_DONE;
                        *ret_used = (size_t)(p + 1 - buf);
                        return 1;

                case CH_DONE:
                        *ret_used = (size_t)(p - buf);
                        return 1;

                default:
                        FAIL(-EBADMSG);
                }

                /* Only size lines and trailers get here, one byte at a time. */
                if (c->state >= CH_TRAILER_START) {
                        if (++c->trailer_bytes > max_trailer)
                                FAIL(-EMSGSIZE);
                } else if (++c->line_len > max_line)
                        FAIL(-EMSGSIZE);
                p++;
        }
#undef FAIL

        *ret_used = len;
        if (c->state == CH_DONE)
                return 1;
        if (c->state == CH_ERROR)
                return -EBADMSG;
        return 0;
}
