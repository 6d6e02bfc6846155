/* SPDX-License-Identifier: MIT */
/* What a change over D-Bus costs the configuration layer, with 10,000 routes and 100 https
 * upstreams of 2 nodes: the time from the method's arguments to the new, checked Config (the
 * object's document, the edit, the loader, the checks over the whole), for SetNodeWeight,
 * AddNode and AddRoute; beside it, loading the files and dumping the state. The model and the
 * state write come after (manager.c). `meson test -C build --benchmark` runs it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "config/config-overlay.h"
#include "config/config-tree.h"
#include "config/config.h"
#include "config/state.h"

#define ROUTES 10000
#define UPSTREAMS 100
#define RUNS 200

static char *make_yaml(void)
{
        size_t size = 0;
        char *text = NULL;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return NULL;
        fprintf(f, "listeners: [{name: http, listen: \"127.0.0.1:8080\"}]\nupstreams:\n");
        for (int i = 0; i < UPSTREAMS; i++)
                fprintf(f,
                        "  - {name: u%d, scheme: https, pass_host: rewrite, upstream_host: "
                        "u%d.example, tls: {sni: u%d.example}, nodes: [{host: 10.0.%d.1, "
                        "port: 443}, {host: 10.0.%d.2, port: 443}]}\n",
                        i, i, i, i, i);
        fprintf(f, "routes:\n");
        for (int i = 0; i < ROUTES; i++)
                fprintf(f, "  - {name: r%d, paths: [/route-%d], upstreams: [{name: u%d}]}\n", i, i,
                        i % UPSTREAMS);
        fclose(f);
        return text;
}

static int compare(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *usec, size_t n)
{
        qsort(usec, n, sizeof(uint64_t), compare);
        printf("%-28s median %6.3f ms  p99 %6.3f ms  max %6.3f ms  (%zu runs)\n", what,
               usec[n / 2] / 1000.0, usec[n * 99 / 100] / 1000.0, usec[n - 1] / 1000.0, n);
}

/* SetNodeWeight("uK", "10.0.K.1", 443, w), as bus-manager.c does it. */
static int set_node_weight(const Config *c, int k, unsigned w, Config **ret)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        char name[16], host[32];
        ssize_t i;
        int r;

        snprintf(name, sizeof(name), "u%d", k);
        snprintf(host, sizeof(host), "10.0.%d.1", k);
        r = config_object_document(c, CONFIG_OBJECT_UPSTREAM, name, &t);
        if (r < 0)
                return r;
        i = config_upstream_find_node(config_find_upstream(c, name), host, 443);
        if (i < 0)
                return (int)i;
        r = config_tree_set(
                t, config_tree_item(t, config_tree_get(t, config_tree_root(t), "nodes"), (size_t)i),
                "weight", config_tree_add_unsigned(t, w));
        if (r < 0)
                return r;
        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .name = name, .document = t};
        return config_edit_apply(c, &e, ret, NULL);
}

static int add_node(const Config *c, int k, int n, Config **ret)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        char name[16], host[32];
        int r, node;

        snprintf(name, sizeof(name), "u%d", k);
        snprintf(host, sizeof(host), "10.1.%d.%d", k, n);
        r = config_object_document(c, CONFIG_OBJECT_UPSTREAM, name, &t);
        if (r < 0)
                return r;
        node = config_tree_add_mapping(t);
        r = config_tree_set(t, node, "host", config_tree_add_string(t, host));
        if (r >= 0)
                r = config_tree_set(t, node, "port", config_tree_add_unsigned(t, 443));
        if (r >= 0)
                r = config_tree_append(t, config_tree_get(t, config_tree_root(t), "nodes"), node);
        if (r < 0)
                return r;
        ConfigEdit e = {.kind = CONFIG_OBJECT_UPSTREAM, .name = name, .document = t};
        return config_edit_apply(c, &e, ret, NULL);
}

