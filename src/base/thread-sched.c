/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <linux/sched.h>
#include <linux/sched/types.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/thread-sched.h"

/* glibc has no wrapper before 2.41. */
static int set_attr(int nice, uint64_t runtime_nsec)
{
        struct sched_attr attr = {
                .size = sizeof(attr),
                .sched_policy = SCHED_NORMAL,
                .sched_nice = nice,
                .sched_runtime = runtime_nsec,
        };
        if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
                return -errno;
        return 0;
}

static int current_nice(int *ret)
{
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (nice == -1 && errno != 0)
                return -errno;
        *ret = nice;
        return 0;
}

/* The process's nice value at start (a unit's Nice=), read by the first caller of
 * thread_lower_priority() from its own: that caller still runs at it, since only callers change
 * a nice value and every thread starts at its creator's (the state writer and a prober made at
 * start, or the control thread, each before any of them lowered its own; a prober made later
 * finds it read already). */
static int base_nice(void)
{
        static atomic_int base = INT_MIN;
        int b = atomic_load_explicit(&base, memory_order_relaxed);
        if (b != INT_MIN)
                return b;
        int now = 0;
        (void)current_nice(&now);
        b = INT_MIN;
        /* Two first callers read the same value: either stores it. */
        (void)atomic_compare_exchange_strong(&base, &b, now);
        return atomic_load_explicit(&base, memory_order_relaxed);
}

/* sched_setattr() sets the nice value too: the thread's own is kept. */
int thread_ask_short_slice(void)
{
        int nice = 0;
        int r = current_nice(&nice);
        if (r < 0)
                return r;
        return set_attr(nice, (uint64_t)THREAD_SHORT_SLICE_USEC * 1000);
}

int thread_lower_priority(int nice)
{
        int now = 0;
        int r = current_nice(&now);
        if (r < 0)
                return r;
        int want = base_nice() + nice;
        if (want > 19)
                want = 19;
        if (want <= now)
                return 0;
        /* 0: the kernel's default slice. */
        return set_attr(want, 0);
}
