/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <sys/resource.h>

#include "base/hashmap.h"
#include "base/thread-sched.h"
#include "base/util.h"
#include "net/resolver.h"
#include "tap.h"

static void test_hashmap(void)
{
        Hashmap *m = hashmap_new();
        char key[32];
        static int values[1000];

        CHECK(m);
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                CHECK(hashmap_put(m, key, strlen(key), &values[i]) == 0);
        }
        CHECK(hashmap_size(m) == 1000);
        for (int i = 0; i < 1000; i += 2) {
                snprintf(key, sizeof(key), "k%d", i);
                CHECK(hashmap_remove(m, key, strlen(key)) == &values[i]);
        }
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                CHECK(hashmap_get(m, key, strlen(key)) == (i % 2 ? &values[i] : NULL));
        }
        /* A prefix of a key is another key. */
        CHECK(hashmap_get(m, "k1", 1) == NULL);
        CHECK(hashmap_size(m) == 500);
        /* Put unless there: the value there is kept and said. */
        void *existing = NULL;
        CHECK(hashmap_put_new(m, "k1", 2, &values[0], &existing) == -EEXIST);
        CHECK(existing == &values[1] && hashmap_get(m, "k1", 2) == &values[1]);
        CHECK(hashmap_put_new(m, "k0", 2, &values[0], &existing) == 0); /* removed before */
        CHECK(hashmap_get(m, "k0", 2) == &values[0] && hashmap_size(m) == 501);
        CHECK(hashmap_put_new(m, "new", 3, &values[2], NULL) == 0);
        CHECK(hashmap_put_new(m, "new", 3, &values[3], NULL) == -EEXIST);
        CHECK(hashmap_get(m, "new", 3) == &values[2]);
        hashmap_free(m);
}

static void test_refresh_delay(void)
{
        uint64_t s = USEC_PER_SEC;
        /* TTLs are clamped to the floor and the ceiling. */
        CHECK(resolver_refresh_delay_usec(0, 0, 1 * s, 3600 * s) == 1 * s);
        CHECK(resolver_refresh_delay_usec(300 * s, 0, 1 * s, 3600 * s) == 300 * s);
        CHECK(resolver_refresh_delay_usec(86400 * s, 0, 1 * s, 3600 * s) == 3600 * s);
        /* Failures back off: 1 s, 2 s, 4 s ... up to the ceiling. */
        CHECK(resolver_refresh_delay_usec(300 * s, 1, 1 * s, 60 * s) == 1 * s);
        CHECK(resolver_refresh_delay_usec(300 * s, 2, 1 * s, 60 * s) == 2 * s);
        CHECK(resolver_refresh_delay_usec(300 * s, 3, 1 * s, 60 * s) == 4 * s);
        CHECK(resolver_refresh_delay_usec(300 * s, 30, 1 * s, 60 * s) == 60 * s);
}

static void test_sockaddr_to_string(void)
{
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(8080) };
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
        char buf[SOCKADDR_STR_MAX];

        inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
        inet_pton(AF_INET6, "::1", &in6.sin6_addr);
        CHECK(streq(sockaddr_to_string((struct sockaddr *)&in, buf, sizeof(buf)), "127.0.0.2:8080"));
        CHECK(streq(sockaddr_to_string((struct sockaddr *)&in6, buf, sizeof(buf)), "[::1]:443"));
}

/* Keys stay the caller's: the map points at them, and frees none (ASan would say otherwise).
 * Sized for 100, it grows past that as any map does. */
static void test_hashmap_borrowing(void)
{
        static char keys[300][8];
        Hashmap *m = hashmap_new_borrowing(100);
        CHECK(m);
        for (int i = 0; i < 300; i++) {
                snprintf(keys[i], sizeof(keys[i]), "n%d", i);
                CHECK(hashmap_put(m, keys[i], strlen(keys[i]), keys[i]) == 0);
        }
        CHECK(hashmap_size(m) == 300);
        CHECK(hashmap_get(m, "n299", 4) == keys[299]);
        CHECK(hashmap_remove(m, "n7", 2) == keys[7]);
        CHECK(hashmap_get(m, "n7", 2) == NULL);
        CHECK(strcmp(keys[7], "n7") == 0);
        CHECK(hashmap_put(m, "extra", 5, keys[0]) == 0);
        for (int i = 0; i < 300; i++)
                CHECK(hashmap_get(m, keys[i], strlen(keys[i])) == (i == 7 ? NULL : keys[i]));
        hashmap_free(m);
}

/* A field of /proc/thread-self/sched ("se.slice", "policy"): -1 when not shown (kernels before
 * 6.6 show no slice). */
static long long proc_sched(const char *field)
{
        FILE *f = fopen("/proc/thread-self/sched", "re");
        char line[256];
        long long v = -1;
        size_t len = strlen(field);
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, field, len) == 0 && line[len] == ' ')
                        (void)sscanf(strchr(line, ':') + 1, "%lld", &v);
        if (f)
                fclose(f);
        return v;
}

static void test_thread_sched(void)
{
        long long before = proc_sched("se.slice");
        int r = thread_ask_short_slice();
        if (before < 0 || r < 0) {
                printf("# skipped: this kernel shows no slice or took none (%d)\n", r);
                return;
        }
        CHECK(proc_sched("se.slice") == THREAD_SHORT_SLICE_USEC * 1000LL);
        CHECK(before > THREAD_SHORT_SLICE_USEC * 1000LL);
        CHECK(proc_sched("policy") == 0);
        /* The weight is the nice value's, as before. */
        CHECK(getpriority(PRIO_PROCESS, 0) == 0);

        /* Lowered (no capability needed): the default slice again; never raised back. */
        CHECK(thread_lower_priority(THREAD_CONTROL_NICE) == 0);
        CHECK(getpriority(PRIO_PROCESS, 0) == THREAD_CONTROL_NICE);
        CHECK(thread_lower_priority(THREAD_CONTROL_NICE - 1) == 0);
        CHECK(getpriority(PRIO_PROCESS, 0) == THREAD_CONTROL_NICE);
        CHECK(thread_lower_priority(THREAD_STATE_NICE) == 0);
        CHECK(getpriority(PRIO_PROCESS, 0) == THREAD_STATE_NICE);
        CHECK(proc_sched("policy") == 0);
        CHECK(proc_sched("se.slice") == before);
}

int main(void)
{
        test_hashmap();
        test_hashmap_borrowing();
        test_refresh_delay();
        test_sockaddr_to_string();
        test_thread_sched();
        TEST_MAIN_END();
}
