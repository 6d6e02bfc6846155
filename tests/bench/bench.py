#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""lbproxy against HAProxy and nginx, configured identically, on loopback.

Run by tests/bench/run.sh (which installs what is missing and builds lbproxy). See
tests/bench/README.md for what is measured and how to read the table.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENTS = os.path.join(HERE, "clients.py")
PY = "/usr/bin/python3"

PROXY_CPU = "0"  # the proxy under test
LOAD_CPU = "1"   # wrk, the upstream nginx, the idle clients
HZ = os.sysconf("SC_CLK_TCK")

UP_A, UP_B = "127.0.0.2", "127.0.0.3"
UP_PORT = 8443          # the seed's two upstreams: A = httpbin.org, B = mock.api7.ai
NODE_PORT0 = 20000      # node scaling: ports NODE_PORT0.. on A and B, all serving httpbin.org
MAX_NODES = 1000
BALANCER_NODES = 10     # the balancers rows: one upstream of this many nodes

# The proxies, in the order they are interleaved run by run.
PROXIES = [
    ("lbproxy", 18001),
    ("haproxy", 18002),
    ("nginx", 18003),
    ("haproxy#2", 18004),  # the control: a second, identical HAProxy
]
TLS_PORT_OFFSET = 100
# A group of scale sizes runs at once, size k of the group on ports + CASE_PORT_OFFSET + 10 * k
# (18201-18204, 18211-18214, ...): clear of the plain and TLS ports, callgrind's 18500, the
# upstreams' 8443 and 20000-20499, and the ephemeral range.
CASE_PORT_OFFSET = 200

_children = []  # every process we started: (Popen, name)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# processes


def spawn(argv, name, cpu, stdout=None, stderr=None, stdin=None):
    argv = ["taskset", "-c", cpu] + list(argv)
    p = subprocess.Popen(argv, stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.DEVNULL, stdin=stdin or subprocess.DEVNULL,
                         start_new_session=True)
    _children.append((p, name))
    return p


def stop(p, timeout=10):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)


def stop_all():
    for p, _ in reversed(_children):
        stop(p, 5)
    _children.clear()
    for cg in list(CpuQuota.made):
        cg.remove()


def tree(pid):
    """pid and its descendants (nginx: master and worker)."""
    out, todo = [], [pid]
    while todo and len(out) < 64:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / HZ


def status_kb(pids, key):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def clear_peak(pids):
    for p in pids:
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def core_busy():
    """Jiffies of each CPU: (busy, total, in processes (user+nice+system), steal)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *v = line.split()
                v = [int(x) for x in v]
                idle = v[3] + v[4]
                out[name[3:]] = (sum(v[:8]) - idle, sum(v[:8]), v[0] + v[1] + v[2], v[7])
    return out


UPSTREAM_PIDS = []  # the upstream nginx masters
LBPROXY_HAS_WORKERS = False


def wait_port(host, port, timeout=20, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------------------------
# certificates and upstreams


def certtool(*args, cwd):
    subprocess.run(["certtool", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


def make_certs(d):
    with open(f"{d}/ca.tmpl", "w") as f:
        f.write('cn = "lbproxy bench CA"\nca\ncert_signing_key\nexpiration_days = 30\n')
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", "ca.key", cwd=d)
    certtool("--generate-self-signed", "--load-privkey", "ca.key", "--template", "ca.tmpl",
             "--outfile", "ca.pem", cwd=d)
    for name, ip in (("httpbin.org", None), ("mock.api7.ai", None), ("localhost", "127.0.0.1")):
        with open(f"{d}/{name}.tmpl", "w") as f:
            f.write(f'cn = "{name}"\ndns_name = "{name}"\n')
            if ip:
                f.write(f'ip_address = "{ip}"\n')
            f.write("tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 30\n")
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", f"{name}.key", cwd=d)
        certtool("--generate-certificate", "--load-privkey", f"{name}.key", "--load-ca-privkey",
                 "ca.key", "--load-ca-certificate", "ca.pem", "--template", f"{name}.tmpl",
                 "--outfile", f"{name}.pem", cwd=d)
        with open(f"{d}/{name}.both.pem", "w") as f:  # HAProxy's crt: certificate then key
            f.write(open(f"{d}/{name}.pem").read() + open(f"{d}/{name}.key").read())


BODY = ('{\\n  \\"headers\\": {\\n    \\"Accept\\": \\"$http_accept\\",\\n'
        '    \\"Host\\": \\"$host\\",\\n    \\"User-Agent\\": \\"$http_user_agent\\",\\n'
        '    \\"Via\\": \\"$http_via\\",\\n    \\"X-Forwarded-For\\": \\"$http_x_forwarded_for\\",\\n'
        '    \\"X-Forwarded-Proto\\": \\"$http_x_forwarded_proto\\"\\n  }\\n}\\n')


def start_upstream(d, which):
    """One nginx, one worker, on the load core: A = 127.0.0.2 (httpbin.org), B = 127.0.0.3
    (mock.api7.ai); both also serve httpbin.org on NODE_PORT0.. for the node-scaling rows."""
    ip, name = (UP_A, "httpbin.org") if which == "A" else (UP_B, "mock.api7.ai")
    extra = "\n".join(f"    listen {ip}:{NODE_PORT0 + i} ssl;" for i in range(MAX_NODES // 2))
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/up{which}.pid;
error_log {d}/up{which}.err warn;
events {{ worker_connections 16000; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:up{which}:10m;
  server {{
    listen {ip}:{UP_PORT} ssl;
    ssl_certificate {d}/{name}.pem; ssl_certificate_key {d}/{name}.key;
    location = /headers {{ default_type application/json; return 200 "{BODY}"; }}
    location / {{ return 404; }}
  }}
  server {{
{extra}
    ssl_certificate {d}/httpbin.org.pem; ssl_certificate_key {d}/httpbin.org.key;
    location = /headers {{ default_type application/json; return 200 "{BODY}"; }}
    location / {{ return 404; }}
  }}
}}
"""
    path = f"{d}/up{which}.conf"
    with open(path, "w") as f:
        f.write(conf)
    p = spawn(["nginx", "-p", d, "-e", f"{d}/up{which}.err", "-c", path], f"upstream-{which}",
              LOAD_CPU)
    if not wait_port(ip, UP_PORT, 20, p):
        sys.exit(f"upstream nginx {which} did not start: see {d}/up{which}.err")
    return p


# ----------------------------------------------------------------------------------------------
# the proxies' configurations: the same work for each
#
# Topology "seed": one route /headers (plus routes-1 other exact routes before it, /route-N),
# balanced round robin over two upstreams of one node each, over HTTPS with SNI and verification
# against the test CA, Host set to the node's name, keep-alive to the upstreams, and the same
# header edits (X-Forwarded-For, X-Forwarded-Proto, Via). Topology "nodes": one route to one
# upstream of N nodes (all httpbin.org). Nodes are written as IPs with the name given as SNI and
# Host, in all three proxies.


