/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config-internal.h"
#include "config/config.h"
#include "tap.h"


/* A Config that must not be touched by a failing load. */
#define UNTOUCHED ((Config *)(uintptr_t)0x5a5a)

static Config *load_ok_at(const char *yaml, int line)
{
        Config *c = NULL;
        char *errors = (char *)"not reset";
        int r;

        r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
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
        Config *c = UNTOUCHED;
        char *errors = NULL;
        int r;

        r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        if (r != -EINVAL || c != UNTOUCHED || !streq_ptr(errors, want)) {
                fprintf(stderr, "%s:%d: expected -EINVAL, got %d%s\n  got:  %s\n  want: %s\n",
                        __FILE__, line, r, c != UNTOUCHED ? " (ret touched)" : "",
                        errors ? errors : "(null)", want);
                tap_failures++;
                if (r >= 0 && c != UNTOUCHED)
                        config_unref(c);
        }
        free(errors);

        /* And the same without anyone to read the messages. */
        c = UNTOUCHED;
        r = config_load_string("t.yaml", yaml, strlen(yaml), NULL, &c);
        if (r != -EINVAL || c != UNTOUCHED) {
                fprintf(stderr, "%s:%d: errors=NULL: expected -EINVAL, got %d\n", __FILE__, line,
                        r);
                tap_failures++;
        }
}
#define expect_errors(yaml, want) expect_errors_at(yaml, want, __LINE__)

/* Line and column (1-based) of the n-th occurrence of `needle` in `text`. */
static ConfigMark mark_of(const char *text, const char *needle, unsigned nth)
{
        const char *p = text;
        ConfigMark m = { .line = 1, .column = 1 };

        for (unsigned i = 0; i <= nth; i++) {
                p = strstr(i ? p + 1 : p, needle);
                if (!p)
                        return (ConfigMark){};
        }
        for (const char *q = text; q < p; q++) {
                if (*q == '\n') {
                        m.line++;
                        m.column = 1;
                } else
                        m.column++;
        }
        return m;
}

static bool mark_is(ConfigMark m, const char *file, ConfigMark want)
{
        return streq_ptr(m.file, file) && m.line == want.line && m.column == want.column;
}

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

#define STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static bool address_is(const ConfigListener *l, const char *want)
{
        char buf[SOCKADDR_STR_MAX];

        if (l->address_len == 0)
                return want == NULL;
        return want && streq(sockaddr_to_string((const struct sockaddr *)&l->address, buf,
                                                sizeof(buf)),
                             want);
}

static const char full_yaml[] =
        "# every key, most away from its default\n"
        "access_log: false\n"
        "timeouts:\n"
        "  header: 15s\n"
        "  keepalive: 2m\n"
        "  shutdown_grace: 1.5s\n"
        "limits:\n"
        "  max_header_bytes: 65536\n"
        "  max_headers: 64\n"
        "  max_connections: 5000\n"
        "dns:\n"
        "  servers: [\"127.0.0.1:5353\", \"[::1]:53\", 10.0.0.1, \"fe80::1\"]\n"
        "  ttl_min: 500ms\n"
        "  ttl_max: 2h\n"
        "  timeout: 3\n"
        "tls:\n"
        "  ca_file: /etc/lbproxy/ca.pem\n"
        "  verify: yes\n"
        "listeners:\n"
        "  - name: http\n"
        "    listen: 127.0.0.1:9080\n"
        "  - name: v6\n"
        "    listen: \"[::1]:9443\"\n"
        "  - name: any\n"
        "    listen: \"*:8080\"\n"
        "  - name: colon\n"
        "    listen: \":8081\"\n"
        "  - name: activated\n"
        "upstreams:\n"
        "  - name: httpbin\n"
        "    scheme: https\n"
        "    pass_host: rewrite\n"
        "    upstream_host: example.com:8443\n"
        "    balancer: roundrobin\n"
        "    retries: 3\n"
        "    keepalive_pool: 8\n"
        "    keepalive_idle: 30s\n"
        "    timeout: {connect: 1s, send: 2.5, read: 100ms}\n"
        "    tls: {verify: false, sni: api.example.com}\n"
        "    nodes:\n"
        "      - {host: 127.0.0.2, port: 8080, weight: 5}\n"
        "      - {host: \"[::1]\"}\n"
        "      - host: backend.internal\n"
        "        weight: 0\n"
        "  - name: mock.api_2\n"
        "    pass_host: node\n"
        "    tls:\n"
        "      ca_file: /other/ca.pem\n"
        "    nodes: [{host: 10.0.0.7}]\n"
        "routes:\n"
        "  - name: lb-route\n"
        "    paths: [\"/headers\", \"/api/*\"]\n"
        "    hosts: [\"Example.com\", \"*.example.org\"]\n"
        "    methods: [\"get\", \"POST\"]\n"
        "    priority: -5\n"
        "    upstreams:\n"
        "      - {name: httpbin, weight: 3}\n"
        "      - name: mock.api_2\n"
        "  - name: second\n"
        "    paths: [/]\n"
        "    upstreams: [{name: httpbin}]\n";

static void test_full(void)
{
        Config *c = load_ok(full_yaml);
        const ConfigUpstream *u;
        const ConfigRoute *rt;

        if (!c)
                return;

        CHECK(strv_is(c->files, STRV("t.yaml")));
        CHECK(c->access_log == false);
        CHECK(c->header_timeout_usec == 15 * USEC_PER_SEC);
        CHECK(c->keepalive_timeout_usec == 120 * USEC_PER_SEC);
        CHECK(c->shutdown_grace_usec == 1500 * USEC_PER_MSEC);
        CHECK(c->max_header_bytes == 65536);
        CHECK(c->max_headers == 64);
        CHECK(c->max_connections == 5000);
        CHECK(strv_is(c->dns.servers, STRV("127.0.0.1:5353", "[::1]:53", "10.0.0.1", "fe80::1")));
        CHECK(c->dns.ttl_min_usec == 500 * USEC_PER_MSEC);
        CHECK(c->dns.ttl_max_usec == 7200 * USEC_PER_SEC);
        CHECK(c->dns.timeout_usec == 3 * USEC_PER_SEC);
        CHECK_STR(c->tls.ca_file, "/etc/lbproxy/ca.pem");
        CHECK(c->tls.verify == 1);
        CHECK(c->tls.sni == NULL);

        CHECK(c->n_listeners == 5);
        if (c->n_listeners == 5) {
                CHECK_STR(c->listeners[0].name, "http");
                CHECK_STR(c->listeners[0].listen, "127.0.0.1:9080");
                CHECK(address_is(&c->listeners[0], "127.0.0.1:9080"));
                CHECK(c->listeners[0].address.ss_family == AF_INET);
                CHECK(c->listeners[0].address_len == sizeof(struct sockaddr_in));
                CHECK(mark_is(c->listeners[0].mark, c->files[0], mark_of(full_yaml, "http", 0)));
                CHECK(c->listeners[0].mark.line == 20 && c->listeners[0].mark.column == 11);
                CHECK_STR(c->listeners[1].listen, "[::1]:9443");
                CHECK(address_is(&c->listeners[1], "[::1]:9443"));
                CHECK(c->listeners[1].address_len == sizeof(struct sockaddr_in6));
                CHECK(address_is(&c->listeners[2], "[::]:8080"));
                CHECK(address_is(&c->listeners[3], "[::]:8081"));
                CHECK_STR(c->listeners[4].name, "activated");
                CHECK(c->listeners[4].listen == NULL);
                CHECK(c->listeners[4].address_len == 0);
        }

        CHECK(c->n_upstreams == 2);
        u = config_find_upstream(c, "httpbin");
        CHECK(u == c->upstreams[0]);
        if (u) {
                CHECK(u->scheme == SCHEME_HTTPS);
                CHECK(u->pass_host == PASS_HOST_REWRITE);
                CHECK_STR(u->upstream_host, "example.com:8443");
                CHECK_STR(u->balancer, "roundrobin");
                CHECK(u->retries == 3);
                CHECK(u->keepalive_pool == 8);
                CHECK(u->keepalive_idle_usec == 30 * USEC_PER_SEC);
                CHECK(u->connect_timeout_usec == USEC_PER_SEC);
                CHECK(u->send_timeout_usec == 2500 * USEC_PER_MSEC);
                CHECK(u->read_timeout_usec == 100 * USEC_PER_MSEC);
                /* ca_file inherited from the top level, verify and sni its own. */
                CHECK_STR(u->tls.ca_file, "/etc/lbproxy/ca.pem");
                CHECK(u->tls.verify == 0);
                CHECK_STR(u->tls.sni, "api.example.com");
                CHECK(mark_is(u->mark, "t.yaml", mark_of(full_yaml, "httpbin", 0)));
                CHECK(u->n_nodes == 3);
                if (u->n_nodes == 3) {
                        CHECK_STR(u->nodes[0].host, "127.0.0.2");
                        CHECK(u->nodes[0].port == 8080);
                        CHECK(u->nodes[0].weight == 5);
                        CHECK(mark_is(u->nodes[0].mark, "t.yaml",
                                      mark_of(full_yaml, "{host: 127.0.0.2", 0)));
                        CHECK_STR(u->nodes[1].host, "::1"); /* brackets stripped */
                        CHECK(u->nodes[1].port == 443);     /* https default */
                        CHECK(u->nodes[1].weight == 1);
                        CHECK_STR(u->nodes[2].host, "backend.internal");
                        CHECK(u->nodes[2].port == 443);
                        CHECK(u->nodes[2].weight == 0);
                        CHECK(mark_is(u->nodes[2].mark, "t.yaml",
                                      mark_of(full_yaml, "host: backend", 0)));
                }
        }
        u = config_find_upstream(c, "mock.api_2");
        CHECK(u == c->upstreams[1]);
        if (u) {
                CHECK(u->scheme == SCHEME_HTTP);
                CHECK(u->pass_host == PASS_HOST_NODE);
                CHECK(u->upstream_host == NULL);
                CHECK_STR(u->tls.ca_file, "/other/ca.pem");
                CHECK(u->tls.verify == 1); /* inherited */
                CHECK(u->tls.sni == NULL);
                CHECK(u->n_nodes == 1 && u->nodes[0].port == 80);
        }
        CHECK(config_find_upstream(c, "nope") == NULL);
        CHECK(config_find_upstream(c, NULL) == NULL);
        CHECK(config_find_upstream(NULL, "httpbin") == NULL);

        CHECK(c->n_routes == 2);
        rt = config_find_route(c, "lb-route");
        CHECK(rt == c->routes[0]);
        if (rt) {
                CHECK(strv_is(rt->paths, STRV("/headers", "/api/*")));
                CHECK(strv_is(rt->hosts, STRV("example.com", "*.example.org")));
                CHECK(strv_is(rt->methods, STRV("GET", "POST")));
                CHECK(rt->priority == -5);
                CHECK(rt->n_upstreams == 2);
                if (rt->n_upstreams == 2) {
                        CHECK_STR(rt->upstreams[0].name, "httpbin");
                        CHECK(rt->upstreams[0].weight == 3);
                        CHECK(mark_is(rt->upstreams[0].mark, "t.yaml",
                                      mark_of(full_yaml, "httpbin", 1)));
                        CHECK_STR(rt->upstreams[1].name, "mock.api_2");
                        CHECK(rt->upstreams[1].weight == 1);
                }
                CHECK(mark_is(rt->mark, "t.yaml", mark_of(full_yaml, "lb-route", 0)));
        }
        rt = config_find_route(c, "second");
        CHECK(rt == c->routes[1]);
        if (rt) {
                CHECK(strv_is(rt->paths, STRV("/")));
                CHECK(rt->hosts == NULL);
                CHECK(rt->methods == NULL);
                CHECK(rt->priority == 0);
        }
        CHECK(config_find_route(c, "nope") == NULL);

        CHECK(config_unref(c) == NULL);
        CHECK(config_unref(NULL) == NULL);
}

