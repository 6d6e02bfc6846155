/* SPDX-License-Identifier: MIT */
/* APISIX manifests as configuration: the tutorial's manifest as it is, each translated field,
 * each refused field with its exact message, and the dump of a translated configuration
 * loading back the same. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/apisix.h"
#include "config/config-internal.h"
#include "config/config.h"
#include "tap.h"

#define STRV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Manifests alone have no listener; this document, put after them, keeps their line numbers
 * as written. */
#define LISTENER "\n---\nlisteners: [{name: l}]\n"

#define UNTOUCHED ((Config *)(uintptr_t)0x5a5a)

#define SEC USEC_PER_SEC

static char *with_listener(const char *yaml)
{
        char *s;

        if (asprintf(&s, "%s" LISTENER, yaml) < 0)
                abort();
        return s;
}

static Config *load_ok_at(const char *yaml, int line)
{
        _cleanup_free_ char *text = with_listener(yaml);
        Config *c = NULL;
        char *errors = (char *)"not reset";
        int r;

        r = config_load_string("t.yaml", text, strlen(text), &errors, &c);
        if (r < 0 || !c || errors) {
                fprintf(stderr, "%s:%d: load failed: %s\n%s\n", __FILE__, line, strerror(-r),
                        errors ? errors : "");
                tap_failures++;
                free(r < 0 ? errors : NULL);
                return NULL;
        }
        return c;
}
#define load_ok(yaml) load_ok_at(yaml, __LINE__)

/* The load must fail with -EINVAL and exactly these messages. */
static void expect_errors_at(const char *yaml, const char *want, int line)
{
        _cleanup_free_ char *text = with_listener(yaml);
        Config *c = UNTOUCHED;
        char *errors = NULL;
        int r;

        r = config_load_string("t.yaml", text, strlen(text), &errors, &c);
        if (r != -EINVAL || c != UNTOUCHED || !streq_ptr(errors, want)) {
                fprintf(stderr, "%s:%d: expected -EINVAL, got %d%s\n  got:  %s\n  want: %s\n",
                        __FILE__, line, r, c != UNTOUCHED ? " (ret touched)" : "",
                        errors ? errors : "(null)", want);
                tap_failures++;
                if (r >= 0 && c != UNTOUCHED)
                        config_unref(c);
        }
        free(errors);
}
#define expect_errors(yaml, want) expect_errors_at(yaml, want, __LINE__)

static bool strv_is(char **l, const char *const *want)
{
        size_t n = 0;

        if (!l || !want)
                return !l && !want;
        for (; want[n]; n++)
                if (!l[n] || !streq(l[n], want[n]))
                        return false;
        return l[n] == NULL;
}

static bool mark_is(ConfigMark m, const char *file, unsigned line, unsigned column)
{
        return streq_ptr(m.file, file) && m.line == line && m.column == column;
}

static bool route_upstream_is(const ConfigRoute *r, size_t i, const char *name, uint32_t weight)
{
        return i < r->n_upstreams && streq_ptr(r->upstreams[i].name, name) &&
               r->upstreams[i].weight == weight;
}

static bool node_is(const ConfigUpstream *u, size_t i, const char *host, uint16_t port,
                    uint32_t weight)
{
        return i < u->n_nodes && streq_ptr(u->nodes[i].host, host) && u->nodes[i].port == port &&
               u->nodes[i].weight == weight;
}

static char *dump(const Config *c)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        CHECK(f != NULL);
        if (!f)
                return NULL;
        CHECK(config_dump(c, f) == 0);
        fclose(f);
        return text;
}

/* ---- the tutorial ---- */

/* globals.yaml of the issue: listeners, DNS servers and trust, nothing about APISIX. */
static const char globals_yaml[] = "listeners:\n"
                                   "  - name: http\n"
                                   "    listen: \"127.0.0.1:9080\"\n"
                                   "dns:\n"
                                   "  servers: [\"127.0.0.1:5353\"]\n"
                                   "tls:\n"
                                   "  ca_file: /etc/lbproxy/test-ca.pem\n";

static const char tutorial_dump[] = "upstreams:\n"
                                    "- name: httpbin-external-domain\n"
                                    "  scheme: https\n"
                                    "  pass_host: node\n"
                                    "  balancer: roundrobin\n"
                                    "  retries: 0\n"
                                    "  keepalive_pool: 32\n"
                                    "  keepalive_idle: 1m\n"
                                    "  timeout: {connect: 1m, send: 1m, read: 1m}\n"
                                    "  tls:\n"
                                    "    ca_file: /etc/lbproxy/test-ca.pem\n"
                                    "    verify: true\n"
                                    "  nodes:\n"
                                    "  - {host: httpbin.org, port: 443, weight: 1}\n"
                                    "- name: mockapi7-external-domain\n"
                                    "  scheme: https\n"
                                    "  pass_host: node\n"
                                    "  balancer: roundrobin\n"
                                    "  retries: 0\n"
                                    "  keepalive_pool: 32\n"
                                    "  keepalive_idle: 1m\n"
                                    "  timeout: {connect: 1m, send: 1m, read: 1m}\n"
                                    "  tls:\n"
                                    "    ca_file: /etc/lbproxy/test-ca.pem\n"
                                    "    verify: true\n"
                                    "  nodes:\n"
                                    "  - {host: mock.api7.ai, port: 443, weight: 1}\n"
                                    "routes:\n"
                                    "- name: lb-route\n"
                                    "  paths: [/headers]\n"
                                    "  priority: 0\n"
                                    "  upstreams:\n"
                                    "  - {name: httpbin-external-domain, weight: 100}\n"
                                    "  - {name: mockapi7-external-domain, weight: 100}\n";

static void check_tutorial(const Config *c, const char *file)
{
        const ConfigUpstream *h, *m;
        const ConfigRoute *r;
        _cleanup_free_ char *text = NULL;

        CHECK(c->n_upstreams == 2);
        CHECK(c->n_routes == 1);
        CHECK(c->n_listeners == 1);
        if (c->n_upstreams != 2 || c->n_routes != 1)
                return;

        h = config_find_upstream(c, "httpbin-external-domain");
        m = config_find_upstream(c, "mockapi7-external-domain");
        CHECK(h == c->upstreams[0] && m == c->upstreams[1]);
        if (!h || !m)
                return;
        for (const ConfigUpstream *const *p = (const ConfigUpstream *const[]){h, m, NULL}; *p; p++) {
                const ConfigUpstream *u = *p;

                CHECK(u->scheme == SCHEME_HTTPS);
                CHECK(u->pass_host == PASS_HOST_NODE);
                CHECK(!u->upstream_host);
                CHECK(streq_ptr(u->balancer, "roundrobin"));
                CHECK(u->n_nodes == 1);
                CHECK(u->retries == 0); /* one node: nothing else to retry on */
                CHECK(u->connect_timeout_usec == 60 * SEC);
                CHECK(u->send_timeout_usec == 60 * SEC);
                CHECK(u->read_timeout_usec == 60 * SEC);
                /* The top-level trust of globals.yaml. */
                CHECK(streq_ptr(u->tls.ca_file, "/etc/lbproxy/test-ca.pem"));
                CHECK(u->tls.verify == 1);
                CHECK(!u->tls.sni);
        }
        CHECK(node_is(h, 0, "httpbin.org", 443, 1));
        CHECK(node_is(m, 0, "mock.api7.ai", 443, 1));
        CHECK(mark_is(h->mark, file, 4, 9));
        CHECK(mark_is(m->mark, file, 17, 9));
        CHECK(mark_is(h->nodes[0].mark, file, 9, 5));
        CHECK(mark_is(m->nodes[0].mark, file, 22, 5));

        r = config_find_route(c, "lb-route");
        CHECK(r == c->routes[0]);
        if (!r)
                return;
        CHECK(strv_is(r->paths, STRV("/headers")));
        CHECK(!r->hosts);
        CHECK(!r->methods);
        CHECK(r->priority == 0);
        CHECK(r->n_upstreams == 2);
        /* Equal weights: APISIX's default of 100 each, which splits 1:1. */
        CHECK(route_upstream_is(r, 0, "httpbin-external-domain", 100));
        CHECK(route_upstream_is(r, 1, "mockapi7-external-domain", 100));
        CHECK(mark_is(r->mark, file, 34, 13));
        CHECK(r->n_upstreams == 2 && mark_is(r->upstreams[0].mark, file, 39, 15));
        CHECK(r->n_upstreams == 2 && mark_is(r->upstreams[1].mark, file, 40, 15));

        /* And what --dump shows of it. */
        text = dump(c);
        CHECK(text && strstr(text, tutorial_dump));
        if (text && !strstr(text, tutorial_dump))
                fprintf(stderr, "dump:\n%s\n", text);
}

