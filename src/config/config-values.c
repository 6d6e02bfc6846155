/* SPDX-License-Identifier: MIT */
/* Single values: names, hosts, addresses, paths, methods, durations; and how many items a list
 * may hold. The checks return NULL when a value is fine and otherwise why it is not, in words
 * fit for "invalid host 'x': why"; some normalize in place (case, brackets). Kept apart from the
 * schema so that whatever edits a Config later (D-Bus) validates a value the way a file would. */

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <unistd.h>

#include "config/config-internal.h"

/* For limits inside the constant messages. */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static bool is_numeric_host(const char *s)
{
        return s[strspn(s, "0123456789.")] == 0;
}

static bool is_ipv4(const char *s)
{
        struct in_addr a;

        return inet_pton(AF_INET, s, &a) == 1;
}

static bool is_ipv6(const char *s)
{
        struct in6_addr a;

        return inet_pton(AF_INET6, s, &a) == 1;
}

/* RFC 1123 names: labels of letters, digits and inner hyphens. */
static const char *check_hostname(const char *s)
{
        size_t l = strlen(s), label = 0;

        if (l > 0 && s[l - 1] == '.')
                l--; /* a fully qualified "example.com." */
        if (l == 0)
                return "empty host name";
        if (l > 253)
                return "longer than 253 characters";

        for (size_t i = 0; i <= l; i++) {
                char ch = i < l ? s[i] : '.';

                if (ch == '.') {
                        if (label == 0)
                                return "empty label";
                        if (label > 63)
                                return "label longer than 63 characters";
                        if (s[i - 1] == '-')
                                return "a label must not end with '-'";
                        label = 0;
                        continue;
                }
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-'))
                        return "only letters, digits, '-' and '.' are allowed";
                if (ch == '-' && label == 0)
                        return "a label must not start with '-'";
                label++;
        }
        return NULL;
}

static const char *check_ip_or_hostname(const char *s)
{
        if (is_numeric_host(s))
                return is_ipv4(s) ? NULL : "invalid IPv4 address";
        return check_hostname(s);
}

static const char *check_port(const char *s, uint16_t *ret)
{
        unsigned long v = 0;
        size_t l = strlen(s);

        if (l == 0 || l > 5 || strspn(s, "0123456789") != l)
                return "invalid port";
        for (size_t i = 0; i < l; i++)
                v = v * 10 + (unsigned long)(s[i] - '0');
        if (v < 1 || v > 65535)
                return "port out of range (1..65535)";
        if (ret)
                *ret = (uint16_t)v;
        return NULL;
}

const char *config_check_name(char *s)
{
        size_t l = strlen(s);

        if (l > CONFIG_NAME_MAX)
                return "longer than 255 characters";
        if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != l)
                return "only letters, digits, '_', '.' and '-' are allowed";
        return NULL;
}

/* A node's host is stored without brackets: it goes to the resolver or inet_pton as is. */
const char *config_check_node_host(char *s)
{
        size_t l = strlen(s);
        char *colon = strchr(s, ':');

        if (s[0] == '[') {
                if (l < 2 || s[l - 1] != ']')
                        return "missing ']'";
                memmove(s, s + 1, l - 2);
                s[l - 2] = 0;
                return is_ipv6(s) ? NULL : "invalid IPv6 address";
        }
        if (colon) {
                if (!strchr(colon + 1, ':'))
                        return "the port goes in the port: key";
                return is_ipv6(s) ? NULL : "invalid IPv6 address";
        }
        return check_ip_or_hostname(s);
}

