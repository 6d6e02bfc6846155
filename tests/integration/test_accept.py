# SPDX-License-Identifier: MIT
"""Accepting with two workers, without waking both for each connection: a listener lbproxy binds
is one SO_REUSEPORT socket per worker (the kernel picks the worker); a socket from systemd (here
systemd-socket-activate) is accepted on by worker 0, which hands connections to the workers in
turn. Both ways every connection is served and both workers serve; the stop line says how many
connections each worker took ("connections by worker: a, b"). A second lbproxy on the same
address is still refused, SO_REUSEPORT or not; max_connections holds on an activated socket."""

import os
import re
import socket
import subprocess
import threading
import time

from lbtest import free_port, read_to_eof, route_cfg, upstream_cfg

SPREAD = re.compile(r"connections by worker: ([\d, ]+); wake-ups with nothing to accept: "
                    r"([\d, ]+)")


def config(up, **top):
    cfg = {"access_log": False, "workers": 2, "upstreams": [upstream_cfg("u", [up])],
           "routes": [route_cfg("r", ["/*"], ["u"])]}
    cfg.update(top)
    return cfg


def get(address, path="/x", timeout=10.0):
    """One request on a connection of its own; returns the status."""
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = read_to_eof(s)
    return int(data.split(b" ", 2)[1])