static void test_tutorial(void)
{
        char dir[] = "/tmp/test-apisix-XXXXXX";
        char *globals = NULL, *errors = NULL;
        Config *c = NULL;
        FILE *f;
        int r;

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                tap_failures++;
                return;
        }
        if (asprintf(&globals, "%s/globals.yaml", dir) < 0)
                abort();
        f = fopen(globals, "we");
        CHECK(f != NULL);
        if (f) {
                fputs(globals_yaml, f);
                fclose(f);
        }

        /* lbproxy --config globals.yaml --config lb-route.yaml, the manifest as published. */
        r = config_load((char *[]){globals, (char *)"apisix/lb-route.yaml", NULL}, &errors, &c);
        CHECK(r == 0);
        if (r < 0)
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
        free(errors);
        if (r == 0) {
                check_tutorial(c, "apisix/lb-route.yaml");
                config_unref(c);
        }

        /* The same with the manifest first: the trust of a later file still applies. */
        c = NULL;
        r = config_load((char *[]){(char *)"apisix/lb-route.yaml", globals, NULL}, &errors, &c);
        CHECK(r == 0);
        if (r == 0) {
                CHECK(c->n_upstreams == 2 &&
                      streq_ptr(c->upstreams[1]->tls.ca_file, "/etc/lbproxy/test-ca.pem"));
                config_unref(c);
        } else {
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
                free(errors);
        }

        unlink(globals);
        rmdir(dir);
        free(globals);
}

/* ---- each translated field ---- */

static void test_upstream_fields(void)
{
        const ConfigUpstream *u;
        Config *c;

        /* Defaults: scheme http, so port 80; weight 100; pass_host pass; retries = nodes - 1. */
        c = load_ok("apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: plain}\n"
                    "spec:\n"
                    "  externalNodes:\n"
                    "  - {type: Domain, name: a.example}\n"
                    "  - {type: Domain, name: 10.0.0.2, port: 8080}\n"
                    "  - {type: Domain, name: B.Example, weight: 0}\n");
        if (c) {
                u = config_find_upstream(c, "plain");
                CHECK(u != NULL);
                if (u) {
                        CHECK(u->scheme == SCHEME_HTTP);
                        CHECK(u->pass_host == PASS_HOST_PASS);
                        CHECK(streq_ptr(u->balancer, "roundrobin"));
                        CHECK(u->n_nodes == 3);
                        CHECK(node_is(u, 0, "a.example", 80, 100));
                        CHECK(node_is(u, 1, "10.0.0.2", 8080, 100));
                        CHECK(node_is(u, 2, "B.Example", 80, 0));
                        CHECK(u->retries == 2);
                        CHECK(u->connect_timeout_usec == 60 * SEC);
                        CHECK(u->send_timeout_usec == 60 * SEC);
                        CHECK(u->read_timeout_usec == 60 * SEC);
                        /* Not APISIX's to say: lbproxy's own defaults. */
                        CHECK(u->keepalive_pool == 32);
                        CHECK(u->tls.verify == 1 && !u->tls.ca_file);
                }
                config_unref(c);
        }

        /* Every key, scheme last: the default port follows it whatever the order. */
        c = load_ok("apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata:\n"
                    "  name: full\n"
                    "  labels: {app: full}\n"
                    "  annotations: {note: \"kept out of the translation\"}\n"
                    "spec:\n"
                    "  ingressClassName: apisix\n"
                    "  externalNodes:\n"
                    "  - type: Domain\n"
                    "    name: api.example.com\n"
                    "    weight: 7\n"
                    "  - {type: Domain, name: api2.example.com, port: 8443, weight: 3}\n"
                    "  passHost: rewrite\n"
                    "  upstreamHost: \"front.example.com:8443\"\n"
                    "  loadbalancer: {type: roundrobin}\n"
                    "  retries: 5\n"
                    "  timeout: {connect: 1.5s, send: 2m30s, read: 300ms}\n"
                    "  healthCheck: ~\n"
                    "  scheme: https\n");
        if (c) {
                u = config_find_upstream(c, "full");
                CHECK(u != NULL);
                if (u) {
                        CHECK(u->scheme == SCHEME_HTTPS);
                        CHECK(u->pass_host == PASS_HOST_REWRITE);
                        CHECK(streq_ptr(u->upstream_host, "front.example.com:8443"));
                        CHECK(streq_ptr(u->balancer, "roundrobin"));
                        CHECK(node_is(u, 0, "api.example.com", 443, 7));
                        CHECK(node_is(u, 1, "api2.example.com", 8443, 3));
                        CHECK(u->retries == 5);
                        CHECK(u->connect_timeout_usec == 1500 * USEC_PER_MSEC);
                        CHECK(u->send_timeout_usec == 150 * SEC);
                        CHECK(u->read_timeout_usec == 300 * USEC_PER_MSEC);
                        CHECK(mark_is(u->mark, "t.yaml", 4, 9));
                        CHECK(u->n_nodes == 2 && mark_is(u->nodes[0].mark, "t.yaml", 10, 5));
                }
                config_unref(c);
        }

        /* passHost node; a loadbalancer without type is roundrobin; a timeout block that
         * leaves some out, or gives 0, gets APISIX's 60s for them; retries 0. */
        c = load_ok("apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: part}\n"
                    "spec:\n"
                    "  passHost: node\n"
                    "  loadbalancer: {}\n"
                    "  retries: 0\n"
                    "  timeout: {read: \"0\", connect: 5s}\n"
                    "  externalNodes: [{type: Domain, name: x.example}, "
                    "{type: Domain, name: y.example}]\n");
        if (c) {
                u = config_find_upstream(c, "part");
                CHECK(u != NULL);
                if (u) {
                        CHECK(u->pass_host == PASS_HOST_NODE);
                        CHECK(streq_ptr(u->balancer, "roundrobin"));
                        CHECK(u->retries == 0);
                        CHECK(u->connect_timeout_usec == 5 * SEC);
                        CHECK(u->send_timeout_usec == 60 * SEC);
                        CHECK(u->read_timeout_usec == 60 * SEC);
                }
                config_unref(c);
        }

        /* passHost pass, said; scheme http, said; a namespace goes into the name. */
        c = load_ok("apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: web, namespace: shop}\n"
                    "spec:\n"
                    "  scheme: http\n"
                    "  passHost: pass\n"
                    "  externalNodes: [{type: Domain, name: web.shop.example, port: 81}]\n");
        if (c) {
                CHECK(!config_find_upstream(c, "web"));
                u = config_find_upstream(c, "shop_web");
                CHECK(u != NULL);
                if (u) {
                        CHECK(u->scheme == SCHEME_HTTP && u->pass_host == PASS_HOST_PASS);
                        CHECK(node_is(u, 0, "web.shop.example", 81, 100));
                        CHECK(mark_is(u->mark, "t.yaml", 3, 18));
                }
                config_unref(c);
        }
}

static const char two_upstreams[] = "apiVersion: apisix.apache.org/v2\n"
                                    "kind: ApisixUpstream\n"
                                    "metadata: {name: a}\n"
                                    "spec: {externalNodes: [{type: Domain, name: a.example}]}\n"
                                    "---\n"
                                    "apiVersion: apisix.apache.org/v2\n"
                                    "kind: ApisixUpstream\n"
                                    "metadata: {name: b}\n"
                                    "spec: {externalNodes: [{type: Domain, name: b.example}]}\n"
                                    "---\n";

