/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "config/config-edit.h"
#include "config/config-internal.h"
#include "tap.h"

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!streq_ptr(_a, _b)) {                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s == %s\n  got:  %s\n  want: %s\n", \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
                                _b ? _b : "(null)");                                               \
                        tap_failures++;                                                            \
                }                                                                                  \
        } while (0)

/* ---- allocation failures ----
 *
 * Every edit promises that running out of memory half-way leaves the Config as it was. To see
 * it, the n-th allocation is made to fail, for every n until an edit runs through. glibc lets a
 * program replace malloc; AddressSanitizer replaces it too, so that build checks leaks instead.
 * ThreadSanitizer's runtime also owns malloc, and calls it before it can run instrumented code. */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_INJECTION 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAULT_INJECTION 0
#endif
#endif
#ifndef FAULT_INJECTION
#define FAULT_INJECTION 1
#endif

#if FAULT_INJECTION
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);

static struct {
        bool armed;
        unsigned countdown; /* allocations to let through before the one that fails */
        bool hit;
        long live; /* allocations not freed yet */
} fault;

static bool fault_now(void)
{
        if (!fault.armed)
                return false;
        if (fault.countdown > 0) {
                fault.countdown--;
                return false;
        }
        /* One failure: what comes after must cope with memory being back. */
        fault.armed = false;
        fault.hit = true;
        return true;
}

void *malloc(size_t size)
{
        void *p;

        if (fault_now())
                return NULL;
        p = __libc_malloc(size);
        if (p)
                fault.live++;
        return p;
}

void *calloc(size_t n, size_t size)
{
        void *p;

        if (fault_now())
                return NULL;
        p = __libc_calloc(n, size);
        if (p)
                fault.live++;
        return p;
}

void *realloc(void *p, size_t size)
{
        void *q;

        if (fault_now())
                return NULL;
        q = __libc_realloc(p, size);
        if (!p && q)
                fault.live++;
        else if (p && size == 0 && !q)
                fault.live--;
        return q;
}

void *reallocarray(void *p, size_t n, size_t size)
{
        if (size && n > SIZE_MAX / size) {
                errno = ENOMEM;
                return NULL;
        }
        return realloc(p, n * size);
}

void free(void *p)
{
        if (p)
                fault.live--;
        __libc_free(p);
}

static void fault_arm(unsigned countdown)
{
        fault.countdown = countdown;
        fault.hit = false;
        fault.armed = true;
}

static bool fault_disarm(void)
{
        fault.armed = false;
        return fault.hit;
}

/* Valgrind replaces malloc too, ours included. */
static bool fault_works(void)
{
        void *p;

        fault_arm(0);
        p = malloc(1);
        free(p);
        return fault_disarm() && !p;
}
#endif

/* ---- helpers ---- */

static Config *load_at(const char *yaml, int line)
{
        Config *c = NULL;
        char *errors = NULL;
        int r;

        r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        if (r < 0) {
                fprintf(stderr, "%s:%d: load failed: %s\n%s\n", __FILE__, line, strerror(-r),
                        errors ? errors : "");
                tap_failures++;
                free(errors);
                return NULL;
        }
        return c;
}
#define load(yaml) load_at(yaml, __LINE__)

static char *dump(const Config *c)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                abort();
        CHECK(config_dump(c, f) == 0);
        fclose(f);
        return text;
}

static bool tls_equal(const ConfigTls *a, const ConfigTls *b)
{
        return streq_ptr(a->ca_file, b->ca_file) && a->verify == b->verify &&
               streq_ptr(a->sni, b->sni);
}

static bool mark_equal(ConfigMark a, ConfigMark b, bool marks)
{
        return !marks || (streq_ptr(a.file, b.file) && a.line == b.line && a.column == b.column);
}

/* Every field; the marks (and the files they point into) too when `marks`. */
static bool config_equal(const Config *a, const Config *b, bool marks)
{
        if ((marks && !strv_equal(a->files, b->files)) || a->n_listeners != b->n_listeners ||
            a->n_upstreams != b->n_upstreams || a->n_routes != b->n_routes ||
            !strv_equal(a->dns.servers, b->dns.servers) ||
            a->dns.ttl_min_usec != b->dns.ttl_min_usec ||
            a->dns.ttl_max_usec != b->dns.ttl_max_usec ||
            a->dns.timeout_usec != b->dns.timeout_usec || !tls_equal(&a->tls, &b->tls) ||
            a->access_log != b->access_log || a->header_timeout_usec != b->header_timeout_usec ||
            a->keepalive_timeout_usec != b->keepalive_timeout_usec ||
            a->shutdown_grace_usec != b->shutdown_grace_usec ||
            a->max_header_bytes != b->max_header_bytes || a->max_headers != b->max_headers)
                return false;

        for (size_t i = 0; i < a->n_listeners; i++) {
                const ConfigListener *x = a->listeners + i, *y = b->listeners + i;

                if (!streq_ptr(x->name, y->name) || !streq_ptr(x->listen, y->listen) ||
                    x->address_len != y->address_len ||
                    memcmp(&x->address, &y->address, x->address_len) != 0 ||
                    x->protocol != y->protocol || x->n_certificates != y->n_certificates ||
                    x->ticket_rotate_usec != y->ticket_rotate_usec ||
                    !streq_ptr(x->upstream, y->upstream) || x->tls_originate != y->tls_originate ||
                    x->n_sni_routes != y->n_sni_routes ||
                    x->idle_timeout_usec != y->idle_timeout_usec ||
                    !mark_equal(x->mark, y->mark, marks))
                        return false;
                for (size_t j = 0; j < x->n_certificates; j++) {
                        const ConfigCertificate *p = x->certificates + j, *q = y->certificates + j;

                        if (!streq_ptr(p->cert_file, q->cert_file) ||
                            !streq_ptr(p->key_file, q->key_file) ||
                            !streq_ptr(p->ocsp_file, q->ocsp_file) ||
                            !mark_equal(p->mark, q->mark, marks))
                                return false;
                }
                for (size_t j = 0; j < x->n_sni_routes; j++) {
                        const ConfigSniRoute *p = x->sni_routes + j, *q = y->sni_routes + j;

                        if (!strv_equal(p->server_names, q->server_names) ||
                            !streq_ptr(p->upstream, q->upstream) ||
                            !mark_equal(p->mark, q->mark, marks))
                                return false;
                }
        }
        for (size_t i = 0; i < a->n_upstreams; i++) {
                const ConfigUpstream *x = a->upstreams + i, *y = b->upstreams + i;

                if (!streq_ptr(x->name, y->name) || x->scheme != y->scheme ||
                    x->pass_host != y->pass_host ||
                    !streq_ptr(x->upstream_host, y->upstream_host) ||
                    !streq_ptr(x->balancer, y->balancer) || x->n_nodes != y->n_nodes ||
                    x->connect_timeout_usec != y->connect_timeout_usec ||
                    x->send_timeout_usec != y->send_timeout_usec ||
                    x->read_timeout_usec != y->read_timeout_usec || x->retries != y->retries ||
                    x->keepalive_pool != y->keepalive_pool ||
                    x->keepalive_idle_usec != y->keepalive_idle_usec ||
                    !tls_equal(&x->tls, &y->tls) || !mark_equal(x->mark, y->mark, marks))
                        return false;
                for (size_t j = 0; j < x->n_nodes; j++)
                        if (!streq_ptr(x->nodes[j].host, y->nodes[j].host) ||
                            x->nodes[j].port != y->nodes[j].port ||
                            x->nodes[j].weight != y->nodes[j].weight ||
                            !mark_equal(x->nodes[j].mark, y->nodes[j].mark, marks))
                                return false;
        }
        for (size_t i = 0; i < a->n_routes; i++) {
                const ConfigRoute *x = a->routes + i, *y = b->routes + i;

                if (!streq_ptr(x->name, y->name) || !strv_equal(x->paths, y->paths) ||
                    !strv_equal(x->hosts, y->hosts) || !strv_equal(x->methods, y->methods) ||
                    x->priority != y->priority || x->websocket != y->websocket ||
                    x->n_upstreams != y->n_upstreams || !mark_equal(x->mark, y->mark, marks))
                        return false;
                for (size_t j = 0; j < x->n_upstreams; j++)
                        if (!streq_ptr(x->upstreams[j].name, y->upstreams[j].name) ||
                            x->upstreams[j].weight != y->upstreams[j].weight ||
                            !mark_equal(x->upstreams[j].mark, y->upstreams[j].mark, marks))
                                return false;
        }
        return true;
}