def many(address, n, threads=4):
    """n requests, each on a new connection, from a few threads at once."""
    statuses = []
    lock = threading.Lock()

    def run(k):
        for _ in range(k):
            st = get(address)
            with lock:
                statuses.append(st)

    ts = [threading.Thread(target=run, args=(n // threads + (i < n % threads),))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return statuses


def spread_at_stop(lb):
    """Stops lbproxy; returns the connections each worker took, from its last line."""
    assert lb.terminate() == 0
    lines = lb.log_lines("Stopped after")
    assert lines, lb.log_text()[-2000:]
    m = SPREAD.search(lines[-1])
    assert m, lines[-1]
    return [int(x) for x in m.group(1).split(", ")]


def listening_sockets(port):
    """LISTEN sockets on 127.0.0.1:port, from /proc/net/tcp (what `ss -ltn` shows)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local == f"0100007F:{port:04X}":
                n += 1
    return n


def test_bound_listener_has_a_socket_per_worker_and_both_workers_serve(lbproxy, upstream):
    up = upstream("a")
    lb = lbproxy(config(up))
    assert listening_sockets(lb.port) == 2
    statuses = many(lb.address, 200)
    assert statuses == [200] * 200
    a, b = spread_at_stop(lb)
    # The kernel hashes each connection's addresses to a socket: both get some.
    assert a + b == 200 and a > 0 and b > 0, (a, b)


def test_one_worker_binds_one_plain_socket(lbproxy, upstream):
    up = upstream("a")
    lb = lbproxy(config(up, workers=1))
    assert listening_sockets(lb.port) == 1
    assert get(lb.address) == 200
    assert spread_at_stop(lb) == [1]


def test_address_in_use_is_still_refused(lbproxy, lbproxy_bin, upstream, tmp_path):
    """SO_REUSEPORT would let a second lbproxy of the same user join the first's sockets and take
    a share of its connections: it is refused as without the option."""
    up = upstream("a")
    lb = lbproxy(config(up))
    second = tmp_path / "second.yaml"
    second.write_text(lb.config_path.read_text())
    p = subprocess.run([str(lbproxy_bin), "--config", str(second)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "Address already in use" in p.stderr, p.stderr[-2000:]
    assert get(lb.address) == 200


def activated(lbproxy, up, **top):
    """lbproxy under systemd-socket-activate, listener 'web' from an fd named web. The wrapper
    execs lbproxy (same pid) at the first connection, which a thread makes and whose status it
    returns; READY=1 comes through NOTIFY_SOCKET, passed on with -E."""
    port = free_port()
    env_names = ["NOTIFY_SOCKET"] + [k for k in os.environ
                                     if k.endswith("SAN_OPTIONS") or k.startswith("LBPROXY_")]
    wrapper = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=web"]
    for k in env_names:
        wrapper += ["-E", k]
    first = {}

    def trigger():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                first["status"] = get(("127.0.0.1", port), timeout=30)
                return
            except ConnectionRefusedError:
                time.sleep(0.05)  # the wrapper is not listening yet

    t = threading.Thread(target=trigger, daemon=True)
    t.start()
    lb = lbproxy(config(up, listeners=[{"name": "web"}], **top), wrapper=wrapper)
    t.join(30)
    assert first.get("status") == 200, (first, lb.log_text()[-2000:])
    # Written by the log thread, which may come after the first answer.
    assert lb.wait_log("Listening on 'web' (socket activation)")
    return lb, ("127.0.0.1", port)


def test_activated_socket_is_handed_to_both_workers_in_turn(lbproxy, upstream):
    up = upstream("a")
    lb, address = activated(lbproxy, up)
    statuses = many(address, 100)
    assert statuses == [200] * 100
    a, b = spread_at_stop(lb)
    # The first connection (before the exec) and the hundred, in turn.
    assert a + b == 101 and abs(a - b) <= 1, (a, b)


def test_activated_socket_holds_max_connections(lbproxy, upstream):
    up = upstream("a")
    lb, address = activated(lbproxy, up, limits={"max_connections": 2})
    held = [socket.create_connection(address, timeout=5) for _ in range(2)]
    waiting = None
    try:
        for s in held:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        waiting = socket.create_connection(address, timeout=5)  # in the kernel's backlog
        waiting.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        waiting.settimeout(1.0)
        try:
            early = waiting.recv(65536)
        except socket.timeout:
            early = None
        assert early is None, "a third client was served"
        held.pop().close()
        waiting.settimeout(5.0)
        assert read_to_eof(waiting).startswith(b"HTTP/1.1 200")
    finally:
        for s in held + ([waiting] if waiting else []):
            s.close()


def thread_ids(pid):
    """{thread name: its id}; "lbproxy" is the main thread (a sanitizer's own thread may bear
    the program's name too)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            name = f.read().strip()
        if name != "lbproxy" or int(tid) == pid:
            out[name] = int(tid)
    return out


def thread_scheduling(pid):
    """{thread name: (policy, slice in ns or None when the kernel shows none)}, as
    /proc/PID/task/TID/{comm,sched} say (what top -H, ps -L and perf show)."""
    out = {}
    for name, tid in thread_ids(pid).items():
        fields = {}
        with open(f"/proc/{pid}/task/{tid}/sched") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        slice_ns = int(fields["se.slice"]) if "se.slice" in fields else None
        out[name] = (int(fields["policy"]), slice_ns)
    return out


def test_threads_are_named_and_give_way_to_requests(lbproxy, upstream, tmp_path):
    """Each worker is a thread named lbproxy-w<N> and asks the scheduler for a short slice, and
    the control thread and the prober run 5 nice steps below, so that a request waits less for a
    change being built on the same core; the state writer runs 10 below."""
    up = upstream("a")
    cfg = config(up)
    cfg["upstreams"][0]["health_check"] = {"active": {"type": "tcp"}}
    lb = lbproxy(cfg, args=("--state-dir", str(tmp_path / "state")))
    assert get(lb.address) == 200
    threads = thread_scheduling(lb.pid)
    want = {"lbproxy", "lbproxy-w0", "lbproxy-w1", "lbproxy-log", "lbproxy-state",
            "lbproxy-probe"}
    assert want <= set(threads), threads
    nice = {name: os.getpriority(os.PRIO_PROCESS, tid) for name, tid in thread_ids(lb.pid).items()}
    want_nice = {"lbproxy-w0": 0, "lbproxy-w1": 0, "lbproxy-log": 0, "lbproxy": 5,
                 "lbproxy-probe": 5, "lbproxy-state": 10}
    assert {k: nice[k] for k in want_nice} == want_nice, nice
    assert all(threads[name][0] == 0 for name in want_nice), threads  # SCHED_OTHER
    if threads["lbproxy-w0"][1] is None:
        return  # a kernel before 6.6 shows no slice
    assert threads["lbproxy-w0"][1] == threads["lbproxy-w1"][1] == 100_000, threads
    assert threads["lbproxy"][1] > 100_000 and threads["lbproxy-probe"][1] > 100_000, threads