/* Route hosts are compared without regard to case: store them lower-cased. */
const char *config_check_route_host(char *s)
{
        const char *rest = s;

        for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');

        if (s[0] == '*') {
                if (s[1] == 0)
                        return "'*' alone would match every host: leave hosts: out instead";
                if (s[1] != '.')
                        return "'*' is only allowed as a whole leading label, as in *.example.com";
                rest = s + 2;
        }
        if (strchr(rest, '*'))
                return "'*' is only allowed as a whole leading label, as in *.example.com";

        if (rest[0] == '[') {
                size_t l = strlen(rest);
                char inner[INET6_ADDRSTRLEN + 1];

                if (rest != s || l < 3 || rest[l - 1] != ']' || l - 2 >= sizeof(inner))
                        return "invalid IPv6 address";
                memcpy(inner, rest + 1, l - 2);
                inner[l - 2] = 0;
                return is_ipv6(inner) ? NULL : "invalid IPv6 address";
        }
        if (strchr(rest, ':'))
                return "a port is not allowed (IPv6 addresses go in brackets)";
        if (rest != s && is_numeric_host(rest))
                return "'*.' must be followed by a domain name";
        return check_ip_or_hostname(rest);
}

/* The Host header sent upstream: host, IPv4 or [IPv6], then an optional :port. */
const char *config_check_host_port(char *s)
{
        char host[256];
        const char *port = NULL;
        size_t hl;

        if (s[0] == '[') {
                const char *e = strchr(s, ']');

                if (!e)
                        return "missing ']'";
                hl = (size_t)(e - s - 1);
                if (hl == 0 || hl >= INET6_ADDRSTRLEN)
                        return "invalid IPv6 address";
                memcpy(host, s + 1, hl);
                host[hl] = 0;
                if (!is_ipv6(host))
                        return "invalid IPv6 address";
                if (e[1] == ':')
                        port = e + 2;
                else if (e[1] != 0)
                        return "unexpected characters after ']'";
                return port ? check_port(port, NULL) : NULL;
        }

        port = strchr(s, ':');
        if (port && strchr(port + 1, ':'))
                return "IPv6 addresses must be in brackets";
        hl = port ? (size_t)(port - s) : strlen(s);
        if (hl >= sizeof(host))
                return "longer than 253 characters";
        memcpy(host, s, hl);
        host[hl] = 0;
        if (port) {
                const char *r = check_port(port + 1, NULL);

                if (r)
                        return r;
        }
        return check_ip_or_hostname(host);
}

const char *config_check_sni(char *s)
{
        if (is_ipv4(s) || is_ipv6(s))
                return "an IP address cannot be sent as a server name";
        return check_hostname(s);
}

const char *config_check_server_name(char *s)
{
        const char *rest = s;
        size_t l;

        for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        /* Clients send names without the root's dot: "a.example." would never match. */
        l = strlen(s);
        if (l > 1 && s[l - 1] == '.')
                s[l - 1] = 0;

        if (s[0] == '*') {
                if (s[1] != '.')
                        return "'*' is only allowed as a whole leading label, as in *.example.com";
                rest = s + 2;
        }
        if (strchr(rest, '*'))
                return "'*' is only allowed as a whole leading label, as in *.example.com";
        if (is_ipv4(rest) || is_ipv6(rest) || (rest != s && is_numeric_host(rest)))
                return "an IP address is never sent as a server name";
        return check_hostname(rest);
}

const char *config_check_absolute_path(char *s)
{
        if (s[0] != '/')
                return "must be an absolute path";
        return NULL;
}

const char *config_check_key_path(char *s)
{
        if (s[0] == '/')
                return NULL;
        if (strchr(s, '/') || streq(s, ".") || streq(s, ".."))
                return "must be an absolute path, or the name of a credential (LoadCredential=, "
                       "no '/'), which is looked up in $CREDENTIALS_DIRECTORY";
        return NULL;
}

/* An origin-form path: a route's (a trailing '*' for a prefix, no query) or a probe's (a
 * query allowed: probes often ask "/health?full=1"); nothing that would break a request line. */
