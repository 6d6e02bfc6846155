/* SPDX-License-Identifier: MIT */
#include "base/util.h"
#include "lb/balancer.h"
#include "tap.h"

static void count_picks(Balancer *b, unsigned n_picks, unsigned *counts)
{
        for (unsigned i = 0; i < n_picks; i++) {
                ssize_t k = balancer_pick(b, NULL);
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
        Balancer *b;

        CHECK(balancer_new(&balancer_swrr_ops, w11, 2, &b) == 0);
        count_picks(b, 50, c);
        CHECK(c[0] == 25 && c[1] == 25);
        /* Evenly spread, not in bursts: 1:1 alternates. */
        ssize_t prev = balancer_pick(b, NULL);
        for (int i = 0; i < 10; i++) {
                ssize_t k = balancer_pick(b, NULL);
                CHECK(k != prev);
                prev = k;
        }
        balancer_free(b);

        memset(c, 0, sizeof(c));
        CHECK(balancer_new(&balancer_swrr_ops, w31, 2, &b) == 0);
        count_picks(b, 40, c);
        CHECK(c[0] == 30 && c[1] == 10);
        balancer_free(b);
}

static void test_weight_changes(void)
{
        uint32_t w[] = { 1, 1 };
        unsigned c[2] = {};
        Balancer *b;

        CHECK(balancer_new(&balancer_swrr_ops, w, 2, &b) == 0);
        (void)balancer_pick(b, NULL); /* leave the schedule mid-way */
        balancer_set_weight(b, 0, 3);
        count_picks(b, 40, c);
        CHECK(c[0] == 30 && c[1] == 10);

        /* Weight 0 takes an item out of rotation. */
        balancer_set_weight(b, 1, 0);
        memset(c, 0, sizeof(c));
        count_picks(b, 10, c);
        CHECK(c[0] == 10 && c[1] == 0);

        balancer_set_weight(b, 0, 0);
        CHECK(balancer_pick(b, NULL) == -ENOENT);
        balancer_free(b);
}

static void test_skip(void)
{
        uint32_t w[] = { 1, 1, 1 };
        uint64_t skip[1] = {};
        Balancer *b;

        CHECK(balancer_new(&balancer_swrr_ops, w, 3, &b) == 0);
        bitmap_set(skip, 1);
        for (int i = 0; i < 10; i++)
                CHECK(balancer_pick(b, skip) != 1);
        bitmap_set(skip, 0);
        bitmap_set(skip, 2);
        CHECK(balancer_pick(b, skip) == -ENOENT);
        balancer_free(b);

        /* A single item needs no schedule, but its weight and skip still count. */
        uint32_t one[] = { 5 };
        CHECK(balancer_new(&balancer_swrr_ops, one, 1, &b) == 0);
        CHECK(balancer_pick(b, NULL) == 0);
        skip[0] = 1;
        CHECK(balancer_pick(b, skip) == -ENOENT);
        balancer_free(b);
}

static void test_many(void)
{
        enum { N = 100 };
        uint32_t w[N];
        unsigned c[N] = {};
        unsigned total = 0;
        Balancer *b;

        for (int i = 0; i < N; i++)
                total += w[i] = (uint32_t)(i % 7) + 1;
        CHECK(balancer_new(&balancer_swrr_ops, w, N, &b) == 0);
        count_picks(b, total * 3, c);
        for (int i = 0; i < N; i++)
                CHECK(c[i] == w[i] * 3);
        balancer_free(b);
        CHECK(balancer_ops_find("roundrobin") == &balancer_swrr_ops);
        CHECK(balancer_ops_find("chash") == NULL);
}

/* Equal weights take the O(1) rotation: it must give the very sequence the full algorithm
 * gives, with or without items skipped. */
static void test_uniform_matches_full_algorithm(void)
{
        enum { N = 1000 };
        static uint32_t w[N];
        static int64_t ref[N];
        Balancer *b;

        for (int i = 0; i < N; i++)
                w[i] = 7;
        CHECK(balancer_new(&balancer_swrr_ops, w, N, &b) == 0);
        for (int round = 0; round < 3 * N; round++) {
                int64_t total = 0;
                ssize_t best = -1;
                for (int i = 0; i < N; i++) {
                        ref[i] += w[i];
                        total += w[i];
                        if (best < 0 || ref[i] > ref[best])
                                best = i;
                }
                ref[best] -= total;
                CHECK(balancer_pick(b, NULL) == best);
        }
        uint64_t skip[BITMAP_WORDS(N)] = {};
        bitmap_set(skip, 0);
        bitmap_set(skip, 1);
        CHECK(balancer_pick(b, skip) == 2); /* the rotation is at 0 again: 0 and 1 skipped */
        CHECK(balancer_pick(b, NULL) == 3);
        balancer_free(b);
}

int main(void)
{
        test_uniform_matches_full_algorithm();
        test_exact_splits();
        test_weight_changes();
        test_skip();
        test_many();
        TEST_MAIN_END();
}
