/* SPDX-License-Identifier: MIT */
/* The per-worker stats tables (keys, growth, the sweep before a registry slot is reused) and
 * the text a scrape writes from them with a model's names (sums over workers, labels, node
 * labels left out, what the model does not have left out). */
#include "lb/metrics.h"
#include "lb/model.h"
#include "lb/registry.h"
#include "lb/stats.h"
#include "tap.h"

static Config *load(const char *yaml)
{
        Config *c = NULL;
        char *errors = NULL;
        int r = config_load_string("t.yaml", yaml, strlen(yaml), &errors, &c);
        if (r < 0)
                fprintf(stderr, "%s\n", errors ? errors : strerror(-r));
        free(errors);
        return c;
}

static Model *build(Registry *reg, const Model *base, const char *yaml)
{
        Model *m = NULL;
        ModelContext ctx = { .registry = reg, .base = base };
        Config *c = load(yaml);
        if (!c || model_new(c, &ctx, &m, NULL) < 0)
                return NULL;
        return m;
}

static const char YAML_AB[] =
        "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
        "upstreams:\n"
        "- {name: a, nodes: [{host: 127.0.0.1, port: 1}, {host: 127.0.0.1, port: 2, weight: 3}]}\n"
        "- {name: b, nodes: [{host: b.example, port: 80}]}\n"
        "routes:\n"
        "- {name: r1, paths: [/a], upstreams: [{name: a}]}\n"
        "- {name: r2, paths: [/b], upstreams: [{name: b}]}\n";

/* r2 and b's node gone, r1 and a kept. */
static const char YAML_A[] =
        "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
        "upstreams:\n"
        "- {name: a, nodes: [{host: 127.0.0.1, port: 1}, {host: 127.0.0.1, port: 2, weight: 3}]}\n"
        "routes:\n"
        "- {name: r1, paths: [/a], upstreams: [{name: a}]}\n";

static void test_keys(void)
{
        uint64_t k = stats_key(STATS_REQUESTS, 5, 7 | STATS_B_UPSTREAM, 503);
        CHECK(stats_key_kind(k) == STATS_REQUESTS);
        CHECK(stats_key_a(k) == 5);
        CHECK(stats_key_b(k) == (7 | STATS_B_UPSTREAM));
        CHECK(stats_key_code(k) == 503);
        /* The largest slot the registry hands out, + 1, with the flag. */
        uint32_t big = REGISTRY_CHUNK_SLOTS * REGISTRY_MAX_CHUNKS;
        k = stats_key(STATS_LISTENER, big, big | STATS_B_UPSTREAM, 0);
        CHECK(stats_key_kind(k) == STATS_LISTENER);
        CHECK(stats_key_a(k) == big);
        CHECK(stats_key_b(k) == (big | STATS_B_UPSTREAM));
}

static void sum_requests(uint64_t key, const atomic_uint_fast64_t *cells, void *userdata)
{
        uint64_t *sum = userdata;
        if (stats_key_kind(key) == STATS_REQUESTS)
                *sum += atomic_load(&cells[0]);
}

static void test_table(void)
{
        StatsBuckets b;
        stats_buckets_default(&b);
        CHECK(b.n == 16 && b.bound_usec[0] == 500 && b.bound_usec[15] == 60000000);

        StatsTable t;
        CHECK(stats_table_init(&t, &b) == 0);
        /* Enough keys to grow a few times; each cell keeps its count through the growth. */
        for (unsigned round = 0; round < 3; round++)
                for (uint32_t i = 1; i <= 1000; i++) {
                        atomic_uint_fast64_t *c = stats_table_get(&t, stats_key(STATS_REQUESTS,
                                                                                i, i, 200));
                        CHECK(c != NULL);
                        if (c)
                                stats_add(c, 0, 1);
                }
        uint64_t sum = 0;
        stats_table_foreach(&t, sum_requests, &sum);
        CHECK(sum == 3000);
        CHECK(t.used == 1000 && t.cap >= 2000);

        /* A histogram: a sample on a bound is in that bucket; above the last, in +Inf. */
        atomic_uint_fast64_t *h = stats_table_get(&t, stats_key(STATS_ROUTE, 1, 1, 0));
        stats_observe(&b, h, 2, 500);
        stats_observe(&b, h, 2, 501);
        stats_observe(&b, h, 2, 61000000);
        CHECK(atomic_load(&h[2 + 0]) == 1);
        CHECK(atomic_load(&h[2 + 1]) == 1);
        CHECK(atomic_load(&h[2 + 16]) == 1);
        CHECK(atomic_load(&h[2 + 17]) == 500 + 501 + 61000000);

        /* Forgetting slot 4 (keys name it as 5) zeroes keys that name it as a or b, no other. */
        uint64_t dropped[1] = { UINT64_C(1) << 4 };
        stats_table_forget(&t, dropped, 64);
        CHECK(atomic_load(&stats_table_get(&t, stats_key(STATS_REQUESTS, 5, 5, 200))[0]) == 0);
        CHECK(atomic_load(&stats_table_get(&t, stats_key(STATS_REQUESTS, 6, 6, 200))[0]) == 3);
        stats_table_done(&t);
}

