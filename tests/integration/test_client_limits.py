# SPDX-License-Identifier: MIT
"""What one client connection can make lbproxy do: pipelined requests are answered in order
without the daemon's memory growing with them (not past 256 KiB of answers the client has not
read), a pipelining flood does not keep other clients waiting, and the header timeout runs from
accept (a connection that sends nothing is closed silently at it; a partial head gets 408),
while kept-alive connections keep the keep-alive timeout."""

import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from lbtest import Client, free_port, route_cfg, to_yaml, upstream_cfg
from test_streams import EchoServer, tcp_config
from tls_helpers import _ca, _leaf

MIB_KIB = 1024


def measured_lb(lbproxy, config):
    """lbproxy for the tests that measure its RSS. Under ASan, without the quarantine of freed
    memory, which would grow RSS with every request, leak or not."""
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0",
                                "thread_local_quarantine_size_kb=0") if o)
    return lbproxy(config, env={"ASAN_OPTIONS": asan})


def vm_rss_kib(lb):
    """lbproxy's resident memory (KiB), from /proc/PID/status."""
    try:
        status = Path(f"/proc/{lb.pid}/status").read_text()
    except FileNotFoundError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"lbproxy is gone ({lb.proc.poll()}):\n{lb.log_text()[-3000:]}")