static int add_route(const Config *c, int n, Config **ret)
{
        _cleanup_(config_tree_freep) ConfigTree *t = NULL;
        char name[32], path[32];
        int r, root, paths, ups, ru;

        snprintf(name, sizeof(name), "new%d", n);
        snprintf(path, sizeof(path), "/new-%d", n);
        r = config_tree_new(&t);
        if (r < 0)
                return r;
        root = config_tree_root(t);
        paths = config_tree_add_sequence(t);
        ups = config_tree_add_sequence(t);
        ru = config_tree_add_mapping(t);
        r = config_tree_set(t, root, "name", config_tree_add_string(t, name));
        if (r >= 0)
                r = config_tree_append(t, paths, config_tree_add_string(t, path));
        if (r >= 0)
                r = config_tree_set(t, root, "paths", paths);
        if (r >= 0)
                r = config_tree_set(t, ru, "name", config_tree_add_string(t, "u1"));
        if (r >= 0)
                r = config_tree_append(t, ups, ru);
        if (r >= 0)
                r = config_tree_set(t, root, "upstreams", ups);
        if (r < 0)
                return r;
        ConfigEdit e = {.kind = CONFIG_OBJECT_ROUTE, .document = t};
        return config_edit_apply(c, &e, ret, NULL);
}

int main(void)
{
        _cleanup_free_ char *yaml = make_yaml();
        static uint64_t usec[RUNS];
        Config *c = NULL;
        uint64_t t0;
        int failed = 0;

        if (!yaml)
                return 1;
        t0 = now_usec(CLOCK_MONOTONIC);
        if (config_load_string("bench.yaml", yaml, strlen(yaml), NULL, &c) < 0)
                return 1;
        printf("%d routes, %d upstreams: loading the files %.1f ms\n", ROUTES, UPSTREAMS,
               (now_usec(CLOCK_MONOTONIC) - t0) / 1000.0);

        {
                FILE *f = fopen("/dev/null", "we");

                t0 = now_usec(CLOCK_MONOTONIC);
                if (!f || config_dump(c, f) < 0)
                        failed++;
                if (f)
                        fclose(f);
                printf("dumping the state (the writer thread's work): %.1f ms\n",
                       (now_usec(CLOCK_MONOTONIC) - t0) / 1000.0);
        }

        /* Each change starts from the last one's Config, as they do over D-Bus. */
        for (int i = 0; i < RUNS; i++) {
                Config *n = NULL;

                t0 = now_usec(CLOCK_MONOTONIC);
                failed += set_node_weight(c, i % UPSTREAMS, 1 + (unsigned)i % 5, &n) < 0;
                usec[i] = now_usec(CLOCK_MONOTONIC) - t0;
                config_unref(c);
                c = n;
                if (!c)
                        return 1;
        }
        report("SetNodeWeight to new Config", usec, RUNS);

        for (int i = 0; i < RUNS; i++) {
                Config *n = NULL;

                t0 = now_usec(CLOCK_MONOTONIC);
                failed += add_node(c, i % UPSTREAMS, i, &n) < 0;
                usec[i] = now_usec(CLOCK_MONOTONIC) - t0;
                config_unref(c);
                c = n;
                if (!c)
                        return 1;
        }
        report("AddNode to new Config", usec, RUNS);

        for (int i = 0; i < RUNS; i++) {
                Config *n = NULL;

                t0 = now_usec(CLOCK_MONOTONIC);
                failed += add_route(c, i, &n) < 0;
                usec[i] = now_usec(CLOCK_MONOTONIC) - t0;
                config_unref(c);
                c = n;
                if (!c)
                        return 1;
        }
        report("AddRoute to new Config", usec, RUNS);

        /* The state writer's work: the first time every object's text, then what changed. */
        {
                char dir[] = "/tmp/bench-config-change.XXXXXX";
                _cleanup_free_ char *path = NULL;
                StateFile *sf = NULL;

                if (!mkdtemp(dir) || state_file_new(dir, &sf) < 0)
                        return 1;
                t0 = now_usec(CLOCK_MONOTONIC);
                failed += state_file_save(sf, c) < 0;
                printf("writing the state, first time: %.1f ms (write, fsync, rename in %s)\n",
                       (now_usec(CLOCK_MONOTONIC) - t0) / 1000.0, dir);
                for (int i = 0; i < 50; i++) {
                        Config *n = NULL;

                        failed += set_node_weight(c, i % UPSTREAMS, 7, &n) < 0;
                        config_unref(c);
                        c = n;
                        if (!c)
                                return 1;
                        t0 = now_usec(CLOCK_MONOTONIC);
                        failed += state_file_save(sf, c) < 0;
                        usec[i] = now_usec(CLOCK_MONOTONIC) - t0;
                }
                report("writing the state after one", usec, 50);
                state_file_free(sf);
                if (state_path(dir, &path) >= 0)
                        unlink(path);
                rmdir(dir);
        }

        config_unref(c);
        return failed ? 1 : 0;
}