static void test_slot_reuse_sweeps(void)
{
        Registry *reg;
        RegistryWorker *w;
        CHECK(registry_new(&reg) == 0);
        CHECK(registry_worker_attach(reg, 0, &w) == 0);
        RegistryEntry *e;
        CHECK(registry_route(reg, "gone", &e) == 0);
        uint32_t slot = e->slot;
        stats_add(stats_table_get(&w->stats, stats_key(STATS_REQUESTS, slot + 1, 0, 200)), 0, 9);
        registry_entry_unref(e);
        /* The next entry takes the slot, and finds nothing counted under it. */
        CHECK(registry_route(reg, "new", &e) == 0);
        CHECK(e->slot == slot);
        CHECK(atomic_load(&stats_table_get(&w->stats,
                                           stats_key(STATS_REQUESTS, slot + 1, 0, 200))[0]) == 0);
        registry_entry_unref(e);
        registry_free(reg);
}

static size_t count(const char *text, const char *s)
{
        size_t n = 0;
        for (const char *p = text; p && (p = strstr(p, s)); p++)
                n++;
        return n;
}

static const Node *node_of(const Model *m, const char *upstream, size_t i)
{
        return &model_find_upstream(m, upstream)->nodes[i];
}

static char *scrape(const Model *m, Registry *reg, bool node_labels)
{
        static const char *const listeners[] = { "web" };
        MetricsInput in = { .model = m, .registry = reg, .listeners = listeners,
                            .n_listeners = 1, .node_labels = node_labels };
        MetricsText t = {};
        CHECK(metrics_write(&in, &t) == 0);
        return t.buf;
}

