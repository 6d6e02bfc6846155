/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <endian.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "journal.h"
#include "util.h"

int journal_connect(void)
{
        static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        /* Connected, so a full journal shows as EAGAIN and poll() waits for its queue. */
        if (connect(fd, (const struct sockaddr *)&sa,
                    offsetof(struct sockaddr_un, sun_path) + sizeof(JOURNAL_SOCKET)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int journal_send(int fd, const struct iovec *fields, size_t n, uint64_t wait_usec)
{
        /* Each field is "NAME=value\n"; a value holding a newline goes as "NAME\n", its length
         * as 64-bit little endian, the value, "\n": five pieces at most. */
        struct iovec w[5 * JOURNAL_FIELDS_MAX + 3];
        uint64_t lengths[JOURNAL_FIELDS_MAX];
        static char newline[] = "\n";
        static char identifier[] = "SYSLOG_IDENTIFIER=";
        size_t j = 0;

        assert(n <= JOURNAL_FIELDS_MAX);
        for (size_t i = 0; i < n; i++) {
                char *base = fields[i].iov_base;
                size_t len = fields[i].iov_len;
                char *eq = memchr(base, '=', len);
                assert(eq && eq > base); /* the names are ours */
                size_t name_len = (size_t)(eq - base), value_len = len - name_len - 1;
                if (memchr(eq + 1, '\n', value_len)) {
                        lengths[i] = htole64(value_len);
                        w[j++] = (struct iovec){ base, name_len };
                        w[j++] = (struct iovec){ newline, 1 };
                        w[j++] = (struct iovec){ &lengths[i], sizeof(lengths[i]) };
                        w[j++] = (struct iovec){ eq + 1, value_len };
                } else
                        w[j++] = (struct iovec){ base, len };
                w[j++] = (struct iovec){ newline, 1 };
        }
        /* As sd_journal_sendv adds it: `journalctl -t lbproxy` and syslog-style output. */
        w[j++] = (struct iovec){ identifier, sizeof(identifier) - 1 };
        w[j++] = (struct iovec){ program_invocation_short_name,
                                 strlen(program_invocation_short_name) };
        w[j++] = (struct iovec){ newline, 1 };

        struct msghdr mh = { .msg_iov = w, .msg_iovlen = j };
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + wait_usec;
        for (;;) {
                if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -EAGAIN;
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                (void)poll(&p, 1, (int)((deadline - now + 999) / 1000));
        }
}
