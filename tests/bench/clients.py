#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Small load clients for the benchmark (stdlib only, loopback only, bounded in count and time).

  clients.py idle HOST PORT COUNT [--tls CAFILE] [--hold SECONDS]
      Opens COUNT connections, sends one GET /headers on each and reads the whole response, so
      each connection sits idle in keep-alive; prints "ready COUNT", then holds them until its
      standard input closes or --hold seconds pass, and closes them all.

  clients.py seq HOST PORT COUNT [--close] [--tls CAFILE]
      COUNT requests one after the other: on one keep-alive connection, or with --close on a new
      connection each (Connection: close). Deterministic, for instruction and syscall counts.
      Prints "done COUNT ERRORS".
"""

import argparse
import resource
import select
import socket
import ssl
import sys
import time

REQUEST_KA = b"GET /headers HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: lbproxy-bench\r\nAccept: */*\r\n\r\n"
REQUEST_CLOSE = (b"GET /headers HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: lbproxy-bench\r\n"
                 b"Accept: */*\r\nConnection: close\r\n\r\n")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def read_response(sock, deadline):
    """Reads one response with a Content-Length body; returns the status code."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("response head")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        if time.monotonic() > deadline:
            raise TimeoutError("response body")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return status


def connect(host, port, tls_ctx, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="localhost")
    return s


def make_ctx(cafile):
    if not cafile:
        return None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


def cmd_idle(a):
    raise_nofile()
    ctx = make_ctx(a.tls)
    socks = []
    errors = 0
    deadline = time.monotonic() + 120
    for _ in range(a.count):
        if time.monotonic() > deadline:
            break
        try:
            s = connect(a.host, a.port, ctx, 10)
            s.sendall(REQUEST_KA)
            if read_response(s, time.monotonic() + 10) != 200:
                errors += 1
            socks.append(s)
        except (OSError, ValueError, IndexError) as e:
            errors += 1
            if errors <= 3:
                print(f"error: {e}", file=sys.stderr, flush=True)
    print(f"ready {len(socks)} {errors}", flush=True)
    # Hold until told (stdin closes) or --hold seconds pass.
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        r, _, _ = select.select([sys.stdin], [], [], 0.5)
        if r and not sys.stdin.readline():
            break
    for s in socks:
        s.close()


def cmd_seq(a):
    ctx = make_ctx(a.tls)
    errors = 0
    done = 0
    deadline = time.monotonic() + a.timeout
    s = None
    for _ in range(a.count):
        if time.monotonic() > deadline:
            break
        try:
            if s is None:
                s = connect(a.host, a.port, ctx, 30)
            s.sendall(REQUEST_CLOSE if a.close else REQUEST_KA)
            if read_response(s, time.monotonic() + 30) != 200:
                errors += 1
            if a.close:
                # Wait for the server's close, as a browser would, then close our side.
                s.settimeout(30)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                s.close()
                s = None
        except (OSError, ValueError, IndexError) as e:
            errors += 1
            if errors <= 3:
                print(f"error: {e}", file=sys.stderr, flush=True)
            if s is not None:
                s.close()
            s = None
        done += 1
    if s is not None:
        s.close()
    print(f"done {done} {errors}", flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("host")
    i.add_argument("port", type=int)
    i.add_argument("count", type=int)
    i.add_argument("--tls")
    i.add_argument("--hold", type=float, default=120)
    q = sub.add_parser("seq")
    q.add_argument("host")
    q.add_argument("port", type=int)
    q.add_argument("count", type=int)
    q.add_argument("--close", action="store_true")
    q.add_argument("--tls")
    q.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()
    if a.cmd == "idle":
        cmd_idle(a)
    else:
        cmd_seq(a)


if __name__ == "__main__":
    main()