static void test_defaults(void)
{
        Config *c = load_ok("listeners: [{name: l}]\n"
                            "upstreams:\n"
                            "  - name: u\n"
                            "    nodes: [{host: example.com}]\n");
        const ConfigUpstream *u;

        if (!c)
                return;
        CHECK(c->access_log == true);
        CHECK(c->header_timeout_usec == 30 * USEC_PER_SEC);
        CHECK(c->keepalive_timeout_usec == 60 * USEC_PER_SEC);
        CHECK(c->shutdown_grace_usec == 10 * USEC_PER_SEC);
        CHECK(c->max_header_bytes == 32768);
        CHECK(c->max_headers == 100);
        CHECK(c->max_connections == 0); /* derived from RLIMIT_NOFILE at start */
        CHECK(c->dns.servers == NULL);
        CHECK(c->dns.ttl_min_usec == USEC_PER_SEC);
        CHECK(c->dns.ttl_max_usec == 3600 * USEC_PER_SEC);
        CHECK(c->dns.timeout_usec == 5 * USEC_PER_SEC);
        CHECK(c->tls.ca_file == NULL);
        CHECK(c->tls.verify == 1);
        CHECK(c->n_routes == 0);

        u = config_find_upstream(c, "u");
        CHECK(u != NULL);
        if (u) {
                CHECK(u->scheme == SCHEME_HTTP);
                CHECK(u->pass_host == PASS_HOST_PASS);
                CHECK(u->upstream_host == NULL);
                CHECK_STR(u->balancer, "roundrobin");
                CHECK(u->retries == 0); /* one node: no other to try */
                CHECK(u->keepalive_pool == 32);
                CHECK(u->keepalive_idle_usec == 60 * USEC_PER_SEC);
                CHECK(u->connect_timeout_usec == 5 * USEC_PER_SEC);
                CHECK(u->send_timeout_usec == 60 * USEC_PER_SEC);
                CHECK(u->read_timeout_usec == 60 * USEC_PER_SEC);
                CHECK(u->tls.ca_file == NULL);
                CHECK(u->tls.verify == 1);
                CHECK(u->tls.sni == NULL);
                CHECK(u->n_nodes == 1 && u->nodes[0].port == 80 && u->nodes[0].weight == 1);
        }
        config_unref(c);

        /* Null values are the same as absent keys; empty documents and comments are fine. */
        c = load_ok("# nothing\n---\n---\naccess_log: ~\ntimeouts:\ndns: {servers: null}\n"
                    "listeners: [{name: l, listen: }]\n");
        if (c) {
                CHECK(c->access_log == true);
                CHECK(c->dns.servers == NULL);
                CHECK(c->n_listeners == 1 && c->listeners[0].listen == NULL);
        }
        config_unref(c);

        /* Booleans, YAML 1.1 style. */
        c = load_ok("listeners: [{name: l}]\naccess_log: No\ntls: {verify: FALSE}\n");
        if (c)
                CHECK(c->access_log == false && c->tls.verify == 0);
        config_unref(c);
}

static void test_strings(void)
{
        CHECK(scheme_from_string("http") == SCHEME_HTTP);
        CHECK(scheme_from_string("https") == SCHEME_HTTPS);
        CHECK(scheme_from_string("ftp") == _SCHEME_INVALID);
        CHECK(scheme_from_string(NULL) == _SCHEME_INVALID);
        CHECK_STR(scheme_to_string(SCHEME_HTTPS), "https");
        CHECK(scheme_to_string(_SCHEME_MAX) == NULL);
        CHECK(scheme_to_string(_SCHEME_INVALID) == NULL);
        CHECK(scheme_default_port(SCHEME_HTTP) == 80);
        CHECK(scheme_default_port(SCHEME_HTTPS) == 443);
        CHECK(pass_host_from_string("pass") == PASS_HOST_PASS);
        CHECK(pass_host_from_string("node") == PASS_HOST_NODE);
        CHECK(pass_host_from_string("rewrite") == PASS_HOST_REWRITE);
        CHECK(pass_host_from_string("Rewrite") == _PASS_HOST_INVALID);
        CHECK_STR(pass_host_to_string(PASS_HOST_REWRITE), "rewrite");
        CHECK(pass_host_to_string(_PASS_HOST_MAX) == NULL);
        for (int i = 0; i < _SCHEME_MAX; i++)
                CHECK(scheme_from_string(scheme_to_string(i)) == i);
        for (int i = 0; i < _PASS_HOST_MAX; i++)
                CHECK(pass_host_from_string(pass_host_to_string(i)) == i);
}

