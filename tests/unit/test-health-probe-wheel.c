/* SPDX-License-Identifier: MIT */
/* The prober's schedule (health-probe-wheel.c): entries come due in order, not before their
 * time, on the grid; one removed or moved does not come at its old time; one a turn or more
 * away waits its turn; one added from a callback for "now" comes at the next step. */
#include "base/util.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"
#include "tap.h"

typedef struct Item {
        ProbeWheelEntry e;
        uint64_t want_usec; /* not before */
        uint64_t at_usec;   /* when it came; 0: not yet */
        unsigned order;
        bool again;         /* adds itself again, for now, once */
} Item;

static struct event_base *base;
static ProbeWheel wheel;
static unsigned fired, expected;

static void on_due(ProbeWheelEntry *e)
{
        Item *it = (Item *)e;
        it->at_usec = now_usec(CLOCK_MONOTONIC);
        it->order = ++fired;
        if (it->again) {
                it->again = false;
                it->want_usec = it->at_usec;
                probe_wheel_add(&wheel, &it->e, 0);
        }
        if (fired >= expected)
                event_base_loopbreak(base);
}

static void add(Item *it, uint64_t usec)
{
        it->e.due = on_due;
        it->want_usec = now_usec(CLOCK_MONOTONIC) + usec;
        probe_wheel_add(&wheel, &it->e, usec);
}

/* Runs the loop until `n` came in all, or 2 s. */
static void run_until(unsigned n)
{
        expected = n;
        struct timeval tv = { .tv_sec = 2 };
        event_base_loopexit(base, &tv);
        if (fired < n)
                event_base_dispatch(base);
}

int main(void)
{
        base = event_base_new();
        probe_wheel_init(&wheel, base);

        Item a = { 0 }, b = { 0 }, c = { 0 }, gone = { 0 }, moved = { 0 }, far = { 0 };
        add(&c, 50 * USEC_PER_MSEC);
        add(&a, 0);
        add(&b, 35 * USEC_PER_MSEC);
        add(&gone, 30 * USEC_PER_MSEC);
        add(&moved, 10 * USEC_PER_MSEC);
        add(&far, (PROBE_WHEEL_SLOTS + 3) * PROBE_TICK_USEC); /* a turn and more away */
        probe_wheel_del(&wheel, &gone.e);
        add(&moved, 70 * USEC_PER_MSEC); /* moved later */
        a.again = true;

        run_until(5); /* a, a again, b, c, moved */
        CHECK(fired == 5);
        CHECK(a.order == 2 && a.again == false); /* its second coming, the next step */
        CHECK(b.order == 3 && c.order == 4 && moved.order == 5);
        CHECK(gone.at_usec == 0 && far.at_usec == 0);
        Item *items[] = { &a, &b, &c, &moved };
        for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                /* Not before its time, and not much after (the machine may be busy). */
                CHECK(items[i]->at_usec + 1000 >= items[i]->want_usec);
                CHECK(items[i]->at_usec < items[i]->want_usec + 500 * USEC_PER_MSEC);
        }
        /* The far one is still in: nothing else comes, and removing it empties the wheel. */
        CHECK(wheel.n == 1);
        probe_wheel_del(&wheel, &far.e);
        CHECK(wheel.n == 0);

        probe_wheel_done(&wheel);
        event_base_free(base);
        TEST_MAIN_END();
}
