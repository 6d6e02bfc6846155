/* SPDX-License-Identifier: MIT */
#include <errno.h>
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

/* sched_setattr() sets the nice value too: the thread's own is kept. */
int thread_ask_short_slice(void)
{
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (nice == -1 && errno != 0)
                return -errno;
        return set_attr(nice, (uint64_t)THREAD_SHORT_SLICE_USEC * 1000);
}

/* 0: the kernel's default slice. */
int thread_run_in_background(void)
{
        return set_attr(THREAD_BACKGROUND_NICE, 0);
}