static const char *check_origin_path(const char *s, bool route)
{
        if (s[0] != '/')
                return "must start with '/'";
        if (strlen(s) > CONFIG_ROUTE_PATH_MAX)
                return "longer than " STRINGIFY(CONFIG_ROUTE_PATH_MAX) " bytes";
        for (const char *p = s; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (route && ch == '*' && p[1] != 0)
                        return "'*' is only allowed as the last character";
                if (ch <= ' ' || ch == 0x7f)
                        return "spaces and control characters are not allowed";
                if (route && ch == '?')
                        return "a query or fragment is not part of a path";
                if (ch == '#')
                        return route ? "a query or fragment is not part of a path"
                                     : "a fragment is not sent in a request";
        }
        return NULL;
}

const char *config_check_path(char *s)
{
        return check_origin_path(s, true);
}

const char *config_check_probe_path(char *s)
{
        return check_origin_path(s, false);
}

static bool is_token_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               strchr("!#$%&'*+-.^_`|~", ch);
}

/* "Name: value", written into the probe's head as it is: a token, a colon, then a value
 * without CR, LF or NUL (which would end the header and smuggle another in). */
const char *config_check_probe_header(char *s)
{
        const char *colon = strchr(s, ':');

        if (!colon)
                return "expected 'Name: value' (no ':')";
        if (colon == s)
                return "the header name is empty";
        for (const char *p = s; p < colon; p++)
                if (!is_token_char(*p))
                        return "the header name is not a valid HTTP token";
        if (strlen(s) > CONFIG_HEALTH_HEADER_MAX)
                return "longer than " STRINGIFY(CONFIG_HEALTH_HEADER_MAX) " bytes";
        for (const char *p = colon + 1; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch == '\r' || ch == '\n')
                        return "CR and LF are not allowed in a header";
                if ((ch < ' ' && ch != '\t') || ch == 0x7f)
                        return "control characters are not allowed in a header";
        }
        return NULL;
}

/* RFC 9110 token; methods are case-sensitive on the wire, and all registered ones are upper
 * case, so "get" in a config means GET. */
const char *config_check_method(char *s)
{
        if (!*s)
                return "empty method";
        if (strlen(s) > CONFIG_METHOD_MAX)
                return "longer than " STRINGIFY(CONFIG_METHOD_MAX) " characters";
        for (char *p = s; *p; p++) {
                char ch = *p;

                if (ch >= 'a' && ch <= 'z')
                        *p = (char)(ch - 'a' + 'A');
                else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                           strchr("!#$%&'*+-.^_`|~", ch)))
                        return "not a valid HTTP token";
        }
        return NULL;
}

/* "ip:port", "[ipv6]:port", "*:port" / ":port" (when allow_wildcard), or, with a default
 * port, "ip" and a bare "ipv6". Numeric only: no resolver is running while config loads. */
const char *config_parse_address(const char *s, uint16_t default_port, bool allow_wildcard,
                                 struct sockaddr_storage *ret, socklen_t *ret_len)
{
        char host[INET6_ADDRSTRLEN + 1] = "";
        const char *port = NULL, *r;
        bool wildcard = false, v6_only = false;
        uint16_t p = default_port;
        size_t hl;

        if (s[0] == '[') {
                const char *e = strchr(s, ']');

                if (!e)
                        return "missing ']'";
                hl = (size_t)(e - s - 1);
                if (hl == 0 || hl >= sizeof(host))
                        return "invalid IPv6 address";
                memcpy(host, s + 1, hl);
                v6_only = true;
                if (e[1] == ':')
                        port = e + 2;
                else if (e[1] != 0)
                        return "unexpected characters after ']'";
        } else if ((s[0] == ':' && !strchr(s + 1, ':')) ||
                   (s[0] == '*' && (s[1] == ':' || s[1] == 0))) {
                wildcard = true;
                port = s[0] == ':' ? s + 1 : s[1] ? s + 2 : NULL;
        } else {
                const char *colon = strchr(s, ':');

                if (colon && strchr(colon + 1, ':')) {
                        if (default_port == 0)
                                return "IPv6 addresses must be in brackets, as in [::1]:80";
                        hl = strlen(s);
                } else {
                        hl = colon ? (size_t)(colon - s) : strlen(s);
                        port = colon ? colon + 1 : NULL;
                }
                if (hl == 0 || hl >= sizeof(host))
                        return "not a numeric IP address";
                memcpy(host, s, hl);
        }

