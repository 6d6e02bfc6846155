/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/util.h"
#include "net/listener.h"
#include "tap.h"

static uint16_t port_of(int fd)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return 0;
        return ntohs(sa.sin_port);
}

static int reuseport(int fd)
{
        int v = -1;
        socklen_t len = sizeof(v);
        (void)getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len);
        return v;
}

static ListenerSpec spec_for(struct sockaddr_in *sa, uint16_t port)
{
        *sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        return (ListenerSpec){ .name = "web", .listen = "127.0.0.1", .address = (struct sockaddr *)sa,
                               .address_len = sizeof(*sa) };
}

/* A socket per worker, one SO_REUSEPORT group on one port (port 0: the first socket's). */
static void test_group(void)
{
        struct sockaddr_in sa;
        ListenerSpec spec = spec_for(&sa, 0);
        Listener *l = NULL;
        size_t n = 0;

        CHECK(listeners_open(&spec, 1, 3, &l, &n) == 0);
        CHECK(n == 1 && l[0].n_fds == 3 && !l[0].activated);
        CHECK(listeners_count_fds(l, n) == 3);
        uint16_t port = port_of(l[0].fds[0]);
        CHECK(port != 0);
        for (size_t i = 0; i < l[0].n_fds; i++)
                CHECK(port_of(l[0].fds[i]) == port && reuseport(l[0].fds[i]) == 1);

        /* A second group on that port: refused, as without SO_REUSEPORT. */
        struct sockaddr_in sa2;
        ListenerSpec again = spec_for(&sa2, port);
        Listener *l2 = NULL;
        size_t n2 = 0;
        CHECK(listeners_open(&again, 1, 2, &l2, &n2) == -EADDRINUSE);
        CHECK(l2 == NULL);
        listeners_free(l, n);

        /* Free again: the group binds. */
        CHECK(listeners_open(&again, 1, 2, &l2, &n2) == 0);
        CHECK(n2 == 1 && l2[0].n_fds == 2 && port_of(l2[0].fds[1]) == port);
        listeners_free(l2, n2);
}

/* One worker: one socket, without SO_REUSEPORT, so nobody can join it. */
static void test_single(void)
{
        struct sockaddr_in sa;
        ListenerSpec spec = spec_for(&sa, 0);
        Listener *l = NULL;
        size_t n = 0;

        CHECK(listeners_open(&spec, 1, 1, &l, &n) == 0);
        CHECK(n == 1 && l[0].n_fds == 1 && reuseport(l[0].fds[0]) == 0);
        listeners_free(l, n);
}

int main(void)
{
        test_group();
        test_single();
        TEST_MAIN_END();
}
