/* SPDX-License-Identifier: MIT */
#pragma once

/* The prober's schedule: when each target is next due, on a grid of PROBE_TICK_USEC, in a timing
 * wheel behind one libevent timer. A thousand targets in libevent's heap cost each re-arm a walk
 * through a dozen other targets' events (a cache miss each) and each its own wake-up; here an
 * add or a removal is a list operation, and everything due in one step runs in one wake-up.
 * The prober's: its targets' starts (health-probe.c) and their checks' looks at the next step
 * (health-probe-step.c), which also share the step's one look at the tcp checks' connects
 * (health-probe-plain.c). */

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 10.24 s of steps: a later due time waits in its slot for the turns between. */
#define PROBE_WHEEL_SLOTS 1024

typedef struct ProbeWheelEntry ProbeWheelEntry;
struct ProbeWheelEntry {
        ProbeWheelEntry *next, *prev; /* in its slot; prev NULL: not in the wheel */
        uint64_t due_tick;
        void (*due)(ProbeWheelEntry *e); /* it is out of the wheel when called */
};

typedef struct ProbeWheel {
        struct event timer;
        bool armed;
        bool running; /* the due are being called */
        uint64_t armed_tick; /* the step the timer is set for */
        uint64_t done_tick;  /* every step up to this one has run */
        uint64_t coarse_usec; /* libevent's clock's tick (see arm()), or 0 */
        /* tcp checks' sockets, in an epoll set that nothing sleeps on: one epoll_wait at a step
         * says which of them connected or failed (health-probe-plain.c). < 0: none, each
         * looked at with a getsockopt. */
        int connects_fd;
        uint64_t connects_tick; /* the step that took its events last */
        size_t n;
        ProbeWheelEntry heads[PROBE_WHEEL_SLOTS]; /* each slot's list, circular */
        uint64_t used[PROBE_WHEEL_SLOTS / 64];    /* the slots that hold entries */
} ProbeWheel;

void probe_wheel_init(ProbeWheel *w, struct event_base *base);
/* `e` due `usec` from now, rounded up to the grid; moved when it was in already. */
void probe_wheel_add(ProbeWheel *w, ProbeWheelEntry *e, uint64_t usec);
/* The same, due at `at` (CLOCK_MONOTONIC, µs). */
void probe_wheel_add_at(ProbeWheel *w, ProbeWheelEntry *e, uint64_t at);
/* `e` due at the next step: the one after the step being run, or half a step from now at least
 * outside one. */
void probe_wheel_add_next_step(ProbeWheel *w, ProbeWheelEntry *e);
void probe_wheel_del(ProbeWheel *w, ProbeWheelEntry *e);
/* Stops its timer; the entries are the caller's. */
void probe_wheel_done(ProbeWheel *w);
