# SPDX-License-Identifier: MIT
"""Nodes by name, against dnsmasq as the DNS server: a name resolved and used, NXDOMAIN, an
answer that changes under traffic, DNS going away (the last good addresses are kept), requests
that come before the first answer, several A records, and keep-alive over HTTPS to a name."""

import socket
import threading
import time

import pytest

from dns_helpers import dns_gate, dnsmasq, free_udp_tcp_port  # noqa: F401 (fixtures)
from lbtest import route_cfg, upstream_cfg
from tls_helpers import TlsUpstreamServer, make_pki
from upstream import UpstreamServer


def dns_cfg(server, ttl_min="1s", timeout="5s"):
    return {"servers": [server], "ttl_min": ttl_min, "ttl_max": "1h", "timeout": timeout}


def config(server, nodes, ttl_min="1s", timeout="5s", **upstream_kw):
    kw = {"pass_host": "node"}
    kw.update(upstream_kw)
    return {"access_log": True, "dns": dns_cfg(server, ttl_min, timeout),
            "upstreams": [upstream_cfg("web", nodes, **kw)],
            "routes": [route_cfg("all", ["/*"], ["web"])]}


@pytest.fixture
def pair():
    """Two recording upstreams on one port, 127.0.0.2 and 127.0.0.3: a name that moves from
    one address to the other keeps its node's port."""
    started = []
    for _ in range(20):
        a = UpstreamServer("a", "127.0.0.2").start()
        try:
            b = UpstreamServer("b", "127.0.0.3", a.port).start()
        except OSError:
            a.stop()
            continue
        started = [a, b]
        break
    assert started, "no port free on both 127.0.0.2 and 127.0.0.3"
    yield started
    for s in started:
        s.stop()


def get(lb, path, timeout=10.0):
    return lb.request("GET", path, host_header="client.example", timeout=timeout)


def served_by(r):
    assert r.status == 200, r
    return r.json()["server"]


# -- resolved and used --------------------------------------------------------------------------
def test_name_resolved_and_used(upstream, dnsmasq, lbproxy):
    a = upstream("a", "127.0.0.2")
    d = dnsmasq(records=[("web.test", "127.0.0.2", 60)], local=["test"])
    lb = lbproxy(config(d.server, [("web.test", a.port)]))

    r = get(lb, "/by-name")
    assert served_by(r) == "a"
    assert r.json()["host"] == f"web.test:{a.port}"  # pass_host: node, a name with its port
    line = lb.wait_log('"GET /by-name" 200')
    assert line, lb.log_text()[-3000:]
    assert f"node=web.test:{a.port} address=127.0.0.2:{a.port}" in line[-1], line
    assert lb.log_lines("DNS: web.test resolves to 127.0.0.2, TTL 60s"), lb.log_text()[-3000:]


def test_nxdomain_502_names_the_host(dnsmasq, lbproxy):
    d = dnsmasq(local=["test"])
    assert d.query("missing.test")[0] == 3  # NXDOMAIN, from dnsmasq itself
    lb = lbproxy(config(d.server, [("missing.test", 8080)]))

    t0 = time.monotonic()
    r = get(lb, "/nx")
    assert r.status == 502, r
    assert time.monotonic() - t0 < 3  # an answer, not a timeout
    assert b"missing.test" in r.body, r.body
    assert b"cannot resolve" in r.body, r.body
    assert lb.wait_log("DNS: cannot resolve missing.test"), lb.log_text()[-3000:]
    line = lb.wait_log('"GET /nx" 502')
    assert line and "upstream=web" in line[-1], lb.log_text()[-3000:]