static void test_route_fields(void)
{
        _cleanup_free_ char *yaml = NULL;
        const ConfigRoute *r;
        Config *c;

        /* Every key of a rule, two rules, and the names they get. */
        if (asprintf(&yaml,
                     "%s"
                     "apiVersion: apisix.apache.org/v2\n"
                     "kind: ApisixRoute\n"
                     "metadata: {name: web, labels: {team: x}}\n"
                     "spec:\n"
                     "  ingressClassName: apisix\n"
                     "  http:\n"
                     "  - name: api\n"
                     "    priority: 10\n"
                     "    websocket: true\n"
                     "    match:\n"
                     "      paths: [/api/*, /exact]\n"
                     "      hosts: [Example.COM, \"*.example.org\"]\n"
                     "      methods: [GET, post]\n"
                     "    upstreams:\n"
                     "    - {name: a, weight: 3}\n"
                     "    - name: b\n"
                     "  - name: web\n"
                     "    priority: -1\n"
                     "    match: {paths: [\"/*\"]}\n"
                     "    upstreams: [{name: b, weight: 0}]\n",
                     two_upstreams) < 0)
                abort();
        c = load_ok(yaml);
        if (!c)
                return;
        CHECK(c->n_routes == 2);
        r = config_find_route(c, "web_api");
        CHECK(r == c->routes[0]);
        if (r) {
                CHECK(strv_is(r->paths, STRV("/api/*", "/exact")));
                CHECK(strv_is(r->hosts, STRV("example.com", "*.example.org")));
                CHECK(strv_is(r->methods, STRV("GET", "POST")));
                CHECK(r->priority == 10);
                CHECK(r->websocket);
                CHECK(r->n_upstreams == 2);
                CHECK(route_upstream_is(r, 0, "a", 3));
                CHECK(route_upstream_is(r, 1, "b", 100));
                CHECK(mark_is(r->mark, "t.yaml", 17, 11));
                CHECK(r->n_upstreams == 2 && mark_is(r->upstreams[0].mark, "t.yaml", 25, 14));
                CHECK(r->n_upstreams == 2 && mark_is(r->upstreams[1].mark, "t.yaml", 26, 13));
        }
        /* A rule named like its ApisixRoute is the route of that name. */
        r = config_find_route(c, "web");
        CHECK(r == c->routes[1]);
        if (r) {
                CHECK(strv_is(r->paths, STRV("/*")));
                CHECK(!r->hosts && !r->methods);
                CHECK(r->priority == -1);
                CHECK(!r->websocket);
                CHECK(r->n_upstreams == 1 && route_upstream_is(r, 0, "b", 0));
        }
        config_unref(c);
}

static void test_namespaces(void)
{
        const ConfigRoute *r;
        Config *c;

        /* References resolve in the route's namespace: the same name in two namespaces is two
         * upstreams, and a route without a namespace sees the one without. */
        c = load_ok("apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: svc, namespace: blue}\n"
                    "spec: {externalNodes: [{type: Domain, name: blue.example}]}\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: svc, namespace: green}\n"
                    "spec: {externalNodes: [{type: Domain, name: green.example}]}\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: svc}\n"
                    "spec: {externalNodes: [{type: Domain, name: plain.example}]}\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixRoute\n"
                    "metadata: {name: rt, namespace: green}\n"
                    "spec:\n"
                    "  http:\n"
                    "  - {name: rt, match: {paths: [/g]}, upstreams: [{name: svc}]}\n"
                    "  - {name: other, match: {paths: [/o]}, upstreams: [{name: svc}]}\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixRoute\n"
                    "metadata: {name: rt}\n"
                    "spec:\n"
                    "  http: [{name: x, match: {paths: [/p]}, upstreams: [{name: svc}]}]\n");
        if (!c)
                return;
        CHECK(c->n_upstreams == 3);
        CHECK(config_find_upstream(c, "blue_svc") && config_find_upstream(c, "green_svc") &&
              config_find_upstream(c, "svc"));
        r = config_find_route(c, "green_rt");
        CHECK(r && route_upstream_is(r, 0, "green_svc", 100));
        r = config_find_route(c, "green_rt_other");
        CHECK(r && route_upstream_is(r, 0, "green_svc", 100));
        r = config_find_route(c, "rt_x");
        CHECK(r && route_upstream_is(r, 0, "svc", 100));
        config_unref(c);
}

/* Native and APISIX documents mix in one stream, refer to each other, in any order. */
static void test_mixed(void)
{
        const ConfigRoute *r;
        Config *c;

        c = load_ok("routes:\n"
                    "  - {name: native, paths: [/n], upstreams: [{name: apx}]}\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixRoute\n"
                    "metadata: {name: apx-route}\n"
                    "spec:\n"
                    "  http: [{name: r, match: {paths: [/a]}, upstreams: [{name: nat}]}]\n"
                    "---\n"
                    "upstreams: [{name: nat, nodes: [{host: n.example}]}]\n"
                    "---\n"
                    "apiVersion: apisix.apache.org/v2\n"
                    "kind: ApisixUpstream\n"
                    "metadata: {name: apx}\n"
                    "spec: {externalNodes: [{type: Domain, name: a.example}]}\n");
        if (!c)
                return;
        CHECK(c->n_upstreams == 2 && c->n_routes == 2);
        r = config_find_route(c, "native");
        CHECK(r && route_upstream_is(r, 0, "apx", 1));
        r = config_find_route(c, "apx-route_r");
        CHECK(r && route_upstream_is(r, 0, "nat", 100));
        config_unref(c);
}

/* ---- what is refused, and why ---- */

#define UPSTREAM_HEAD                                                                              \
        "apiVersion: apisix.apache.org/v2\n"                                                       \
        "kind: ApisixUpstream\n"                                                                   \
        "metadata: {name: up}\n"                                                                   \
        "spec:\n"                                                                                  \
        "  externalNodes: [{type: Domain, name: a.example}]\n"

/* An ApisixRoute up to its first rule's name, then the rule's keys. */
#define ROUTE_RULE_HEAD                                                                            \
        "apiVersion: apisix.apache.org/v2\n"                                                       \
        "kind: ApisixRoute\n"                                                                      \
        "metadata: {name: rt}\n"                                                                   \
        "spec:\n"                                                                                  \
        "  http:\n"                                                                                \
        "  - name: r\n"

/* A rule whose match: comes last, for tests of its keys. */
#define ROUTE_MATCH_HEAD                                                                           \
        ROUTE_RULE_HEAD                                                                            \
        "    upstreams: [{name: up}]\n"                                                            \
        "    match:\n"

#define ROUTE_HEAD                                                                                 \
        ROUTE_RULE_HEAD                                                                            \
        "    match: {paths: [/]}\n"                                                                \
        "    upstreams: [{name: up}]\n"

/* Each of APISIX's loadbalancer types is the native balancer of that name. */
static void test_loadbalancer_types(void)
{
        static const struct {
                const char *yaml, *balancer, *hash_key;
                HashOn hash_on;
        } cases[] = {
                {"{type: roundrobin}", "roundrobin", NULL, HASH_ON_VARS},
                {"{type: least_conn}", "least_conn", NULL, HASH_ON_VARS},
                {"{type: ewma}", "ewma", NULL, HASH_ON_VARS},
                {"{type: chash}", "chash", NULL, HASH_ON_VARS},
                {"{type: chash, hashOn: vars, key: arg_user}", "chash", "arg_user", HASH_ON_VARS},
                {"{type: chash, hashOn: header, key: X-User}", "chash", "X-User", HASH_ON_HEADER},
                {"{type: chash, hashOn: cookie, key: sid}", "chash", "sid", HASH_ON_COOKIE},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *yaml = NULL;
                CHECK(asprintf(&yaml, UPSTREAM_HEAD "  loadbalancer: %s\n", cases[i].yaml) > 0);
                _cleanup_(config_unrefp) Config *c = load_ok(yaml);
                if (!c)
                        continue;
                const ConfigUpstream *u = c->upstreams[0];
                CHECK_STR(u->balancer, cases[i].balancer);
                CHECK(streq_ptr(u->hash_key, cases[i].hash_key));
                CHECK(u->hash_on == cases[i].hash_on);
        }
}