static bool mark_in(const Config *c, ConfigMark m)
{
        for (size_t i = 0; m.file && c->files && c->files[i]; i++)
                if (c->files[i] == m.file)
                        return true;
        return false;
}

/* Every mark points at one of c's own file names. */
static bool marks_in_files(const Config *c)
{
        for (size_t i = 0; i < c->n_listeners; i++) {
                const ConfigListener *l = c->listeners + i;

                if (!mark_in(c, l->mark))
                        return false;
                for (size_t j = 0; j < l->n_certificates; j++)
                        if (!mark_in(c, l->certificates[j].mark))
                                return false;
                for (size_t j = 0; j < l->n_sni_routes; j++)
                        if (!mark_in(c, l->sni_routes[j].mark))
                                return false;
        }
        for (size_t i = 0; i < c->n_upstreams; i++) {
                if (!mark_in(c, c->upstreams[i].mark))
                        return false;
                for (size_t j = 0; j < c->upstreams[i].n_nodes; j++)
                        if (!mark_in(c, c->upstreams[i].nodes[j].mark))
                                return false;
        }
        for (size_t i = 0; i < c->n_routes; i++) {
                if (!mark_in(c, c->routes[i].mark))
                        return false;
                for (size_t j = 0; j < c->routes[i].n_upstreams; j++)
                        if (!mark_in(c, c->routes[i].upstreams[j].mark))
                                return false;
        }
        return true;
}

/* The dump of an edited Config loads back into an equal one, which dumps to the same text. */
static void check_round_trip_at(const Config *c, int line)
{
        _cleanup_free_ char *text = dump(c), *text2 = NULL, *errors = NULL;
        _cleanup_(config_freep) Config *b = NULL;
        int r;

        r = config_load_string("dump.yaml", text, strlen(text), &errors, &b);
        if (r < 0) {
                fprintf(stderr, "%s:%d: dump does not load:\n%s\n%s\n", __FILE__, line, errors,
                        text);
                tap_failures++;
                return;
        }
        if (!config_equal(c, b, false)) {
                fprintf(stderr, "%s:%d: dump loads differently:\n%s\n", __FILE__, line, text);
                tap_failures++;
        }
        text2 = dump(b);
        CHECK_STR(text2, text);
        CHECK(marks_in_files(c));
}
#define check_round_trip(c) check_round_trip_at(c, __LINE__)

/* The edit in `call` (which reports into `err`) must fail with `want_r` and exactly
 * `want_msg`, and leave `c` as it was: marks, files and dump included. */
#define EXPECT_FAIL(c, want_r, want_msg, call)                                                     \
        do {                                                                                       \
                _cleanup_(config_freep) Config *_before = NULL;                                    \
                _cleanup_free_ char *_text = dump(c), *_text2 = NULL;                              \
                char *err = (char *)"not reset";                                                   \
                int _r;                                                                            \
                                                                                                   \
                CHECK(config_copy(c, &_before) == 0);                                              \
                _r = (call);                                                                       \
                if (_r != (want_r)) {                                                              \
                        fprintf(stderr, "%s:%d: expected %d, got %d\n", __FILE__, __LINE__,        \
                                (want_r), _r);                                                     \
                        tap_failures++;                                                            \
                }                                                                                  \
                CHECK_STR(err, want_msg);                                                          \
                if (_r < 0)                                                                        \
                        free(err);                                                                 \
                _text2 = dump(c);                                                                  \
                CHECK_STR(_text2, _text);                                                          \
                CHECK(_before != NULL && config_equal(_before, c, true));                          \
        } while (0)

/* The edit must succeed and clear `err`. */
#define EXPECT_OK(call)                                                                            \
        do {                                                                                       \
                char *err = (char *)"not reset";                                                   \
                int _r = (call);                                                                   \
                                                                                                   \
                if (_r != 0) {                                                                     \
                        fprintf(stderr, "%s:%d: expected success, got %d: %s\n", __FILE__,         \
                                __LINE__, _r, _r < 0 && err ? err : "");                           \
                        tap_failures++;                                                            \
                        if (_r < 0)                                                                \
                                free(err);                                                         \
                } else                                                                             \
                        CHECK(err == NULL);                                                        \
        } while (0)

static const char base_yaml[] =
        "access_log: false\n"
        "timeouts: {header: 10s, keepalive: 20s, shutdown_grace: 3s}\n"
        "limits: {max_header_bytes: 4096, max_headers: 50}\n"
        "dns: {servers: [\"127.0.0.1:5353\"], ttl_min: 2s, ttl_max: 1m, timeout: 3s}\n"
        "tls: {ca_file: /etc/ca.pem, verify: false}\n"
        "listeners:\n"
        "  - {name: http, listen: \"127.0.0.1:9080\"}\n"
        "  - {name: v6, listen: \"[::1]:9081\"}\n"
        "  - {name: activated}\n"
        "upstreams:\n"
        "  - name: httpbin\n"
        "    scheme: https\n"
        "    pass_host: node\n"
        "    nodes: [{host: httpbin.org, port: 443, weight: 1}]\n"
        "  - name: mockapi7\n"
        "    scheme: https\n"
        "    pass_host: rewrite\n"
        "    upstream_host: mock.api7.ai\n"
        "    retries: 2\n"
        "    keepalive_idle: 5s\n"
        "    tls: {sni: mock.api7.ai, verify: true}\n"
        "    nodes:\n"
        "      - {host: mock.api7.ai, port: 443, weight: 1}\n"
        "      - {host: \"::1\", port: 8443, weight: 2}\n"
        "routes:\n"
        "  - name: lb-route\n"
        "    paths: [\"/headers\", \"/anything/*\"]\n"
        "    hosts: [\"*.example.com\"]\n"
        "    methods: [GET, POST]\n"
        "    priority: 3\n"
        "    upstreams: [{name: httpbin, weight: 1}, {name: mockapi7, weight: 1}]\n";

