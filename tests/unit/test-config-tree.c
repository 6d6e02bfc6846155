/* SPDX-License-Identifier: MIT */
/* The loader on documents built in memory (what D-Bus arguments become), and edits of the
 * overlay: key paths in problems, the same rules as files, objects shared between Configs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "config/config-overlay.h"
#include "config/config-source.h"
#include "config/config-tree.h"
#include "config/config.h"
#include "config/state.h"
#include "tap.h"

/* ---- allocation failures ----
 *
 * An edit that runs out of memory half-way fails with -ENOMEM, keeps nothing and changes
 * nothing. To see
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
        /* Through a pointer the compiler cannot see through: a malloc() whose result is only
         * freed may be left out altogether. */
        void *(*volatile allocate)(size_t) = malloc;
        void *p;

        fault_arm(0);
        p = allocate(1);
        free(p);
        return fault_disarm() && !p;
}
#endif

static const char base_yaml[] =
        "listeners: [{name: http, listen: \"127.0.0.1:8080\"},\n"
        "            {name: db, listen: \"127.0.0.1:5432\", protocol: tcp, upstream: pg}]\n"
        "tls: {ca_file: /etc/ca.pem}\n"
        "upstreams:\n"
        "  - {name: web, nodes: [{host: 10.0.0.1, port: 80}, {host: \"::1\", port: 81}]}\n"
        "  - {name: pg, nodes: [{host: 10.0.0.2, port: 5432}]}\n"
        "  - {name: spare, nodes: [{host: Spare.Example, port: 80}]}\n"
        "routes:\n"
        "  - {name: r, paths: [/], upstreams: [{name: web}]}\n";

static Config *load_base(void)
{
        _cleanup_free_ char *errors = NULL;
        Config *c = NULL;

        CHECK(config_load_string("base.yaml", base_yaml, strlen(base_yaml), &errors, &c) == 0);
        if (errors)
                fprintf(stderr, "%s\n", errors);
        return c;
}

/* Node ids, or 0 after a failed check. */
static int str(ConfigTree *t, const char *s)
{
        int id = config_tree_add_string(t, s);

        CHECK(id > 0);
        return id > 0 ? id : 0;
}

static void set(ConfigTree *t, int map, const char *k, int v)
{
        CHECK(config_tree_set(t, map, k, v) == 0);
}

static int node(ConfigTree *t, const char *host, uint64_t port, uint64_t weight)
{
        int n = config_tree_add_mapping(t);

        set(t, n, "host", str(t, host));
        set(t, n, "port", config_tree_add_unsigned(t, port));
        set(t, n, "weight", config_tree_add_unsigned(t, weight));
        return n;
}

/* AddUpstream("up", "", [(host, port, 1)]) */
static ConfigTree *upstream_doc(const char *name, const char *host, uint64_t port)
{
        ConfigTree *t = NULL;
        int root, nodes;

        CHECK(config_tree_new(&t) == 0);
        if (!t)
                return NULL;
        root = config_tree_root(t);
        set(t, root, "name", str(t, name));
        nodes = config_tree_add_sequence(t);
        CHECK(config_tree_append(t, nodes, node(t, host, port, 1)) == 0);
        set(t, root, "nodes", nodes);
        return t;
}

static ConfigTree *route_doc(const char *name, const char *path, const char *upstream)
{
        ConfigTree *t = NULL;
        int root, paths, ups, ru;

        CHECK(config_tree_new(&t) == 0);
        if (!t)
                return NULL;
        root = config_tree_root(t);
        set(t, root, "name", str(t, name));
        paths = config_tree_add_sequence(t);
        CHECK(config_tree_append(t, paths, str(t, path)) == 0);
        set(t, root, "paths", paths);
        ups = config_tree_add_sequence(t);
        ru = config_tree_add_mapping(t);
        set(t, ru, "name", str(t, upstream));
        CHECK(config_tree_append(t, ups, ru) == 0);
        set(t, root, "upstreams", ups);
        return t;
}

