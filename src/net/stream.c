/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "base/util.h"
#include "net/stream.h"

/* One read takes at most this much: large enough to amortise the syscall, small enough that a
 * fast peer cannot fill memory before backpressure looks. */
#define READ_CHUNK (64 * 1024)
/* The first read of a stream: a request head and more fit. */
#define READ_FIRST (16 * 1024)

/* Input a transport (TLS) already took off the socket: epoll will not signal it, so the read
 * event is run by hand. Only while reading, so stream_read_stop() and stream_done() (event_del)
 * also cancel it. */
static void kick_pending(Stream *s)
{
        if (s->reading && s->transport && s->transport->has_pending &&
            s->transport->has_pending(s))
                event_active(&s->ev_read, EV_READ, 0);
}

static void update_read_event(Stream *s)
{
        if (s->handshaking)
                return; /* handshake_step() owns the events until the connect ends */

        bool want = s->want_read && !s->eof && !s->connecting &&
                    evbuffer_get_length(s->in) < s->read_max;

        if (want && !s->reading) {
                event_add(&s->ev_read, NULL);
                s->reading = true;
                if (s->transport)
                        kick_pending(s);
        } else if (!want && s->reading) {
                event_del(&s->ev_read);
                s->reading = false;
        }
}

static void set_writing(Stream *s, bool on)
{
        if (on && !s->writing)
                event_add(&s->ev_write, NULL);
        else if (!on && s->writing)
                event_del(&s->ev_write);
        s->writing = on;
}

/* A socket call's result as a stream says it: >= 0 as it is, -EAGAIN for "not now" (EINTR
 * too: the loop will come back), else the negative errno. */
static ssize_t io_result(ssize_t n)
{
        return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
}

/* What a read brought, counted: bytes, or the end of input. */
static ssize_t read_counted(Stream *s, ssize_t n)
{
        if (n > 0)
                s->bytes_read += (uint64_t)n;
        else if (n == 0)
                s->eof = true;
        return n;
}

/* Reads into space reserved in s->in. evbuffer_read() would ask the kernel how much is waiting
 * (an ioctl per read); instead the size adapts: a read that fills its space doubles the next one,
 * up to `room`, so a request head costs one small read and a bulk body few large ones. */
static ssize_t read_plain(Stream *s, size_t room)
{
        size_t want = s->read_size < room ? s->read_size : room;
        struct evbuffer_iovec v[2];
        struct iovec iov[2];

        int nv = evbuffer_reserve_space(s->in, (ev_ssize_t)want, v, 2);
        if (nv <= 0)
                return -ENOMEM;
        size_t total = 0;
        for (int i = 0; i < nv; i++) {
                size_t len = v[i].iov_len;
                if (total + len > want)
                        len = want - total;
                iov[i] = (struct iovec){ .iov_base = v[i].iov_base, .iov_len = len };
                total += len;
        }
        ssize_t n = readv(s->fd, iov, nv);
        if (n <= 0) {
                int r = (int)io_result(n);
                evbuffer_commit_space(s->in, v, 0);
                return r;
        }
        size_t left = (size_t)n;
        int used = 0;
        for (int i = 0; i < nv && left > 0; i++, used++) {
                v[i].iov_len = left < iov[i].iov_len ? left : iov[i].iov_len;
                left -= v[i].iov_len;
        }
        evbuffer_commit_space(s->in, v, used);

        if ((size_t)n == want && s->read_size < READ_CHUNK)
                s->read_size *= 2;
        else if ((size_t)n < want / 4 && s->read_size > READ_FIRST)
                s->read_size /= 2;
        return n;
}

ssize_t stream_read_now(Stream *s)
{
        if (s->handshaking)
                return -EAGAIN; /* no application data before the handshake's end */

        size_t have = evbuffer_get_length(s->in);
        size_t room = s->read_max > have ? s->read_max - have : 0;
        if (room == 0)
                return -EAGAIN;
        if (room > READ_CHUNK)
                room = READ_CHUNK;

        /* Both say -EAGAIN or the error themselves; errno is stale by now (read_plain's
         * evbuffer_commit_space ran after the read, and its -ENOMEM never set it). */
        return read_counted(s, s->transport ? s->transport->read(s, room) : read_plain(s, room));
}

