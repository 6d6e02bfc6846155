# SPDX-License-Identifier: MIT
"""How long lbproxy's workers waited for their CPU, who ran meanwhile, and when the VM itself
did not run a CPU: from `perf record -a` of sched_waking, sched_switch and a cpu-clock heartbeat
on every CPU, with CLOCK_MONOTONIC times (so they line up with a client's time.monotonic()).

A request's latency mixes the client's, nginx's and the VM's pauses; this counts only the waits
of the worker that serves it, of two kinds: woken (from its wake-up to its switch-in) and
preempted (switched out runnable, until it runs again). Each wait's time is laid to whoever had
the CPU it waited for: lbproxy's own threads (the control loop, the state writer), another
command, or `vCPU stalled` when the CPU logged nothing at all for longer than STALL while a task
was on it or one woken waited for it (the heartbeat samples every PERIOD; in this guest a busy
vCPU sometimes stops for milliseconds, and a halted idle one can be slow to come back when a
task is woken to it). Used by
changes.py --perf-sched."""

import collections
import os
import re
import shutil
import signal
import subprocess

EVENT = re.compile(r"\s*(.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(?:[\w-]+:)?([\w/=-]+):\s*(.*)")
PERIOD_NS = 250_000
STALL = 0.001  # four heartbeats missed
VM = "vCPU stalled"


def available():
    return shutil.which("perf") is not None


