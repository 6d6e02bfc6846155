/* SPDX-License-Identifier: MIT */
/* Changes to a Config at run time (D-Bus): a deep copy to work on, and edits that check their
 * arguments with the loader's own validators (config-values.c) and ranges (config-internal.h),
 * then change the copy whole or not at all. Each edit builds what it adds aside, grows the
 * arrays it needs (which changes nothing a reader sees), and only then links the new object in,
 * so that running out of memory half-way leaves the Config as it was. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>

#include "config/config-edit.h"
#include "config/config-internal.h"

/* Where objects made by an edit are marked: they come from no file. */
#define RUNTIME_FILE "<runtime>"

/* Enough for "upstreams[18446744073709551615].weight". */
#define ARG_MAX 64

/* Enough for "[<escaped host>]:65535". */
#define NODE_STR_MAX (CONFIG_ESCAPE_MAX + 8)

/* ---- messages ---- */

static int edit_fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);

static int edit_fail(char **ret_error, int r, const char *fmt, ...)
{
        va_list ap;
        char *msg;
        int k;

        if (!ret_error)
                return r;
        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0) {
                /* An error without its message is no use to the caller: say what went wrong. */
                *ret_error = NULL;
                return -ENOMEM;
        }
        *ret_error = msg;
        return r;
}

static const char *esc(const char *s, char buf[static CONFIG_ESCAPE_MAX])
{
        return config_escape(s, strlen(s), buf);
}

static const char *node_string(const char *host, uint16_t port, char buf[static NODE_STR_MAX])
{
        char e[CONFIG_ESCAPE_MAX];

        snprintf(buf, NODE_STR_MAX, strchr(host, ':') ? "[%s]:%u" : "%s:%u", esc(host, e),
                 (unsigned)port);
        return buf;
}

/* ---- argument checks: 0, or -EINVAL with the message set, or -ENOMEM ---- */

static int check_range(const char *arg, int64_t v, int64_t min, int64_t max, char **ret_error)
{
        if (v < min || v > max)
                return edit_fail(ret_error, -EINVAL,
                                 "%s: %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", arg,
                                 v, min, max);
        return 0;
}

/* A copy of `s`, checked (and maybe normalized) by `check`: the copy is what gets stored. */
static int check_string(const char *arg, const char *what, const char *s,
                        const char *(*check)(char *), char **ret, char **ret_error)
{
        _cleanup_free_ char *copy = NULL;
        char e[CONFIG_ESCAPE_MAX];
        const char *why;

        if (!s || !*s)
                return edit_fail(ret_error, -EINVAL, "%s: must not be empty", arg);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        if (check) {
                why = check(copy);
                if (why)
                        return edit_fail(ret_error, -EINVAL, "%s: invalid %s '%s': %s", arg, what,
                                         esc(s, e), why);
        }
        *ret = TAKE_PTR(copy);
        return 0;
}

/* `what` is "upstream" or "route". ret may be NULL when only the check is wanted. */
static int check_name(const char *arg, const char *what, const char *s, char **ret,
                      char **ret_error)
{
        _cleanup_free_ char *copy = NULL;
        char e[CONFIG_ESCAPE_MAX];
        const char *why;

        if (!s || !*s)
                return edit_fail(ret_error, -EINVAL, "%s: must not be empty", arg);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        why = config_check_name(copy);
        if (why)
                return edit_fail(
                        ret_error, -EINVAL, "%s: '%s' is not a valid %s name (%s)", arg, esc(s, e),
                        what, strlen(s) > CONFIG_NAME_MAX ? why : "letters, digits, '_', '.', '-'");
        if (ret)
                *ret = TAKE_PTR(copy);
        return 0;
}

static int check_choice(const char *arg, const char *s, const char *const *names, size_t n,
                        int *ret, char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], known[256] = "";
        size_t o = 0;

        for (size_t i = 0; i < n; i++)
                if (streq(s, names[i])) {
                        *ret = (int)i;
                        return 0;
                }
        for (size_t i = 0; i < n && o < sizeof(known); i++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                      names[i]);
        return edit_fail(ret_error, -EINVAL, "%s: '%s' is not one of %s", arg, esc(s, e), known);
}

/* The size limit a file's list of the kind has. */
static int check_count(const char *arg, const ConfigCount *count, size_t n, char **ret_error)
{
        char buf[CONFIG_COUNT_STR_MAX];
        const char *why = config_check_count(count, n, buf);

        return why ? edit_fail(ret_error, -EINVAL, "%s: %s", arg, why) : 0;
}