static void test_refused_upstream_fields(void)
{
        expect_errors(UPSTREAM_HEAD "  tlsSecret: {name: client, namespace: default}\n",
                      "t.yaml:6:3: ApisixUpstream/up: spec.tlsSecret: client certificates come "
                      "from a Kubernetes Secret, which does not exist outside Kubernetes");
        expect_errors(UPSTREAM_HEAD "  subsets: [{name: v1, labels: {version: v1}}]\n",
                      "t.yaml:6:3: ApisixUpstream/up: spec.subsets: subsets pick the Pods of a "
                      "Kubernetes Service by label, which do not exist outside Kubernetes");
        expect_errors(UPSTREAM_HEAD "  discovery: {type: dns, serviceName: a.example}\n",
                      "t.yaml:6:3: ApisixUpstream/up: spec.discovery: service discovery "
                      "registries are not supported (list the nodes in externalNodes)");
        expect_errors(UPSTREAM_HEAD "  portLevelSettings: [{port: 80, scheme: http}]\n",
                      "t.yaml:6:3: ApisixUpstream/up: spec.portLevelSettings: per-port settings "
                      "apply to the ports of a Kubernetes Service, which does not exist outside "
                      "Kubernetes");

        /* Nodes that are Kubernetes Services, by type or by its absence. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: up}\n"
                      "spec:\n"
                      "  externalNodes:\n"
                      "  - {type: Service, name: httpbin}\n"
                      "  - {name: a.example}\n"
                      "  - {type: domain, name: b.example}\n",
                      "t.yaml:6:12: ApisixUpstream/up: spec.externalNodes[0].type: 'Service' "
                      "names a Kubernetes ExternalName Service, which does not exist outside "
                      "Kubernetes (use type: Domain)\n"
                      "t.yaml:7:5: ApisixUpstream/up: spec.externalNodes[1].type: missing, which "
                      "makes the node a Kubernetes Service in APISIX: Services do not exist "
                      "outside Kubernetes (use type: Domain)\n"
                      "t.yaml:8:12: ApisixUpstream/up: spec.externalNodes[2].type: unknown type "
                      "'domain' (known: Domain, Service)");
        /* No externalNodes: the ApisixUpstream decorates a Service. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: httpbin}\n"
                      "spec:\n"
                      "  loadbalancer: {type: roundrobin}\n",
                      "t.yaml:5:3: ApisixUpstream/httpbin: spec: missing required key "
                      "'externalNodes': without it an ApisixUpstream configures the Kubernetes "
                      "Service of its name, which does not exist outside Kubernetes");

        /* What only chash uses, and what chash cannot hash on. */
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {type: random}\n",
                      "t.yaml:6:24: ApisixUpstream/up: spec.loadbalancer.type: unknown type "
                      "'random' (known: roundrobin, least_conn, chash, ewma)");
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {hashOn: header, key: x}\n",
                      "t.yaml:6:26: ApisixUpstream/up: spec.loadbalancer.hashOn: only used with "
                      "type: chash\n"
                      "t.yaml:6:39: ApisixUpstream/up: spec.loadbalancer.key: only used with "
                      "type: chash");
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {type: chash, hashOn: consumer}\n",
                      "t.yaml:6:39: ApisixUpstream/up: spec.loadbalancer.hashOn: hashOn "
                      "'consumer' is not supported: lbproxy has no consumers (APISIX's "
                      "authenticated users)");
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {type: chash, hashOn: vars_combinations, "
                                    "key: $host}\n",
                      "t.yaml:6:39: ApisixUpstream/up: spec.loadbalancer.hashOn: hashOn "
                      "'vars_combinations' is not supported: hash on one variable, header or "
                      "cookie");
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {type: chash, hashOn: vars, key: colour}\n",
                      "t.yaml:6:50: ApisixUpstream/up: spec.loadbalancer.key: unknown variable "
                      "'colour' (known: remote_addr, uri, request_uri, host, arg_NAME, "
                      "http_NAME)");
        expect_errors(UPSTREAM_HEAD "  loadbalancer: {type: chash, hashOn: header}\n",
                      "t.yaml:6:17: ApisixUpstream/up: spec.loadbalancer: missing required key "
                      "'key' (hashOn is header)");

        /* Schemes lbproxy does not speak. */
        expect_errors(UPSTREAM_HEAD "  scheme: grpcs\n",
                      "t.yaml:6:11: ApisixUpstream/up: spec.scheme: 'grpcs' is not supported "
                      "(known: http, https)");
        expect_errors(UPSTREAM_HEAD "  scheme: HTTPS\n",
                      "t.yaml:6:11: ApisixUpstream/up: spec.scheme: unknown scheme 'HTTPS' "
                      "(known: http, https, grpc, grpcs)");
}

static void test_refused_route_fields(void)
{
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD
                      "    backends:\n"
                      "    - {serviceName: httpbin, servicePort: 80}\n",
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[0].backends: backends are "
                      "Kubernetes Services, which do not exist outside Kubernetes (name an "
                      "ApisixUpstream with externalNodes in upstreams instead)");
        /* backends alone: no second error about the missing upstreams. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt}\n"
                      "spec:\n"
                      "  http:\n"
                      "  - name: r\n"
                      "    match: {paths: [/]}\n"
                      "    backends: [{serviceName: httpbin, servicePort: 80}]\n",
                      "t.yaml:8:5: ApisixRoute/rt: spec.http[0].backends: backends are "
                      "Kubernetes Services, which do not exist outside Kubernetes (name an "
                      "ApisixUpstream with externalNodes in upstreams instead)");
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD
                      "    plugins:\n"
                      "    - {name: cors, enable: true}\n",
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[0].plugins: plugins are not "
                      "supported: lbproxy runs no APISIX plugins");
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD "    plugin_config_name: cors\n"
                                                        "    plugin_config_namespace: default\n",
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[0].plugin_config_name: "
                      "ApisixPluginConfig is not supported: lbproxy runs no APISIX plugins\n"
                      "t.yaml:16:5: ApisixRoute/rt: spec.http[0].plugin_config_namespace: "
                      "ApisixPluginConfig is not supported: lbproxy runs no APISIX plugins");
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD "    authentication:\n"
                                                        "      enable: true\n"
                                                        "      type: keyAuth\n",
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[0].authentication: authentication "
                      "is not supported: it is done by APISIX plugins, and lbproxy runs no "
                      "APISIX plugins");
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD "    timeout: {connect: 1s}\n",
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[0].timeout: per-route timeouts are "
                      "not supported (set spec.timeout on the ApisixUpstream)");
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_MATCH_HEAD
                      "      paths: [/]\n"
                      "      remoteAddrs: [10.0.0.0/8]\n"
                      "      exprs: [{subject: {scope: Header, name: X-Foo}, op: Equal, value: "
                      "bar}]\n"
                      "      filter_func: \"function(vars) return true end\"\n",
                      "t.yaml:16:7: ApisixRoute/rt: spec.http[0].match.remoteAddrs: matching on "
                      "client addresses is not supported yet\n"
                      "t.yaml:17:7: ApisixRoute/rt: spec.http[0].match.exprs: matching on "
                      "request variables (headers, query, cookies) is not supported yet\n"
                      "t.yaml:18:7: ApisixRoute/rt: spec.http[0].match.filter_func: Lua filter "
                      "functions cannot run here");
        expect_errors(UPSTREAM_HEAD "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt}\n"
                      "spec:\n"
                      "  stream:\n"
                      "  - {name: tcp, protocol: TCP, match: {ingressPort: 9100}, backend: "
                      "{serviceName: x, servicePort: 1}}\n",
                      "t.yaml:11:3: ApisixRoute/rt: spec.stream: TCP/UDP stream routes are not "
                      "supported");
}

static void test_ingress_class(void)
{
        expect_errors(UPSTREAM_HEAD "  ingressClassName: nginx\n"
                                    "---\n" ROUTE_HEAD "  ingressClassName: \"apisix-2\"\n",
                      "t.yaml:6:21: ApisixUpstream/up: spec.ingressClassName: 'nginx' is not "
                      "served here: lbproxy serves the ingress class 'apisix' only\n"
                      "t.yaml:16:21: ApisixRoute/rt: spec.ingressClassName: 'apisix-2' is not "
                      "served here: lbproxy serves the ingress class 'apisix' only");
}

/* ---- other mistakes ---- */

