# SPDX-License-Identifier: MIT
"""Resources come back: after many connections, good and bad, lbproxy holds no more file
descriptors than before, besides the idle upstream connections of its keep-alive pool."""

import os
import socket
import struct
import time

from lbtest import Closed, build_request, dead_port, route_cfg, upstream_cfg


def _tcp_table(pid):
    """inode -> (local, remote, state) for the process's TCP sockets (IPv4 and IPv6)."""
    out = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/{pid}/net/{name}").read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            f = ln.split()

            def addr(a):
                h, p = a.split(":")
                if len(h) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(h, 16)))
                else:
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(
                        struct.pack("<I", int(h[i:i + 8], 16)) for i in range(0, 32, 8)))
                return f"{ip}:{int(p, 16)}"
            out[f[9]] = (addr(f[1]), addr(f[2]), f[3])
    return out


def fds(pid):
    """fd -> description (socket addresses when a TCP socket)."""
    table = _tcp_table(pid)
    res = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            target = table.get(target[8:-1], target)
        res[int(fd)] = target
    return res


def test_no_fd_leak_after_many_connections(upstream, lbproxy):
    u = upstream("u")
    lb = lbproxy({"timeouts": {"header": "2s", "keepalive": "2s", "shutdown_grace": "5s"},
                  "upstreams": [upstream_cfg("up", [u]),
                                upstream_cfg("dead", [("127.0.0.5", dead_port("127.0.0.5"))])],
                  "routes": [route_cfg("r", ["/*"], ["up"]),
                             route_cfg("d", ["/dead/*"], ["dead"])]})
    assert lb.request("GET", "/warm").status == 200
    before = fds(lb.pid)
    kinds = [
        build_request("GET", "/ok"),
        build_request("GET", "/dead/x"),
        b"GARBAGE\r\n\r\n",
        build_request("POST", "/upload", body=b"x" * 10000),
        build_request("GET", "/delay/0.05"),
    ]
    for i in range(200):
        with lb.client() as c:
            c.send(kinds[i % len(kinds)])
            if i % 10 == 9:
                continue  # client goes away without reading
            try:
                c.read_response()
            except Closed:
                pass
    for i in range(20):  # clients that vanish mid-request
        c = lb.client()
        c.send(b"GET /half HTTP/1.1\r\nHost: a\r\n")
        c.close()

    def extra():
        """Descriptors beyond those open before, other than connections to the upstream."""
        now = fds(lb.pid)
        return {fd: d for fd, d in now.items()
                if fd not in before and not (isinstance(d, tuple) and d[1] == u.address)}

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and extra():
        time.sleep(0.05)
    assert extra() == {}, f"descriptors left open: {extra()}"
    pool = [d for d in fds(lb.pid).values() if isinstance(d, tuple) and d[1] == u.address]
    assert len(pool) <= 2 * 32, pool
    assert lb.request("GET", "/still-alive").status == 200
