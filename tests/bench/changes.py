#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What a change over D-Bus costs a running lbproxy with many routes and https upstreams.

    /usr/bin/python3 tests/bench/changes.py [--lbproxy build/src/lbproxy] [--routes 10000]
        [--upstreams 100] [--changes 100] [--startup-upstreams 1000] [--keep] [--workers N]
        [--perf-sched] [--no-instrument-slice]

Not a test: it prints what it measured beside the goals of issue #13, and exits 0. Root (it
binds 127.0.x.y and pins processes), loopback only; nginx, dbus-daemon, certtool and Debian's
python3-dbus must be installed (tests/bench/run.sh installs them).

The setup: one nginx (one worker) answering https on port 8443 of every 127.0.x.y, with a
certificate made here by certtool; lbproxy with `workers: 1` (--workers N: more; each worker on
a thread of its own, the control loop serving none), `routes` routes, route i to upstream
i % upstreams, each upstream https with two nodes (127.0.1.K and 127.0.2.K), verified against
the test CA; its state directory under /var/tmp (a real disk: the fsyncs are real); a private
dbus-daemon. lbproxy runs on CPU 0, everything else on CPU 1.

What it measures:
1. start-up to READY=1 with `routes` routes and `upstreams` upstreams, and again with
   `startup-upstreams` upstreams (configuration only: no request is made);
2. the time of a SetNodeWeight and of an AddNode, from the call to its reply (which comes once
   the change is on disk and serving), `changes` of each, on upstream u0, one after another;
3. then as many SetNodeWeight and RemoveNode again while a client (its own process) sends
   requests one after another over one keep-alive connection to a route of u1, which no change
   touches: its latency before the changes and during them; the longest delay is the worst
   latency during them less the median before;
   With --perf-sched (perf installed), perf on every CPU over 1.5 s of the baseline and over
   the changes: the worker's waits for its CPU (woken or preempted), who held it, and the spans
   in which the VM did not run a CPU (sched_waits.py); for the slowest requests, what of them was
   such a stall and who held the worker's CPU in them. The client and nginx ask for the workers' short scheduler slice, so that
   the D-Bus caller sharing their CPU does not show as lbproxy's delay (--no-instrument-slice:
   they do not).
