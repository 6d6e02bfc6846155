/* SPDX-License-Identifier: MIT */
#pragma once

/* A non-blocking byte stream over one socket, with an input and an output evbuffer. The transport
 * (plain TCP now, TLS later through the same interface) is hidden behind it, so connections
 * above only move bytes between buffers.
 *
 * Callbacks are the owner's, and the owner may free the stream inside any of them: the stream
 * never touches itself after calling back. */

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h> /* embedded events: one allocation per connection */
#include <stdbool.h>
#include <sys/socket.h>

typedef struct Stream Stream;

/* Backpressure: past this much waiting in a stream's output, whatever feeds it (the other side
 * of an exchange or a tunnel, the next pipelined request) is not read until it drains. Large
 * enough to keep a fast socket busy, small enough that many slow readers stay cheap. */
#define STREAM_OUT_HIGH_WATER (256 * 1024)

/* How bytes cross the socket: plain TCP (the default, ops NULL) or TLS (tls-stream.c). */
typedef struct StreamTransport {
        /* Reads at most `max` bytes into s->in: > 0 bytes, 0 at end of input, -EAGAIN, or a
         * negative errno. */
        ssize_t (*read)(Stream *s, size_t max);
        /* Writes what it can of s->out, draining what was taken: >= 0 bytes, -EAGAIN, or a
         * negative errno. */
        ssize_t (*write)(Stream *s);
        /* Runs the handshake after the TCP connect: 0 when done, -EAGAIN to wait (for the
         * direction in s->want_write_io), or a negative errno. NULL: no handshake. The stream
         * stays `connecting` meanwhile, so the owner's connect timeout bounds it, and reports
         * the end through on_connect. On an accepted stream it runs from
         * stream_start_handshake() instead (the server side). */
        int (*handshake)(Stream *s);
        /* Reads what has come into `buf` rather than s->in (stream_read_into()), without
         * waiting: > 0 bytes, 0 at end of input, -EAGAIN, or a negative errno. */
        ssize_t (*read_into)(Stream *s, void *buf, size_t len);
        /* Writes from `data` while s->out is empty (stream_write()): the bytes sent, >= 0, or a
         * negative errno. What it took but could not send yet and must go on with (a TLS
         * record the socket did not take) it leaves at the head of s->out, for `write`. */
        ssize_t (*write_from)(Stream *s, const void *data, size_t len);
        /* Input the transport holds that the socket will not signal (buffered TLS records):
         * the stream then runs its read event by hand. */
        bool (*has_pending)(Stream *s);
        /* Ends the output cleanly before the socket's write side is shut (TLS: close_notify,
         * when it can go out at once). NULL: nothing to say. */
        void (*shutdown_write)(Stream *s);
        /* Why the last operation failed, in words (e.g. why a certificate was refused). */
        const char *(*error_detail)(Stream *s);
        void (*free)(Stream *s);
} StreamTransport;

typedef struct StreamHandler {
        /* New bytes in s->in, or end of input (s->eof set). */
        void (*on_read)(Stream *s, void *userdata);
        /* s->out was waiting on the socket and is now empty. */
        void (*on_drain)(Stream *s, void *userdata);
        /* A connect started with stream_connect() finished: 0 or a negative errno. */
        void (*on_connect)(Stream *s, int error, void *userdata);
        /* Reading or writing failed (negative errno); the stream is unusable. */
        void (*on_error)(Stream *s, int error, void *userdata);
} StreamHandler;

struct Stream {
        int fd;
        struct event ev_read, ev_write;
        struct evbuffer *in, *out;
        const StreamHandler *handler;
        void *userdata;
        const StreamTransport *transport; /* NULL: plain TCP */
        void *transport_data;
        bool handshaking;   /* the transport's handshake runs (after the TCP connect, or on an
                               accepted stream from stream_start_handshake()) */
        bool want_write_io; /* the transport waits for the socket to be writable */
        size_t read_max; /* no reading while s->in holds this much: the backpressure */
        size_t read_size; /* the next plain read's size, adapting to the traffic */
        bool want_read;  /* the owner wants input */
        bool reading;    /* ev_read is added */
        bool writing;    /* ev_write is added */
        bool connecting; /* from stream_connect() until on_connect, handshake included */
        bool eof;
        uint64_t bytes_read, bytes_written;
};

