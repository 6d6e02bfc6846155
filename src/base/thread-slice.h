/* SPDX-License-Identifier: MIT */
#pragma once

/* A thread that serves requests asks the scheduler for a short time slice. Linux's EEVDF
 * scheduler (6.6 on) takes a SCHED_OTHER thread's sched_runtime as the slice it asks for (6.12
 * on), and a thread that wakes with a shorter slice than the one running on its CPU preempts it
 * at once. So a worker woken by a request runs before the rest of a change (the control
 * thread's model build, the state writer) that shares its core, instead of after the running
 * thread's default slice of a few milliseconds; over time the CPU is shared as before (the
 * weight is unchanged). Older kernels ignore it or refuse it: either is fine. */

/* The slice asked for: the least Linux takes. */
#define THREAD_SHORT_SLICE_USEC 100

/* For the calling thread. Returns 0, or a negative errno when the kernel refused (nothing
 * changed then). */
int thread_ask_short_slice(void);