/* Each entry checked as `arg[i]`; `l` must not be empty. */
static int check_strv(const char *arg, const char *what, char *const *l,
                      const char *(*check)(char *), const ConfigCount *count, char ***ret,
                      char **ret_error)
{
        _cleanup_strv_free_ char **t = NULL;
        size_t n = strv_length(l);
        char p[ARG_MAX];
        int r;

        r = check_count(arg, count, n, ret_error);
        if (r < 0)
                return r;
        t = calloc(n + 1, sizeof(char *));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(p, sizeof(p), "%s[%zu]", arg, i);
                r = check_string(p, what, l[i], check, &t[i], ret_error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* A duration option: -1 keeps the default, the rest as a file's durations allow. */
static int check_duration(const char *arg, int64_t v, uint64_t *ret, char **ret_error)
{
        int r;

        if (v == -1)
                return 0;
        r = check_range(arg, v, 0, (int64_t)CONFIG_DURATION_MAX, ret_error);
        if (r < 0)
                return r;
        *ret = (uint64_t)v;
        return 0;
}

/* ---- lookups ---- */

static ssize_t find_upstream(const Config *c, const char *name)
{
        for (size_t i = 0; i < c->n_upstreams; i++)
                if (streq_ptr(c->upstreams[i]->name, name))
                        return (ssize_t)i;
        return -1;
}

static ssize_t find_route(const Config *c, const char *name)
{
        for (size_t i = 0; i < c->n_routes; i++)
                if (streq_ptr(c->routes[i]->name, name))
                        return (ssize_t)i;
        return -1;
}

/* Among the first n. */
static ssize_t find_route_upstream(const ConfigRouteUpstream *upstreams, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(upstreams[i].name, name))
                        return (ssize_t)i;
        return -1;
}

/* "::1" and "0::1" are one node; so are "Example.com" and "example.com". */
static bool node_host_equal(const char *a, const char *b)
{
        struct in6_addr x, y;

        if (!a || !b)
                return a == b;
        if (inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1)
                return memcmp(&x, &y, sizeof(x)) == 0;
        return strcasecmp(a, b) == 0;
}

/* Among the first n nodes. */
static ssize_t find_node(const ConfigNode *nodes, size_t n, const char *host, uint16_t port)
{
        for (size_t i = 0; i < n; i++)
                if (nodes[i].port == port && node_host_equal(nodes[i].host, host))
                        return (ssize_t)i;
        return -1;
}

/* ---- ownership ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(ConfigUpstream *, config_upstream_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfigRoute *, config_route_unref);

/* Makes room for one more item without changing the count: what the Config says stays the same
 * whether or not a later step fails. */
static int array_reserve(void **array, size_t n, size_t item_size)
{
        void *a;

        a = reallocarray(*array, n + 1, item_size);
        if (!a)
                return -ENOMEM;
        *array = a;
        return 0;
}

/* The mark of objects made here, at RUNTIME_FILE in c->files, appended when missing. Growing
 * the array moves no string, so the marks pointing into c->files stay valid. Every edit calls
 * this last, after everything else that may fail. */
static int runtime_mark(Config *c, ConfigMark *ret)
{
        size_t n = strv_length(c->files);
        char **l, *s;

        for (size_t i = 0; i < n; i++)
                if (streq(c->files[i], RUNTIME_FILE)) {
                        *ret = (ConfigMark){.file = c->files[i], .line = 1, .column = 1};
                        return 0;
                }

        s = (char *)config_file_name_new(RUNTIME_FILE);
        if (!s)
                return -ENOMEM;
        l = reallocarray(c->files, n + 2, sizeof(char *));
        if (!l) {
                config_file_name_unref(s);
                return -ENOMEM;
        }
        l[n] = s;
        l[n + 1] = NULL;
        c->files = l;
        *ret = (ConfigMark){.file = s, .line = 1, .column = 1};
        return 0;
}

/* ---- copy ---- */

static int strdup_ptr(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int strv_copy(char *const *l, char ***ret)
{
        _cleanup_strv_free_ char **t = NULL;
        size_t n = strv_length(l);

        *ret = NULL;
        if (!l)
                return 0;
        t = calloc(n + 1, sizeof(char *));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                t[i] = strdup(l[i]);
                if (!t[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* Marks stay as they are: the copy holds the same file names, by reference. */
static ConfigMark mark_copy(const Config *from, const Config *to, ConfigMark m)
{
        return m;
}

static int tls_copy(const ConfigTls *t, ConfigTls *ret)
{
        int r;

        *ret = *t;
        ret->ca_file = ret->sni = NULL;
        r = strdup_ptr(t->ca_file, &ret->ca_file);
        if (r < 0)
                return r;
        return strdup_ptr(t->sni, &ret->sni);
}

/* Each item copier takes every scalar at once and then replaces each pointer, all of them
 * cleared first: `ret` is already counted in its array, so config_unref() must find only
 * pointers of the copy there, whatever step fails. */

static int listener_copy(const Config *from, Config *to, const ConfigListener *l,
                         ConfigListener *ret)
{
        int r;

        *ret = *l;
        ret->name = ret->listen = ret->upstream = NULL;
        ret->certificates = NULL;
        ret->n_certificates = 0;
        ret->sni_routes = NULL;
        ret->n_sni_routes = 0;
        ret->mark = mark_copy(from, to, l->mark);
        r = strdup_ptr(l->name, &ret->name);
        if (r >= 0)
                r = strdup_ptr(l->listen, &ret->listen);
        if (r >= 0)
                r = strdup_ptr(l->upstream, &ret->upstream);
        if (r < 0)
                return r;

        if (l->n_certificates > 0) {
                ret->certificates = calloc(l->n_certificates, sizeof(ConfigCertificate));
                if (!ret->certificates)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_certificates; i++) {
                const ConfigCertificate *c = l->certificates + i;
                ConfigCertificate *n = ret->certificates + i;

                n->mark = mark_copy(from, to, c->mark);
                ret->n_certificates++;
                r = strdup_ptr(c->cert_file, &n->cert_file);
                if (r >= 0)
                        r = strdup_ptr(c->key_file, &n->key_file);
                if (r >= 0)
                        r = strdup_ptr(c->ocsp_file, &n->ocsp_file);
                if (r < 0)
                        return r;
        }

        if (l->n_sni_routes > 0) {
                ret->sni_routes = calloc(l->n_sni_routes, sizeof(ConfigSniRoute));
                if (!ret->sni_routes)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_sni_routes; i++) {
                const ConfigSniRoute *sr = l->sni_routes + i;
                ConfigSniRoute *n = ret->sni_routes + i;

                n->mark = mark_copy(from, to, sr->mark);
                ret->n_sni_routes++;
                r = strv_copy(sr->server_names, &n->server_names);
                if (r >= 0)
                        r = strdup_ptr(sr->upstream, &n->upstream);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A copy of an upstream to change: shared objects are never changed in place. */
static int upstream_clone(const ConfigUpstream *u, ConfigUpstream **ret)
{
        _cleanup_(config_upstream_unrefp) ConfigUpstream *n = config_upstream_new(u->object.file);
        ConfigObject o;
        int r;

        if (!n)
                return -ENOMEM;
        o = n->object;
        *n = *u;
        n->object = o;
        n->name = n->upstream_host = n->balancer = NULL;
        n->nodes = NULL;
        n->n_nodes = 0;
        n->tls.ca_file = n->tls.sni = NULL;

        r = strdup_ptr(u->name, &n->name);
        if (r >= 0)
                r = strdup_ptr(u->upstream_host, &n->upstream_host);
        if (r >= 0)
                r = strdup_ptr(u->balancer, &n->balancer);
        if (r >= 0)
                r = tls_copy(&u->tls, &n->tls);
        if (r < 0)
                return r;

        if (u->n_nodes > 0) {
                n->nodes = calloc(u->n_nodes, sizeof(ConfigNode));
                if (!n->nodes)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < u->n_nodes; i++) {
                n->nodes[i] = u->nodes[i];
                n->nodes[i].host = NULL;
                n->n_nodes++;
                r = strdup_ptr(u->nodes[i].host, &n->nodes[i].host);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(n);
        return 0;
}

static int route_clone(const ConfigRoute *rt, ConfigRoute **ret)
{
        _cleanup_(config_route_unrefp) ConfigRoute *n = config_route_new(rt->object.file);
        ConfigObject o;
        int r;

        if (!n)
                return -ENOMEM;
        o = n->object;
        *n = *rt;
        n->object = o;
        n->name = NULL;
        n->paths = n->hosts = n->methods = NULL;
        n->upstreams = NULL;
        n->n_upstreams = 0;

        r = strdup_ptr(rt->name, &n->name);
        if (r >= 0)
                r = strv_copy(rt->paths, &n->paths);
        if (r >= 0)
                r = strv_copy(rt->hosts, &n->hosts);
        if (r >= 0)
                r = strv_copy(rt->methods, &n->methods);
        if (r < 0)
                return r;

        if (rt->n_upstreams > 0) {
                n->upstreams = calloc(rt->n_upstreams, sizeof(ConfigRouteUpstream));
                if (!n->upstreams)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < rt->n_upstreams; i++) {
                n->upstreams[i] = rt->upstreams[i];
                n->upstreams[i].name = NULL;
                n->n_upstreams++;
                r = strdup_ptr(rt->upstreams[i].name, &n->upstreams[i].name);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(n);
        return 0;
}

static int files_copy(char *const *l, char ***ret)
{
        size_t n = strv_length(l);
        char **t = calloc(n + 1, sizeof(char *));

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                t[i] = (char *)config_file_name_ref(l[i]);
        *ret = t;
        return 0;
}

int config_copy(const Config *c, Config **ret)
{
        _cleanup_(config_unrefp) Config *n = NULL;
        int r;

        assert(c);
        assert(ret);

        n = calloc(1, sizeof(Config));
        if (!n)
                return -ENOMEM;
        /* The scalar settings at once; then every pointer is cleared before it gets a copy of
         * its own, so that config_unref(n) never reaches into `c`. */
        *n = *c;
        atomic_init(&n->n_ref, 1);
        n->files = NULL;
        n->listeners = NULL;
        n->n_listeners = 0;
        n->upstreams = NULL;
        n->n_upstreams = 0;
        n->routes = NULL;
        n->n_routes = 0;
        n->dns.servers = NULL;
        n->tls.ca_file = n->tls.sni = NULL;

        /* First: the marks copied below point into these. */
        r = files_copy(c->files, &n->files);
        if (r >= 0)
                r = strv_copy(c->dns.servers, &n->dns.servers);
        if (r >= 0)
                r = tls_copy(&c->tls, &n->tls);
        if (r < 0)
                return r;

        if (c->n_listeners > 0) {
                n->listeners = calloc(c->n_listeners, sizeof(ConfigListener));
                if (!n->listeners)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < c->n_listeners; i++) {
                n->n_listeners++;
                r = listener_copy(c, n, c->listeners + i, n->listeners + i);
                if (r < 0)
                        return r;
        }

        /* Upstreams and routes are shared: an edit replaces what it changes. */
        n->upstreams = calloc(c->n_upstreams + 1, sizeof(ConfigUpstream *));
        n->routes = calloc(c->n_routes + 1, sizeof(ConfigRoute *));
        if (!n->upstreams || !n->routes)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_upstreams; i++)
                n->upstreams[n->n_upstreams++] = config_upstream_ref(c->upstreams[i]);
        for (size_t i = 0; i < c->n_routes; i++)
                n->routes[n->n_routes++] = config_route_ref(c->routes[i]);

        *ret = TAKE_PTR(n);
        return 0;
}

/* ---- upstreams ---- */

/* The nodes argument, checked as the loader checks a file's nodes: list. */
static int check_nodes(const ConfigNode *nodes, size_t n_nodes, ConfigUpstream *u, char **ret_error)
{
        char arg[ARG_MAX], a[NODE_STR_MAX];
        int r;

        if (n_nodes == 0)
                return edit_fail(ret_error, -EINVAL, "nodes: at least one node is required");
        r = check_count("nodes", &config_count_nodes, n_nodes, ret_error);
        if (r < 0)
                return r;
        assert(nodes);

        u->nodes = calloc(n_nodes, sizeof(ConfigNode));
        if (!u->nodes)
                return -ENOMEM;
        for (size_t i = 0; i < n_nodes; i++) {
                ConfigNode *n = u->nodes + i;
                ssize_t k;

                u->n_nodes++;
                snprintf(arg, sizeof(arg), "nodes[%zu].host", i);
                r = check_string(arg, "host", nodes[i].host, config_check_node_host, &n->host,
                                 ret_error);
                if (r < 0)
                        return r;
                snprintf(arg, sizeof(arg), "nodes[%zu].port", i);
                r = check_range(arg, nodes[i].port, 1, CONFIG_PORT_MAX, ret_error);
                if (r < 0)
                        return r;
                snprintf(arg, sizeof(arg), "nodes[%zu].weight", i);
                r = check_range(arg, nodes[i].weight, 0, CONFIG_WEIGHT_MAX, ret_error);
                if (r < 0)
                        return r;
                n->port = nodes[i].port;
                n->weight = nodes[i].weight;

                /* Nodes are found by host and port later: one of each. */
                k = find_node(u->nodes, i, n->host, n->port);
                if (k >= 0)
                        return edit_fail(ret_error, -EINVAL,
                                         "nodes[%zu]: %s is listed already (as nodes[%zd])", i,
                                         node_string(n->host, n->port, a), k);
        }
        return 0;
}

/* The options as an upstream's keys in a file; the tls fields are then merged with the
 * top-level tls: block, as config_finish() does for a file's upstreams. */
static int check_upstream_options(const Config *c, const ConfigUpstreamOptions *o,
                                  ConfigUpstream *u, char **ret_error)
{
        int r, k;

        if (o->pass_host) {
                r = check_choice("options.pass_host", o->pass_host, config_pass_host_names,
                                 _PASS_HOST_MAX, &k, ret_error);
                if (r < 0)
                        return r;
                u->pass_host = (PassHost)k;
        }
        if (o->upstream_host) {
                r = check_string("options.upstream_host", "host", o->upstream_host,
                                 config_check_host_port, &u->upstream_host, ret_error);
                if (r < 0)
                        return r;
        }
        if (u->pass_host == PASS_HOST_REWRITE && !u->upstream_host)
                return edit_fail(ret_error, -EINVAL,
                                 "options.upstream_host: required when pass_host is rewrite");
        if (u->pass_host != PASS_HOST_REWRITE && u->upstream_host)
                return edit_fail(ret_error, -EINVAL,
                                 "options.upstream_host: only allowed when pass_host is rewrite");

        k = 0;
        if (o->balancer) {
                r = check_choice("options.balancer", o->balancer, config_balancer_names,
                                 CONFIG_BALANCER_MAX, &k, ret_error);
                if (r < 0)
                        return r;
        }
        u->balancer = strdup(config_balancer_names[k]);
        if (!u->balancer)
                return -ENOMEM;

        if (o->sni) {
                r = check_string("options.sni", "server name", o->sni, config_check_sni,
                                 &u->tls.sni, ret_error);
                if (r < 0)
                        return r;
        }
        if (o->ca_file) {
                r = check_string("options.ca_file", "file", o->ca_file, NULL, &u->tls.ca_file,
                                 ret_error);
                if (r < 0)
                        return r;
        }
        if (o->verify != -1) {
                r = check_range("options.verify", o->verify, -1, 1, ret_error);
                if (r < 0)
                        return r;
                u->tls.verify = o->verify;
        }

        if (o->retries != -1) {
                r = check_range("options.retries", o->retries, 0, CONFIG_RETRIES_MAX, ret_error);
                if (r < 0)
                        return r;
                u->retries = (unsigned)o->retries;
        }
        if (o->keepalive_pool != -1) {
                r = check_range("options.keepalive_pool", o->keepalive_pool, 0,
                                CONFIG_KEEPALIVE_POOL_MAX, ret_error);
                if (r < 0)
                        return r;
                u->keepalive_pool = (unsigned)o->keepalive_pool;
        }
        r = check_duration("options.connect_timeout_usec", o->connect_timeout_usec,
                           &u->connect_timeout_usec, ret_error);
        if (r >= 0)
                r = check_duration("options.send_timeout_usec", o->send_timeout_usec,
                                   &u->send_timeout_usec, ret_error);
        if (r >= 0)
                r = check_duration("options.read_timeout_usec", o->read_timeout_usec,
                                   &u->read_timeout_usec, ret_error);
        if (r < 0)
                return r;

        /* The top-level tls: block fills what the options left unsaid. */
        if (!u->tls.ca_file && c->tls.ca_file) {
                u->tls.ca_file = strdup(c->tls.ca_file);
                if (!u->tls.ca_file)
                        return -ENOMEM;
        }
        if (u->tls.verify < 0)
                u->tls.verify = c->tls.verify;
        return 0;
}

int config_edit_add_upstream(Config *c, const char *name, const char *scheme,
                             const ConfigNode *nodes, size_t n_nodes,
                             const ConfigUpstreamOptions *options, char **ret_error)
{
        const ConfigUpstreamOptions defaults = CONFIG_UPSTREAM_OPTIONS_INIT;
        _cleanup_(config_upstream_unrefp) ConfigUpstream *up = config_upstream_new(NULL);
        char e[CONFIG_ESCAPE_MAX];
        ConfigMark m;
        int r, k;

        assert(c);
        if (ret_error)
                *ret_error = NULL;
        if (!options)
                options = &defaults;
        if (!up)
                return -ENOMEM;
#define u (*up)

        config_upstream_init(&u);
        r = check_name("name", "upstream", name, &u.name, ret_error);
        if (r < 0)
                return r;
        /* D-Bus has no optional positional arguments: "" is how a caller leaves it out. */
        if (scheme && *scheme) {
                r = check_choice("scheme", scheme, config_scheme_names, _SCHEME_MAX, &k, ret_error);
                if (r < 0)
                        return r;
                u.scheme = (Scheme)k;
        }
        r = check_nodes(nodes, n_nodes, &u, ret_error);
        if (r < 0)
                return r;
        r = check_upstream_options(c, options, &u, ret_error);
        if (r < 0)
                return r;
        if (options->retries == -1)
                u.retries = config_upstream_default_retries(u.n_nodes);

        if (find_upstream(c, u.name) >= 0)
                return edit_fail(ret_error, -EEXIST, "name: an upstream named '%s' exists already",
                                 esc(u.name, e));

        r = array_reserve((void **)&c->upstreams, c->n_upstreams, sizeof(ConfigUpstream *));
        if (r < 0)
                return r;
        r = runtime_mark(c, &m);
        if (r < 0)
                return r;

        u.object.file = config_file_name_ref(m.file);
        u.mark = m;
        for (size_t i = 0; i < u.n_nodes; i++)
                u.nodes[i].mark = m;
#undef u
        c->upstreams[c->n_upstreams++] = TAKE_PTR(up);
        return 0;
}

/* A tcp listener's upstream, or one of a tls-passthrough listener's SNI routes'. */
static bool listener_uses_upstream(const ConfigListener *l, const char *name)
{
        if (l->protocol == LISTENER_TCP && streq_ptr(l->upstream, name))
                return true;
        for (size_t i = 0; i < l->n_sni_routes; i++)
                if (streq_ptr(l->sni_routes[i].upstream, name))
                        return true;
        return false;
}

int config_edit_remove_upstream(Config *c, const char *name, char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], e2[CONFIG_ESCAPE_MAX];
        ssize_t i;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_name("name", "upstream", name, NULL, ret_error);
        if (r < 0)
                return r;
        i = find_upstream(c, name);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "name: no upstream named '%s'", esc(name, e));
        for (size_t j = 0; j < c->n_routes; j++)
                if (find_route_upstream(c->routes[j]->upstreams, c->routes[j]->n_upstreams,
                                        name) >= 0)
                        return edit_fail(ret_error, -EBUSY, "upstream '%s' is used by route '%s'",
                                         esc(name, e), esc(c->routes[j]->name, e2));
        for (size_t j = 0; j < c->n_listeners; j++)
                if (listener_uses_upstream(c->listeners + j, name))
                        return edit_fail(ret_error, -EBUSY,
                                         "upstream '%s' is used by listener '%s'", esc(name, e),
                                         esc(c->listeners[j].name, e2));

        config_upstream_unref(c->upstreams[i]);
        memmove(c->upstreams + i, c->upstreams + i + 1,
                (c->n_upstreams - (size_t)i - 1) * sizeof(ConfigUpstream *));
        c->n_upstreams--;
        return 0;
}

/* ---- nodes ---- */

/* The arguments naming a node: upstream, host (returned normalized) and port. */
static int check_node_args(const char *upstream, const char *host, uint16_t port, char **ret_host,
                           char **ret_error)
{
        int r;

        r = check_name("upstream", "upstream", upstream, NULL, ret_error);
        if (r < 0)
                return r;
        r = check_string("host", "host", host, config_check_node_host, ret_host, ret_error);
        if (r < 0)
                return r;
        return check_range("port", port, 1, CONFIG_PORT_MAX, ret_error);
}

static int lookup_upstream(Config *c, const char *arg, const char *name, ConfigUpstream **ret,
                           char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX];
        ssize_t i;

        ConfigUpstream *copy;
        int r;

        i = find_upstream(c, name);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "%s: no upstream named '%s'", arg,
                                 esc(name, e));
        /* Shared with other Configs: changed in a copy of its own. */
        r = upstream_clone(c->upstreams[i], &copy);
        if (r < 0)
                return r;
        config_upstream_unref(c->upstreams[i]);
        *ret = c->upstreams[i] = copy;
        return 0;
}

static int lookup_node(ConfigUpstream *u, const char *host, uint16_t port, size_t *ret,
                       char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], a[NODE_STR_MAX];
        ssize_t i;

        i = find_node(u->nodes, u->n_nodes, host, port);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "upstream '%s' has no node %s",
                                 esc(u->name, e), node_string(host, port, a));
        *ret = (size_t)i;
        return 0;
}

int config_edit_add_node(Config *c, const char *upstream, const char *host, uint16_t port,
                         uint32_t weight, char **ret_error)
{
        _cleanup_free_ char *h = NULL;
        char e[CONFIG_ESCAPE_MAX], a[NODE_STR_MAX];
        ConfigUpstream *u = NULL;
        ConfigMark m;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_node_args(upstream, host, port, &h, ret_error);
        if (r < 0)
                return r;
        r = check_range("weight", weight, 0, CONFIG_WEIGHT_MAX, ret_error);
        if (r < 0)
                return r;
        r = lookup_upstream(c, "upstream", upstream, &u, ret_error);
        if (r < 0)
                return r;
        if (find_node(u->nodes, u->n_nodes, h, port) >= 0)
                return edit_fail(ret_error, -EEXIST, "upstream '%s' has node %s already",
                                 esc(u->name, e), node_string(h, port, a));
        r = check_count("upstream", &config_count_nodes, u->n_nodes + 1, ret_error);
        if (r < 0)
                return r;

        r = array_reserve((void **)&u->nodes, u->n_nodes, sizeof(ConfigNode));
        if (r < 0)
                return r;
        r = runtime_mark(c, &m);
        if (r < 0)
                return r;
        u->nodes[u->n_nodes++] = (ConfigNode){
                .host = TAKE_PTR(h),
                .port = port,
                .weight = weight,
                .mark = m,
        };
        return 0;
}

int config_edit_remove_node(Config *c, const char *upstream, const char *host, uint16_t port,
                            char **ret_error)
{
        _cleanup_free_ char *h = NULL;
        char e[CONFIG_ESCAPE_MAX], a[NODE_STR_MAX];
        ConfigUpstream *u = NULL;
        size_t i = 0;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_node_args(upstream, host, port, &h, ret_error);
        if (r < 0)
                return r;
        r = lookup_upstream(c, "upstream", upstream, &u, ret_error);
        if (r < 0)
                return r;
        r = lookup_node(u, h, port, &i, ret_error);
        if (r < 0)
                return r;
        /* A file's upstream needs a node too: an empty one could only fail every request. */
        if (u->n_nodes == 1)
                return edit_fail(ret_error, -EINVAL,
                                 "node %s is the last of upstream '%s' (an upstream needs at "
                                 "least one node)",
                                 node_string(h, port, a), esc(u->name, e));

        free(u->nodes[i].host);
        memmove(u->nodes + i, u->nodes + i + 1, (u->n_nodes - i - 1) * sizeof(ConfigNode));
        u->n_nodes--;
        return 0;
}

int config_edit_set_node_weight(Config *c, const char *upstream, const char *host, uint16_t port,
                                uint32_t weight, char **ret_error)
{
        _cleanup_free_ char *h = NULL;
        ConfigUpstream *u = NULL;
        size_t i = 0;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_node_args(upstream, host, port, &h, ret_error);
        if (r < 0)
                return r;
        r = check_range("weight", weight, 0, CONFIG_WEIGHT_MAX, ret_error);
        if (r < 0)
                return r;
        r = lookup_upstream(c, "upstream", upstream, &u, ret_error);
        if (r < 0)
                return r;
        r = lookup_node(u, h, port, &i, ret_error);
        if (r < 0)
                return r;

        u->nodes[i].weight = weight;
        return 0;
}

/* ---- routes ---- */

static int check_route_upstreams(const ConfigRouteUpstream *upstreams, size_t n_upstreams,
                                 ConfigRoute *rt, char **ret_error)
{
        char arg[ARG_MAX], e[CONFIG_ESCAPE_MAX];
        int r;

        if (n_upstreams == 0)
                return edit_fail(ret_error, -EINVAL,
                                 "upstreams: at least one upstream is required");
        r = check_count("upstreams", &config_count_route_upstreams, n_upstreams, ret_error);
        if (r < 0)
                return r;
        assert(upstreams);

        rt->upstreams = calloc(n_upstreams, sizeof(ConfigRouteUpstream));
        if (!rt->upstreams)
                return -ENOMEM;
        for (size_t i = 0; i < n_upstreams; i++) {
                ConfigRouteUpstream *ru = rt->upstreams + i;
                ssize_t k;

                rt->n_upstreams++;
                snprintf(arg, sizeof(arg), "upstreams[%zu].name", i);
                r = check_name(arg, "upstream", upstreams[i].name, &ru->name, ret_error);
                if (r < 0)
                        return r;
                /* Found by name later (weights, removal): one of each. */
                k = find_route_upstream(rt->upstreams, i, ru->name);
                if (k >= 0)
                        return edit_fail(ret_error, -EINVAL,
                                         "%s: '%s' is listed already (as upstreams[%zd])", arg,
                                         esc(ru->name, e), k);
                snprintf(arg, sizeof(arg), "upstreams[%zu].weight", i);
                r = check_range(arg, upstreams[i].weight, 0, CONFIG_WEIGHT_MAX, ret_error);
                if (r < 0)
                        return r;
                ru->weight = upstreams[i].weight;
        }
        return 0;
}

static int check_route_options(const ConfigRouteOptions *o, ConfigRoute *rt, char **ret_error)
{
        int r;

        if (!o)
                return 0;
        if (o->hosts) {
                if (!o->hosts[0])
                        return edit_fail(ret_error, -EINVAL,
                                         "options.hosts: must not be empty (leave it out to match "
                                         "any host)");
                r = check_strv("options.hosts", "host", o->hosts, config_check_route_host,
                               &config_count_route_hosts, &rt->hosts, ret_error);
                if (r < 0)
                        return r;
        }
        if (o->methods) {
                if (!o->methods[0])
                        return edit_fail(ret_error, -EINVAL,
                                         "options.methods: must not be empty (leave it out to "
                                         "match any method)");
                r = check_strv("options.methods", "method", o->methods, config_check_method,
                               &config_count_route_methods, &rt->methods, ret_error);
                if (r < 0)
                        return r;
        }
        rt->priority = o->priority;
        return 0;
}

int config_edit_add_route(Config *c, const char *name, char **paths,
                          const ConfigRouteUpstream *upstreams, size_t n_upstreams,
                          const ConfigRouteOptions *options, char **ret_error)
{
        _cleanup_(config_route_unrefp) ConfigRoute *rtp = config_route_new(NULL);
        char e[CONFIG_ESCAPE_MAX], arg[ARG_MAX];
        ConfigMark m;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;
        if (!rtp)
                return -ENOMEM;
#define rt (*rtp)

        r = check_name("name", "route", name, &rt.name, ret_error);
        if (r < 0)
                return r;
        if (!paths || !paths[0])
                return edit_fail(ret_error, -EINVAL, "paths: at least one path is required");
        r = check_strv("paths", "path", paths, config_check_path, &config_count_route_paths,
                       &rt.paths, ret_error);
        if (r < 0)
                return r;
        r = check_route_upstreams(upstreams, n_upstreams, &rt, ret_error);
        if (r < 0)
                return r;
        r = check_route_options(options, &rt, ret_error);
        if (r < 0)
                return r;

        if (find_route(c, rt.name) >= 0)
                return edit_fail(ret_error, -EEXIST, "name: a route named '%s' exists already",
                                 esc(rt.name, e));
        for (size_t i = 0; i < rt.n_upstreams; i++)
                if (find_upstream(c, rt.upstreams[i].name) < 0) {
                        snprintf(arg, sizeof(arg), "upstreams[%zu].name", i);
                        return edit_fail(ret_error, -ENOENT, "%s: no upstream named '%s'", arg,
                                         esc(rt.upstreams[i].name, e));
                }

        r = array_reserve((void **)&c->routes, c->n_routes, sizeof(ConfigRoute *));
        if (r < 0)
                return r;
        r = runtime_mark(c, &m);
        if (r < 0)
                return r;

        rt.object.file = config_file_name_ref(m.file);
        rt.mark = m;
        for (size_t i = 0; i < rt.n_upstreams; i++)
                rt.upstreams[i].mark = m;
#undef rt
        c->routes[c->n_routes++] = TAKE_PTR(rtp);
        return 0;
}

int config_edit_remove_route(Config *c, const char *name, char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX];
        ssize_t i;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_name("name", "route", name, NULL, ret_error);
        if (r < 0)
                return r;
        i = find_route(c, name);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "name: no route named '%s'", esc(name, e));

        config_route_unref(c->routes[i]);
        memmove(c->routes + i, c->routes + i + 1,
                (c->n_routes - (size_t)i - 1) * sizeof(ConfigRoute *));
        c->n_routes--;
        return 0;
}