/* Applies `e` to `c` expecting it refused with one problem. */
static void expect_problem(const Config *c, const ConfigEdit *e, int code, bool in_document,
                           const char *where, const char *path, const char *message)
{
        ConfigProblems p = {};
        Config *n = NULL;

        CHECK(config_edit_apply(c, e, &n, &p) == -EINVAL);
        CHECK(n == NULL);
        CHECK(p.n == 1);
        if (p.n >= 1) {
                CHECK(p.items[0].code == code);
                CHECK(p.items[0].in_document == in_document);
                CHECK_STR(p.items[0].where, where);
                CHECK_STR(p.items[0].path, path);
                CHECK_STR(p.items[0].message, message);
        }
        for (size_t i = 1; i < p.n; i++)
                fprintf(stderr, "  also: %s: %s\n", p.items[i].path, p.items[i].message);
        config_problems_done(&p);
}

static void test_add_upstream(void)
{
        _cleanup_(config_unrefp) Config *c = load_base(), *n = NULL;
        _cleanup_(config_tree_freep) ConfigTree *t = upstream_doc("new", "[::2]", 8080);
        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .document = t};
        ConfigProblems p = {};
        const ConfigUpstream *u;

        if (!c || !t)
                return;
        set(t, config_tree_root(t), "scheme", str(t, "https"));
        CHECK(config_edit_apply(c, &e, &n, &p) == 0);
        CHECK(p.n == 0);
        if (!n)
                return;
        CHECK(n->n_upstreams == 4 && n->n_routes == 1);
        /* Everything else is shared, not copied. */
        for (size_t i = 0; i < 3; i++)
                CHECK(n->upstreams[i] == c->upstreams[i]);
        CHECK(n->routes[0] == c->routes[0]);
        u = config_find_upstream(n, "new");
        CHECK(u == n->upstreams[3]);
        if (!u)
                return;
        /* What a file would give it: defaults, the top-level tls: block, brackets stripped. */
        CHECK(u->scheme == SCHEME_HTTPS);
        CHECK_STR(u->nodes[0].host, "::2");
        CHECK(u->nodes[0].port == 8080 && u->nodes[0].weight == 1);
        CHECK_STR(u->tls.ca_file, "/etc/ca.pem");
        CHECK(u->tls.verify == 1);
        CHECK(u->retries == 0);
        CHECK(u->connect_timeout_usec == 5 * USEC_PER_SEC);
        CHECK_STR(u->balancer, "roundrobin");
        CHECK(u->mark.file == NULL);
        /* The original is untouched. */
        CHECK(c->n_upstreams == 3 && !config_find_upstream(c, "new"));
}

static void test_problems_carry_key_paths(void)
{
        _cleanup_(config_unrefp) Config *c = load_base();
        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM};
        ConfigTree *t;

        if (!c)
                return;

        t = upstream_doc("new", "10.0.0.9", 0);
        e.document = t;
        expect_problem(c, &e, -EINVAL, true, NULL, "nodes[0].port", "0 is out of range (1..65535)");
        config_tree_free(t);

        t = upstream_doc("new", "bad host!", 80);
        e.document = t;
        expect_problem(c, &e, -EINVAL, true, NULL, "nodes[0].host",
                       "invalid host 'bad host!': only letters, digits, '-' and '.' are allowed");
        config_tree_free(t);

        /* Options by kind of value: tests/data/config-refusals.tsv (test_refusals_table). */

        /* Names are checked whole: the new one is the duplicate. */
        t = upstream_doc("web", "10.0.0.9", 80);
        e.document = t;
        expect_problem(c, &e, -EEXIST, true, NULL, "name",
                       "duplicate upstream name 'web' (first defined at base.yaml:5:12)");
        config_tree_free(t);

        /* Two nodes of one address. */
        t = upstream_doc("new", "0::1", 81);
        CHECK(config_tree_append(t, config_tree_get(t, config_tree_root(t), "nodes"),
                                 node(t, "::1", 81, 3)) == 0);
        e.document = t;
        expect_problem(c, &e, -EEXIST, true, NULL, "nodes[1]",
                       "[::1]:81 is listed already (as nodes[0])");
        config_tree_free(t);
}

