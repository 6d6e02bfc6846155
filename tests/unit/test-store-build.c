/* SPDX-License-Identifier: MIT */
/* The store's objects through the one pipeline: keys name objects, values are JSON or YAML read
 * by the loader's tables, and a value it refuses is taken out by its key while the rest applies
 * (store-build.c over config_source_store). */

#include "base/log.h"
#include "control/store-build.h"
#include "tap.h"

static const char files_text[] =
        "listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\n"
        "store: {etcd: {endpoints: [\"http://127.0.0.1:2379\"]}}\n"
        "upstreams: [{name: from-file, nodes: [{host: 10.0.0.9, port: 80}]}]\n";

static Config *files(void)
{
        Config *c = NULL;
        _cleanup_free_ char *errors = NULL;

        CHECK(config_load_string("files.yaml", files_text, strlen(files_text), &errors, &c) == 0);
        if (errors)
                fprintf(stderr, "%s\n", errors);
        return c;
}

static void add(StoreItems *s, const char *key, const char *value)
{
        CHECK(store_items_add(s, "/p/", key, value, value ? strlen(value) : 0) == 1);
}

static void test_keys(void)
{
        ConfigObjectKind k;
        const char *name;
        StoreItems s = {};

        CHECK(store_key_parse("/p/", "/p/upstreams/web", &k, &name) == 0 &&
              k == CONFIG_OBJECT_UPSTREAM && streq(name, "web"));
        CHECK(store_key_parse("/p/", "/p/routes/r.1", &k, &name) == 0 &&
              k == CONFIG_OBJECT_ROUTE && streq(name, "r.1"));
        CHECK(store_key_parse("/p/", "/p/routes/", &k, &name) == -EINVAL);
        CHECK(store_key_parse("/p/", "/p/routes/a/b", &k, &name) == -EINVAL);
        CHECK(store_key_parse("/p/", "/p/notes", &k, &name) == -EINVAL);
        CHECK(store_key_parse("/p/", "/q/upstreams/web", &k, &name) == -EINVAL);
        /* Keys that name nothing are skipped. */
        CHECK(store_items_add(&s, "/p/", "/p/notes", "x", 1) == 0 && s.n == 0);
        store_items_done(&s);
}

static void test_whole(void)
{
        _cleanup_(config_unrefp) Config *f = files(), *c = NULL, *c2 = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;
        StoreItems s = {};

        if (!f)
                return;
        /* JSON without a name (the key gives it), YAML with the same name. */
        add(&s, "/p/upstreams/u", "{\"nodes\": [{\"host\": \"10.0.0.1\", \"port\": 80}]}");
        add(&s, "/p/routes/r", "name: r\npaths: [/*]\nupstreams: [{name: u}]\n");
        CHECK(store_build(f, true, &s, NULL, &c, &error) == 0);
        if (c) {
                /* The files' own upstream gave way to the store's. */
                CHECK(c->n_upstreams == 1 && streq(c->upstreams[0]->name, "u"));
                CHECK(c->upstreams[0]->nodes[0].port == 80);
                CHECK(c->n_routes == 1 && streq(c->routes[0]->name, "r"));
                CHECK(c->n_listeners == 1);
        }
        store_items_done(&s);

        /* Bad values: each taken out by its key; u keeps its last good value (c's), the new
         * ones are not served, the rest applies. */
        add(&s, "/p/upstreams/u", "{\"nodes\": [{\"host\": \"10.0.0.1\", \"port\": 99999}]}");
        add(&s, "/p/upstreams/v", "nodes: [{host: 10.0.0.2, port: 81}]");
        add(&s, "/p/upstreams/broken", "nodes: [");
        add(&s, "/p/upstreams/other", "{\"name\": \"not-other\", \"nodes\": []}");
        add(&s, "/p/upstreams/list", "[1, 2]");
        add(&s, "/p/routes/r", "paths: [/*]\nupstreams: [{name: u}, {name: v}]\n");
        add(&s, "/p/routes/dangling", "paths: [/d]\nupstreams: [{name: nowhere}]\n");
        CHECK(store_build(f, true, &s, c, &c2, &error2) == 0);
        if (error2)
                fprintf(stderr, "%s\n", error2);
        if (c2) {
                CHECK(c2->n_upstreams == 2);
                CHECK(config_find_upstream(c2, "u") == config_find_upstream(c, "u"));
                CHECK(config_find_upstream(c2, "v") && !config_find_upstream(c2, "broken") &&
                      !config_find_upstream(c2, "other") && !config_find_upstream(c2, "list"));
                CHECK(c2->n_routes == 1 && c2->routes[0]->n_upstreams == 2);
        }
        store_items_done(&s);
}

static void test_changes(void)
{
        _cleanup_(config_unrefp) Config *f = files(), *c = NULL, *c2 = NULL, *c3 = NULL;
        _cleanup_free_ char *error = NULL;
        StoreItems s = {};

        if (!f)
                return;
        add(&s, "/p/upstreams/u", "{\"nodes\": [{\"host\": \"10.0.0.1\", \"port\": 80}]}");
        add(&s, "/p/upstreams/w", "{\"nodes\": [{\"host\": \"10.0.0.3\", \"port\": 80}]}");
        add(&s, "/p/routes/r", "{\"paths\": [\"/*\"], \"upstreams\": [{\"name\": \"u\"}]}");
        CHECK(store_build(f, true, &s, NULL, &c, &error) == 0);
        store_items_done(&s);
        if (!c)
                return;

        /* A change shares what it does not touch. */
        add(&s, "/p/upstreams/u", "{\"nodes\": [{\"host\": \"10.0.0.1\", \"port\": 81}]}");
        add(&s, "/p/upstreams/w", NULL);
        CHECK(store_build(c, false, &s, c, &c2, NULL) == 0);
        store_items_done(&s);
        if (c2) {
                CHECK(config_find_upstream(c2, "u")->nodes[0].port == 81);
                CHECK(!config_find_upstream(c2, "w"));
                CHECK(config_find_route(c2, "r") == config_find_route(c, "r"));
        }

        /* Removing an upstream a route uses: that removal refused, the rest applies. */
        add(&s, "/p/upstreams/u", NULL);
        add(&s, "/p/routes/r2", "{\"paths\": [\"/2\"], \"upstreams\": [{\"name\": \"u\"}]}");
        _cleanup_free_ char *error3 = NULL;
        CHECK(store_build(c2, false, &s, c2, &c3, &error3) == 0);
        if (error3)
                fprintf(stderr, "%s\n", error3);
        store_items_done(&s);
        if (c3) {
                CHECK(config_find_upstream(c3, "u") == config_find_upstream(c2, "u"));
                CHECK(config_find_route(c3, "r2"));
        }
}

int main(void)
{

        test_keys();
        test_whole();
        test_changes();
        TEST_MAIN_END();
}
