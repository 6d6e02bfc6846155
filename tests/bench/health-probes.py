#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What active health checks cost: 1,000 nodes probed every second (tcp, http, https) against a
local nginx, the prober thread's CPU as a share of one core (bench-health-probes reads it from
/proc/self/task/<tid>/stat), and nginx's count of what arrived (stub_status) or, for tcp checks,
which nginx never accepts (they are half open), the namespace's count of connections opened, so
that the rate is seen to be one probe per node per second.

Run inside a network namespace of its own (nginx binds 0.0.0.0:18081 and the nodes are
127.0.x.y):
    unshare --net sh -c 'ip link set lo up && /usr/bin/python3 tests/bench/health-probes.py'

On loopback the connecting thread runs the kernel's side of both ends: the SYN, the SYN-ACK, the
accept queue and the server's half of the close are processed in its own softirqs and charged to
it. `--veth` puts nginx in a network namespace of its own behind a veth pair (nodes 10.77.x.y,
answered there by a local route), pins the prober to CPU 0 and nginx to CPU 1, and steers the
packets each side receives to CPU 1 (RPS): the prober is then charged its own work alone, its
syscalls and the sending path of its packets, as with nodes on other hosts.

RPS hands packets to the other CPU by an inter-processor interrupt, which in this VM is a costly
exit charged to the sender: --veth separates the peer's kernel work but adds its own. `--perf`
splits the thread's time instead, by where perf's samples (cpu-clock, call graphs, over the
measured seconds) fall: user space; its own syscalls; softirqs run on it for its own sockets
(a tcp check's SYN-ACK); softirqs run on it for the peer's sockets (on loopback the SYN, the
handshake's ACK, the request and the reset arrive at nginx's sockets on the sending thread); and
(--veth) sending the RPS interrupts.

`--count` counts, by tracepoints over the measured seconds, the syscalls the thread makes and its
context switches (waits in epoll_wait, each a wake-up after it, and preemptions), per probe (a
tcp probe is taken to be one per node a second; http's are nginx's count of requests).

`--callgrind` counts instead the user-space instructions of the prober's thread per probe: the
bench runs under valgrind's callgrind (NODES 100 by default then: under valgrind a thousand TLS
handshakes do not fit in the first seconds), its counts are zeroed after CALLGRIND_WARMUP seconds
(8: every first connection and handshake made) and dumped SECONDS later; they are divided by the
requests nginx counted between (the connections it accepted meanwhile are printed: a handshake in
the window would weigh more than a thousand probes). The thread's largest functions (self) are
printed too.

`--haproxy` measures HAProxy (/usr/sbin/haproxy, `nbthread 1`) doing the same instead: 1,000
servers `check inter 1s` (tcp: a connect; http and https: `option httpchk`, GET /status,
HTTP/1.1) against the same nginx, the CPU of its process (all its threads, schedstat) over the
same seconds; --perf and --count then look at its thread.

`--stalls` records instead, over the measured seconds, the scheduler's switches and a cpu-clock
heartbeat on every CPU (sched_waits.py): the thread's time on a CPU from its switches, and how
much of that was the VM's stalls, spans in which its CPU logged nothing, not even the heartbeat,
for over 1 ms. This guest reports no steal time, so a stall while the thread is on its CPU is
charged to the thread, in schedstat as in perf.

`--peer-nice N` runs nginx at that nice value (default 0). On loopback a probe's send wakes
nginx on the prober's CPU, and nginx, at a higher priority than the prober (nice 5), preempts
it; at 19 it waits for the prober to sleep, as a node on another host never preempts it.

