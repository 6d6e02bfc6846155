/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <pthread.h>

#include "base/util.h"
#include "lb/balancer.h"
#include "lb/registry.h"
#include "tap.h"

static Balancer *rr(const uint32_t *w, size_t n)
{
        Balancer *b = NULL;
        CHECK(balancer_new(&(BalancerSpec){ .ops = &balancer_swrr_ops, .weights = w, .n = n },
                           &b) == 0);
        return b;
}

static ssize_t pick(Balancer *b, const uint64_t *skip)
{
        return balancer_pick(b, &(BalancerRequest){ .skip = skip });
}

static void count_picks(Balancer *b, unsigned n_picks, unsigned *counts)
{
        for (unsigned i = 0; i < n_picks; i++) {
                ssize_t k = pick(b, NULL);
                CHECK(k >= 0);
                if (k >= 0)
                        counts[k]++;
        }
}

static void test_exact_splits(void)
{
        uint32_t w11[] = { 1, 1 };
        uint32_t w31[] = { 3, 1 };
        unsigned c[2] = {};
        Balancer *b = rr(w11, 2);

        count_picks(b, 50, c);
        CHECK(c[0] == 25 && c[1] == 25);
        /* Evenly spread, not in bursts: 1:1 alternates. */
        ssize_t prev = pick(b, NULL);
        for (int i = 0; i < 10; i++) {
                ssize_t k = pick(b, NULL);
                CHECK(k != prev);
                prev = k;
        }
        balancer_free(b);

        memset(c, 0, sizeof(c));
        b = rr(w31, 2);
        count_picks(b, 40, c);
        CHECK(c[0] == 30 && c[1] == 10);
        balancer_free(b);

        /* Weights with a common factor: the same sequence as reduced ones. */
        uint32_t w62[] = { 6, 2 };
        Balancer *a = rr(w31, 2);
        b = rr(w62, 2);
        for (int i = 0; i < 40; i++)
                CHECK(pick(a, NULL) == pick(b, NULL));
        balancer_free(a);
        balancer_free(b);
}

static void test_weight_zero(void)
{
        uint32_t w[] = { 3, 0 };
        unsigned c[2] = {};
        Balancer *b = rr(w, 2);

        count_picks(b, 10, c);
        CHECK(c[0] == 10 && c[1] == 0);
        balancer_free(b);

        uint32_t none[] = { 0, 0 };
        b = rr(none, 2);
        CHECK(pick(b, NULL) == -ENOENT);
        balancer_free(b);
}

static void test_skip(void)
{
        uint32_t w[] = { 1, 1, 1 };
        uint64_t skip[1] = {};
        Balancer *b = rr(w, 3);

        bitmap_set(skip, 1);
        for (int i = 0; i < 10; i++)
                CHECK(pick(b, skip) != 1);
        bitmap_set(skip, 0);
        bitmap_set(skip, 2);
        CHECK(pick(b, skip) == -ENOENT);
        balancer_free(b);

        /* Unequal weights take the schedule; a skipped item is passed over. */
        uint32_t w3[] = { 3, 1, 1 };
        b = rr(w3, 3);
        skip[0] = 0;
        bitmap_set(skip, 0);
        for (int i = 0; i < 10; i++)
                CHECK(pick(b, skip) > 0);
        bitmap_set(skip, 1);
        bitmap_set(skip, 2);
        CHECK(pick(b, skip) == -ENOENT);
        balancer_free(b);

        /* A single item needs no schedule, but its weight and skip still count. */
        uint32_t one[] = { 5 };
        b = rr(one, 1);
        CHECK(pick(b, NULL) == 0);
        skip[0] = 1;
        CHECK(pick(b, skip) == -ENOENT);
        balancer_free(b);
}

/* The full algorithm, as a reference for the schedule. */
static ssize_t reference_step(const uint32_t *w, size_t n, int64_t *cur)
{
        int64_t total = 0;
        ssize_t best = -1;
        for (size_t i = 0; i < n; i++) {
                if (!w[i])
                        continue;
                cur[i] += w[i];
                total += w[i];
                if (best < 0 || cur[i] > cur[best])
                        best = (ssize_t)i;
        }
        if (best >= 0)
                cur[best] -= total;
        return best;
}

