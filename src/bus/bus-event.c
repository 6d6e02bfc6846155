/* SPDX-License-Identifier: MIT */
#include <poll.h>

#include "base/util.h"
#include "bus/bus-event.h"

/* Messages processed per turn of the loop before yielding to the proxy. */
#define BATCH 64

static void on_io(evutil_socket_t fd, short what, void *userdata);

struct BusEvent {
        sd_bus *bus;
        struct event_base *base;
        struct event *io;
        struct event *timer;
        struct event *kick;
        short io_events;
        bus_event_disconnect_fn on_disconnect;
        void *userdata;
        bool gone;
};

static void rearm(BusEvent *b)
{
        int fd = sd_bus_get_fd(b->bus);
        int events = sd_bus_get_events(b->bus);
        uint64_t until;

        if (fd < 0 || events < 0)
                return;
        short want = (short)(EV_PERSIST | (events & POLLIN ? EV_READ : 0) |
                             (events & POLLOUT ? EV_WRITE : 0));
        if (!b->io || want != b->io_events) {
                if (b->io)
                        event_free(b->io);
                b->io = NULL;
                b->io = event_new(b->base, fd, want, on_io, b);
                b->io_events = want;
                if (b->io)
                        event_add(b->io, NULL);
        }

        /* sd-bus gives an absolute CLOCK_MONOTONIC deadline; 0 means "process now". */
        if (sd_bus_get_timeout(b->bus, &until) >= 0 && until != UINT64_MAX) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                uint64_t d = until > now ? until - now : 0;
                if (d == 0) {
                        event_active(b->kick, EV_TIMEOUT, 0);
                        return;
                }
                struct timeval tv = { .tv_sec = (time_t)(d / USEC_PER_SEC),
                                      .tv_usec = (suseconds_t)(d % USEC_PER_SEC) };
                evtimer_add(b->timer, &tv);
        } else
                evtimer_del(b->timer);
}

static void process(BusEvent *b)
{
        if (b->gone)
                return;
        for (int i = 0; i < BATCH; i++) {
                int r = sd_bus_process(b->bus, NULL);
                if (r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE) {
                        b->gone = true;
                        b->on_disconnect(b->userdata);
                        return;
                }
                if (r <= 0) {
                        rearm(b);
                        return;
                }
        }
        /* More is waiting: come back after the proxy had its turn. */
        event_active(b->kick, EV_TIMEOUT, 0);
}

static void on_io(evutil_socket_t fd, short what, void *userdata)
{
        process(userdata);
}

static void on_timer_or_kick(evutil_socket_t fd, short what, void *userdata)
{
        process(userdata);
}

int bus_event_attach(sd_bus *bus, struct event_base *base, bus_event_disconnect_fn on_disconnect,
                     void *userdata, BusEvent **ret)
{
        BusEvent *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->bus = sd_bus_ref(bus);
        b->base = base;
        b->on_disconnect = on_disconnect;
        b->userdata = userdata;
        b->timer = evtimer_new(base, on_timer_or_kick, b);
        b->kick = event_new(base, -1, 0, on_timer_or_kick, b);
        if (!b->timer || !b->kick) {
                bus_event_free(b);
                return -ENOMEM;
        }
        event_active(b->kick, EV_TIMEOUT, 0);
        *ret = b;
        return 0;
}

BusEvent *bus_event_free(BusEvent *b)
{
        if (!b)
                return NULL;
        if (b->io)
                event_free(b->io);
        if (b->timer)
                event_free(b->timer);
        if (b->kick)
                event_free(b->kick);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}

void bus_event_kick(BusEvent *b)
{
        if (b && !b->gone)
                event_active(b->kick, EV_TIMEOUT, 0);
}
