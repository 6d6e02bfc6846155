#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What counting for the metrics costs a request (#16: at most 3% more instructions): lbproxy
binaries under callgrind, each proxying N keep-alive requests (clients.py seq) to two plain HTTP
upstreams (tests/integration/upstream.py) on one route, one worker, no access log. Prints the
instructions per request of each binary and configuration, and their ratio to the first.

  metrics_cost.py [-n N] [--keep DIR] NAME=BINARY[:metrics] ...

  e.g. metrics_cost.py base=/tmp/base/lbproxy new=build/src/lbproxy new+listener=build/src/lbproxy:metrics

`:metrics` adds a metrics listener (scraped once before counting starts), `:workers2` runs two
workers instead of one (the requests, over one connection, go to one of them; callgrind sums
every thread). Options combine: `:metrics,workers2`. Run it inside
`unshare --net` (loopback only), as the integration tests are.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from upstream import UpstreamServer  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def seq(port, n):
    p = subprocess.run([sys.executable, str(HERE / "clients.py"), "seq", "127.0.0.1", str(port),
                        str(n)], capture_output=True, text=True, timeout=600)
    if p.returncode != 0 or not p.stdout.startswith(f"done {n} 0"):
        raise RuntimeError(f"clients.py seq: {p.stdout} {p.stderr}")


def scrape(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:100]


def measure(binary, opts, ups, n, d):
    with_metrics = "metrics" in opts
    port, mport = free_port(), free_port()
    cfg = Path(d) / f"cfg-{port}.yaml"
    workers = 2 if "workers2" in opts else 1
    lines = ["access_log: false", f"workers: {workers}", "listeners:",
             f'  - {{name: http, listen: "127.0.0.1:{port}"}}']
    if with_metrics:
        lines.append(f'  - {{name: metrics, listen: "127.0.0.1:{mport}", protocol: metrics}}')
    lines.append("upstreams:")
    for i, u in enumerate(ups):
        lines.append(f"  - {{name: u{i}, keepalive_pool: 8, nodes: [{{host: {u.host}, "
                     f"port: {u.port}}}]}}")
    lines += ["routes:", "  - {name: r, paths: [/headers], upstreams: [" +
              ", ".join(f"{{name: u{i}}}" for i in range(len(ups))) + "]}"]
    cfg.write_text("\n".join(lines) + "\n")
    out = Path(d) / f"callgrind.{port}.out"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                          binary, "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        seq(port, 50)  # warm: connections pooled, code paths taken once
        if with_metrics:
            scrape(mport)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True,
                       timeout=60)
        seq(port, n)
        before = set(os.listdir(d))
        subprocess.run(["callgrind_control", "-d", "counted", str(p.pid)], capture_output=True,
                       timeout=120)
        new = sorted(f for f in set(os.listdir(d)) - before if f.startswith(out.name))
        with open(Path(d) / new[-1]) as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1]) / n
        raise RuntimeError("no summary in the dump")
    finally:
        p.terminate()
        p.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind dumps in DIR")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    ups = [UpstreamServer("a", "127.0.0.2").start(), UpstreamServer("b", "127.0.0.3").start()]
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        for run in a.runs:
            name, spec = run.split("=", 1)
            binary, _, opt = spec.partition(":")
            ir = measure(binary, set(opt.split(",")) - {""}, ups, a.n, d)
            first = first or ir
            print(f"{name:20s} {ir:10.0f} Ir/req   {100 * (ir / first - 1):+6.2f}%", flush=True)
    for u in ups:
        u.stop()


if __name__ == "__main__":
    main()