static void test_many(void)
{
        enum { N = 100 };
        uint32_t w[N];
        unsigned c[N] = {};
        static int64_t ref[N];
        unsigned total = 0;

        for (int i = 0; i < N; i++)
                total += w[i] = (uint32_t)(i % 7) + 1;
        Balancer *b = rr(w, N);
        count_picks(b, total * 3, c);
        for (int i = 0; i < N; i++)
                CHECK(c[i] == w[i] * 3);
        balancer_free(b);

        /* The precomputed schedule is the algorithm's very sequence. */
        b = rr(w, N);
        bool same = true;
        for (unsigned k = 0; k < total * 2; k++)
                same = same && pick(b, NULL) == reference_step(w, N, ref);
        CHECK(same);
        balancer_free(b);

        CHECK(balancer_ops_find("roundrobin") == &balancer_swrr_ops);
        CHECK(balancer_ops_find("least_conn") == &balancer_least_conn_ops);
        CHECK(balancer_ops_find("chash") == &balancer_chash_ops);
        CHECK(balancer_ops_find("ewma") == &balancer_ewma_ops);
        CHECK(balancer_ops_find("random") == NULL);
}

/* Weights too many to precompute fall back to the algorithm under a lock: same sequence. */
static void test_fallback(void)
{
        enum { N = 20 };
        uint32_t w[N];
        static int64_t ref[N];
        for (int i = 0; i < N; i++)
                w[i] = 9973 - (uint32_t)i * 7; /* no common factor; sum far above 65536 */
        Balancer *b = rr(w, N);
        bool same = true;
        for (int k = 0; k < 5000; k++)
                same = same && pick(b, NULL) == reference_step(w, N, ref);
        CHECK(same);
        balancer_free(b);
}

/* Equal weights take the O(1) rotation: it must give the very sequence the full algorithm
 * gives, with or without items skipped. */
static void test_uniform_matches_full_algorithm(void)
{
        enum { N = 1000 };
        static uint32_t w[N];
        static int64_t ref[N];

        for (int i = 0; i < N; i++)
                w[i] = 7;
        Balancer *b = rr(w, N);
        for (int round = 0; round < 3 * N; round++)
                CHECK(pick(b, NULL) == reference_step(w, N, ref));
        uint64_t skip[BITMAP_WORDS(N)] = {};
        bitmap_set(skip, 0);
        bitmap_set(skip, 1);
        CHECK(pick(b, skip) == 2); /* the rotation is at 0 again: 0 and 1 skipped */
        CHECK(pick(b, NULL) == 3);
        balancer_free(b);
}

/* One sequence whatever thread picks: 4 threads, 3:1, every pick counted, exact. */
typedef struct ThreadPicks {
        Balancer *b;
        unsigned counts[2];
} ThreadPicks;

static void *pick_thread(void *userdata)
{
        ThreadPicks *t = userdata;
        for (int i = 0; i < 100000; i++) {
                ssize_t k = pick(t->b, NULL);
                if (k >= 0)
                        t->counts[k]++;
        }
        return NULL;
}

static void test_threads_exact(void)
{
        uint32_t w[] = { 3, 1 };
        Balancer *b = rr(w, 2);
        ThreadPicks t[4] = {};
        pthread_t th[4];

        for (int i = 0; i < 4; i++) {
                t[i].b = b;
                CHECK(pthread_create(&th[i], NULL, pick_thread, &t[i]) == 0);
        }
        unsigned c0 = 0, c1 = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                c0 += t[i].counts[0];
                c1 += t[i].counts[1];
        }
        CHECK(c0 == 300000 && c1 == 100000);
        balancer_free(b);
}

/* ---- balancers over nodes: their registry entries ---- */

typedef struct Nodes {
        Registry *registry;
        size_t n;
        RegistryEntry *entries[16];
        RegistryEntry *total; /* the upstream's */
        char *names[16];
        uint32_t weights[16];
} Nodes;

static void nodes_make(Nodes *ns, size_t n)
{
        memset(ns, 0, sizeof(*ns));
        CHECK(registry_new(&ns->registry) == 0);
        ns->n = n;
        CHECK(registry_upstream(ns->registry, "up", &ns->total) == 0);
        for (size_t i = 0; i < n; i++) {
                char host[32];
                snprintf(host, sizeof(host), "10.0.0.%zu", i + 1);
                CHECK(registry_node(ns->registry, "up", host, 80, &ns->entries[i]) == 0);
                CHECK(asprintf(&ns->names[i], "%s:80", host) > 0);
                ns->weights[i] = 1;
        }
}

static void nodes_done(Nodes *ns)
{
        for (size_t i = 0; i < ns->n; i++) {
                atomic_store(&ns->entries[i]->in_flight, 0);
                registry_entry_unref(ns->entries[i]);
                free(ns->names[i]);
        }
        atomic_store(&ns->total->in_flight, 0);
        registry_entry_unref(ns->total);
        registry_free(ns->registry);
}