static void test_durations(void)
{
        static const struct {
                const char *s;
                int r;
                uint64_t usec;
        } cases[] = {
                { "0", 0, 0 },
                { "30", 0, 30 * USEC_PER_SEC },
                { "1.5", 0, 1500 * USEC_PER_MSEC },
                { ".25", 0, 250 * USEC_PER_MSEC },
                { "500ms", 0, 500 * USEC_PER_MSEC },
                { "5s", 0, 5 * USEC_PER_SEC },
                { "2m", 0, 120 * USEC_PER_SEC },
                { "1h", 0, 3600 * USEC_PER_SEC },
                { "1.5s", 0, 1500 * USEC_PER_MSEC },
                { "100us", 0, 100 },
                { "1h30m", 0, 5400 * USEC_PER_SEC },
                { "1m 30s", 0, 90 * USEC_PER_SEC },
                { "2d", 0, 2 * 86400 * USEC_PER_SEC },
                { "0.0005ms", 0, 1 },
                { "365d", 0, CONFIG_DURATION_MAX },
                { "366d", -ERANGE, 0 },
                { "99999999999999999999999s", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-5s", -EINVAL, 0 },
                { "+5s", -EINVAL, 0 },
                { "5x", -EINVAL, 0 },
                { "5min", -EINVAL, 0 },
                { "1h30", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { ".", -EINVAL, 0 },
                { "1e3", -EINVAL, 0 },
                { "5 s", 0, 5 * USEC_PER_SEC },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t usec = 12345;
                int r = config_parse_duration(cases[i].s, &usec);

                if (r != cases[i].r || (r == 0 && usec != cases[i].usec)) {
                        fprintf(stderr, "%s:%d: duration '%s': got %d/%" PRIu64 "\n", __FILE__,
                                __LINE__, cases[i].s, r, usec);
                        tap_failures++;
                }
        }

        static const struct {
                uint64_t usec;
                const char *s;
        } out[] = {
                { 0, "0s" },           { 1, "1us" },           { 1500, "1500us" },
                { 1500000, "1500ms" }, { 90000000, "90s" },    { 120000000, "2m" },
                { 7200000000, "2h" },  { 172800000000, "48h" }, { 2000, "2ms" },
        };
        for (size_t i = 0; i < ELEMENTSOF(out); i++) {
                char buf[CONFIG_DURATION_STR_MAX];
                uint64_t back = 0;

                CHECK_STR(config_format_duration(out[i].usec, buf), out[i].s);
                CHECK(config_parse_duration(buf, &back) == 0 && back == out[i].usec);
        }
}

#define L "listeners: [{name: l}]\n"
#define X23 "xxxxxxxxxxxxxxxxxxxxxxx"
#define X92 X23 X23 X23 X23

static void test_errors(void)
{
        /* The examples of the format. */
        expect_errors(L "upstreams:\n"
                        "  - name: a\n"
                        "    nodes:\n"
                        "      - host: 127.0.0.1\n"
                        "        port: 70000\n",
                      "t.yaml:6:15: upstreams[0].nodes[0].port: 70000 is out of range (1..65535)");
        expect_errors(L "upstreams: [{name: a, nodes: [{host: h}, {host: h, port: -1}]}]\n",
                      "t.yaml:2:58: upstreams[0].nodes[1].port: -1 is out of range (1..65535)");
        expect_errors(L "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                        "routes:\n"
                        "  - name: r\n"
                        "    pathz: [/]\n"
                        "    upstreams: [{name: u}]\n",
                      "t.yaml:4:5: routes[0]: missing required key 'paths'\n"
                      "t.yaml:5:5: routes[0]: unknown key 'pathz'");
        expect_errors(L "upstreams:\n"
                        "  - name: httpbin\n"
                        "    nodes: [{host: a}]\n"
                        "  - name: httpbin\n"
                        "    nodes: [{host: b}]\n",
                      "t.yaml:5:11: upstreams[1].name: duplicate upstream name 'httpbin' "
                      "(first defined at t.yaml:3:11)");
        expect_errors(L "upstreams: [{name: mockapi, nodes: [{host: a}]}]\n"
                        "routes:\n"
                        "  - name: r\n"
                        "    paths: [/]\n"
                        "    upstreams:\n"
                        "      - name: mockapi\n"
                        "      - name: mockapi7\n",
                      "t.yaml:8:15: routes[0].upstreams[1].name: no upstream named 'mockapi7'");
        expect_errors("listeners: http\n",
                      "t.yaml:1:12: listeners: expected a sequence, got a scalar");
        expect_errors(L "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                        "routes:\n"
                        "  - name: r\n"
                        "    paths: /\n"
                        "    upstreams: {name: u}\n",
                      "t.yaml:5:12: routes[0].paths: expected a sequence, got a scalar\n"
                      "t.yaml:6:16: routes[0].upstreams: expected a sequence, got a mapping");

        /* YAML syntax errors: libyaml's words, at its mark. */
        expect_errors(L "upstreams:\n  - name: a\n   nodes: []\n",
                      "t.yaml:4:4: did not find expected '-' indicator (while parsing a block "
                      "collection at 3:3)");
        expect_errors(L "routes: [{name: r\n",
                      "t.yaml:3:1: did not find expected ',' or '}' (while parsing a flow mapping "
                      "at 2:10)");
        expect_errors(L "upstreams: *nope\n", "t.yaml:2:12: found undefined alias");
        expect_errors("listeners: [{name: \"a\xff\"}]\n",
                      "t.yaml:1:22: invalid leading UTF-8 octet (0xFF)");

        /* Top-level shape. */
        expect_errors("- listeners\n",
                      "t.yaml:1:1: expected a mapping at the top level, got a sequence\n"
                      "t.yaml:1:1: listeners: at least one listener is required");
        expect_errors("access_log: true\n",
                      "t.yaml:1:1: listeners: at least one listener is required");
        expect_errors("listeners: []\n",
                      "t.yaml:1:12: listeners: at least one listener is required");
        expect_errors(L "listener: []\n? [a]\n: b\n", "t.yaml:2:1: unknown key 'listener'\n"
                                                     "t.yaml:3:3: expected a string as key, got "
                                                     "a sequence");
        expect_errors(L "access_log: true\naccess_log: false\n",
                      "t.yaml:3:1: duplicate key 'access_log' (first at 2:1)");

        /* Missing and empty things. */
        expect_errors("listeners: [{listen: \"*:80\"}]\n",
                      "t.yaml:1:13: listeners[0]: missing required key 'name'");
        expect_errors(L "upstreams: [{name: u}]\n",
                      "t.yaml:2:13: upstreams[0]: missing required key 'nodes'");
        expect_errors(L "upstreams: [{name: u, nodes: []}]\n",
                      "t.yaml:2:30: upstreams[0].nodes: at least one node is required");
        expect_errors(L "upstreams: [{name: u, nodes: [{port: 80}]}]\n",
                      "t.yaml:2:31: upstreams[0].nodes[0]: missing required key 'host'");
        expect_errors(L "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                        "routes: [{name: r, paths: [], upstreams: []}]\n",
                      "t.yaml:3:27: routes[0].paths: at least one path is required\n"
                      "t.yaml:3:42: routes[0].upstreams: at least one upstream is required");
        expect_errors(L "upstreams: [{name: u, nodes: [~]}]\n",
                      "t.yaml:2:31: upstreams[0].nodes[0]: expected a mapping, got null");
        expect_errors(L "upstreams: [{name: \"\", nodes: [{host: h}]}]\n",
                      "t.yaml:2:20: upstreams[0].name: must not be empty");

        /* pass_host and upstream_host go together. */
        expect_errors(L "upstreams:\n"
                        "  - name: u\n"
                        "    pass_host: rewrite\n"
                        "    nodes: [{host: h}]\n"
                        "  - name: v\n"
                        "    upstream_host: example.com\n"
                        "    nodes: [{host: h}]\n"
                        "  - name: w\n"
                        "    pass_host: rewrite!\n"
                        "    upstream_host: example.com\n"
                        "    nodes: [{host: h}]\n",
                      "t.yaml:3:5: upstreams[0]: missing required key 'upstream_host' (pass_host "
                      "is rewrite)\n"
                      "t.yaml:7:20: upstreams[1].upstream_host: only allowed with pass_host: "
                      "rewrite\n"
                      "t.yaml:10:16: upstreams[2].pass_host: unknown pass_host 'rewrite!' (known: "
                      "pass, node, rewrite)");
        expect_errors(L "upstreams: [{name: u, balancer: hash, scheme: ftp, nodes: [{host: h}]}]\n",
                      "t.yaml:2:33: upstreams[0].balancer: unknown balancer 'hash' (known: "
                      "roundrobin, least_conn, chash, ewma)\n"
                      "t.yaml:2:47: upstreams[0].scheme: unknown scheme 'ftp' (known: http, "
                      "https)");
        /* chash's keys: with chash only, and each as hash_on says. */
        expect_errors(L "upstreams:\n"
                        "  - {name: a, hash_key: uri, hash_balance_factor: 150, nodes: [{host: h}]}\n"
                        "  - {name: b, balancer: chash, hash_on: header, nodes: [{host: h}]}\n"
                        "  - {name: c, balancer: chash, hash_key: cookie_x, nodes: [{host: h}]}\n"
                        "  - {name: d, balancer: chash, hash_on: cookie, hash_key: \"a b\",\n"
                        "     hash_balance_factor: 100, nodes: [{host: h}]}\n",
                      "t.yaml:3:25: upstreams[0].hash_key: only used with balancer: chash\n"
                      "t.yaml:3:51: upstreams[0].hash_balance_factor: only used with balancer: "
                      "chash\n"
                      "t.yaml:4:5: upstreams[1]: missing required key 'hash_key' (hash_on is "
                      "header)\n"
                      "t.yaml:5:42: upstreams[2].hash_key: unknown variable 'cookie_x' (known: "
                      "remote_addr, uri, request_uri, host, arg_NAME, http_NAME)\n"
                      "t.yaml:6:59: upstreams[3].hash_key: invalid cookie name 'a b': not a valid "
                      "HTTP token\n"
                      "t.yaml:7:27: upstreams[3].hash_balance_factor: must be 0 (no bound) or "
                      "above 100 (percent of the average load)");
        _cleanup_(config_unrefp) Config *chash = load_ok(
                L "upstreams: [{name: a, balancer: chash, hash_on: header, hash_key: X-User,\n"
                  "              hash_balance_factor: 125, nodes: [{host: h}]}]\n");
        if (chash) {
                const ConfigUpstream *u = chash->upstreams[0];
                CHECK_STR(u->balancer, "chash");
                CHECK(u->hash_on == HASH_ON_HEADER && streq_ptr(u->hash_key, "X-User") &&
                      u->hash_balance_factor == 125);
        }

        /* Scalars of the wrong kind. */
        expect_errors(L "access_log: maybe\n"
                        "tls: {verify: \"true\"}\n"
                        "limits: {max_headers: 1.5, max_header_bytes: \"2048\"}\n"
                        "timeouts: {header: -5s, keepalive: soon, shutdown_grace: [1]}\n"
                        "dns: {timeout: 400d}\n",
                      "t.yaml:2:13: access_log: expected a boolean (true or false), got 'maybe'\n"
                      "t.yaml:3:15: tls.verify: expected a boolean (true or false), got the "
                      "quoted string 'true'\n"
                      "t.yaml:4:23: limits.max_headers: expected an integer, got '1.5'\n"
                      "t.yaml:4:46: limits.max_header_bytes: expected an integer, got the quoted "
                      "string '2048'\n"
                      "t.yaml:5:20: timeouts.header: duration '-5s' is negative\n"
                      "t.yaml:5:36: timeouts.keepalive: invalid duration 'soon' (expected "
                      "seconds, or a number with a unit us, ms, s, m, h, d, as in 500ms or "
                      "1.5s)\n"
                      "t.yaml:5:58: timeouts.shutdown_grace: expected a duration, got a sequence\n"
                      "t.yaml:6:16: dns.timeout: duration '400d' is too long (at most 8760h)");
        expect_errors(L "limits: {max_headers: 0, max_header_bytes: 99999999999999999999999}\n"
                        "upstreams: [{name: u, retries: 101, keepalive_pool: 10001, nodes: "
                        "[{host: h, weight: 10001}]}]\n",
                      "t.yaml:2:23: limits.max_headers: 0 is out of range (1..128)\n"
                      "t.yaml:2:44: limits.max_header_bytes: 99999999999999999999999 is out of "
                      "range (1024..1048576)\n"
                      "t.yaml:3:32: upstreams[0].retries: 101 is out of range (0..100)\n"
                      "t.yaml:3:53: upstreams[0].keepalive_pool: 10001 is out of range "
                      "(0..10000)\n"
                      "t.yaml:3:86: upstreams[0].nodes[0].weight: 10001 is out of range "
                      "(0..10000)");

        /* max_connections: a positive integer, nothing else. */
        expect_errors(L "limits: {max_connections: 0}\n",
                      "t.yaml:2:27: limits.max_connections: 0 is out of range (1..10000000)");
        expect_errors(L "limits: {max_connections: -5}\n",
                      "t.yaml:2:27: limits.max_connections: -5 is out of range (1..10000000)");
        expect_errors(L "limits: {max_connections: 10000001}\n",
                      "t.yaml:2:27: limits.max_connections: 10000001 is out of range "
                      "(1..10000000)");
        expect_errors(L "limits:\n  max_connections: many\n",
                      "t.yaml:3:20: limits.max_connections: expected an integer, got 'many'");
        expect_errors(L "limits: {max_connections: \"100\"}\n",
                      "t.yaml:2:27: limits.max_connections: expected an integer, got the quoted "
                      "string '100'");
        expect_errors(L "limits: {max_connections: 1e3}\n",
                      "t.yaml:2:27: limits.max_connections: expected an integer, got '1e3'");

        /* Values checked for what they are. */
        expect_errors("listeners:\n"
                      "  - {name: \"a b\"}\n"
                      "  - {name: x, listen: 1.2.3.4}\n"
                      "  - {name: y, listen: \"::1:80\"}\n"
                      "  - {name: z, listen: \"localhost:80\"}\n"
                      "  - {name: w, listen: \"1.2.3.4:0\"}\n"
                      "  - {name: v, listen: \"[1.2.3.4]:80\"}\n",
                      "t.yaml:2:12: listeners[0].name: invalid name 'a b': only letters, digits, "
                      "'_', '.' and '-' are allowed\n"
                      "t.yaml:3:23: listeners[1].listen: invalid listen address '1.2.3.4': "
                      "missing port\n"
                      "t.yaml:4:23: listeners[2].listen: invalid listen address '::1:80': IPv6 "
                      "addresses must be in brackets, as in [::1]:80\n"
                      "t.yaml:5:23: listeners[3].listen: invalid listen address 'localhost:80': "
                      "not a numeric IP address (names are not resolved here)\n"
                      "t.yaml:6:23: listeners[4].listen: invalid listen address '1.2.3.4:0': port "
                      "out of range (1..65535)\n"
                      "t.yaml:7:23: listeners[5].listen: invalid listen address '[1.2.3.4]:80': "
                      "invalid IPv6 address");
        expect_errors("listeners:\n"
                      "  - {name: a, listen: \"*:80\"}\n"
                      "  - {name: b, listen: \":80\"}\n"
                      "  - {name: a}\n",
                      "t.yaml:3:23: listeners[1].listen: duplicate listen address '[::]:80' "
                      "(first defined at t.yaml:2:23)\n"
                      "t.yaml:4:12: listeners[2].name: duplicate listener name 'a' (first "
                      "defined at t.yaml:2:12)");
        expect_errors(L "upstreams:\n"
                        "  - name: u\n"
                        "    nodes:\n"
                        "      - host: -bad.example\n"
                        "      - host: 1.2.3.999\n"
                        "      - host: \"host:80\"\n"
                        "      - host: \"[::1\"\n"
                        "      - host: under_score.example\n"
                        "      - host: a..b\n"
                        "    tls: {sni: 10.0.0.1}\n",
                      "t.yaml:5:15: upstreams[0].nodes[0].host: invalid host '-bad.example': a "
                      "label must not start with '-'\n"
                      "t.yaml:6:15: upstreams[0].nodes[1].host: invalid host '1.2.3.999': "
                      "invalid IPv4 address\n"
                      "t.yaml:7:15: upstreams[0].nodes[2].host: invalid host 'host:80': the port "
                      "goes in the port: key\n"
                      "t.yaml:8:15: upstreams[0].nodes[3].host: invalid host '[::1': missing "
                      "']'\n"
                      "t.yaml:9:15: upstreams[0].nodes[4].host: invalid host "
                      "'under_score.example': only letters, digits, '-' and '.' are allowed\n"
                      "t.yaml:10:15: upstreams[0].nodes[5].host: invalid host 'a..b': empty "
                      "label\n"
                      "t.yaml:11:16: upstreams[0].tls.sni: invalid server name '10.0.0.1': an IP "
                      "address cannot be sent as a server name");
        expect_errors(L "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                        "routes:\n"
                        "  - name: r\n"
                        "    paths: [api, \"/a*b\", \"/a b\", \"/x?y\"]\n"
                        "    hosts: [\"*\", \"a.*.com\", \"*example.com\", \"h:80\", \"*.1.2\"]\n"
                        "    methods: [\"GE T\", \"\"]\n"
                        "    upstreams: [{name: u}]\n",
                      "t.yaml:5:13: routes[0].paths[0]: invalid path 'api': must start with "
                      "'/'\n"
                      "t.yaml:5:18: routes[0].paths[1]: invalid path '/a*b': '*' is only allowed "
                      "as the last character\n"
                      "t.yaml:5:26: routes[0].paths[2]: invalid path '/a b': spaces and control "
                      "characters are not allowed\n"
                      "t.yaml:5:34: routes[0].paths[3]: invalid path '/x?y': a query or fragment "
                      "is not part of a path\n"
                      "t.yaml:6:13: routes[0].hosts[0]: invalid host '*': '*' alone would match "
                      "every host: leave hosts: out instead\n"
                      "t.yaml:6:18: routes[0].hosts[1]: invalid host 'a.*.com': '*' is only "
                      "allowed as a whole leading label, as in *.example.com\n"
                      "t.yaml:6:29: routes[0].hosts[2]: invalid host '*example.com': '*' is only "
                      "allowed as a whole leading label, as in *.example.com\n"
                      "t.yaml:6:45: routes[0].hosts[3]: invalid host 'h:80': a port is not "
                      "allowed (IPv6 addresses go in brackets)\n"
                      "t.yaml:6:53: routes[0].hosts[4]: invalid host '*.1.2': '*.' must be "
                      "followed by a domain name\n"
                      "t.yaml:7:15: routes[0].methods[0]: invalid method 'GE T': not a valid "
                      "HTTP token\n"
                      "t.yaml:7:23: routes[0].methods[1]: must not be empty");
        expect_errors(L "dns: {servers: [\"1.2.3.4:99999\", name.example, \"*:53\"]}\n"
                        "routes: [{name: r, paths: [/], hosts: [], methods: [],"
                        " upstreams: [{name: \"u u\"}]}]\n",
                      "t.yaml:2:17: dns.servers[0]: invalid DNS server address '1.2.3.4:99999': "
                      "port out of range (1..65535)\n"
                      "t.yaml:2:34: dns.servers[1]: invalid DNS server address 'name.example': "
                      "not a numeric IP address (names are not resolved here)\n"
                      "t.yaml:2:48: dns.servers[2]: invalid DNS server address '*:53': '*' is "
                      "not allowed here\n"
                      "t.yaml:3:39: routes[0].hosts: must not be empty (leave hosts: out to match "
                      "any host)\n"
                      "t.yaml:3:52: routes[0].methods: must not be empty (leave methods: out to "
                      "match any method)\n"
                      "t.yaml:3:75: routes[0].upstreams[0].name: invalid name 'u u': only "
                      "letters, digits, '_', '.' and '-' are allowed");
        expect_errors(L "dns: {ttl_min: 2h, ttl_max: 1h}\n",
                      "t.yaml:2:6: dns: ttl_min (2h) is greater than ttl_max (1h)");

        /* User text in messages stays on one line and short. */
        expect_errors(L "\"a\\nb\\0\": 1\n"
                        "upstreams: [{name: \"x\\0y\", nodes: [{host: h}]}]\n"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1\n",
                      "t.yaml:2:1: unknown key 'a\\nb\\x00'\n"
                      "t.yaml:3:20: upstreams[0].name: must not contain a NUL character\n"
                      "t.yaml:4:1: unknown key '" X92 "...'");

        /* Manifests go to the APISIX translator (test-apisix.c has the rest), native keys or
         * not. */
        expect_errors(L "---\napiVersion: apisix.apache.org/v2\nkind: ApisixUpstream\n"
                        "metadata: {name: x}\n"
                        "---\napiVersion: apisix.apache.org/v2\nspec: {}\n",
                      "t.yaml:3:1: ApisixUpstream/x: missing required key 'spec'\n"
                      "t.yaml:7:1: missing required key 'kind'");

        /* Aliases may share nodes but not blow up. */
        {
                /* 300 routes sharing one list of 64 paths (the most a route may have): 19200
                 * values from 380 nodes. */
                char bomb[8192] = L "p: &p [";
                char *rt;

                for (int i = 0; i < 64; i++)
                        strcat(bomb, i ? ", /" : "/");
                strcat(bomb, "]\nr: &r {name: r, paths: *p, upstreams: [{name: u}]}\nroutes: [");
                for (int i = 0; i < 300; i++)
                        strcat(bomb, i ? ", *r" : "*r");
                strcat(bomb, "]\n");
                rt = bomb;
                (void)rt;

                Config *c = UNTOUCHED;
                char *errors = NULL;
                int r = config_load_string("t.yaml", bomb, strlen(bomb), &errors, &c);

                CHECK(r == -EINVAL);
                CHECK(c == UNTOUCHED);
                CHECK(errors && strstr(errors, "through aliases"));
                CHECK(errors && strlen(errors) < 64 * 1024);
                free(errors);
        }

        /* Many errors: only the first ones are kept. */
        {
                char *yaml = NULL, *errors = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&yaml, &size);
                Config *c = UNTOUCHED;

                fputs(L, f);
                for (int i = 0; i < 150; i++)
                        fprintf(f, "bad%d: 1\n", i);
                fclose(f);
                CHECK(config_load_string("t.yaml", yaml, size, &errors, &c) == -EINVAL);
                CHECK(errors && strstr(errors, "t.yaml:101:1: unknown key 'bad99'\n"
                                               "(50 more errors not shown)"));
                free(errors);
                free(yaml);
        }
}

/* Several documents in one stream merge like several files. */
static void test_documents(void)
{
        static const char yaml[] = "listeners: [{name: a, listen: \"127.0.0.1:1\"}]\n"
                                   "timeouts: {header: 1s, keepalive: 2s}\n"
                                   "dns: {servers: [1.1.1.1], ttl_max: 10s}\n"
                                   "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                                   "---\n"
                                   "listeners: [{name: b}]\n"
                                   "timeouts: {header: 5s}\n"
                                   "dns: {servers: [8.8.8.8, 9.9.9.9], ttl_min: 5s}\n"
                                   "routes: [{name: r, paths: [/], upstreams: [{name: u}]}]\n"
                                   "...\n";
        Config *c = load_ok(yaml);

        if (!c)
                return;
        CHECK(c->n_listeners == 2);
        CHECK(c->n_listeners == 2 && streq(c->listeners[0].name, "a") &&
              streq(c->listeners[1].name, "b"));
        CHECK(c->n_listeners == 2 && c->listeners[1].mark.line == 6);
        CHECK(c->header_timeout_usec == 5 * USEC_PER_SEC);
        CHECK(c->keepalive_timeout_usec == 2 * USEC_PER_SEC);
        CHECK(strv_is(c->dns.servers, STRV("8.8.8.8", "9.9.9.9")));
        CHECK(c->dns.ttl_min_usec == 5 * USEC_PER_SEC);
        CHECK(c->dns.ttl_max_usec == 10 * USEC_PER_SEC);
        CHECK(c->n_upstreams == 1 && c->n_routes == 1);
        config_unref(c);

        /* The duplicate points back into the first document. */
        expect_errors("listeners: [{name: a}]\n---\nlisteners: [{name: a}]\n",
                      "t.yaml:3:20: listeners[0].name: duplicate listener name 'a' (first "
                      "defined at t.yaml:1:20)");
        /* A syntax error in a later document still reports the earlier ones' problems. */
        expect_errors("listeners: [{name: a, x: 1}]\n---\n: : :\n",
                      "t.yaml:1:23: listeners[0]: unknown key 'x'\n"
                      "t.yaml:3:1: did not find expected key (while parsing a block mapping at "
                      "3:1)");
}

static char *write_file(const char *dir, const char *name, const char *content)
{
        char *path;
        FILE *f;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                abort();
        f = fopen(path, "we");
        if (!f) {
                perror(path);
                abort();
        }
        fputs(content, f);
        fclose(f);
        return path;
}

static void rm_rf(const char *dir)
{
        char *cmd;

        if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
                abort();
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        free(cmd);
}

/* A growing buffer for generated documents. */
typedef struct Text {
        char *s;
        size_t len;
} Text;

static void text_add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(Text *t, const char *fmt, ...)
{
        va_list ap;
        char *more;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&more, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        t->s = realloc(t->s, t->len + (size_t)n + 1);
        if (!t->s)
                abort();
        memcpy(t->s + t->len, more, (size_t)n + 1);
        t->len += (size_t)n;
        free(more);
}

/* "[<prefix>0<suffix>, <prefix>1<suffix>, ...]" with `n` items. */
static void text_list(Text *t, const char *prefix, const char *suffix, int n)
{
        text_add(t, "[");
        for (int i = 0; i < n; i++)
                text_add(t, "%s%s%d%s", i ? ", " : "", prefix, i, suffix);
        text_add(t, "]");
}

/* The head of a document whose one route's keys follow, on line 4 from column 14. */
#define ROUTE_HEAD                                                                                 \
        "listeners: [{name: l}]\nupstreams: [{name: u, nodes: [{host: h}]}]\n"                     \
        "routes:\n  - {name: r, "

/* A route with `keys`, the last of which lists `n` items, must fail with `want`. */
static void expect_route_list_at(const char *keys, const char *prefix, const char *suffix, int n,
                                 const char *want, int line)
{
        Text t = {};

        text_add(&t, ROUTE_HEAD "%s: ", keys);
        text_list(&t, prefix, suffix, n);
        text_add(&t, "}\n");
        expect_errors_at(t.s, want, line);
        free(t.s);
}
#define expect_route_list(keys, prefix, suffix, n, want)                                           \
        expect_route_list_at(keys, prefix, suffix, n, want, __LINE__)

/* The documented sizes: at the limit loads, one more is refused naming the field. */
static void test_limits(void)
{
        Text t = {};
        char *want;

        /* 4096 nodes (the benchmark runs 1,000) load; 4097 do not. */
        text_add(&t, "listeners: [{name: l}]\nupstreams:\n  - name: u\n    nodes: ");
        text_list(&t, "{host: h", "}", 4096);
        text_add(&t, "\n");
        {
                Config *c = load_ok(t.s);
                CHECK(c && c->upstreams[0]->n_nodes == 4096);
                config_unref(c);
        }
        t.len = 0;
        text_add(&t, "listeners: [{name: l}]\nupstreams:\n  - name: u\n    nodes: ");
        text_list(&t, "{host: h", "}", 4097);
        text_add(&t, "\n");
        expect_errors(t.s, "t.yaml:4:12: upstreams[0].nodes: too many nodes (4097; at most 4096 "
                           "per upstream)");

        /* Route paths: 4096 bytes each, 64 per route. */
        t.len = 0;
        text_add(&t, ROUTE_HEAD "upstreams: [{name: u}], paths: [/%04095d]}\n", 0);
        {
                Config *c = load_ok(t.s);
                CHECK(c && strlen(c->routes[0]->paths[0]) == 4096);
                config_unref(c);
        }
        t.len = 0;
        text_add(&t, ROUTE_HEAD "upstreams: [{name: u}], paths: [/%04096d]}\n", 0);
        expect_errors(t.s, "t.yaml:4:47: routes[0].paths[0]: invalid path "
                           "'/000000000000000000000000000000000000000000000000000000000000000000000"
                           "0000000000000000000000...': longer than 4096 bytes");
        expect_route_list("upstreams: [{name: u}], paths", "/p", "", 65,
                          "t.yaml:4:46: routes[0].paths: too many paths (65; at most 64 per "
                          "route)");

        /* Hosts, methods and upstreams of a route; server names of an SNI route. */
        expect_route_list("paths: [/], upstreams: [{name: u}], hosts", "h", ".example", 257,
                          "t.yaml:4:58: routes[0].hosts: too many hosts (257; at most 256 per "
                          "route)");
        expect_route_list("paths: [/], upstreams: [{name: u}], methods", "M", "", 33,
                          "t.yaml:4:60: routes[0].methods: too many methods (33; at most 32 per "
                          "route)");
        expect_errors(L "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                        "routes: [{name: r, paths: [/], upstreams: [{name: u}],\n"
                        "          methods: [ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG]}]\n",
                      "t.yaml:4:21: routes[0].methods[0]: invalid method "
                      "'ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG': longer than 32 characters");
        expect_route_list("paths: [/], upstreams", "{name: u", "}", 65,
                          "t.yaml:4:38: routes[0].upstreams: too many upstreams (65; at most 64 "
                          "per route)");
        t.len = 0;
        text_add(&t, "upstreams: [{name: u, nodes: [{host: h}]}]\n"
                     "listeners:\n  - {name: l, protocol: tls-passthrough,\n"
                     "     sni_routes: [{upstream: u, server_names: ");
        text_list(&t, "h", ".example", 257);
        text_add(&t, "}]}\n");
        if (asprintf(&want, "t.yaml:4:47: listeners[0].sni_routes[0].server_names: too many "
                            "server names (257; at most 256 per SNI route)") < 0)
                abort();
        expect_errors(t.s, want);
        free(want);

        /* Names and host names keep their limits (255, 253). */
        t.len = 0;
        text_add(&t, L "upstreams: [{name: u, nodes: [{host: %0254d.example}]}]\n", 0);
        CHECK(t.len > 0);
        {
                Config *c = UNTOUCHED;
                char *errors = NULL;
                int r = config_load_string("t.yaml", t.s, t.len, &errors, &c);

                CHECK(r == -EINVAL && c == UNTOUCHED);
                CHECK(errors && strstr(errors, "upstreams[0].nodes[0].host: invalid host"));
                CHECK(errors && strstr(errors, "longer than 253 characters"));
                free(errors);
        }
        free(t.s);
}

/* config_load_with_state() of lb.yaml and state.yaml, in the current directory, with `state`
 * as the state: it must fail with exactly `want`. */
static void expect_state_errors_at(const char *state, const char *want, int line)
{
        Config *c = UNTOUCHED;
        char *errors = NULL;
        int r;

        free(write_file(".", "state.yaml", state));
        r = config_load_with_state((char *[]){ (char *)"lb.yaml", NULL }, "state.yaml", &errors,
                                   &c);
        if (r != -EINVAL || c != UNTOUCHED || !streq_ptr(errors, want)) {
                fprintf(stderr, "%s:%d: expected -EINVAL, got %d\n  got:  %s\n  want: %s\n",
                        __FILE__, line, r, errors ? errors : "(null)", want);
                tap_failures++;
        }
        free(errors);
}
#define expect_state_errors(state, want) expect_state_errors_at(state, want, __LINE__)

static Config *load_state_ok(const char *state, const char *files)
{
        Config *c = NULL;
        char *errors = NULL;
        int r;

        free(write_file(".", "state.yaml", state));
        r = config_load_with_state((char *[]){ (char *)files, NULL }, "state.yaml", &errors, &c);
        CHECK(r == 0 && c && !errors);
        if (r < 0)
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
        free(errors);
        return r < 0 ? NULL : c;
}

/* config_load_with_state(): the files, with the runtime state's upstreams and routes in place
 * of theirs, checked as one configuration. */
static void test_state(void)
{
        char dir[] = "/tmp/test-config-XXXXXX";
        char *cwd = getcwd(NULL, 0);
        Config *c;

        if (!cwd || !mkdtemp(dir) || chdir(dir) < 0) {
                perror(dir);
                tap_failures++;
                free(cwd);
                return;
        }
        /* A newer file adds a tcp listener for an upstream the older state lacks. */
        free(write_file(".", "lb.yaml",
                        "listeners:\n"
                        "  - {name: http}\n"
                        "  - {name: db, protocol: tcp, upstream: pg}\n"
                        "upstreams:\n"
                        "  - {name: web, nodes: [{host: 10.0.0.1}]}\n"
                        "  - {name: pg, nodes: [{host: 10.0.0.2, port: 5432}]}\n"
                        "routes: [{name: r, paths: [/], upstreams: [{name: web}]}]\n"));
        expect_state_errors("# lbproxy runtime state\n"
                            "access_log: true\n"
                            "limits: {max_headers: 7}\n"
                            "listeners: [{name: gone, listen: '127.0.0.1:1'}]\n"
                            "upstreams:\n"
                            "- {name: web, nodes: [{host: 10.0.0.9, port: 80, weight: 3}]}\n"
                            "routes: [{name: r2, paths: [/x], upstreams: [{name: web}]}]\n",
                            "state.yaml:6:1: upstreams: no upstream named 'pg', which "
                            "listeners[1].upstream uses (lb.yaml:3:41)");

        /* With pg in the state it fits: listeners and settings from the files, upstreams and
         * routes from the state, its other keys skipped. */
        c = load_state_ok("access_log: false\n"
                          "limits: {max_headers: 7}\n"
                          "listeners: [{name: gone, listen: '127.0.0.1:1'}]\n"
                          "upstreams:\n"
                          "- {name: web, nodes: [{host: 10.0.0.9, port: 80, weight: 3}]}\n"
                          "- {name: pg, nodes: [{host: 10.0.0.3, port: 5432}]}\n"
                          "routes: [{name: r2, paths: [/x], upstreams: [{name: web}]}]\n",
                          "lb.yaml");
        if (c) {
                CHECK(c->access_log && c->max_headers == 100);
                CHECK(c->n_listeners == 2 && streq(c->listeners[1].name, "db"));
                CHECK(c->n_upstreams == 2 && c->upstreams[0]->nodes[0].weight == 3);
                CHECK_STR(c->upstreams[1]->nodes[0].host, "10.0.0.3");
                CHECK(c->n_routes == 1 && streq(c->routes[0]->name, "r2"));
                CHECK(mark_is(c->routes[0]->mark, "state.yaml",
                              (ConfigMark){ .line = 7, .column = 17 }));
                CHECK(mark_is(c->listeners[1].mark, "lb.yaml",
                              (ConfigMark){ .line = 3, .column = 12 }));
                config_unref(c);
        }

        /* The state's own references and limits are the files' rules too. */
        expect_state_errors("upstreams: [{name: pg, nodes: [{host: 10.0.0.3}]}]\n"
                            "routes: [{name: r2, paths: [/x], upstreams: [{name: web}]}]\n",
                            "state.yaml:2:53: routes[0].upstreams[0].name: no upstream named "
                            "'web'");
        expect_state_errors("upstreams: [{name: pg, nodes: [{host: 10.0.0.3}]}]\n"
                            "routes: [{name: r2, paths: [/x], upstreams: [{name: pg}],\n"
                            "          methods: [ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG]}]\n",
                            "state.yaml:3:21: routes[0].methods[0]: invalid method "
                            "'ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG': longer than 32 characters");

        /* A state that does not parse. */
        expect_state_errors("upstreams: [{name: pg\nroutes: ]\n",
                            "state.yaml:2:7: did not find expected ',' or '}' (while parsing a "
                            "flow mapping at 1:13)");

        /* An empty state has no upstreams: still the state's fault, at its top. */
        expect_state_errors("", "state.yaml:1:1: upstreams: no upstream named 'pg', which "
                                "listeners[1].upstream uses (lb.yaml:3:41)");

        /* The files' APISIX manifests give way to the state as their native upstreams do. */
        free(write_file(".", "apisix.yaml",
                        "apiVersion: apisix.apache.org/v2\nkind: ApisixUpstream\n"
                        "metadata: {name: web}\nspec: {externalNodes: [{type: Domain, name: a}]}\n"
                        "---\napiVersion: apisix.apache.org/v2\nkind: ApisixRoute\n"
                        "metadata: {name: rt}\n"
                        "spec: {http: [{name: rt, match: {paths: [/]},\n"
                        "               upstreams: [{name: web}]}]}\n"
                        "---\nlisteners: [{name: l}]\n"));
        c = load_state_ok("upstreams: [{name: web, nodes: [{host: 10.0.0.3}]}]\n"
                          "routes: [{name: rt, paths: [/], upstreams: [{name: web}]}]\n",
                          "apisix.yaml");
        CHECK(c && c->n_upstreams == 1 && c->n_routes == 1);
        config_unref(c);

        if (chdir(cwd) < 0)
                perror(cwd);
        free(cwd);
        rm_rf(dir);
}

static void test_files(void)
{
        char dir[] = "/tmp/test-config-XXXXXX";
        char *confd, *p_a, *p_b, *p_main, *p_other, *p_dup, *p_bad, *errors = NULL;
        Config *c = NULL;
        int r;

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                tap_failures++;
                return;
        }
        if (asprintf(&confd, "%s/conf.d", dir) < 0 || mkdir(confd, 0755) < 0)
                abort();

        p_main = write_file(dir, "main.conf", /* read though it does not end in .yaml */
                            "access_log: false\n"
                            "tls: {ca_file: /main.pem}\n"
                            "limits: {max_headers: 10}\n"
                            "listeners: [{name: main}]\n"
                            "upstreams: [{name: early, nodes: [{host: h}]}]\n");
        /* Written out of order: the directory is read sorted by name. */
        p_b = write_file(confd, "20-b.yaml",
                         "tls: {ca_file: /b.pem, verify: false}\n"
                         "limits: {max_header_bytes: 4096}\n"
                         "listeners: [{name: b}]\n"
                         "routes: [{name: r, paths: [/], upstreams: [{name: a}, {name: early}]}]\n");
        p_a = write_file(confd, "10-a.yaml",
                         "access_log: true\n"
                         "listeners: [{name: a}]\n"
                         "upstreams: [{name: a, nodes: [{host: h}]}]\n");
        free(write_file(confd, "30-ignored.yml", "garbage: ["));
        free(write_file(confd, ".40-hidden.yaml", "garbage: ["));
        free(write_file(confd, "README", "garbage: ["));
        {
                char *sub;

                if (asprintf(&sub, "%s/50-dir.yaml", confd) < 0 || mkdir(sub, 0755) < 0)
                        abort();
                free(sub);
        }

        r = config_load((char *[]){ p_main, confd, NULL }, &errors, &c);
        CHECK(r == 0);
        if (r < 0)
                fprintf(stderr, "%s\n", errors);
        CHECK(errors == NULL);
        if (r == 0) {
                CHECK(strv_is(c->files, STRV(p_main, p_a, p_b)));
                CHECK(c->access_log == true);        /* 10-a.yaml overrode main.conf */
                CHECK(c->max_headers == 10);         /* main.conf, kept */
                CHECK(c->max_header_bytes == 4096);  /* 20-b.yaml */
                CHECK_STR(c->tls.ca_file, "/b.pem"); /* 20-b.yaml, field by field */
                CHECK(c->tls.verify == 0);
                CHECK(c->n_listeners == 3);
                CHECK(c->n_listeners == 3 && streq(c->listeners[0].name, "main") &&
                      streq(c->listeners[1].name, "a") && streq(c->listeners[2].name, "b"));
                CHECK(c->n_listeners == 3 && c->listeners[2].mark.file == c->files[2]);
                /* An upstream of the first file gets the tls: defaults of the last. */
                CHECK(c->n_upstreams == 2);
                CHECK(c->n_upstreams == 2 && streq(c->upstreams[0]->tls.ca_file, "/b.pem") &&
                      c->upstreams[0]->tls.verify == 0);
                CHECK(c->n_routes == 1 && c->routes[0]->mark.file == c->files[2]);
        }
        config_unref(c);
        c = NULL;

        /* A trailing slash does not double in the file names. */
        {
                char *slashed, *want;

                if (asprintf(&slashed, "%s/", confd) < 0 ||
                    asprintf(&want, "%s:4:62: routes[0].upstreams[1].name: no upstream named "
                                    "'early'",
                             p_b) < 0)
                        abort();
                c = UNTOUCHED;
                r = config_load((char *[]){ slashed, NULL }, &errors, &c);
                CHECK(r == -EINVAL && c == UNTOUCHED);
                CHECK_STR(errors, want);
                free(errors);
                free(want);
                free(slashed);
        }

        /* Duplicates across files name both places; errors follow the file order. */
        p_dup = write_file(dir, "dup.yaml", "upstreams:\n  - name: a\n    nodes: [{host: h}]\n"
                                            "listeners: [{name: main}]\n");
        {
                char *want;

                if (asprintf(&want,
                             "%s:2:11: upstreams[0].name: duplicate upstream name 'a' (first "
                             "defined at %s:3:20)\n"
                             "%s:4:20: listeners[0].name: duplicate listener name 'main' (first "
                             "defined at %s:4:20)",
                             p_dup, p_a, p_dup, p_main) < 0)
                        abort();
                c = UNTOUCHED;
                r = config_load((char *[]){ p_main, confd, p_dup, NULL }, &errors, &c);
                CHECK(r == -EINVAL);
                CHECK(c == UNTOUCHED);
                CHECK_STR(errors, want);
                free(errors);
                free(want);
        }

        /* A dangling reference in one file, a problem in the next: both, in file order. */
        p_other = write_file(dir, "other.yaml", "routes: [{name: q, paths: [/], upstreams: "
                                                "[{name: ghost}]}]\n");
        p_bad = write_file(dir, "bad.yaml", "limits: {max_headers: 1000}\n");
        {
                char *want;

                if (asprintf(&want,
                             "%s:1:51: routes[0].upstreams[0].name: no upstream named 'ghost'\n"
                             "%s:1:23: limits.max_headers: 1000 is out of range (1..128)",
                             p_other, p_bad) < 0)
                        abort();
                c = UNTOUCHED;
                r = config_load((char *[]){ p_main, p_other, p_bad, NULL }, &errors, &c);
                CHECK(r == -EINVAL);
                CHECK(c == UNTOUCHED);
                CHECK_STR(errors, want);
                free(errors);
                free(want);
        }

        /* I/O errors carry the errno. */
        {
                char *missing, *want;

                if (asprintf(&missing, "%s/missing.yaml", dir) < 0 ||
                    asprintf(&want, "%s: No such file or directory", missing) < 0)
                        abort();
                c = UNTOUCHED;
                r = config_load((char *[]){ missing, NULL }, &errors, &c);
                CHECK(r == -ENOENT);
                CHECK(c == UNTOUCHED);
                CHECK_STR(errors, want);
                free(errors);
                free(want);
                free(missing);
        }
        c = UNTOUCHED;
        r = config_load((char *[]){ NULL }, &errors, &c);
        CHECK(r == -EINVAL && c == UNTOUCHED);
        CHECK_STR(errors, "no configuration files given");
        free(errors);

        /* An empty directory: nothing read, so nothing to point at. */
        {
                char *empty;

                if (asprintf(&empty, "%s/empty", dir) < 0 || mkdir(empty, 0755) < 0)
                        abort();
                c = UNTOUCHED;
                r = config_load((char *[]){ empty, NULL }, &errors, &c);
                CHECK(r == -EINVAL && c == UNTOUCHED);
                CHECK_STR(errors, "listeners: at least one listener is required");
                free(errors);
                free(empty);
        }

        free(p_main);
        free(p_a);
        free(p_b);
        free(p_dup);
        free(p_other);
        free(p_bad);
        free(confd);
        rm_rf(dir);
}

static bool tls_equal(const ConfigTls *a, const ConfigTls *b)
{
        return streq_ptr(a->ca_file, b->ca_file) && a->verify == b->verify &&
               streq_ptr(a->sni, b->sni);
}

static bool listener_equal(const ConfigListener *x, const ConfigListener *y)
{
        if (!streq_ptr(x->name, y->name) || !streq_ptr(x->listen, y->listen) ||
            x->address_len != y->address_len ||
            memcmp(&x->address, &y->address, x->address_len) != 0 ||
            x->protocol != y->protocol || x->n_certificates != y->n_certificates ||
            x->ticket_rotate_usec != y->ticket_rotate_usec ||
            !streq_ptr(x->upstream, y->upstream) || x->tls_originate != y->tls_originate ||
            x->n_sni_routes != y->n_sni_routes || x->idle_timeout_usec != y->idle_timeout_usec)
                return false;
        for (size_t i = 0; i < x->n_certificates; i++)
                if (!streq_ptr(x->certificates[i].cert_file, y->certificates[i].cert_file) ||
                    !streq_ptr(x->certificates[i].key_file, y->certificates[i].key_file) ||
                    !streq_ptr(x->certificates[i].ocsp_file, y->certificates[i].ocsp_file))
                        return false;
        for (size_t i = 0; i < x->n_sni_routes; i++)
                if (!strv_equal(x->sni_routes[i].server_names, y->sni_routes[i].server_names) ||
                    !streq_ptr(x->sni_routes[i].upstream, y->sni_routes[i].upstream))
                        return false;
        return true;
}

/* Every field but the marks, which point into different files. */
static bool config_equal(const Config *a, const Config *b)
{
        if (a->n_listeners != b->n_listeners || a->n_upstreams != b->n_upstreams ||
            a->n_routes != b->n_routes || !strv_equal(a->dns.servers, b->dns.servers) ||
            a->dns.ttl_min_usec != b->dns.ttl_min_usec ||
            a->dns.ttl_max_usec != b->dns.ttl_max_usec ||
            a->dns.timeout_usec != b->dns.timeout_usec || !tls_equal(&a->tls, &b->tls) ||
            a->access_log != b->access_log || a->header_timeout_usec != b->header_timeout_usec ||
            a->keepalive_timeout_usec != b->keepalive_timeout_usec ||
            a->shutdown_grace_usec != b->shutdown_grace_usec ||
            a->max_header_bytes != b->max_header_bytes || a->max_headers != b->max_headers ||
            !strv_equal(a->store.etcd.endpoints, b->store.etcd.endpoints) ||
            !streq_ptr(config_etcd_prefix(a), config_etcd_prefix(b)) ||
            a->store.etcd.timeout_usec != b->store.etcd.timeout_usec ||
            !streq_ptr(a->store.etcd.username, b->store.etcd.username) ||
            !streq_ptr(a->store.etcd.password, b->store.etcd.password))
                return false;

        for (size_t i = 0; i < a->n_listeners; i++)
                if (!listener_equal(a->listeners + i, b->listeners + i))
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
                    !tls_equal(&x->tls, &y->tls) ||
                    !config_health_check_equal(&x->health_check, &y->health_check) ||
                    x->slow_start_usec != y->slow_start_usec)
                        return false;
                for (size_t j = 0; j < x->n_nodes; j++)
                        if (!streq_ptr(x->nodes[j].host, y->nodes[j].host) ||
                            x->nodes[j].port != y->nodes[j].port ||
                            x->nodes[j].weight != y->nodes[j].weight ||
                            x->nodes[j].state != y->nodes[j].state)
                                return false;
        }
        for (size_t i = 0; i < a->n_routes; i++) {
                const ConfigRoute *x = a->routes[i], *y = b->routes[i];

                if (!streq_ptr(x->name, y->name) || !strv_equal(x->paths, y->paths) ||
                    !strv_equal(x->hosts, y->hosts) || !strv_equal(x->methods, y->methods) ||
                    x->priority != y->priority || x->websocket != y->websocket ||
                    x->n_upstreams != y->n_upstreams)
                        return false;
                for (size_t j = 0; j < x->n_upstreams; j++)
                        if (!streq_ptr(x->upstreams[j].name, y->upstreams[j].name) ||
                            x->upstreams[j].weight != y->upstreams[j].weight)
                                return false;
        }
        return true;
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

static void check_round_trip(const char *yaml, int line)
{
        Config *a = load_ok_at(yaml, line), *b;
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
                if (!config_equal(a, b)) {
                        fprintf(stderr, "%s:%d: dump loads differently:\n%s\n", __FILE__, line,
                                text);
                        tap_failures++;
                }
                /* And a dump of the dump is the same text. */
                text2 = dump(b);
                CHECK_STR(text2, text);
                free(text2);
                config_unref(b);
        }
        free(text);
        config_unref(a);
}

