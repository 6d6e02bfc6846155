/* SPDX-License-Identifier: MIT */
/* What active health checks cost: N nodes (127.0.x.y, one port) probed every second by the
 * prober thread, for a while; prints the CPU time of that thread (/proc/self/task/<tid>/stat)
 * as a share of one core. Run by health-probes.py against nginx; not a test.
 *
 *   bench-health-probes PORT tcp|http NODES SECONDS */
#include <dirent.h>
#include <unistd.h>

#include "lb/health.h"
#include "lb/model.h"
#include "lb/publisher.h"
#include "proxy/health-probe.h"

/* utime + stime of the thread named `name`, in clock ticks; -1 when none. */
static long thread_ticks(const char *name)
{
        DIR *d = opendir("/proc/self/task");
        if (!d)
                return -1;
        long ticks = -1;
        struct dirent *e;
        while ((e = readdir(d))) {
                char path[300], comm[64] = "", stat[1024];
                snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                if (!fgets(comm, sizeof(comm), f))
                        comm[0] = 0;
                fclose(f);
                comm[strcspn(comm, "\n")] = 0;
                if (!streq(comm, name))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
                f = fopen(path, "re");
                if (!f || !fgets(stat, sizeof(stat), f)) {
                        if (f)
                                fclose(f);
                        continue;
                }
                fclose(f);
                /* After the command's closing parenthesis: state is field 3, utime 14. */
                const char *p = strrchr(stat, ')');
                unsigned long ut = 0, st = 0;
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                &ut, &st) == 2)
                        ticks = (long)(ut + st);
        }
        closedir(d);
        return ticks;
}

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr, "usage: %s PORT tcp|http NODES SECONDS\n", argv[0]);
                return 2;
        }
        unsigned port = (unsigned)atoi(argv[1]), n = (unsigned)atoi(argv[3]);
        unsigned seconds = (unsigned)atoi(argv[4]);
        bool http = streq(argv[2], "http");

        char *yaml = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&yaml, &len);
        fprintf(f, "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                   "upstreams:\n- name: a\n  nodes:\n");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "  - {host: 127.0.%u.%u, port: %u}\n", 1 + i / 250, 1 + i % 250,
                        port);
        fprintf(f, "routes: [{name: r, paths: [/*], upstreams: [{name: a}]}]\n");
        fclose(f);
        Config *c = NULL;
        char *errors = NULL;
        if (config_load_string("bench.yaml", yaml, len, &errors, &c) < 0) {
                fprintf(stderr, "%s\n", errors);
                return 1;
        }
        free(yaml);
        ConfigHealthActive *a = &c->upstreams[0]->health_check.active;
        *a = (ConfigHealthActive){
                .enabled = true,
                .type = http ? HEALTH_CHECK_HTTP : HEALTH_CHECK_TCP,
                .http_path = (char *)"/status",
                .timeout_usec = USEC_PER_SEC,
                .concurrency = 256,
                .verify = 1,
                .healthy = { .interval_usec = USEC_PER_SEC, .successes = 2 },
                .unhealthy = { .interval_usec = USEC_PER_SEC, .http_failures = 5,
                               .tcp_failures = 2, .timeouts = 3 },
        };
        unsigned ok = 200 - HEALTH_STATUS_MIN;
        a->healthy.http_statuses.bits[ok / 64] |= UINT64_C(1) << (ok % 64);

        Registry *reg = NULL;
        Model *m = NULL;
        ModelContext ctx = { .registry = NULL };
        if (registry_new(&reg) < 0)
                return 1;
        ctx.registry = reg;
        if (model_new(c, &ctx, &m, NULL) < 0)
                return 1;
        ModelPublisher pub;
        model_publisher_init(&pub);
        model_publisher_set(&pub, model_ref(m));
        HealthProber *p = NULL;
        HealthProberOptions o = { .models = &pub, .log_queue = -1 };
        if (health_prober_start(&o, &p) < 0)
                return 1;

        /* The first second spreads the first probes; measured after it. */
        sleep(2);
        long t0 = thread_ticks("lbproxy-probe");
        uint64_t w0 = now_usec(CLOCK_MONOTONIC);
        sleep(seconds);
        long t1 = thread_ticks("lbproxy-probe");
        uint64_t w1 = now_usec(CLOCK_MONOTONIC);
        double cpu = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK);
        double wall = (double)(w1 - w0) / USEC_PER_SEC;
        size_t down = 0;
        for (size_t i = 0; i < m->upstreams[0]->n_nodes; i++)
                down += node_is_down(&m->upstreams[0]->nodes[i]);
        printf("{\"type\": \"%s\", \"nodes\": %u, \"seconds\": %.2f, \"cpu_seconds\": %.3f, "
               "\"core_percent\": %.2f, \"nodes_down\": %zu}\n",
               argv[2], n, wall, cpu, 100.0 * cpu / wall, down);
        health_prober_stop(p);
        model_publisher_done(&pub);
        model_unref(m);
        registry_free(reg);
        return 0;
}
