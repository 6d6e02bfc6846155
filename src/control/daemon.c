/* SPDX-License-Identifier: MIT */
#include <systemd/sd-daemon.h>

#include "base/log.h"
#include "control/daemon.h"

void daemon_notify_ready(const char *status)
{
        (void)sd_notifyf(false, "READY=1\nSTATUS=%s", status);
}

void daemon_notify_status(const char *status)
{
        (void)sd_notifyf(false, "STATUS=%s", status);
}

void daemon_notify_reloading(void)
{
        /* MONOTONIC_USEC lets systemd tell this reload from an earlier one (systemd 253+). */
        (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                         (unsigned long long)now_usec(CLOCK_MONOTONIC));
}

void daemon_notify_stopping(void)
{
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Stopping: finishing requests in flight");
}

static void on_watchdog(evutil_socket_t fd, short what, void *userdata)
{
        (void)sd_notify(false, "WATCHDOG=1");
}

struct event *daemon_watchdog_start(struct event_base *base)
{
        uint64_t usec = 0;
        if (sd_watchdog_enabled(false, &usec) <= 0 || usec == 0)
                return NULL;
        usec /= 2;
        struct event *ev = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
        if (!ev)
                return NULL;
        struct timeval tv = { .tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
        event_add(ev, &tv);
        (void)sd_notify(false, "WATCHDOG=1");
        return ev;
}
