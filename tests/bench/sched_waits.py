# SPDX-License-Identifier: MIT
"""How long lbproxy's workers waited for their CPU once woken, and who ran meanwhile: from
`perf sched record -a` (sched_waking and sched_switch on every CPU). A request's latency mixes
the client's, nginx's and the VM's pauses; this counts only the wake-up of the worker that
serves it, and says whether lbproxy's own threads (the control loop, the state writer) held the
CPU or something else did. Used by changes.py --perf-sched."""

import collections
import os
import re
import shutil
import signal
import subprocess

EVENT = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)")


def available():
    return shutil.which("perf") is not None


def start(path):
    """perf sched record on every CPU until stop()."""
    return subprocess.Popen(["perf", "sched", "record", "-a", "-o", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


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


def waits(path, ours):
    """Wake-ups of the threads named lbproxy-w*: (list of (seconds waited, {who: seconds})),
    where `who` is 'lbproxy:<thread>' for our threads, else the command that ran."""
    workers = {t for t, n in ours.items() if n.startswith("lbproxy-w")}
    text = subprocess.run(["perf", "script", "-i", path, "-F", "cpu,time,event,trace"],
                          capture_output=True, text=True, check=True).stdout
    pending = {}  # worker tid -> (time woken, cpu, {who: seconds})
    running = {}  # cpu -> (who, since)
    out = []
    for line in text.splitlines():
        m = EVENT.match(line)
        if not m:
            continue
        cpu, t, event, rest = int(m[1]), float(m[2]), m[3], m[4]
        if event == "sched_waking":
            tid = int(re.search(r" pid=(\d+)", rest)[1])
            if tid in workers and tid not in pending:
                target = int(re.search(r"target_cpu=(\d+)", rest)[1])
                pending[tid] = (t, target, collections.Counter())
        elif event == "sched_switch":
            prev = re.search(r"prev_comm=(.*?) prev_pid=(\d+)", rest)
            nxt = re.search(r"next_comm=(.*?) next_pid=(\d+)", rest)
            if not prev or not nxt:
                continue
            if cpu in running:
                who, since = running[cpu]
                for woken, target, blame in pending.values():
                    if target == cpu and t > woken:
                        blame[who] += t - max(since, woken)
            tid = int(nxt[2])
            running[cpu] = (f"lbproxy:{ours[tid]}" if tid in ours else nxt[1], t)
            if tid in pending:
                woken, _, blame = pending.pop(tid)
                out.append((t - woken, blame))
    return out


def report(name, ws):
    """Lines: how many wake-ups waited over 0.1/0.5/1 ms, the longest, and who held the CPU."""
    if not ws:
        return [f"  {name}: no wake-ups recorded"]
    total = collections.Counter()
    for _, blame in ws:
        total.update(blame)
    longest = max(ws, key=lambda w: w[0])
    over = [sum(1 for d, _ in ws if d > x) for x in (0.0001, 0.0005, 0.001)]
    ours = sum(v for k, v in total.items() if k.startswith("lbproxy:"))
    # the most lbproxy's own threads held one wake-up up: what a change did to a request
    ours_max, ours_max_blame = max(
        ((sum(v for k, v in b.items() if k.startswith("lbproxy:")), b) for _, b in ws),
        key=lambda x: x[0])
    held = ", ".join(f"{k} {v * 1000:.1f}" for k, v in total.most_common(4))
    why = ", ".join(f"{k} {v * 1000:.2f}" for k, v in longest[1].most_common(2))
    return [f"  {name}: {len(ws)} wake-ups, waited over 0.1 ms {over[0]}, over 0.5 ms {over[1]}, "
            f"over 1 ms {over[2]}; longest {longest[0] * 1000:.3f} ms ({why})",
            f"    the CPU meanwhile (ms in all): {held}; lbproxy's own threads {ours * 1000:.1f}, "
            f"at most {ours_max * 1000:.3f} ms in one wait ("
            + ", ".join(f"{k} {v * 1000:.2f}" for k, v in ours_max_blame.most_common(2)) + ")"]
