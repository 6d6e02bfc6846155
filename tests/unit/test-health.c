/* SPDX-License-Identifier: MIT */
/* A node's health word: counters in a row, thresholds by source, passive trials and their
 * back-off, admin states, slow start, and what round robin makes of them (exact over the
 * nodes left; panic when none is). */
#include "lb/balancer.h"
#include "lb/health.h"
#include "lb/model.h"
#include "tap.h"

#define N 4

typedef struct Fixture {
        Registry *registry;
        ConfigNode cnodes[N];
        ConfigUpstream cu;
        Upstream u;
        Node nodes[N];
        RegistryEntry *entries[N];
        RegistryEntry *total;
} Fixture;

static void set_statuses(HealthStatusSet *set, unsigned from, unsigned to)
{
        for (unsigned s = from; s <= to; s++) {
                unsigned i = s - HEALTH_STATUS_MIN;
                set->bits[i / 64] |= UINT64_C(1) << (i % 64);
        }
}

static void fixture_make(Fixture *f, bool active, uint64_t slow_start_usec)
{
        memset(f, 0, sizeof(*f));
        CHECK(registry_new(&f->registry) == 0);
        CHECK(registry_upstream(f->registry, "up", &f->total) == 0);
        f->cu.name = (char *)"up";
        f->cu.nodes = f->cnodes;
        f->cu.n_nodes = N;
        f->cu.slow_start_usec = slow_start_usec;
        ConfigHealthCheck *hc = &f->cu.health_check;
        hc->active.enabled = active;
        hc->active.healthy.successes = 2;
        set_statuses(&hc->active.healthy.http_statuses, 200, 200);
        hc->active.unhealthy.http_failures = 3;
        hc->active.unhealthy.tcp_failures = 2;
        hc->active.unhealthy.timeouts = 2;
        set_statuses(&hc->active.unhealthy.http_statuses, 500, 504);
        hc->passive.healthy.successes = 5;
        set_statuses(&hc->passive.healthy.http_statuses, 200, 208);
        hc->passive.unhealthy.http_failures = 5;
        hc->passive.unhealthy.tcp_failures = 2;
        hc->passive.unhealthy.timeouts = 7;
        set_statuses(&hc->passive.unhealthy.http_statuses, 500, 500);
        f->u.config = &f->cu;
        f->u.nodes = f->nodes;
        f->u.n_nodes = N;
        f->u.state = f->total;
        for (size_t i = 0; i < N; i++) {
                char host[32];
                snprintf(host, sizeof(host), "10.0.0.%zu", i + 1);
                f->cnodes[i].weight = 1;
                CHECK(registry_node(f->registry, "up", host, 80, &f->entries[i]) == 0);
                f->nodes[i].state = f->entries[i];
        }
}

static void fixture_done(Fixture *f)
{
        for (size_t i = 0; i < N; i++) {
                atomic_store(&f->entries[i]->in_flight, 0);
                registry_entry_unref(f->entries[i]);
        }
        atomic_store(&f->total->in_flight, 0);
        registry_entry_unref(f->total);
        registry_free(f->registry);
}

static HealthChange report(Fixture *f, size_t i, HealthSource s, HealthEvent ev)
{
        return node_health_report(&f->nodes[i], &f->u, s, ev);
}