/* Listeners of every protocol, and a WebSocket route: added to the base. */
static const char protocols_yaml[] =
        "listeners:\n"
        "  - name: https\n"
        "    listen: 127.0.0.1:9443\n"
        "    protocol: https\n"
        "    certificates:\n"
        "      - {cert: /etc/a.pem, key: a.key, ocsp: /etc/a.der}\n"
        "      - {cert: /etc/b.pem, key: /etc/b.key}\n"
        "    ticket_rotate: 1h\n"
        "  - {name: tcp, protocol: tcp, upstream: mockapi7, tls: originate, idle_timeout: 1m}\n"
        "  - name: pass\n"
        "    protocol: tls-passthrough\n"
        "    sni_routes:\n"
        "      - {server_names: [a.example, \"*.b.example\"], upstream: httpbin}\n"
        "      - {server_names: [c.example], upstream: spare}\n"
        "upstreams: [{name: spare, nodes: [{host: s.example}]}]\n"
        "routes: [{name: ws, paths: [/ws], websocket: true, upstreams: [{name: httpbin}]}]\n";

static Config *load_base(void)
{
        return load(base_yaml);
}

/* The base, then a document that a file would add: what an edit adding the same must give. */
static Config *load_base_and(const char *extra)
{
        _cleanup_free_ char *yaml = NULL;

        if (asprintf(&yaml, "%s---\n%s", base_yaml, extra) < 0)
                abort();
        return load(yaml);
}

static const ConfigUpstream *upstream(const Config *c, const char *name)
{
        const ConfigUpstream *u = config_find_upstream(c, name);

        CHECK(u != NULL);
        return u;
}

static const ConfigRoute *route(const Config *c, const char *name)
{
        const ConfigRoute *rt = config_find_route(c, name);

        CHECK(rt != NULL);
        return rt;
}

static size_t n_files(const Config *c)
{
        return strv_length(c->files);
}

/* ---- copy ---- */

static void check_copy(const Config *c)
{
        _cleanup_(config_freep) Config *n = NULL, *n2 = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;

        CHECK(config_copy(c, &n) == 0);
        if (!n)
                return;
        CHECK(config_equal(c, n, true));
        CHECK(marks_in_files(n));
        /* Its own strings, not the original's. */
        CHECK(n->files != c->files);
        for (size_t i = 0; c->files && c->files[i]; i++)
                CHECK(n->files[i] != c->files[i]);
        for (size_t i = 0; i < c->n_upstreams; i++) {
                CHECK(n->upstreams[i].name != c->upstreams[i].name);
                CHECK(n->upstreams[i].n_nodes == 0 ||
                      n->upstreams[i].nodes[0].host != c->upstreams[i].nodes[0].host);
        }
        for (size_t i = 0; i < c->n_routes; i++)
                CHECK(n->routes[i].paths != c->routes[i].paths);
        a = dump(c);
        b = dump(n);
        CHECK_STR(b, a);

        /* A copy of the copy, the original gone. */
        CHECK(config_copy(n, &n2) == 0);
        n = config_free(n);
        CHECK(n2 && config_equal(c, n2, true) && marks_in_files(n2));
}

static char *write_file(const char *dir, const char *name, const char *content)
{
        char *path;
        FILE *f;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                abort();
        f = fopen(path, "we");
        if (!f)
                abort();
        fputs(content, f);
        fclose(f);
        return path;
}

static void test_copy(void)
{
        _cleanup_(config_freep) Config *c = load_base(), *m = NULL, *edited = NULL;
        char dir[] = "/tmp/test-config-edit-XXXXXX";
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *errors = NULL;
        char *paths[3];

        if (!c)
                return;
        check_copy(c);
        CHECK(c->listeners[1].address_len > 0 && c->listeners[2].address_len == 0);

        /* Marks into two files stay each in its own. */
        if (!mkdtemp(dir))
                abort();
        p1 = write_file(dir, "a.yaml",
                        "listeners: [{name: http, listen: \":80\"}]\n"
                        "upstreams: [{name: u, nodes: [{host: a.example}]}]\n");
        p2 = write_file(dir, "b.yaml",
                        "routes: [{name: r, paths: [/], upstreams: [{name: u}]}]\n"
                        "tls: {verify: false}\n");
        paths[0] = p1;
        paths[1] = p2;
        paths[2] = NULL;
        CHECK(config_load(paths, &errors, &m) == 0);
        unlink(p1);
        unlink(p2);
        rmdir(dir);
        if (!m)
                return;
        CHECK(n_files(m) == 2);
        check_copy(m);

        /* And with objects made at run time. */
        CHECK(config_copy(c, &edited) == 0);
        if (!edited)
                return;
        EXPECT_OK(config_edit_add_node(edited, "httpbin", "10.0.0.1", 80, 1, &err));
        check_copy(edited);
        /* The original did not change with its copy. */
        CHECK(upstream(c, "httpbin")->n_nodes == 1);
}

static void test_copy_protocols(void)
{
        _cleanup_(config_freep) Config *c = load_base_and(protocols_yaml), *n = NULL;

        if (!c)
                return;
        CHECK(c->n_listeners == 6);
        check_copy(c);
        CHECK(config_copy(c, &n) == 0);
        if (!n || n->n_listeners != 6)
                return;
        /* Deep: every string and array of the new keys is the copy's own. */
        for (size_t i = 3; i < 6; i++) {
                const ConfigListener *a = c->listeners + i, *b = n->listeners + i;

                CHECK(a->n_certificates == 0 || b->certificates != a->certificates);
                for (size_t j = 0; j < a->n_certificates; j++) {
                        CHECK(b->certificates[j].cert_file != a->certificates[j].cert_file);
                        CHECK(b->certificates[j].key_file != a->certificates[j].key_file);
                        CHECK(!a->certificates[j].ocsp_file ||
                              b->certificates[j].ocsp_file != a->certificates[j].ocsp_file);
                }
                CHECK(!a->upstream || b->upstream != a->upstream);
                CHECK(a->n_sni_routes == 0 || b->sni_routes != a->sni_routes);
                for (size_t j = 0; j < a->n_sni_routes; j++) {
                        CHECK(b->sni_routes[j].server_names != a->sni_routes[j].server_names);
                        CHECK(b->sni_routes[j].server_names[0] !=
                              a->sni_routes[j].server_names[0]);
                        CHECK(b->sni_routes[j].upstream != a->sni_routes[j].upstream);
                }
        }
        CHECK(n->listeners[3].protocol == LISTENER_HTTPS && n->listeners[3].n_certificates == 2);
        CHECK(n->listeners[4].protocol == LISTENER_TCP && n->listeners[4].tls_originate);
        CHECK(n->listeners[5].protocol == LISTENER_TLS_PASSTHROUGH);
        CHECK(route(n, "ws")->websocket && !route(n, "lb-route")->websocket);
        check_round_trip(n);
}

/* ---- upstreams ---- */