class SlowReader(Client):
    """A client whose receive buffer is small, so that what it does not read stays with
    lbproxy rather than in the kernel."""

    def __init__(self, host, port, rcvbuf=16 * 1024, timeout=30.0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""


def pipeline_and_read_late(lb, paths, check, host_header="a"):
    """Sends one request per path in one write (from a thread: lbproxy holds it back), reads
    nothing for 5 s while sampling lbproxy's RSS, then reads every answer and calls
    check(i, response) on each in order. Returns the largest RSS growth seen, in KiB."""
    data = b"".join(f"GET {p} HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode() for p in paths)
    before = vm_rss_kib(lb)
    with SlowReader(*lb.address) as c:
        sent = []

        def send():
            c.sock.sendall(data)  # one write; blocks while lbproxy stops reading
            sent.append(True)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        peak = before
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:  # the client reads nothing for 5 s
            peak = max(peak, vm_rss_kib(lb))
            time.sleep(0.1)
        assert lb.alive(), lb.log_text()[-3000:]
        for i in range(len(paths)):
            check(i, c.read_response())
        t.join(30)
        assert sent, "the requests were never all sent"
        c.sock.settimeout(0.2)
        try:
            extra = c.sock.recv(65536)
        except socket.timeout:
            extra = b""
        assert c.buf == b"" and extra == b"", "answers beyond the requests sent"
    return peak - before


def test_pipelined_404s_read_late(upstream, lbproxy):
    """10,000 pipelined 404s in one write, read after 5 s: all answered, in order, and the
    daemon's RSS grows by less than 10 MB meanwhile. (The recursion this replaced crashed the
    daemon after a few thousand.)"""
    u = upstream("u")
    lb = measured_lb(lbproxy, {"access_log": False, "workers": 1,
                               "upstreams": [upstream_cfg("up", [u])],
                               "routes": [route_cfg("r", ["/api/*"], ["up"])]})
    assert lb.request("GET", "/nope/warm").status == 404
    n = 10_000

    def check(i, r):
        assert r.status == 404, (i, r)
        assert r.body == f"lbproxy: no route for GET /nope/{i}\n".encode(), (i, r)

    grew = pipeline_and_read_late(lb, [f"/nope/{i}" for i in range(n)], check)
    assert grew < 10 * MIB_KIB, f"RSS grew by {grew} KiB"
    assert lb.request("GET", "/api/after").status == 200
    assert u.paths() == ["/api/after"]


def test_pipelined_proxied_read_late(upstream, lbproxy):
    """The same with 4,000 requests proxied to an upstream: each answer is the upstream's for
    that request, in order."""
    u = upstream("u")
    lb = measured_lb(lbproxy, {"access_log": False, "workers": 1,
                               "upstreams": [upstream_cfg("up", [u])],
                               "routes": [route_cfg("r", ["/p/*"], ["up"])]})
    assert lb.request("GET", "/p/warm").status == 200
    n = 4_000

    def check(i, r):
        assert r.status == 200, (i, r)
        assert r.json()["path"] == f"/p/{i}", (i, r)

    grew = pipeline_and_read_late(lb, [f"/p/{i}" for i in range(n)], check)
    assert grew < 10 * MIB_KIB, f"RSS grew by {grew} KiB"
    assert u.paths()[1:] == [f"/p/{i}" for i in range(n)]


def test_client_that_never_reads_is_held_back(lbproxy):
    """A client that pipelines 100,000 requests (19 MB; 28 MB of answers) and reads nothing:
    its writes stall once 256 KiB of answers wait for it and the kernel's buffers are full (7 MB
    of requests when this was written), and the daemon does not grow with what it sent."""
    lb = measured_lb(lbproxy, {"access_log": False, "workers": 1,
                               "upstreams": [upstream_cfg("up", [("127.0.0.5", 9)])],
                               "routes": [route_cfg("r", ["/api/*"], ["up"])]})
    assert lb.request("GET", "/nope").status == 404
    pad = "x" * 150
    data = b"".join(f"GET /nope/{i}/{pad} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
                    for i in range(100_000))
    before = vm_rss_kib(lb)
    with SlowReader(*lb.address) as c:
        c.sock.setblocking(False)
        sent = 0
        peak = before
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            try:
                sent += c.sock.send(data[sent:sent + 1024 * 1024])
            except BlockingIOError:
                time.sleep(0.05)
            peak = max(peak, vm_rss_kib(lb))
            if sent == len(data):
                break
        assert sent < len(data), "lbproxy read every request of a client that reads nothing"
        assert peak - before < 10 * MIB_KIB, f"RSS grew by {peak - before} KiB"
    assert lb.request("GET", "/nope").status == 404


FLOODER = r"""
import socket, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
batch = b"".join(b"GET /nope/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(2000))
got = [0]
def reader():
    tail = b""
    while True:
        d = s.recv(1 << 20)
        if not d:
            return
        d = tail + d
        got[0] += d.count(b"HTTP/1.1 404 ")
        tail = d[-12:]
threading.Thread(target=reader, daemon=True).start()
s.sendall(batch)
for _ in range(1000):  # bounded: 10 s
    if got[0]:
        break
    time.sleep(0.01)
print("flooding", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    s.sendall(batch)
print(got[0], flush=True)
"""


def test_flood_does_not_starve_other_clients(upstream, lbproxy):
    """One connection pipelines requests as fast as it can; on the same worker another client
    keeps getting its answers promptly."""
    u = upstream("u")
    lb = lbproxy({"access_log": False, "workers": 1,
                  "upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("r", ["/api/*"], ["up"])]})
    flood = subprocess.Popen([sys.executable, "-c", FLOODER, str(lb.port), "8"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout.readline().strip() == "flooding"  # its first answers came back
        took = []
        with lb.client(timeout=10) as c:
            for i in range(40):
                t0 = time.monotonic()
                c.request("GET", f"/api/{i}")
                r = c.read_response()
                took.append(time.monotonic() - t0)
                assert r.status == 200 and r.json()["path"] == f"/api/{i}", r
        assert flood.poll() is None, "the flood ended before the other client was done"
        out = flood.communicate(timeout=30)[0]
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait(10)
    assert int(out.split()[0]) > 2000, out
    assert max(took) < 2.0, took
    assert statistics.median(took) < 0.2, took


# -- header and keep-alive timeouts ----------------------------------------------------------
TIMEOUTS = {"header": "1s", "keepalive": "30s", "shutdown_grace": "5s"}


def http_lb(lbproxy, upstream, timeouts=TIMEOUTS):
    u = upstream("u")
    return lbproxy({"timeouts": timeouts, "upstreams": [upstream_cfg("up", [u])],
                    "routes": [route_cfg("r", ["/*"], ["up"])]}), u


def closed_after(sock, timeout):
    """Seconds until the peer closed `sock` (None when it did not within `timeout`), and the
    bytes it sent first."""
    t0 = time.monotonic()
    data = b""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return time.monotonic() - t0, data
            data += d
    except socket.timeout:
        return None, data
    except ConnectionResetError:
        return time.monotonic() - t0, data


def test_silent_connection_closed_at_header_timeout(upstream, lbproxy):
    """A connection that sends nothing is closed at the header timeout (1 s), counted from
    accept, not kept for the keep-alive timeout (30 s); nothing is said to it."""
    lb, u = http_lb(lbproxy, upstream)
    with socket.create_connection(lb.address) as s:
        took, data = closed_after(s, 10)
    assert took is not None, "a silent connection was kept past 10 s"
    assert 0.8 < took < 5, took
    assert data == b""
    assert not lb.log_lines("408"), lb.log_text()[-2000:]


def test_partial_head_gets_408_counted_from_accept(upstream, lbproxy):
    """Part of a head, sent 1.5 s after connecting: 408 at the header timeout (2 s) from
    accept, not from the first byte (3.5 s)."""
    lb, u = http_lb(lbproxy, upstream, dict(TIMEOUTS, header="2s"))
    with lb.client(timeout=10) as c:
        t0 = time.monotonic()
        time.sleep(1.5)  # noqa: the client's own slowness is what is tested
        c.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        r = c.read_response()
        took = time.monotonic() - t0
        assert r.status == 408, r
        assert c.is_closed(5)
    assert 1.8 < took < 3.2, took
    assert u.heads == []


def test_keepalive_idle_keeps_keepalive_timeout(upstream, lbproxy):
    """Between requests the keep-alive timeout applies (3 s), not the header timeout (1 s)."""
    lb, u = http_lb(lbproxy, upstream, dict(TIMEOUTS, keepalive="3s"))
    with lb.client(timeout=10) as c:
        c.request("GET", "/one")
        assert c.read_response().status == 200
        assert not c.is_closed(1.8), "idle keep-alive connection cut at the header timeout"
        c.request("GET", "/two")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.is_closed(10)
        assert 2.5 < time.monotonic() - t0 < 6


def test_https_header_timeout_from_accept(tmp_path, upstream, lbproxy):
    """On an https listener the handshake falls within the header timeout too: a client that
    completes it and sends no request is closed silently at 1 s from accept; one that sends part
    of a head gets 408."""
    ca = _ca(tmp_path, "ca")
    cert = _leaf(tmp_path, "a", ca, ["a.example"])
    u = upstream("u")
    lb = lbproxy(to_yaml({
        "timeouts": TIMEOUTS,
        "listeners": [{"name": "https", "listen": "@LISTEN@", "protocol": "https",
                       "certificates": [{"cert": str(cert[0]), "key": str(cert[1])}]}],
        "upstreams": [upstream_cfg("up", [u])],
        "routes": [route_cfg("r", ["/*"], ["up"])]}))
    ctx = ssl.create_default_context(cafile=str(ca[0]))
    for head, answer in ((b"", b""), (b"GET /slow HTTP/1.1\r\nHost: a\r\n", b"HTTP/1.1 408 ")):
        t0 = time.monotonic()
        with socket.create_connection(lb.address) as raw:
            raw.settimeout(10)
            with ctx.wrap_socket(raw, server_hostname="a.example") as s:
                s.sendall(head)
                took, data = closed_after(s, 10)
        took = time.monotonic() - t0 if took is not None else None
        assert took is not None and 0.8 < took < 5, (head, took)
        if answer:
            assert data.startswith(answer), (head, data[:200])
        else:
            assert data == b"", data[:200]
    assert u.heads == []


def test_tls_passthrough_silent_connection_closed_at_header_timeout(lbproxy):
    """A tls-passthrough connection must send its ClientHello within the header timeout,
    counted from accept."""
    port = free_port()
    lb = lbproxy(to_yaml({
        "timeouts": TIMEOUTS,
        "listeners": [{"name": "http", "listen": "@LISTEN@"},
                      {"name": "pass", "listen": f"127.0.0.1:{port}",
                       "protocol": "tls-passthrough",
                       "sni_routes": [{"server_names": ["a.example"], "upstream": "up"}]}],
        "upstreams": [upstream_cfg("up", [("127.0.0.5", 9)])],
        "routes": [route_cfg("r", ["/unused"], ["up"])]}))
    assert lb.alive()
    with socket.create_connection(("127.0.0.1", port)) as s:
        took, data = closed_after(s, 10)
    assert took is not None and 0.8 < took < 5, took
    assert data == b""


def test_tcp_listener_has_no_header_timeout(lbproxy):
    """A tcp listener's client may wait for the server to speak first: the header timeout does
    not apply; the session's idle timeout does."""
    echo = EchoServer("a", "127.0.0.2")
    try:
        port = free_port()
        cfg = tcp_config(port, upstream_cfg("echo", [echo]), idle_timeout="30s")
        cfg["timeouts"] = TIMEOUTS
        lbproxy(to_yaml(cfg))
        with socket.create_connection(("127.0.0.1", port)) as s:
            took, _ = closed_after(s, 2.5)
            assert took is None, "a quiet tcp session was cut at the header timeout"
            s.sendall(b"ping")
            s.settimeout(10)
            assert s.recv(4) == b"ping"
    finally:
        echo.stop()