static const char protocols_yaml[] =
        "listeners:\n"
        "  - name: https\n"
        "    listen: 127.0.0.1:9443\n"
        "    protocol: https\n"
        "    certificates:\n"
        "      - {cert: /etc/lbproxy/a.pem, key: a.key, ocsp: /var/lib/a.ocsp.der}\n"
        "      - cert: /etc/lbproxy/b.pem\n"
        "        key: /etc/lbproxy/b.key\n"
        "    ticket_rotate: 1h\n"
        "    idle_timeout: 2m\n"
        "  - name: tcp\n"
        "    listen: 127.0.0.1:9000\n"
        "    protocol: tcp\n"
        "    upstream: echo\n"
        "    tls: originate\n"
        "    idle_timeout: 30s\n"
        "  - name: pass\n"
        "    listen: 127.0.0.1:9444\n"
        "    protocol: tls-passthrough\n"
        "    sni_routes:\n"
        "      - {server_names: [\"A.Example\", \"*.b.example.\"], upstream: echo}\n"
        "      - server_names: [c.example]\n"
        "        upstream: other\n"
        "  - name: plain\n"
        "    listen: 127.0.0.1:9080\n"
        "    protocol: http\n"
        "upstreams:\n"
        "  - {name: echo, nodes: [{host: 127.0.0.1, port: 7}]}\n"
        "  - {name: other, nodes: [{host: 127.0.0.2, port: 7}]}\n"
        "routes:\n"
        "  - name: ws\n"
        "    paths: [/ws]\n"
        "    websocket: true\n"
        "    upstreams: [{name: echo}]\n"
        "  - {name: plain, paths: [/], websocket: false, upstreams: [{name: echo}]}\n";