static void test_documents(void)
{
        /* What a manifest is, first; then nothing else is said about it. */
        expect_errors("apiVersion: v1\n"
                      "kind: Service\n"
                      "metadata: {name: httpbin}\n"
                      "spec: {ports: [{port: 80}]}\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2beta3\n"
                      "kind: ApisixRoute\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixTls\n"
                      "---\n"
                      "kind: ApisixRoute\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "metadata: {name: x}\n"
                      "---\n"
                      "apiVersion: [apisix.apache.org/v2]\n"
                      "kind: ApisixRoute\n",
                      "t.yaml:1:13: apiVersion: 'v1' is not supported: of Kubernetes manifests, "
                      "only APISIX's (apisix.apache.org/v2 ApisixUpstream and ApisixRoute) are "
                      "read\n"
                      "t.yaml:6:13: apiVersion: 'apisix.apache.org/v2beta3' is not supported "
                      "(supported: apisix.apache.org/v2)\n"
                      "t.yaml:10:7: kind: 'ApisixTls' is not supported (supported: "
                      "ApisixUpstream, ApisixRoute)\n"
                      "t.yaml:12:1: missing required key 'apiVersion'\n"
                      "t.yaml:14:1: missing required key 'kind'\n"
                      "t.yaml:17:13: apiVersion: expected a string, got a sequence");

        /* The parts of a manifest. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "status: {conditions: []}\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: r, uid: 1234, namespace: Bad_ns, labels: [a]}\n"
                      "spec: {}\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: -r}\n"
                      "spec: {http: []}\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {namespace: ns}\n"
                      "spec: []\n",
                      "t.yaml:1:1: ApisixUpstream: missing required key 'metadata'\n"
                      "t.yaml:1:1: ApisixUpstream: missing required key 'spec'\n"
                      "t.yaml:3:1: ApisixUpstream: unknown key 'status'\n"
                      "t.yaml:7:21: ApisixRoute: metadata: unknown key 'uid'\n"
                      "t.yaml:7:43: ApisixRoute: metadata.namespace: invalid namespace 'Bad_ns': "
                      "must be lower case letters, digits and '-', starting and ending with a "
                      "letter or digit\n"
                      "t.yaml:7:59: ApisixRoute: metadata.labels: expected a mapping, got a "
                      "sequence\n"
                      "t.yaml:8:7: ApisixRoute: spec: missing required key 'http'\n"
                      "t.yaml:12:18: ApisixRoute: metadata.name: invalid name '-r': must be lower "
                      "case letters, digits, '-' and '.', each '.'-separated part starting and "
                      "ending with a letter or digit\n"
                      "t.yaml:13:14: ApisixRoute: spec.http: at least one rule is required\n"
                      "t.yaml:17:11: ApisixUpstream: metadata: missing required key 'name'\n"
                      "t.yaml:18:7: ApisixUpstream: spec: expected a mapping, got a sequence");
}

static void test_upstream_errors(void)
{
        /* Unknown keys, everywhere, are named like the native loader names them. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: up}\n"
                      "spec:\n"
                      "  externalNode: []\n"
                      "  externalNodes: [{type: Domain, name: a.example, host: b}]\n"
                      "  timeout: {connect: 1s, idle: 1s}\n"
                      "  loadbalancer: {type: roundrobin, hash_on: x}\n"
                      "  scheme: http\n"
                      "  scheme: https\n",
                      "t.yaml:5:3: ApisixUpstream/up: spec: unknown key 'externalNode'\n"
                      "t.yaml:6:51: ApisixUpstream/up: spec.externalNodes[0]: unknown key 'host'\n"
                      "t.yaml:7:26: ApisixUpstream/up: spec.timeout: unknown key 'idle'\n"
                      "t.yaml:8:36: ApisixUpstream/up: spec.loadbalancer: unknown key 'hash_on'\n"
                      "t.yaml:10:3: ApisixUpstream/up: spec: duplicate key 'scheme' (first at "
                      "9:3)");

        /* Values. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: up}\n"
                      "spec:\n"
                      "  passHost: host\n"
                      "  retries: 101\n"
                      "  timeout: {connect: 5, send: -1s, read: 1d}\n"
                      "  externalNodes:\n"
                      "  - {type: Domain, name: \"bad host\", port: 0, weight: -1}\n"
                      "  - {type: Domain, port: \"80\", weight: 10001}\n"
                      "  - {type: Domain, name: \"a.example:80\"}\n",
                      "t.yaml:5:13: ApisixUpstream/up: spec.passHost: unknown passHost 'host' "
                      "(known: pass, node, rewrite)\n"
                      "t.yaml:6:12: ApisixUpstream/up: spec.retries: 101 is out of range "
                      "(0..100)\n"
                      "t.yaml:7:22: ApisixUpstream/up: spec.timeout.connect: invalid duration '5' "
                      "(expected a number with a unit ns, us, ms, s, m or h, as in 5s, 1.5s or "
                      "1m30s)\n"
                      "t.yaml:7:31: ApisixUpstream/up: spec.timeout.send: duration '-1s' is "
                      "negative\n"
                      "t.yaml:7:42: ApisixUpstream/up: spec.timeout.read: invalid duration '1d' "
                      "(expected a number with a unit ns, us, ms, s, m or h, as in 5s, 1.5s or "
                      "1m30s)\n"
                      "t.yaml:9:26: ApisixUpstream/up: spec.externalNodes[0].name: invalid host "
                      "'bad host': only letters, digits, '-' and '.' are allowed\n"
                      "t.yaml:9:44: ApisixUpstream/up: spec.externalNodes[0].port: 0 is out of "
                      "range (1..65535)\n"
                      "t.yaml:9:55: ApisixUpstream/up: spec.externalNodes[0].weight: -1 is out of "
                      "range (0..10000)\n"
                      "t.yaml:10:5: ApisixUpstream/up: spec.externalNodes[1]: missing required key "
                      "'name'\n"
                      "t.yaml:10:26: ApisixUpstream/up: spec.externalNodes[1].port: expected an "
                      "integer, got the quoted string '80'\n"
                      "t.yaml:10:40: ApisixUpstream/up: spec.externalNodes[1].weight: 10001 is "
                      "out of range (0..10000)\n"
                      "t.yaml:11:26: ApisixUpstream/up: spec.externalNodes[2].name: invalid host "
                      "'a.example:80': the port goes in the port: key");

        /* passHost and upstreamHost go together. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: up}\n"
                      "spec:\n"
                      "  passHost: rewrite\n"
                      "  externalNodes: [{type: Domain, name: a.example}]\n"
                      "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: up2}\n"
                      "spec:\n"
                      "  upstreamHost: front.example\n"
                      "  externalNodes: [{type: Domain, name: a.example}]\n"
                      "  externalNodes: []\n",
                      "t.yaml:5:3: ApisixUpstream/up: spec: missing required key 'upstreamHost' "
                      "(passHost is rewrite)\n"
                      "t.yaml:12:17: ApisixUpstream/up2: spec.upstreamHost: only used with "
                      "passHost: rewrite\n"
                      "t.yaml:14:3: ApisixUpstream/up2: spec: duplicate key 'externalNodes' "
                      "(first at 13:3)");
        expect_errors(UPSTREAM_HEAD "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixUpstream\n"
                      "metadata: {name: empty}\n"
                      "spec: {externalNodes: []}\n",
                      "t.yaml:10:23: ApisixUpstream/empty: spec.externalNodes: at least one node "
                      "is required");
}

static void test_names(void)
{
        char longname[254], *yaml;

        /* Names are unique across APISIX and native documents alike. */
        expect_errors(UPSTREAM_HEAD "---\n" UPSTREAM_HEAD "---\n"
                                    "upstreams: [{name: up, nodes: [{host: h}]}]\n"
                                    "---\n" ROUTE_HEAD "---\n"
                                    "routes: [{name: rt_r, paths: [/], upstreams: [{name: up}]}]\n",
                      "t.yaml:9:18: ApisixUpstream/up: metadata.name: duplicate upstream name "
                      "'up' (first defined at t.yaml:3:18)\n"
                      "t.yaml:13:20: upstreams[0].name: duplicate upstream name 'up' (first "
                      "defined at t.yaml:3:18)\n"
                      "t.yaml:24:17: routes[0].name: duplicate route name 'rt_r' (first defined at "
                      "t.yaml:20:11)");
        /* Two rules of one name. */
        expect_errors(UPSTREAM_HEAD "---\n" ROUTE_HEAD "  - name: r\n"
                                                        "    match: {paths: [/x]}\n"
                                                        "    upstreams: [{name: up}]\n",
                      "t.yaml:15:11: ApisixRoute/rt: spec.http[1].name: duplicate route name "
                      "'rt_r' (first defined at t.yaml:12:11)");

        /* A reference to no upstream is dangling at its mark, with the name it resolved to. */
        expect_errors(UPSTREAM_HEAD "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt, namespace: prod}\n"
                      "spec:\n"
                      "  http:\n"
                      "  - name: r\n"
                      "    match: {paths: [/]}\n"
                      "    upstreams: [{name: up}, {name: nope, weight: 5}, {weight: 1}, "
                      "{name: Up}]\n",
                      "t.yaml:14:24: ApisixRoute/prod/rt: spec.http[0].upstreams[0].name: no "
                      "upstream named 'prod_up'\n"
                      "t.yaml:14:36: ApisixRoute/prod/rt: spec.http[0].upstreams[1].name: no "
                      "upstream named 'prod_nope'\n"
                      "t.yaml:14:54: ApisixRoute/prod/rt: spec.http[0].upstreams[2]: missing "
                      "required key 'name'\n"
                      "t.yaml:14:74: ApisixRoute/prod/rt: spec.http[0].upstreams[3].name: invalid "
                      "ApisixUpstream name 'Up': must be lower case letters, digits, '-' and '.', "
                      "each '.'-separated part starting and ending with a letter or digit");

        /* With its metadata in error, a route's namespace is unknown: its references are not
         * resolved against anything, and so not reported as dangling. A null backends: is no
         * backends. */
        expect_errors("apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt, namespace: No}\n"
                      "spec:\n"
                      "  http:\n"
                      "  - name: r\n"
                      "    match: {paths: [/]}\n"
                      "    upstreams: [{name: nope}]\n"
                      "  - name: s\n"
                      "    match: {paths: [/s]}\n"
                      "    backends: ~\n",
                      "t.yaml:3:33: ApisixRoute: metadata.namespace: invalid namespace 'No': must "
                      "be lower case letters, digits and '-', starting and ending with a letter "
                      "or digit\n"
                      "t.yaml:9:5: ApisixRoute: spec.http[1]: missing required key 'upstreams'");

        /* Rule names become parts of native names. */
        expect_errors(UPSTREAM_HEAD "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt}\n"
                      "spec:\n"
                      "  http:\n"
                      "  - name: \"a b\"\n"
                      "    match: {paths: [/]}\n"
                      "    upstreams: [{name: up}]\n"
                      "  - match: {paths: [/x]}\n"
                      "    upstreams: [{name: up}]\n",
                      "t.yaml:12:11: ApisixRoute/rt: spec.http[0].name: invalid name 'a b': only "
                      "letters, digits, '_', '.' and '-' are allowed\n"
                      "t.yaml:15:5: ApisixRoute/rt: spec.http[1]: missing required key 'name'");

        /* A Kubernetes name of 253 characters fits; with a namespace it would not. */
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        if (asprintf(&yaml,
                     "apiVersion: apisix.apache.org/v2\n"
                     "kind: ApisixUpstream\n"
                     "metadata: {namespace: ns, name: %s}\n"
                     "spec: {externalNodes: [{type: Domain, name: a.example}]}\n",
                     longname) < 0)
                abort();
        {
                _cleanup_free_ char *want = NULL;

                if (asprintf(&want,
                             "t.yaml:3:33: ApisixUpstream/ns/%s: metadata.name: gives the "
                             "upstream name 'ns_%.*s...': longer than 255 characters",
                             longname, CONFIG_ESCAPE_MAX - 7, longname) < 0)
                        abort();
                expect_errors(yaml, want);
        }
        free(yaml);
}

