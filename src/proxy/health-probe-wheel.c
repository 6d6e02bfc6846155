/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <sys/epoll.h>

#include "base/util.h"
#include "proxy/health-probe-conn.h"
#include "proxy/health-probe-wheel.h"

static uint64_t now_tick(void)
{
        return now_usec(CLOCK_MONOTONIC) / PROBE_TICK_USEC;
}

static ProbeWheelEntry *slot_of(ProbeWheel *w, uint64_t tick)
{
        return &w->heads[tick % PROBE_WHEEL_SLOTS];
}

/* libevent's clock is CLOCK_MONOTONIC_COARSE (unless a base asks for a precise one), which moves
 * in whole kernel ticks (4 ms at HZ=250). A timeout that ends between two ticks wakes epoll
 * before that clock has reached the deadline about half the time, and libevent waits again, a
 * millisecond: two wake-ups for one step. A timeout of whole ticks, less a margin under a
 * millisecond, ends on a tick (libevent counts from a tick, and epoll's milliseconds round the
 * margin up again): one wake-up. The step then runs up to a tick late. 0: no such clock. */
static uint64_t coarse_tick_usec(void)
{
        struct timespec ts;
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) < 0 || ts.tv_sec > 0)
                return 0;
        uint64_t usec = (uint64_t)ts.tv_nsec / 1000;
        return usec >= USEC_PER_MSEC && usec <= PROBE_TICK_USEC ? usec : 0;
}

#define COARSE_MARGIN_USEC 100

static void arm(ProbeWheel *w, uint64_t tick)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC), at = tick * PROBE_TICK_USEC;
        uint64_t usec = at > now ? at - now : 0;
        if (usec > 0 && w->coarse_usec > 0)
                usec = (usec + w->coarse_usec - 1) / w->coarse_usec * w->coarse_usec -
                       COARSE_MARGIN_USEC;
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        evtimer_add(&w->timer, &tv);
        w->armed = true;
        w->armed_tick = tick;
}

/* The first step after `after` whose slot holds an entry (one of a later turn, maybe). */
static uint64_t next_used(const ProbeWheel *w, uint64_t after)
{
        for (uint64_t t = after + 1; t <= after + PROBE_WHEEL_SLOTS; t++) {
                size_t i = t % PROBE_WHEEL_SLOTS;
                uint64_t word = w->used[i / 64] >> (i % 64);
                if (word == 0) { /* the rest of this word is empty: skip it */
                        t += 63 - i % 64;
                        continue;
                }
                t += (uint64_t)__builtin_ctzll(word);
                return t;
        }
        assert(!"an entry in the wheel, but no slot marked");
        return after + 1;
}

void probe_wheel_del(ProbeWheel *w, ProbeWheelEntry *e)
{
        if (!e->prev)
                return;
        e->prev->next = e->next;
        e->next->prev = e->prev;
        e->next = e->prev = NULL;
        w->n--;
        size_t i = e->due_tick % PROBE_WHEEL_SLOTS;
        if (w->heads[i].next == &w->heads[i])
                w->used[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

void probe_wheel_add(ProbeWheel *w, ProbeWheelEntry *e, uint64_t usec)
{
        probe_wheel_add_at(w, e, now_usec(CLOCK_MONOTONIC) + usec);
}

static void add_tick(ProbeWheel *w, ProbeWheelEntry *e, uint64_t due);

void probe_wheel_add_at(ProbeWheel *w, ProbeWheelEntry *e, uint64_t at)
{
        add_tick(w, e, (at + PROBE_TICK_USEC - 1) / PROBE_TICK_USEC);
}

/* In a step, the step after it, by its number: the look a step later at what the probes started
 * in this one did (health-probe-step.c) is one step for all of them, whether the step ran at the
 * start of its 10 ms or, woken late (the coarse clock: up to 4 ms), past the middle, where
 * "half a step from now" would have been the step after next for some. Outside a step (a TLS
 * handshake's end), at least half a step from now, as probe_wheel_add(). */
void probe_wheel_add_next_step(ProbeWheel *w, ProbeWheelEntry *e)
{
        if (!w->running) {
                probe_wheel_add(w, e, PROBE_TICK_USEC / 2);
                return;
        }
        uint64_t now = now_tick();
        add_tick(w, e, (w->done_tick > now ? w->done_tick : now) + 1);
}

static void add_tick(ProbeWheel *w, ProbeWheelEntry *e, uint64_t due)
{
        probe_wheel_del(w, e);
        if (due <= w->done_tick)
                due = w->done_tick + 1; /* that step ran already: the next */
        e->due_tick = due;
        ProbeWheelEntry *h = slot_of(w, due);
        e->prev = h->prev;
        e->next = h;
        h->prev->next = e;
        h->prev = e;
        size_t i = due % PROBE_WHEEL_SLOTS;
        w->used[i / 64] |= UINT64_C(1) << (i % 64);
        w->n++;
        /* While the due run, the timer is set once they are done. */
        if (!w->running && (!w->armed || due < w->armed_tick))
                arm(w, due);
}

/* The first entry of the slot of `tick` due by then (not one of a later turn), or NULL. */
static ProbeWheelEntry *first_due(ProbeWheel *w, uint64_t tick)
{
        ProbeWheelEntry *h = slot_of(w, tick);
        for (ProbeWheelEntry *e = h->next; e != h; e = e->next)
                if (e->due_tick <= tick)
                        return e;
        return NULL;
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
        ProbeWheel *w = userdata;
        w->armed = false;
        w->running = true;
        /* libevent counts from its own clock: the timer may come a little before its step,
         * which it stands for all the same. */
        uint64_t now = now_tick();
        if (now < w->armed_tick)
                now = w->armed_tick;
        /* Late by more than a turn (a suspend): each slot once is every entry. */
        uint64_t from = w->done_tick + 1;
        if (now - w->done_tick > PROBE_WHEEL_SLOTS)
                from = now - PROBE_WHEEL_SLOTS + 1;
        for (uint64_t t = from; t <= now; t++) {
                /* Added from the callbacks for this step or before: the next step. */
                w->done_tick = t;
                ProbeWheelEntry *e;
                while ((e = first_due(w, t))) {
                        probe_wheel_del(w, e);
                        e->due(e);
                }
        }
        w->done_tick = now;
        w->running = false;
        if (w->n > 0)
                arm(w, next_used(w, now));
}

void probe_wheel_init(ProbeWheel *w, struct event_base *base)
{
        *w = (ProbeWheel){ .done_tick = now_tick(), .coarse_usec = coarse_tick_usec(),
                           .connects_fd = epoll_create1(EPOLL_CLOEXEC) };
        for (size_t i = 0; i < PROBE_WHEEL_SLOTS; i++)
                w->heads[i].next = w->heads[i].prev = &w->heads[i];
        evtimer_assign(&w->timer, base, on_timer, w);
}

void probe_wheel_done(ProbeWheel *w)
{
        event_del(&w->timer);
        w->armed = false;
        w->connects_fd = safe_close(w->connects_fd);
}
