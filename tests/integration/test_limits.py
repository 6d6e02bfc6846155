# SPDX-License-Identifier: MIT
"""Connection limits: lbproxy at its file descriptor limit (run under prlimit) pauses accepting
instead of spinning, says so once a second, and serves again as soon as clients leave;
`limits: {max_connections: N}` holds N exactly across workers, further clients wait in the
backlog and are served when one closes; the default is derived from RLIMIT_NOFILE so that the
daemon does not run out of descriptors at all; a tcp tunnel at the limit copies when it cannot
get pipes for splice(2)."""

import re
import socket
import threading
import time

import pytest

from lbtest import free_port, read_to_eof, route_cfg, to_yaml, upstream_cfg

NOFILE = 64
PRLIMIT = ["prlimit", f"--nofile={NOFILE}:{NOFILE}"]
ACCEPT_FAILED = "Cannot accept connections on listener"
LIMIT_REACHED = "Connection limit reached"


def config(up, **top):
    cfg = {"upstreams": [upstream_cfg("u", [up])], "routes": [route_cfg("r", ["/*"], ["u"])]}
    cfg.update(top)
    return cfg


def connect(lb, timeout=5.0):
    s = socket.create_connection(lb.address, timeout=timeout)
    return s


def served(lb, s, path="/x", timeout=5.0):
    """Sends a request on `s` and returns the status of its answer (None: none within
    timeout)."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return answer(s, timeout)


def answer(s, timeout):
    s.settimeout(timeout)
    try:
        d = s.recv(65536)
    except socket.timeout:
        return None
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", d)
    assert m, d[:200]
    # The body is small and comes in the same segment; keep-alive goes on.
    return int(m.group(1))


def closing(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def test_at_fd_limit_pauses_quietly_and_serves_when_clients_leave(lbproxy, upstream):
    up = upstream("a")
    # max_connections far above what 64 descriptors hold: accept(2) itself fails with EMFILE.
    lb = lbproxy(config(up, workers=2, limits={"max_connections": 1000}), wrapper=PRLIMIT)
    held = []
    try:
        with lb.client() as c:  # the route works, and an upstream connection is pooled
            c.request("GET", "/x")
            assert c.read_response().status == 200
        for _ in range(40):
            for _ in range(4):
                held.append(connect(lb))
            if lb.wait_log(ACCEPT_FAILED, timeout=0.3):
                break
        failed = lb.log_lines(ACCEPT_FAILED)
        assert failed, lb.log_text()[-3000:]
        assert "Too many open files" in failed[0], failed[0]
        assert len(held) < 4 * 40
        # Some more wait in the backlog while lbproxy cannot take them.
        for _ in range(5):
            held.append(connect(lb))

        lines0 = len(lb.log_text().splitlines())
        cpu0, t0 = lb.cpu_seconds(), time.monotonic()
        time.sleep(4)  # the measurement window itself, not a wait for something
        cpu1, t1 = lb.cpu_seconds(), time.monotonic()
        lines1 = len(lb.log_text().splitlines())
        wall = t1 - t0
        cpu_share = (cpu1 - cpu0) / wall
        print(f"at the fd limit: {cpu_share:.2%} CPU, {lines1 - lines0} log lines in "
              f"{wall:.1f} s, {len(held)} client connections")
        assert cpu_share < 0.05, f"{cpu_share:.1%} CPU at the fd limit"
        assert lines1 - lines0 <= 2 * wall, lb.log_text().splitlines()[lines0:]
        assert lb.fd_count() == NOFILE

        # Clients leave (some accepted, and those waiting in the backlog): a new one is
        # served within a second.
        closing(held[:20] + held[-5:])
        held = held[20:-5]
        t = time.monotonic()
        with lb.client(timeout=5) as c:
            c.request("GET", "/x")
            assert c.read_response().status == 200
        assert time.monotonic() - t < 1.0
        assert not lb.sanitizer_reports()
    finally:
        closing(held)


def test_default_max_connections_keeps_clear_of_the_fd_limit(lbproxy, upstream):
    up = upstream("a")
    lb = lbproxy(config(up, workers=2), wrapper=PRLIMIT)
    # Said once the workers run, by the log thread: READY=1 can come first.
    lines = lb.wait_log("Accepting up to", "derived from the file descriptor limit")
    assert lines, lb.log_text()[-2000:]
    n = int(re.search(r"Accepting up to (\d+) client connections", lines[0]).group(1))
    # README: (RLIMIT_NOFILE - 32 - listeners - 3 x workers) / 3
    assert n == (NOFILE - 32 - 1 - 3 * 2) // 3
    held, waiting = [], []
    try:
        for _ in range(n):
            held.append(connect(lb))
            assert served(lb, held[-1]) == 200
        for _ in range(3):
            waiting.append(connect(lb))
            waiting[-1].sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        for s in waiting:
            assert answer(s, 0.5) is None
        assert lb.wait_log(LIMIT_REACHED), lb.log_text()[-2000:]
        # STATUS= (every 5 s) shows the count against the limit.
        want = f"{n}/{n} connections (max_connections reached"
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and not any(
                want in ln for ln in lb.notify_lines() if ln.startswith("STATUS=")):
            time.sleep(0.1)
        assert any(want in ln for ln in lb.notify_lines()), lb.notify_lines()[-3:]
        closing(held[:3])
        held = held[3:]
        for s in waiting:
            assert answer(s, 1.0) == 200
        # The daemon never ran out of descriptors.
        assert not lb.log_lines(ACCEPT_FAILED), lb.log_lines(ACCEPT_FAILED)
    finally:
        closing(held + waiting)


def test_soft_fd_limit_raised_to_the_hard_one(lbproxy, upstream):
    """Started with a soft limit below the hard one (as systemd starts services, 1024 soft), the
    daemon raises it and derives max_connections from the hard limit."""
    up = upstream("a")
    lb = lbproxy(config(up, workers=1), wrapper=["prlimit", f"--nofile={NOFILE}:{4 * NOFILE}"])
    # Said once the workers run, by the log thread: READY=1 can come first.
    lines = lb.wait_log("Accepting up to", "derived from the file descriptor limit")
    assert lines, lb.log_text()[-2000:]
    assert f"file descriptor limit {4 * NOFILE})" in lines[0], lines[0]
    with open(f"/proc/{lb.pid}/limits") as f:
        row = next(ln for ln in f if ln.startswith("Max open files"))
    assert row.split()[3:5] == [str(4 * NOFILE), str(4 * NOFILE)], row


@pytest.mark.parametrize("workers", [1, 2])
def test_max_connections_exact_and_waiting_client_served_when_one_closes(lbproxy, upstream,
                                                                         workers):
    up = upstream("a")
    lb = lbproxy(config(up, workers=workers, limits={"max_connections": 5}))
    held, waiting = [], None
    try:
        for _ in range(5):
            held.append(connect(lb))
            assert served(lb, held[-1]) == 200
        # Rounds: with two workers the one that closes a connection is not always the one
        # that paused; either way the waiting client is served.
        for _ in range(4):
            waiting = connect(lb)  # TCP succeeds: the kernel's backlog
            waiting.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            assert answer(waiting, 1.0) is None, "a sixth client was served"
            # The five are still served meanwhile.
            assert served(lb, held[0]) == 200
            held.pop(len(held) - 1).close()
            t = time.monotonic()
            assert answer(waiting, 5.0) == 200
            assert time.monotonic() - t < 1.0
            held.append(waiting)
            waiting = None
        reached = lb.wait_log(LIMIT_REACHED)
        assert reached and "max_connections 5" in reached[0], lb.log_text()[-2000:]
    finally:
        closing(held + ([waiting] if waiting else []))


def test_burst_over_max_connections_is_served_in_turn(lbproxy, upstream):
    """Twenty clients at once against max_connections 3 over two workers: every one is answered
    as slots come free, never faster than three at a time allows."""
    up = upstream("a")
    lb = lbproxy(config(up, workers=2, limits={"max_connections": 3}))
    results = []

    def one():
        with socket.create_connection(lb.address, timeout=30) as s:
            s.sendall(b"GET /delay/0.2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = read_to_eof(s)
        results.append(data.split(b" ", 2)[1])

    threads = [threading.Thread(target=one) for _ in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [b"200"] * 20
    # Three at a time: seven rounds of 0.2 s (four at a time would take five).
    assert time.monotonic() - t0 >= 7 * 0.2
    assert len(up.heads) == 20


def test_tcp_tunnel_at_fd_limit_copies_without_splice_pipes(lbproxy):
    """A bulk transfer through a tcp listener while the descriptor table is full: pipe2()
    fails, and the session goes on over its buffers."""
    from test_streams import EchoServer, echo_through

    echo = EchoServer("e", "127.0.0.2")
    port = free_port()
    cfg = {
        "workers": 1,
        "limits": {"max_connections": 1000},
        "listeners": [{"name": "http", "listen": "@LISTEN@"},
                      {"name": "tcp", "listen": f"127.0.0.1:{port}", "protocol": "tcp",
                       "upstream": "echo"}],
        "upstreams": [upstream_cfg("echo", [echo])],
        "routes": [route_cfg("r", ["/unused"], ["echo"])],
    }
    lb = lbproxy(to_yaml(cfg), wrapper=PRLIMIT)
    held = []
    try:
        # Idle clients until the descriptor table is full, each one accepted before the next.
        # A descriptor may come and go meanwhile (the bus, retried in the background): full is
        # full for a moment.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(held) < NOFILE:
            n = lb.fd_count()
            if n >= NOFILE:
                time.sleep(0.2)
                if lb.fd_count() >= NOFILE:
                    break
                continue
            held.append(connect(lb))
            accepted = time.monotonic() + 2
            while time.monotonic() < accepted and lb.fd_count() <= n:
                time.sleep(0.01)
        assert lb.fd_count() == NOFILE
        # Two leave: the tunnel's client and upstream sockets take their places, and there is
        # none left for a pipe.
        closing(held[:2])
        held = held[2:]
        n = 4 * 1024 * 1024
        full_seen = []
        received, intact, tail = echo_through(
            ("127.0.0.1", port), n, 256 * 1024,
            on_read=lambda: full_seen.append(lb.fd_count() == NOFILE))
        assert received == n
        assert intact
        assert tail == f"bye {n} from e".encode()
        assert any(full_seen), "the descriptor table was never full during the transfer"
    finally:
        closing(held)
        echo.stop()