/* A balancer over the nodes of `ns` but `without` (SIZE_MAX: all); *ret_map gives the node of
 * each of its items. */
static Balancer *over(const Nodes *ns, const BalancerOps *ops, size_t without, unsigned factor,
                      size_t *ret_map)
{
        RegistryEntry *e[16];
        const char *names[16];
        uint32_t w[16];
        size_t k = 0;
        Balancer *b = NULL;

        for (size_t i = 0; i < ns->n; i++) {
                if (i == without)
                        continue;
                e[k] = ns->entries[i];
                names[k] = ns->names[i];
                w[k] = ns->weights[i];
                if (ret_map)
                        ret_map[k] = i;
                k++;
        }
        CHECK(balancer_new(&(BalancerSpec){ .ops = ops, .weights = w, .n = k, .entries = e,
                                            .names = names, .total = ns->total,
                                            .hash_balance_factor = factor,
                                            .health = { .trials = true } },
                           &b) == 0);
        return b;
}

static ssize_t pick_key(Balancer *b, uint64_t key, const uint64_t *skip)
{
        return balancer_pick(b, &(BalancerRequest){ .key = key, .skip = skip });
}

static uint64_t key_of(unsigned i)
{
        char s[32];
        int n = snprintf(s, sizeof(s), "key-%u", i);
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (int j = 0; j < n; j++)
                h = (h ^ (unsigned char)s[j]) * UINT64_C(0x100000001b3);
        return h;
}

#define KEYS 10000

/* Removing one of ten equal nodes moves only its keys (at most 11% of them all), adding it
 * back restores the mapping, and each node's share is near its weight's. */
static void test_chash_remap(void)
{
        static size_t before[KEYS], after[KEYS];
        size_t map[16];
        Nodes ns;
        nodes_make(&ns, 10);

        Balancer *b = over(&ns, &balancer_chash_ops, SIZE_MAX, 0, map);
        unsigned share[10] = {};
        for (unsigned i = 0; i < KEYS; i++) {
                before[i] = map[pick_key(b, key_of(i), NULL)];
                share[before[i]]++;
        }
        double worst = 0;
        for (size_t i = 0; i < 10; i++) {
                double dev = fabs(share[i] / (double)KEYS - 0.1);
                worst = dev > worst ? dev : worst;
        }
        /* 160 points a node: about 0.8 points of standard deviation. */
        printf("# chash: 10 equal nodes, 10000 keys: worst share off by %.2f points of 10%%\n",
               worst * 100);
        CHECK(worst <= 0.05);
        balancer_free(b);

        b = over(&ns, &balancer_chash_ops, 3, 0, map);
        unsigned moved = 0;
        bool only_removed = true;
        for (unsigned i = 0; i < KEYS; i++) {
                after[i] = map[pick_key(b, key_of(i), NULL)];
                if (after[i] != before[i]) {
                        moved++;
                        only_removed = only_removed && before[i] == 3;
                }
        }
        printf("# chash: removing 1 of 10 moved %u of %u keys (%.2f%%)\n", moved, KEYS,
               moved * 100.0 / KEYS);
        CHECK(moved <= KEYS * 11 / 100);
        CHECK(moved == share[3]);
        CHECK(only_removed);
        balancer_free(b);

        b = over(&ns, &balancer_chash_ops, SIZE_MAX, 0, map);
        bool restored = true;
        for (unsigned i = 0; i < KEYS; i++)
                restored = restored && map[pick_key(b, key_of(i), NULL)] == before[i];
        CHECK(restored);

        /* A node that cannot take traffic (tried, or down) is walked past: only its keys go
         * elsewhere. */
        uint64_t skip[1] = {};
        bitmap_set(skip, 5);
        atomic_store(&ns.entries[7]->health, HEALTH_DOWN);
        atomic_store(&ns.entries[7]->trial_at_usec, now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC * 60);
        bool others_stay = true, none_there = true;
        for (unsigned i = 0; i < KEYS; i++) {
                size_t k = map[pick_key(b, key_of(i), skip)];
                none_there = none_there && k != 5 && k != 7;
                if (before[i] != 5 && before[i] != 7)
                        others_stay = others_stay && k == before[i];
        }
        CHECK(none_there);
        CHECK(others_stay);
        /* Once its trial is due, one request may find out whether it is back; one only. */
        atomic_store(&ns.entries[7]->trial_at_usec, 1);
        unsigned tried = 0;
        for (unsigned i = 0; i < KEYS; i++)
                tried += map[pick_key(b, key_of(i), NULL)] == 7;
        CHECK(tried == 1);
        atomic_store(&ns.entries[7]->health, 0);
        balancer_free(b);

        /* Weights: 160 points a unit, a share to match. */
        ns.weights[0] = 3;
        b = over(&ns, &balancer_chash_ops, SIZE_MAX, 0, map);
        unsigned heavy = 0;
        for (unsigned i = 0; i < KEYS; i++)
                heavy += map[pick_key(b, key_of(i), NULL)] == 0;
        printf("# chash: weight 3 among 9 of weight 1: %.2f%% (25%% expected)\n",
               heavy * 100.0 / KEYS);
        CHECK(fabs(heavy / (double)KEYS - 0.25) <= 0.05);
        balancer_free(b);
        nodes_done(&ns);
}

