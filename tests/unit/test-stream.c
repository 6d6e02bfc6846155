/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "net/stream.h"
#include "tap.h"

static void on_read(Stream *s, void *userdata) {}
static void on_drain(Stream *s, void *userdata) {}
static void on_connect(Stream *s, int error, void *userdata) {}
static void on_error(Stream *s, int error, void *userdata) {}

static const StreamHandler handler = { on_read, on_drain, on_connect, on_error };

/* stream_read_now() says what the read gave, whatever errno held before or after it. */
static void test_read_results(struct event_base *base)
{
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        Stream s;
        CHECK(stream_init(&s, base, sv[0], &handler, NULL) == 0);

        errno = EPIPE;
        CHECK(stream_read_now(&s) == -EAGAIN); /* nothing there yet */

        CHECK(write(sv[1], "hello", 5) == 5);
        errno = EAGAIN;
        CHECK(stream_read_now(&s) == 5);
        CHECK(evbuffer_get_length(s.in) == 5 && s.bytes_read == 5);

        /* No room to read into (here: the buffer's end frozen): the read's own error, not
         * whatever errno held (EAGAIN would make the caller wait forever, 0 look like EOF). */
        CHECK(write(sv[1], "x", 1) == 1);
        evbuffer_freeze(s.in, 0);
        errno = EAGAIN;
        CHECK(stream_read_now(&s) == -ENOMEM);
        errno = 0;
        CHECK(stream_read_now(&s) == -ENOMEM);
        CHECK(!s.eof);
        evbuffer_unfreeze(s.in, 0);
        CHECK(stream_read_now(&s) == 1);

        CHECK(shutdown(sv[1], SHUT_WR) == 0);
        errno = EAGAIN;
        CHECK(stream_read_now(&s) == 0);
        CHECK(s.eof);
        stream_done(&s);
        close(sv[1]);
}

/* A peer that closes with our data unread resets the connection: the errno comes through. */
static void test_read_reset(struct event_base *base)
{
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        Stream s;
        CHECK(stream_init(&s, base, sv[0], &handler, NULL) == 0);

        CHECK(write(sv[0], "unread", 6) == 6);
        close(sv[1]);
        errno = EAGAIN;
        CHECK(stream_read_now(&s) == -ECONNRESET);
        stream_done(&s);
}

/* An owner's own buffers: stream_write() sends what the socket takes at once and keeps only
 * the rest, stream_read_into() reads what has come without the read event. */
static void test_own_buffers(struct event_base *base)
{
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        Stream s;
        CHECK(stream_init(&s, base, sv[0], &handler, NULL) == 0);

        CHECK(stream_write(&s, "hello", 5) == 0);
        CHECK(stream_pending_out(&s) == 0 && !s.writing && s.bytes_written == 5);
        char buf[64];
        CHECK(read(sv[1], buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0);

        /* More than the socket takes: the rest waits in s->out for the write event. */
        static char big[1 << 20];
        CHECK(stream_write(&s, big, sizeof(big)) == 0);
        CHECK(stream_pending_out(&s) > 0 && stream_pending_out(&s) < sizeof(big));
        CHECK(s.writing);
        CHECK(s.bytes_written + stream_pending_out(&s) == 5 + sizeof(big));

        CHECK(stream_read_into(&s, buf, sizeof(buf)) == -EAGAIN);
        CHECK(write(sv[1], "abc", 3) == 3);
        CHECK(stream_read_into(&s, buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0);
        CHECK(evbuffer_get_length(s.in) == 0 && s.bytes_read == 3);
        CHECK(shutdown(sv[1], SHUT_WR) == 0);
        CHECK(stream_read_into(&s, buf, sizeof(buf)) == 0);
        CHECK(s.eof);
        stream_done(&s);
        close(sv[1]);
}

int main(void)
{
        struct event_base *base = event_base_new();
        CHECK(base);
        test_read_results(base);
        test_read_reset(base);
        test_own_buffers(base);
        event_base_free(base);
        TEST_MAIN_END();
}