static void test_add_upstream(void)
{
        _cleanup_(config_freep) Config *c = load_base(), *want = NULL;
        ConfigNode nodes[3] = {
                {.host = (char *)"10.0.0.1", .port = 80, .weight = 5},
                {.host = (char *)"[::2]", .port = 8080, .weight = 0},
                {.host = (char *)"Node.Example", .port = 80, .weight = 10000},
        };
        ConfigUpstreamOptions o = CONFIG_UPSTREAM_OPTIONS_INIT;
        const char *before_file;
        const ConfigUpstream *u;

        if (!c)
                return;
        before_file = c->upstreams[0].mark.file;
        CHECK(n_files(c) == 1);

        /* Defaults, the same a file gives. */
        EXPECT_OK(config_edit_add_upstream(c, "plain", "", nodes, 3, NULL, &err));
        want = load_base_and("upstreams:\n"
                             "  - name: plain\n"
                             "    nodes:\n"
                             "      - {host: 10.0.0.1, port: 80, weight: 5}\n"
                             "      - {host: \"[::2]\", port: 8080, weight: 0}\n"
                             "      - {host: Node.Example, port: 80, weight: 10000}\n");
        CHECK(want && config_equal(c, want, false));
        u = upstream(c, "plain");
        if (u) {
                CHECK(u->scheme == SCHEME_HTTP && u->pass_host == PASS_HOST_PASS);
                CHECK_STR(u->balancer, "roundrobin");
                /* Unset retries: every other of the three nodes once. */
                CHECK(u->retries == 2 && u->keepalive_pool == 32);
                CHECK(u->keepalive_idle_usec == 60 * USEC_PER_SEC);
                CHECK(u->connect_timeout_usec == 5 * USEC_PER_SEC);
                CHECK(u->send_timeout_usec == 60 * USEC_PER_SEC);
                CHECK(u->read_timeout_usec == 60 * USEC_PER_SEC);
                /* The top-level tls: block merged in. */
                CHECK_STR(u->tls.ca_file, "/etc/ca.pem");
                CHECK(u->tls.verify == 0 && !u->tls.sni);
                CHECK_STR(u->nodes[1].host, "::2");
                CHECK_STR(u->mark.file, "<runtime>");
                CHECK(u->mark.line == 1 && u->mark.column == 1);
                CHECK(u->nodes[2].mark.file == u->mark.file);
        }
        CHECK(n_files(c) == 2);
        /* The strings older marks point to did not move. */
        CHECK(c->upstreams[0].mark.file == before_file && streq(before_file, "t.yaml"));
        check_round_trip(c);
        want = config_free(want);

        /* Every option. */
        o.pass_host = "rewrite";
        o.upstream_host = "[::1]:8080";
        o.balancer = "roundrobin";
        o.sni = "api.example";
        o.ca_file = "/etc/other.pem";
        o.verify = 1;
        o.retries = 0;
        o.keepalive_pool = 10000;
        o.connect_timeout_usec = 1500 * USEC_PER_MSEC;
        o.send_timeout_usec = 0;
        o.read_timeout_usec = (int64_t)CONFIG_DURATION_MAX;
        EXPECT_OK(config_edit_add_upstream(c, "full", "https", nodes, 1, &o, &err));
        want = load_base_and("upstreams:\n"
                             "  - name: plain\n"
                             "    nodes:\n"
                             "      - {host: 10.0.0.1, port: 80, weight: 5}\n"
                             "      - {host: \"[::2]\", port: 8080, weight: 0}\n"
                             "      - {host: Node.Example, port: 80, weight: 10000}\n"
                             "  - name: full\n"
                             "    scheme: https\n"
                             "    pass_host: rewrite\n"
                             "    upstream_host: \"[::1]:8080\"\n"
                             "    balancer: roundrobin\n"
                             "    retries: 0\n"
                             "    keepalive_pool: 10000\n"
                             "    timeout: {connect: 1.5s, send: 0s, read: 365d}\n"
                             "    tls: {sni: api.example, ca_file: /etc/other.pem, verify: true}\n"
                             "    nodes: [{host: 10.0.0.1, port: 80, weight: 5}]\n");
        CHECK(want && config_equal(c, want, false));
        /* "<runtime>" once. */
        CHECK(n_files(c) == 2);
        CHECK(c->upstreams[3].mark.file == c->upstreams[2].mark.file);
        check_round_trip(c);
        check_copy(c);
}