/* hash_balance_factor: a node above its share of the load passes its keys on. */
static void test_chash_bounded(void)
{
        size_t map[16];
        Nodes ns;
        nodes_make(&ns, 4);
        Balancer *b = over(&ns, &balancer_chash_ops, SIZE_MAX, 125, map);

        uint64_t key = key_of(1);
        size_t home = map[pick_key(b, key, NULL)];
        CHECK(map[pick_key(b, key, NULL)] == home); /* idle: always home */
        /* 8 in flight at home, none elsewhere: cap is ceil(ceil(9 * 1.25) * 1/4) = 3. The
         * upstream's count has them all, and this request. */
        atomic_store(&ns.entries[home]->in_flight, 8);
        atomic_store(&ns.total->in_flight, 9);
        size_t other = map[pick_key(b, key, NULL)];
        CHECK(other != home);
        /* 2 in flight on each: cap ceil(ceil(9 * 1.25) * 1/4) = 3, home has room again. */
        for (size_t i = 0; i < 4; i++)
                atomic_store(&ns.entries[i]->in_flight, 2);
        atomic_store(&ns.total->in_flight, 9);
        CHECK(map[pick_key(b, key, NULL)] == home);
        balancer_free(b);
        nodes_done(&ns);
}

/* Sets item i's count as requests would, telling the balancer. */
static void set_load(Balancer *b, RegistryEntry *e, size_t i, unsigned load)
{
        atomic_store(&e->in_flight, load);
        balancer_load_changed(b, i);
}

static void test_least_conn(void)
{
        Nodes ns;
        nodes_make(&ns, 3);
        Balancer *b = over(&ns, &balancer_least_conn_ops, SIZE_MAX, 0, NULL);

        /* Idle: equal loads rotate (requests that come and go, as a request is counted). */
        unsigned c[3] = {};
        for (int i = 0; i < 30; i++) {
                ssize_t p = pick(b, NULL);
                c[p]++;
                set_load(b, ns.entries[p], (size_t)p, 1);
                set_load(b, ns.entries[p], (size_t)p, 0);
        }
        CHECK(c[0] == 10 && c[1] == 10 && c[2] == 10);

        set_load(b, ns.entries[0], 0, 5);
        set_load(b, ns.entries[1], 1, 1);
        set_load(b, ns.entries[2], 2, 2);
        for (int i = 0; i < 5; i++)
                CHECK(pick(b, NULL) == 1);
        uint64_t skip[1] = { 2 };
        CHECK(pick(b, skip) == 2);
        /* Counts that change move the answer, both ways. */
        set_load(b, ns.entries[1], 1, 3);
        CHECK(pick(b, NULL) == 2);
        set_load(b, ns.entries[0], 0, 0);
        CHECK(pick(b, NULL) == 0);
        set_load(b, ns.entries[0], 0, 5);
        set_load(b, ns.entries[1], 1, 1);

        /* A down node is left alone while others can take the request: the health epoch
         * tells the tree. */
        atomic_store(&ns.entries[1]->health, HEALTH_DOWN);
        atomic_store(&ns.entries[1]->trial_at_usec, now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC * 60);
        registry_bump_health_epoch(ns.registry);
        CHECK(pick(b, NULL) == 2);
        /* Its trial due: one pick goes there, then not again for a while. */
        atomic_store(&ns.entries[1]->trial_at_usec, 1);
        CHECK(pick(b, NULL) == 1);
        CHECK(pick(b, NULL) == 2);
        /* Without an epoch bump (a winner gone down unseen), the pick finds out itself. */
        atomic_store(&ns.entries[1]->health, 0);
        registry_bump_health_epoch(ns.registry);
        CHECK(pick(b, NULL) == 1);
        atomic_store(&ns.entries[1]->health, HEALTH_DOWN);
        atomic_store(&ns.entries[1]->trial_at_usec, now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC * 60);
        CHECK(pick(b, NULL) == 2);
        atomic_store(&ns.entries[1]->health, 0);
        registry_bump_health_epoch(ns.registry);
        balancer_free(b);

        /* (in flight + 1) / weight: weight 4 with 3 in flight scores 1, as weight 1 idle. */
        ns.weights[0] = 4;
        b = over(&ns, &balancer_least_conn_ops, SIZE_MAX, 0, NULL);
        set_load(b, ns.entries[0], 0, 2);
        set_load(b, ns.entries[1], 1, 1);
        set_load(b, ns.entries[2], 2, 1);
        CHECK(pick(b, NULL) == 0); /* 3/4 beats 2/1 */
        balancer_free(b);
        for (size_t i = 0; i < 3; i++)
                atomic_store(&ns.entries[i]->in_flight, 0);
        nodes_done(&ns);
}

