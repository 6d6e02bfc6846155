/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <time.h>

#include "base/util.h"
#include "proxy/conn-limit.h"
#include "proxy/worker.h"
#include "tap.h"

static void test_default(void)
{
        /* (nofile - 32 - listeners - 3 x workers) / 3 */
        CHECK(conn_limit_default(64, 1, 2) == (64 - 32 - 1 - 6) / 3);
        CHECK(conn_limit_default(65536, 1, 2) == (65536 - 32 - 1 - 6) / 3);
        CHECK(conn_limit_default(1024, 3, 1) == (1024 - 32 - 3 - 3) / 3);
        /* Too small for the daemon's own files: one client at a time still. */
        CHECK(conn_limit_default(20, 1, 1) == 1);
        CHECK(conn_limit_default(0, 1, 1) == 1);
        CHECK(conn_limit_default(UINT64_MAX, 1, 1) > 1000000);
        /* What a limit needs, the other way round. */
        CHECK(conn_limit_fds_needed(0, 1, 2) == 32 + 1 + 6);
        CHECK(conn_limit_fds_needed(100, 1, 2) == 32 + 1 + 6 + 300);
        CHECK(conn_limit_fds_needed(SIZE_MAX, 1, 2) == SIZE_MAX);
        CHECK(conn_limit_fds_needed(conn_limit_default(64, 1, 2), 1, 2) <= 64);
}

static void test_slots(void)
{
        ConnLimit cl;
        conn_limit_init(&cl);
        conn_limit_set_max(&cl, 3);
        CHECK(conn_limit_take(&cl) && conn_limit_take(&cl) && conn_limit_take(&cl));
        CHECK(!conn_limit_take(&cl));
        CHECK(conn_limit_current(&cl) == 3);
        conn_limit_put(&cl);
        CHECK(conn_limit_take(&cl));
        conn_limit_closed(&cl);
        CHECK(conn_limit_current(&cl) == 2);
        /* Lowered below the count: nothing more until enough closed. */
        conn_limit_set_max(&cl, 1);
        CHECK(!conn_limit_take(&cl));
        conn_limit_closed(&cl);
        CHECK(!conn_limit_take(&cl));
        conn_limit_closed(&cl);
        CHECK(conn_limit_take(&cl));
        CHECK(conn_limit_max(&cl) == 1 && conn_limit_current(&cl) == 1);
        conn_limit_done(&cl);
}

static void test_backoff(void)
{
        ConnLimit cl;
        conn_limit_init(&cl);
        CHECK(conn_limit_retry_at(&cl) == 0);

        uint64_t want[] = { 100, 200, 400, 800, 1000, 1000 };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                /* A new back-off starts once the previous one is over. */
                atomic_store(&cl.retry_at_usec, now > 0 ? now - 1 : 0);
                uint64_t until = conn_limit_back_off(&cl, "test", EMFILE);
                CHECK(atomic_load(&cl.backoff_usec) == want[i] * USEC_PER_MSEC);
                CHECK(until >= now + want[i] * USEC_PER_MSEC);
                CHECK(until <= now_usec(CLOCK_MONOTONIC) + want[i] * USEC_PER_MSEC);
                CHECK(conn_limit_retry_at(&cl) == until);
                /* Another failure meanwhile joins it, neither longer nor logged again. */
                CHECK(conn_limit_back_off(&cl, "test", ENFILE) == until);
        }
        CHECK(cl.failed.count == 11); /* failures since the first message, all within a second */
        conn_limit_accepted(&cl);
        atomic_store(&cl.retry_at_usec, 1);
        CHECK(conn_limit_retry_at(&cl) == 0);
        conn_limit_back_off(&cl, "test", ENOBUFS);
        CHECK(atomic_load(&cl.backoff_usec) == 100 * USEC_PER_MSEC);
        conn_limit_done(&cl);
}

static int woken[2];

/* A worker's mailbox as worker.c reads it: the bits go, and the wake-up is counted. */
static void on_wake(evutil_socket_t fd, short what, void *userdata)
{
        Worker *w = userdata;
        if (atomic_exchange(&w->mail_bits, 0) & WORKER_MAIL_ACCEPT)
                woken[w->id]++;
}