        if (wildcard && !allow_wildcard)
                return "'*' is not allowed here";
        if (port) {
                r = check_port(port, &p);
                if (r)
                        return r;
        } else if (p == 0)
                return "missing port";

        memset(ret, 0, sizeof(*ret));
        if (wildcard) {
                /* One dual-stack socket serves both families where IPv6 exists. */
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

                in6->sin6_family = AF_INET6;
                in6->sin6_addr = in6addr_any;
                in6->sin6_port = htons(p);
                *ret_len = sizeof(*in6);
        } else if (!v6_only && is_ipv4(host)) {
                struct sockaddr_in *in = (struct sockaddr_in *)ret;

                in->sin_family = AF_INET;
                inet_pton(AF_INET, host, &in->sin_addr);
                in->sin_port = htons(p);
                *ret_len = sizeof(*in);
        } else if (is_ipv6(host)) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

                in6->sin6_family = AF_INET6;
                inet_pton(AF_INET6, host, &in6->sin6_addr);
                in6->sin6_port = htons(p);
                *ret_len = sizeof(*in6);
        } else
                return v6_only ? "invalid IPv6 address"
                               : "not a numeric IP address (names are not resolved here)";
        return NULL;
}

const char *config_check_dns_server(char *s)
{
        struct sockaddr_storage ss;
        socklen_t l;

        return config_parse_address(s, 53, false, &ss, &l);
}

const char *config_check_etcd_endpoint(char *s)
{
        struct sockaddr_storage ss;
        socklen_t l;
        size_t n = strlen(s);

        size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;

        if (scheme == 0)
                return "must be http://ADDRESS:PORT or https://ADDRESS:PORT";
        /* A trailing slash is taken, as etcdctl takes it. */
        if (n > scheme && s[n - 1] == '/')
                s[n - 1] = 0;
        const char *why = config_parse_address(s + scheme, 0, false, &ss, &l);
        return why ? why : NULL;
}

const char *config_check_readable_file(char *s)
{
        /* Read again when used (by the control loop, as lbproxy's user): this catches a typo
         * at load, where the error can point at the line. */
        if (access(s, R_OK) < 0)
                return strerror(errno);
        return NULL;
}

const char *config_check_etcd_prefix(char *s)
{
        size_t n = strlen(s);

        if (n == 0 || s[0] != '/' || s[n - 1] != '/')
                return "must begin and end with '/' (as /lbproxy/)";
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return "must not hold control characters";
        return NULL;
}

/* ---- durations ---- */

/* Units in nanoseconds, longest match first among those that fit. */
typedef struct DurationUnit {
        const char *suffix;
        uint64_t nsec;
} DurationUnit;

#define NSEC_PER_USEC UINT64_C(1000)
#define NSEC_PER_SEC (USEC_PER_SEC * NSEC_PER_USEC)

static const DurationUnit native_units[] = {
        {"us", NSEC_PER_USEC},
        {"ms", USEC_PER_MSEC * NSEC_PER_USEC},
        {"s", NSEC_PER_SEC},
        {"m", 60 * NSEC_PER_SEC},
        {"h", 3600 * NSEC_PER_SEC},
        {"d", 86400 * NSEC_PER_SEC},
};