ssize_t stream_read_into(Stream *s, void *buf, size_t len)
{
        assert(evbuffer_get_length(s->in) == 0);
        if (s->handshaking || s->connecting)
                return -EAGAIN;

        return read_counted(s, s->transport ? s->transport->read_into(s, buf, len)
                                            : io_result(read(s->fd, buf, len)));
}

int stream_write(Stream *s, const void *data, size_t len)
{
        size_t taken = 0;
        if (!s->connecting && !s->handshaking && evbuffer_get_length(s->out) == 0) {
                ssize_t n = s->transport ? s->transport->write_from(s, data, len)
                                         : io_result(send(s->fd, data, len, MSG_NOSIGNAL));
                if (n < 0 && n != -EAGAIN)
                        return (int)n;
                if (n > 0)
                        s->bytes_written += (uint64_t)n;
                /* And what the transport left in s->out to go on with. */
                taken = (n > 0 ? (size_t)n : 0) + evbuffer_get_length(s->out);
        }
        if (taken < len && evbuffer_add(s->out, (const char *)data + taken, len - taken) < 0)
                return -ENOMEM;
        if (!s->connecting && !s->handshaking)
                set_writing(s, evbuffer_get_length(s->out) > 0);
        return 0;
}

/* Writes what the socket takes now: >= 0 bytes, -EAGAIN, or a negative errno. */
static ssize_t write_now(Stream *s)
{
        ssize_t n;

        if (s->transport)
                n = s->transport->write(s);
        else {
                n = io_result(evbuffer_write(s->out, s->fd));
        }
        if (n > 0)
                s->bytes_written += (uint64_t)n;
        return n;
}

static void handshake_step(Stream *s);

static void on_read_event(evutil_socket_t fd, short what, void *arg)
{
        Stream *s = arg;

        if (s->handshaking) {
                handshake_step(s);
                return;
        }

        ssize_t n = stream_read_now(s);

        if (n == -EAGAIN)
                return;
        if (n < 0) {
                s->want_read = false;
                update_read_event(s);
                s->handler->on_error(s, (int)n, s->userdata);
                return;
        }
        update_read_event(s);
        /* Decided before the callback, which may free the stream; a read that stopped at `room`
         * may have left whole records behind. */
        if (s->transport)
                kick_pending(s);
        s->handler->on_read(s, s->userdata);
}

static int connect_result(Stream *s)
{
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        return -error;
}

/* Runs the transport's handshake as far as the socket allows now, then waits for the direction
 * it asks for. On the connecting side its end (done or failed) ends the connect; on the accepting
 * side (stream_start_handshake) a failure is an error and success goes on to the input. */
static void handshake_step(Stream *s)
{
        int r = s->transport->handshake(s);
        if (r == -EAGAIN) {
                bool on_write = s->want_write_io;
                /* update_read_event() leaves the events to us while handshaking. */
                if (!on_write && !s->reading)
                        event_add(&s->ev_read, NULL);
                else if (on_write && s->reading)
                        event_del(&s->ev_read);
                s->reading = !on_write;
                set_writing(s, on_write);
                return;
        }

        bool accepted = !s->connecting;
        s->handshaking = false;
        s->connecting = false;
        s->want_write_io = false;
        /* What the owner wrote meanwhile (accepting side) goes out now. */
        set_writing(s, r == 0 && accepted && evbuffer_get_length(s->out) > 0);
        update_read_event(s);
        /* The event may have stayed on from the handshake, and the records after the last
         * handshake message may already be inside the transport. */
        if (r == 0)
                kick_pending(s);
        if (!accepted)
                s->handler->on_connect(s, r, s->userdata);
        else if (r < 0)
                s->handler->on_error(s, r, s->userdata);
}