def seed_nodes(topo):
    if topo["kind"] == "seed":
        return None
    n = topo["nodes"]
    return [((UP_A if i % 2 == 0 else UP_B), NODE_PORT0 + i // 2) for i in range(n)]


def route_paths(topo):
    n = topo.get("routes", 1)
    return [f"/route-{i}" for i in range(n - 1)] + ["/headers"]


def lbproxy_config(d, name, port, topo, tls_listener):
    ca = f"{d}/ca.pem"
    out = ["access_log: false", "timeouts: {header: 30s, keepalive: 60s}"]
    if LBPROXY_HAS_WORKERS:  # its default is one per core: one, unless the row says more
        out.append(f"workers: {topo.get('workers') or 1}")
    out.append("listeners:")
    if tls_listener:
        t = tls_listener.replace("@CERT@", f"{d}/localhost.pem").replace("@KEY@", f"{d}/localhost.key")
        out.append(f'  - {{name: https, listen: "127.0.0.1:{port}", {t}}}')
    else:
        out.append(f'  - {{name: http, listen: "127.0.0.1:{port}"}}')
    out.append("upstreams:")
    common = ("    scheme: https\n    pass_host: rewrite\n    keepalive_pool: 64\n"
              "    timeout: {connect: 5s, send: 60s, read: 60s}\n")
    nodes = seed_nodes(topo)
    if nodes is None:
        targets = []
        for up, ip, host in (("httpbin", UP_A, "httpbin.org"), ("mockapi7", UP_B, "mock.api7.ai")):
            out.append(f"  - name: {up}\n{common}    upstream_host: {host}\n"
                       f"    tls: {{ca_file: {ca}, verify: true, sni: {host}}}\n"
                       f"    nodes: [{{host: {ip}, port: {UP_PORT}, weight: 1}}]")
            targets.append(f"{{name: {up}, weight: 1}}")
    else:
        bal = f"    balancer: {topo['balancer']}\n" if topo.get("balancer") else ""
        out.append(f"  - name: pool\n{common}{bal}    upstream_host: httpbin.org\n"
                   f"    tls: {{ca_file: {ca}, verify: true, sni: httpbin.org}}\n    nodes:")
        out += [f"      - {{host: {ip}, port: {p}, weight: 1}}" for ip, p in nodes]
        targets = ["{name: pool, weight: 1}"]
    out.append("routes:")
    for i, path in enumerate(route_paths(topo)):
        rn = "lb-route" if path == "/headers" else f"r{i}"
        out.append(f'  - {{name: {rn}, paths: ["{path}"], upstreams: [{", ".join(targets)}]}}')
    path = f"{d}/{name}.yaml"
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def haproxy_config(d, name, port, topo, tls_listener, threads=1):
    ca = f"{d}/ca.pem"
    mapfile = f"{d}/{name}.routes.map"
    with open(mapfile, "w") as f:
        for path in route_paths(topo):
            f.write(f"{path} be\n")
    bind = f"bind 127.0.0.1:{port}"
    if tls_listener:
        bind += f" ssl crt {d}/localhost.both.pem"
    srv = "ssl verify required ca-file {ca} sni str({sni})"
    nodes = seed_nodes(topo)
    if nodes is None:
        servers = ("  http-send-name-header Host\n"
                   f"  server httpbin.org {UP_A}:{UP_PORT} {srv.format(ca=ca, sni='httpbin.org')}\n"
                   f"  server mock.api7.ai {UP_B}:{UP_PORT} {srv.format(ca=ca, sni='mock.api7.ai')}\n")
    else:
        servers = "  http-request set-header Host httpbin.org\n" + "".join(
            f"  server n{i} {ip}:{p} {srv.format(ca=ca, sni='httpbin.org')}\n"
            for i, (ip, p) in enumerate(nodes))
    conf = f"""global
  nbthread {threads}
  maxconn 12000
  no strict-limits
  ssl-server-verify required
  tune.ssl.default-dh-param 2048
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 30s
  timeout http-keep-alive 60s
frontend fe
  {bind}
  option forwardfor
  http-request set-header X-Forwarded-Proto {"https" if tls_listener else "http"}
  http-request add-header Via "1.1 haproxy"
  use_backend %[path,map_str({mapfile},no_route)]
backend no_route
  http-request return status 404 content-type text/plain string "no route"
backend be
  balance roundrobin
  http-reuse always
  # idle server connections kept 60 s, as lbproxy and nginx keep theirs (the default 5 s would
  # make HAProxy reconnect between interleaved runs)
  default-server pool-purge-delay 60s
{servers}"""
    path = f"{d}/{name}.cfg"
    with open(path, "w") as f:
        f.write(conf)
    return path


def nginx_config(d, name, port, topo, tls_listener, single=False):
    ca = f"{d}/ca.pem"
    nodes = seed_nodes(topo)
    listen = f"listen 127.0.0.1:{port} backlog=4096"
    if tls_listener:
        listen += (f" ssl;\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:{name}:10m;\n"
                   f"    ssl_certificate {d}/localhost.pem; ssl_certificate_key {d}/localhost.key")
    if nodes is None:
        # nginx cannot set SNI and Host per server of one upstream block: the route picks one of
        # two upstream blocks per request instead (split_clients, 50/50), each with its name.
        ups = f"""
  upstream httpbin {{ server {UP_A}:{UP_PORT}; keepalive 64; keepalive_requests 100000000; keepalive_timeout 60s; }}
  upstream mockapi7 {{ server {UP_B}:{UP_PORT}; keepalive 64; keepalive_requests 100000000; keepalive_timeout 60s; }}
  split_clients "$request_id" $up {{ 50% httpbin; * mockapi7; }}
  map $up $up_host {{ httpbin httpbin.org; default mock.api7.ai; }}
"""
        target = "https://$up"
        host = "$up_host"
    else:
        ups = ("\n  upstream pool {\n" + "".join(f"    server {ip}:{p};\n" for ip, p in nodes) +
               "    keepalive 2048; keepalive_requests 100000000; keepalive_timeout 60s;\n  }\n")
        target = "https://pool"
        host = "httpbin.org"
    locs = "".join(f"    location = {p} {{ proxy_pass {target}; }}\n" for p in route_paths(topo))
    conf = f"""
daemon off;
master_process {"off" if single else "on"};
worker_processes {topo.get("workers") or 1};
worker_rlimit_nofile 20000;
pid {d}/{name}.pid;
error_log {d}/{name}.err warn;
events {{ worker_connections 16000; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  keepalive_timeout 60s;
  keepalive_requests 100000000;
  variables_hash_bucket_size 128;
{ups}
  server {{
    {listen};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host {host};
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header Via "1.1 nginx";
    proxy_ssl_protocols TLSv1.2 TLSv1.3;
    proxy_ssl_server_name on;
    proxy_ssl_name {host};
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {ca};
    proxy_ssl_session_reuse on;
    proxy_connect_timeout 5s; proxy_send_timeout 60s; proxy_read_timeout 60s;
{locs}    location / {{ return 404 "no route\\n"; }}
  }}
}}
"""
    path = f"{d}/{name}.conf"
    with open(path, "w") as f:
        f.write(conf)
    return path


# ----------------------------------------------------------------------------------------------
# CPU quota: every proxy held to the same share of a core


class CpuQuota:
    """A cgroup of its own for one proxy's processes, held to `pct`% of one core over a 10 ms
    period: cgroup v2's cpu.max (e.g. "5000 10000") where the cpu controller is on cgroup v2,
    else cgroup v1's cpu.cfs_quota_us / cpu.cfs_period_us (a hybrid host, as systemd's
    "legacy"/"hybrid" layouts and many containers are). Made under the cgroup this script runs
    in, removed after."""

    PERIOD_US = 10000
    made = []  # every cgroup made and not yet removed (removed at exit)

    @staticmethod
    def where():
        """(kind, parent directory) where a child with a CPU quota can be made, or (None, why)."""
        mounts = [l.split() for l in open("/proc/self/mounts")]
        own = {}
        for line in open("/proc/self/cgroup"):
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
        why = []
        for m in mounts:
            if m[2] != "cgroup2":
                continue
            parent = m[1] + own.get("", "/")
            try:
                ctrls = open(f"{parent}/cgroup.controllers").read().split()
            except OSError as e:
                why.append(f"cgroup v2 at {m[1]}: {e.strerror}")
                continue
            if "cpu" not in ctrls:
                why.append(f"cgroup v2 at {m[1]}: no cpu controller (it has: {' '.join(ctrls) or 'none'})")
                continue
            try:
                if "cpu" not in open(f"{parent}/cgroup.subtree_control").read().split():
                    with open(f"{parent}/cgroup.subtree_control", "w") as f:
                        f.write("+cpu")
                return "v2", parent
            except OSError as e:
                # e.g. "no internal processes": this script's own cgroup holds processes
                why.append(f"cgroup v2 at {parent}: cannot enable cpu for children ({e.strerror})")
        for m in mounts:
            if m[2] == "cgroup" and "cpu" in m[3].split(","):
                path = next((p for c, p in own.items() if "cpu" in c.split(",")), "/")
                parent = m[1] + path
                if os.access(f"{parent}/cpu.cfs_quota_us", os.R_OK) and os.access(parent, os.W_OK):
                    return "v1", parent
                why.append(f"cgroup v1 cpu at {parent}: not writable")
        return None, "; ".join(why) or "no cgroup file system with a cpu controller"

    def __init__(self, name, pct):
        self.kind, parent = self.where()
        if self.kind is None:
            raise RuntimeError(f"no CPU quota possible: {parent}")
        self.parent = parent
        self.dir = f"{parent}/lbproxy-bench-{os.getpid()}-{name}"
        os.mkdir(self.dir)
        CpuQuota.made.append(self)
        quota = int(self.PERIOD_US * pct / 100)
        if self.kind == "v2":
            self._write("cpu.max", f"{quota} {self.PERIOD_US}")
        else:
            self._write("cpu.cfs_period_us", str(self.PERIOD_US))
            self._write("cpu.cfs_quota_us", str(quota))

    def _write(self, name, value, d=None):
        with open(f"{d or self.dir}/{name}", "w") as f:
            f.write(value)

    def add(self, pids):
        for p in pids:
            try:
                self._write("cgroup.procs", str(p))  # the whole process, its threads too
            except ProcessLookupError:
                pass

    def stat(self):
        """(periods, throttled periods) so far."""
        st = {}
        try:
            for line in open(f"{self.dir}/cpu.stat"):
                k, v = line.split()
                st[k] = int(v)
        except OSError:
            pass
        return st.get("nr_periods", 0), st.get("nr_throttled", 0)

    def remove(self):
        """Moves what is left back to the parent, then removes the cgroup (bounded wait: a
        process that just exited leaves it a moment later)."""
        for _ in range(50):
            try:
                left = open(f"{self.dir}/cgroup.procs").read().split()
                for p in left:
                    try:
                        self._write("cgroup.procs", p, self.parent)
                    except OSError:
                        pass
                os.rmdir(self.dir)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        if self in CpuQuota.made:
            CpuQuota.made.remove(self)


class Proxy:
    def __init__(self, kind, label, port, d, topo, tls_listener, lbproxy_bin, valgrind=None, tag=None,
                 quota=None):
        self.kind, self.label, self.port, self.d = kind, label, port, d
        self.p = None
        self.quota, self.cg = quota, None  # quota: % of one core (CpuQuota), or None
        # tag: which of several proxies with one label running at once (their files apart)
        fname = label.replace("#", "-") + (f"-{tag}" if tag else "") + ("-vg" if valgrind else "")
        if kind == "lbproxy":
            cfg = lbproxy_config(d, fname, port, topo, tls_listener)
            argv = [lbproxy_bin, "--config", cfg]
        elif kind == "haproxy":
            cfg = haproxy_config(d, fname, port, topo, tls_listener, topo.get("workers") or 1)
            argv = ["haproxy", "-db", "-f", cfg]
        else:
            cfg = nginx_config(d, fname, port, topo, tls_listener, single=bool(valgrind))
            argv = ["nginx", "-p", d, "-e", f"{d}/{fname}.err", "-c", cfg]
        if valgrind:
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={valgrind}",
                    "--dump-instr=no", "--collect-systime=no"] + argv
        self.argv, self.cfg = argv, cfg
        self.errfile = f"{d}/{fname}.stderr"
        self.cpus = "0,1" if topo.get("workers") else PROXY_CPU

    def start(self, timeout=30):
        self.err = open(self.errfile, "w")
        self.p = spawn(self.argv, self.label, self.cpus, stderr=self.err, stdout=self.err)
        if not wait_port("127.0.0.1", self.port, timeout, self.p):
            stop(self.p)
            raise RuntimeError(f"{self.label} did not start; see {self.errfile}")
        if self.quota:
            # Once started (its threads and nginx's worker exist): moved with all of them.
            self.cg = CpuQuota(self.label.replace("#", "-") + f"-{self.port}", self.quota)
            self.cg.add(self.pids())
        return self

    def pids(self):
        return tree(self.p.pid)

    def stop(self):
        stop(self.p)
        self.err.close()
        if self.cg:
            self.cg.remove()
            self.cg = None

    def crashed(self):
        """None while running; else how it ended and the end of what it printed."""
        if self.p.poll() is None:
            return None
        rc = self.p.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        self.err.flush()
        try:
            tail = [l.strip() for l in open(self.errfile, errors="replace").read().splitlines()
                    if l.strip()][-40:]
        except OSError:
            tail = []
        first = next((l for l in tail if "ERROR" in l or "free()" in l or "SUMMARY" in l
                      or "Assertion" in l or "corrupted" in l), "nothing printed")
        return how, first, tail


# ----------------------------------------------------------------------------------------------
# measurements

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def wrk(url, conns, secs, close, timeout_extra=30):
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency",
            "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=secs + timeout_extra).stdout
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = {"wrk_cpu": (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall,
         "raw": out}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        r[f"p{pct}"] = to_ms(m.group(1)) if m else None
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups()) if not close else int(m.group(1)) + int(m.group(4))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["errors"] = errs
    return r


def warm_up(url, conns, secs, close, rounds):
    """wrk until requests/s stops climbing (every node connected, sessions cached)."""
    last = 0.0
    for _ in range(rounds):
        r = wrk(url, conns, secs, close)
        if r["rps"] < last * 1.15:
            return
        last = r["rps"]


def measure_run(proxy, secs, conns, close, scheme="http"):
    pids = proxy.pids()
    clear_peak(pids)
    ups = [x for u in UPSTREAM_PIDS for x in tree(u)]
    c0, b0, u0 = cpu_seconds(pids), core_busy(), cpu_seconds(ups)
    q0 = proxy.cg.stat() if proxy.cg else None
    t0 = time.monotonic()
    r = wrk(f"{scheme}://127.0.0.1:{proxy.port}/headers", conns, secs, close)
    wall = time.monotonic() - t0
    c1, b1, u1 = cpu_seconds(proxy.pids()), core_busy(), cpu_seconds(ups)
    if q0:
        q1 = proxy.cg.stat()
        # the share of quota periods in which the proxy used its whole quota: near 100%, the
        # quota (the proxy's CPU) bounded requests/s, not wrk or the upstreams
        r["throttled"] = (q1[1] - q0[1]) / (q1[0] - q0[0]) if q1[0] > q0[0] else None
    # CPU that neither the proxy, wrk nor the upstreams used, on both cores: other tenants'
    # work (noise), and the hypervisor's steal.
    ours = (c1 - c0) + (u1 - u0) + r["wrk_cpu"] * wall
    procs = sum(b1[c][2] - b0[c][2] for c in (PROXY_CPU, LOAD_CPU)) / HZ
    r["foreign"] = max(0.0, procs - ours) / wall
    r["steal"] = sum(b1[c][3] - b0[c][3] for c in (PROXY_CPU, LOAD_CPU)) / HZ / wall
    r["cpu_per_1k"] = (c1 - c0) / r["requests"] * 1000 if r["requests"] else None
    r["proxy_core"] = (c1 - c0) / wall
    lb, lt = (b1[LOAD_CPU][0] - b0[LOAD_CPU][0]), (b1[LOAD_CPU][1] - b0[LOAD_CPU][1])
    r["load_core"] = lb / lt if lt else None
    r["load_us"] = lb / HZ / r["requests"] * 1e6 if r["requests"] else None
    r["rss_mb"] = status_kb(proxy.pids(), "VmHWM") / 1024 or None  # 0: it is gone
    dead = proxy.crashed()
    if dead:  # the figures of this run mean nothing: left out, and said
        r["crashed"] = dead
        for k in ("rps", "p50", "p99", "cpu_per_1k", "rss_mb", "load_us"):
            r[k] = None
    elif r["requests"] == 0:
        r["rps"] = None  # wrk failed (its output is kept in the work directory)
        r["wrk_failed"] = r["raw"].strip().splitlines()[-1:] or ["no output"]
    return r


def idle_run(proxy, count, tls_ca=None, procs=4):
    """RSS growth of the proxy per idle keep-alive client connection (each made one request)."""
    pids = proxy.pids()
    base = status_kb(pids, "VmRSS")
    per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    cl = []
    for n in per:
        argv = [PY, CLIENTS, "idle", "127.0.0.1", str(proxy.port), str(n), "--hold", "90"]
        if tls_ca:
            argv += ["--tls", tls_ca]
        cl.append(spawn(argv, "idle-client", LOAD_CPU, stdout=subprocess.PIPE,
                        stdin=subprocess.PIPE))
    opened = errors = 0
    for c in cl:
        line = c.stdout.readline().decode().split()  # bounded by the client's own deadline
        if len(line) == 3 and line[0] == "ready":
            opened += int(line[1])
            errors += int(line[2])
    time.sleep(1.0)
    after = status_kb(proxy.pids(), "VmRSS")
    for c in cl:
        try:
            c.stdin.close()
        except OSError:
            pass
    for c in cl:
        stop(c, 10)
    return {"kb_per_conn": (after - base) / opened if opened else None, "opened": opened,
            "errors": errors, "base_mb": base / 1024}


def callgrind_counts(d, label, kind, topo, tls_listener, lbproxy_bin, n_ka, n_close, port):
    """Instructions per request (Ir) under callgrind: warm-up, zero, N requests, dump."""
    out = f"{d}/callgrind.{label}.{topo_name(topo)}.out"
    for f in os.listdir(d):
        if f.startswith(os.path.basename(out)):
            os.unlink(os.path.join(d, f))
    px = Proxy(kind, label, port, d, topo, tls_listener, lbproxy_bin, valgrind=out)
    res = {}
    try:
        px.start(timeout=120)
        pid = px.p.pid
        # valgrind is exec'd by taskset: the pid is valgrind's, which is the proxy's.
        # Warm every node's connection until a pass makes no new one: under valgrind the first
        # pass over 1,000 nodes outlasts the upstream keep-alive idle time (60 s) and some
        # connections are made again in the second.
        for _ in range(4):
            t0 = time.monotonic()
            seq(port, max(20, topo.get("nodes", 2) + 10), False, tls_listener, timeout=300)
            if time.monotonic() - t0 < 3:
                break
        seq(port, 10, True, tls_listener)
        for mode, n in (("ka", n_ka), ("close", n_close)):
            if not n:
                continue
            subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=60)
            ok, _ = seq(port, n, mode == "close", tls_listener, timeout=600)
            before = set(os.listdir(d))
            subprocess.run(["callgrind_control", "-d", f"{mode}", str(pid)], capture_output=True,
                           timeout=120)
            new = sorted(f for f in set(os.listdir(d)) - before
                         if f.startswith(os.path.basename(out)))
            if not new or not ok:
                continue
            dump = os.path.join(d, new[-1])
            with open(dump) as f:
                tot = None
                for line in f:
                    if line.startswith("summary:"):
                        tot = int(line.split()[1])
            if tot:
                res[mode] = tot / n
                res[mode + "_file"] = dump
    except Exception as e:  # noqa: BLE001 - a proxy that does not run under valgrind: n/a
        log(f"  callgrind {label}: {e}")
    finally:
        if px.p:
            px.stop()
    return res