static void test_add_upstream_errors(void)
{
        _cleanup_(config_freep) Config *c = load_base();
        ConfigNode node = {.host = (char *)"10.0.0.1", .port = 80, .weight = 1};
        ConfigNode two[2] = {node, node};
        ConfigUpstreamOptions o;
        char long_name[300];

        if (!c)
                return;

#define ADD(name, scheme, nodes, n, opts)                                                          \
        config_edit_add_upstream(c, name, scheme, nodes, n, opts, &err)

        EXPECT_FAIL(c, -EINVAL,
                    "name: 'a b' is not a valid upstream name (letters, digits, '_', '.', '-')",
                    ADD("a b", NULL, &node, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "name: must not be empty", ADD("", NULL, &node, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "name: must not be empty", ADD(NULL, NULL, &node, 1, NULL));
        memset(long_name, 'a', 256);
        long_name[256] = 0;
        EXPECT_FAIL(c, -EINVAL,
                    "name: '"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaa...' is not a valid upstream name (longer than 255 "
                    "characters)",
                    ADD(long_name, NULL, &node, 1, NULL));
        long_name[255] = 0;
        EXPECT_FAIL(c, -EINVAL, "scheme: 'ftp' is not one of http, https",
                    ADD(long_name, "ftp", &node, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "nodes: at least one node is required",
                    ADD("new", NULL, NULL, 0, NULL));

        two[1].port = 0;
        EXPECT_FAIL(c, -EINVAL, "nodes[1].port: 0 is out of range (1..65535)",
                    ADD("new", NULL, two, 2, NULL));
        two[1].port = 80;
        EXPECT_FAIL(c, -EINVAL, "nodes[1]: 10.0.0.1:80 is listed already (as nodes[0])",
                    ADD("new", NULL, two, 2, NULL));
        two[0].host = (char *)"::1";
        two[1].host = (char *)"[0::1]";
        EXPECT_FAIL(c, -EINVAL, "nodes[1]: [0::1]:80 is listed already (as nodes[0])",
                    ADD("new", NULL, two, 2, NULL));
        two[0].host = (char *)"a.example";
        two[1].host = (char *)"A.EXAMPLE";
        EXPECT_FAIL(c, -EINVAL, "nodes[1]: A.EXAMPLE:80 is listed already (as nodes[0])",
                    ADD("new", NULL, two, 2, NULL));
        two[1].host = (char *)"bad host";
        EXPECT_FAIL(c, -EINVAL,
                    "nodes[1].host: invalid host 'bad host': only letters, digits, '-' and '.' "
                    "are allowed",
                    ADD("new", NULL, two, 2, NULL));
        two[1].host = (char *)"10.0.0.2:80";
        EXPECT_FAIL(c, -EINVAL,
                    "nodes[1].host: invalid host '10.0.0.2:80': the port goes in the port: key",
                    ADD("new", NULL, two, 2, NULL));
        two[1].host = NULL;
        EXPECT_FAIL(c, -EINVAL, "nodes[1].host: must not be empty", ADD("new", NULL, two, 2, NULL));
        two[1].host = (char *)"10.0.0.2";
        two[1].weight = 10001;
        EXPECT_FAIL(c, -EINVAL, "nodes[1].weight: 10001 is out of range (0..10000)",
                    ADD("new", NULL, two, 2, NULL));

        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.pass_host = "foo";
        EXPECT_FAIL(c, -EINVAL, "options.pass_host: 'foo' is not one of pass, node, rewrite",
                    ADD("new", NULL, &node, 1, &o));
        o.pass_host = "rewrite";
        EXPECT_FAIL(c, -EINVAL, "options.upstream_host: required when pass_host is rewrite",
                    ADD("new", NULL, &node, 1, &o));
        o.upstream_host = "a b";
        EXPECT_FAIL(c, -EINVAL,
                    "options.upstream_host: invalid host 'a b': only letters, digits, '-' and "
                    "'.' are allowed",
                    ADD("new", NULL, &node, 1, &o));
        o.upstream_host = "";
        EXPECT_FAIL(c, -EINVAL, "options.upstream_host: must not be empty",
                    ADD("new", NULL, &node, 1, &o));
        o.pass_host = "node";
        o.upstream_host = "example.com";
        EXPECT_FAIL(c, -EINVAL, "options.upstream_host: only allowed when pass_host is rewrite",
                    ADD("new", NULL, &node, 1, &o));

        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.balancer = "leastconn";
        EXPECT_FAIL(c, -EINVAL, "options.balancer: 'leastconn' is not one of roundrobin",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.sni = "10.0.0.1";
        EXPECT_FAIL(c, -EINVAL,
                    "options.sni: invalid server name '10.0.0.1': an IP address cannot be sent "
                    "as a server name",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.ca_file = "";
        EXPECT_FAIL(c, -EINVAL, "options.ca_file: must not be empty",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.verify = 2;
        EXPECT_FAIL(c, -EINVAL, "options.verify: 2 is out of range (-1..1)",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.retries = 101;
        EXPECT_FAIL(c, -EINVAL, "options.retries: 101 is out of range (0..100)",
                    ADD("new", NULL, &node, 1, &o));
        o.retries = -2;
        EXPECT_FAIL(c, -EINVAL, "options.retries: -2 is out of range (0..100)",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.keepalive_pool = 10001;
        EXPECT_FAIL(c, -EINVAL, "options.keepalive_pool: 10001 is out of range (0..10000)",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.connect_timeout_usec = (int64_t)CONFIG_DURATION_MAX + 1;
        EXPECT_FAIL(c, -EINVAL,
                    "options.connect_timeout_usec: 31536000000001 is out of range "
                    "(0..31536000000000)",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.send_timeout_usec = -5;
        EXPECT_FAIL(c, -EINVAL, "options.send_timeout_usec: -5 is out of range (0..31536000000000)",
                    ADD("new", NULL, &node, 1, &o));
        o = CONFIG_UPSTREAM_OPTIONS_INIT;
        o.read_timeout_usec = INT64_MAX;
        EXPECT_FAIL(c, -EINVAL,
                    "options.read_timeout_usec: 9223372036854775807 is out of range "
                    "(0..31536000000000)",
                    ADD("new", NULL, &node, 1, &o));

        /* Arguments first, then the configuration. */
        EXPECT_FAIL(c, -EINVAL, "scheme: 'ftp' is not one of http, https",
                    ADD("httpbin", "ftp", &node, 1, NULL));
        EXPECT_FAIL(c, -EEXIST, "name: an upstream named 'httpbin' exists already",
                    ADD("httpbin", "http", &node, 1, NULL));

        /* Nobody to read the message. */
        CHECK(config_edit_add_upstream(c, "a b", NULL, &node, 1, NULL, NULL) == -EINVAL);
        CHECK(config_edit_add_upstream(c, "httpbin", NULL, &node, 1, NULL, NULL) == -EEXIST);
        CHECK(c->n_upstreams == 2 && n_files(c) == 1);
#undef ADD
}

static void test_remove_upstream(void)
{
        _cleanup_(config_freep) Config *c = load_base(), *want = NULL;
        ConfigNode node = {.host = (char *)"10.0.0.1", .port = 80, .weight = 1};

        if (!c)
                return;

        EXPECT_FAIL(c, -EBUSY, "upstream 'httpbin' is used by route 'lb-route'",
                    config_edit_remove_upstream(c, "httpbin", &err));
        {
                /* Listeners use upstreams too: a tcp listener, an SNI route. */
                _cleanup_(config_freep) Config *p = load_base_and(protocols_yaml);

                if (p) {
                        EXPECT_OK(config_edit_remove_route(p, "lb-route", &err));
                        EXPECT_FAIL(p, -EBUSY, "upstream 'mockapi7' is used by listener 'tcp'",
                                    config_edit_remove_upstream(p, "mockapi7", &err));
                        EXPECT_FAIL(p, -EBUSY, "upstream 'spare' is used by listener 'pass'",
                                    config_edit_remove_upstream(p, "spare", &err));
                        EXPECT_FAIL(p, -EBUSY, "upstream 'httpbin' is used by route 'ws'",
                                    config_edit_remove_upstream(p, "httpbin", &err));
                }
        }
        EXPECT_FAIL(c, -ENOENT, "name: no upstream named 'nope'",
                    config_edit_remove_upstream(c, "nope", &err));
        EXPECT_FAIL(c, -EINVAL,
                    "name: 'a b' is not a valid upstream name (letters, digits, '_', '.', '-')",
                    config_edit_remove_upstream(c, "a b", &err));
        EXPECT_FAIL(c, -EINVAL, "name: must not be empty",
                    config_edit_remove_upstream(c, NULL, &err));

        /* From the middle: the others keep their order. */
        EXPECT_OK(config_edit_add_upstream(c, "new", NULL, &node, 1, NULL, &err));
        EXPECT_OK(config_edit_add_upstream(c, "last", NULL, &node, 1, NULL, &err));
        EXPECT_OK(config_edit_remove_upstream(c, "new", &err));
        want = load_base_and("upstreams: [{name: last, nodes: [{host: 10.0.0.1, port: 80}]}]\n");
        CHECK(want && config_equal(c, want, false));
        check_round_trip(c);

        /* Free once no route uses it. */
        EXPECT_OK(config_edit_remove_route(c, "lb-route", &err));
        EXPECT_OK(config_edit_remove_upstream(c, "httpbin", &err));
        EXPECT_OK(config_edit_remove_upstream(c, "mockapi7", &err));
        EXPECT_OK(config_edit_remove_upstream(c, "last", &err));
        CHECK(c->n_upstreams == 0 && c->n_routes == 0);
        check_round_trip(c);
        check_copy(c);
}

/* ---- nodes ---- */

static void test_nodes(void)
{
        _cleanup_(config_freep) Config *c = load_base();
        const ConfigUpstream *u;

        if (!c)
                return;

        EXPECT_OK(config_edit_add_node(c, "mockapi7", "[2001:db8::1]", 8080, 0, &err));
        EXPECT_OK(config_edit_add_node(c, "mockapi7", "10.0.0.1", 65535, 10000, &err));
        u = upstream(c, "mockapi7");
        if (u && u->n_nodes == 4) {
                CHECK_STR(u->nodes[2].host, "2001:db8::1");
                CHECK(u->nodes[2].port == 8080 && u->nodes[2].weight == 0);
                CHECK(u->nodes[3].port == 65535 && u->nodes[3].weight == 10000);
                CHECK_STR(u->nodes[3].mark.file, "<runtime>");
                CHECK_STR(u->nodes[0].mark.file, "t.yaml");
        } else
                CHECK(!"4 nodes");
        check_round_trip(c);

        EXPECT_FAIL(c, -EEXIST, "upstream 'mockapi7' has node [2001:DB8:0::1]:8080 already",
                    config_edit_add_node(c, "mockapi7", "2001:DB8:0::1", 8080, 1, &err));
        EXPECT_FAIL(c, -EEXIST, "upstream 'httpbin' has node HTTPBIN.org:443 already",
                    config_edit_add_node(c, "httpbin", "HTTPBIN.org", 443, 1, &err));
        EXPECT_FAIL(c, -ENOENT, "upstream: no upstream named 'x'",
                    config_edit_add_node(c, "x", "10.0.0.1", 80, 1, &err));
        EXPECT_FAIL(c, -EINVAL,
                    "upstream: 'a b' is not a valid upstream name (letters, digits, '_', '.', "
                    "'-')",
                    config_edit_add_node(c, "a b", "10.0.0.1", 80, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "host: invalid host '10.0.0.256': invalid IPv4 address",
                    config_edit_add_node(c, "httpbin", "10.0.0.256", 80, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "host: invalid host '[::1': missing ']'",
                    config_edit_add_node(c, "httpbin", "[::1", 80, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "host: must not be empty",
                    config_edit_add_node(c, "httpbin", "", 80, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "port: 0 is out of range (1..65535)",
                    config_edit_add_node(c, "x", "10.0.0.1", 0, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "weight: 10001 is out of range (0..10000)",
                    config_edit_add_node(c, "x", "10.0.0.1", 80, 10001, &err));

        /* Weights. */
        EXPECT_OK(config_edit_set_node_weight(c, "mockapi7", "0::1", 8443, 7, &err));
        EXPECT_OK(config_edit_set_node_weight(c, "mockapi7", "mock.api7.ai", 443, 0, &err));
        u = upstream(c, "mockapi7");
        CHECK(u && u->nodes[1].weight == 7 && u->nodes[0].weight == 0);
        check_round_trip(c);
        EXPECT_FAIL(c, -ENOENT, "upstream 'mockapi7' has no node [::1]:443",
                    config_edit_set_node_weight(c, "mockapi7", "[::1]", 443, 1, &err));
        EXPECT_FAIL(c, -ENOENT, "upstream: no upstream named 'x'",
                    config_edit_set_node_weight(c, "x", "::1", 443, 1, &err));
        EXPECT_FAIL(c, -EINVAL, "weight: 4294967295 is out of range (0..10000)",
                    config_edit_set_node_weight(c, "mockapi7", "::1", 8443, UINT32_MAX, &err));
        EXPECT_FAIL(c, -EINVAL, "port: 0 is out of range (1..65535)",
                    config_edit_set_node_weight(c, "mockapi7", "::1", 0, 1, &err));

        /* Removal. */
        EXPECT_OK(config_edit_remove_node(c, "mockapi7", "mock.api7.ai", 443, &err));
        u = upstream(c, "mockapi7");
        if (u && u->n_nodes == 3) {
                CHECK_STR(u->nodes[0].host, "::1");
                CHECK_STR(u->nodes[1].host, "2001:db8::1");
                CHECK_STR(u->nodes[2].host, "10.0.0.1");
        } else
                CHECK(!"3 nodes");
        check_round_trip(c);
        EXPECT_FAIL(c, -ENOENT, "upstream 'httpbin' has no node 10.0.0.1:80",
                    config_edit_remove_node(c, "httpbin", "10.0.0.1", 80, &err));
        EXPECT_FAIL(c, -ENOENT, "upstream: no upstream named 'x'",
                    config_edit_remove_node(c, "x", "10.0.0.1", 80, &err));
        EXPECT_FAIL(c, -EINVAL,
                    "node httpbin.org:443 is the last of upstream 'httpbin' (an upstream needs "
                    "at least one node)",
                    config_edit_remove_node(c, "httpbin", "httpbin.org", 443, &err));
        EXPECT_FAIL(c, -EINVAL, "host: invalid host '-a': a label must not start with '-'",
                    config_edit_remove_node(c, "httpbin", "-a", 443, &err));
        EXPECT_OK(config_edit_remove_node(c, "mockapi7", "[::1]", 8443, &err));
        EXPECT_OK(config_edit_remove_node(c, "mockapi7", "10.0.0.1", 65535, &err));
        EXPECT_FAIL(c, -EINVAL,
                    "node [2001:db8::1]:8080 is the last of upstream 'mockapi7' (an upstream "
                    "needs at least one node)",
                    config_edit_remove_node(c, "mockapi7", "2001:db8::1", 8080, &err));
        check_round_trip(c);
        check_copy(c);
}

/* ---- routes ---- */

static void test_add_route(void)
{
        _cleanup_(config_freep) Config *c = load_base(), *want = NULL;
        char *paths[] = {(char *)"/a", (char *)"/b/*", NULL};
        char *hosts[] = {(char *)"*.Example.COM", (char *)"[::1]", (char *)"10.0.0.1", NULL};
        char *methods[] = {(char *)"get", (char *)"M-SEARCH", NULL};
        ConfigRouteUpstream ups[] = {
                {.name = (char *)"mockapi7", .weight = 3},
                {.name = (char *)"httpbin", .weight = 0},
        };
        ConfigRouteOptions o = {.hosts = hosts, .methods = methods, .priority = -5};
        const ConfigRoute *rt;

        if (!c)
                return;

        EXPECT_OK(config_edit_add_route(c, "plain", paths, ups, 1, NULL, &err));
        EXPECT_OK(config_edit_add_route(c, "full", paths, ups, 2, &o, &err));
        want = load_base_and("routes:\n"
                             "  - name: plain\n"
                             "    paths: [/a, /b/*]\n"
                             "    upstreams: [{name: mockapi7, weight: 3}]\n"
                             "  - name: full\n"
                             "    paths: [/a, /b/*]\n"
                             "    hosts: [\"*.example.com\", \"[::1]\", 10.0.0.1]\n"
                             "    methods: [GET, M-SEARCH]\n"
                             "    priority: -5\n"
                             "    upstreams: [{name: mockapi7, weight: 3}, "
                             "{name: httpbin, weight: 0}]\n");
        CHECK(want && config_equal(c, want, false));
        rt = route(c, "plain");
        CHECK(rt && !rt->hosts && !rt->methods && rt->priority == 0);
        rt = route(c, "full");
        if (rt) {
                CHECK_STR(rt->hosts[0], "*.example.com");
                CHECK_STR(rt->methods[0], "GET");
                CHECK_STR(rt->mark.file, "<runtime>");
                CHECK(rt->upstreams[1].mark.file == rt->mark.file);
        }
        /* The caller's strings are its own. */
        CHECK_STR(hosts[0], "*.Example.COM");
        CHECK_STR(methods[0], "get");
        CHECK(n_files(c) == 2);
        check_round_trip(c);
        check_copy(c);
}

static void test_add_route_errors(void)
{
        _cleanup_(config_freep) Config *c = load_base();
        char *paths[] = {(char *)"/a", (char *)"x", NULL};
        char *none[] = {NULL};
        char *bad_host[] = {(char *)"a.example", (char *)"*", NULL};
        char *bad_method[] = {(char *)"GE T", NULL};
        ConfigRouteUpstream ups[] = {
                {.name = (char *)"httpbin", .weight = 1},
                {.name = (char *)"httpbin", .weight = 1},
        };
        ConfigRouteOptions o = {};

        if (!c)
                return;

#define ADD(name, paths, ups, n, opts) config_edit_add_route(c, name, paths, ups, n, opts, &err)

        EXPECT_FAIL(c, -EINVAL,
                    "name: 'a/b' is not a valid route name (letters, digits, '_', '.', '-')",
                    ADD("a/b", paths, ups, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "paths: at least one path is required",
                    ADD("r", NULL, ups, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "paths: at least one path is required",
                    ADD("r", none, ups, 1, NULL));
        EXPECT_FAIL(c, -EINVAL, "paths[1]: invalid path 'x': must start with '/'",
                    ADD("r", paths, ups, 1, NULL));
        paths[1] = (char *)"/a*b";
        EXPECT_FAIL(c, -EINVAL,
                    "paths[1]: invalid path '/a*b': '*' is only allowed as the last character",
                    ADD("r", paths, ups, 1, NULL));
        paths[1] = (char *)"";
        EXPECT_FAIL(c, -EINVAL, "paths[1]: must not be empty", ADD("r", paths, ups, 1, NULL));
        paths[1] = (char *)"/b*";

        EXPECT_FAIL(c, -EINVAL, "upstreams: at least one upstream is required",
                    ADD("r", paths, NULL, 0, NULL));
        EXPECT_FAIL(c, -EINVAL, "upstreams[1].name: 'httpbin' is listed already (as upstreams[0])",
                    ADD("r", paths, ups, 2, NULL));
        ups[1].name = (char *)"a b";
        EXPECT_FAIL(c, -EINVAL,
                    "upstreams[1].name: 'a b' is not a valid upstream name (letters, digits, "
                    "'_', '.', '-')",
                    ADD("r", paths, ups, 2, NULL));
        ups[1].name = (char *)"mockapi7";
        ups[1].weight = 10001;
        EXPECT_FAIL(c, -EINVAL, "upstreams[1].weight: 10001 is out of range (0..10000)",
                    ADD("r", paths, ups, 2, NULL));
        ups[1].weight = 1;

        o.hosts = none;
        EXPECT_FAIL(c, -EINVAL, "options.hosts: must not be empty (leave it out to match any host)",
                    ADD("r", paths, ups, 2, &o));
        o.hosts = bad_host;
        EXPECT_FAIL(c, -EINVAL,
                    "options.hosts[1]: invalid host '*': '*' alone would match every host: "
                    "leave hosts: out instead",
                    ADD("r", paths, ups, 2, &o));
        o.hosts = NULL;
        o.methods = none;
        EXPECT_FAIL(c, -EINVAL,
                    "options.methods: must not be empty (leave it out to match any method)",
                    ADD("r", paths, ups, 2, &o));
        o.methods = bad_method;
        EXPECT_FAIL(c, -EINVAL, "options.methods[0]: invalid method 'GE T': not a valid HTTP token",
                    ADD("r", paths, ups, 2, &o));

        EXPECT_FAIL(c, -EEXIST, "name: a route named 'lb-route' exists already",
                    ADD("lb-route", paths, ups, 2, NULL));
        ups[1].name = (char *)"x";
        EXPECT_FAIL(c, -ENOENT, "upstreams[1].name: no upstream named 'x'",
                    ADD("r", paths, ups, 2, NULL));
        CHECK(config_edit_add_route(c, "r", paths, ups, 2, NULL, NULL) == -ENOENT);
        CHECK(c->n_routes == 1 && n_files(c) == 1);
#undef ADD
}

static void test_route_edits(void)
{
        _cleanup_(config_freep) Config *c = load_base();
        ConfigNode node = {.host = (char *)"10.0.0.1", .port = 80, .weight = 1};
        const ConfigRoute *rt;

        if (!c)
                return;

        /* Weights. */
        EXPECT_OK(config_edit_set_route_upstream_weight(c, "lb-route", "mockapi7", 3, &err));
        rt = route(c, "lb-route");
        CHECK(rt && rt->upstreams[1].weight == 3 && rt->upstreams[0].weight == 1);
        check_round_trip(c);
        EXPECT_FAIL(c, -ENOENT, "route: no route named 'x'",
                    config_edit_set_route_upstream_weight(c, "x", "httpbin", 1, &err));
        EXPECT_FAIL(c, -ENOENT, "route 'lb-route' has no upstream 'x'",
                    config_edit_set_route_upstream_weight(c, "lb-route", "x", 1, &err));
        EXPECT_FAIL(c, -EINVAL, "weight: 10001 is out of range (0..10000)",
                    config_edit_set_route_upstream_weight(c, "x", "x", 10001, &err));
        EXPECT_FAIL(c, -EINVAL,
                    "route: 'a b' is not a valid route name (letters, digits, '_', '.', '-')",
                    config_edit_set_route_upstream_weight(c, "a b", "x", 1, &err));
        EXPECT_FAIL(c, -EINVAL, "upstream: must not be empty",
                    config_edit_set_route_upstream_weight(c, "lb-route", "", 1, &err));

        /* A route's upstreams. */
        EXPECT_OK(config_edit_add_upstream(c, "new", NULL, &node, 1, NULL, &err));
        EXPECT_OK(config_edit_add_route_upstream(c, "lb-route", "new", 0, &err));
        rt = route(c, "lb-route");
        if (rt && rt->n_upstreams == 3) {
                CHECK_STR(rt->upstreams[2].name, "new");
                CHECK(rt->upstreams[2].weight == 0);
                CHECK_STR(rt->upstreams[2].mark.file, "<runtime>");
        } else
                CHECK(!"3 route upstreams");
        check_round_trip(c);
        EXPECT_FAIL(c, -EBUSY, "upstream 'new' is used by route 'lb-route'",
                    config_edit_remove_upstream(c, "new", &err));
        EXPECT_FAIL(c, -EEXIST, "route 'lb-route' has upstream 'httpbin' already",
                    config_edit_add_route_upstream(c, "lb-route", "httpbin", 1, &err));
        EXPECT_FAIL(c, -ENOENT, "upstream: no upstream named 'x'",
                    config_edit_add_route_upstream(c, "lb-route", "x", 1, &err));
        EXPECT_FAIL(c, -ENOENT, "route: no route named 'x'",
                    config_edit_add_route_upstream(c, "x", "httpbin", 1, &err));
        EXPECT_FAIL(c, -EINVAL, "weight: 10001 is out of range (0..10000)",
                    config_edit_add_route_upstream(c, "lb-route", "x", 10001, &err));

        EXPECT_OK(config_edit_remove_route_upstream(c, "lb-route", "httpbin", &err));
        EXPECT_OK(config_edit_remove_route_upstream(c, "lb-route", "new", &err));
        rt = route(c, "lb-route");
        CHECK(rt && rt->n_upstreams == 1 && streq(rt->upstreams[0].name, "mockapi7"));
        check_round_trip(c);
        EXPECT_FAIL(c, -EINVAL,
                    "upstream 'mockapi7' is the last of route 'lb-route' (a route needs at "
                    "least one upstream)",
                    config_edit_remove_route_upstream(c, "lb-route", "mockapi7", &err));
        EXPECT_FAIL(c, -ENOENT, "route 'lb-route' has no upstream 'httpbin'",
                    config_edit_remove_route_upstream(c, "lb-route", "httpbin", &err));
        EXPECT_FAIL(c, -ENOENT, "route: no route named 'x'",
                    config_edit_remove_route_upstream(c, "x", "httpbin", &err));
        EXPECT_OK(config_edit_remove_upstream(c, "new", &err));
        EXPECT_OK(config_edit_remove_upstream(c, "httpbin", &err));

        /* Routes. */
        EXPECT_FAIL(c, -ENOENT, "name: no route named 'x'", config_edit_remove_route(c, "x", &err));
        EXPECT_FAIL(c, -EINVAL, "name: must not be empty", config_edit_remove_route(c, "", &err));
        EXPECT_OK(config_edit_remove_route(c, "lb-route", &err));
        CHECK(c->n_routes == 0);
        check_round_trip(c);
        check_copy(c);
}

/* ---- out of memory ---- */

#if FAULT_INJECTION
typedef int (*Edit)(Config *c, char **err);

static int edit_add_upstream(Config *c, char **err)
{
        ConfigNode nodes[2] = {
                {.host = (char *)"[::2]", .port = 80, .weight = 1},
                {.host = (char *)"a.example", .port = 80, .weight = 1},
        };
        ConfigUpstreamOptions o = CONFIG_UPSTREAM_OPTIONS_INIT;

        o.pass_host = "rewrite";
        o.upstream_host = "a.example";
        o.sni = "a.example";
        return config_edit_add_upstream(c, "new", "https", nodes, 2, &o, err);
}

static int edit_add_node(Config *c, char **err)
{
        return config_edit_add_node(c, "httpbin", "10.0.0.1", 80, 1, err);
}

static int edit_add_route(Config *c, char **err)
{
        char *paths[] = {(char *)"/a", (char *)"/b*", NULL};
        char *hosts[] = {(char *)"A.example", NULL};
        char *methods[] = {(char *)"get", (char *)"put", NULL};
        ConfigRouteUpstream ups[] = {
                {.name = (char *)"httpbin", .weight = 1},
                {.name = (char *)"mockapi7", .weight = 2},
        };
        ConfigRouteOptions o = {.hosts = hosts, .methods = methods};

        return config_edit_add_route(c, "r", paths, ups, 2, &o, err);
}

static int edit_add_route_upstream(Config *c, char **err)
{
        return config_edit_add_route_upstream(c, "lb-route", "spare", 5, err);
}

/* Edits whose messages need memory too. */
static int edit_failing(Config *c, char **err)
{
        return config_edit_remove_upstream(c, "httpbin", err);
}

static void test_out_of_memory(void)
{
        static const Edit edits[] = {
                edit_add_upstream,       edit_add_node, edit_add_route,
                edit_add_route_upstream, edit_failing,
        };
        /* With listeners of every protocol, so that copying them fails at every step too. */
        _cleanup_(config_freep) Config *c = load_base_and(protocols_yaml);
        _cleanup_free_ char *text = NULL;

        if (!c)
                return;
        if (!fault_works()) {
                fprintf(stderr, "malloc is not ours: allocation failures not tested\n");
                return;
        }
        text = dump(c);

        for (unsigned k = 0;; k++) {
                Config *n = NULL;
                long live = fault.live;
                int r;

                fault_arm(k);
                r = config_copy(c, &n);
                if (!fault_disarm()) {
                        CHECK(r == 0 && n && config_equal(c, n, true));
                        config_free(n);
                        CHECK(fault.live == live);
                        CHECK(k > 40); /* every string of the Config */
                        break;
                }
                CHECK(r == -ENOMEM && !n);
                CHECK(fault.live == live);
        }

        for (size_t e = 0; e < ELEMENTSOF(edits); e++)
                for (unsigned k = 0;; k++) {
                        _cleanup_(config_freep) Config *n = NULL;
                        _cleanup_free_ char *text2 = NULL;
                        char *err = (char *)"not reset";
                        int want = e == ELEMENTSOF(edits) - 1 ? -EBUSY : 0;
                        bool hit;
                        long live;
                        int r;

                        CHECK(config_copy(c, &n) == 0);
                        if (!n)
                                return;
                        live = fault.live;
                        fault_arm(k);
                        r = edits[e](n, &err);
                        hit = fault_disarm();
                        if (r == want) {
                                /* Through, or libc absorbed the failure (vasprintf does). */
                                if (r < 0)
                                        free(err);
                                if (!hit) {
                                        /* Every edit allocates: some runs must have failed. */
                                        CHECK(k > 0);
                                        break;
                                }
                                continue;
                        }
                        if (r != -ENOMEM || !hit) {
                                fprintf(stderr, "%s:%d: edit %zu, allocation %u: got %d\n",
                                        __FILE__, __LINE__, e, k, r);
                                tap_failures++;
                        }
                        CHECK(err == NULL);
                        /* Nothing kept, nothing lost, nothing changed. */
                        CHECK(fault.live == live);
                        CHECK(config_equal(c, n, true));
                        text2 = dump(n);
                        CHECK_STR(text2, text);
                }
}
#endif

/* The loader's limits, through the loader's own check: the same words as a file gets, naming
 * the argument instead of the key. */
static void test_limits(void)
{
        _cleanup_(config_freep) Config *c = load_base();
        enum { N = 4097 };
        ConfigNode *nodes = calloc(N, sizeof(ConfigNode));
        char (*hosts)[16] = calloc(N, 16);
        _cleanup_free_ char *long_path = malloc(4098);
        char *paths[66] = {}, *many[66] = {};
        char names[66][8];
        ConfigRouteUpstream ups[65];
        ConfigRouteOptions o = {};

        if (!c || !nodes || !hosts || !long_path)
                abort();
        for (size_t i = 0; i < N; i++) {
                snprintf(hosts[i], sizeof(hosts[i]), "10.0.%zu.%zu", i / 256, i % 256);
                nodes[i] = (ConfigNode){.host = hosts[i], .port = 80, .weight = 1};
        }
        EXPECT_FAIL(c, -EINVAL, "nodes: too many nodes (4097; at most 4096 per upstream)",
                    config_edit_add_upstream(c, "big", NULL, nodes, N, NULL, &err));
        /* At the limit it is taken; one more node is refused. */
        EXPECT_OK(config_edit_add_upstream(c, "big", NULL, nodes, N - 1, NULL, &err));
        EXPECT_FAIL(c, -EINVAL, "upstream: too many nodes (4097; at most 4096 per upstream)",
                    config_edit_add_node(c, "big", hosts[N - 1], 80, 1, &err));

        long_path[0] = '/';
        memset(long_path + 1, 'a', 4096);
        long_path[4097] = 0;
        paths[0] = long_path;
        ups[0] = (ConfigRouteUpstream){.name = (char *)"httpbin", .weight = 1};
        EXPECT_FAIL(c, -EINVAL,
                    "paths[0]: invalid path '/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': longer than 4096 bytes",
                    config_edit_add_route(c, "r", paths, ups, 1, NULL, &err));
        long_path[4096] = 0;
        EXPECT_OK(config_edit_add_route(c, "r", paths, ups, 1, NULL, &err));

        for (int i = 0; i < 65; i++) {
                snprintf(names[i], sizeof(names[i]), "/p%d", i);
                many[i] = names[i];
                ups[i] = (ConfigRouteUpstream){.name = (char *)"httpbin", .weight = 1};
        }
        EXPECT_FAIL(c, -EINVAL, "paths: too many paths (65; at most 64 per route)",
                    config_edit_add_route(c, "r2", many, ups, 1, NULL, &err));
        EXPECT_FAIL(c, -EINVAL, "upstreams: too many upstreams (65; at most 64 per route)",
                    config_edit_add_route(c, "r2", paths, ups, 65, NULL, &err));
        many[33] = NULL;
        o.methods = many;
        paths[0] = (char *)"/m";
        EXPECT_FAIL(c, -EINVAL, "options.methods: too many methods (33; at most 32 per route)",
                    config_edit_add_route(c, "r2", paths, ups, 1, &o, &err));
        free(nodes);
        free(hosts);
}

int main(void)
{
        test_copy();
        test_copy_protocols();
        test_add_upstream();
        test_add_upstream_errors();
        test_remove_upstream();
        test_nodes();
        test_add_route();
        test_add_route_errors();
        test_route_edits();
        test_limits();
#if FAULT_INJECTION
        test_out_of_memory();
#endif
        TEST_MAIN_END();
}