static void test_routes(void)
{
        _cleanup_(config_unrefp) Config *c = load_base(), *n = NULL;
        ConfigEdit e = {.kind = CONFIG_OBJECT_ROUTE};
        ConfigTree *t;
        int ru;

        if (!c)
                return;
        t = route_doc("r2", "/x", "nope");
        e.document = t;
        expect_problem(c, &e, -ENOENT, true, NULL, "upstreams[0].name", "no upstream named 'nope'");
        config_tree_free(t);

        t = route_doc("r", "/x", "web");
        e.document = t;
        expect_problem(c, &e, -EEXIST, true, NULL, "name",
                       "duplicate route name 'r' (first defined at base.yaml:9:12)");
        config_tree_free(t);

        t = route_doc("r2", "/x", "web");
        ru = config_tree_add_mapping(t);
        set(t, ru, "name", str(t, "web"));
        CHECK(config_tree_append(t, config_tree_get(t, config_tree_root(t), "upstreams"), ru) == 0);
        e.document = t;
        expect_problem(c, &e, -EEXIST, true, NULL, "upstreams[1].name",
                       "'web' is listed already (as upstreams[0])");
        config_tree_free(t);

        t = route_doc("r2", "/x", "spare");
        e.document = t;
        CHECK(config_edit_apply(c, &e, &n, NULL) == 0);
        CHECK(n && n->n_routes == 2 && streq(n->routes[1]->name, "r2"));
        config_tree_free(t);
}

static void test_remove(void)
{
        _cleanup_(config_unrefp) Config *c = load_base(), *n = NULL;
        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .name = "web"};

        if (!c)
                return;
        /* Used by a route (taken over: named, not located) and by a file's listener. */
        expect_problem(c, &e, -ENOENT, false, NULL, "route 'r': upstreams[0].name",
                       "no upstream named 'web'");
        e.name = "pg";
        expect_problem(c, &e, -ENOENT, false, "base.yaml:2:75", "listeners[1].upstream",
                       "no upstream named 'pg'");
        e.name = "nope";
        CHECK(config_edit_apply(c, &e, &n, NULL) == -ENOENT);

        e.name = "spare";
        CHECK(config_edit_apply(c, &e, &n, NULL) == 0);
        CHECK(n && n->n_upstreams == 2 && !config_find_upstream(n, "spare"));
        CHECK(c->n_upstreams == 3 && config_find_upstream(c, "spare"));

        e = (ConfigEdit){.kind = CONFIG_OBJECT_ROUTE, .name = "r"};
        config_unref(n);
        n = NULL;
        CHECK(config_edit_apply(c, &e, &n, NULL) == 0);
        CHECK(n && n->n_routes == 0);
}

/* The start of an edit: an object as the document the state keeps, changed, read back. */
static void test_object_document(void)
{
        _cleanup_(config_unrefp) Config *c = load_base(), *n = NULL;
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        const ConfigUpstream *u;
        ssize_t k;
        int nodes;

        if (!c)
                return;
        CHECK(config_object_document(c, CONFIG_OBJECT_UPSTREAM, "nope", &t) == -ENOENT);
        CHECK(config_object_document(c, CONFIG_OBJECT_UPSTREAM, "web", &t) == 0);
        if (!t)
                return;
        u = config_find_upstream(c, "web");
        k = config_upstream_find_node(u, "[0::1]", 81);
        CHECK(k == 1);
        CHECK(config_upstream_find_node(u, "::1", 80) == -ENOENT);
        CHECK(config_upstream_find_node(u, "bad host", 80) == -ENOENT);
        CHECK(config_upstream_find_node(config_find_upstream(c, "spare"), "spare.EXAMPLE", 80) ==
              0);
        nodes = config_tree_get(t, config_tree_root(t), "nodes");
        CHECK(config_tree_length(t, nodes) == 2);
        set(t, config_tree_item(t, nodes, (size_t)k), "weight", config_tree_add_unsigned(t, 7));

        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .name = "web", .document = t};
        CHECK(config_edit_apply(c, &e, &n, NULL) == 0);
        if (!n)
                return;
        CHECK(n->upstreams[0] != c->upstreams[0]);
        CHECK(n->upstreams[1] == c->upstreams[1] && n->upstreams[2] == c->upstreams[2]);
        CHECK(n->upstreams[0]->nodes[1].weight == 7 && c->upstreams[0]->nodes[1].weight == 1);
        CHECK(n->upstreams[0]->nodes[0].weight == 1);
        /* The rest as it was: the dump of the new one differs in that weight only. */
        CHECK(n->upstreams[0]->retries == c->upstreams[0]->retries);
        CHECK_STR(n->upstreams[0]->tls.ca_file, "/etc/ca.pem");

        /* The last node cannot go, as in a file. */
        config_tree_free(t);
        t = NULL;
        CHECK(config_object_document(c, CONFIG_OBJECT_UPSTREAM, "pg", &t) == 0);
        nodes = config_tree_get(t, config_tree_root(t), "nodes");
        CHECK(config_tree_remove_item(t, nodes, 0) == 0);
        e = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .name = "pg", .document = t};
        expect_problem(c, &e, -EINVAL, true, NULL, "nodes", "at least one node is required");
}

