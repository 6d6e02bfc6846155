#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What active health checks cost: 1,000 nodes probed every second (tcp, then http) against a
local nginx, the prober thread's CPU as a share of one core (bench-health-probes reads it from
/proc/self/task/<tid>/stat), and nginx's count of what arrived (stub_status), so that the rate
is seen to be one probe per node per second.

Run inside a network namespace of its own (nginx binds 127.0.0.1:18081 and the nodes are
127.0.x.y):
    unshare --net sh -c 'ip link set lo up && /usr/bin/python3 tests/bench/health-probes.py'
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.environ.get("BENCH", os.path.join(ROOT, "build/tests/bench/bench-health-probes"))
PORT = 18081
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
    server {{ listen 127.0.0.1:{status}; location / {{ stub_status; }} }}
}}
"""


def accepted():
    with urllib.request.urlopen(f"http://127.0.0.1:{STATUS_PORT}/", timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, handled, requests = map(int, lines[2].split())
    return accepts, requests


def main():
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=PORT, status=STATUS_PORT))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
        try:
            for _ in range(100):
                try:
                    accepted()
                    break
                except OSError:
                    time.sleep(0.05)
            for kind in ("tcp", "http"):
                a0, r0 = accepted()
                t0 = time.monotonic()
                out = subprocess.run([BENCH, str(PORT), kind, str(NODES), str(SECONDS)],
                                     check=True, capture_output=True, text=True).stdout
                wall = time.monotonic() - t0
                a1, r1 = accepted()
                res = json.loads(out)
                # The status requests themselves: one each.
                res["connections_per_second"] = round((a1 - a0 - 1) / wall, 1)
                res["requests_per_second"] = round((r1 - r0 - 1) / wall, 1)
                print(json.dumps(res))
        finally:
            nginx.terminate()
            nginx.wait()


if __name__ == "__main__":
    sys.exit(main())
