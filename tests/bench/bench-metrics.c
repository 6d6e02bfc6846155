/* SPDX-License-Identifier: MIT */
/* What a scrape costs (#16: 1,000 nodes and 100 routes in at most 50 ms): a model of `routes`
 * routes over `upstreams` upstreams of `nodes` nodes each (route i to upstream i % upstreams),
 * `workers` workers' stats tables filled as if every route had had requests answered by every
 * node of its upstream (status 200, and a 502 of lbproxy's per route), each node connected to
 * and timed, and every listener used; then metrics_write() timed. Not a test: it prints times.
 *
 *   build/tests/bench/bench-metrics [routes [upstreams [nodes [workers [runs]]]]]
 *                                                        (defaults 100 10 100 2 20) */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/util.h"
#include "config/config.h"
#include "lb/metrics.h"
#include "lb/model.h"
#include "lb/stats.h"

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *make_yaml(unsigned routes, unsigned upstreams, unsigned nodes)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                abort();
        fprintf(f, "access_log: false\nlisteners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                   "upstreams:\n");
        for (unsigned i = 0; i < upstreams; i++) {
                fprintf(f, "- name: u%u\n  nodes:\n", i);
                for (unsigned k = 0; k < nodes; k++)
                        fprintf(f, "  - {host: 127.%u.%u.%u, port: 8080}\n", 1 + i,
                                1 + k / 200, 1 + k % 200);
        }
        fprintf(f, "routes:\n");
        for (unsigned i = 0; i < routes; i++)
                fprintf(f, "- {name: r%u, paths: [/route-%u], upstreams: [{name: u%u}]}\n", i, i,
                        i % upstreams);
        if (fclose(f) != 0)
                abort();
        return buf;
}

static void count(RegistryWorker *w, uint64_t key, size_t cell, uint64_t n)
{
        atomic_uint_fast64_t *c = stats_table_get(&w->stats, key);
        if (!c)
                abort();
        stats_add(c, cell, n);
}

static void observe(RegistryWorker *w, const StatsBuckets *b, uint64_t key, size_t at,
                    uint64_t usec)
{
        atomic_uint_fast64_t *c = stats_table_get(&w->stats, key);
        if (!c)
                abort();
        stats_observe(b, c, at, usec);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        unsigned routes = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
        unsigned upstreams = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
        unsigned nodes = argc > 3 ? (unsigned)atoi(argv[3]) : 100;
        unsigned workers = argc > 4 ? (unsigned)atoi(argv[4]) : 2;
        unsigned runs = argc > 5 ? (unsigned)atoi(argv[5]) : 20;
        if (!routes || !upstreams || !nodes || !workers || !runs || nodes > 40000)
                return 2;

        char *yaml = make_yaml(routes, upstreams, nodes), *errors = NULL;
        Config *c = NULL;
        Registry *reg;
        if (config_load_string("bench.yaml", yaml, strlen(yaml), &errors, &c) < 0) {
                fprintf(stderr, "%s\n", errors ? errors : "cannot load");
                return 1;
        }
        if (registry_new(&reg) < 0)
                return 1;
        RegistryWorker **w = calloc(workers, sizeof(*w));
        for (unsigned i = 0; i < workers; i++)
                if (!w || registry_worker_attach(reg, i, &w[i]) < 0)
                        return 1;
        Model *m = NULL;
        ModelContext ctx = { .registry = reg };
        if (model_new(c, &ctx, &m, NULL) < 0)
                return 1;
        const StatsBuckets *b = registry_buckets(reg);

        size_t series = 0;
        for (unsigned i = 0; i < workers; i++) {
                for (size_t r = 0; r < m->n_routes; r++) {
                        const Route *route = m->routes[r];
                        const Upstream *u = route->targets[0].upstream;
                        uint32_t rs = route->state->slot + 1, us = u->state->slot + 1;
                        for (size_t k = 0; k < u->n_nodes; k++) {
                                uint32_t ns = u->nodes[k].state->slot + 1;
                                count(w[i], stats_key(STATS_REQUESTS, rs, ns, 200), 0, 7);
                                observe(w[i], b, stats_key(STATS_ROUTE, rs, us, 0), 2,
                                        1000 + 37 * k);
                        }
                        count(w[i], stats_key(STATS_REQUESTS, rs, us | STATS_B_UPSTREAM, 502),
                              0, 1);
                }
                for (size_t x = 0; x < m->n_upstreams; x++) {
                        const Upstream *u = m->upstreams[x];
                        for (size_t k = 0; k < u->n_nodes; k++) {
                                uint64_t key = stats_key(STATS_NODE, 0,
                                                         u->nodes[k].state->slot + 1, 0);
                                count(w[i], key, STATS_NODE_OPENED, 1);
                                observe(w[i], b, key, STATS_NODE_HISTOGRAMS, 900 + 11 * k);
                                observe(w[i], b, key,
                                        STATS_NODE_HISTOGRAMS + stats_histogram_cells(b), 300);
                        }
                }
                count(w[i], stats_key(STATS_LISTENER, 1, 0, 0), STATS_LISTENER_ACCEPTED, 5);
        }
        series = m->n_routes * (nodes + 1) + m->n_routes + 2 * upstreams * nodes;

        const char *listeners[] = { "web" };
        MetricsInput in = { .model = m, .registry = reg, .listeners = listeners,
                            .n_listeners = 1, .node_labels = true };
        double *ms = calloc(runs, sizeof(double));
        size_t bytes = 0;
        for (unsigned i = 0; i < runs; i++) {
                MetricsText text = {};
                double t = now_ms();
                if (metrics_write(&in, &text) < 0)
                        return 1;
                ms[i] = now_ms() - t;
                bytes = text.len;
                metrics_text_done(&text);
        }
        qsort(ms, runs, sizeof(double), cmp_double);
        printf("%zu routes, %zu upstreams, %zu nodes, %u workers: ~%zu series with counts, "
               "%zu bytes of text\n",
               m->n_routes, m->n_upstreams, (size_t)upstreams * nodes, workers, series, bytes);
        printf("scrape (metrics_write): median %.3f ms   min %.3f   max %.3f   (%u runs)\n",
               ms[runs / 2], ms[0], ms[runs - 1], runs);

        model_unref(m);
        registry_free(reg);
        free(w);
        free(ms);
        free(yaml);
        free(errors);
        return 0;
}