# -- answers that change, and DNS that goes away ------------------------------------------------
def test_changed_answer_moves_traffic_after_ttl(pair, dnsmasq, lbproxy):
    a, b = pair
    d = dnsmasq(records=[("web.test", "127.0.0.2", 1)], local=["test"])
    lb = lbproxy(config(d.server, [("web.test", a.port)], ttl_min="1s"))
    pid = lb.pid
    for i in range(3):
        assert served_by(get(lb, f"/before/{i}")) == "a"

    d.restart(records=[("web.test", "127.0.0.3", 1)])
    assert d.query("web.test")[1] == [("127.0.0.3", 1)]
    t0 = time.monotonic()
    moved = None
    for i in range(400):  # bounded: 400 requests or 10 s
        if served_by(get(lb, f"/during/{i}")) == "b":  # every request succeeds meanwhile
            moved = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 10:
            break
        time.sleep(0.025)
    assert moved is not None, f"still on 127.0.0.2 after 10 s\n{lb.log_text()[-3000:]}"
    for i in range(5):
        assert served_by(get(lb, f"/after/{i}")) == "b"
    assert lb.alive() and lb.pid == pid
    assert lb.wait_log("DNS: web.test now resolves to 127.0.0.3 (was 127.0.0.2)"), \
        lb.log_text()[-3000:]
    assert lb.wait_log('"GET /after/4" 200', f"address=127.0.0.3:{b.port}"), \
        lb.log_text()[-3000:]


def test_dns_down_keeps_last_addresses(upstream, dnsmasq, lbproxy):
    a = upstream("a", "127.0.0.2")
    d = dnsmasq(records=[("web.test", "127.0.0.2", 1)], local=["test"])
    lb = lbproxy(config(d.server, [("web.test", a.port)], ttl_min="1s"))
    assert served_by(get(lb, "/up")) == "a"

    d.stop()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 4.0 and n < 1000:  # four TTLs, bounded in count too
        assert served_by(get(lb, f"/down/{n}")) == "a"
        n += 1
        time.sleep(0.05)
    failed = lb.wait_log("DNS: resolving web.test failed (", "keeping its last addresses")
    assert failed, lb.log_text()[-3000:]
    # Once per run of failures, not at every retry.
    assert len(failed) == 1, failed
    assert not lb.log_lines("DNS: cannot resolve web.test")

    d.start()  # same port
    assert lb.wait_log("DNS: web.test resolves again (127.0.0.2)", timeout=20), \
        lb.log_text()[-3000:]
    assert served_by(get(lb, "/back")) == "a"


# -- before the first answer ---------------------------------------------------------------------
def test_request_waits_for_the_first_answer(upstream, dns_gate, dnsmasq, lbproxy):
    """The DNS server does not answer yet (the gate holds the queries): a request waits for the
    first answer, and goes on when it comes, from a dnsmasq started only then."""
    a = upstream("a", "127.0.0.2")
    g = dns_gate()
    lb = lbproxy(config(g.server, [("web.test", a.port)], timeout="10s"))
    assert g.wait_received(1), "lbproxy sent no query"

    result = {}

    def run():
        t = time.monotonic()
        try:
            result["response"] = get(lb, "/first", timeout=20)
        except Exception as e:  # reported below
            result["error"] = e
        result["took"] = time.monotonic() - t

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(1.0)
    assert t.is_alive(), f"answered without DNS: {result}"
    assert a.requests == []

    d = dnsmasq(records=[("web.test", "127.0.0.2", 60)], local=["test"])
    g.open(d.port)
    t.join(15)
    assert not t.is_alive(), "the waiting request never finished"
    assert "error" not in result, result
    assert served_by(result["response"]) == "a"
    assert 1.0 <= result["took"] < 10, result["took"]
    assert d.queries("web.test") >= 1


def test_waiters_on_two_workers_and_one_that_leaves(upstream, dns_gate, dnsmasq, lbproxy):
    """Requests on both workers wait for the first answer while one client gives up: the answer
    reaches every worker's waiters (each through its own mailbox: the resolver's thread never
    touches a worker's loop), and the one that left does not disturb them."""
    a = upstream("a", "127.0.0.2")
    g = dns_gate()
    cfg = config(g.server, [("web.test", a.port)], timeout="10s")
    cfg["workers"] = 2
    lb = lbproxy(cfg)
    assert g.wait_received(1), "lbproxy sent no query"

    leaver = socket.create_connection(lb.address, timeout=10)
    leaver.sendall(b"GET /leaves HTTP/1.1\r\nHost: client.example\r\n\r\n")
    results = []

    def run(i):
        try:
            results.append(served_by(get(lb, f"/wait-{i}", timeout=20)))
        except Exception as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    threads[0].join(1.0)
    assert all(t.is_alive() for t in threads), f"answered without DNS: {results}"
    leaver.close()

    d = dnsmasq(records=[("web.test", "127.0.0.2", 60)], local=["test"])
    g.open(d.port)
    for t in threads:
        t.join(15)
    assert results == ["a"] * 16, results
    assert served_by(get(lb, "/after")) == "a"
    assert lb.alive()