static void test_tree_api(void)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        int root, seq, a, b;

        CHECK(config_tree_new(&t) == 0);
        if (!t)
                return;
        root = config_tree_root(t);
        CHECK(config_tree_is_mapping(t, root));
        a = str(t, "a");
        b = config_tree_add_integer(t, -5);
        set(t, root, "k", a);
        set(t, root, "k", b);
        CHECK(config_tree_get(t, root, "k") == b);
        CHECK(config_tree_get(t, root, "nope") == 0);
        CHECK(config_tree_unset(t, root, "k") == 1);
        CHECK(config_tree_unset(t, root, "k") == 0);
        CHECK(config_tree_get(t, root, "k") == 0);
        seq = config_tree_add_sequence(t);
        CHECK(config_tree_append(t, seq, a) == 0);
        CHECK(config_tree_append(t, seq, b) == 0);
        CHECK(config_tree_length(t, seq) == 2 && config_tree_item(t, seq, 1) == b);
        CHECK(config_tree_remove_item(t, seq, 0) == 0);
        CHECK(config_tree_length(t, seq) == 1 && config_tree_item(t, seq, 0) == b);
        CHECK(config_tree_item(t, seq, 1) == 0);
        CHECK(config_tree_set(t, seq, "x", a) == -EINVAL);
        CHECK(config_tree_append(t, root, a) == -EINVAL);
        CHECK(config_tree_set(t, root, "x", 999) == -EINVAL);
        CHECK(config_tree_length(t, root) == 0);
}

/* Files and edits share one rule: two nodes of one address are refused in a file too. */
static void test_duplicate_nodes_in_files(void)
{
        static const char yaml[] =
                "listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\n"
                "upstreams:\n"
                "  - {name: u, nodes: [{host: Example.com, port: 80},\n"
                "                      {host: example.COM, port: 80}]}\n"
                "routes: [{name: r, paths: [/], upstreams: [{name: u}, {name: u}]}]\n";
        _cleanup_free_ char *errors = NULL;
        Config *c = NULL;

        CHECK(config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c) == -EINVAL);
        CHECK_STR(errors, "t.yaml:4:23: upstreams[0].nodes[1]: example.com:80 is listed already "
                          "(as nodes[0])\n"
                          "t.yaml:5:62: routes[0].upstreams[1].name: 'u' is listed already (as "
                          "upstreams[0])");
}

/* ---- the state ---- */

static char *dump_text(const Config *c)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return NULL;
        CHECK(config_dump(c, f) == 0);
        fclose(f);
        return text;
}

