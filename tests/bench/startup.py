#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Start-up time: from exec to READY=1, with many routes and https upstreams.

    /usr/bin/python3 tests/bench/startup.py [--routes 10000] [--upstreams 1000] [--runs 3] BINARY...

Each binary is started `runs` times with the same generated configuration (route i goes to
upstream i % upstreams; each upstream https with two nodes, no ca_file: all trust the system
store); the median, min and max are printed. Not a test."""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def config(routes, upstreams, port):
    out = ["access_log: false", "workers: 1",
           f'listeners: [{{name: web, listen: "127.0.0.1:{port}"}}]', "upstreams:"]
    for i in range(upstreams):
        a, b = f"127.0.{1 + i // 200}.{1 + i % 200}", f"127.0.{1 + i // 200}.{201 + i % 50}"
        out.append(f"- {{name: u{i}, scheme: https, tls: {{sni: u{i}.example}}, nodes: "
                   f"[{{host: {a}, port: 443}}, {{host: {b}, port: 443}}]}}")
    out.append("routes:")
    for i in range(routes):
        out.append(f"- {{name: r{i}, paths: [/route-{i}], upstreams: [{{name: u{i % upstreams}}}]}}")
    return "\n".join(out) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(binary, path, timeout=600):
    d = tempfile.mkdtemp(prefix="lbp-start-")
    notify = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(notify)
    s.settimeout(0.05)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--config", path], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < timeout:
            try:
                if "READY=1" in s.recv(65536).decode().split("\n"):
                    return time.monotonic() - t0
            except socket.timeout:
                if p.poll() is not None:
                    raise SystemExit(f"{binary} exited with {p.returncode}")
        raise SystemExit(f"{binary}: no READY=1 in {timeout}s")
    finally:
        p.terminate()
        p.wait(30)
        s.close()
        os.unlink(notify)
        os.rmdir(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--upstreams", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "lbproxy.yaml")
        with open(path, "w") as f:
            f.write(config(a.routes, a.upstreams, free_port()))
        print(f"{a.routes} routes, {a.upstreams} https upstreams of 2 nodes")
        for b in a.binaries:
            times = [start_once(b, path) for _ in range(a.runs)]
            print(f"{b}: start-up to READY=1 median {statistics.median(times) * 1000:.0f} ms "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {a.runs} runs)")


if __name__ == "__main__":
    sys.exit(main())
