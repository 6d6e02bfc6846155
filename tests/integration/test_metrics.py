# SPDX-License-Identifier: MIT
"""The Prometheus endpoint (`protocol: metrics`): GET /metrics in the text format 0.0.4 that
Debian's promtool accepts, counts exact across workers, D-Bus changes and reloads, objects
removed over D-Bus gone from the output, `node_labels: false`, buckets, and a real Prometheus
server scraping lbproxy and answering PromQL over its HTTP API."""

import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from lbtest import Client, build_request, free_port, request, route_cfg, to_yaml, upstream_cfg

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(samples, name, **want):
    """The sum of `name`'s samples whose labels include `want`."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and set(want.items()) <= labels)


def series(samples, name):
    return [dict(labels) for (n, labels), _ in samples.items() if n == name]


def settled(mport, name, want, timeout=10.0, **labels):
    """Scrapes until `name` (labels) sums to `want`: a worker counts a request just after its
    last byte went out, so a scrape right after the client read it may come first. Returns the
    last response and its samples."""
    end = time.monotonic() + timeout
    while True:
        r = scrape(mport)
        s = parse(r.body.decode())
        if total(s, name, **labels) == want or time.monotonic() > end:
            return r, s
        time.sleep(0.05)


def wait_total(mport, name, want, timeout=10.0, **labels):
    """Scrapes until `name` (labels) reaches `want`; returns the last sum."""
    return total(settled(mport, name, want, timeout, **labels)[1], name, **labels)


def with_metrics(cfg, metrics_port, **metrics):
    """`cfg` (a dict) with the proxy listener and a metrics listener, as a YAML string."""
    cfg = dict(cfg)
    cfg["listeners"] = [{"name": "http", "listen": "@LISTEN@"},
                        {"name": "metrics", "listen": f"127.0.0.1:{metrics_port}",
                         "protocol": "metrics"}]
    if metrics:
        cfg["metrics"] = metrics
    return to_yaml(cfg)


def scrape(port, path="/metrics", method="GET", headers=()):
    return request("127.0.0.1", port, method, path, headers=headers)


@pytest.fixture
def seed(upstream):
    """The seed's shape: route lb-route over two upstreams of one node each."""
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    cfg = {
        "upstreams": [upstream_cfg("up_a", [a]), upstream_cfg("up_b", [b])],
        "routes": [route_cfg("lb-route", ["/headers"], ["up_a", "up_b"])],
    }
    return a, b, cfg


def send(lb, n, path="/headers"):
    with lb.client() as c:
        for _ in range(n):
            c.request("GET", path)
            r = c.read_response()
            assert r.status in (200, 404), r