static void test_protocols(void)
{
        Config *c = load_ok(protocols_yaml);
        const ConfigListener *l;

        CHECK(listener_protocol_from_string("http") == LISTENER_HTTP);
        CHECK(listener_protocol_from_string("https") == LISTENER_HTTPS);
        CHECK(listener_protocol_from_string("tcp") == LISTENER_TCP);
        CHECK(listener_protocol_from_string("tls-passthrough") == LISTENER_TLS_PASSTHROUGH);
        CHECK(listener_protocol_from_string("TCP") == _LISTENER_PROTOCOL_INVALID);
        CHECK(listener_protocol_from_string(NULL) == _LISTENER_PROTOCOL_INVALID);
        CHECK_STR(listener_protocol_to_string(LISTENER_TLS_PASSTHROUGH), "tls-passthrough");
        CHECK(listener_protocol_to_string(_LISTENER_PROTOCOL_MAX) == NULL);
        CHECK(listener_protocol_to_string(_LISTENER_PROTOCOL_INVALID) == NULL);

        if (!c)
                return;
        CHECK(c->n_listeners == 4);
        if (c->n_listeners != 4) {
                config_unref(c);
                return;
        }
        l = &c->listeners[0];
        CHECK(l->protocol == LISTENER_HTTPS);
        CHECK(l->n_certificates == 2);
        if (l->n_certificates == 2) {
                CHECK_STR(l->certificates[0].cert_file, "/etc/lbproxy/a.pem");
                CHECK_STR(l->certificates[0].key_file, "a.key"); /* a credential: as written */
                CHECK_STR(l->certificates[0].ocsp_file, "/var/lib/a.ocsp.der");
                CHECK(mark_is(l->certificates[0].mark, "t.yaml",
                              mark_of(protocols_yaml, "{cert: /etc/lbproxy/a.pem", 0)));
                CHECK_STR(l->certificates[1].cert_file, "/etc/lbproxy/b.pem");
                CHECK_STR(l->certificates[1].key_file, "/etc/lbproxy/b.key");
                CHECK(l->certificates[1].ocsp_file == NULL);
                CHECK(mark_is(l->certificates[1].mark, "t.yaml",
                              mark_of(protocols_yaml, "cert: /etc/lbproxy/b.pem", 0)));
        }
        CHECK(l->ticket_rotate_usec == 3600 * USEC_PER_SEC);
        CHECK(l->idle_timeout_usec == 120 * USEC_PER_SEC);
        CHECK(l->upstream == NULL && !l->tls_originate && l->n_sni_routes == 0);

        l = &c->listeners[1];
        CHECK(l->protocol == LISTENER_TCP);
        CHECK_STR(l->upstream, "echo");
        CHECK(l->tls_originate);
        CHECK(l->idle_timeout_usec == 30 * USEC_PER_SEC);
        CHECK(l->n_certificates == 0 && l->n_sni_routes == 0);

        l = &c->listeners[2];
        CHECK(l->protocol == LISTENER_TLS_PASSTHROUGH);
        CHECK(l->n_sni_routes == 2);
        if (l->n_sni_routes == 2) {
                /* Lower case, and no root dot: as clients send them. */
                CHECK(strv_is(l->sni_routes[0].server_names, STRV("a.example", "*.b.example")));
                CHECK_STR(l->sni_routes[0].upstream, "echo");
                CHECK(mark_is(l->sni_routes[0].mark, "t.yaml",
                              mark_of(protocols_yaml, "{server_names", 0)));
                CHECK(strv_is(l->sni_routes[1].server_names, STRV("c.example")));
                CHECK_STR(l->sni_routes[1].upstream, "other");
        }
        CHECK(l->idle_timeout_usec == 5 * 60 * USEC_PER_SEC); /* the default */

        l = &c->listeners[3];
        CHECK(l->protocol == LISTENER_HTTP);
        CHECK(l->ticket_rotate_usec == 12 * 3600 * USEC_PER_SEC); /* unused, but the default */

        CHECK(c->n_routes == 2 && c->routes[0]->websocket && !c->routes[1]->websocket);
        config_unref(c);

        /* The defaults of a listener that says nothing but its name. */
        c = load_ok(L);
        if (c) {
                CHECK(c->listeners[0].protocol == LISTENER_HTTP);
                CHECK(c->listeners[0].idle_timeout_usec == 5 * 60 * USEC_PER_SEC);
                CHECK(c->listeners[0].ticket_rotate_usec == 12 * 3600 * USEC_PER_SEC);
                CHECK(c->listeners[0].n_certificates == 0 && !c->listeners[0].tls_originate);
        }
        config_unref(c);
}

