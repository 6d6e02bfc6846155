/* SPDX-License-Identifier: MIT */
#pragma once

/* The loopback server side of the probe connection tests (test-health-probe-conn.c, plain;
 * test-health-probe-tls.c, TLS): its listening socket and its accept loop's wait, each server
 * thread answering as its test's mode says. */

#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket on 127.0.0.1, a port of the kernel's choice, said in *sin; -1 on failure
 * (said on stderr). */
static inline int probe_test_listen(struct sockaddr_in *sin)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        *sin = (struct sockaddr_in){ .sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(*sin);
        if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *)sin, &len) < 0) {
                perror("listen");
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* The next connection, when one comes within 20 ms (so that the loop sees its stop flag): its
 * fd, or -1. */
static inline int probe_test_accept(int listen_fd)
{
        struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
        if (poll(&pfd, 1, 20) <= 0)
                return -1;
        return accept(listen_fd, NULL, NULL);
}

/* Waits (at most 2 s) until the server counted `want` in `counter`. */
static inline void probe_test_wait_count(atomic_uint *counter, unsigned want)
{
        for (int i = 0; i < 200 && atomic_load(counter) < want; i++)
                usleep(10 * 1000);
}
