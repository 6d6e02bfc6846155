# SPDX-License-Identifier: MIT
"""APISIX manifests as configuration (issue #6): `lbproxy --check --dump` prints the native YAML
the manifests became, fields that cannot apply outside Kubernetes are refused at their line, and
the APISIX load-balancing tutorial's manifest, unchanged, splits 50 requests 25:25 between HTTPS
stand-ins for httpbin.org and mock.api7.ai on port 443, whose names a local dnsmasq answers."""

import errno
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from lbtest import REPO_ROOT, free_port
from tls_helpers import TlsUpstreamServer, make_pki

# The tutorial's manifest as published, kept once in the repository.
LB_ROUTE = REPO_ROOT / "tests" / "unit" / "apisix" / "lb-route.yaml"
SEED_CHECK = REPO_ROOT / "tests" / "seed-check.sh"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"

STAND_INS = {"httpbin.org": "127.0.0.2", "mock.api7.ai": "127.0.0.3"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def globals_yaml(listen, dns_server, ca):
    """globals.yaml of the issue: listeners, DNS servers and trust, nothing else."""
    return (f"listeners:\n"
            f"  - name: http\n"
            f"    listen: \"{listen}\"\n"
            f"dns:\n"
            f"  servers: [\"{dns_server}\"]\n"
            f"tls:\n"
            f"  ca_file: {ca}\n")


def check(lbproxy_bin, *paths, dump=False):
    args = [str(lbproxy_bin), "--check"] + (["--dump"] if dump else [])
    for p in paths:
        args += ["--config", str(p)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


# -- --check --dump ---------------------------------------------------------------------------
def expected_dump(ca):
    ups = []
    for name, host in (("httpbin-external-domain", "httpbin.org"),
                       ("mockapi7-external-domain", "mock.api7.ai")):
        ups.append(f"- name: {name}\n"
                   f"  scheme: https\n"
                   f"  pass_host: node\n"
                   f"  balancer: roundrobin\n"
                   f"  retries: 0\n"
                   f"  keepalive_pool: 32\n"
                   f"  keepalive_idle: 1m\n"
                   f"  timeout: {{connect: 1m, send: 1m, read: 1m}}\n"
                   f"  tls:\n"
                   f"    ca_file: {ca}\n"
                   f"    verify: true\n"
                   f"  nodes:\n"
                   f"  - {{host: {host}, port: 443, weight: 1}}\n")
    return ("listeners:\n"
            "- name: http\n"
            "  listen: \"127.0.0.1:9080\"\n"
            "upstreams:\n" + "".join(ups) +
            "routes:\n"
            "- name: lb-route\n"
            "  paths: [/headers]\n"
            "  priority: 0\n"
            "  upstreams:\n"
            "  - {name: httpbin-external-domain, weight: 100}\n"
            "  - {name: mockapi7-external-domain, weight: 100}\n")


def test_check_dump_shows_the_translation(lbproxy_bin, tmp_path, pki):
    g = tmp_path / "globals.yaml"
    g.write_text(globals_yaml("127.0.0.1:9080", "127.0.0.1:5353", pki.ca))
    p = check(lbproxy_bin, g, LB_ROUTE, dump=True)
    assert p.returncode == 0, p.stderr
    assert expected_dump(pki.ca) in p.stdout, p.stdout
    assert "dns:\n  servers: [\"127.0.0.1:5353\"]\n" in p.stdout, p.stdout

    # The native YAML is a configuration of its own, and dumps to the same text.
    d = tmp_path / "dump.yaml"
    d.write_text(p.stdout)
    p2 = check(lbproxy_bin, d, dump=True)
    assert p2.returncode == 0, p2.stderr
    assert p2.stdout == p.stdout


def test_check_names_refused_fields(lbproxy_bin, tmp_path, pki):
    g = tmp_path / "globals.yaml"
    g.write_text(globals_yaml("127.0.0.1:9080", "127.0.0.1:5353", pki.ca))
    m = tmp_path / "route.yaml"
    m.write_text("apiVersion: apisix.apache.org/v2\n"
                 "kind: ApisixUpstream\n"
                 "metadata: {name: httpbin, namespace: web}\n"
                 "spec:\n"
                 "  tlsSecret: {name: client, namespace: web}\n"
                 "  externalNodes: [{type: Service, name: httpbin}]\n"
                 "---\n"
                 "apiVersion: apisix.apache.org/v2\n"
                 "kind: ApisixRoute\n"
                 "metadata: {name: rt, namespace: web}\n"
                 "spec:\n"
                 "  http:\n"
                 "  - name: r\n"
                 "    match: {paths: [/headers]}\n"
                 "    plugins: [{name: cors, enable: true}]\n"
                 "    upstreams: [{name: httpbin}, {name: missing}]\n")
    p = check(lbproxy_bin, g, m)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.splitlines() == [
        f"{m}:5:3: ApisixUpstream/web/httpbin: spec.tlsSecret: client certificates come from a "
        f"Kubernetes Secret, which does not exist outside Kubernetes",
        f"{m}:6:26: ApisixUpstream/web/httpbin: spec.externalNodes[0].type: 'Service' names a "
        f"Kubernetes ExternalName Service, which does not exist outside Kubernetes (use type: "
        f"Domain)",
        f"{m}:15:5: ApisixRoute/web/rt: spec.http[0].plugins: plugins are not supported: "
        f"lbproxy runs no APISIX plugins",
        f"{m}:16:41: ApisixRoute/web/rt: spec.http[0].upstreams[1].name: no upstream named "
        f"'web_missing'",
    ], p.stderr


HEALTH_CHECK_MANIFEST = """\
apiVersion: apisix.apache.org/v2
kind: ApisixUpstream
metadata: {name: httpbin, namespace: web}
spec:
  externalNodes: [{type: Domain, name: httpbin.org}]
  healthCheck:
    active:
      type: http
      httpPath: /status/200
      host: status.example
      timeout: 2s
      requestHeaders: ["User-Agent: lbproxy-health"]
      healthy: {interval: 2s, successes: 3, httpCodes: [200, 204]}
      unhealthy: {interval: 500ms, httpFailures: 3, tcpFailures: 1, timeouts: 2}
    passive:
      healthy: {successes: 2}
      unhealthy: {httpCodes: [502, 503], timeout: 4}
"""


def test_check_dump_translates_health_check(lbproxy_bin, tmp_path, pki):
    """healthCheck becomes native health_check: the CRD's names, its zeros and APISIX's
    defaults; `timeouts` is taken as the CRD's `timeout` with a warning; the dump loads."""
    g = tmp_path / "globals.yaml"
    g.write_text(globals_yaml("127.0.0.1:9080", "127.0.0.1:5353", pki.ca))
    m = tmp_path / "upstream.yaml"
    m.write_text(HEALTH_CHECK_MANIFEST)
    p = check(lbproxy_bin, g, m, dump=True)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        f"warning: {m}:14:79: ApisixUpstream/web/httpbin: spec.healthCheck.active.unhealthy."
        f"timeouts: read as 'timeout', the CRD's name for the count of timeouts"], p.stderr
    want = ("  health_check:\n"
            "    active:\n"
            "      type: http\n"
            "      http_path: /status/200\n"
            "      host: status.example\n"
            "      timeout: 2s\n"
            "      concurrency: 10\n"
            "      headers: ['User-Agent: lbproxy-health']\n"
            "      healthy: {interval: 2s, successes: 3, http_statuses: [200, 204]}\n"
            "      unhealthy: {interval: 500ms, http_failures: 3, tcp_failures: 1, timeouts: 2, "
            "http_statuses: [404,\n"
            "          429, \"500-505\"]}\n"
            "    passive:\n"
            "      healthy: {successes: 2, http_statuses: [\"200-208\", 226, \"300-308\"]}\n"
            "      unhealthy: {http_failures: 5, tcp_failures: 2, timeouts: 4, http_statuses: "
            "[502, 503]}\n"
            "  nodes:\n")
    assert want in p.stdout, p.stdout

    d = tmp_path / "dump.yaml"
    d.write_text(p.stdout)
    p2 = check(lbproxy_bin, d, dump=True)
    assert p2.returncode == 0 and p2.stderr == "", p2.stderr
    assert p2.stdout == p.stdout


# -- the tutorial, end to end -----------------------------------------------------------------
def dns_query(server, name, qtype=1, timeout=1.0):
    """One DNS question over UDP; returns (rcode, number of answers)."""
    q = struct.pack(">HHHHHH", 0x6c62, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, server)
        d = s.recv(512)
    return d[3] & 0x0f, struct.unpack(">H", d[6:8])[0]


@pytest.fixture
def dnsmasq(tmp_path):
    """A dnsmasq on 127.0.0.1 that knows the tutorial's two names (A records; AAAA: no data)
    and nothing else. Yields its (host, port)."""
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip("dnsmasq is not installed")
    port = free_port()
    args = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={port}",
            "--pid-file=", "--log-facility=-"]
    if os.getuid() == 0:
        args.append("--user=root")
    for name, ip in STAND_INS.items():
        # --local: a question of another type about these names gets "no data", not REFUSED.
        args += [f"--address=/{name}/{ip}", f"--local=/{name}/"]
    log = open(tmp_path / "dnsmasq.log", "wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if dns_query(("127.0.0.1", port), "httpbin.org", timeout=0.2) == (0, 1):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("dnsmasq did not start:\n" +
                            (tmp_path / "dnsmasq.log").read_text(errors="replace"))
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def https_stand_ins(pki):
    """TLS servers named httpbin.org and mock.api7.ai on port 443 of their addresses, with a
    certificate for both names from the test CA."""
    servers = {}
    try:
        for name, ip in STAND_INS.items():
            # Another run's stand-ins may hold the port for a moment.
            deadline = time.monotonic() + 15
            while name not in servers:
                try:
                    servers[name] = TlsUpstreamServer(name, ip, pki.good, port=443).start()
                except PermissionError:
                    pytest.skip("binding port 443 needs root (or CAP_NET_BIND_SERVICE)")
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
                    if time.monotonic() > deadline:
                        pytest.skip(f"port 443 of {ip} stays in use by something else")
                    time.sleep(0.2)
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def test_tutorial_manifest_splits_25_25(lbproxy, pki, dnsmasq, https_stand_ins):
    dns = f"{dnsmasq[0]}:{dnsmasq[1]}"
    lb = lbproxy(globals_yaml("@LISTEN@", dns, pki.ca), args=["--config", str(LB_ROUTE)])

    p = subprocess.run(["bash", str(SEED_CHECK), f"{lb.url}/headers", "50"],
                       capture_output=True, text=True, timeout=300)
    assert "httpbin.org: 25, mock.api7.ai: 25" in p.stdout, p.stdout + p.stderr + lb.log_text()
    assert p.returncode == 0

    # passHost: node and scheme: https, as APISIX means them: each stand-in saw its own name
    # as SNI and as Host (443 being https' port, without it), and only /headers.
    for name, s in https_stand_ins.items():
        reqs = s.wait_requests(25)
        assert len(reqs) == 25, name
        assert {r.path for r in reqs} == {"/headers"}
        assert {r.header("host")[0] for r in reqs} == {name}
        assert set(s.sni) == {name}