#define UP "upstreams: [{name: u, nodes: [{host: h}]}]\n"

static void test_protocol_errors(void)
{
        /* Keys of another protocol, each named with both protocols. */
        expect_errors(UP "listeners:\n"
                         "  - name: t\n"
                         "    protocol: tcp\n"
                         "    upstream: u\n"
                         "    certificates: [{cert: /a.pem, key: a.key}]\n"
                         "    ticket_rotate: 1h\n"
                         "    sni_routes: [{server_names: [a.example], upstream: u}]\n",
                      "t.yaml:6:19: listeners[0].certificates: only for protocol https (this "
                      "listener's protocol is tcp)\n"
                      "t.yaml:7:20: listeners[0].ticket_rotate: only for protocol https (this "
                      "listener's protocol is tcp)\n"
                      "t.yaml:8:17: listeners[0].sni_routes: only for protocol tls-passthrough "
                      "(this listener's protocol is tcp)");
        expect_errors(UP "listeners:\n"
                         "  - name: h\n"
                         "    upstream: u\n"
                         "    tls: originate\n",
                      "t.yaml:4:15: listeners[0].upstream: only for protocol tcp (this "
                      "listener's protocol is http)\n"
                      "t.yaml:5:10: listeners[0].tls: only for protocol tcp (this listener's "
                      "protocol is http)");
        /* What each protocol requires. */
        expect_errors(UP "listeners:\n"
                         "  - {name: s, protocol: https}\n"
                         "  - {name: t, protocol: tcp}\n"
                         "  - {name: p, protocol: tls-passthrough}\n",
                      "t.yaml:3:5: listeners[0]: missing required key 'certificates' (protocol "
                      "is https)\n"
                      "t.yaml:4:5: listeners[1]: missing required key 'upstream' (protocol is "
                      "tcp)\n"
                      "t.yaml:5:5: listeners[2]: missing required key 'sni_routes' (protocol is "
                      "tls-passthrough)");
        expect_errors(UP "listeners:\n"
                         "  - {name: s, protocol: https, certificates: []}\n"
                         "  - {name: p, protocol: tls-passthrough, sni_routes: []}\n",
                      "t.yaml:3:46: listeners[0].certificates: at least one certificate is "
                      "required\n"
                      "t.yaml:4:54: listeners[1].sni_routes: at least one SNI route is required");
        /* An unknown protocol: no second guess about which keys would fit. */
        expect_errors(UP "listeners: [{name: x, protocol: ftp, upstream: u}]\n",
                      "t.yaml:2:33: listeners[0].protocol: unknown protocol 'ftp' (known: http, "
                      "https, tcp, tls-passthrough, metrics)");
        /* Certificates. */
        expect_errors(UP "listeners:\n"
                         "  - name: s\n"
                         "    protocol: https\n"
                         "    certificates:\n"
                         "      - {cert: a.pem, key: keys/a.key, ocsp: a.der}\n"
                         "      - {key: /k}\n"
                         "      - {cert: /c, key: ..}\n"
                         "      - {cert: /c, key: /k, oscp: /o}\n",
                      "t.yaml:6:16: listeners[0].certificates[0].cert: invalid path 'a.pem': "
                      "must be an absolute path\n"
                      "t.yaml:6:28: listeners[0].certificates[0].key: invalid key path "
                      "'keys/a.key': must be an absolute path, or the name of a credential "
                      "(LoadCredential=, no '/'), which is looked up in $CREDENTIALS_DIRECTORY\n"
                      "t.yaml:6:46: listeners[0].certificates[0].ocsp: invalid path 'a.der': "
                      "must be an absolute path\n"
                      "t.yaml:7:9: listeners[0].certificates[1]: missing required key 'cert'\n"
                      "t.yaml:8:25: listeners[0].certificates[2].key: invalid key path '..': "
                      "must be an absolute path, or the name of a credential (LoadCredential=, "
                      "no '/'), which is looked up in $CREDENTIALS_DIRECTORY\n"
                      "t.yaml:9:29: listeners[0].certificates[3]: unknown key 'oscp'");
        expect_errors(UP "listeners:\n"
                         "  - {name: s, protocol: https, certificates: [{cert: /c, key: /k}],\n"
                         "     ticket_rotate: 500ms}\n"
                         "  - {name: t, protocol: https, certificates: [{cert: /c, key: /k}],\n"
                         "     ticket_rotate: 8d}\n",
                      "t.yaml:4:21: listeners[0].ticket_rotate: 500ms is out of range "
                      "(1s..168h)\n"
                      "t.yaml:6:21: listeners[1].ticket_rotate: 192h is out of range (1s..168h)");
        /* tcp. */
        expect_errors(UP "listeners:\n"
                         "  - {name: t, protocol: tcp, upstream: nope, tls: yes, "
                         "idle_timeout: 0}\n",
                      "t.yaml:3:40: listeners[0].upstream: no upstream named 'nope'\n"
                      "t.yaml:3:51: listeners[0].tls: unknown tls mode 'yes' (known: "
                      "originate)\n"
                      "t.yaml:3:70: listeners[0].idle_timeout: must be longer than 0");
        /* tls-passthrough. */
        expect_errors(UP "listeners:\n"
                         "  - name: p\n"
                         "    protocol: tls-passthrough\n"
                         "    sni_routes:\n"
                         "      - {server_names: [a.example, \"*.b.example\"], upstream: u}\n"
                         "      - {server_names: [c.example, A.EXAMPLE], upstream: nope}\n"
                         "      - {server_names: [\"10.0.0.1\", \"*\", \"a.*.example\"], "
                         "upstream: u}\n"
                         "      - {server_names: [], upstream: u}\n"
                         "      - {upstream: u}\n",
                      "t.yaml:7:9: listeners[0].sni_routes[1]: server name 'a.example' is in "
                      "sni_routes[0] already\n"
                      "t.yaml:7:58: listeners[0].sni_routes[1].upstream: no upstream named "
                      "'nope'\n"
                      "t.yaml:8:25: listeners[0].sni_routes[2].server_names[0]: invalid server "
                      "name '10.0.0.1': an IP address is never sent as a server name\n"
                      "t.yaml:8:37: listeners[0].sni_routes[2].server_names[1]: invalid server "
                      "name '*': '*' is only allowed as a whole leading label, as in "
                      "*.example.com\n"
                      "t.yaml:8:42: listeners[0].sni_routes[2].server_names[2]: invalid server "
                      "name 'a.*.example': '*' is only allowed as a whole leading label, as in "
                      "*.example.com\n"
                      "t.yaml:9:24: listeners[0].sni_routes[3].server_names: at least one "
                      "server name is required\n"
                      "t.yaml:10:9: listeners[0].sni_routes[4]: missing required key "
                      "'server_names'");
        /* websocket is a boolean. */
        expect_errors(UP "listeners: [{name: l}]\n"
                         "routes: [{name: r, paths: [/], websocket: maybe, upstreams: "
                         "[{name: u}]}]\n",
                      "t.yaml:3:43: routes[0].websocket: expected a boolean (true or false), "
                      "got 'maybe'");
        /* An upstream defined in a later document still counts. */
        Config *c = load_ok("listeners: [{name: t, protocol: tcp, upstream: late}]\n"
                            "---\n"
                            "upstreams: [{name: late, nodes: [{host: h}]}]\n");
        config_unref(c);
}