def seq(port, n, close, tls_listener, timeout=120):
    argv = ["taskset", "-c", LOAD_CPU, PY, CLIENTS, "seq", "127.0.0.1", str(port), str(n),
            "--timeout", str(timeout)]
    if close:
        argv.append("--close")
    if tls_listener:
        argv += ["--tls", tls_listener_ca]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30).stdout
    except subprocess.TimeoutExpired:
        return False, "timeout"
    m = re.search(r"done (\d+) (\d+)", out)
    return (bool(m) and int(m.group(1)) == n and int(m.group(2)) == 0), out


tls_listener_ca = None


def syscalls_per_request(proxy, secs, conns, close):
    """raw_syscalls:sys_enter counted by perf over a wrk run, per request."""
    pids = ",".join(str(p) for p in proxy.pids())
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", pids],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    time.sleep(0.2)
    r = wrk(f"http://127.0.0.1:{proxy.port}/headers", conns, secs, close)
    perf.send_signal(signal.SIGINT)
    try:
        err = perf.communicate(timeout=15)[1]
    except subprocess.TimeoutExpired:
        perf.kill()
        return None
    m = re.search(r"^(\d+),,raw_syscalls:sys_enter", err, re.M)
    return int(m.group(1)) / r["requests"] if m and r["requests"] else None