static void test_counters(void)
{
        Fixture f;
        fixture_make(&f, true, 0);
        char why[64];

        /* A healthy node's success writes nothing; classification by the lists. */
        CHECK(report(&f, 0, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_SUCCESS) == HEALTH_UNCHANGED);
        CHECK(atomic_load(&f.entries[0]->health) == 0);
        const ConfigHealthCheck *hc = &f.cu.health_check;
        CHECK(health_classify_status(hc, HEALTH_SOURCE_ACTIVE, 200) == HEALTH_EVENT_SUCCESS);
        CHECK(health_classify_status(hc, HEALTH_SOURCE_ACTIVE, 503) == HEALTH_EVENT_HTTP_FAILURE);
        CHECK(health_classify_status(hc, HEALTH_SOURCE_ACTIVE, 404) == -1);
        CHECK(health_classify_status(hc, HEALTH_SOURCE_PASSIVE, 503) == -1);
        /* Probes and no passive: written: requests' statuses move nothing (the built-in
         * "any answer" would undo the probes' HTTP failures); written, they count. */
        CHECK(health_classify_status(hc, HEALTH_SOURCE_PASSIVE, 200) == -1);
        CHECK(health_classify_status(hc, HEALTH_SOURCE_PASSIVE, 500) == -1);
        f.cu.health_check.passive.enabled = true;
        CHECK(health_classify_status(hc, HEALTH_SOURCE_PASSIVE, 200) == HEALTH_EVENT_SUCCESS);
        CHECK(health_classify_status(hc, HEALTH_SOURCE_PASSIVE, 500) == HEALTH_EVENT_HTTP_FAILURE);
        f.cu.health_check.passive.enabled = false;

        /* In a row: a success in between starts the count again. */
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT) == HEALTH_UNCHANGED);
        CHECK(!node_is_down(&f.nodes[0]));
        /* The threshold of the source that counts: active timeouts 2. */
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT) == HEALTH_WENT_DOWN);
        CHECK(node_is_down(&f.nodes[0]));
        CHECK(streq(node_health_to_string(&f.nodes[0]), "down"));
        CHECK(streq(node_health_reason(&f.nodes[0], why, sizeof(why)),
                    "2 timeouts in a row (active check)"));
        NodeHealthView v;
        node_health_view(&f.nodes[0], &v);
        CHECK(v.down && v.since_usec > 0 && v.admin == NODE_ADMIN_READY);

        /* Kinds count apart, and passive events feed the same counters: 4 passive HTTP
         * failures and one more make 5. */
        for (int i = 0; i < 4; i++)
                CHECK(report(&f, 1, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_HTTP_FAILURE) ==
                      HEALTH_UNCHANGED);
        CHECK(report(&f, 1, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE) == HEALTH_UNCHANGED);
        CHECK(report(&f, 1, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_HTTP_FAILURE) == HEALTH_WENT_DOWN);
        CHECK(streq(node_health_reason(&f.nodes[1], why, sizeof(why)),
                    "5 HTTP failures in a row (active check)"));

        /* Back up after the active successes in a row (2); a failure in between resets. */
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TCP_FAILURE) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_CAME_UP);
        CHECK(!node_is_down(&f.nodes[0]));
        CHECK(streq(node_health_reason(&f.nodes[0], why, sizeof(why)),
                    "2 successes in a row (active check)"));
        /* Counters left at 0: the next failure counts from 1. */
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT) == HEALTH_UNCHANGED);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_UNCHANGED);

        /* A threshold of 0: that kind never puts the node down. */
        f.cu.health_check.passive.unhealthy.timeouts = 0;
        for (int i = 0; i < 300; i++)
                CHECK(report(&f, 2, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TIMEOUT) ==
                      HEALTH_UNCHANGED);
        CHECK(!node_is_down(&f.nodes[2]));
        fixture_done(&f);
}

/* Round robin over the fixture's four nodes, weight 1 each, with `health` as its policy. */
static Balancer *round_robin(Fixture *f, HealthPickPolicy health)
{
        Balancer *b = NULL;
        RegistryEntry *e[N];
        uint32_t w[N];
        for (size_t i = 0; i < N; i++)
                e[i] = f->entries[i], w[i] = 1;
        CHECK(balancer_new(&(BalancerSpec){ .ops = &balancer_swrr_ops, .weights = w, .n = N,
                                            .entries = e, .total = f->total, .health = health },
                           &b) == 0);
        return b;
}

static void test_passive_trials(void)
{
        Fixture f;
        fixture_make(&f, false, 0);
        Balancer *b = round_robin(&f, (HealthPickPolicy){ .trials = true });

        CHECK(report(&f, 3, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE) == HEALTH_UNCHANGED);
        CHECK(report(&f, 3, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE) == HEALTH_WENT_DOWN);
        uint64_t at = atomic_load(&f.entries[3]->trial_at_usec);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        CHECK(at > now + HEALTH_TRIAL_FIRST_USEC - USEC_PER_SEC && at <= now + HEALTH_TRIAL_FIRST_USEC);

        /* Down, no trial due: 300 picks spread exactly over the three others. */
        unsigned count[N] = {};
        for (int i = 0; i < 300; i++)
                count[balancer_pick(b, &(BalancerRequest){})]++;
        CHECK(count[3] == 0 && count[0] == 100 && count[1] == 100 && count[2] == 100);

        /* Its trial due: one pick, and one only, goes to it. */
        atomic_store(&f.entries[3]->trial_at_usec, 1);
        memset(count, 0, sizeof(count));
        for (int i = 0; i < 300; i++)
                count[balancer_pick(b, &(BalancerRequest){})]++;
        CHECK(count[3] == 1);
        /* The trial failed: the back-off doubles. */
        CHECK(report(&f, 3, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE) == HEALTH_UNCHANGED);
        at = atomic_load(&f.entries[3]->trial_at_usec);
        now = now_usec(CLOCK_MONOTONIC);
        CHECK(at > now + 2 * HEALTH_TRIAL_FIRST_USEC - USEC_PER_SEC);
        for (int i = 0; i < 10; i++)
                (void)report(&f, 3, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE);
        at = atomic_load(&f.entries[3]->trial_at_usec);
        CHECK(at <= now_usec(CLOCK_MONOTONIC) + HEALTH_TRIAL_MAX_USEC);
        /* A trial that succeeds: healthy at once (passive only). */
        CHECK(report(&f, 3, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_SUCCESS) == HEALTH_CAME_UP);
        memset(count, 0, sizeof(count));
        for (int i = 0; i < 400; i++)
                count[balancer_pick(b, &(BalancerRequest){})]++;
        CHECK(count[0] == 100 && count[3] == 100);

        /* All down: -EHOSTDOWN, then a panic pick takes them all, in turn. */
        for (size_t i = 0; i < N; i++) {
                (void)report(&f, i, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE);
                (void)report(&f, i, HEALTH_SOURCE_PASSIVE, HEALTH_EVENT_TCP_FAILURE);
                CHECK(node_is_down(&f.nodes[i]));
        }
        CHECK(balancer_pick(b, &(BalancerRequest){}) == -EHOSTDOWN);
        memset(count, 0, sizeof(count));
        for (int i = 0; i < 400; i++)
                count[balancer_pick(b, &(BalancerRequest){ .panic = true })]++;
        CHECK(count[0] == 100 && count[1] == 100 && count[2] == 100 && count[3] == 100);
        balancer_free(b);
        fixture_done(&f);
}