static void test_dump(void)
{
        Config *c;
        char *text;

        check_round_trip(full_yaml, __LINE__);
        check_round_trip(protocols_yaml, __LINE__);
        check_round_trip("listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\n"
                         "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\", "
                         "\"http://[::1]:2379/\"], prefix: /lb/a/, timeout: 1.5s, "
                         "username: root, password: \"p w\"}}\n",
                         __LINE__);
        c = load_ok(protocols_yaml);
        if (c) {
                text = dump(c);
                /* Per protocol, its own keys; http listeners and routes as they always were. */
                CHECK(text && strstr(text, "- name: https\n"
                                           "  listen: \"127.0.0.1:9443\"\n"
                                           "  protocol: https\n"
                                           "  certificates:\n"
                                           "  - {cert: /etc/lbproxy/a.pem, key: a.key, ocsp: "
                                           "/var/lib/a.ocsp.der}\n"
                                           "  - {cert: /etc/lbproxy/b.pem, key: /etc/lbproxy/b.key}\n"
                                           "  ticket_rotate: 1h\n"
                                           "  idle_timeout: 2m\n"
                                           "- name: tcp\n"
                                           "  listen: \"127.0.0.1:9000\"\n"
                                           "  protocol: tcp\n"
                                           "  upstream: echo\n"
                                           "  tls: originate\n"
                                           "  idle_timeout: 30s\n"
                                           "- name: pass\n"
                                           "  listen: \"127.0.0.1:9444\"\n"
                                           "  protocol: tls-passthrough\n"
                                           "  sni_routes:\n"
                                           "  - {server_names: [a.example, '*.b.example'], "
                                           "upstream: echo}\n"
                                           "  - {server_names: [c.example], upstream: other}\n"
                                           "  idle_timeout: 5m\n"
                                           "- name: plain\n"
                                           "  listen: \"127.0.0.1:9080\"\n"
                                           "upstreams:\n"));
                CHECK(text && strstr(text, "  priority: 0\n"
                                           "  websocket: true\n"
                                           "  upstreams:\n"));
                CHECK(text && !strstr(text, "websocket: false"));
                free(text);
                config_unref(c);
        }
        check_round_trip(L, __LINE__);
        /* Strings that must be quoted to stay strings. */
        check_round_trip(L "tls: {ca_file: \"null\"}\n"
                           "upstreams:\n"
                           "  - name: \"123\"\n"
                           "    pass_host: rewrite\n"
                           "    upstream_host: \"[::1]:8080\"\n"
                           "    tls: {ca_file: \"/a path/with: colon #and hash\\ttab\", sni: yes}\n"
                           "    nodes: [{host: \"true\"}, {host: \"::1\", port: 1}]\n"
                           "routes: [{name: \"null\", paths: [\"/*\", \"/é\"], hosts: [\"[::1]\"],"
                           " methods: [\"M-SEARCH\", \"~\"], upstreams: [{name: \"123\", "
                           "weight: 0}]}]\n",
                         __LINE__);

        /* What the dump looks like, for the record. */
        c = load_ok("listeners: [{name: http, listen: \"*:80\"}]\n"
                    "upstreams: [{name: u, nodes: [{host: example.com}]}]\n"
                    "routes: [{name: r, paths: [/], upstreams: [{name: u}]}]\n");
        if (!c)
                return;
        text = dump(c);
        CHECK_STR(text, "access_log: true\n"
                        "workers: 0\n"
                        "timeouts:\n"
                        "  header: 30s\n"
                        "  keepalive: 1m\n"
                        "  shutdown_grace: 10s\n"
                        "limits:\n"
                        "  max_header_bytes: 32768\n"
                        "  max_headers: 100\n"
                        "dns:\n"
                        "  ttl_min: 1s\n"
                        "  ttl_max: 1h\n"
                        "  timeout: 5s\n"
                        "tls:\n"
                        "  verify: true\n"
                        "listeners:\n"
                        "- name: http\n"
                        "  listen: '*:80'\n"
                        "upstreams:\n"
                        "- name: u\n"
                        "  scheme: http\n"
                        "  pass_host: pass\n"
                        "  balancer: roundrobin\n"
                        "  retries: 0\n"
                        "  keepalive_pool: 32\n"
                        "  keepalive_idle: 1m\n"
                        "  timeout: {connect: 5s, send: 1m, read: 1m}\n"
                        "  tls:\n"
                        "    verify: true\n"
                        "  nodes:\n"
                        "  - {host: example.com, port: 80, weight: 1}\n"
                        "routes:\n"
                        "- name: r\n"
                        "  paths: [/]\n"
                        "  priority: 0\n"
                        "  upstreams:\n"
                        "  - {name: u, weight: 1}\n");
        free(text);
        config_unref(c);
}