static void on_write_event(evutil_socket_t fd, short what, void *arg)
{
        Stream *s = arg;

        if (s->handshaking) {
                handshake_step(s);
                return;
        }
        if (s->connecting) {
                int r = connect_result(s);
                if (r == 0 && s->transport && s->transport->handshake) {
                        s->handshaking = true;
                        handshake_step(s);
                        return;
                }
                s->connecting = false;
                set_writing(s, false);
                update_read_event(s);
                s->handler->on_connect(s, r, s->userdata);
                return;
        }

        ssize_t n = write_now(s);
        if (n < 0 && n != -EAGAIN) {
                set_writing(s, false);
                s->handler->on_error(s, (int)n, s->userdata);
                return;
        }
        if (evbuffer_get_length(s->out) == 0) {
                set_writing(s, false);
                s->handler->on_drain(s, s->userdata);
        }
}

int stream_init(Stream *s, struct event_base *base, int fd, const StreamHandler *handler,
                void *userdata)
{
        *s = (Stream){ .fd = fd, .handler = handler, .userdata = userdata, .read_max = READ_CHUNK,
                       .read_size = READ_FIRST };
        s->in = evbuffer_new();
        s->out = evbuffer_new();
        if (!s->in || !s->out) {
                stream_done(s);
                return -ENOMEM;
        }
        event_assign(&s->ev_read, base, fd, EV_READ | EV_PERSIST, on_read_event, s);
        event_assign(&s->ev_write, base, fd, EV_WRITE | EV_PERSIST, on_write_event, s);
        return 0;
}

void stream_done(Stream *s)
{
        if (s->reading)
                event_del(&s->ev_read);
        if (s->writing)
                event_del(&s->ev_write);
        s->reading = s->writing = false;
        if (s->in)
                evbuffer_free(s->in);
        if (s->out)
                evbuffer_free(s->out);
        s->in = s->out = NULL;
        if (s->transport && s->transport->free)
                s->transport->free(s);
        s->transport = NULL;
        s->fd = safe_close(s->fd);
}

void stream_set_transport(Stream *s, const StreamTransport *t, void *data)
{
        s->transport = t;
        s->transport_data = data;
}

int stream_shutdown_write(Stream *s)
{
        if (s->transport && s->transport->shutdown_write)
                s->transport->shutdown_write(s);
        return shutdown(s->fd, SHUT_WR) < 0 ? -errno : 0;
}

const char *stream_error_detail(Stream *s)
{
        return s->transport && s->transport->error_detail ? s->transport->error_detail(s) : NULL;
}

void stream_set_handler(Stream *s, const StreamHandler *handler, void *userdata)
{
        s->handler = handler;
        s->userdata = userdata;
}

void stream_start_handshake(Stream *s)
{
        assert(s->transport && s->transport->handshake);
        assert(!s->connecting && !s->handshaking);

        s->handshaking = true;
        /* The peer speaks first (a ClientHello): wait for it. handshake_step() owns the events
         * from here until the end of the handshake. */
        set_writing(s, false);
        if (!s->reading) {
                event_add(&s->ev_read, NULL);
                s->reading = true;
        }
}

int stream_tcp_socket(int family)
{
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

void stream_tcp_reset_on_close(int fd)
{
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

int stream_connect(Stream *s, const struct sockaddr *sa, socklen_t sa_len)
{
        if (connect(s->fd, sa, sa_len) < 0 && errno != EINPROGRESS)
                return -errno;
        /* Even an immediate success is reported through the event, so the owner sees one path. */
        s->connecting = true;
        update_read_event(s);
        set_writing(s, true);
        return 0;
}

void stream_read_start(Stream *s)
{
        s->want_read = true;
        update_read_event(s);
}

void stream_read_stop(Stream *s)
{
        s->want_read = false;
        update_read_event(s);
}

int stream_flush(Stream *s)
{
        if (s->connecting || s->handshaking)
                return 0; /* written once connected, or once the handshake is done */
        if (evbuffer_get_length(s->out) > 0) {
                /* One writev of every chain; a short write means the socket is full, so the rest
                 * waits for the write event rather than for a second call that would fail. */
                ssize_t n = write_now(s);
                if (n < 0 && n != -EAGAIN)
                        return (int)n;
        }
        set_writing(s, evbuffer_get_length(s->out) > 0);
        return 0;
}
