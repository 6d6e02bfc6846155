/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/sched/types.h>
#include <linux/sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/thread-slice.h"

int thread_ask_short_slice(void)
{
        /* glibc has no wrapper before 2.41. Policy SCHED_OTHER at the thread's own nice value
         * (0 here: sched_setattr sets it too, so it is read first). */
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (nice == -1 && errno != 0)
                return -errno;
        struct sched_attr attr = {
                .size = sizeof(attr),
                .sched_policy = SCHED_NORMAL, /* SCHED_OTHER */
                .sched_nice = nice,
                .sched_runtime = (__u64)THREAD_SHORT_SLICE_USEC * 1000,
        };
        if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
                return -errno;
        return 0;
}