def start(path):
    """perf record on every CPU until stop()."""
    return subprocess.Popen(["perf", "record", "-a", "-k", "CLOCK_MONOTONIC", "-o", path,
                             "-e", "sched:sched_waking", "-e", "sched:sched_switch",
                             "-e", f"cpu-clock/period={PERIOD_NS}/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(p):
    p.send_signal(signal.SIGINT)
    p.wait(60)


def threads(pid):
    """{tid: name} of a process; the main thread is named 'control'."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/comm") as f:
            out[int(t)] = "control" if int(t) == pid else f.read().strip()
    return out


def events(path):
    """The recording's events in order: (cpu, monotonic seconds, event name, its fields)."""
    text = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,cpu,time,event,trace"],
                          capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        m = EVENT.match(line)
        if m:
            yield int(m[3]), float(m[4]), m[5], m[6]


class Wait:
    """A worker's wait for its CPU: kind ('woken' or 'preempted'), start and end (monotonic
    seconds), and {who: seconds} of the time others had that CPU meanwhile."""

    def __init__(self, kind, start, cpu):
        self.kind, self.start, self.cpu, self.end = kind, start, cpu, None
        self.blame = collections.Counter()

    @property
    def seconds(self):
        return self.end - self.start

    def ours(self):
        return sum(v for k, v in self.blame.items() if k.startswith("lbproxy:"))


def analyse(path, ours):
    """(waits, stalls): the workers' Waits, and the (cpu, start, end, tids) spans in which a CPU
    that had work (tids: the task on it, and those woken or preempted waiting for it) logged
    nothing for over STALL."""
    workers = {t for t, n in ours.items() if n.startswith("lbproxy-w")}
    running = {}  # cpu -> (tid, who)
    last = {}  # cpu -> time of its last event
    on_cpu = {}  # worker tid -> cpu it runs on
    pending = {}  # worker tid -> Wait
    runnable = {}  # any tid woken or preempted and not yet run again -> the cpu it waits for
    waits, stalls = [], []
    for cpu, t, event, rest in events(path):
        # the time since this CPU's last event was its running task's, or the VM's
        if cpu in last:
            since = last[cpu]
            tid, who = running.get(cpu, (0, "swapper"))
            waiting = [w for w in pending.values() if w.cpu == cpu]
            if t - since > STALL:
                held = {x for x, c in runnable.items() if c == cpu} | ({tid} - {0})
                if held:
                    stalls.append((cpu, since, t, held))
                    who = VM
            for w in waiting:
                w.blame[who] += t - max(since, w.start)
        last[cpu] = t
        if event == "sched_waking":
            tid = int(re.search(r" pid=(\d+)", rest)[1])
            target = int(re.search(r"target_cpu=(\d+)", rest)[1])
            runnable[tid] = target
            if tid in workers and tid not in pending and tid not in on_cpu:
                pending[tid] = Wait("woken", t, target)
        elif event == "sched_switch":
            prev = re.search(r"prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+)", rest)
            nxt = re.search(r"next_comm=(.*?) next_pid=(\d+)", rest)
            if not prev or not nxt:
                continue
            ptid, ntid = int(prev[1]), int(nxt[2])
            runnable.pop(ntid, None)
            if prev[2].startswith("R") and ptid != 0:
                runnable[ptid] = cpu
            if ptid in workers:
                on_cpu.pop(ptid, None)
                if prev[2].startswith("R"):
                    pending[ptid] = Wait("preempted", t, cpu)
            running[cpu] = (ntid, f"lbproxy:{ours[ntid]}" if ntid in ours else nxt[1])
            if ntid in workers:
                on_cpu[ntid] = cpu
                w = pending.pop(ntid, None)
                if w:
                    w.end = t
                    waits.append(w)
    return waits, stalls


def report(name, waits, stalls):
    """Lines: how many waits went over 0.1/0.5/1 ms, the longest, who held the CPU, and the
    VM's stalls."""
    if not waits:
        return [f"  {name}: no waits recorded"]
    total = collections.Counter()
    for w in waits:
        total.update(w.blame)
    longest = max(waits, key=lambda w: w.seconds)
    over = [sum(1 for w in waits if w.seconds > x) for x in (0.0001, 0.0005, 0.001)]
    kinds = collections.Counter(w.kind for w in waits)
    ours_sum = sum(v for k, v in total.items() if k.startswith("lbproxy:"))
    worst_ours = max(waits, key=Wait.ours)
    held = ", ".join(f"{k} {v * 1000:.1f}" for k, v in total.most_common(4))
    why = ", ".join(f"{k} {v * 1000:.2f}" for k, v in longest.blame.most_common(2))
    why_ours = ", ".join(f"{k} {v * 1000:.2f}" for k, v in worst_ours.blame.most_common(3))
    long_stalls = sorted((e - s for _, s, e, _ in stalls), reverse=True)
    return [f"  {name}: {kinds['woken']} wake-ups, {kinds['preempted']} preemptions; waited over "
            f"0.1 ms {over[0]}, over 0.5 ms {over[1]}, over 1 ms {over[2]}; longest "
            f"{longest.seconds * 1000:.3f} ms, {longest.kind} ({why})",
            f"    the CPU meanwhile (ms in all): {held}; lbproxy's own threads {ours_sum * 1000:.1f}, "
            f"at most {worst_ours.ours() * 1000:.3f} ms in one wait ({worst_ours.kind}: {why_ours})",
            f"    vCPU stalls over {STALL * 1000:.0f} ms (a CPU with work logging nothing): "
            f"{len(stalls)}, longest "
            + (", ".join(f"{x * 1000:.2f}" for x in long_stalls[:4]) or "none") + " ms"]


def stalled_within(stalls, start, end, tids):
    """Seconds of [start, end] in which a CPU was stalled with one of `tids` on it or waiting
    for it (the union of such spans)."""
    spans = sorted((max(s, start), min(e, end)) for _, s, e, held in stalls
                   if e > start and s < end and held & tids)
    total, reach = 0.0, start
    for s, e in spans:
        if e > reach:
            total += e - max(s, reach)
            reach = e
    return total


def thread_time(path, comm):
    """The time threads named `comm` were on a CPU over a recording, and how much of it was the
    VM's stalls (their CPU logging nothing, not even the heartbeat, for over STALL): {on_cpu,
    stalled, stalls, window} (seconds; window from the first event to the last)."""
    current = {}  # cpu -> whether a `comm` thread is on it
    last = {}  # cpu -> time of its last event
    on_cpu = stalled = 0.0
    stalls = 0
    first = end = None
    for cpu, t, event, rest in events(path):
        first = t if first is None else first
        end = t
        if current.get(cpu) and cpu in last:
            dt = t - last[cpu]
            on_cpu += dt
            if dt > STALL:
                stalled += dt
                stalls += 1
        last[cpu] = t
        if event == "sched_switch":
            nxt = re.search(r"next_comm=(.*?) next_pid=", rest)
            if nxt:
                current[cpu] = nxt[1] == comm
    return {"on_cpu": on_cpu, "stalled": stalled, "stalls": stalls,
            "window": (end - first) if first is not None else 0.0}