static void test_route_errors(void)
{
        expect_errors(UPSTREAM_HEAD "---\n"
                      "apiVersion: apisix.apache.org/v2\n"
                      "kind: ApisixRoute\n"
                      "metadata: {name: rt}\n"
                      "spec:\n"
                      "  http:\n"
                      "  - name: r\n"
                      "    priority: high\n"
                      "    websocket: \"false\"\n"
                      "    match: {paths: [headers], hosts: [\"*\"], methods: [\"GE T\"], "
                      "path: [/]}\n"
                      "    upstreams: {name: up}\n"
                      "  - name: s\n"
                      "    upstreams: []\n"
                      "  - name: t\n"
                      "    match: {hosts: [a.example], paths: []}\n"
                      "  - just a string\n",
                      "t.yaml:13:15: ApisixRoute/rt: spec.http[0].priority: expected an integer, "
                      "got 'high'\n"
                      "t.yaml:14:16: ApisixRoute/rt: spec.http[0].websocket: expected a boolean "
                      "(true or false), got the quoted string 'false'\n"
                      "t.yaml:15:21: ApisixRoute/rt: spec.http[0].match.paths[0]: invalid path "
                      "'headers': must start with '/'\n"
                      "t.yaml:15:39: ApisixRoute/rt: spec.http[0].match.hosts[0]: invalid host "
                      "'*': '*' alone would match every host: leave hosts: out instead\n"
                      "t.yaml:15:55: ApisixRoute/rt: spec.http[0].match.methods[0]: invalid "
                      "method 'GE T': not a valid HTTP token\n"
                      "t.yaml:15:64: ApisixRoute/rt: spec.http[0].match: unknown key 'path'\n"
                      "t.yaml:16:16: ApisixRoute/rt: spec.http[0].upstreams: expected a sequence, "
                      "got a mapping\n"
                      "t.yaml:17:5: ApisixRoute/rt: spec.http[1]: missing required key 'match'\n"
                      "t.yaml:18:16: ApisixRoute/rt: spec.http[1].upstreams: at least one "
                      "upstream is required\n"
                      "t.yaml:19:5: ApisixRoute/rt: spec.http[2]: missing required key "
                      "'upstreams'\n"
                      "t.yaml:20:40: ApisixRoute/rt: spec.http[2].match.paths: must not be "
                      "empty\n"
                      "t.yaml:21:5: ApisixRoute/rt: spec.http[3]: expected a mapping, got a "
                      "scalar");
}

/* The native limits hold for manifests, with the same words: nodes per upstream, paths, hosts,
 * methods and upstreams per route, a path's length. */
static void test_limits(void)
{
        _cleanup_free_ char *yaml = NULL, *path = NULL, *want = NULL;
        size_t size = 1 << 20, o;

        yaml = malloc(size);
        if (!yaml)
                abort();
        o = (size_t)snprintf(yaml, size, "apiVersion: apisix.apache.org/v2\n"
                                         "kind: ApisixUpstream\n"
                                         "metadata: {name: up}\n"
                                         "spec:\n"
                                         "  externalNodes: [");
        for (int i = 0; i < 4097; i++)
                o += (size_t)snprintf(yaml + o, size - o, "%s{type: Domain, name: h%d}",
                                      i ? ", " : "", i);
        o += (size_t)snprintf(yaml + o, size - o, "]\n");
        CHECK(o < size);
        expect_errors(yaml, "t.yaml:5:18: ApisixUpstream/up: spec.externalNodes: too many nodes "
                            "(4097; at most 4096 per upstream)");

        o = (size_t)snprintf(yaml, size, UPSTREAM_HEAD "---\n" ROUTE_MATCH_HEAD "      paths: [");
        for (int i = 0; i < 65; i++)
                o += (size_t)snprintf(yaml + o, size - o, "%s/p%d", i ? ", " : "", i);
        o += (size_t)snprintf(yaml + o, size - o, "]\n      hosts: [");
        for (int i = 0; i < 257; i++)
                o += (size_t)snprintf(yaml + o, size - o, "%sh%d.example", i ? ", " : "", i);
        o += (size_t)snprintf(yaml + o, size - o, "]\n      methods: [");
        for (int i = 0; i < 33; i++)
                o += (size_t)snprintf(yaml + o, size - o, "%sM%d", i ? ", " : "", i);
        o += (size_t)snprintf(yaml + o, size - o, "]\n  - name: s\n    upstreams: [");
        for (int i = 0; i < 65; i++)
                o += (size_t)snprintf(yaml + o, size - o, "%s{name: up}", i ? ", " : "");
        o += (size_t)snprintf(yaml + o, size - o, "]\n    match: {paths: [/%04096d]}\n", 0);
        CHECK(o < size);
        expect_errors(yaml,
                      "t.yaml:15:14: ApisixRoute/rt: spec.http[0].match.paths: too many paths "
                      "(65; at most 64 per route)\n"
                      "t.yaml:16:14: ApisixRoute/rt: spec.http[0].match.hosts: too many hosts "
                      "(257; at most 256 per route)\n"
                      "t.yaml:17:16: ApisixRoute/rt: spec.http[0].match.methods: too many "
                      "methods (33; at most 32 per route)\n"
                      "t.yaml:19:16: ApisixRoute/rt: spec.http[1].upstreams: too many upstreams "
                      "(65; at most 64 per route)\n"
                      "t.yaml:20:21: ApisixRoute/rt: spec.http[1].match.paths[0]: invalid path "
                      "'/00000000000000000000000000000000000000000000000000000000000000000000000"
                      "00000000000000000000...': longer than 4096 bytes");
}

