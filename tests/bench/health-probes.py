#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What active health checks cost: 1,000 nodes probed every second (tcp, http, https) against a
local nginx, the prober thread's CPU as a share of one core (bench-health-probes reads it from
/proc/self/task/<tid>/stat), and nginx's count of what arrived (stub_status), so that the rate
is seen to be one probe per node per second.

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
context switches (each a wait in epoll_wait, and a wake-up after it), per probe (a tcp probe is
taken to be one per node a second; http's are nginx's count of requests).

Options: --veth, --runs N, --only tcp|http|https, --perf, --count. Environment: NODES (1000), SECONDS_ (10),
BENCH.
"""
import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.environ.get("BENCH", os.path.join(ROOT, "build/tests/bench/bench-health-probes"))
PORT = 18081
TLS_PORT = 18443
STATUS_PORT = 18082
NODES = int(os.environ.get("NODES", "1000"))
SECONDS = int(os.environ.get("SECONDS_", "10"))

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


def perf_split(data):
    out = subprocess.run(["perf", "script", "-i", data, "--comms", "lbproxy-probe",
                          "-F", "comm,ip,sym,dso"], capture_output=True, text=True).stdout
    counts = collections.Counter()
    leaves = collections.Counter()  # user space's samples by function (the leaf)
    for sample in out.split("\n\n"):
        lines = [l.strip() for l in sample.strip().splitlines()]
        if len(lines) >= 2:
            where = classify(lines[1:])
            counts[where] += 1
            if where == "user":
                f = lines[1].split()
                leaves[f[1] if len(f) > 1 else "?"] += 1
    total = sum(counts.values()) or 1
    top = {k: round(100.0 * v / total, 1) for k, v in leaves.most_common(12)}
    return {k: round(100.0 * v / total, 1) for k, v in counts.items()} | {
        "samples": total, "user_top": top}


# What the prober's thread does a probe, counted by tracepoints (--count): each syscall it makes,
# and its context switches (a switch out is a wait in epoll_wait: one wake-up after it).
SYSCALLS = ("socket", "connect", "getsockopt", "setsockopt", "close", "sendto", "recvfrom",
            "writev", "readv", "epoll_wait", "epoll_ctl")


def prober_tid(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == "lbproxy-probe":
                return tid
    raise RuntimeError("no lbproxy-probe thread")


def count_events(pid, seconds):
    events = ["raw_syscalls:sys_enter", "sched:sched_switch"] + [
        f"syscalls:sys_enter_{s}" for s in SYSCALLS]
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(events), "-t",
                          prober_tid(pid), "--", "sleep", str(seconds)],
                         capture_output=True, text=True).stderr
    counts = {}
    for line in out.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
    return counts


def accepted(addr):
    with urllib.request.urlopen(f"http://{addr}:{STATUS_PORT}/", timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, handled, requests = map(int, lines[2].split())
    return accepts, requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veth", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", choices=("tcp", "http", "https"))
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--count", action="store_true")
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
        cmd = ["nginx", "-c", conf, "-g", "daemon off;"]
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
                    t0 = time.monotonic()
                    port = TLS_PORT if kind == "https" else PORT
                    bench = bench_pin + [BENCH, str(port), kind, str(NODES), str(SECONDS)]
                    if holder:
                        bench.append(PREFIX)
                    proc = subprocess.Popen(bench, stdout=subprocess.PIPE, text=True)
                    if args.perf:
                        # The measured seconds only: the bench waits 2 s before them.
                        time.sleep(2)
                        data = os.path.join(d, "perf.data")
                        subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock",
                                        "-F", "4000", "-o", data, "-p", str(proc.pid), "--",
                                        "sleep", str(SECONDS - 1)], check=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    counted = None
                    if args.count:
                        time.sleep(2)
                        r0 = accepted(status_addr)[1]
                        counted = count_events(proc.pid, SECONDS - 2)
                        probes = (accepted(status_addr)[1] - r0 - 1 if kind != "tcp"
                                  else NODES * (SECONDS - 2))
                    out = proc.communicate()[0]
                    if proc.returncode != 0:
                        raise RuntimeError(f"{bench} failed")
                    wall = time.monotonic() - t0
                    a1, r1 = accepted(status_addr)
                    res = json.loads(out)
                    res["network"] = "veth" if holder else "loopback"
                    # The status requests themselves: one each.
                    res["connections_per_second"] = round((a1 - a0 - 1) / wall, 1)
                    res["requests_per_second"] = round((r1 - r0 - 1) / wall, 1)
                    if args.perf:
                        res["perf_percent_of_thread"] = perf_split(data)
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
