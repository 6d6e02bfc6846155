/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/eventfd.h>

#include "base/util.h"
#include "base/wake.h"

static void on_wake(evutil_socket_t fd, short what, void *userdata)
{
        Wake *w = userdata;
        eventfd_t n;
        (void)eventfd_read(w->fd, &n); /* the count goes; the signals are one call */
        w->callback(-1, EV_READ, w->userdata);
}

int wake_init(Wake *w, struct event_base *base, event_callback_fn callback, void *userdata)
{
        *w = (Wake){ .fd = -EBADF, .callback = callback, .userdata = userdata };
        w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->fd < 0)
                return -errno;
        w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, on_wake, w);
        if (!w->ev || event_add(w->ev, NULL) < 0) {
                wake_done(w);
                return -ENOMEM;
        }
        return 0;
}

void wake_signal(Wake *w)
{
        if (w->fd >= 0)
                (void)eventfd_write(w->fd, 1);
}

void wake_done(Wake *w)
{
        if (w->ev)
                event_free(w->ev);
        w->ev = NULL;
        w->fd = safe_close(w->fd);
}