static int lookup_route(Config *c, const char *route, ConfigRoute **ret, char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX];
        ssize_t i;

        ConfigRoute *copy;
        int r;

        i = find_route(c, route);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "route: no route named '%s'", esc(route, e));
        r = route_clone(c->routes[i], &copy);
        if (r < 0)
                return r;
        config_route_unref(c->routes[i]);
        *ret = c->routes[i] = copy;
        return 0;
}

static int lookup_route_upstream(ConfigRoute *rt, const char *upstream, size_t *ret,
                                 char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], e2[CONFIG_ESCAPE_MAX];
        ssize_t i;

        i = find_route_upstream(rt->upstreams, rt->n_upstreams, upstream);
        if (i < 0)
                return edit_fail(ret_error, -ENOENT, "route '%s' has no upstream '%s'",
                                 esc(rt->name, e), esc(upstream, e2));
        *ret = (size_t)i;
        return 0;
}

int config_edit_set_route_upstream_weight(Config *c, const char *route, const char *upstream,
                                          uint32_t weight, char **ret_error)
{
        ConfigRoute *rt = NULL;
        size_t i = 0;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        /* Every argument before the lookups: a bad weight is InvalidArgs whatever exists. */
        r = check_name("route", "route", route, NULL, ret_error);
        if (r >= 0)
                r = check_name("upstream", "upstream", upstream, NULL, ret_error);
        if (r >= 0)
                r = check_range("weight", weight, 0, CONFIG_WEIGHT_MAX, ret_error);
        if (r >= 0)
                r = lookup_route(c, route, &rt, ret_error);
        if (r >= 0)
                r = lookup_route_upstream(rt, upstream, &i, ret_error);
        if (r < 0)
                return r;

        rt->upstreams[i].weight = weight;
        return 0;
}

