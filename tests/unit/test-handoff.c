/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "base/util.h"
#include "proxy/handoff.h"
#include "tap.h"

static int open_fd(void)
{
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static bool is_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

/* The receiver is woken by the push that finds the queue empty, and by nothing else; it takes
 * in order, a batch at a time, and is told when more is left. */
static void test_order_and_wake(void)
{
        Handoff h;
        Listener l = { .name = (char *)"web" };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(1) };
        HandedConn got[4];
        bool more;

        handoff_init(&h);
        CHECK(handoff_take(&h, got, 4, &more) == 0 && !more);
        int fds[200];
        for (int i = 0; i < 200; i++) {
                fds[i] = open_fd();
                sa.sin_port = htons((uint16_t)(i + 1));
                int r = handoff_push(&h, fds[i], (struct sockaddr *)&sa, sizeof(sa), &l);
                CHECK(r == (i == 0 ? 1 : 0));
        }
        size_t n = handoff_take(&h, got, 4, &more);
        CHECK(n == 4 && more);
        for (size_t i = 0; i < n; i++) {
                CHECK(got[i].fd == fds[i] && got[i].listener == &l);
                CHECK(ntohs(((struct sockaddr_in *)&got[i].peer)->sin_port) == i + 1);
                safe_close(got[i].fd);
        }
        /* Not empty: a push wakes nobody. */
        int extra = open_fd();
        CHECK(handoff_push(&h, extra, (struct sockaddr *)&sa, sizeof(sa), &l) == 0);
        /* What is left is closed with the queue, and counted (each held a slot). */
        CHECK(handoff_done(&h) == 197);
        CHECK(!is_open(fds[199]) && !is_open(extra));
}

/* Emptied, the next push wakes again. */
static void test_wake_after_drain(void)
{
        Handoff h;
        Listener l = { .name = (char *)"web" };
        struct sockaddr_in sa = { .sin_family = AF_INET };
        HandedConn got[8];
        bool more;

        handoff_init(&h);
        CHECK(handoff_push(&h, open_fd(), (struct sockaddr *)&sa, sizeof(sa), &l) == 1);
        CHECK(handoff_take(&h, got, 8, &more) == 1 && !more);
        safe_close(got[0].fd);
        CHECK(handoff_push(&h, open_fd(), (struct sockaddr *)&sa, sizeof(sa), &l) == 1);
        CHECK(handoff_done(&h) == 1);
}

int main(void)
{
        test_order_and_wake();
        test_wake_after_drain();
        TEST_MAIN_END();
}