/* 1,000 nodes of weights 1..10 under requests that start and end at random: every pick is
 * the node a full scan finds least loaded (one thread: no replay races). */
static void test_least_conn_tree_matches_scan(void)
{
        enum { N = 1000 };
        Registry *reg = NULL;
        RegistryEntry *total = NULL, *e[N];
        uint32_t w[N];
        CHECK(registry_new(&reg) == 0);
        CHECK(registry_upstream(reg, "up", &total) == 0);
        for (size_t i = 0; i < N; i++) {
                char host[32];
                snprintf(host, sizeof(host), "10.0.%zu.%zu", i / 250, i % 250);
                CHECK(registry_node(reg, "up", host, 80, &e[i]) == 0);
                w[i] = (uint32_t)(1 + i % 10);
        }
        Balancer *b = NULL;
        CHECK(balancer_new(&(BalancerSpec){ .ops = &balancer_least_conn_ops, .weights = w,
                                            .n = N, .entries = e, .total = total },
                           &b) == 0);
        uint64_t seed = 42;
        bool same = true;
        for (int round = 0; round < 20000; round++) {
                seed = balancer_mix64(seed + 1);
                ssize_t p = pick(b, NULL);
                /* The best by a scan, stamps aside: the pick must score as low. */
                uint64_t bl = registry_in_flight(e[p]) + 1, bw = w[p];
                for (size_t i = 0; i < N; i++)
                        same = same && (registry_in_flight(e[i]) + 1) * bw >= bl * w[i];
                registry_in_flight_add(e[p]);
                balancer_load_changed(b, (size_t)p);
                /* Some request ends somewhere. */
                size_t k = seed % N;
                if (seed % 3 != 0 && registry_in_flight(e[k]) > 0) {
                        registry_in_flight_sub(e[k]);
                        balancer_load_changed(b, k);
                }
        }
        CHECK(same);
        balancer_free(b);
        for (size_t i = 0; i < N; i++) {
                atomic_store(&e[i]->in_flight, 0);
                registry_entry_unref(e[i]);
        }
        registry_entry_unref(total);
        registry_free(reg);
}

static void test_ewma(void)
{
        Nodes ns;
        nodes_make(&ns, 2);
        Balancer *b = over(&ns, &balancer_ewma_ops, SIZE_MAX, 0, NULL);
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        balancer_latency_sample(ns.entries[0], 10000, now);
        balancer_latency_sample(ns.entries[1], 1000, now);
        for (int i = 0; i < 20; i++)
                CHECK(pick(b, NULL) == 1);
        /* Peak: a slow answer counts at once. */
        balancer_latency_sample(ns.entries[1], 100000, now);
        for (int i = 0; i < 20; i++)
                CHECK(pick(b, NULL) == 0);
        /* A sample below the average moves it by exp(-elapsed / 10 s): after 10 s, 1/e. */
        balancer_latency_sample(ns.entries[1], 0, now + 10 * USEC_PER_SEC);
        uint64_t v = atomic_load(&ns.entries[1]->latency_peak_nsec);
        CHECK(v > 36000000 && v < 37000000);
        /* A failure scores as slow. */
        balancer_latency_sample(ns.entries[0], BALANCER_EWMA_FAILURE_USEC, now);
        CHECK(atomic_load(&ns.entries[0]->latency_peak_nsec) == 10 * 1000000000ull);
        balancer_free(b);
        nodes_done(&ns);
}

int main(void)
{
        test_uniform_matches_full_algorithm();
        test_exact_splits();
        test_weight_zero();
        test_skip();
        test_many();
        test_fallback();
        test_threads_exact();
        test_chash_remap();
        test_chash_bounded();
        test_least_conn();
        test_least_conn_tree_matches_scan();
        test_ewma();
        TEST_MAIN_END();
}