/* Takes ownership of `fd` (non-blocking). */
int stream_init(Stream *s, struct event_base *base, int fd, const StreamHandler *handler,
                void *userdata);
/* Closes the socket and frees the buffers; the Stream's memory stays the caller's. */
void stream_done(Stream *s);

void stream_set_handler(Stream *s, const StreamHandler *handler, void *userdata);

/* Puts a transport (e.g. TLS) over the stream before it connects or is used. */
void stream_set_transport(Stream *s, const StreamTransport *t, void *data);

/* The server side of a transport's handshake (TLS termination), on an accepted stream: the
 * handshake runs on the socket's events before any input reaches s->in or any of s->out is
 * written. A failure is reported through on_error; success only by the input that follows. The
 * owner's own timer bounds it (no on_connect is made). */
void stream_start_handshake(Stream *s);

/* A socket for a client stream to an address of `family`: TCP, non-blocking, close-on-exec,
 * with Nagle off (a request or a head goes out as one write, and one in parts must not wait for
 * an ACK). The fd, or a negative errno. */
int stream_tcp_socket(int family);

/* Makes the next close() of TCP socket `fd` a reset (SO_LINGER 0): no closing handshake and no
 * TIME_WAIT, and what the socket still holds to send is dropped, so the peer reads an error,
 * not an end. */
void stream_tcp_reset_on_close(int fd);

/* Starts a non-blocking connect to `sa`: on_connect reports how it ended. */
int stream_connect(Stream *s, const struct sockaddr *sa, socklen_t sa_len);

void stream_read_start(Stream *s);
void stream_read_stop(Stream *s);

/* Writes what s->out holds as far as the socket takes it now, and waits for the socket for the
 * rest (then on_drain). Returns 0 or a negative errno (the stream is then unusable; no callback
 * is made for it). */
int stream_flush(Stream *s);

/* Reads once from the socket into s->in, as the read event would, without calling back. Returns
 * bytes read, 0 at end of input, -EAGAIN, or a negative errno. */
ssize_t stream_read_now(Stream *s);

/* For an owner that reads without the read event (stream_read_start() never called), into a
 * buffer of its own: what has come by now, into buf[0..len), without waiting (with TLS, every
 * whole record of it; a small answer costs one recv()). s->in must be empty. Returns bytes read,
 * 0 at end of input, -EAGAIN when nothing came, or a negative errno; no callback is made. When
 * it fills `len`, more may be held in the transport (stream_has_pending_in()), which epoll will
 * not signal. */
ssize_t stream_read_into(Stream *s, void *buf, size_t len);

/* Writes data[0..len) after what s->out holds, as evbuffer_add() and stream_flush() would, but
 * what the socket takes at once (s->out empty, the stream connected) is not copied: only the
 * rest goes into s->out, written on the socket's events (then on_drain). Before the connect's end
 * it is all copied, for the owner's stream_flush() after on_connect. Returns 0 or a negative
 * errno (the stream is then unusable; no callback is made for it). */
int stream_write(Stream *s, const void *data, size_t len);

/* Ends the output: the transport's goodbye (TLS close_notify), then shutdown(SHUT_WR). Returns 0
 * or a negative errno. */
int stream_shutdown_write(Stream *s);

/* The transport's words for the last failure, or NULL. */
const char *stream_error_detail(Stream *s);

static inline size_t stream_pending_out(const Stream *s)
{
        return evbuffer_get_length(s->out);
}

/* Input the transport took off the socket and the owner has not read yet (TLS records, an end
 * of input or an error held back): epoll will not tell of it. */
static inline bool stream_has_pending_in(Stream *s)
{
        return s->transport && s->transport->has_pending && s->transport->has_pending(s);
}