static void test_scrape(void)
{
        Registry *reg;
        RegistryWorker *w[2];
        CHECK(registry_new(&reg) == 0);
        StatsBuckets b = { .bound_usec = { 1000, 500000, 2000000 }, .n = 3 };
        registry_set_buckets(reg, &b);
        CHECK(registry_worker_attach(reg, 0, &w[0]) == 0);
        CHECK(registry_worker_attach(reg, 1, &w[1]) == 0);
        Model *m = build(reg, NULL, YAML_AB);
        CHECK(m != NULL);
        if (!m)
                return;
        uint32_t r1 = model_find_route(m, "r1")->state->slot + 1;
        uint32_t r2 = model_find_route(m, "r2")->state->slot + 1;
        uint32_t a = model_find_upstream(m, "a")->state->slot + 1;
        uint32_t b_up = model_find_upstream(m, "b")->state->slot + 1;
        uint32_t a1 = node_of(m, "a", 0)->state->slot + 1;
        uint32_t a2 = node_of(m, "a", 1)->state->slot + 1;
        uint32_t bn = node_of(m, "b", 0)->state->slot + 1;

        /* Both workers count; the scrape sums them. */
        for (int i = 0; i < 2; i++) {
                stats_add(stats_table_get(&w[i]->stats, stats_key(STATS_REQUESTS, r1, a1, 200)),
                          0, 10);
                stats_add(stats_table_get(&w[i]->stats, stats_key(STATS_REQUESTS, r1, a2, 200)),
                          0, 1);
                stats_add(stats_table_get(&w[i]->stats,
                                          stats_key(STATS_REQUESTS, r1, a | STATS_B_UPSTREAM,
                                                    502)),
                          0, 2);
                stats_add(stats_table_get(&w[i]->stats, stats_key(STATS_REQUESTS, r2, bn, 404)),
                          0, 3);
                stats_add(stats_table_get(&w[i]->stats, stats_key(STATS_REQUESTS, 0, 0, 400)), 0,
                          1);
                atomic_uint_fast64_t *h = stats_table_get(&w[i]->stats,
                                                          stats_key(STATS_ROUTE, r1, a, 0));
                stats_add(h, 0, 100);
                stats_add(h, 1, 1000);
                stats_observe(&b, h, 2, 700);     /* 0.0007 s */
                stats_observe(&b, h, 2, 1500000); /* 1.5 s */
                atomic_uint_fast64_t *n = stats_table_get(&w[i]->stats,
                                                          stats_key(STATS_NODE, 0, a1, 0));
                stats_add(n, STATS_NODE_OPENED, 1);
                stats_observe(&b, n, STATS_NODE_HISTOGRAMS, 300);
                stats_add(stats_table_get(&w[i]->stats, stats_key(STATS_NODE, 0, a2, 0)),
                          STATS_NODE_FAILED, 1);
        }
        stats_add(stats_table_get(&w[0]->stats, stats_key(STATS_LISTENER, 1, 0, 0)),
                  STATS_LISTENER_ACCEPTED, 5);
        stats_add(stats_table_get(&w[1]->stats, stats_key(STATS_LISTENER, 1, 0, 0)),
                  STATS_LISTENER_CLOSED, 3);
        stats_add(stats_table_get(&w[1]->stats, stats_key(STATS_LISTENER, 1, b_up, 0)),
                  STATS_LISTENER_SESSIONS, 4);

        char *text = scrape(m, reg, true);
        static const char *const want[] = {
                "# TYPE lbproxy_http_requests_total counter\n",
                "lbproxy_http_requests_total{route=\"r1\",upstream=\"a\",node=\"127.0.0.1:1\","
                "code=\"200\"} 20\n",
                "lbproxy_http_requests_total{route=\"r1\",upstream=\"a\",node=\"127.0.0.1:2\","
                "code=\"200\"} 2\n",
                "lbproxy_http_requests_total{route=\"r1\",upstream=\"a\",node=\"\",code=\"502\"} 4\n",
                "lbproxy_http_requests_total{route=\"r2\",upstream=\"b\",node=\"b.example:80\","
                "code=\"404\"} 6\n",
                "lbproxy_http_requests_total{route=\"\",upstream=\"\",node=\"\",code=\"400\"} 2\n",
                "# TYPE lbproxy_http_request_duration_seconds histogram\n",
                "lbproxy_http_request_duration_seconds_bucket{route=\"r1\",upstream=\"a\","
                "le=\"0.001\"} 2\n",
                "lbproxy_http_request_duration_seconds_bucket{route=\"r1\",upstream=\"a\","
                "le=\"0.5\"} 2\n",
                "lbproxy_http_request_duration_seconds_bucket{route=\"r1\",upstream=\"a\","
                "le=\"2\"} 4\n",
                "lbproxy_http_request_duration_seconds_bucket{route=\"r1\",upstream=\"a\","
                "le=\"+Inf\"} 4\n",
                "lbproxy_http_request_duration_seconds_sum{route=\"r1\",upstream=\"a\"} 3.001400\n",
                "lbproxy_http_request_duration_seconds_count{route=\"r1\",upstream=\"a\"} 4\n",
                "lbproxy_http_request_bytes_total{route=\"r1\",upstream=\"a\"} 200\n",
                "lbproxy_http_response_bytes_total{route=\"r1\",upstream=\"a\"} 2000\n",
                "lbproxy_upstream_response_duration_seconds_count{upstream=\"a\","
                "node=\"127.0.0.1:1\"} 2\n",
                "lbproxy_upstream_connections_opened_total{upstream=\"a\",node=\"127.0.0.1:1\"} 2\n",
                "lbproxy_upstream_health_checks_total{upstream=\"a\",node=\"127.0.0.1:2\","
                "outcome=\"failure\"} 2\n",
                "lbproxy_client_connections_total{listener=\"web\"} 5\n",
                "lbproxy_client_connections_open{listener=\"web\"} 2\n",
                "lbproxy_stream_sessions_total{listener=\"web\",upstream=\"b\"} 4\n",
                "lbproxy_upstream_node_up{upstream=\"a\",node=\"127.0.0.1:2\"} 1\n",
                "lbproxy_upstream_node_weight{upstream=\"a\",node=\"127.0.0.1:2\"} 3\n",
                "lbproxy_upstream_node_in_flight{upstream=\"b\",node=\"b.example:80\"} 0\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                if (!text || !strstr(text, want[i])) {
                        fprintf(stderr, "missing: %s", want[i]);
                        tap_failures++;
                }
        /* A family with two series of its own labels has one header. */
        CHECK(count(text, "# TYPE lbproxy_upstream_health_checks_total") == 1);
        CHECK(count(text, "# TYPE lbproxy_stream_bytes_total") == 1);
        free(text);

        /* Without node labels: per upstream, the nodes summed, lbproxy's own answers with them. */
        text = scrape(m, reg, false);
        CHECK(text && !strstr(text, "node=\""));
        CHECK(text && strstr(text, "lbproxy_http_requests_total{route=\"r1\",upstream=\"a\","
                                   "code=\"200\"} 22\n"));
        CHECK(text && strstr(text, "lbproxy_upstream_node_weight{upstream=\"a\"} 4\n"));
        CHECK(text && strstr(text, "lbproxy_upstream_node_up{upstream=\"a\"} 2\n"));
        CHECK(text && strstr(text, "lbproxy_upstream_connections_opened_total{upstream=\"a\"} 2\n"));
        free(text);

        /* r2 and b removed: gone from the output; r1's counts as they were. */
        Model *next = build(reg, m, YAML_A);
        CHECK(next != NULL);
        text = next ? scrape(next, reg, true) : NULL;
        CHECK(text && !strstr(text, "route=\"r2\""));
        CHECK(text && !strstr(text, "upstream=\"b\""));
        CHECK(text && strstr(text, "lbproxy_http_requests_total{route=\"r1\",upstream=\"a\","
                                   "node=\"127.0.0.1:1\",code=\"200\"} 20\n"));
        free(text);
        model_unref(m);
        model_unref(next);
        registry_free(reg);
}

int main(void)
{
        test_keys();
        test_table();
        test_slot_reuse_sweeps();
        test_scrape();
        TEST_MAIN_END();
}
