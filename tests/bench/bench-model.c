/* SPDX-License-Identifier: MIT */
/* What building a model costs: the first one (start-up), one after a SetNodeWeight (the same
 * edit D-Bus makes), and one after a reload that changed nothing. Not a test: it prints times.
 *
 *   build/tests/bench/bench-model [routes [upstreams [runs]]]     (defaults 10000 100 20)
 *
 * The upstreams are https (each with its TLS client; none names a ca_file, so all trust the
 * system store alone), two nodes each; route i goes to upstream i % upstreams. */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/util.h"
#include "config/config-overlay.h"
#include "config/config-tree.h"
#include "lb/model.h"

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *make_yaml(unsigned routes, unsigned upstreams)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                abort();
        fprintf(f, "access_log: false\nlisteners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                   "upstreams:\n");
        for (unsigned i = 0; i < upstreams; i++)
                fprintf(f,
                        "- {name: u%u, scheme: https, tls: {sni: u%u.example}, nodes: "
                        "[{host: 127.0.%u.%u, port: 443}, {host: 127.0.%u.%u, port: 443}]}\n",
                        i, i, 1 + i / 200, 1 + i % 200, 1 + i / 200, 201 + i % 50);
        fprintf(f, "routes:\n");
        for (unsigned i = 0; i < routes; i++)
                fprintf(f, "- {name: r%u, paths: [/route-%u], upstreams: [{name: u%u}]}\n", i, i,
                        i % upstreams);
        if (fclose(f) != 0)
                abort();
        return buf;
}

static Config *load(const char *yaml)
{
        Config *c = NULL;
        char *errors = NULL;
        if (config_load_string("bench.yaml", yaml, strlen(yaml), &errors, &c) < 0) {
                fprintf(stderr, "%s\n", errors ? errors : "cannot load");
                exit(1);
        }
        free(errors);
        return c;
}

static Model *build(Registry *reg, const Model *base, bool reread, Config *c, double *ret_ms)
{
        Model *m = NULL;
        char *error = NULL;
        ModelContext ctx = { .registry = reg, .base = base, .reread_files = reread };
        double t = now_ms();
        if (model_new(c, &ctx, &m, &error) < 0) {
                fprintf(stderr, "model_new: %s\n", error ? error : "failed");
                exit(1);
        }
        *ret_ms = now_ms() - t;
        return m;
}

/* SetNodeWeight(name, host, 443, w), as bus-manager.c makes it: an edit of the upstream's
 * document, read by the loader. */
static int set_node_weight(const Config *c, const char *name, const char *host, unsigned w,
                           Config **ret)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        int r = config_object_document(c, CONFIG_OBJECT_UPSTREAM, name, &t);
        if (r < 0)
                return r;
        ssize_t i = config_upstream_find_node(config_find_upstream(c, name), host, 443);
        if (i < 0)
                return (int)i;
        int nodes = config_tree_get(t, config_tree_root(t), "nodes");
        r = config_tree_set(t, config_tree_item(t, nodes, (size_t)i), "weight",
                            config_tree_add_unsigned(t, w));
        if (r < 0)
                return r;
        ConfigEdit e = { .kind = CONFIG_OBJECT_UPSTREAM, .name = name, .document = t };
        return config_edit_apply(c, &e, ret, NULL);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, unsigned n)
{
        qsort(ms, n, sizeof(double), cmp_double);
        printf("%-44s median %8.3f ms   min %8.3f   max %8.3f   (%u runs)\n", what, ms[n / 2],
               ms[0], ms[n - 1], n);
}

int main(int argc, char **argv)
{
        unsigned routes = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
        unsigned upstreams = argc > 2 ? (unsigned)atoi(argv[2]) : 100;
        unsigned runs = argc > 3 ? (unsigned)atoi(argv[3]) : 20;
        if (routes == 0 || upstreams == 0 || runs == 0)
                return 2;
        double *ms = calloc(runs, sizeof(double)), *edit_ms = calloc(runs, sizeof(double));
        char *yaml = make_yaml(routes, upstreams);
        Registry *reg;
        if (!ms || !edit_ms || registry_new(&reg) < 0)
                return 1;
        printf("%u routes, %u https upstreams of 2 nodes\n", routes, upstreams);

        double t = now_ms();
        Config *c = load(yaml);
        double load_ms = now_ms() - t, first_ms;
        Model *m = build(reg, NULL, false, c, &first_ms);
        printf("%-44s %8.3f ms\n", "load the configuration (YAML)", load_ms);
        printf("%-44s %8.3f ms\n", "first model (start-up)", first_ms);

        for (unsigned i = 0; i < runs; i++) {
                char name[32], host[32];
                unsigned u = (i * 7) % upstreams;
                snprintf(name, sizeof(name), "u%u", u);
                snprintf(host, sizeof(host), "127.0.%u.%u", 1 + u / 200, 1 + u % 200);
                t = now_ms();
                Config *copy = NULL;
                if (set_node_weight(m->config, name, host, 2 + i % 5, &copy) < 0)
                        return 1;
                edit_ms[i] = now_ms() - t;
                Model *next = build(reg, m, false, copy, &ms[i]);
                model_unref(m);
                m = next;
        }
        report("SetNodeWeight: the configuration edited", edit_ms, runs);
        report("SetNodeWeight: the new model built", ms, runs);

        for (unsigned i = 0; i < runs; i++) {
                Config *again = load(yaml);
                Model *next = build(reg, m, true, again, &ms[i]);
                model_unref(m);
                m = next;
        }
        report("reload, nothing changed: the model built", ms, runs);
        for (unsigned i = 0; i < runs; i++) {
                t = now_ms();
                (void)tls_trust_check_system();
                ms[i] = now_ms() - t;
        }
        report("  of which the system trust store looked at", ms, runs);

        for (unsigned i = 0; i < runs && i < 5; i++) {
                Model *fresh = build(reg, NULL, false, config_ref(m->config), &ms[i]);
                model_unref(fresh);
        }
        report("built whole (no base; trust cache warm)", ms, runs < 5 ? runs : 5);

        model_unref(m);
        registry_free(reg);
        free(yaml);
        free(ms);
        free(edit_ms);
        return 0;
}