/* Aliases may share nodes but not blow up, here either: 500 rules of 64 upstreams each (the
 * most a route may have) from a handful of nodes. */
static void test_aliases(void)
{
        char yaml[16384];
        Config *c = UNTOUCHED;
        char *errors = NULL;
        size_t o;
        int r;

        o = (size_t)snprintf(yaml, sizeof(yaml),
                             "apiVersion: apisix.apache.org/v2\n"
                             "kind: ApisixRoute\n"
                             "metadata: {name: rt}\n"
                             "spec:\n"
                             "  http: [&h {name: r, match: {paths: [/]}, upstreams: [&a {name: a}");
        for (int i = 1; i < 64; i++)
                o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, ",*a");
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "]}");
        for (int i = 1; i < 500; i++)
                o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, ",*h");
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "]" LISTENER);
        CHECK(o < sizeof(yaml));

        r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        CHECK(r == -EINVAL && c == UNTOUCHED);
        CHECK(errors && strncmp(errors, "t.yaml:1:1: the document expands to more than ", 46) == 0);
        free(errors);
}

/* ---- durations ---- */

static void test_durations(void)
{
        static const struct {
                const char *s;
                int r;
                uint64_t usec;
        } cases[] = {
                {"5s", 0, 5 * SEC},
                {"1.5s", 0, 1500 * USEC_PER_MSEC},
                {"300ms", 0, 300 * USEC_PER_MSEC},
                {"2h45m", 0, (2 * 3600 + 45 * 60) * SEC},
                {"72h3m0.5s", 0, (72 * 3600 + 3 * 60) * SEC + 500 * USEC_PER_MSEC},
                {"1m30s", 0, 90 * SEC},
                {"100us", 0, 100},
                {"100\xc2\xb5s", 0, 100},
                {"100\xce\xbcs", 0, 100},
                {"1500ns", 0, 2}, /* up to whole microseconds */
                {"1ns", 0, 1},
                {"0", 0, 0},
                {"+0", 0, 0},
                {"-0", 0, 0},
                {"0s", 0, 0},
                {"+5s", 0, 5 * SEC},
                {".5s", 0, 500 * USEC_PER_MSEC},
                {"5.s", 0, 5 * SEC},
                {"8760h", 0, 8760 * 3600 * SEC},
                {"8760h1ns", -ERANGE, 0},
                {"99999999999999999999h", -ERANGE, 0},
                {"5", -EINVAL, 0},
                {"1d", -EINVAL, 0},
                {"-1s", -EINVAL, 0},
                {"5 s", -EINVAL, 0},
                {"1h 30m", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {".s", -EINVAL, 0},
                {"", -EINVAL, 0},
                {"-", -EINVAL, 0},
                {"5sec", -EINVAL, 0},
                {"1h30", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t usec = UINT64_MAX;
                int r = apisix_parse_duration(cases[i].s, &usec);

                if (r != cases[i].r || (r == 0 && usec != cases[i].usec)) {
                        fprintf(stderr, "%s:%d: '%s': got %d/%llu, want %d/%llu\n", __FILE__,
                                __LINE__, cases[i].s, r, (unsigned long long)usec, cases[i].r,
                                (unsigned long long)cases[i].usec);
                        tap_failures++;
                }
        }
}

/* ---- the dump ---- */

/* The translated parts: upstreams and routes, every field but the marks. */
static bool translation_equal(const Config *a, const Config *b)
{
        if (a->n_upstreams != b->n_upstreams || a->n_routes != b->n_routes)
                return false;
        for (size_t i = 0; i < a->n_upstreams; i++) {
                const ConfigUpstream *x = a->upstreams[i], *y = b->upstreams[i];

                if (!streq_ptr(x->name, y->name) || x->scheme != y->scheme ||
                    x->pass_host != y->pass_host || !streq_ptr(x->upstream_host, y->upstream_host) ||
                    !streq_ptr(x->balancer, y->balancer) || x->n_nodes != y->n_nodes ||
                    x->connect_timeout_usec != y->connect_timeout_usec ||
                    x->send_timeout_usec != y->send_timeout_usec ||
                    x->read_timeout_usec != y->read_timeout_usec || x->retries != y->retries ||
                    x->keepalive_pool != y->keepalive_pool ||
                    x->keepalive_idle_usec != y->keepalive_idle_usec ||
                    !streq_ptr(x->tls.ca_file, y->tls.ca_file) || x->tls.verify != y->tls.verify ||
                    !streq_ptr(x->tls.sni, y->tls.sni))
                        return false;
                for (size_t j = 0; j < x->n_nodes; j++)
                        if (!node_is(y, j, x->nodes[j].host, x->nodes[j].port,
                                     x->nodes[j].weight))
                                return false;
        }
        for (size_t i = 0; i < a->n_routes; i++) {
                const ConfigRoute *x = a->routes[i], *y = b->routes[i];

                if (!streq_ptr(x->name, y->name) || !strv_equal(x->paths, y->paths) ||
                    !strv_equal(x->hosts, y->hosts) || !strv_equal(x->methods, y->methods) ||
                    x->priority != y->priority || x->n_upstreams != y->n_upstreams)
                        return false;
                for (size_t j = 0; j < x->n_upstreams; j++)
                        if (!route_upstream_is(y, j, x->upstreams[j].name, x->upstreams[j].weight))
                                return false;
        }
        return true;
}

static void check_round_trip(const char *yaml, int line)
{
        Config *a = load_ok_at(yaml, line), *b = NULL;
        char *text, *text2, *errors = NULL;
        int r;

        if (!a)
                return;
        text = dump(a);
        r = config_load_string("dump.yaml", text, strlen(text), &errors, &b);
        if (r < 0) {
                fprintf(stderr, "%s:%d: dump does not load:\n%s\n%s\n", __FILE__, line, errors,
                        text);
                tap_failures++;
                free(errors);
        } else {
                if (!translation_equal(a, b)) {
                        fprintf(stderr, "%s:%d: dump loads differently:\n%s\n", __FILE__, line,
                                text);
                        tap_failures++;
                }
                text2 = dump(b);
                CHECK_STR(text2, text);
                free(text2);
                config_unref(b);
        }
        free(text);
        config_unref(a);
}

static void test_dump(void)
{
        FILE *f = fopen("apisix/lb-route.yaml", "re");
        char buf[4096];
        size_t n;

        CHECK(f != NULL);
        if (f) {
                n = fread(buf, 1, sizeof(buf) - 1, f);
                buf[n] = 0;
                fclose(f);
                check_round_trip(buf, __LINE__);
        }

        check_round_trip("apiVersion: apisix.apache.org/v2\n"
                         "kind: ApisixUpstream\n"
                         "metadata: {name: full, namespace: ns}\n"
                         "spec:\n"
                         "  scheme: https\n"
                         "  passHost: rewrite\n"
                         "  upstreamHost: \"[::1]:8443\"\n"
                         "  retries: 3\n"
                         "  timeout: {connect: 1500us, send: 2h, read: 0.5s}\n"
                         "  externalNodes:\n"
                         "  - {type: Domain, name: \"true\", port: 1, weight: 0}\n"
                         "  - {type: Domain, name: 127.0.0.1}\n"
                         "---\n"
                         "apiVersion: apisix.apache.org/v2\n"
                         "kind: ApisixRoute\n"
                         "metadata: {name: \"123\", namespace: ns}\n"
                         "spec:\n"
                         "  http:\n"
                         "  - name: \"null\"\n"
                         "    priority: -7\n"
                         "    match: {paths: [\"/*\", \"/é\"], hosts: [\"*.Example.com\"], "
                         "methods: [\"M-SEARCH\"]}\n"
                         "    upstreams: [{name: full, weight: 0}]\n",
                         __LINE__);
}

/* healthCheck: the CRD's names into native health_check (issue 15). */
static void test_health_check(void)
{
        const ConfigHealthCheck *hc;
        Config *c;

        c = load_ok(UPSTREAM_HEAD "  healthCheck:\n"
                                  "    active:\n"
                                  "      type: https\n"
                                  "      timeout: 2\n"
                                  "      concurrency: 4\n"
                                  "      host: status.example.com\n"
                                  "      port: 8443\n"
                                  "      httpPath: /healthz\n"
                                  "      strictTLS: false\n"
                                  "      requestHeaders: [\"User-Agent: lbproxy\"]\n"
                                  "      healthy: {interval: 2s, httpCodes: [200, 204], "
                                  "successes: 3}\n"
                                  "      unhealthy: {interval: 500ms, httpCodes: [500, 502], "
                                  "httpFailures: 4, tcpFailures: 1, timeout: 6}\n"
                                  "    passive:\n"
                                  "      healthy: {httpCodes: [200], successes: 0}\n"
                                  "      unhealthy: {httpCodes: [503], httpFailures: 254, "
                                  "tcpFailures: 9, timeout: 1}\n");
        if (c) {
                hc = &c->upstreams[0]->health_check;
                CHECK(hc->active.enabled && hc->active.type == HEALTH_CHECK_HTTPS);
                CHECK(hc->active.timeout_usec == 2 * SEC && hc->active.concurrency == 4);
                CHECK_STR(hc->active.host, "status.example.com");
                CHECK_STR(hc->active.http_path, "/healthz");
                CHECK(hc->active.port == 8443 && hc->active.verify == 0);
                CHECK(strv_is(hc->active.headers, STRV("User-Agent: lbproxy")));
                CHECK(hc->active.healthy.interval_usec == 2 * SEC &&
                      hc->active.healthy.successes == 3);
                CHECK(health_status_set_has(&hc->active.healthy.http_statuses, 204) &&
                      !health_status_set_has(&hc->active.healthy.http_statuses, 302));
                CHECK(hc->active.unhealthy.interval_usec == 500 * USEC_PER_MSEC &&
                      hc->active.unhealthy.http_failures == 4 &&
                      hc->active.unhealthy.tcp_failures == 1 && hc->active.unhealthy.timeouts == 6);
                CHECK(health_status_set_has(&hc->active.unhealthy.http_statuses, 502) &&
                      !health_status_set_has(&hc->active.unhealthy.http_statuses, 404));
                CHECK(hc->passive.enabled);
                /* 0 is what the CRD omits: APISIX's default, 5. */
                CHECK(hc->passive.healthy.successes == 5);
                CHECK(hc->passive.unhealthy.http_failures == 254 &&
                      hc->passive.unhealthy.tcp_failures == 9 && hc->passive.unhealthy.timeouts == 1);
                CHECK(!health_status_set_has(&hc->passive.unhealthy.http_statuses, 500));
                CHECK(c->warnings == NULL);
                config_unref(c);
        }

        /* An empty active: APISIX's defaults; passive the built-in check. Go durations. */
        c = load_ok(UPSTREAM_HEAD "  healthCheck: {active: {timeout: 1500ms}}\n");
        if (c) {
                hc = &c->upstreams[0]->health_check;
                CHECK(hc->active.enabled && hc->active.type == HEALTH_CHECK_HTTP);
                CHECK_STR(hc->active.http_path, "/");
                CHECK(hc->active.timeout_usec == 1500 * USEC_PER_MSEC);
                CHECK(hc->active.healthy.successes == 2 && hc->active.unhealthy.timeouts == 3);
                CHECK(!hc->passive.enabled && hc->passive.unhealthy.tcp_failures == 2);
                config_unref(c);
        }

        /* `timeouts`, the Go field's and APISIX's name: taken, with a warning. */
        c = load_ok(UPSTREAM_HEAD "  healthCheck: {active: {unhealthy: {timeouts: 4}}}\n");
        if (c) {
                CHECK(c->upstreams[0]->health_check.active.unhealthy.timeouts == 4);
                CHECK(c->warnings && c->warnings[0] && !c->warnings[1]);
                if (c->warnings)
                        CHECK_STR(c->warnings[0],
                                  "t.yaml:6:48: ApisixUpstream/up: spec.healthCheck.active."
                                  "unhealthy.timeouts: read as 'timeout', the CRD's name for the "
                                  "count of timeouts");
                config_unref(c);
        }

        /* A passive tcp check counts no statuses. */
        c = load_ok(UPSTREAM_HEAD "  healthCheck: {active: {type: tcp, httpPath: /x}, "
                                  "passive: {type: tcp}}\n");
        if (c) {
                hc = &c->upstreams[0]->health_check;
                CHECK_STR(hc->active.http_path, "/");
                CHECK(hc->passive.enabled && hc->passive.unhealthy.http_failures == 0 &&
                      !health_status_set_has(&hc->passive.unhealthy.http_statuses, 500));
                config_unref(c);
        }

        expect_errors(UPSTREAM_HEAD "  healthCheck: {active: {unhealthy: {timeout: 1, "
                                    "timeouts: 2}}}\n",
                      "t.yaml:6:60: ApisixUpstream/up: spec.healthCheck.active.unhealthy."
                      "timeouts: given with 'timeout' already (the same count: keep 'timeout')");
        expect_errors(UPSTREAM_HEAD "  healthCheck: {active: {type: grpc, healthy: "
                                    "{successes: 255}}}\n",
                      "t.yaml:6:32: ApisixUpstream/up: spec.healthCheck.active.type: unknown "
                      "type 'grpc' (known: http, https, tcp)");
        expect_errors(UPSTREAM_HEAD "  healthCheck: {active: {healthy: {successes: 255, "
                                    "interval: 5}}, passive: {healthy: {interval: 1s}}}\n",
                      "t.yaml:6:47: ApisixUpstream/up: spec.healthCheck.active.healthy."
                      "successes: 255 is out of range (0..254)\n"
                      "t.yaml:6:62: ApisixUpstream/up: spec.healthCheck.active.healthy."
                      "interval: invalid duration '5' (expected a number with a unit ns, us, ms, "
                      "s, m or h, as in 5s, 1.5s or 1m30s)\n"
                      "t.yaml:6:87: ApisixUpstream/up: spec.healthCheck.passive.healthy: "
                      "unknown key 'interval'");
        expect_errors(UPSTREAM_HEAD "  healthCheck: {active: {requestHeaders: [\"X-A\"], "
                                    "unhealthy: {httpCodes: [200]}}}\n",
                      "t.yaml:6:43: ApisixUpstream/up: spec.healthCheck.active.requestHeaders"
                      "[0]: invalid header 'X-A': expected 'Name: value' (no ':')\n"
                      "t.yaml:6:74: ApisixUpstream/up: spec.healthCheck.active.unhealthy."
                      "httpCodes: status 200 is in healthy.httpCodes too (by default)");
        expect_errors(UPSTREAM_HEAD "  healthCheck: {}\n",
                      "t.yaml:6:16: ApisixUpstream/up: spec.healthCheck: expected active:, "
                      "passive: or both");
}

int main(void)
{
        test_durations();
        test_tutorial();
        test_upstream_fields();
        test_route_fields();
        test_namespaces();
        test_mixed();
        test_refused_upstream_fields();
        test_loadbalancer_types();
        test_refused_route_fields();
        test_ingress_class();
        test_documents();
        test_upstream_errors();
        test_names();
        test_route_errors();
        test_limits();
        test_aliases();
        test_dump();
        test_health_check();
        TEST_MAIN_END();
}
