/* SPDX-License-Identifier: MIT */
#pragma once

/* How lbproxy's threads ask the scheduler to share a core, so that a request waits as little
 * as can be for the control plane's work on the same core. tests/bench/changes.py --perf-sched
 * measures a worker's waits for its CPU during 200 changes, and who held it.
 *
 * - A worker asks for a short time slice. Linux's EEVDF scheduler (6.6 on) takes a SCHED_OTHER
 *   thread's sched_runtime as the slice it asks for (6.12 on); a thread that wakes eligible with
 *   a shorter slice than the running one's preempts it. Its weight is as before.
 * - The control thread (once the workers run) and the health prober run THREAD_CONTROL_NICE
 *   steps below: a thread of lower weight soon has had more than its share when a worker wakes,
 *   which then preempts it. Together (changes.py, 200 changes, wake-ups that waited over 1 ms):
 *   141-171 with neither, 11-29 with both. Either alone did little. On a contended core the
 *   control plane still gets about a quarter of it against each busy nice-0 thread.
 * - The state writer runs THREAD_STATE_NICE steps below (its work delays only a change's reply).
 * - Tried and not kept: the control thread as SCHED_IDLE. Any busy process on the host starves
 *   such a thread (an etcd update then took over a second to reach three instances).
 *
 * A nice value once raised cannot be lowered again without a capability, and a thread inherits
 * its creator's: what the control thread makes later (the prober) starts from its value.
 * sched_setattr(), not setpriority(): the unit lets only it through of the @resources system
 * calls it refuses. Each returns 0, or a negative errno when the kernel refused (nothing changed
 * then; a kernel before 6.12 ignores the slice). */

/* The slice a worker asks for: the least Linux takes. */
#define THREAD_SHORT_SLICE_USEC 100
#define THREAD_CONTROL_NICE 5
#define THREAD_STATE_NICE 10

int thread_ask_short_slice(void);
/* The calling thread's nice value raised to `nice` (relative to the process's start: a unit's
 * Nice= is added); no change when it is there already. */
int thread_lower_priority(int nice);