def test_requests_counted_by_route_upstream_node_code_and_promtool_accepts(lbproxy, seed):
    a, b, cfg = seed
    mport = free_port()
    lb = lbproxy(with_metrics(cfg, mport))
    send(lb, 50)
    send(lb, 3, "/nothing")
    r, s = settled(mport, "lbproxy_http_requests_total", 53)
    assert r.status == 200
    assert r.header1("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    name = "lbproxy_http_requests_total"
    assert total(s, name, route="lb-route") == 50
    assert total(s, name, route="lb-route", upstream="up_a", node=f"{a.host}:{a.port}",
                 code="200") == 25
    assert total(s, name, route="lb-route", upstream="up_b", node=f"{b.host}:{b.port}",
                 code="200") == 25
    assert total(s, name, route="", upstream="", node="", code="404") == 3
    h = "lbproxy_http_request_duration_seconds"
    assert total(s, h + "_count", route="lb-route") == 50
    assert total(s, h + "_bucket", route="lb-route", upstream="up_a", le="+Inf") == 25
    assert total(s, "lbproxy_upstream_response_duration_seconds_count", upstream="up_b") == 25
    assert total(s, "lbproxy_upstream_connect_duration_seconds_count") >= 2
    assert total(s, "lbproxy_http_response_bytes_total", route="lb-route") > 0
    assert total(s, "lbproxy_upstream_node_up", upstream="up_a") == 1
    assert total(s, "lbproxy_upstream_node_weight", upstream="up_b") == 1
    assert total(s, "lbproxy_client_connections_total", listener="http") == 2
    assert total(s, "lbproxy_build_info") == 1
    assert total(s, "process_open_fds") > 0

    if not PROMTOOL:
        pytest.skip("Debian's prometheus package (promtool) is not installed")
    promtool = subprocess.run([PROMTOOL, "check", "metrics"], input=r.body,
                              capture_output=True, timeout=30)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr


def test_anything_but_get_metrics_is_404_and_head_has_no_body(lbproxy, seed):
    *_, cfg = seed
    mport = free_port()
    lbproxy(with_metrics(cfg, mport))
    assert scrape(mport, "/").status == 404
    assert scrape(mport, "/metrics/x").status == 404
    assert scrape(mport, "/metrics", method="POST", headers=[("Content-Length", "0")]).status == 404
    r = scrape(mport, method="HEAD")
    assert r.status == 200 and r.body == b"" and int(r.header1("content-length")) > 0
    # Keep-alive and pipelining, answered in order; then a head too large is a 400 and a close.
    with Client("127.0.0.1", mport) as c:
        c.send(build_request("GET", "/metrics") + build_request("GET", "/nope") +
               build_request("GET", "/metrics"))
        assert [c.read_response().status for _ in range(3)] == [200, 404, 200]
        c.send(build_request("GET", "/metrics", headers=[("X-Big", "x" * 9000)]))
        assert c.read_response().status == 400
        assert c.is_closed()


def test_node_labels_false_and_buckets(lbproxy, seed):
    a, b, cfg = seed
    mport = free_port()
    lb = lbproxy(with_metrics(cfg, mport, node_labels=False, buckets=[0.001, 0.5, 2]))
    send(lb, 10)
    _, s = settled(mport, "lbproxy_http_requests_total", 10)
    for name in ("lbproxy_http_requests_total", "lbproxy_upstream_node_up",
                 "lbproxy_upstream_response_duration_seconds_bucket"):
        assert series(s, name), name
        assert all("node" not in labels for labels in series(s, name)), name
    assert total(s, "lbproxy_http_requests_total", upstream="up_a", code="200") == 5
    assert total(s, "lbproxy_upstream_node_up", upstream="up_a") == 1
    les = {l["le"] for l in series(s, "lbproxy_http_request_duration_seconds_bucket")}
    assert les == {"0.001", "0.5", "2", "+Inf"}


def test_counts_exact_across_dbus_changes_and_reload_and_removed_objects_go(
        lbproxy, seed, bus, upstream, tmp_path):
    a, b, cfg = seed
    state = tmp_path / "state"
    state.mkdir()
    mport = free_port()
    lb = lbproxy(with_metrics(cfg, mport), args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()
    c = upstream("c", "127.0.0.4")
    send(lb, 10)
    bus.call("AddNode", "ssqu", "up_a", c.host, c.port, 1)
    send(lb, 10)
    bus.call("AddRoute", "sasa(su)a{sv}", "other", 1, "/other", 1, "up_b", 1, 0)
    send(lb, 4, "/other")
    _, s = settled(mport, "lbproxy_http_requests_total", 24)
    assert total(s, "lbproxy_http_requests_total", route="lb-route") == 20
    assert total(s, "lbproxy_http_requests_total", route="other") == 4
    by_c = total(s, "lbproxy_http_requests_total", node=f"{c.host}:{c.port}")
    assert by_c == len(c.requests) > 0
    assert total(s, "lbproxy_config_changes_total", outcome="success") == 2

    bus.call("RemoveNode", "ssq", "up_a", c.host, c.port)
    bus.call("RemoveRoute", "s", "other")
    assert bus.call("RemoveRoute", "s", "nope", check=False).returncode != 0
    text = scrape(mport).body.decode()
    assert f'node="{c.host}:{c.port}"' not in text
    assert 'route="other"' not in text
    # The node's series went with it; the others kept every count.
    s = parse(text)
    assert total(s, "lbproxy_http_requests_total", route="lb-route") == 20 - by_c
    assert total(s, "lbproxy_config_changes_total", outcome="success") == 4
    assert total(s, "lbproxy_config_changes_total", outcome="failure") == 1

    lb.proc.send_signal(signal.SIGHUP)
    lb.wait_log("Configuration reloaded")
    send(lb, 10)
    _, s = settled(mport, "lbproxy_http_requests_total", 30 - by_c, route="lb-route")
    assert total(s, "lbproxy_http_requests_total", route="lb-route") == 30 - by_c
    assert total(s, "lbproxy_config_reloads_total", outcome="success") == 1




@pytest.mark.skipif(not PROMETHEUS, reason="Debian's prometheus package is not installed")
def test_real_prometheus_scrapes_and_answers_promql(lbproxy, seed, tmp_path):
    a, b, cfg = seed
    mport = free_port()
    lb = lbproxy(with_metrics(cfg, mport))
    send(lb, 50)

    pport = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: lbproxy\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{mport}']}}]\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{pport}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def query(q):
            url = f"http://127.0.0.1:{pport}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.load(resp)
            assert body["status"] == "success", body
            return body["data"]["result"]

        def wait_query(q, timeout=60.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    got = query(q)
                    if got:
                        return got
                except OSError:
                    pass
                time.sleep(0.25)
            raise AssertionError(f"no answer to {q}; log:\n" +
                                 (tmp_path / "prometheus.log").read_text()[-3000:])

        got = wait_query('sum(lbproxy_http_requests_total{route="lb-route"}) == 50')
        assert float(got[0]["value"][1]) == 50
        by = query('sum by (upstream) (lbproxy_http_requests_total{route="lb-route"})')
        assert {r["metric"]["upstream"]: float(r["value"][1]) for r in by} == \
            {"up_a": 25, "up_b": 25}
        q = wait_query('histogram_quantile(0.99, sum by (le) '
                       '(lbproxy_http_request_duration_seconds_bucket{route="lb-route"}))')
        v = float(q[0]["value"][1])
        assert 0 < v <= 60, q
        up = query('up{job="lbproxy"}')
        assert float(up[0]["value"][1]) == 1
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def test_tls_handshakes_by_side_and_resumption(lbproxy, upstream, tmp_path_factory):
    from test_tls_listener import _ca, _leaf, gnutls_cli, https_yaml

    d = tmp_path_factory.mktemp("metrics-pki")
    ca = _ca(d, "ca")
    a = _leaf(d, "a", ca, ["a.example"])
    up = upstream("u")
    mport = free_port()
    lb = lbproxy(https_yaml(up, [a], extra="  - {name: metrics, listen: "
                            f"\"127.0.0.1:{mport}\", protocol: metrics}}"))
    p, out = gnutls_cli(lb, "--resume", "--priority=NORMAL:-VERS-TLS1.3", ca=ca[0])
    assert p.returncode == 0 and "This is a resumed session" in out, out
    name = "lbproxy_tls_handshakes_total"
    assert wait_total(mport, name, 2, side="server") == 2
    s = parse(scrape(mport).body.decode())
    assert total(s, name, side="server", resumed="false") == 1
    assert total(s, name, side="server", resumed="true") == 1
    assert total(s, "lbproxy_tls_handshake_failures_total", side="server") == 0
    # A client that leaves before the end of its handshake.
    with socket.create_connection(("127.0.0.1", lb.port)) as c:
        c.sendall(b"\x16\x03\x01\x00\x05hello")
    assert wait_total(mport, "lbproxy_tls_handshake_failures_total", 1, side="server") == 1


def test_tls_handshakes_towards_nodes(lbproxy, tmp_path_factory):
    from tls_helpers import TlsUpstreamServer, make_pki

    pki = make_pki(tmp_path_factory.mktemp("metrics-upstream-pki"))
    a = TlsUpstreamServer("a", "127.0.0.2", pki.good).start()
    bad = TlsUpstreamServer("bad", "127.0.0.3", pki.wrong).start()
    try:
        def https(name, s):
            return upstream_cfg(name, [s], scheme="https", keepalive_pool=0, retries=0,
                                tls={"ca_file": str(pki.ca), "sni": "httpbin.org"})
        mport = free_port()
        cfg = {"upstreams": [https("up", a), https("bad", bad)],
               "routes": [route_cfg("r", ["/ok/*"], ["up"]),
                          route_cfg("b", ["/bad/*"], ["bad"])]}
        lb = lbproxy(with_metrics(cfg, mport))
        for i in range(3):
            assert lb.request("GET", f"/ok/{i}").status == 200
        assert lb.request("GET", "/bad/x").status == 502
        _, s = settled(mport, "lbproxy_http_requests_total", 4)
        name = "lbproxy_tls_handshakes_total"
        assert total(s, name, side="client", resumed="false") == 1
        assert total(s, name, side="client", resumed="true") == 2 == a.resumed
        assert total(s, "lbproxy_tls_handshake_failures_total", side="client") == 1
        assert total(s, "lbproxy_upstream_health_checks_total", upstream="bad",
                     outcome="failure") == 1
        assert total(s, "lbproxy_http_requests_total", route="b", upstream="bad", node="",
                     code="502") == 1
    finally:
        a.stop()
        bad.stop()


def test_stream_sessions_and_client_connections_by_listener(lbproxy, seed):
    a, b, cfg = seed
    mport, tport = free_port(), free_port()
    text = with_metrics(cfg, mport).replace(
        "listeners:\n",
        f'listeners:\n  - name: "tcp"\n    listen: "127.0.0.1:{tport}"\n    protocol: "tcp"\n'
        f'    upstream: "up_a"\n', 1)
    lb = lbproxy(text)
    req = b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", tport)) as c:
        c.sendall(req)
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200")
    open_conn = socket.create_connection(lb.address)  # held open while scraped
    try:
        name = "lbproxy_stream_sessions_total"
        assert wait_total(mport, name, 1, listener="tcp", upstream="up_a") == 1
        s = parse(scrape(mport).body.decode())
        assert total(s, "lbproxy_stream_bytes_total", listener="tcp",
                     direction="to_upstream") == len(req)
        assert total(s, "lbproxy_stream_bytes_total", listener="tcp",
                     direction="to_client") == len(got)
        assert total(s, "lbproxy_client_connections_total", listener="tcp") == 1
        assert wait_total(mport, "lbproxy_client_connections_open", 1, listener="http") == 1
    finally:
        open_conn.close()
    assert wait_total(mport, "lbproxy_client_connections_open", 0, listener="http") == 0


# Binds the metrics socket as systemd would, names it by FileDescriptorName=, and execs lbproxy
# (same pid, so LISTEN_PID holds).
ACTIVATE = """
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="metrics")
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_socket_activated_by_file_descriptor_name(lbproxy, seed):
    a, b, cfg = seed
    mport = free_port()
    text = with_metrics(cfg, mport).replace(f'    listen: "127.0.0.1:{mport}"\n', "")
    assert "metrics" in text and str(mport) not in text
    lb = lbproxy(text, wrapper=["/usr/bin/python3", "-c", ACTIVATE, str(mport)])
    assert lb.wait_log("Listening on 'metrics' (socket activation)")
    send(lb, 4)
    _, s = settled(mport, "lbproxy_http_requests_total", 4)
    assert total(s, "lbproxy_http_requests_total", route="lb-route") == 4


def test_scrapes_while_requests_run_and_counts_stay_exact(lbproxy, seed):
    """Scrapes in a loop on their thread while two workers serve and the tables grow: every
    request answered, every one counted, and counters never go down between scrapes."""
    import threading

    a, b, cfg = seed
    cfg = dict(cfg)
    # A large upstream nobody routes to: a thousand nodes of gauges in every scrape.
    cfg["upstreams"] = cfg["upstreams"] + [upstream_cfg(
        "big", [("127.0.1.1", 20000 + i) for i in range(1000)])]
    cfg["workers"] = 2
    mport = free_port()
    lb = lbproxy(with_metrics(cfg, mport))
    stop = threading.Event()
    seen, errors, times = [], [], []

    def scraper():
        while not stop.is_set():
            t = time.monotonic()
            r = scrape(mport)
            times.append(time.monotonic() - t)
            if r.status != 200:
                errors.append(r.status)
                return
            seen.append(total(parse(r.body.decode()), "lbproxy_http_requests_total",
                              route="lb-route"))

    t = threading.Thread(target=scraper)
    t.start()
    try:
        clients = [threading.Thread(target=send, args=(lb, 100)) for _ in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=120)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not errors
    assert len(seen) >= 2
    assert seen == sorted(seen), "a counter went down between scrapes"
    _, s = settled(mport, "lbproxy_http_requests_total", 400)
    assert total(s, "lbproxy_http_requests_total", route="lb-route", code="200") == 400
    assert total(s, "lbproxy_upstream_node_weight", upstream="big") == 1000
    print(f"scrapes: {len(times)}, median {sorted(times)[len(times) // 2] * 1000:.1f} ms")