/* What the state writes reads back as what was written, made whole or from kept texts. */
static void test_state_round_trip(void)
{
        char dir[] = "/tmp/test-config-tree.XXXXXX";
        _cleanup_(config_unrefp) Config *files = load_base(), *c = NULL, *back = NULL;
        _cleanup_free_ char *errors = NULL, *want = NULL, *got = NULL, *path = NULL;
        StateFile *sf = NULL;

        if (!files || !mkdtemp(dir))
                return;
        CHECK(state_file_new(dir, &sf) == 0);
        /* Three upstreams added, then one of them edited in place, one removed, and the
         * first edited: the texts of the others are kept, whatever moved. */
        static const struct {
                const char *name; /* replaced or removed; NULL: one added */
                const char *doc;  /* its new document's name; NULL: removed */
        } rounds[] = {
                { NULL, "extra0" },     { NULL, "extra1" },     { NULL, "extra2" },
                { "extra0", "extra0" }, { "extra1", NULL },     { "extra2", "extra2" },
        };
        for (size_t round = 0; round < ELEMENTSOF(rounds) && sf; round++) {
                _cleanup_(config_tree_freep) ConfigTree *t = NULL;
                Config *n = NULL;

                if (rounds[round].doc)
                        t = upstream_doc(rounds[round].doc, "10.9.9.9", 80 + (unsigned)round);
                ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .name = rounds[round].name,
                                .document = t};
                CHECK(config_edit_apply(c ? c : files, &e, &n, NULL) == 0);
                config_unref(c);
                c = n;
                if (!c)
                        break;
                CHECK(state_file_save(sf, c) == 0);
                config_unref(back);
                back = NULL;
                free(errors);
                errors = NULL;
                CHECK(state_load(files, dir, &back, &errors) == 1);
                if (errors)
                        fprintf(stderr, "%s\n", errors);
                free(want);
                free(got);
                want = dump_text(c);
                got = back ? dump_text(back) : NULL;
                CHECK_STR(got, want);
        }
        state_file_free(sf);
        CHECK(state_path(dir, &path) == 0);
        if (path)
                unlink(path);
        rmdir(dir);
}

/* ---- a source of one's own ---- */

/* A store of documents, as a shared store (etcd) would give them: key → document. */
typedef struct Store {
        const char *keys[2];
        ConfigTree *docs[2];
        ConfigObjectKind kinds[2];
} Store;

static int contribute_store(const ConfigSource *s, ConfigBuild *b)
{
        const Store *st = s->data;

        config_build_replace_objects(b);
        for (size_t i = 0; i < ELEMENTSOF(st->keys); i++) {
                int r = config_build_read_document(b, st->kinds[i], st->docs[i], st->keys[i]);

                if (r < 0)
                        return r;
        }
        return 0;
}

static void test_a_source_plugs_in(void)
{
        _cleanup_(config_unrefp) Config *files = load_base(), *c = NULL;
        Store st = {
                .keys = {"store /upstreams/u", "store /routes/r"},
                .docs = {upstream_doc("u", "10.0.0.7", 8080), route_doc("r", "/s/*", "u")},
                .kinds = {CONFIG_OBJECT_UPSTREAM, CONFIG_OBJECT_ROUTE},
        };
        ConfigSource sources[] = {config_source_loaded(files),
                                  {.name = "store", .contribute = contribute_store, .data = &st}};
        _cleanup_free_ char *errors = NULL;

        if (!files || !st.docs[0] || !st.docs[1])
                goto out;
        /* The files' listener 'db' names pg, which the store does not have. */
        CHECK(config_build(sources, 2, &c, NULL, &errors) == -EINVAL);
        CHECK_STR(errors, "base.yaml:2:75: listeners[1].upstream: no upstream named 'pg'");
        free(errors);
        errors = NULL;

        set(st.docs[0], config_tree_root(st.docs[0]), "name", str(st.docs[0], "pg"));
        CHECK(config_build(sources, 2, &c, NULL, &errors) == -EINVAL);
        CHECK_STR(errors, "store /routes/r.upstreams[0].name: no upstream named 'u'");
        free(errors);
        errors = NULL;

        set(st.docs[1],
            config_tree_get(st.docs[1], config_tree_root(st.docs[1]), "upstreams")
                    ? config_tree_item(st.docs[1],
                                       config_tree_get(st.docs[1], config_tree_root(st.docs[1]),
                                                       "upstreams"),
                                       0)
                    : 0,
            "name", str(st.docs[1], "pg"));
        CHECK(config_build(sources, 2, &c, NULL, &errors) == 0);
        CHECK(errors == NULL);
        if (c) {
                /* The files' listeners and settings, the store's objects. */
                CHECK(c->base == files && c->listeners == files->listeners);
                CHECK(c->n_upstreams == 1 && streq(c->upstreams[0]->name, "pg"));
                CHECK(c->n_routes == 1 && streq(c->routes[0]->paths[0], "/s/*"));
                CHECK_STR(c->upstreams[0]->tls.ca_file, "/etc/ca.pem");
        }
out:
        config_tree_free(st.docs[0]);
        config_tree_free(st.docs[1]);
}

/* ---- one table for files and D-Bus ---- */

#define CASES_FILE "../data/config-refusals.tsv"

