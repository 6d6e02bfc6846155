/* SPDX-License-Identifier: MIT */
/* What active health checks cost: N nodes (127.0.x.y, one port) probed every second by the
 * prober thread, for a while; prints the CPU time of that thread (/proc/self/task/<tid>/stat)
 * as a share of one core, and how often it was put on a CPU (its wake-ups) and how long it
 * waited for one, from /proc/self/task/<tid>/schedstat. Run by health-probes.py against nginx;
 * not a test.
 *
 *   bench-health-probes PORT tcp|http|https NODES SECONDS [PREFIX]
 *
 * PREFIX is the nodes' first two octets (default 127.0): 10.77 probes 10.77.1.1 and on, for
 * nodes in another network namespace. */
#include <dirent.h>
#include <unistd.h>

#include "lb/health.h"
#include "lb/model.h"
#include "lb/publisher.h"
#include "proxy/health-probe.h"

typedef struct ThreadTimes {
        unsigned long utime, stime; /* clock ticks: sampled, user and kernel apart */
        unsigned long long runtime_ns; /* schedstat: exact, both together */
        unsigned long long waited_ns;  /* schedstat: runnable, waiting for a CPU */
        unsigned long long slices;     /* schedstat: times it was put on a CPU (wake-ups) */
} ThreadTimes;

static bool read_line(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        bool ok = fgets(buf, (int)size, f) != NULL;
        fclose(f);
        return ok;
}

/* The times of the thread named `name`; false when there is none. */
static bool thread_times(const char *name, ThreadTimes *ret)
{
        DIR *d = opendir("/proc/self/task");
        if (!d)
                return false;
        bool found = false;
        struct dirent *e;
        while (!found && (e = readdir(d))) {
                char path[300], comm[64] = "", stat[1024], sched[256];
                snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
                if (!read_line(path, comm, sizeof(comm)))
                        continue;
                comm[strcspn(comm, "\n")] = 0;
                if (!streq(comm, name))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
                if (!read_line(path, stat, sizeof(stat)))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
                if (!read_line(path, sched, sizeof(sched)))
                        continue;
                /* After the command's closing parenthesis: state is field 3, utime 14. */
                const char *p = strrchr(stat, ')');
                found = p &&
                        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                               &ret->utime, &ret->stime) == 2 &&
                        sscanf(sched, "%llu %llu %llu", &ret->runtime_ns, &ret->waited_ns,
                               &ret->slices) == 3;
        }
        closedir(d);
        return found;
}

int main(int argc, char **argv)
{
        if (argc != 5 && argc != 6) {
                fprintf(stderr, "usage: %s PORT tcp|http|https NODES SECONDS [PREFIX]\n",
                        argv[0]);
                return 2;
        }
        unsigned port = (unsigned)atoi(argv[1]), n = (unsigned)atoi(argv[3]);
        unsigned seconds = (unsigned)atoi(argv[4]);
        bool https = streq(argv[2], "https"), http = https || streq(argv[2], "http");
        const char *prefix = argc > 5 ? argv[5] : "127.0";

        char *yaml = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&yaml, &len);
        fprintf(f, "listeners: [{name: web, listen: \"127.0.0.1:1\"}]\n"
                   "upstreams:\n- name: a\n  nodes:\n");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "  - {host: %s.%u.%u, port: %u}\n", prefix, 1 + i / 250,
                        1 + i % 250, port);
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
        /* The config frees what it holds: the path is the heap's too. */
        free(a->http_path);
        free(a->host);
        strv_free(a->headers);
        *a = (ConfigHealthActive){
                .enabled = true,
                .type = https ? HEALTH_CHECK_HTTPS : http ? HEALTH_CHECK_HTTP : HEALTH_CHECK_TCP,
                .http_path = strdup("/status"),
                .timeout_usec = USEC_PER_SEC,
                .concurrency = 256,
                .verify = https ? 0 : 1, /* nginx's certificate is made for the run */
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
        ThreadTimes t0, t1;
        if (!thread_times("lbproxy-probe", &t0))
                return 1;
        uint64_t w0 = now_usec(CLOCK_MONOTONIC);
        sleep(seconds);
        if (!thread_times("lbproxy-probe", &t1))
                return 1;
        uint64_t w1 = now_usec(CLOCK_MONOTONIC);
        double wall = (double)(w1 - w0) / USEC_PER_SEC;
        double cpu = (double)(t1.runtime_ns - t0.runtime_ns) / 1e9;
        /* Ticks split the exact time into user and kernel (softirqs run on the thread
         * included: this kernel does not account them apart). */
        double ticks = (double)(t1.utime - t0.utime + t1.stime - t0.stime);
        double user_share = ticks > 0 ? (double)(t1.utime - t0.utime) / ticks : 0;
        size_t down = 0;
        for (size_t i = 0; i < m->upstreams[0]->n_nodes; i++)
                down += node_is_down(&m->upstreams[0]->nodes[i]);
        printf("{\"type\": \"%s\", \"nodes\": %u, \"seconds\": %.2f, \"cpu_seconds\": %.3f, "
               "\"core_percent\": %.2f, \"user_percent\": %.2f, \"kernel_percent\": %.2f, "
               "\"runs_per_second\": %.0f, \"waited_ms\": %.1f, \"nodes_down\": %zu}\n",
               argv[2], n, wall, cpu, 100.0 * cpu / wall, 100.0 * cpu * user_share / wall,
               100.0 * cpu * (1 - user_share) / wall, (double)(t1.slices - t0.slices) / wall,
               (double)(t1.waited_ns - t0.waited_ns) / 1e6, down);
        health_prober_stop(p);
        model_publisher_done(&pub);
        model_unref(m);
        registry_free(reg);
        return 0;
}