/* metrics: its block, and the listener protocol. */
static void test_metrics(void)
{
        static const char base[] =
                "listeners:\n"
                "  - {name: web, listen: \"127.0.0.1:1\"}\n"
                "  - {name: m, listen: \"127.0.0.1:2\", protocol: metrics}\n";
        char yaml[1024];
        Config *c = load_ok(base);
        if (c) {
                CHECK(c->listeners[1].protocol == LISTENER_METRICS);
                CHECK(c->metrics.n_buckets == 0 && c->metrics.node_labels);
                config_unref(c);
        }
        CHECK(listener_protocol_from_string("metrics") == LISTENER_METRICS);

        snprintf(yaml, sizeof(yaml), "metrics: {buckets: [0.0005, 0.01, 2.5, 60], "
                                     "node_labels: false}\n%s", base);
        c = load_ok(yaml);
        if (c) {
                CHECK(c->metrics.n_buckets == 4);
                CHECK(c->metrics.buckets_usec[0] == 500 && c->metrics.buckets_usec[3] == 60000000);
                CHECK(!c->metrics.node_labels);
                char *text = dump(c);
                CHECK(text && strstr(text, "metrics:\n  buckets: [0.0005, 0.01, 2.5, 60]\n"
                                           "  node_labels: false\n"));
                /* A metrics listener has no idle_timeout to speak of. */
                CHECK(text && strstr(text, "protocol: metrics\nupstreams:"));
                free(text);
                config_unref(c);
        }
        check_round_trip(yaml, __LINE__);

        snprintf(yaml, sizeof(yaml), "metrics: {buckets: [1, 0.5]}\n%s", base);
        expect_errors(yaml, "t.yaml:1:24: metrics.buckets[1]: must be larger than the bucket "
                            "before it");
        snprintf(yaml, sizeof(yaml), "metrics: {buckets: [0]}\n%s", base);
        expect_errors(yaml, "t.yaml:1:21: metrics.buckets[0]: expected a number of seconds from "
                            "0.000001 to 86400");
        snprintf(yaml, sizeof(yaml), "metrics: {buckets: []}\n%s", base);
        expect_errors(yaml, "t.yaml:1:20: metrics.buckets: must not be empty");
        snprintf(yaml, sizeof(yaml),
                 "metrics: {buckets: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,"
                 "23,24,25,26,27,28,29,30,31,32,33]}\n%s", base);
        expect_errors(yaml, "t.yaml:1:20: metrics.buckets: too many buckets (33; at most 32 per "
                            "histogram)");
        expect_errors("listeners: [{name: m, listen: \"127.0.0.1:2\", protocol: metrics, "
                      "upstream: u}]\n",
                      "t.yaml:1:75: listeners[0].upstream: only for protocol tcp (this "
                      "listener's protocol is metrics)");
}

/* health_check:, slow_start: and a node's state: (issue 15). */
static bool statuses_are(const HealthStatusSet *s, const unsigned *want, size_t n)
{
        HealthStatusSet w = {};

        for (size_t i = 0; i < n; i++)
                health_status_set_add(&w, want[i]);
        return memcmp(s, &w, sizeof(w)) == 0;
}
#define STATUSES_ARE(s, ...)                                                                       \
        statuses_are((s), (const unsigned[]){__VA_ARGS__},                                         \
                     sizeof((const unsigned[]){__VA_ARGS__}) / sizeof(unsigned))

static void check_builtin_passive(const ConfigHealthPassive *p)
{
        CHECK(!p->enabled);
        CHECK(p->healthy.successes == 1);
        CHECK(p->unhealthy.tcp_failures == 2 && p->unhealthy.timeouts == 3 &&
              p->unhealthy.http_failures == 0);
        HealthStatusSet none = {};
        /* Any answer is a success. */
        CHECK(health_status_set_has(&p->healthy.http_statuses, 100) &&
              health_status_set_has(&p->healthy.http_statuses, 599));
        CHECK(memcmp(&p->unhealthy.http_statuses, &none, sizeof(none)) == 0);
}

static void test_health_check(void)
{
        static const char up[] = L "upstreams:\n  - name: u\n    nodes: [{host: h}]\n";
        char yaml[2048];
        Config *c;

        /* None: the built-in check, active off, every node ready, no slow start. */
        c = load_ok(up);
        if (c) {
                const ConfigHealthCheck *hc = &c->upstreams[0]->health_check;

                CHECK(!hc->active.enabled && !hc->active.http_path);
                check_builtin_passive(&hc->passive);
                CHECK(c->upstreams[0]->slow_start_usec == 0);
                CHECK(c->upstreams[0]->nodes[0].state == NODE_ADMIN_READY);
                config_unref(c);
        }

        /* Active alone: APISIX's active defaults, the built-in passive check. */
        snprintf(yaml, sizeof(yaml), "%s    health_check: {active: {}}\n", up);
        c = load_ok(yaml);
        if (c) {
                const ConfigHealthActive *a = &c->upstreams[0]->health_check.active;

                CHECK(a->enabled && a->type == HEALTH_CHECK_HTTP);
                CHECK_STR(a->http_path, "/");
                CHECK(!a->host && a->port == 0 && !a->headers && a->verify == 1);
                CHECK(a->timeout_usec == USEC_PER_SEC && a->concurrency == 10);
                CHECK(a->healthy.interval_usec == USEC_PER_SEC && a->healthy.successes == 2);
                CHECK(STATUSES_ARE(&a->healthy.http_statuses, 200, 302));
                CHECK(a->unhealthy.interval_usec == USEC_PER_SEC &&
                      a->unhealthy.http_failures == 5 && a->unhealthy.tcp_failures == 2 &&
                      a->unhealthy.timeouts == 3);
                CHECK(STATUSES_ARE(&a->unhealthy.http_statuses, 429, 404, 500, 501, 502, 503, 504,
                                   505));
                check_builtin_passive(&c->upstreams[0]->health_check.passive);
                config_unref(c);
        }

        /* Passive written: APISIX's passive defaults for what it does not say. */
        snprintf(yaml, sizeof(yaml),
                 "%s    health_check: {passive: {unhealthy: {timeouts: 0}}}\n", up);
        c = load_ok(yaml);
        if (c) {
                const ConfigHealthPassive *p = &c->upstreams[0]->health_check.passive;

                CHECK(!c->upstreams[0]->health_check.active.enabled);
                CHECK(p->enabled && p->healthy.successes == 5);
                CHECK(STATUSES_ARE(&p->healthy.http_statuses, 200, 201, 202, 203, 204, 205, 206,
                                   207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308));
                CHECK(p->unhealthy.http_failures == 5 && p->unhealthy.tcp_failures == 2 &&
                      p->unhealthy.timeouts == 0);
                CHECK(STATUSES_ARE(&p->unhealthy.http_statuses, 429, 500, 503));
                config_unref(c);
        }

        /* The issue's example, every key written. */
        static const char example[] =
                L "upstreams:\n"
                  "  - name: u\n"
                  "    scheme: https\n"
                  "    health_check:\n"
                  "      active:\n"
                  "        type: https\n"
                  "        http_path: /status?full=1\n"
                  "        host: status.example.com\n"
                  "        port: 8080\n"
                  "        timeout: 1500ms\n"
                  "        concurrency: 3\n"
                  "        headers: [\"User-Agent: lbproxy-health\", \"X-A:\"]\n"
                  "        verify: false\n"
                  "        healthy: {interval: 2s, successes: 0, http_statuses: [200, 302]}\n"
                  "        unhealthy: {interval: 1s, http_failures: 254, tcp_failures: 2,\n"
                  "                    timeouts: 3, http_statuses: [429, 404, \"500-505\"]}\n"
                  "      passive:\n"
                  "        healthy: {successes: 5, http_statuses: [200-208, 226, 300-308]}\n"
                  "        unhealthy: {http_failures: 5, tcp_failures: 2, timeouts: 7,\n"
                  "                    http_statuses: []}\n"
                  "    slow_start: 30s\n"
                  "    nodes: [{host: a, state: drain}, {host: b, state: maint}, "
                  "{host: c, state: ready}]\n";
        c = load_ok(example);
        if (c) {
                const ConfigUpstream *u = c->upstreams[0];
                const ConfigHealthActive *a = &u->health_check.active;
                HealthStatusSet none = {};

                CHECK(a->type == HEALTH_CHECK_HTTPS && a->port == 8080 && a->verify == 0);
                CHECK_STR(a->http_path, "/status?full=1");
                CHECK_STR(a->host, "status.example.com");
                CHECK(a->headers && a->headers[0] && a->headers[1] && !a->headers[2]);
                CHECK(a->timeout_usec == 1500 * USEC_PER_MSEC && a->concurrency == 3);
                CHECK(a->healthy.interval_usec == 2 * USEC_PER_SEC && a->healthy.successes == 0);
                CHECK(a->unhealthy.http_failures == 254);
                CHECK(memcmp(&u->health_check.passive.unhealthy.http_statuses, &none,
                             sizeof(none)) == 0);
                CHECK(u->slow_start_usec == 30 * USEC_PER_SEC);
                CHECK(u->nodes[0].state == NODE_ADMIN_DRAIN &&
                      u->nodes[1].state == NODE_ADMIN_MAINT &&
                      u->nodes[2].state == NODE_ADMIN_READY);
                config_unref(c);
        }
        check_round_trip(example, __LINE__);
        snprintf(yaml, sizeof(yaml), "%s    health_check: {active: {type: tcp, port: 9}}\n", up);
        check_round_trip(yaml, __LINE__);
        snprintf(yaml, sizeof(yaml), "%s    health_check: {passive: {}}\n", up);
        check_round_trip(yaml, __LINE__);

        /* A check that changes is not equal; one written as the defaults are is. */
        {
                Config *x = load_ok(example);
                snprintf(yaml, sizeof(yaml), "%s    health_check: {active: {}}\n", up);
                Config *y = load_ok(yaml);
                snprintf(yaml, sizeof(yaml),
                         "%s    health_check: {active: {healthy: {http_statuses: [302, 200]}}}\n",
                         up);
                Config *z = load_ok(yaml);
                Config *w = load_ok(up);

                if (x && y && z && w) {
                        CHECK(!config_health_check_equal(&x->upstreams[0]->health_check,
                                                         &y->upstreams[0]->health_check));
                        CHECK(config_health_check_equal(&y->upstreams[0]->health_check,
                                                        &z->upstreams[0]->health_check));
                        CHECK(!config_health_check_equal(&y->upstreams[0]->health_check,
                                                         &w->upstreams[0]->health_check));
                }
                config_unref(x);
                config_unref(y);
                config_unref(z);
                config_unref(w);
        }

        /* Refusals the table of tests/data cannot carry. */
        snprintf(yaml, sizeof(yaml), "%s    health_check: {}\n", up);
        expect_errors(yaml, "t.yaml:5:19: upstreams[0].health_check: expected active:, passive: "
                            "or both (leave health_check: out for the built-in check)");
        snprintf(yaml, sizeof(yaml),
                 "%s    health_check: {active: {headers: [\"X-A: b\\r\\nX-B: c\"]}}\n", up);
        expect_errors(yaml, "t.yaml:5:39: upstreams[0].health_check.active.headers[0]: invalid "
                            "header 'X-A: b\\r\\nX-B: c': CR and LF are not allowed in a header");
        snprintf(yaml, sizeof(yaml),
                 "%s    health_check: {active: {type: tcp, http_path: /x, headers: [\"A: b\"]}}\n",
                 up);
        expect_errors(yaml, "t.yaml:5:51: upstreams[0].health_check.active.http_path: only used "
                            "with type http or https (this check's type is tcp)\n"
                            "t.yaml:5:64: upstreams[0].health_check.active.headers: only used "
                            "with type http or https (this check's type is tcp)");
        snprintf(yaml, sizeof(yaml),
                 "%s    health_check: {active: {healthy: {http_statuses: [abc, 99]}}}\n", up);
        expect_errors(yaml, "t.yaml:5:55: upstreams[0].health_check.active.healthy.http_statuses"
                            "[0]: expected an integer, got 'abc'\n"
                            "t.yaml:5:60: upstreams[0].health_check.active.healthy.http_statuses"
                            "[1]: 99 is out of range (100..599)");
        expect_errors(L "upstreams:\n  - name: u\n    nodes: [{host: h, state: up}]\n",
                      "t.yaml:4:30: upstreams[0].nodes[0].state: unknown state 'up' (known: "
                      "ready, drain, maint)");
}

int main(void)
{
        test_metrics();
        test_strings();
        test_durations();
        test_full();
        test_defaults();
        test_errors();
        test_documents();
        test_files();
        test_limits();
        test_state();
        test_protocols();
        test_protocol_errors();
        test_dump();
        test_health_check();

        TEST_MAIN_END();
}
