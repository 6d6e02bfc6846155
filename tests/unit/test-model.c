/* SPDX-License-Identifier: MIT */
/* The registry of runtime state (found by name across models, dropped when no model refers to
 * it, fresh when it comes back; counters per worker) and incremental models (what did not change
 * is the same object in the next model). */
#include "lb/model.h"
#include "lb/registry.h"
#include "lb/router.h"
#include "tap.h"

/* Upstreams a (two nodes), b (one node, or two with the second's weight given), c (https);
 * routes r1 on a (at `r1_path`), r2 on b, r3 on both, r4 on c. */
static Config *config_with(uint32_t b_weight, const char *r1_path, bool b_second_node)
{
        char b_second[64] = "", yaml[2048];
        if (b_second_node)
                snprintf(b_second, sizeof(b_second), ", {host: 127.0.0.2, port: 2, weight: %u}",
                         b_weight);
        snprintf(yaml, sizeof(yaml),
                 "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                 "upstreams:\n"
                 "- {name: a, nodes: [{host: 127.0.0.1, port: 1}, {host: 127.0.0.1, port: 2}]}\n"
                 "- {name: b, nodes: [{host: 127.0.0.2, port: 1}%s]}\n"
                 "- {name: c, scheme: https, nodes: [{host: 127.0.0.3, port: 443}]}\n"
                 "routes:\n"
                 "- {name: r1, paths: [\"%s\"], upstreams: [{name: a}]}\n"
                 "- {name: r2, paths: [/b/*], upstreams: [{name: b}]}\n"
                 "- {name: r3, paths: [/ab/*], upstreams: [{name: a}, {name: b}]}\n"
                 "- {name: r4, paths: [/c/*], upstreams: [{name: c}]}\n",
                 b_second, r1_path);
        Config *c = NULL;
        char *errors = NULL;
        int r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        if (r < 0)
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
        free(errors);
        return c;
}

static Model *build(Registry *reg, const Model *base, Config *c)
{
        Model *m = NULL;
        ModelContext ctx = { .registry = reg, .base = base };
        char *error = NULL;
        int r = model_new(c, &ctx, &m, &error);
        if (r < 0)
                fprintf(stderr, "model_new: %s\n", error ? error : strerror(-r));
        free(error);
        return r < 0 ? NULL : m;
}

static uint64_t served(const RegistryEntry *e)
{
        RegistryTotals t;
        registry_entry_totals(e, &t);
        return t.requests;
}

static void test_registry(void)
{
        Registry *reg;
        RegistryWorker *w0, *w1;
        RegistryEntry *a, *a2, *b, *u;

        CHECK(registry_new(&reg) == 0);
        CHECK(registry_worker_attach(reg, 0, &w0) == 0);
        CHECK(registry_node(reg, "up", "127.0.0.1", 80, &a) == 0);
        CHECK(registry_node(reg, "up", "127.0.0.1", 80, &a2) == 0);
        CHECK(a == a2); /* found by name */
        CHECK(registry_node(reg, "up", "127.0.0.1", 81, &b) == 0);
        CHECK(registry_upstream(reg, "up", &u) == 0);
        CHECK(a != b && a != u && b != u && registry_size(reg) == 3);
        /* The kinds do not share names. */
        CHECK(registry_find_node(reg, "up", "127.0.0.1", 80) == a);
        CHECK(registry_find_node(reg, "up", "127.0.0.2", 80) == NULL);

        /* A worker attached later gets blocks for the entries that exist. */
        CHECK(registry_worker_attach(reg, 1, &w1) == 0);
        registry_count(w0, a, 10, 100, 1000);
        registry_count(w1, a, 20, 200, 3000);
        registry_count(w1, a, 0, 0, 3000);
        registry_count(w0, u, 1, 1, 0);
        RegistryTotals t;
        registry_entry_totals(a, &t);
        CHECK(t.requests == 3 && t.bytes_in == 30 && t.bytes_out == 300);
        /* Weighted by requests: (1000 * 1 + 3000 * 2) / 3. */
        CHECK(t.latency_usec >= 2300 && t.latency_usec <= 2400);
        CHECK(served(b) == 0 && served(u) == 1);

        registry_in_flight_add(a);
        registry_in_flight_add(a);
        registry_in_flight_sub(a);
        CHECK(registry_in_flight(a) == 1);
        registry_in_flight_sub(a);
        CHECK(atomic_fetch_or(&a->health, HEALTH_DOWN) == 0);

        /* Dropped with its last reference, and fresh when it comes back. */
        registry_entry_unref(a2);
        CHECK(registry_find_node(reg, "up", "127.0.0.1", 80) == a);
        registry_entry_unref(a);
        CHECK(registry_find_node(reg, "up", "127.0.0.1", 80) == NULL && registry_size(reg) == 2);
        CHECK(registry_node(reg, "up", "127.0.0.1", 80, &a) == 0);
        CHECK(served(a) == 0 && atomic_load(&a->health) == 0);

        /* Many entries: slots beyond the first chunk, in every worker. */
        RegistryEntry *many[REGISTRY_CHUNK_SLOTS + 10];
        for (size_t i = 0; i < ELEMENTSOF(many); i++) {
                char name[32];
                snprintf(name, sizeof(name), "r%zu", i);
                CHECK(registry_route(reg, name, &many[i]) == 0);
                registry_count(w1, many[i], 0, 0, 0);
        }
        CHECK(served(many[ELEMENTSOF(many) - 1]) == 1);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                registry_entry_unref(many[i]);

        registry_entry_unref(a);
        registry_entry_unref(b);
        registry_entry_unref(u);
        CHECK(registry_size(reg) == 0);
        registry_free(reg);
}