typedef struct Case {
        char *kind, *key, *yaml, *type, *value, *at, *message;
} Case;

/* The value as the D-Bus method makes it (bus-manager.c's read_value). */
static int dbus_value(ConfigTree *t, const Case *c)
{
        if (streq(c->type, "s"))
                return config_tree_add_string(t, c->value);
        if (streq(c->type, "b"))
                return config_tree_add_boolean(t, streq(c->value, "true"));
        if (strchr("yqut", c->type[0]))
                return config_tree_add_unsigned(t, strtoull(c->value, NULL, 10));
        if (strchr("nix", c->type[0]))
                return config_tree_add_integer(t, strtoll(c->value, NULL, 10));
        if (streq(c->type, "au")) {
                _cleanup_free_ char *copy = strdup(c->value);
                int seq = config_tree_add_sequence(t);
                char *save = NULL;

                for (char *i = copy && *copy ? strtok_r(copy, ",", &save) : NULL; i;
                     i = strtok_r(NULL, ",", &save))
                        CHECK(config_tree_append(t, seq, config_tree_add_unsigned(
                                                                 t, strtoull(i, NULL, 10))) == 0);
                return seq;
        }
        if (streq(c->type, "as")) {
                _cleanup_free_ char *copy = strdup(c->value);
                int seq = config_tree_add_sequence(t);
                char *save = NULL;

                for (char *i = copy && *copy ? strtok_r(copy, ",", &save) : NULL; i;
                     i = strtok_r(NULL, ",", &save))
                        CHECK(config_tree_append(t, seq, config_tree_add_string(t, i)) == 0);
                return seq;
        }
        fprintf(stderr, "unknown D-Bus type '%s'\n", c->type);
        return -EINVAL;
}

/* Sets the key path `key` ("timeout.connect") of `mapping` to `value`. */
static void set_path(ConfigTree *t, int mapping, const char *key, int value)
{
        const char *dot = strchr(key, '.');
        _cleanup_free_ char *first = NULL;
        int inner;

        if (!dot) {
                set(t, mapping, key, value);
                return;
        }
        first = strndup(key, (size_t)(dot - key));
        inner = config_tree_get(t, mapping, first);
        if (!inner) {
                inner = config_tree_add_mapping(t);
                set(t, mapping, first, inner);
        }
        set_path(t, inner, dot + 1, value);
}

/* "timeout.connect" and "5s" → "timeout: {connect: 5s}" */
static char *yaml_entry(const char *key, const char *yaml)
{
        const char *dot = strchr(key, '.');
        _cleanup_free_ char *inner = NULL;
        char *s;

        if (!dot)
                return asprintf(&s, "%s: %s", key, yaml) < 0 ? NULL : s;
        inner = yaml_entry(dot + 1, yaml);
        return inner && asprintf(&s, "%.*s: {%s}", (int)(dot - key), key, inner) >= 0 ? s : NULL;
}

/* A store case's key beside the endpoints it needs ("endpoints: [...], KEY: VALUE"), in a
 * buffer that lives as long as the test. */
static const char *strjoina_endpoints(const char *key, const char *entry)
{
        static char buf[1024];

        snprintf(buf, sizeof(buf), "endpoints: [\"%s://127.0.0.1:2379\"]\n    %s",
                 strncmp(key, "tls", 3) == 0 ? "https" : "http", entry);
        return buf;
}

static const char case_base[] = "listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\n";