static const DurationUnit go_units[] = {
        {"ns", 1},
        {"us", NSEC_PER_USEC},
        {"\xc2\xb5s", NSEC_PER_USEC}, /* U+00B5 micro sign */
        {"\xce\xbcs", NSEC_PER_USEC}, /* U+03BC Greek mu */
        {"ms", USEC_PER_MSEC * NSEC_PER_USEC},
        {"s", NSEC_PER_SEC},
        {"m", 60 * NSEC_PER_SEC},
        {"h", 3600 * NSEC_PER_SEC},
};

struct ConfigDurationSyntax {
        const DurationUnit *units;
        size_t n_units;
        bool go; /* a sign; "0" the only bare number; no spaces; units end where they end */
        const char *hint;
};

const ConfigDurationSyntax config_duration_native = {
        native_units, ELEMENTSOF(native_units), false,
        "expected seconds, or a number with a unit us, ms, s, m, h, d, as in 500ms or 1.5s",
};

/* Kubernetes' metav1.Duration, which is Go's time.ParseDuration. */
const ConfigDurationSyntax config_duration_go = {
        go_units, ELEMENTSOF(go_units), true,
        "expected a number with a unit ns, us, ms, s, m or h, as in 5s, 1.5s or 1m30s",
};

const char *config_duration_hint(const ConfigDurationSyntax *syntax)
{
        return syntax->hint;
}

int config_parse_duration_as(const char *s, const ConfigDurationSyntax *syntax,
                             uint64_t *ret_usec)
{
        const uint64_t max_nsec = CONFIG_DURATION_MAX * NSEC_PER_USEC;
        const char *p = s;
        uint64_t total = 0;
        bool first = true, neg = false;

        if (!s || !*s)
                return -EINVAL;
        if (syntax->go) {
                if (*p == '-' || *p == '+')
                        neg = *p++ == '-';
                /* Go takes "0" without a unit, and only that. */
                if (streq(p, "0")) {
                        *ret_usec = 0;
                        return 0;
                }
                if (!*p)
                        return -EINVAL;
        }

        while (*p) {
                uint64_t ipart = 0, mult = 0, add;
                double frac = 0, scale = 0.1;
                bool digits = false;
                size_t ul = 0;

                for (; *p >= '0' && *p <= '9'; p++) {
                        if (ipart > max_nsec)
                                return -ERANGE;
                        ipart = ipart * 10 + (uint64_t)(*p - '0');
                        digits = true;
                }
                if (*p == '.')
                        for (p++; *p >= '0' && *p <= '9'; p++) {
                                frac += (*p - '0') * scale;
                                scale /= 10;
                                digits = true;
                        }
                if (!digits)
                        return -EINVAL;

                while (!syntax->go && *p == ' ')
                        p++;
                for (size_t i = 0; i < syntax->n_units; i++) {
                        const char *u = syntax->units[i].suffix;
                        size_t l = strlen(u);

                        /* "ms" is not "m" then "s"; natively "5 seconds" is no unit at all. */
                        if (l > ul && strncmp(p, u, l) == 0 &&
                            (syntax->go || !(p[l] >= 'a' && p[l] <= 'z'))) {
                                mult = syntax->units[i].nsec;
                                ul = l;
                        }
                }
                if (mult == 0) {
                        /* A bare number is seconds, but only on its own: "1h30" is a typo. Go
                         * says "missing unit in duration". */
                        if (syntax->go || !first || *p)
                                return -EINVAL;
                        mult = NSEC_PER_SEC;
                }
                p += ul;
                while (!syntax->go && *p == ' ')
                        p++;

                if (ipart > max_nsec / mult)
                        return -ERANGE;
                add = ipart * mult + (uint64_t)llround(frac * (double)mult);
                if (add > max_nsec || total + add > max_nsec)
                        return -ERANGE;
                total += add;
                first = false;
        }

        if (neg && total > 0)
                return -EINVAL;
        /* Go's nanoseconds round up, so that a tiny timeout does not become none at all. */
        *ret_usec = syntax->go ? (total + NSEC_PER_USEC - 1) / NSEC_PER_USEC
                               : (total + NSEC_PER_USEC / 2) / NSEC_PER_USEC;
        return 0;
}