Options: --veth, --runs N, --only tcp|http|https, --perf, --count, --callgrind, --haproxy,
--stalls, --peer-nice N.
Environment: NODES (1000; 100 with --callgrind), SECONDS_ (10), CALLGRIND_WARMUP (8), BENCH.
"""
import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sched_waits  # noqa: E402  the thread's time on a CPU, and the VM's stalls in it

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.environ.get("BENCH", os.path.join(ROOT, "build/tests/bench/bench-health-probes"))
PORT = 18081
TLS_PORT = 18443
STATUS_PORT = 18082
NODES = int(os.environ.get("NODES", "100" if "--callgrind" in sys.argv else "1000"))
SECONDS = int(os.environ.get("SECONDS_", "10"))
CALLGRIND_WARMUP = int(os.environ.get("CALLGRIND_WARMUP", "8"))

NGINX_CONF = """
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{ listen {port}; location /status {{ return 200 "ok"; }} }}
    server {{
        listen {tls_port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location /status {{ return 200 "ok"; }}
    }}
    server {{ listen {status_addr}:{status}; location / {{ stub_status; }} }}
}}
"""


PEER = "10.99.0.2"  # nginx's side of the veth pair
PREFIX = "10.77"    # the nodes, all local to nginx's namespace


def sh(*cmd):
    subprocess.run(cmd, check=True)


def set_rps(dev, cpus):
    """RPS of `dev` (in this namespace): sysfs shows the namespace of whoever mounted it, so a
    fresh one in a private mount namespace."""
    sh("unshare", "--mount", "sh", "-c",
       f"mount -t sysfs none /sys && echo {cpus} > /sys/class/net/{dev}/queues/rx-0/rps_cpus")


def veth_peer():
    """A namespace for nginx, held by a sleeping process, joined to this one by a veth pair.
    Returns the holder (ending it ends the namespace)."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "100000"])
    pid = str(holder.pid)
    for _ in range(100):  # until unshare has made the namespace
        if os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net"):
            break
        time.sleep(0.01)
    sh("ip", "link", "add", "hpa", "type", "veth", "peer", "name", "hpb")
    # Both directions' receiving to CPU 1, where nginx runs: CPU 0 (the prober's) does not
    # process what nginx's side receives, nor the packets that come back.
    set_rps("hpa", 2)
    set_rps("hpb", 2)
    sh("ip", "link", "set", "hpb", "netns", pid)
    sh("ip", "addr", "add", "10.99.0.1/24", "dev", "hpa")
    sh("ip", "link", "set", "hpa", "up")
    sh("ip", "route", "add", f"{PREFIX}.0.0/16", "via", PEER)
    ns = ["nsenter", "-t", pid, "-n"]
    sh(*ns, "ip", "link", "set", "lo", "up")
    sh(*ns, "ip", "addr", "add", f"{PEER}/24", "dev", "hpb")
    sh(*ns, "ip", "link", "set", "hpb", "up")
    sh(*ns, "ip", "route", "add", "local", f"{PREFIX}.0.0/16", "dev", "lo")
    return holder


# Where a sample of the prober's thread falls (perf script's frames, leaf first).
def classify(frames):
    syms = [f.split()[1] if len(f.split()) > 1 else "" for f in frames]
    if "kernel" not in frames[0]:
        return "user"
    if "net_rps_send_ipi" in syms:
        return "rps_ipi"
    if any(x in ("handle_softirqs", "net_rx_action", "__do_softirq") for x in syms):
        # Its own sockets: a connect's SYN-ACK, the answer's data and ACKs on an established
        # socket of its own are told apart by what received them.
        own = ("tcp_rcv_synsent_state_process", "tcp_finish_connect")
        return "softirq_own" if any(x in own for x in syms) else "softirq_peer"
    return "syscalls"


def perf_split(data, comm):
    out = subprocess.run(["perf", "script", "-i", data, "--comms", comm,
                          "-F", "comm,ip,sym,dso"], capture_output=True, text=True).stdout
    counts = collections.Counter()
    leaves = collections.Counter()  # user space's samples by function (the leaf)
    by_syscall = collections.Counter()
    for sample in out.split("\n\n"):
        lines = [l.strip() for l in sample.strip().splitlines()]
        if len(lines) >= 2:
            where = classify(lines[1:])
            counts[where] += 1
            if where == "user":
                f = lines[1].split()
                leaves[f[1] if len(f) > 1 else "?"] += 1
            elif where in ("syscalls", "softirq_peer", "softirq_own"):
                # By the syscall it is in (the peer's softirqs too: on loopback they run inside
                # the sending syscall).
                syms = [l.split()[1] for l in lines[1:] if len(l.split()) > 1]
                calls = [x for x in syms if x.startswith("__x64_sys_")]
                by_syscall[(calls[-1][10:] if calls else "other:" + syms[0]) + "/" + where] += 1
    total = sum(counts.values()) or 1
    top = {k: round(100.0 * v / total, 1) for k, v in leaves.most_common(12)}
    kernel = {k: round(100.0 * v / total, 1) for k, v in by_syscall.most_common(16)}
    return {k: round(100.0 * v / total, 1) for k, v in counts.items()} | {
        "samples": total, "user_top": top, "kernel_by_syscall": kernel}