static void case_in_file(const Case *c, const char *where)
{
        _cleanup_free_ char *entry = yaml_entry(c->key, c->yaml), *yaml = NULL, *errors = NULL,
                            *want = NULL;
        Config *cfg = NULL;
        int r;

        if (!entry)
                return;
        if (streq(c->kind, "upstream"))
                r = asprintf(&yaml,
                             "%supstreams:\n  - name: u\n    nodes: [{host: 10.0.0.1, port: 80}]\n"
                             "    %s\n",
                             case_base, entry);
        else if (streq(c->kind, "route"))
                r = asprintf(&yaml,
                             "%supstreams: [{name: u, nodes: [{host: 10.0.0.1, port: 80}]}]\n"
                             "routes:\n  - name: r\n    paths: [/]\n    upstreams: [{name: u}]\n"
                             "    %s\n",
                             case_base, entry);
        else if (streq(c->kind, "store"))
                r = asprintf(&yaml, "%sstore:\n  etcd:\n    %s\n", case_base,
                             streq(c->key, "endpoints")
                                     ? entry
                                     : strjoina_endpoints(c->key, entry));
        else
                r = asprintf(&yaml,
                             "%supstreams:\n  - name: u\n    nodes:\n"
                             "      - {host: 10.0.0.1, port: 80}\n"
                             "      - {%s%s%s}\n",
                             case_base, streq(c->key, "host") ? "" : "host: 10.0.0.9, ",
                             streq(c->key, "port") ? "" : "port: 81, ", entry);
        if (r < 0)
                return;
        r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &cfg);
        if (asprintf(&want, ": %s%s%s: %s", where, *c->at ? "." : "", c->at, c->message) < 0)
                return;
        if (r != -EINVAL || !errors || strchr(errors, '\n') || strlen(errors) < strlen(want) ||
            !streq(errors + strlen(errors) - strlen(want), want)) {
                fprintf(stderr, "case %s %s in a file:\n  got:  %s\n  want: ...%s\n", c->kind,
                        c->key, errors ? errors : "(accepted)", want);
                tap_failures++;
        }
        config_unref(cfg);
}

static void case_in_document(const Config *base, const Case *c)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        _cleanup_free_ char *want_path = NULL;
        ConfigProblems p = {};
        ConfigEdit e = {};
        Config *n = NULL;
        int r;

        if (streq(c->kind, "node")) {
                int node, nodes;

                CHECK(config_object_document(base, CONFIG_OBJECT_UPSTREAM, "u", &t) == 0);
                if (!t)
                        return;
                nodes = config_tree_get(t, config_tree_root(t), "nodes");
                node = config_tree_add_mapping(t);
                set(t, node, "host", streq(c->key, "host") ? dbus_value(t, c) : str(t, "10.0.0.9"));
                set(t, node, "port",
                    streq(c->key, "port") ? dbus_value(t, c) : config_tree_add_unsigned(t, 81));
                set(t, node, "weight",
                    streq(c->key, "weight") ? dbus_value(t, c) : config_tree_add_unsigned(t, 1));
                CHECK(config_tree_append(t, nodes, node) == 0);
                e = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .name = "u", .document = t};
                r = asprintf(&want_path, "nodes[1].%s", c->at);
        } else {
                bool up = streq(c->kind, "upstream");

                t = up ? upstream_doc("u2", "10.0.0.2", 80) : route_doc("r2", "/x", "u");
                if (!t)
                        return;
                set_path(t, config_tree_root(t), c->key, dbus_value(t, c));
                e = (ConfigEdit){.kind = up ? CONFIG_OBJECT_UPSTREAM : CONFIG_OBJECT_ROUTE,
                                 .document = t};
                want_path = strdup(c->at);
                r = want_path ? 0 : -ENOMEM;
        }
        if (r < 0)
                return;
        r = config_edit_apply(base, &e, &n, &p);
        if (r != -EINVAL || p.n != 1 || !p.items[0].in_document ||
            !streq(p.items[0].path, want_path) || !streq(p.items[0].message, c->message)) {
                fprintf(stderr,
                        "case %s %s in a document: %d, %zu problems, first: %s: %s\n"
                        "  want: %s: %s\n",
                        c->kind, c->key, r, p.n, p.n ? p.items[0].path : "",
                        p.n ? p.items[0].message : "", want_path, c->message);
                tap_failures++;
        }
        config_unref(n);
        config_problems_done(&p);
}

