/* SPDX-License-Identifier: MIT */
/* What a pick costs, per balancer, on 2 and 1,000 nodes, with 1, 2, 4 and 8 threads picking
 * from one shared Balancer at once (as workers do). Not a test: it prints picks per second.
 *
 *   build/tests/bench/bench-pick [milliseconds per row [bare]]     (default 300)
 *
 * BENCH_PICK_ROWS=roundrobin runs only the rows whose label starts so, BENCH_PICK_THREADS=2
 * only up to that many threads (to repeat a few rows often, as RESULTS.md's comparisons do).
 *
 * Each pick is wrapped in what a request does to the entries (in flight +1 on the upstream
 * before, +1 on the node after, the balancer told; both -1 when it ends), each thread keeping
 * HELD requests in flight (the oldest ends as a new one starts), so least_conn, chash's
 * bounded loads and ewma read counts that other threads write; with `bare`, picks alone (the cost of the algorithm, as
 * before this file's balancers a pick was). ewma's nodes have latency samples; chash keys are a counter per thread, hashed.
 * Rows: roundrobin with equal weights (the rotation), roundrobin with weights 1..7 (the
 * precomputed schedule), least_conn, chash, chash with hash_balance_factor 125, ewma. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "lb/balancer.h"
#include "lb/registry.h"

#define HELD 32 /* requests in flight per thread */

#define MAX_NODES 1000
#define MAX_THREADS 8

typedef struct Row {
        const char *label;
        const BalancerOps *ops;
        bool weighted;
        unsigned factor;
} Row;

typedef struct Run {
        Balancer *b;
        RegistryEntry **entries;
        RegistryEntry *total;
        atomic_bool *stop;
        bool bare;
        unsigned id;
        uint64_t picks;
} Run;

static void *run_thread(void *userdata)
{
        Run *r = userdata;
        uint64_t key = (uint64_t)r->id << 40, n = 0;
        size_t ring[HELD], held = 0;

        while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
                for (int k = 0; k < 256; k++) {
                        if (r->bare) {
                                if (balancer_pick(r->b, &(BalancerRequest){
                                                            .key = balancer_mix64(key++) }) < 0)
                                        abort();
                                continue;
                        }
                        /* The oldest of the thread's requests in flight ends first. */
                        size_t slot = held % HELD;
                        if (held >= HELD) {
                                size_t old = ring[slot];
                                registry_in_flight_sub(r->entries[old]);
                                balancer_load_changed(r->b, old);
                                registry_in_flight_sub(r->total);
                        }
                        registry_in_flight_add(r->total);
                        ssize_t i = balancer_pick(r->b, &(BalancerRequest){
                                                                .key = balancer_mix64(key++) });
                        if (i < 0)
                                abort();
                        registry_in_flight_add(r->entries[i]);
                        balancer_load_changed(r->b, (size_t)i);
                        ring[slot] = (size_t)i;
                        held++;
                }
                n += 256;
        }
        for (size_t k = 0; k < (held < HELD ? held : HELD); k++) {
                registry_in_flight_sub(r->entries[ring[k]]);
                balancer_load_changed(r->b, ring[k]);
                registry_in_flight_sub(r->total);
        }
        r->picks = n;
        return NULL;
}

static double measure(Balancer *b, RegistryEntry **entries, RegistryEntry *total, bool bare,
                      unsigned threads, unsigned ms)
{
        atomic_bool stop = false;
        Run runs[MAX_THREADS] = {};
        pthread_t th[MAX_THREADS];

        for (unsigned t = 0; t < threads; t++) {
                runs[t] = (Run){ .b = b, .entries = entries, .total = total, .stop = &stop,
                                 .bare = bare, .id = t };
                if (pthread_create(&th[t], NULL, run_thread, &runs[t]) != 0)
                        abort();
        }
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
        atomic_store(&stop, true);
        uint64_t picks = 0;
        for (unsigned t = 0; t < threads; t++) {
                pthread_join(th[t], NULL);
                picks += runs[t].picks;
        }
        return (double)picks / ((double)(now_usec(CLOCK_MONOTONIC) - start) / 1e6);
}

int main(int argc, char **argv)
{
        static const Row rows[] = {
                { "roundrobin (equal)", &balancer_swrr_ops, false, 0 },
                { "roundrobin (1..7)", &balancer_swrr_ops, true, 0 },
                { "least_conn", &balancer_least_conn_ops, false, 0 },
                { "least_conn (1..7)", &balancer_least_conn_ops, true, 0 },
                { "chash", &balancer_chash_ops, false, 0 },
                { "chash (factor 125)", &balancer_chash_ops, false, 125 },
                { "ewma", &balancer_ewma_ops, false, 0 },
        };
        static const size_t sizes[] = { 2, MAX_NODES };
        static const unsigned thread_counts[] = { 1, 2, 4, 8 };
        unsigned ms = argc > 1 ? (unsigned)atoi(argv[1]) : 300;
        bool bare = argc > 2 && streq(argv[2], "bare");
        const char *only = getenv("BENCH_PICK_ROWS");
        const char *max_threads_env = getenv("BENCH_PICK_THREADS");
        unsigned max_threads = max_threads_env ? (unsigned)atoi(max_threads_env) : MAX_THREADS;
        static RegistryEntry *entries[MAX_NODES];
        static char *names[MAX_NODES];
        static uint32_t weights[MAX_NODES];
        Registry *registry;
        RegistryEntry *total;

        if (registry_new(&registry) < 0 || registry_upstream(registry, "up", &total) < 0)
                return 1;
        for (size_t i = 0; i < MAX_NODES; i++) {
                char host[32];
                snprintf(host, sizeof(host), "10.%zu.%zu.1", i / 250, i % 250);
                if (registry_node(registry, "up", host, 80, &entries[i]) < 0 ||
                    asprintf(&names[i], "%s:80", host) < 0)
                        return 1;
                balancer_latency_sample(entries[i], 1000 + i % 17, now_usec(CLOCK_MONOTONIC));
        }

        printf("%-20s %6s", "picks/s", "nodes");
        for (size_t t = 0; t < ELEMENTSOF(thread_counts) && thread_counts[t] <= max_threads; t++)
                printf(" %10u thr", thread_counts[t]);
        printf("\n");
        for (size_t r = 0; r < ELEMENTSOF(rows); r++)
                for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
                        if (only && strncmp(rows[r].label, only, strlen(only)) != 0)
                                continue;
                        size_t n = sizes[s];
                        for (size_t i = 0; i < n; i++)
                                weights[i] = rows[r].weighted ? (uint32_t)(i % 7) + 1 : 1;
                        Balancer *b;
                        BalancerSpec spec = { .ops = rows[r].ops, .weights = weights, .n = n,
                                              .entries = entries, .total = total,
                                              .names = (const char *const *)names,
                                              .hash_balance_factor = rows[r].factor };
                        if (balancer_new(&spec, &b) < 0)
                                return 1;
                        printf("%-20s %6zu", rows[r].label, n);
                        fflush(stdout);
                        for (size_t t = 0;
                             t < ELEMENTSOF(thread_counts) && thread_counts[t] <= max_threads;
                             t++) {
                                printf(" %14.0f", measure(b, entries, total, bare, thread_counts[t], ms));
                                fflush(stdout);
                        }
                        printf("\n");
                        balancer_free(b);
                }
        for (size_t i = 0; i < MAX_NODES; i++) {
                registry_entry_unref(entries[i]);
                free(names[i]);
        }
        registry_entry_unref(total);
        registry_free(registry);
        return 0;
}