# What the prober's thread does a probe, counted by tracepoints (--count): each syscall it makes,
# and its context switches (mostly waits in epoll_wait, each a wake-up after it; and being
# preempted).
SYSCALLS = ("socket", "connect", "getsockopt", "setsockopt", "close", "sendto", "recvfrom",
            "sendmsg", "writev", "readv", "epoll_wait", "epoll_ctl", "timerfd_settime")


def prober_tid(pid, comm):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == comm:
                return tid
    raise RuntimeError(f"no {comm} thread")


def count_events(pid, comm, seconds):
    events = ["raw_syscalls:sys_enter", "sched:sched_switch"] + [
        f"syscalls:sys_enter_{s}" for s in SYSCALLS]
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(events), "-t",
                          prober_tid(pid, comm), "--", "sleep", str(seconds)],
                         capture_output=True, text=True).stderr
    counts = {}
    for line in out.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
    return counts


# HAProxy doing the same (--haproxy): its checks of 1,000 servers every second, one thread.
HAPROXY_CONF = """
global
    nbthread 1
    maxconn 4096
    pidfile {dir}/haproxy.pid
defaults
    mode {mode}
    timeout connect 1s
    timeout check 1s
    timeout client 10s
    timeout server 10s
    default-server inter 1s fall 3 rise 2
frontend f
    bind 127.0.0.1:18090
    default_backend nodes
backend nodes
{check}{servers}
"""


