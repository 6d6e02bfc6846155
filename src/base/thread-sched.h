/* SPDX-License-Identifier: MIT */
#pragma once

/* How lbproxy's threads ask the scheduler to share a core, so that a request waits as little
 * as can be for the control plane's work on the same core (tests/bench/changes.py measures it).
 *
 * - A worker asks for a short time slice. Linux's EEVDF scheduler (6.6 on) takes a SCHED_OTHER
 *   thread's sched_runtime as the slice it asks for (6.12 on), and a thread that wakes with a
 *   shorter slice than the running one's may preempt it. Its weight, and so its share of a busy
 *   core, is as before. Measured with perf sched over 200 changes: a worker's wake-ups that
 *   waited over 1 ms went from 42-126 to 11-34, the longest from 5.5-6.1 to 2.5-3.4 ms.
 * - The state writer runs at nice 10 (its work delays only the reply to a change).
 * - The control thread stays at the default: as SCHED_IDLE (tried) a request preempts it at once,
 *   but any busy process on the host starves it too (changes and etcd's updates then took
 *   seconds), and what it does is the service's own control plane.
 *
 * sched_setattr(), not setpriority() or nice(): the unit lets only it through of the @resources
 * system calls it refuses. Each returns 0, or a negative errno when the kernel refused (nothing
 * changed then; a kernel before 6.12 ignores the slice). */

/* The slice a worker asks for: the least Linux takes. */
#define THREAD_SHORT_SLICE_USEC 100
/* The state writer's nice value. */
#define THREAD_BACKGROUND_NICE 10

int thread_ask_short_slice(void);
int thread_run_in_background(void);