int config_edit_add_route_upstream(Config *c, const char *route, const char *upstream,
                                   uint32_t weight, char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], e2[CONFIG_ESCAPE_MAX];
        _cleanup_free_ char *name = NULL;
        ConfigUpstream *u = NULL;
        ConfigRoute *rt = NULL;
        ConfigMark m;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_name("route", "route", route, NULL, ret_error);
        if (r >= 0)
                r = check_name("upstream", "upstream", upstream, &name, ret_error);
        if (r >= 0)
                r = check_range("weight", weight, 0, CONFIG_WEIGHT_MAX, ret_error);
        if (r >= 0)
                r = lookup_route(c, route, &rt, ret_error);
        if (r >= 0)
                r = lookup_upstream(c, "upstream", upstream, &u, ret_error);
        if (r < 0)
                return r;
        if (find_route_upstream(rt->upstreams, rt->n_upstreams, upstream) >= 0)
                return edit_fail(ret_error, -EEXIST, "route '%s' has upstream '%s' already",
                                 esc(rt->name, e), esc(upstream, e2));
        r = check_count("route", &config_count_route_upstreams, rt->n_upstreams + 1, ret_error);
        if (r < 0)
                return r;

        r = array_reserve((void **)&rt->upstreams, rt->n_upstreams, sizeof(ConfigRouteUpstream));
        if (r < 0)
                return r;
        r = runtime_mark(c, &m);
        if (r < 0)
                return r;
        rt->upstreams[rt->n_upstreams++] = (ConfigRouteUpstream){
                .name = TAKE_PTR(name),
                .weight = weight,
                .mark = m,
        };
        return 0;
}