4. after the changes, three requests to a route of each upstream but u0: the connections nginx
   saw opened for them (the nodes' own, in its log). Before the changes each of these upstreams
   was warmed up over the same client connection (so the same worker, whose pools these are),
   so each has connections pooled: an unchanged upstream should open none, and make no TLS
   handshake, full or resumed.
"""

import argparse
import collections
import ctypes
import glob
import json
import http.client
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import bench  # noqa: E402  certtool, processes, ports
import sched_waits  # noqa: E402  perf sched: the workers' waits for their CPU
import startup  # noqa: E402  start-up to READY=1
from dbus_helpers import SystemBus  # noqa: E402  a private system bus

PROXY_CPU, LOAD_CPU = bench.PROXY_CPU, bench.LOAD_CPU
NODE_PORT = 8443
LISTEN = ("127.0.0.1", 18500)
MANAGER = ("org.lbproxy1", "/org/lbproxy1", "org.lbproxy1.Manager")


def node_a(i):
    return f"127.0.1.{1 + i}" if i < 250 else f"127.1.{i // 250}.{1 + i % 250}"


def node_b(i):
    return f"127.0.2.{1 + i}" if i < 250 else f"127.2.{i // 250}.{1 + i % 250}"


def lbproxy_yaml(d, routes, upstreams, workers=1):
    out = ["access_log: false", f"workers: {workers}",
           f'listeners: [{{name: web, listen: "{LISTEN[0]}:{LISTEN[1]}"}}]',
           f"tls: {{ca_file: {d}/ca.pem}}", "upstreams:"]
    for i in range(upstreams):
        out.append(f"- {{name: u{i}, scheme: https, pass_host: rewrite, upstream_host: "
                   f"httpbin.org, tls: {{sni: httpbin.org}}, keepalive_pool: 8, "
                   f"nodes: [{{host: {node_a(i)}, port: {NODE_PORT}}}, "
                   f"{{host: {node_b(i)}, port: {NODE_PORT}}}]}}")
    out.append("routes:")
    for i in range(routes):
        out.append(f"- {{name: r{i}, paths: [/route-{i}], upstreams: [{{name: u{i % upstreams}}}]}}")
    return "\n".join(out) + "\n"


def start_nginx(d):
    """One worker on every 127.x.y.z:8443; its log says, per request, the node's address, the
    connection's number, its request count (1: a new connection) and whether TLS resumed."""
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/nginx.err warn;
events {{ worker_connections 16000; }}
http {{
  log_format c '$server_addr $connection $connection_requests $ssl_session_reused';
  access_log {d}/nginx.log c;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  keepalive_timeout 600s;
  keepalive_requests 100000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:up:10m;
  server {{
    listen {NODE_PORT} ssl;
    ssl_certificate {d}/httpbin.org.pem; ssl_certificate_key {d}/httpbin.org.key;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""
    os.makedirs(f"{d}/tmp", exist_ok=True)
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    p = bench.spawn(["nginx", "-p", d, "-e", f"{d}/nginx.err", "-c", f"{d}/nginx.conf"],
                    "nginx", LOAD_CPU)
    if not bench.wait_port("127.0.1.1", NODE_PORT, 20, p):
        sys.exit(f"nginx did not start: see {d}/nginx.err")
    return p


def nginx_log(d):
    with open(f"{d}/nginx.log") as f:
        return [ln.split() for ln in f if ln.strip()]


def start_lbproxy(binary, d, state, bus):
    notify = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(notify)
    s.settimeout(0.05)
    env = dict(os.environ, NOTIFY_SOCKET=notify, **bus.env())
    t0 = time.monotonic()
    p = subprocess.Popen(["taskset", "-c", PROXY_CPU, binary, "--config", f"{d}/lbproxy.yaml",
                          "--state-dir", state], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(f"{d}/lbproxy.err", "wb"),
                         start_new_session=True)
    bench._children.append((p, "lbproxy"))
    try:
        while time.monotonic() - t0 < 600:
            try:
                if "READY=1" in s.recv(65536).decode().split("\n"):
                    return p, time.monotonic() - t0
            except socket.timeout:
                if p.poll() is not None:
                    sys.exit(f"lbproxy exited with {p.returncode}: see {d}/lbproxy.err")
        sys.exit("lbproxy: no READY=1 in 600 s")
    finally:
        s.close()


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"GET {path}: {r.status} {body[:200]!r}")


class SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32),
                ("flags", ctypes.c_uint64), ("nice", ctypes.c_int32),
                ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]


def short_slice(tid):
    """The measuring instruments (the client, nginx) ask for lbproxy's workers' short slice
    (base/thread-sched.h): on CPU 1 they share a core with the D-Bus caller and dbus-daemon,
    whose work during the changes would otherwise show as lbproxy's delay. False when refused."""
    attr = SchedAttr(size=ctypes.sizeof(SchedAttr), runtime=100_000)
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(314, tid, ctypes.byref(attr), 0) == 0  # SYS_sched_setattr, x86-64


def short_slice_process(pid):
    return all([short_slice(int(t.rsplit("/", 1)[1])) for t in glob.glob(f"/proc/{pid}/task/*")])


def probe(path, stop, out, slice_it):
    """Requests one after another over one connection until `stop`: (start, seconds) each."""
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    if slice_it:
        short_slice(0)
    conn = http.client.HTTPConnection(*LISTEN, timeout=30)
    samples = []
    while not stop.is_set() and len(samples) < 2_000_000:
        t = time.monotonic()
        get(conn, path)
        samples.append((t, time.monotonic() - t))
    conn.close()
    out.put(samples)


def ms(s):
    return f"{s * 1000:.3f} ms"


def summary(xs):
    xs = sorted(xs)
    return (f"median {ms(xs[len(xs) // 2])}, p99 {ms(xs[len(xs) * 99 // 100])}, "
            f"max {ms(xs[-1])} ({len(xs)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lbproxy", default=os.path.join(ROOT, "build", "src", "lbproxy"))
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--upstreams", type=int, default=100)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--startup-upstreams", type=int, default=1000)
    ap.add_argument("--keep", action="store_true")
    # each worker on a thread of its own, the control loop serving none (all on one CPU)
    ap.add_argument("--workers", type=int, default=1)
    # the client and nginx keep the default slice (as before the seventh session)
    ap.add_argument("--no-instrument-slice", action="store_true")
    # perf sched over the baseline and the changes: the workers' waits for their CPU, and whose
    # threads held it (needs perf)
    ap.add_argument("--perf-sched", action="store_true")
    a = ap.parse_args()
    if a.upstreams < 2 or a.upstreams > 1000 or a.routes < a.upstreams:
        sys.exit("need 2 <= upstreams <= 1000 and routes >= upstreams")
    import dbus  # Debian's python3-dbus

    d = tempfile.mkdtemp(prefix="lbp-changes-")
    state = tempfile.mkdtemp(prefix="lbp-changes-state-", dir="/var/tmp")
    bus = SystemBus(os.path.join(d, "bus")).start()
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    try:
        bench.make_certs(d)
        nginx = start_nginx(d)
        if not a.no_instrument_slice:
            kids = subprocess.run(["pgrep", "-s", str(nginx.pid)], capture_output=True,
                                  text=True).stdout.split()
            if not all(short_slice_process(int(k)) for k in kids):
                print("note: the kernel refused nginx a short slice")
        print(f"lbproxy {a.lbproxy}; {a.routes} routes, {a.upstreams} https upstreams of 2 "
              f"nodes; workers: {a.workers}"
              f"{' (on a thread of its own, as every worker)' if a.workers == 1 else ''}; "
              f"state in {state}")

        # 1. start-up
        with open(f"{d}/startup.yaml", "w") as f:
            f.write(startup.config(a.routes, a.startup_upstreams, startup.free_port()))
        big = [startup.start_once(a.lbproxy, f"{d}/startup.yaml") for _ in range(3)]
        with open(f"{d}/lbproxy.yaml", "w") as f:
            f.write(lbproxy_yaml(d, a.routes, a.upstreams, a.workers))
        proxy, t_start = start_lbproxy(a.lbproxy, d, state, bus)
        bus.wait_name()
        conn = dbus.bus.BusConnection(bus.address)
        manager = dbus.Interface(conn.get_object(*MANAGER[:2]), MANAGER[2])

        # warm-up: every upstream's pool gets connections. Pools are per worker, so the
        # warm-up and the requests of step 4 go over one client connection, which one worker
        # serves throughout: what step 4 sees is then what the changes did to that worker's
        # pools and TLS sessions, not which worker the kernel handed a new connection to.
        kept = http.client.HTTPConnection(*LISTEN, timeout=30)
        for i in range(a.upstreams):
            for _ in range(4):
                get(kept, f"/route-{i}")
        warm = len(nginx_log(d))

        # 2: the changes alone, on u0, one after another
        weight, add = [], []
        for k in range(a.changes):
            t = time.monotonic()
            manager.SetNodeWeight("u0", node_a(0), dbus.UInt16(NODE_PORT),
                                  dbus.UInt32(1 + k % 5), timeout=30)
            weight.append(time.monotonic() - t)
        for k in range(a.changes):
            t = time.monotonic()
            manager.AddNode("u0", f"127.3.{k // 250}.{1 + k % 250}", dbus.UInt16(NODE_PORT),
                            dbus.UInt32(1), timeout=30)
            add.append(time.monotonic() - t)

        # 3: as many changes again while a client requests a route of u1, which none touches
        stop = multiprocessing.Event()
        out = multiprocessing.Queue()
        client = multiprocessing.Process(target=probe, args=("/route-1", stop, out, not a.no_instrument_slice))
        client.start()
        sched = a.perf_sched and sched_waits.available()
        if sched:
            time.sleep(0.5)
            rec = sched_waits.start(f"{d}/sched-before.data")
            time.sleep(0.3)  # perf's start-up
            t_rec = time.monotonic()
            time.sleep(1.5)
            t_rec_end = time.monotonic()
            sched_waits.stop(rec)
            rec = sched_waits.start(f"{d}/sched-during.data")
            time.sleep(0.3)  # perf's start-up
        else:
            time.sleep(2)  # the baseline: requests before any change
        t_changes = time.monotonic()
        for k in range(a.changes):
            manager.SetNodeWeight("u0", node_a(0), dbus.UInt16(NODE_PORT),
                                  dbus.UInt32(1 + k % 5), timeout=30)
            manager.RemoveNode("u0", f"127.3.{k // 250}.{1 + k % 250}", dbus.UInt16(NODE_PORT),
                               timeout=30)
        t_end = time.monotonic()
        if sched:
            sched_waits.stop(rec)
        time.sleep(0.5)
        stop.set()
        samples = out.get(timeout=60)
        client.join(30)

        before = [s for t, s in samples if t + s < t_changes]
        during_at = [(t, s) for t, s in samples if t + s >= t_changes and t <= t_end]
        during = [s for _, s in during_at]
        print(f"\nstart-up to READY=1, {a.routes} routes, {a.upstreams} upstreams: {ms(t_start)}")
        print(f"start-up to READY=1, {a.routes} routes, {a.startup_upstreams} upstreams: "
              f"median {ms(statistics.median(big))} (min {ms(min(big))}, max {ms(max(big))}, "
              "3 runs)")
        print(f"\nSetNodeWeight, call to reply: {summary(weight)}      goal: median <= 10 ms")
        print(f"AddNode, call to reply:       {summary(add)}      goal: median <= 10 ms")
        print("\nrequests to an unchanged upstream over one connection:")
        print(f"  before the changes: {summary(before)}")
        print(f"  during {2 * a.changes} changes: {summary(during)}")
        delay = max(during) - statistics.median(before)
        print(f"  longest delay of a request in flight: {ms(delay)}      goal: <= 5 ms")
        print("  (the before row is this machine's own noise: a delay no larger than its max is "
              "not the changes')")
        for name, xs in (("before", before), ("during", during)):
            slow = sum(1 for x in xs if x > 0.005)
            print(f"  slower than 5 ms {name}: {slow} of {len(xs)} "
                  f"({1000 * slow / max(1, len(xs)):.2f} per 1,000)")

        if sched:
            ours = sched_waits.threads(proxy.pid)
            print("\nthe worker's waits for its CPU (perf; 1.5 s before the changes, then during "
                  "them):")
            seen = {}
            for name in ("before", "during"):
                seen[name] = sched_waits.analyse(f"{d}/sched-{name}.data", ours)
                for line in sched_waits.report(name, *seen[name]):
                    print(line)
            waits, stalls = seen["during"]
            # who a request waits for: the client, nginx's worker, lbproxy's workers
            nginx_pids = [int(k) for k in subprocess.run(
                ["pgrep", "-s", str(nginx.pid)], capture_output=True, text=True).stdout.split()]
            parties = {client.pid, *nginx_pids, *(t for t, n in ours.items()
                                                  if n.startswith("lbproxy-w"))}
            if a.keep:  # for a closer look at the slowest requests
                with open(f"{d}/requests.json", "w") as f:
                    json.dump({"client": client.pid, "nginx": nginx_pids,
                               "lbproxy": ours, "during": during_at}, f)
            print("  the slowest requests during the changes: latency; time some CPU was stalled "
                  "in it; the worker's waits in it (who held its CPU, ms)")
            for t, s in sorted(during_at, key=lambda x: -x[1])[:5]:
                inside = [w for w in waits if w.end > t and w.start < t + s]
                held = collections.Counter()
                for w in inside:
                    held.update(w.blame)
                print(f"    {ms(s)}; stalled {ms(sched_waits.stalled_within(stalls, t, t + s, parties))}; "
                      + (", ".join(f"{k} {v * 1000:.2f}" for k, v in held.most_common(3)) or "none"))
            net = max(s - sched_waits.stalled_within(stalls, t, t + s, parties) for t, s in during_at)
            _, stalls_before = seen["before"]
            net_before = max((s - sched_waits.stalled_within(stalls_before, t, t + s, parties)
                              for t, s in samples if t >= t_rec and t + s <= t_rec_end), default=0)
            print(f"  longest request less the stalls within it: before {ms(net_before)} (1.5 s), "
                  f"during {ms(net)}; the longest delay so counted (less the median before): "
                  f"{ms(net - statistics.median(before))}      goal: <= 5 ms")
        elif a.perf_sched:
            print("\n--perf-sched: perf is not installed")

        # 4: requests to every unchanged upstream; the connections they open
        mark = len(nginx_log(d))
        for i in range(1, a.upstreams):
            for _ in range(3):
                get(kept, f"/route-{i}")
        kept.close()
        lines = nginx_log(d)[mark:]
        new = [ln for ln in lines if ln[2] == "1"]
        full = [ln for ln in new if ln[3] != "r"]
        print(f"\nafter the changes, {len(lines)} requests to the {a.upstreams - 1} unchanged "
              f"upstreams: {len(new)} new upstream connections, {len(full)} full TLS "
              f"handshakes, {len(new) - len(full)} resumed      goal: 0 new")
        print(f"(the warm-up had opened {sum(1 for ln in nginx_log(d)[:warm] if ln[2] == '1')} "
              "connections)")
        rc = proxy.poll()
        if rc is not None:
            sys.exit(f"lbproxy exited with {rc}: see {d}/lbproxy.err")
    finally:
        bench.stop_all()
        bus.stop()
        shutil.rmtree(state, ignore_errors=True)
        if a.keep:
            print(f"kept: {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