static void test_wait_and_wake(void)
{
        struct event_base *base = event_base_new();
        ConnLimit cl;
        Worker w[2] = { 0 };

        conn_limit_init(&cl);
        for (int i = 0; i < 2; i++) {
                w[i].id = (unsigned)i;
                atomic_init(&w[i].accept_waiting, false);
                atomic_init(&w[i].mail_bits, 0);
                CHECK(wake_init(&w[i].mail, base, on_wake, &w[i]) == 0);
        }
        conn_limit_set_workers(&cl, w, 2);
        conn_limit_set_max(&cl, 1);

        /* A slot is free: nothing to wait for. */
        CHECK(!conn_limit_wait(&cl, &w[0], 0));
        CHECK(atomic_load(&cl.n_waiting) == 0);
        CHECK(conn_limit_take(&cl));
        CHECK(conn_limit_wait(&cl, &w[0], 0) && conn_limit_wait(&cl, &w[1], 0));
        CHECK(atomic_load(&cl.n_waiting) == 2);
        /* The connection closes (on either worker): both are woken, once. */
        conn_limit_closed(&cl);
        CHECK(atomic_load(&cl.n_waiting) == 0);
        event_base_loop(base, EVLOOP_NONBLOCK);
        CHECK(woken[0] == 1 && woken[1] == 1);

        /* A back-off: a closing connection ends it for everyone. */
        CHECK(conn_limit_take(&cl));
        uint64_t until = conn_limit_back_off(&cl, "test", EMFILE);
        CHECK(conn_limit_wait(&cl, &w[1], until));
        conn_limit_closed(&cl);
        CHECK(conn_limit_retry_at(&cl) == 0);
        event_base_loop(base, EVLOOP_NONBLOCK);
        CHECK(woken[0] == 1 && woken[1] == 2);

        /* A back-off its timer ends. */
        until = conn_limit_back_off(&cl, "test", EMFILE);
        CHECK(conn_limit_wait(&cl, &w[0], until));
        conn_limit_unwait(&cl, &w[0]);
        conn_limit_unwait(&cl, &w[0]);
        CHECK(atomic_load(&cl.n_waiting) == 0);

        /* A higher maximum wakes who waits at the old one. */
        CHECK(conn_limit_take(&cl));
        CHECK(conn_limit_wait(&cl, &w[0], 0));
        conn_limit_set_max(&cl, 2);
        event_base_loop(base, EVLOOP_NONBLOCK);
        CHECK(woken[0] == 2);

        for (int i = 0; i < 2; i++)
                wake_done(&w[i].mail);
        event_base_free(base);
        conn_limit_done(&cl);
}

/* Threads take and give back slots as fast as they can: the count never passes the maximum. */
#define THREADS 4
#define ROUNDS 200000

typedef struct Shared {
        ConnLimit cl;
        atomic_size_t peak;
        atomic_size_t open;
} Shared;

static void *hammer(void *userdata)
{
        Shared *s = userdata;
        for (int i = 0; i < ROUNDS; i++) {
                if (!conn_limit_take(&s->cl))
                        continue;
                size_t n = atomic_fetch_add(&s->open, 1) + 1;
                size_t p = atomic_load(&s->peak);
                while (n > p && !atomic_compare_exchange_weak(&s->peak, &p, n))
                        ;
                atomic_fetch_sub(&s->open, 1);
                if (i % 2)
                        conn_limit_put(&s->cl);
                else
                        conn_limit_closed(&s->cl);
        }
        return NULL;
}

static void test_threads(void)
{
        Shared s;
        pthread_t t[THREADS];

        conn_limit_init(&s.cl);
        atomic_init(&s.peak, 0);
        atomic_init(&s.open, 0);
        conn_limit_set_max(&s.cl, 2);
        for (int i = 0; i < THREADS; i++)
                CHECK(pthread_create(&t[i], NULL, hammer, &s) == 0);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        CHECK(atomic_load(&s.peak) <= 2);
        CHECK(conn_limit_current(&s.cl) == 0);
        conn_limit_done(&s.cl);
}

int main(void)
{
        test_default();
        test_slots();
        test_backoff();
        test_wait_and_wake();
        test_threads();
        TEST_MAIN_END();
}
