/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/tunnel.h"

/* A direction of plain sockets that has moved this much is bulk: it goes over splice(2), kernel
 * to kernel through a pipe, no copy through user space. Short exchanges stay on the buffers and
 * never cost the pipe's two file descriptors. */
#define SPLICE_AFTER (256 * 1024)
#define PIPE_SIZE (64 * 1024)

typedef struct Direction {
        Tunnel *tunnel;
        Stream *from, *to;
        uint64_t bytes;
        uint64_t splice_after; /* bytes moved before splice is tried (again) */
        bool shut; /* from's end of input was passed on as to's end of output */

        /* splice mode */
        bool splicing;
        int pipe[2];
        size_t in_pipe;
        bool from_eof;
        struct event *rd, *wr; /* our own events on from->fd and to->fd */
} Direction;

struct Tunnel {
        struct event_base *base;
        Direction ab, ba;
        struct event *idle;
        uint64_t idle_usec;
        tunnel_done_fn done;
        void *userdata;
        bool over;
};

static void splice_done(Direction *d)
{
        if (d->rd)
                event_free(d->rd);
        if (d->wr)
                event_free(d->wr);
        d->rd = d->wr = NULL;
        d->pipe[0] = safe_close(d->pipe[0]);
        d->pipe[1] = safe_close(d->pipe[1]);
}

static void finish(Tunnel *t, int error)
{
        if (t->over)
                return;
        t->over = true;
        event_del(t->idle);
        splice_done(&t->ab);
        splice_done(&t->ba);
        t->done(t->userdata, error); /* may free t */
}

static void touch(Tunnel *t)
{
        struct timeval tv = { .tv_sec = (time_t)(t->idle_usec / USEC_PER_SEC),
                              .tv_usec = (suseconds_t)(t->idle_usec % USEC_PER_SEC) };
        event_add(t->idle, &tv);
}

static void check(Tunnel *t, int r);

/* Moves bytes from->pipe->to until neither side takes more now. Returns 0 or a negative
 * errno. */
static int splice_move(Direction *d)
{
        for (int rounds = 0; rounds < 16; rounds++) {
                bool progress = false;

                if (!d->from_eof && d->in_pipe < PIPE_SIZE) {
                        ssize_t n = splice(d->from->fd, NULL, d->pipe[1], NULL,
                                           PIPE_SIZE - d->in_pipe,
                                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                        if (n > 0) {
                                d->in_pipe += (size_t)n;
                                d->bytes += (uint64_t)n;
                                d->from->bytes_read += (uint64_t)n;
                                progress = true;
                        } else if (n == 0)
                                d->from_eof = true;
                        else if (errno != EAGAIN && errno != EINTR)
                                return -errno;
                }
                if (d->in_pipe > 0) {
                        ssize_t n = splice(d->pipe[0], NULL, d->to->fd, NULL, d->in_pipe,
                                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                        if (n > 0) {
                                d->in_pipe -= (size_t)n;
                                d->to->bytes_written += (uint64_t)n;
                                progress = true;
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                }
                if (!progress)
                        break;
        }

        if (d->from_eof && d->in_pipe == 0 && !d->shut) {
                d->shut = true;
                (void)shutdown(d->to->fd, SHUT_WR);
        }
        /* Read while the pipe has room; wait for the writer while it holds bytes. */
        if (!d->from_eof && d->in_pipe < PIPE_SIZE)
                event_add(d->rd, NULL);
        else
                event_del(d->rd);
        if (d->in_pipe > 0)
                event_add(d->wr, NULL);
        else
                event_del(d->wr);
        return 0;
}

static void on_splice_event(evutil_socket_t fd, short what, void *userdata)
{
        Direction *d = userdata;
        Tunnel *t = d->tunnel;
        uint64_t before = d->bytes;
        int r = splice_move(d);
        if (d->bytes != before)
                touch(t);
        check(t, r);
}

/* A direction between plain sockets, once bulk and with nothing left in the buffers, moves to
 * splice. Returns true when it did. */
static bool maybe_splice(Tunnel *t, Direction *d, struct event_base *base)
{
        if (d->splicing || d->bytes < d->splice_after || d->from->transport ||
            d->to->transport || d->from->eof || evbuffer_get_length(d->from->in) > 0 ||
            stream_pending_out(d->to) > 0)
                return d->splicing;
        if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
                /* Out of descriptors (the daemon at its fd limit): stay on the buffers, and
                 * try again after as much more, not at every read. */
                d->pipe[0] = d->pipe[1] = -EBADF;
                d->splice_after = d->bytes + SPLICE_AFTER;
                return false;
        }
        (void)fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
        d->rd = event_new(base, d->from->fd, EV_READ | EV_PERSIST, on_splice_event, d);
        d->wr = event_new(base, d->to->fd, EV_WRITE | EV_PERSIST, on_splice_event, d);
        if (!d->rd || !d->wr) {
                splice_done(d);
                return false;
        }
        stream_read_stop(d->from); /* from now on our own events watch from->fd */
        d->splicing = true;
        (void)splice_move(d);
        return true;
}

/* Moves what `d->from` has to `d->to` and passes an end of input on once all is out. Returns 0
 * or a negative errno. */
static int pump(Tunnel *t, Direction *d)
{
        if (d->splicing)
                return 0; /* the splice events drive it */
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
        if (maybe_splice(t, d, t->base))
                return 0;
        if (d->from->eof && pending == 0 && !d->shut) {
                d->shut = true;
                /* Half-close: the peer sees the end, and may still answer the other way. */
                (void)stream_shutdown_write(d->to);
        }
        if (d->from->eof || pending >= STREAM_OUT_HIGH_WATER)
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
        t->base = base;
        t->ab = (Direction){ .tunnel = t, .from = a, .to = b, .pipe = { -EBADF, -EBADF },
                             .splice_after = SPLICE_AFTER };
        t->ba = (Direction){ .tunnel = t, .from = b, .to = a, .pipe = { -EBADF, -EBADF },
                             .splice_after = SPLICE_AFTER };
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
        splice_done(&t->ab);
        splice_done(&t->ba);
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