int config_edit_remove_route_upstream(Config *c, const char *route, const char *upstream,
                                      char **ret_error)
{
        char e[CONFIG_ESCAPE_MAX], e2[CONFIG_ESCAPE_MAX];
        ConfigRoute *rt = NULL;
        size_t i = 0;
        int r;

        assert(c);
        if (ret_error)
                *ret_error = NULL;

        r = check_name("route", "route", route, NULL, ret_error);
        if (r >= 0)
                r = check_name("upstream", "upstream", upstream, NULL, ret_error);
        if (r >= 0)
                r = lookup_route(c, route, &rt, ret_error);
        if (r >= 0)
                r = lookup_route_upstream(rt, upstream, &i, ret_error);
        if (r < 0)
                return r;
        /* As in a file: a route with no upstream could only fail every request. */
        if (rt->n_upstreams == 1)
                return edit_fail(ret_error, -EINVAL,
                                 "upstream '%s' is the last of route '%s' (a route needs at least "
                                 "one upstream)",
                                 esc(upstream, e), esc(rt->name, e2));

        free(rt->upstreams[i].name);
        memmove(rt->upstreams + i, rt->upstreams + i + 1,
                (rt->n_upstreams - i - 1) * sizeof(ConfigRouteUpstream));
        rt->n_upstreams--;
        return 0;
}