int config_parse_duration(const char *s, uint64_t *ret_usec)
{
        return config_parse_duration_as(s, &config_duration_native, ret_usec);
}

const char *config_format_duration(uint64_t usec, char buf[static CONFIG_DURATION_STR_MAX])
{
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                {"h", 3600 * USEC_PER_SEC},
                {"m", 60 * USEC_PER_SEC},
                {"s", USEC_PER_SEC},
                {"ms", USEC_PER_MSEC},
        };

        /* Days would be shorter but read worse than "48h"; stop at hours. */
        if (usec == 0) {
                snprintf(buf, CONFIG_DURATION_STR_MAX, "0s");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (usec % units[i].usec == 0) {
                        snprintf(buf, CONFIG_DURATION_STR_MAX, "%" PRIu64 "%s",
                                 usec / units[i].usec, units[i].suffix);
                        return buf;
                }
        snprintf(buf, CONFIG_DURATION_STR_MAX, "%" PRIu64 "us", usec);
        return buf;
}

bool config_boolean_word(const char *v, bool *ret)
{
        /* YAML 1.1 booleans, minus the single letters and on/off: the same words in native
         * and APISIX documents. */
        static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
        static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (streq(v, yes[i])) {
                        *ret = true;
                        return true;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (streq(v, no[i])) {
                        *ret = false;
                        return true;
                }
        return false;
}

/* ---- sizes of lists ---- */

const ConfigCount config_count_nodes = {"nodes", "upstream", CONFIG_NODES_MAX};
const ConfigCount config_count_route_upstreams = {"upstreams", "route", CONFIG_ROUTE_UPSTREAMS_MAX};
const ConfigCount config_count_route_paths = {"paths", "route", CONFIG_ROUTE_PATHS_MAX};
const ConfigCount config_count_route_hosts = {"hosts", "route", CONFIG_ROUTE_HOSTS_MAX};
const ConfigCount config_count_route_methods = {"methods", "route", CONFIG_ROUTE_METHODS_MAX};
const ConfigCount config_count_server_names = {"server names", "SNI route",
                                               CONFIG_SERVER_NAMES_MAX};
const ConfigCount config_count_health_headers = {"headers", "health check",
                                                 CONFIG_HEALTH_HEADERS_MAX};
const ConfigCount config_count_health_statuses = {"statuses", "list",
                                                  HEALTH_STATUS_MAX - HEALTH_STATUS_MIN + 1};

const char *config_check_count(const ConfigCount *count, size_t n,
                               char buf[static CONFIG_COUNT_STR_MAX])
{
        if (n <= count->max)
                return NULL;
        snprintf(buf, CONFIG_COUNT_STR_MAX, "too many %s (%zu; at most %zu per %s)", count->items,
                 n, count->max, count->per);
        return buf;
}

/* ---- nodes ---- */

const char *config_node_key(const char *host, uint16_t port, char buf[static CONFIG_NODE_KEY_MAX])
{
        struct in6_addr a;
        char h[INET6_ADDRSTRLEN];
        size_t l = strlen(host), o;

        if (inet_pton(AF_INET6, host, &a) == 1 && inet_ntop(AF_INET6, &a, h, sizeof(h))) {
                snprintf(buf, CONFIG_NODE_KEY_MAX, "[%s]:%u", h, (unsigned)port);
                return buf;
        }
        /* A checked host name has 253 characters at most. */
        if (l > CONFIG_NODE_KEY_MAX - 8)
                l = CONFIG_NODE_KEY_MAX - 8;
        for (o = 0; o < l; o++)
                buf[o] = (char)tolower((unsigned char)host[o]);
        snprintf(buf + o, CONFIG_NODE_KEY_MAX - o, ":%u", (unsigned)port);
        return buf;
}
