/* SPDX-License-Identifier: MIT */
#include <sys/socket.h>

#include "tunnel.h"
#include "util.h"

/* Past this much waiting for one side, the other is not read. */
#define HIGH_WATER (256 * 1024)

typedef struct Direction {
        Stream *from, *to;
        uint64_t bytes;
        bool shut; /* from's end of input was passed on as to's end of output */
} Direction;

struct Tunnel {
        Direction ab, ba;
        struct event *idle;
        uint64_t idle_usec;
        tunnel_done_fn done;
        void *userdata;
        bool over;
};

static void finish(Tunnel *t, int error)
{
        if (t->over)
                return;
        t->over = true;
        event_del(t->idle);
        t->done(t->userdata, error); /* may free t */
}

static void touch(Tunnel *t)
{
        struct timeval tv = { .tv_sec = (time_t)(t->idle_usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(t->idle_usec % USEC_PER_SEC) };
        event_add(t->idle, &tv);
}

/* Moves what `d->from` has to `d->to` and passes an end of input on once all is out. Returns 0
 * or a negative errno. */
static int pump(Tunnel *t, Direction *d)
{
        size_t n = evbuffer_get_length(d->from->in);
        if (n > 0) {
                evbuffer_add_buffer(d->to->out, d->from->in);
                d->bytes += n;
                touch(t);
        }
        int r = stream_flush(d->to);
        if (r < 0)
                return r;

        size_t pending = stream_pending_out(d->to);
        if (d->from->eof && pending == 0 && !d->shut) {
                d->shut = true;
                /* Half-close: the peer sees the end, and may still answer the other way. */
                (void)shutdown(d->to->fd, SHUT_WR);
        }
        if (d->from->eof || pending >= HIGH_WATER)
                stream_read_stop(d->from);
        else
                stream_read_start(d->from);
        return 0;
}

static int pump_both(Tunnel *t)
{
        int r = pump(t, &t->ab);
        if (r >= 0)
                r = pump(t, &t->ba);
        return r;
}

static void check(Tunnel *t, int r)
{
        if (r < 0)
                finish(t, r);
        else if (t->ab.shut && t->ba.shut)
                finish(t, 0);
}

static void on_idle(evutil_socket_t fd, short what, void *userdata)
{
        finish(userdata, -ETIMEDOUT);
}

int tunnel_new(struct event_base *base, Stream *a, Stream *b, uint64_t idle_usec,
               tunnel_done_fn done, void *userdata, Tunnel **ret)
{
        Tunnel *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ab = (Direction){ .from = a, .to = b };
        t->ba = (Direction){ .from = b, .to = a };
        t->idle_usec = idle_usec ? idle_usec : 300 * USEC_PER_SEC;
        t->done = done;
        t->userdata = userdata;
        t->idle = evtimer_new(base, on_idle, t);
        if (!t->idle) {
                free(t);
                return -ENOMEM;
        }
        touch(t);
        *ret = t;
        return 0;
}

Tunnel *tunnel_free(Tunnel *t)
{
        if (!t)
                return NULL;
        event_free(t->idle);
        free(t);
        return NULL;
}

void tunnel_start(Tunnel *t)
{
        check(t, pump_both(t));
}

void tunnel_on_read(Tunnel *t, Stream *s)
{
        check(t, pump(t, s == t->ab.from ? &t->ab : &t->ba));
}

void tunnel_on_drain(Tunnel *t, Stream *s)
{
        /* s's output drained: the direction that writes to s may move again. */
        check(t, pump(t, s == t->ab.to ? &t->ab : &t->ba));
}

void tunnel_on_error(Tunnel *t, Stream *s, int error)
{
        finish(t, error);
}

uint64_t tunnel_bytes_a_to_b(const Tunnel *t)
{
        return t->ab.bytes;
}

uint64_t tunnel_bytes_b_to_a(const Tunnel *t)
{
        return t->ba.bytes;
}