static void test_admin_and_slow_start(void)
{
        Fixture f;
        fixture_make(&f, true, 40 * USEC_PER_SEC);
        Balancer *b = round_robin(&f, (HealthPickPolicy){ .slow_start_usec = 40 * USEC_PER_SEC });

        /* The first model: nothing ramps. */
        health_commit_upstream(&f.u, false, NULL, NULL);
        CHECK(atomic_load(&f.entries[0]->health) == 0);

        /* Drain and maint take nothing, even in panic. */
        f.cnodes[1].state = NODE_ADMIN_DRAIN;
        f.cnodes[2].state = NODE_ADMIN_MAINT;
        health_commit_upstream(&f.u, true, NULL, NULL);
        CHECK(node_admin_state(&f.nodes[1]) == NODE_ADMIN_DRAIN);
        CHECK(streq(node_health_to_string(&f.nodes[2]), "maint"));
        unsigned count[N] = {};
        for (int i = 0; i < 200; i++)
                count[balancer_pick(b, &(BalancerRequest){ .panic = i % 2 })]++;
        CHECK(count[0] == 100 && count[3] == 100 && count[1] == 0 && count[2] == 0);

        /* Drained: said once, when nothing is in flight. */
        registry_in_flight_add(f.entries[1]);
        CHECK(!node_health_claim_drained(f.entries[1]));
        registry_in_flight_sub(f.entries[1]);
        CHECK(node_health_claim_drained(f.entries[1]));
        CHECK(!node_health_claim_drained(f.entries[1]));
        CHECK(!node_health_claim_drained(f.entries[0]));

        /* Back to ready: it ramps from 10%; a quarter into the window it takes at most a
         * third of its share. */
        f.cnodes[1].state = NODE_ADMIN_READY;
        health_commit_upstream(&f.u, true, NULL, NULL);
        CHECK(atomic_load(&f.entries[1]->health) & HEALTH_SLOW_START);
        uint64_t now = 0;
        unsigned pm = health_slow_start_permille(f.entries[1], &b->health, &now);
        CHECK(pm >= 100 && pm < 110);
        memset(count, 0, sizeof(count));
        for (int i = 0; i < 3000; i++)
                count[balancer_pick(b, &(BalancerRequest){})]++;
        /* Node 1 weighs 0.1 against 1 and 1: 0.1 / 2.1 of the picks, ~143 of 3000. */
        CHECK(count[1] >= 135 && count[1] <= 150 && count[2] == 0);
        atomic_store(&f.entries[1]->up_since_usec,
                     now_usec(CLOCK_MONOTONIC) - 10 * USEC_PER_SEC);
        now = 0;
        pm = health_slow_start_permille(f.entries[1], &b->health, &now);
        CHECK(pm >= 320 && pm <= 333);
        /* Past the window: full weight, and the word is clear again. */
        atomic_store(&f.entries[1]->up_since_usec,
                     now_usec(CLOCK_MONOTONIC) - 41 * USEC_PER_SEC);
        now = 0;
        CHECK(health_slow_start_permille(f.entries[1], &b->health, &now) == 1000);
        CHECK(atomic_load(&f.entries[1]->health) == 0);

        /* A node that comes back by its checks ramps too. */
        (void)report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_TIMEOUT) == HEALTH_WENT_DOWN);
        (void)report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS);
        CHECK(report(&f, 0, HEALTH_SOURCE_ACTIVE, HEALTH_EVENT_SUCCESS) == HEALTH_CAME_UP);
        CHECK(atomic_load(&f.entries[0]->health) & HEALTH_SLOW_START);
        balancer_free(b);
        fixture_done(&f);
}

static void test_upstream_panic(void)
{
        Fixture f;
        fixture_make(&f, true, 0);
        CHECK(!upstream_update_panic(&f.u) && !upstream_in_panic(&f.u));
        for (size_t i = 0; i < N - 1; i++)
                atomic_store(&f.entries[i]->health, HEALTH_DOWN);
        CHECK(!upstream_update_panic(&f.u));
        /* The last ready node in maint: what is left is all down. */
        f.cnodes[N - 1].state = NODE_ADMIN_MAINT;
        health_commit_upstream(&f.u, true, NULL, NULL);
        CHECK(upstream_update_panic(&f.u) && upstream_in_panic(&f.u));
        atomic_store(&f.entries[0]->health, 0);
        CHECK(upstream_update_panic(&f.u) && !upstream_in_panic(&f.u));
        fixture_done(&f);
}

int main(void)
{
        test_counters();
        test_passive_trials();
        test_admin_and_slow_start();
        test_upstream_panic();
        TEST_MAIN_END();
}