static Node *node_of(const Model *m, const char *upstream, size_t i)
{
        Upstream *u = model_find_upstream(m, upstream);
        return u && i < u->n_nodes ? &u->nodes[i] : NULL;
}

static void test_reuse(void)
{
        Registry *reg;
        RegistryWorker *w;
        CHECK(registry_new(&reg) == 0);
        CHECK(registry_worker_attach(reg, 0, &w) == 0);

        Model *m1 = build(reg, NULL, config_with(1, "/a/*", true));
        CHECK(m1);
        if (!m1)
                return;
        /* The same configuration again (a reload that changed nothing): everything is the
         * same object. */
        Model *m2 = build(reg, m1, config_with(1, "/a/*", true));
        CHECK(m2);
        for (size_t i = 0; i < m1->n_upstreams; i++)
                CHECK(m2->upstreams[i] == m1->upstreams[i]);
        for (size_t i = 0; i < m1->n_routes; i++)
                CHECK(m2->routes[i] == m1->routes[i]);
        CHECK(m2->router == m1->router);

        /* The balancer's schedule goes on from one model to the next. */
        Upstream *a1 = model_find_upstream(m1, "a");
        Node *n;
        CHECK(upstream_pick_node(a1, NULL, 0, &n) == 0 && n == &a1->nodes[0]);
        CHECK(upstream_pick_node(model_find_upstream(m2, "a"), NULL, 0, &n) == 0 &&
              n == &a1->nodes[1]);

        /* A weight of b changes: b is new, a and c (TLS client and all) are not; the routes
         * over b are new, r1 and r4 are not; the router is shared, as no route matches
         * otherwise. */
        Model *m3 = build(reg, m2, config_with(5, "/a/*", true));
        CHECK(m3);
        Upstream *b2 = model_find_upstream(m2, "b"), *b3 = model_find_upstream(m3, "b");
        CHECK(b3 && b3 != b2 && b3->balancer->weights[1] == 5);
        CHECK(model_find_upstream(m3, "a") == model_find_upstream(m2, "a"));
        Upstream *c3 = model_find_upstream(m3, "c");
        CHECK(c3 == model_find_upstream(m2, "c") && c3->tls);
        CHECK(model_find_route(m3, "r1") == model_find_route(m2, "r1"));
        CHECK(model_find_route(m3, "r4") == model_find_route(m2, "r4"));
        CHECK(model_find_route(m3, "r2") != model_find_route(m2, "r2"));
        CHECK(model_find_route(m3, "r3") != model_find_route(m2, "r3"));
        CHECK(model_find_route(m3, "r3")->targets[1].upstream == b3);
        CHECK(m3->router == m2->router);
        /* r3's weights over a and b did not change: its schedule goes on. */
        CHECK(model_find_route(m3, "r3")->balancer == model_find_route(m2, "r3")->balancer);

        /* b's nodes in both models are the same entries: what one model's requests count and
         * report, the other reads. */
        CHECK(node_of(m3, "b", 0)->state == node_of(m2, "b", 0)->state);
        CHECK(b3->state == b2->state);
        registry_count(w, node_of(m2, "b", 1)->state, 0, 0, 0);
        atomic_store(&node_of(m2, "b", 1)->state->health, HEALTH_DOWN);
        CHECK(served(node_of(m3, "b", 1)->state) == 1);
        CHECK(node_is_down(node_of(m3, "b", 1)));
        /* No active check: a passive success (a trial) brings it back. */
        CHECK(node_health_report(node_of(m3, "b", 1), b3, HEALTH_SOURCE_PASSIVE,
                                 HEALTH_EVENT_SUCCESS) == HEALTH_CAME_UP);
        CHECK(!node_is_down(node_of(m2, "b", 1)));

        /* A route's path changes: the router is built again. */
        Model *m4 = build(reg, m3, config_with(5, "/other/*", true));
        CHECK(m4 && m4->router != m3->router);
        CHECK(model_find_route(m4, "r1") != model_find_route(m3, "r1"));
        CHECK(model_find_upstream(m4, "a") == model_find_upstream(m3, "a"));
        Route *r = router_match(m4->router, m4->routes, (HttpSlice){ "GET", 3 },
                                (HttpSlice){ "x", 1 }, (HttpSlice){ "/other/1", 8 });
        CHECK(r == model_find_route(m4, "r1"));

        /* b's second node goes: its entry stays while a model has it, and comes back fresh. */
        Model *m5 = build(reg, m4, config_with(5, "/other/*", false));
        CHECK(m5 && model_find_upstream(m5, "b")->n_nodes == 1);
        CHECK(registry_find_node(reg, "b", "127.0.0.2", 2) != NULL);
        model_unref(m1);
        model_unref(m2);
        model_unref(m3);
        CHECK(registry_find_node(reg, "b", "127.0.0.2", 2) != NULL);
        model_unref(m4);
        CHECK(registry_find_node(reg, "b", "127.0.0.2", 2) == NULL);
        Model *m6 = build(reg, m5, config_with(5, "/other/*", true));
        CHECK(m6 && served(node_of(m6, "b", 1)->state) == 0);
        CHECK(served(node_of(m6, "b", 0)->state) == 0 && !node_is_down(node_of(m6, "b", 1)));

        model_unref(m5);
        model_unref(m6);
        CHECK(registry_size(reg) == 0);
        registry_free(reg);
}

int main(void)
{
        test_registry();
        test_reuse();
        TEST_MAIN_END();
}