def haproxy_conf(d, kind, prefix, port):
    check = ""
    if kind != "tcp":
        check = ("    option httpchk\n"
                 "    http-check send meth GET uri /status ver HTTP/1.1 hdr Host bench\n"
                 "    http-check expect status 200\n")
    ssl = " check-ssl verify none" if kind == "https" else ""
    servers = "\n".join(f"    server n{i} {prefix}.{1 + i // 250}.{1 + i % 250}:{port} check{ssl}"
                         for i in range(NODES))
    path = os.path.join(d, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(HAPROXY_CONF.format(dir=d, mode="tcp" if kind == "tcp" else "http",
                                    check=check, servers=servers))
    return path


def process_cpu_ns(pid):
    """The CPU time of all of a process's threads (schedstat: exact)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended
    return total


def haproxy_run(d, kind, port, prefix, pin, perf, count):
    """Like bench-health-probes, for HAProxy: its CPU over SECONDS after the first 2 s."""
    cfg = haproxy_conf(d, kind, prefix, port)
    log = open(os.path.join(d, "haproxy.log"), "w+")
    proc = subprocess.Popen(pin + ["haproxy", "-db", "-f", cfg], stderr=log)
    try:
        time.sleep(2)  # HAProxy spreads its first checks over the first interval
        if proc.poll() is not None:
            raise RuntimeError("haproxy failed")
        extra = {}
        c0, w0 = process_cpu_ns(proc.pid), time.monotonic()
        if perf:
            extra["perf.data"] = os.path.join(d, "perf.data")
            subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "4000", "-o",
                            extra["perf.data"], "-p", str(proc.pid), "--", "sleep",
                            str(SECONDS - 1)], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        elif count:
            extra["counted"] = count_events(proc.pid, "haproxy", SECONDS)
        else:
            time.sleep(SECONDS)
        c1, w1 = process_cpu_ns(proc.pid), time.monotonic()
    finally:
        proc.terminate()
        proc.wait()
    log.seek(0)
    downs = sum(" is DOWN" in line for line in log)
    log.close()
    cpu = (c1 - c0) / 1e9
    res = {"type": kind, "program": "haproxy", "nodes": NODES, "seconds": round(w1 - w0, 2),
           "cpu_seconds": round(cpu, 3), "core_percent": round(100 * cpu / (w1 - w0), 2),
           "went_down": downs}
    return res, extra


def accepted(addr):
    with urllib.request.urlopen(f"http://{addr}:{STATUS_PORT}/", timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, handled, requests = map(int, lines[2].split())
    return accepts, requests


def tcp_counts():
    """The prober's network namespace's TCP counters: connections opened (a tcp check is one,
    which nginx never accepts: it is half open) and segments sent (on loopback, both ends')."""
    with open("/proc/self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    tcp = dict(zip(rows[0][1:], map(int, rows[1][1:])))
    return tcp["ActiveOpens"], tcp["OutSegs"]


def bench_run(d, kind, port, holder, bench_pin, args, status_addr):
    """One run of bench-health-probes: its result, perf's data, the counts and the probes they
    are divided by."""
    seconds = SECONDS + CALLGRIND_WARMUP + 2 if args.callgrind else SECONDS
    bench = bench_pin + [BENCH, str(port), kind, str(NODES), str(seconds)]
    if holder:
        bench.append(PREFIX)
    if args.callgrind:
        bench = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--compress-strings=no",
                 "--callgrind-out-file=" + os.path.join(d, "callgrind.out")] + bench
    proc = subprocess.Popen(bench, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL if args.callgrind else None, text=True)
    data = counted = None
    probes = 1
    if args.callgrind:
        return callgrind_run(d, proc, kind, status_addr)
    if args.perf:
        # The measured seconds only: the bench waits 2 s before them.
        time.sleep(2)
        data = os.path.join(d, "perf.data")
        subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "4000", "-o",
                        data, "-p", str(proc.pid), "--", "sleep", str(SECONDS - 1)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif args.stalls:
        time.sleep(2)
        data = os.path.join(d, "sched.data")
        rec = sched_waits.start(data)
        time.sleep(SECONDS - 1)
        sched_waits.stop(rec)
    elif args.count:
        time.sleep(2)
        c0 = accepted(status_addr)[1]
        counted = count_events(proc.pid, "lbproxy-probe", SECONDS - 2)
        probes = (accepted(status_addr)[1] - c0 - 1 if kind != "tcp"
                  else NODES * (SECONDS - 2))
    else:
        # nginx's count over the measured seconds (near enough: the bench waits 2 s after its
        # prober started): for http and https, the connections made then, which should be none
        # (a TLS handshake costs as much as a hundred probes).
        time.sleep(2)
        a0 = accepted(status_addr)[0]
        time.sleep(SECONDS)
        window_connections = accepted(status_addr)[0] - a0 - 1
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{bench} failed")
    res = json.loads(out)
    if not (args.perf or args.count or args.stalls) and kind != "tcp":
        res["connections_measured"] = window_connections
    return res, data, counted, probes


# Functions whose cost with their callees' is printed with --callgrind.
CALLGRIND_INCLUSIVE = ("gnutls_record_send", "gnutls_record_recv", "http1_parse_response",
                       "evbuffer_add", "evbuffer_pullup", "evbuffer_drain",
                       "evbuffer_reserve_space", "event_add", "event_del", "event_active",
                       "malloc", "free", "epoll_wait", "recv", "sendmsg")


def callgrind_costs(path):
    """Instructions by function, its own and with its callees', from a callgrind file written
    with --compress-strings=no (callgrind_annotate 3.19 gives the whole of a dump taken after a
    zeroing to the thread's first function)."""
    own, incl = collections.Counter(), collections.Counter()
    fn, call_cost = None, False
    with open(path) as f:
        for line in f:
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                call_cost = True  # the next cost line is the call's, callees included
            elif fn and (line[:1].isdigit() or line[:1] in "+-*"):
                f_ = line.split()
                cost = int(f_[1]) if len(f_) > 1 else 0
                incl[fn] += cost
                if call_cost:
                    call_cost = False
                else:
                    own[fn] += cost
    return own, incl


def callgrind_run(d, proc, kind, status_addr):
    """The prober thread's instructions per probe in the steady state (--callgrind)."""
    def control(op):  # -z zeroes the counts, -d dumps them
        subprocess.run(["callgrind_control", op, str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    time.sleep(CALLGRIND_WARMUP)
    control("-z")
    a0, r0 = accepted(status_addr)
    o0 = tcp_counts()[0]
    time.sleep(SECONDS)
    control("-d")
    a1, r1 = accepted(status_addr)
    o1 = tcp_counts()[0]
    proc.communicate()
    # The dump's file of each thread (callgrind.out.1-TT); the prober's is the busiest.
    best, best_file = -1, None
    for name in os.listdir(d):
        if name.startswith("callgrind.out.1-"):
            with open(os.path.join(d, name)) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        ir = int(line.split()[1])
                        if ir > best:
                            best, best_file = ir, os.path.join(d, name)
                        break
    # The first status request is counted in r1 (and its connection in a1); a tcp check is a
    # connection opened, which nginx never accepts.
    probes = (r1 - r0 - 1) if kind != "tcp" else (o1 - o0)
    if os.environ.get("CALLGRIND_KEEP"):
        shutil.copy(best_file, os.environ["CALLGRIND_KEEP"])
    own, incl = callgrind_costs(best_file)
    res = {"type": kind, "program": "callgrind", "nodes": NODES, "seconds": SECONDS, "probes": probes,
           "connections": a1 - a0 - 1 if kind != "tcp" else None,
           "ir_per_probe": round(best / probes),
           "own_ir_per_probe": {k: round(v / probes) for k, v in own.most_common(25)},
           "with_callees_ir_per_probe": {k: round(incl[k] / probes) for k in CALLGRIND_INCLUSIVE
                                         if k in incl}}
    return res, None, None, 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veth", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", choices=("tcp", "http", "https"))
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--haproxy", action="store_true")
    ap.add_argument("--stalls", action="store_true")
    ap.add_argument("--peer-nice", type=int, default=0)
    args = ap.parse_args()
    status_addr = PEER if args.veth else "127.0.0.1"
    holder = veth_peer() if args.veth else None
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=PORT, tls_port=TLS_PORT, status=STATUS_PORT,
                                      status_addr=status_addr))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=bench", "-keyout", os.path.join(d, "key.pem"), "-out",
                        os.path.join(d, "cert.pem")], check=True, capture_output=True)
        cmd = ["nice", "-n", str(args.peer_nice), "nginx", "-c", conf, "-g", "daemon off;"]
        bench_pin = []
        if holder:
            cmd = ["nsenter", "-t", str(holder.pid), "-n", "taskset", "-c", "1"] + cmd
            bench_pin = ["taskset", "-c", "0"]
        nginx = subprocess.Popen(cmd)
        try:
            for _ in range(100):
                try:
                    accepted(status_addr)
                    break
                except OSError:
                    time.sleep(0.05)
            kinds = (args.only,) if args.only else ("tcp", "http", "https")
            for _ in range(args.runs):
                for kind in kinds:
                    a0, r0 = accepted(status_addr)
                    o0, s0 = tcp_counts()
                    t0 = time.monotonic()
                    port = TLS_PORT if kind == "https" else PORT
                    if args.haproxy:
                        res, extra = haproxy_run(d, kind, port,
                                                 PREFIX if holder else "127.0", bench_pin,
                                                 args.perf, args.count)
                        data, counted = extra.get("perf.data"), extra.get("counted")
                        probes = NODES * SECONDS
                        comm = "haproxy"
                    else:
                        res, data, counted, probes = bench_run(d, kind, port, holder,
                                                               bench_pin, args, status_addr)
                        comm = "lbproxy-probe"
                    wall = time.monotonic() - t0
                    a1, r1 = accepted(status_addr)
                    o1, s1 = tcp_counts()
                    res["network"] = "veth" if holder else "loopback"
                    # The status requests themselves: one each.
                    res["connections_per_second"] = round((a1 - a0 - 1) / wall, 1)
                    res["requests_per_second"] = round((r1 - r0 - 1) / wall, 1)
                    res["tcp_opens_per_second"] = round((o1 - o0 - 1) / wall, 1)
                    res["tcp_segments_out_per_open"] = round((s1 - s0) / max(o1 - o0, 1), 2)
                    if data and args.stalls:
                        tt = sched_waits.thread_time(data, comm)
                        res["perf_on_cpu_percent"] = round(100 * tt["on_cpu"] / tt["window"], 3)
                        res["perf_stalled_percent"] = round(100 * tt["stalled"] / tt["window"], 3)
                        res["perf_less_stalls_percent"] = round(
                            100 * (tt["on_cpu"] - tt["stalled"]) / tt["window"], 3)
                        res["perf_stalls"] = tt["stalls"]
                    elif data:
                        res["perf_percent_of_thread"] = perf_split(data, comm)
                    if counted:
                        res["per_probe"] = {k: round(v / probes, 2) for k, v in counted.items()
                                            if v}
                    print(json.dumps(res), flush=True)
        finally:
            nginx.terminate()
            nginx.wait()
            if holder:
                holder.send_signal(signal.SIGTERM)
                holder.wait()


if __name__ == "__main__":
    sys.exit(main())