static void test_refusals_table(void)
{
        static const char base_text[] =
                "listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\n"
                "upstreams: [{name: u, nodes: [{host: 10.0.0.1, port: 80}]}]\n"
                "routes: [{name: r, paths: [/], upstreams: [{name: u}]}]\n";
        _cleanup_(config_unrefp) Config *base = NULL;
        _cleanup_fclose_ FILE *f = fopen(CASES_FILE, "re");
        char line[1024];
        size_t n = 0;

        CHECK(f);
        CHECK(config_load_string("base.yaml", base_text, strlen(base_text), NULL, &base) == 0);
        if (!f || !base)
                return;
        while (fgets(line, sizeof(line), f)) {
                char *fields[7], *p = line;
                size_t k = 0;
                Case c;

                line[strcspn(line, "\n")] = 0;
                if (!*line || *line == '#')
                        continue;
                for (; k < ELEMENTSOF(fields) && p; k++)
                        fields[k] = strsep(&p, "\t");
                CHECK(k == ELEMENTSOF(fields) && !p);
                if (k != ELEMENTSOF(fields))
                        continue;
                c = (Case){fields[0], fields[1], fields[2], fields[3],
                           fields[4], fields[5], fields[6]};
                if (streq(c.at, "-"))
                        c.at = c.key;
                case_in_file(&c, streq(c.kind, "upstream") ? "upstreams[0]"
                                 : streq(c.kind, "route")  ? "routes[0]"
                                 : streq(c.kind, "store")  ? "store.etcd"
                                                           : "upstreams[0].nodes[1]");
                /* The store is the files' alone: no D-Bus method sets it. */
                if (!streq(c.kind, "store"))
                        case_in_document(base, &c);
                n++;
        }
        CHECK(n >= 20);
}

/* ---- out of memory ---- */

#if FAULT_INJECTION
static ConfigTree *edit_document(const Config *c, int which, ConfigEdit *ret)
{
        ConfigTree *t = NULL;
        int nodes;

        switch (which) {
        case 0:
                t = upstream_doc("new", "[::2]", 80);
                set(t, config_tree_root(t), "pass_host", str(t, "rewrite"));
                set(t, config_tree_root(t), "upstream_host", str(t, "a.example"));
                *ret = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .document = t};
                break;
        case 1:
                CHECK(config_object_document(c, CONFIG_OBJECT_UPSTREAM, "web", &t) == 0);
                nodes = config_tree_get(t, config_tree_root(t), "nodes");
                CHECK(config_tree_append(t, nodes, node(t, "a.example", 80, 2)) == 0);
                *ret = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .name = "web", .document = t};
                break;
        case 2:
                t = route_doc("r2", "/a*", "spare");
                *ret = (ConfigEdit){.kind = CONFIG_OBJECT_ROUTE, .document = t};
                break;
        default:
                /* Refused, with messages that need memory too. */
                *ret = (ConfigEdit){.kind = CONFIG_OBJECT_UPSTREAM, .name = "web"};
        }
        return t;
}

static void test_out_of_memory(void)
{
        _cleanup_(config_unrefp) Config *c = load_base();
        _cleanup_free_ char *text = NULL;

        if (!c)
                return;
        if (!fault_works()) {
                fprintf(stderr, "malloc is not ours: allocation failures not tested\n");
                return;
        }
        text = dump_text(c);

        for (int e = 0; e < 4; e++)
                for (unsigned k = 0;; k++) {
                        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
                        _cleanup_free_ char *text2 = NULL;
                        ConfigProblems p = {};
                        ConfigEdit edit;
                        Config *n = NULL;
                        int want = e == 3 ? -EINVAL : 0;
                        long live;
                        bool hit;
                        int r;

                        t = edit_document(c, e, &edit);
                        live = fault.live;
                        fault_arm(k);
                        r = config_edit_apply(c, &edit, &n, &p);
                        hit = fault_disarm();
                        config_unref(n);
                        config_problems_done(&p);
                        /* Nothing kept, nothing lost, nothing changed. */
                        CHECK(fault.live == live);
                        text2 = dump_text(c);
                        CHECK_STR(text2, text);
                        if (r == want && !hit) {
                                /* Every edit allocates: some runs must have failed. */
                                CHECK(k > 0);
                                break;
                        }
                        if (r != want && r != -ENOMEM) {
                                fprintf(stderr, "%s:%d: edit %d, allocation %u: got %d\n", __FILE__,
                                        __LINE__, e, k, r);
                                tap_failures++;
                        }
                }
}
#endif


int main(void)
{
        test_tree_api();
        test_add_upstream();
        test_problems_carry_key_paths();
        test_routes();
        test_remove();
        test_object_document();
        test_duplicate_nodes_in_files();
        test_refusals_table();
        test_a_source_plugs_in();
        test_state_round_trip();
#if FAULT_INJECTION
        test_out_of_memory();
#endif
        TEST_MAIN_END();
}
