/* SPDX-License-Identifier: MIT */
#pragma once

/* Waking an event loop from another thread without libevent's locks: an eventfd watched by the
 * loop. event_active() from another thread needs evthread locks, which would cost every
 * request about 10% more instructions, so lbproxy never turns them on and every wake-up from
 * another thread is one of these; a write to an eventfd needs nothing. Signals made before the
 * loop runs the callback are coalesced into one call. */

#include <event2/event.h>

typedef struct Wake {
        int fd;
        struct event *ev;
        event_callback_fn callback;
        void *userdata;
} Wake;

/* `callback(-1, EV_READ, userdata)` runs on `base`'s loop after wake_signal(). */
int wake_init(Wake *w, struct event_base *base, event_callback_fn callback, void *userdata);
/* Any thread. */
void wake_signal(Wake *w);
/* On the loop's thread, or once it has ended. */
void wake_done(Wake *w);