def perf_profile(proxy, secs, conns, close, outfile):
    data = outfile + ".data"
    perf = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-e", "cpu-clock", "-g", "-o",
                             data, "-p", ",".join(str(p) for p in proxy.pids())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(0.3)
    wrk(f"http://127.0.0.1:{proxy.port}/headers", conns, secs, close)
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(30)
    except subprocess.TimeoutExpired:
        perf.kill()
    def report(sort, limit):
        return subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g",
                               "none", "--percent-limit", limit, "--sort", sort],
                              capture_output=True, text=True, timeout=120).stdout
    rep = report("symbol,dso", "0.7")
    dsos = report("dso", "0.5")
    with open(outfile, "w") as f:
        f.write(dsos + rep)
    split = "; ".join(" ".join(l.split()[:2]) for l in dsos.splitlines()
                      if l.strip() and not l.startswith("#"))
    top = []
    for l in rep.splitlines():
        f = l.split()
        if len(f) >= 4 and f[0].endswith("%") and not l.startswith("#"):
            top.append(f"{f[0]:>7}  {f[1]} {f[2]}  ({f[3]})")
    return split, top[:22]


def strace_breakdown(proxy, n, close, outfile):
    st = subprocess.Popen(["strace", "-c", "-f", "-o", outfile, "-p", str(proxy.p.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    time.sleep(0.5)
    seq(proxy.port, n, close, None)
    time.sleep(0.2)
    st.send_signal(signal.SIGINT)
    try:
        st.wait(15)
    except subprocess.TimeoutExpired:
        st.kill()
    rows = []
    try:
        for line in open(outfile):
            f = line.split()
            if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                rows.append((f[-1], int(f[3]) / n))
    except OSError:
        pass
    return sorted(rows, key=lambda x: -x[1])


# ----------------------------------------------------------------------------------------------
# statistics and the table


def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None


def fmt(t, digits=None):
    if t is None:
        return "—"
    m, lo, hi = t

    def f(x):
        if digits is not None:
            return f"{x:.{digits}f}"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"
    if lo == hi:
        return f(m)
    return f"{f(m)} ({f(lo)}–{f(hi)})"


def paired_ratios(a_runs, b_runs, key):
    out = []
    for a, b in zip(a_runs, b_runs):
        x, y = a.get(key), b.get(key)
        if x is not None and y:
            out.append(x / y)
    return out


def band(ratios):
    """The control's spread, symmetric: a ratio r and its inverse are the same noise."""
    if not ratios:
        return None
    xs = ratios + [1 / r for r in ratios if r]
    return min(xs), max(xs)


def verdict(ratio, bnd, higher_better):
    if ratio is None:
        return "n/a"
    if bnd is not None and bnd[0] <= ratio <= bnd[1]:
        return "tie"
    better = ratio > 1 if higher_better else ratio < 1
    return "better" if better else "worse"


def topo_name(topo):
    if topo["kind"] == "seed":
        return f"routes{topo.get('routes', 1)}" + (f"-w{topo['workers']}" if topo.get("workers") else "")
    return f"nodes{topo['nodes']}" + (f"-{topo['balancer']}" if topo.get("balancer") else "")


# ----------------------------------------------------------------------------------------------
# the run


def detect_lbproxy(lbproxy_bin, d):
    """What this lbproxy supports: `workers:` (in --check --dump) and TLS listeners (the first
    shape among a few that --check accepts, or LBPROXY_BENCH_TLS_LISTENER)."""
    probe = f"{d}/probe.yaml"
    base = ('access_log: false\nlisteners:\n  - {name: http, listen: "127.0.0.1:18999"%s}\n'
            "upstreams:\n  - {name: u, nodes: [{host: 127.0.0.2, port: 80}]}\n"
            'routes:\n  - {name: r, paths: ["/"], upstreams: [{name: u, weight: 1}]}\n')
    with open(probe, "w") as f:
        f.write(base % "")
    dump = subprocess.run([lbproxy_bin, "--check", "--dump", "--config", probe],
                          capture_output=True, text=True, timeout=30).stdout
    workers = bool(re.search(r"^workers:", dump, re.M))
    shapes = [os.environ.get("LBPROXY_BENCH_TLS_LISTENER")] if os.environ.get(
        "LBPROXY_BENCH_TLS_LISTENER") else [
        "protocol: https, certificates: [{cert: @CERT@, key: @KEY@}]",
        "tls: {cert_file: @CERT@, key_file: @KEY@}",
        "tls: {certificate: @CERT@, key: @KEY@}",
        "tls: {cert: @CERT@, key: @KEY@}",
        "cert_file: @CERT@, key_file: @KEY@",
        "certificate: @CERT@, key: @KEY@",
    ]
    tls = None
    for s in shapes:
        t = s.replace("@CERT@", f"{d}/localhost.pem").replace("@KEY@", f"{d}/localhost.key")
        with open(probe, "w") as f:
            f.write(base % (", " + t))
        if subprocess.run([lbproxy_bin, "--check", "--config", probe], capture_output=True,
                          timeout=30).returncode == 0:
            tls = s
            break
    return workers, tls


def machine_info(lbproxy_bin):
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def ver(argv, pat=None):
        try:
            o = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            s = (o.stdout + o.stderr).strip().splitlines()[0]
            return s
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    try:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = "?"
    mem = open("/proc/meminfo").readline().split()[1]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB",
        "kernel": platform.release(),
        "lbproxy": f"{ver([lbproxy_bin, '--version'])} ({lbproxy_bin}, git {commit})",
        "haproxy": ver(["haproxy", "-v"]),
        "nginx": ver(["nginx", "-v"]),
        "wrk": ver(["wrk", "--version"]).split(" Copyright")[0],
    }


def main():
    global tls_listener_ca, LBPROXY_HAS_WORKERS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lbproxy", default=os.path.join(ROOT, "build-bench/src/lbproxy"))
    ap.add_argument("--quick", action="store_true", help="1 run each, short: a smoke check")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--duration", type=int, help="seconds per measured run")
    ap.add_argument("--only", help="comma-separated scenarios: "
                    "ka,close,tls,idle,scale,workers,quota,balancers,counts")
    ap.add_argument("--cpu-quota", type=int, default=50, metavar="PCT",
                    help="quota and balancers rows: each proxy held to PCT%% of one core "
                    "(cgroup CPU quota, 10 ms period); 0: balancer rows without a quota")
    ap.add_argument("--balancers", default="roundrobin,least_conn,chash,ewma",
                    help="balancers rows: lbproxy with each upstream `balancer:` (one upstream "
                    f"of {BALANCER_NODES} nodes); one lbproxy --check refuses is skipped with a note")
    ap.add_argument("--results", help="write the Markdown report here too")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.results is None and not a.quick and not a.only and not a.runs and not a.duration:
        a.results = os.path.join(HERE, "RESULTS.md")  # a full, default run is the record

    runs_main = a.runs or (1 if a.quick else 5)  # ka, close, tls-*
    runs = a.runs or (1 if a.quick else 3)       # idle, workers
    scale_runs = a.runs or (1 if a.quick else 5)  # scale: judged by per-run ratios
    dur = int(a.duration or (1 if a.quick else 4))
    warm = 1 if a.quick else 2
    scale_dur = int(a.duration or (1 if a.quick else 3))
    only = set((a.only or "ka,close,tls,idle,scale,workers,quota,balancers,counts").split(","))
    if os.cpu_count() < 2:
        sys.exit("needs two cores (proxy on one, wrk and upstreams on the other)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    d = tempfile.mkdtemp(prefix="lbproxy-bench.")
    os.makedirs(f"{d}/tmp")
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rows = []      # (scenario, label, {metric: (med, lo, hi)}, notes)
    stop_lines = {}  # scenario -> what lbproxy's last stop line said (requests, per worker)
    bar = []       # (criterion, value, control band, verdict)
    counts = {}    # (label, topo, mode) -> Ir/req ; syscalls
    extra = []     # further sections of the report
    notes = []
    crashes = []
    try:
        make_certs(d)
        tls_listener_ca = f"{d}/ca.pem"
        workers, tls_shape = detect_lbproxy(a.lbproxy, d)
        LBPROXY_HAS_WORKERS = workers
        info = machine_info(a.lbproxy)
        pin = (f"pinning: each proxy on CPU {PROXY_CPU}; wrk, the two upstream nginx and the idle "
               f"clients on CPU {LOAD_CPU} (taskset)")
        log(pin)
        ups = [start_upstream(d, "A"), start_upstream(d, "B")]
        UPSTREAM_PIDS[:] = [u.pid for u in ups]

        def scenarios(cases, tls=None, close=False, conns=64, labels=None, secs=dur,
                      nruns=runs_main, quota=None):
            """cases: [(name, topo)]. Every (case, proxy) runs at once, each on its own port,
            and all are measured interleaved run by run: for each run, for each case, for each
            proxy; so run i of every case and proxy falls in the same stretch of time, and
            time-correlated noise hits them alike. Returns {name: {label: [run results]}}."""
            labels = labels or [l for l, _ in PROXIES]
            if len(cases) == 1:
                log(f"[{time.monotonic() - t_start:5.0f}s] {cases[0][0]}: {topo_name(cases[0][1])}, "
                    f"{nruns} x {secs}s, {', '.join(labels)}")
            else:
                log(f"[{time.monotonic() - t_start:5.0f}s] {', '.join(n for n, _ in cases)} "
                    f"(interleaved): {nruns} x {secs}s, {', '.join(labels)}")
            assert len(cases) <= 9  # ports 18201-18284 (TLS: 18301-18384), clear of 18500
            scheme = "https" if tls else "http"
            pxs = []  # (case name, Proxy), in measuring order
            res = {name: {} for name, _ in cases}
            try:
                for k, (name, topo) in enumerate(cases):
                    for label, port in PROXIES:
                        if label not in labels:
                            continue
                        kind = label.split("#")[0]
                        port = port + (TLS_PORT_OFFSET if tls else 0)
                        tag = None
                        if len(cases) > 1:
                            port += CASE_PORT_OFFSET + 10 * k
                            tag = topo_name(topo)
                        px = Proxy(kind, label, port, d, topo, tls, a.lbproxy, tag=tag,
                                   quota=quota)
                        pxs.append((name, px.start()))
                        res[name][label] = []
                for _, p in pxs:  # warm-up: upstream connections and TLS sessions
                    warm_up(f"{scheme}://127.0.0.1:{p.port}/headers", conns, warm, close,
                            1 if a.quick else 8)
                for i in range(nruns):
                    for name, p in pxs:
                        r = measure_run(p, secs, conns, close, scheme)
                        res[name][p.label].append(r)
                        if r.get("crashed"):
                            how, first, tail = r["crashed"]
                            keep = f"{d}/crash-{p.label.replace('#', '-')}-{name.replace(' ', '_')}-{i}.txt"
                            with open(keep, "w") as f:
                                f.write("\n".join(tail) + "\n")
                            log(f"  {p.label} CRASHED ({how}): {first} — {keep}; restarted")
                            crashes.append(f"{name}: {p.label} crashed ({how}; {first})")
                            p.err.close()
                            p.start()
                            warm_up(f"{scheme}://127.0.0.1:{p.port}/headers", conns, warm, close, 1)
            finally:
                for name, p in pxs:
                    p.stop()
                    if p.kind == "lbproxy":  # how its workers shared the connections
                        try:
                            last = [l for l in open(p.errfile, errors="replace")
                                    if "Stopped after" in l][-1:]
                        except OSError:
                            last = []
                        if last:
                            stop_lines[name] = last[0].split("Stopped after ", 1)[1].strip()
            return res

        def scenario(name, topo, **kw):
            return scenarios([(name, topo)], **kw)[name]

        def add_rows(name, res):
            ref = res.get("haproxy")
            ctrl = res.get("haproxy#2")
            for label, rs in res.items():
                n = []
                bad = sum(1 for r in rs if r.get("crashed"))
                if bad:
                    n.append(f"CRASHED in {bad} of {len(rs)} runs (left out)")
                bad = sum(1 for r in rs if r.get("wrk_failed"))
                if bad:
                    n.append(f"wrk failed in {bad} of {len(rs)} runs")
                if any(r["errors"] or r["non2xx"] for r in rs):
                    n.append(f"errors {sum(r['errors'] for r in rs)}, non-2xx "
                             f"{sum(r['non2xx'] for r in rs)}")
                th = med([r.get("throttled") for r in rs if r.get("throttled") is not None])
                if th:
                    n.append(f"quota: throttled in {th[0] * 100:.0f}% of periods")
                fo = max(r["foreign"] + r["steal"] for r in rs)
                if fo >= 0.05:
                    n.append(f"noisy: other processes took up to {fo * 100:.0f}% of a core")
                if any(r["wrk_cpu"] >= 0.9 for r in rs):
                    n.append("wrk saturated its core")
                elif any((r["load_core"] or 0) >= 0.95 for r in rs):
                    n.append("load core saturated")
                ok = [r for r in rs if not r.get("crashed")]
                rows.append((name, label, {
                    "rps": med([r["rps"] for r in ok]), "p50": med([r["p50"] for r in ok]),
                    "p99": med([r["p99"] for r in ok]), "cpu": med([r["cpu_per_1k"] for r in ok]),
                    "rss": med([r["rss_mb"] for r in ok]),
                    "pcore": med([r["proxy_core"] * 100 for r in ok]),
                    "lcore": med([(r["load_core"] or 0) * 100 for r in ok]),
                    "lus": med([r["load_us"] for r in ok])}, "; ".join(n)))
            out = {}
            if ref:
                for who, rs in (("lbproxy", res.get("lbproxy")), ("control", ctrl)):
                    if not rs:
                        continue
                    out[who] = {k: paired_ratios(rs, ref, k) for k in
                                ("rps", "p50", "p99", "cpu_per_1k", "rss_mb")}
                    lab = "lbproxy/HAProxy" if who == "lbproxy" else "control HAProxy#2/HAProxy"
                    rows.append((name, lab, {
                        "rps": med(out[who]["rps"]), "p50": med(out[who]["p50"]),
                        "p99": med(out[who]["p99"]), "cpu": med(out[who]["cpu_per_1k"]),
                        "rss": med(out[who]["rss_mb"])}, "ratio"))
            return out

        def judge(name, ratios):
            if "lbproxy" not in ratios:
                return
            cb = {k: band(v) for k, v in ratios.get("control", {}).items()}
            for key, what, hb in (("rps", "requests/s ≥ HAProxy", True),
                                  ("p99", "p99 ≤ HAProxy", False),
                                  ("cpu_per_1k", "CPU/request ≤ HAProxy", False)):
                m = med(ratios["lbproxy"][key])
                v = verdict(m[0] if m else None, cb.get(key), hb)
                ok = {"better": "met", "tie": "tie (within control noise)", "worse": "NOT met",
                      "n/a": "n/a"}[v]
                bar.append((f"{name}: {what}", f"{m[0]:.3f}" if m else "—",
                            f"{cb[key][0]:.3f}–{cb[key][1]:.3f}" if cb.get(key) else "—", ok))

        # quick: a smoke check of every path, on fewer proxies and sizes
        few = ["lbproxy", "haproxy"] if a.quick else [l for l, _ in PROXIES]
        scale_labels = ["lbproxy", "haproxy"] if a.quick else ["lbproxy", "haproxy", "haproxy#2"]

        # -- ka and close ------------------------------------------------------------------
        seed = {"kind": "seed", "routes": 1}
        for name, close in (("ka", False), ("close", True)):
            if name in only:
                res = scenario(name, seed, close=close)
                judge(name, add_rows(name, res))

        # -- TLS listener ------------------------------------------------------------------
        if "tls" in only:
            if tls_shape:
                for name, close in (("tls-ka", False),) + ((("tls-close", True),) if not a.quick else ()):
                    res = scenario(name, seed, tls=tls_shape, close=close, labels=few)
                    judge(name, add_rows(name, res))
            else:
                notes.append("tls-ka, tls-close, idle TLS: skipped — lbproxy has no TLS listener "
                             "yet (`--check` accepts none of the listener TLS shapes tried).")


        # -- idle ---------------------------------------------------------------------------
        if "idle" in only:
            variants = [("idle", None)] + ([("idle-tls", tls_shape)] if tls_shape and not a.quick else [])
            for vname, tls in variants:
                for count in (1000,) if a.quick else (1000, 10000):
                    name = f"{vname} {count // 1000}k"
                    log(f"[{time.monotonic() - t_start:5.0f}s] {name}: {runs} runs")
                    res = {l: [] for l, _ in PROXIES if l in few}
                    for _ in range(runs):
                        for label, port in PROXIES:
                            if label not in few:
                                continue
                            port += TLS_PORT_OFFSET if tls else 0
                            px = Proxy(label.split("#")[0], label, port, d, seed, tls,
                                       a.lbproxy).start()
                            try:
                                wrk(f"{'https' if tls else 'http'}://127.0.0.1:{port}/headers",
                                    8, warm, False)
                                res[label].append(idle_run(px, count, d + "/ca.pem" if tls else None))
                            finally:
                                px.stop()
                    for label, rs in res.items():
                        bad = sum(r["errors"] for r in rs) + sum(count - r["opened"] for r in rs)
                        rows.append((name, label, {"idle": med([r["kb_per_conn"] for r in rs])},
                                     f"{bad} connections failed" if bad else ""))
                    lb = med([r["kb_per_conn"] for r in res["lbproxy"]])
                    hp = med([r["kb_per_conn"] for r in res["haproxy"]])
                    cr = [c["kb_per_conn"] / h["kb_per_conn"] for c, h in
                          zip(res.get("haproxy#2", []), res["haproxy"]) if h["kb_per_conn"]]
                    lr = med([l["kb_per_conn"] / h["kb_per_conn"] for l, h in
                              zip(res["lbproxy"], res["haproxy"]) if h["kb_per_conn"]])
                    rows.append((name, "lbproxy/HAProxy", {"idle": lr}, "ratio"))
                    if cr:
                        rows.append((name, "control HAProxy#2/HAProxy", {"idle": med(cr)}, "ratio"))
                    if lb and hp:
                        b = band(cr)
                        v = verdict(lb[0] / hp[0], b, False)
                        bar.append((f"{name}: memory/connection ≤ HAProxy",
                                    f"{lb[0]:.2f} vs {hp[0]:.2f} KB",
                                    f"{b[0]:.3f}–{b[1]:.3f}" if b else "—",
                                    {"better": "met", "tie": "tie (within control noise)",
                                     "worse": "NOT met", "n/a": "n/a"}[v]))

        # -- scale --------------------------------------------------------------------------
        # Each group (routes, nodes) runs all its sizes at once, interleaved with the proxies
        # run by run, and is judged by per-run ratios: largest/smallest size, same proxy, same
        # run (adjacent in time), so the minutes when the whole machine is slower cancel out.
        scale_res = {}
        scale_pairs = []
        if "scale" in only:
            sizes_r, sizes_n = ((1, 10000), (2, 100)) if a.quick else ((1, 100, 10000),
                                                                         (2, 100, 1000))
            groups = [[{"kind": "seed", "routes": n} for n in sizes_r],
                      [{"kind": "nodes", "nodes": n} for n in sizes_n]]
            for group in groups:
                cases = [(f"scale {topo_name(topo)}", topo) for topo in group]
                res = scenarios(cases, labels=scale_labels, secs=scale_dur, nruns=scale_runs)
                for (name, topo) in cases:
                    add_rows(name, res[name])
                    scale_res[topo_name(topo)] = res[name]
            for lo, hi in ((f"routes{sizes_r[0]}", f"routes{sizes_r[-1]}"),
                           (f"nodes{sizes_n[0]}", f"nodes{sizes_n[-1]}")):
                # {label: {key: (median, min, max) of hi/lo per run}}
                pr = {label: {key: med(paired_ratios(scale_res[hi][label], scale_res[lo][label], key))
                              for key in ("rps", "cpu_per_1k", "load_us")}
                      for label in scale_labels}
                lb = pr["lbproxy"]
                if lb["rps"]:
                    def refs(key):
                        out, worst = [], None
                        for other in scale_labels[1:]:
                            m = pr[other][key]
                            if m:
                                out.append(f"{other} ×{fmt(m, 3)}")
                                worst = m[0] if worst is None else (
                                    min(worst, m[0]) if key == "rps" else max(worst, m[0]))
                        return "same run: " + ", ".join(out), worst

                    r = lb["rps"][0]
                    ref, worst = refs("rps")
                    ok = "met" if r >= 0.9 else (
                        "NOT met (HAProxy too)" if worst and worst < 0.9 else "NOT met")
                    bar.append((f"scale {lo}→{hi}: requests/s within 10%", f"×{fmt(lb['rps'], 3)}",
                                ref, ok))
                    if lb["cpu_per_1k"]:
                        r = lb["cpu_per_1k"][0]
                        ref, worst = refs("cpu_per_1k")
                        ok = "met" if r <= 1.1 else ("NOT met (HAProxy too)"
                                                     if worst and worst > 1.1 else "NOT met")
                        bar.append((f"scale {lo}→{hi}: CPU/request within 10%",
                                    f"×{fmt(lb['cpu_per_1k'], 3)}", ref, ok))
                    scale_pairs.append((lo, hi))
                for label in scale_labels:
                    if pr[label]["rps"] and pr[label]["cpu_per_1k"]:
                        extra.append(f"- {label}: {hi} vs {lo} (per run, median (min–max)): "
                                     f"requests/s ×{fmt(pr[label]['rps'], 3)}, "
                                     f"CPU/request ×{fmt(pr[label]['cpu_per_1k'], 3)}"
                                     + (f"; the load core's µs/request ×"
                                        f"{fmt(pr[label]['load_us'], 3)}"
                                        if pr[label]["load_us"] else ""))
                loads = [pr[label]["load_us"][0] for label in scale_labels if pr[label]["load_us"]]
                if loads and min(loads) > 1.1:
                    notes.append(f"scale {lo}→{hi}: the load core (wrk and the upstream nginx, the "
                                 f"same for every proxy) itself spent ×{min(loads):.2f} to "
                                 f"×{max(loads):.2f} more per request at {hi}; where it is "
                                 "saturated, that bounds requests/s whatever the proxy does.")

        # -- workers ------------------------------------------------------------------------
        if "workers" in only:
            if workers:
                topo = {"kind": "seed", "routes": 1, "workers": 2}
                res = scenario("ka 2 workers", topo, labels=scale_labels, nruns=runs)
                judge("ka 2 workers", add_rows("ka 2 workers vs nbthread 2", res))
                # the close scenario with two workers: each connection wakes a worker; how many
                # woke for nothing, lbproxy says in its stop line (per worker)
                res = scenario("close 2 workers", topo, close=True, labels=scale_labels,
                               nruns=runs)
                judge("close 2 workers", add_rows("close 2 workers vs nbthread 2", res))
                if stop_lines.get("close 2 workers"):
                    notes.append("close 2 workers, lbproxy's stop line: " +
                                 stop_lines["close 2 workers"])
                notes.append("2 workers: lbproxy `workers: 2` vs HAProxy `nbthread 2`, each "
                             "proxy allowed both cores (the load core is shared with wrk).")
            else:
                notes.append("2 workers vs HAProxy nbthread 2: pending — this lbproxy has no "
                             "`workers:` key in `--check --dump`.")

        # -- CPU quota: the proxy, not wrk or the upstreams, bounds requests/s ----------------
        # On two cores wrk and the upstreams fill theirs before a fast proxy fills its own, and
        # then requests/s measures their wake-ups. Held to the same CPU share each, the proxies
        # are the bottleneck (the notes say in what share of periods each was throttled), and
        # requests/s compares them; CPU per request stays the figure per request.
        quota_ok, quota_why = CpuQuota.where() if a.cpu_quota else (None, "--cpu-quota 0")
        quota = a.cpu_quota if quota_ok else None
        if "quota" in only or "balancers" in only:
            if quota_ok:
                log(f"CPU quota: cgroup {quota_ok} under {quota_why}, {a.cpu_quota}% of one core, "
                    f"{CpuQuota.PERIOD_US // 1000} ms period")
            else:
                notes.append(f"CPU quota rows: skipped — {quota_why}")
        if "quota" in only and quota:
            for name, close in (("ka", False), ("close", True)):
                qname = f"{name} cpu {quota}%"
                res = scenario(qname, seed, close=close, labels=few, quota=quota)
                judge(qname, add_rows(qname, res))
            notes.append(f"`ka/close cpu {quota}%`: every proxy in a cgroup of its own held to "
                         f"{quota}% of one core (period {CpuQuota.PERIOD_US // 1000} ms, cgroup "
                         f"{quota_ok}); requests/s then compares the proxies, as long as the "
                         "notes show them throttled in most periods.")

        # -- a row per balancer (lbproxy) ---------------------------------------------------
        if "balancers" in only:
            for bal in [b for b in a.balancers.split(",") if b]:
                topo = {"kind": "nodes", "nodes": BALANCER_NODES, "balancer": bal}
                cfg = lbproxy_config(d, f"check-{bal}", 18998, topo, None)
                chk = subprocess.run([a.lbproxy, "--check", "--config", cfg], capture_output=True,
                                     text=True, timeout=60)
                if chk.returncode != 0:
                    why = (chk.stderr.strip().splitlines() or ["no message"])[-1].replace(
                        f"{d}/", "")
                    notes.append(f"balancer {bal}: skipped — lbproxy --check refuses it: {why}")
                    continue
                name = f"bal {bal}" + (f" cpu {quota}%" if quota else "")
                res = scenario(name, topo, labels=["lbproxy"], nruns=runs, quota=quota)
                add_rows(name, res)
                if "counts" in only:
                    c = callgrind_counts(d, f"lbproxy-{bal}", "lbproxy", topo, None, a.lbproxy,
                                         300 if a.quick else 2000, 0, 18500)
                    if "ka" in c:
                        counts[("lbproxy", name, "ka", "ir")] = c["ka"]
            notes.append(f"`bal NAME`: lbproxy alone, ka, one route to one upstream of "
                         f"{BALANCER_NODES} nodes with `balancer: NAME`"
                         + (f", held to {quota}% of one core" if quota else "")
                         + "; Ir/req from callgrind over sequential keep-alive requests.")

        # -- repeatable counts: callgrind, syscalls, perf -------------------------------------
        if "counts" in only:
            n_ka, n_close = (300, 100) if a.quick else (2000, 500)
            log(f"[{time.monotonic() - t_start:5.0f}s] callgrind: {n_ka} keep-alive and "
                f"{n_close} close requests per proxy")
            topos = [seed] if a.quick else [
                seed, {"kind": "seed", "routes": 10000}, {"kind": "nodes", "nodes": 2},
                {"kind": "nodes", "nodes": 100}, {"kind": "nodes", "nodes": 1000}]
            for topo in topos:
                labels = ["lbproxy", "haproxy", "nginx"] if topo is seed else ["lbproxy", "haproxy"]
                if a.quick or topo.get("nodes") == 1000:  # 1,000 handshakes under valgrind: slow
                    labels = ["lbproxy"]
                for label in labels:
                    c = callgrind_counts(d, label, label, topo, None, a.lbproxy,
                                         n_ka, n_close if topo is seed else 0, 18500)
                    for mode in ("ka", "close"):
                        if mode in c:
                            counts[(label, topo_name(topo), mode, "ir")] = c[mode]
                            counts[(label, topo_name(topo), mode, "ir_file")] = c[mode + "_file"]
            log(f"[{time.monotonic() - t_start:5.0f}s] syscalls per request (perf) and profiles")
            for label, port in PROXIES[:1] if a.quick else PROXIES[:3]:
                px = Proxy(label, label, port, d, seed, None, a.lbproxy).start()
                try:
                    wrk(f"http://127.0.0.1:{port}/headers", 64, warm, False)
                    for mode in ("ka", "close"):
                        counts[(label, "routes1", mode, "sys")] = syscalls_per_request(
                            px, 1 if a.quick else 3, 64, mode == "close")
                    if label == "lbproxy" and not a.quick:
                        for mode in ("ka", "close"):
                            split, top = perf_profile(px, 4, 64, mode == "close",
                                                      f"{d}/perf-lbproxy-{mode}.txt")
                            extra.append(f"\n`perf record -e cpu-clock` of lbproxy, {mode} "
                                         f"(wrk, 64 connections, 4 s), self time by object: "
                                         f"{split}; by function:\n\n```\n" +
                                         "\n".join(top) + "\n```")
                        for mode in ("ka", "close"):
                            st = strace_breakdown(px, 1000, mode == "close",
                                                  f"{d}/strace-lbproxy-{mode}.txt")
                            extra.append(f"\n`strace -c` of lbproxy, {mode}, one client, "
                                         "sequential (calls per request): " +
                                         ", ".join(f"{n} {c:.2f}" for n, c in st[:12]))
                finally:
                    px.stop()
            if not a.quick:
                for mode in ("ka", "close"):
                    f = counts.get(("lbproxy", "routes1", mode, "ir_file"))
                    if f:
                        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", f],
                                             capture_output=True, text=True, timeout=120).stdout
                        n = n_ka if mode == "ka" else n_close
                        lines = []
                        for l in ann.splitlines():
                            m = re.match(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S+)(?:\s+\[(\S+)\])?", l)
                            # (frames on the stack when counting started show ~100%: left out)
                            if not m or float(m.group(2)) >= 99:
                                continue
                            fn = m.group(3).rsplit(":", 1)[-1]
                            obj = os.path.basename(m.group(4) or "")
                            lines.append(f"{int(m.group(1).replace(',', '')) / n:8,.0f} "
                                         f"{float(m.group(2)):5.1f}%  {fn}  ({obj})")
                        extra.append(f"\ncallgrind of lbproxy, {mode}: instructions per request "
                                     f"by function (self), over {n} sequential requests:\n\n```\n"
                                     + "\n".join(lines[:25]) + "\n```")
        # scale by instructions: repeatable where the timings are not
        for lo, hi in scale_pairs:
            x, y = counts.get(("lbproxy", lo, "ka", "ir")), counts.get(("lbproxy", hi, "ka", "ir"))
            if x and y:
                hx = counts.get(("haproxy", lo, "ka", "ir"))
                hy = counts.get(("haproxy", hi, "ka", "ir"))
                bar.append((f"scale {lo}→{hi}: Ir/request within 10% (callgrind)",
                            f"×{y / x:.3f} ({x:,.0f} → {y:,.0f})",
                            f"HAProxy ×{hy / hx:.3f}" if hx and hy else "",
                            "met" if y / x <= 1.1 else "NOT met"))
    finally:
        stop_all()

    # -- the report ---------------------------------------------------------------------------
    elapsed = time.monotonic() - t_start
    cmd = os.environ.get("LBPROXY_BENCH_COMMAND") or "tests/bench/bench.py " + " ".join(sys.argv[1:])
    R = []
    R.append(f"Machine: {info['cpu']}; Linux {info['kernel']}")
    R.append(f"lbproxy: {info['lbproxy']}; {info['haproxy']}; {info['nginx']}; {info['wrk']}")
    R.append(f"Command: `{cmd.strip()}` — {runs_main} run(s) per figure for ka/close/tls, "
             f"{scale_runs} for scale, {runs} for the others, {dur:g} s each "
             f"(scale: {scale_dur:g} s), interleaved lbproxy, HAProxy, nginx, HAProxy#2 run by "
             f"run (scale: each group's sizes too, judged by per-run ratios); {elapsed / 60:.1f} min in all; {datetime.datetime.now():%Y-%m-%d %H:%M}.")
    R.append(pin + ". wrk: 1 thread, 64 connections. Each cell: median (min–max) of the runs.")
    R.append("")
    head = ("| scenario | proxy | req/s | p50 ms | p99 ms | CPU s/1k req | peak RSS MB "
            "| idle KB/conn | proxy core % | load core % | load core µs/req | Ir/req (callgrind) "
            "| syscalls/req | notes |")
    R.append(head)
    R.append("|" + "---|" * 14)
    for name, label, m, note in rows:
        topo = (name.split()[1] if name.startswith("scale") else
                name if name.startswith("bal ") else "routes1")
        mode = "close" if name == "close" else ("ka" if name in ("ka",) or name.startswith("scale")
                                                 or name.startswith("bal ") else None)
        ir = counts.get((label, topo, mode, "ir")) if mode else None
        sc = counts.get((label, topo, mode, "sys")) if mode else None
        if label == "lbproxy/HAProxy" and mode:
            a_, b_ = counts.get(("lbproxy", topo, mode, "ir")), counts.get(("haproxy", topo, mode, "ir"))
            ir = a_ / b_ if a_ and b_ else None
            a_, b_ = counts.get(("lbproxy", topo, mode, "sys")), counts.get(("haproxy", topo, mode, "sys"))
            sc = a_ / b_ if a_ and b_ else None
        ratio = note == "ratio"
        dg = 3 if ratio else None
        R.append(f"| {name} | {label} | {fmt(m.get('rps'), dg)} | {fmt(m.get('p50'), dg if ratio else 2)} "
                 f"| {fmt(m.get('p99'), dg if ratio else 2)} | {fmt(m.get('cpu'), 3 if not ratio else dg)} "
                 f"| {fmt(m.get('rss'), dg if ratio else 1)} | {fmt(m.get('idle'), dg if ratio else 2)} "
                 f"| {fmt(m.get('pcore'), 0)} | {fmt(m.get('lcore'), 0)} | {fmt(m.get('lus'), 1)} "
                 f"| {(f'{ir:.3f}' if ratio else f'{ir:,.0f}') if ir else ''} "
                 f"| {(f'{sc:.3f}' if ratio else f'{sc:.1f}') if sc else ''} | {'' if ratio else note} |")
    R.append("")
    if bar:
        R.append("The bar (issue #7): lbproxy/HAProxy ratio of medians against the control's "
                 "spread (HAProxy#2/HAProxy per run, and its inverse): inside it is a tie.")
        R.append("")
        R.append("| criterion | lbproxy (/HAProxy) | control spread, or reference | verdict |")
        R.append("|---|---|---|---|")
        for c, v, b, ok in bar:
            R.append(f"| {c} | {v} | {b} | {ok} |")
        R.append("")
    if crashes:
        seen = {}
        for c in crashes:
            seen[c] = seen.get(c, 0) + 1
        notes = [f"CRASH: {c}" + (f", {n} times" if n > 1 else "") for c, n in seen.items()] + notes
    if notes:
        R += [f"- {n}" for n in notes]
        R.append("")
    if extra:
        R.append("Scaling, profiles and counts:")
        R.append("")
        R += extra
        R.append("")
    report = "\n".join(R)
    print(report)
    if a.results:
        with open(a.results, "w") as f:
            f.write("# lbproxy benchmark results\n\nMade by `tests/bench/run.sh` (see "
                    "`tests/bench/README.md`); the latest full run.\n\n" + report)
    log(f"work directory: {d}" + ("" if a.keep else " (removed; --keep keeps it)"))
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