def test_no_dns_server_fails_fast_naming_the_host(lbproxy):
    """Nothing listens on the DNS port (queries are refused): 502 naming the host, within
    dns.timeout."""
    port = free_udp_tcp_port()
    lb = lbproxy(config(f"127.0.0.1:{port}", [("web.test", 8080)], timeout="2s"))
    t0 = time.monotonic()
    r = get(lb, "/no-dns", timeout=15)
    took = time.monotonic() - t0
    assert r.status == 502, r
    assert took < 2 + 1.5, took
    assert b"cannot resolve web.test" in r.body, r.body
    assert lb.wait_log("DNS: cannot resolve web.test"), lb.log_text()[-3000:]


def test_silent_dns_server_bounded_by_dns_timeout(dns_gate, lbproxy):
    """A DNS server that never answers: the request waits dns.timeout, then 502 naming the
    host."""
    g = dns_gate()  # never opened
    lb = lbproxy(config(g.server, [("web.test", 8080)], timeout="2s"))
    t0 = time.monotonic()
    r = get(lb, "/silent-dns", timeout=15)
    took = time.monotonic() - t0
    assert r.status == 502, r
    assert 1.5 <= took < 2 + 1.5, took
    assert b"cannot resolve web.test" in r.body, r.body


# -- several addresses -------------------------------------------------------------------------
def test_two_a_records_round_robin(pair, dnsmasq, lbproxy):
    a, b = pair
    d = dnsmasq(records=[("web.test", "127.0.0.2", 60), ("web.test", "127.0.0.3", 60)],
                local=["test"])
    assert sorted(ip for ip, _ in d.query("web.test")[1]) == ["127.0.0.2", "127.0.0.3"]
    lb = lbproxy(config(d.server, [("web.test", a.port)]))

    order = [served_by(get(lb, f"/rr/{i}")) for i in range(20)]
    assert order.count("a") == 10 and order.count("b") == 10, order
    assert all(x != y for x, y in zip(order, order[1:])), order  # strictly alternating
    for s in (a, b):
        assert {r.header("host")[0] for r in s.requests} == {f"web.test:{a.port}"}
    assert len(lb.wait_log("route=all", f"node=web.test:{a.port}", "address=127.0.0.2:",
                           count=10)) == 10
    assert len(lb.wait_log("route=all", f"node=web.test:{a.port}", "address=127.0.0.3:",
                           count=10)) == 10


# -- HTTPS to a name ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_https_keepalive_to_a_name_across_refreshes(pki, dnsmasq, lbproxy):
    """Many requests to an HTTPS node by name while the name is re-resolved every second (same
    answer): one upstream connection, one handshake, SNI and Host the name. (Resumption with
    keepalive_pool: 0 is test_tls_upstream.py's test_session_resumption.)"""
    a = TlsUpstreamServer("a", "127.0.0.2", pki.good).start()
    try:
        d = dnsmasq(records=[("httpbin.org", "127.0.0.2", 1)])
        lb = lbproxy(config(d.server, [("httpbin.org", a.port)], ttl_min="1s",
                            scheme="https", tls={"ca_file": str(pki.ca)})
                     | {"workers": 1})  # one event loop: one pool of idle connections
        t0 = time.monotonic()
        n = 0
        # Until lbproxy asked dnsmasq three times (two refreshes), bounded in count and time.
        while (d.queries("httpbin.org") < 3 or n < 20) and n < 500 and \
                time.monotonic() - t0 < 15:
            assert served_by(get(lb, f"/ka/{n}")) == "a"
            n += 1
            time.sleep(0.02)
        assert d.queries("httpbin.org") >= 3, d.log_text()[-2000:]
        assert len(a.requests) == n
        assert a.connections == 1, (a.connections, n)
        assert a.handshakes == 1, a.handshakes
        assert set(a.sni) == {"httpbin.org"}, a.sni
        assert {r.header("host")[0] for r in a.requests} == {f"httpbin.org:{a.port}"}
        assert not lb.log_lines("now resolves to")  # the same answer is no change
    finally:
        a.stop()
