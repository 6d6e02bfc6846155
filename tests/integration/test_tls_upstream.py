# SPDX-License-Identifier: MIT
"""HTTPS to upstreams: certificate and name verification (and what the log says when they
fail), SNI, the Host header, keep-alive over TLS, pooled connections kept apart by TLS policy
(across upstreams and across reloads), session resumption with TLS 1.2 and 1.3, and bodies
larger than a TLS record both ways."""

import hashlib
import os
import shutil
import signal
import socket
import ssl
import threading
import time
import warnings

import pytest

from lbtest import route_cfg, upstream_cfg
from tls_helpers import TlsUpstreamServer, make_pki
from upstream import pattern_sha256


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_upstream():
    servers = []

    def make(name, cert, host="127.0.0.2", **kw):
        s = TlsUpstreamServer(name, host, cert, **kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def https_upstream(name, servers, ca=None, sni=None, verify=None, **kw):
    d = upstream_cfg(name, servers, scheme="https", **kw)
    tls = {}
    if ca is not None:
        tls["ca_file"] = str(ca)
    if sni is not None:
        tls["sni"] = sni
    if verify is not None:
        tls["verify"] = verify
    if tls:
        d["tls"] = tls
    return d


def config(*upstreams, routes=None, **kw):
    d = {"access_log": True, "upstreams": list(upstreams),
         "routes": routes or [route_cfg("all", ["/*"], [upstreams[0]["name"]])]}
    d.update(kw)
    return d


def failure_line(lb, path):
    lines = lb.wait_log(f'"GET {path}" 502 ')
    assert lines, lb.log_text()[-3000:]
    return lines[-1]


# -- requests over TLS -----------------------------------------------------------------------
def test_https_host_header_and_sni(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.good, "127.0.0.2")
    b = tls_upstream("b", pki.good, "127.0.0.3")
    lb = lbproxy(config(
        https_upstream("httpbin", [a], ca=pki.ca, sni="httpbin.org", pass_host="rewrite",
                       upstream_host="httpbin.org"),
        https_upstream("mock", [b], ca=pki.ca, sni="mock.api7.ai", pass_host="node"),
        routes=[route_cfg("r-httpbin", ["/httpbin/*"], ["httpbin"]),
                route_cfg("r-mock", ["/mock/*"], ["mock"])]))

    r = lb.request("GET", "/httpbin/get", host_header="client.example")
    assert r.status == 200, r
    assert r.json()["host"] == "httpbin.org"
    assert r.json()["server"] == "a"
    r = lb.request("GET", "/mock/get", host_header="client.example")
    assert r.status == 200, r
    assert r.json()["host"] == f"127.0.0.3:{b.port}"
    assert r.json()["server"] == "b"

    assert a.sni == ["httpbin.org"] and b.sni == ["mock.api7.ai"]
    assert a.handshakes == 1 and b.handshakes == 1
    assert a.versions == ["TLSv1.3"]
    # Forwarded-proto says how the client came in, not how lbproxy went on.
    assert a.requests[0].header("x-forwarded-proto") == ["http"]


def test_ip_node_without_sni_verified_by_ip(pki, tls_upstream, lbproxy):
    """No tls.sni and an IP node: no SNI goes out, and the certificate must name the IP."""
    a = tls_upstream("a", pki.good, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, pass_host="pass")))
    r = lb.request("GET", "/ip", host_header="client.example")
    assert r.status == 200, r
    assert r.json()["host"] == "client.example"
    assert a.sni == [None]


def test_top_level_tls_defaults(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.good, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], sni="httpbin.org"),
                        tls={"ca_file": str(pki.ca)}))
    assert lb.request("GET", "/x").status == 200


# -- verification failures --------------------------------------------------------------------
def test_wrong_name_502_and_logged(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.wrong, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org")))
    r = lb.request("GET", "/wrong-name")
    assert r.status == 502, r
    line = failure_line(lb, "/wrong-name")
    assert "certificate verification failed for 'httpbin.org'" in line, line
    assert "The name in the certificate does not match the expected" in line, line
    assert a.requests == [] and a.handshakes == 0


def test_unknown_ca_502_and_logged(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.unknown, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org")))
    r = lb.request("GET", "/unknown-ca")
    assert r.status == 502, r
    line = failure_line(lb, "/unknown-ca")
    assert "certificate verification failed for 'httpbin.org'" in line, line
    assert "The certificate issuer is unknown" in line, line
    assert a.requests == []


def test_expired_502_and_logged(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.expired, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org")))
    r = lb.request("GET", "/expired")
    assert r.status == 502, r
    assert "The certificate chain uses expired certificate" in failure_line(lb, "/expired")


def test_system_trust_alone_refuses_test_ca(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.good, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], sni="httpbin.org")))
    assert lb.request("GET", "/no-ca-file").status == 502
    assert "issuer is unknown" in failure_line(lb, "/no-ca-file")


def test_failed_node_moves_on_to_the_next(pki, tls_upstream, lbproxy):
    """A refused certificate is a connect failure: the request goes to the other node."""
    bad = tls_upstream("bad", pki.unknown, "127.0.0.2")
    good = tls_upstream("good", pki.good, "127.0.0.3")
    lb = lbproxy(config(https_upstream("up", [bad, good], ca=pki.ca, sni="httpbin.org",
                                       retries=1)))
    for i in range(4):
        r = lb.request("GET", f"/next/{i}")
        assert r.status == 200, r
        assert r.json()["server"] == "good"
    assert bad.requests == []


@pytest.mark.parametrize("cert", ["unknown", "wrong"])
def test_verify_false_accepts_any_certificate(pki, tls_upstream, lbproxy, cert):
    a = tls_upstream("a", getattr(pki, cert), "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org",
                                       verify=False)))
    r = lb.request("GET", "/unverified")
    assert r.status == 200, r
    assert a.sni == ["httpbin.org"]


def test_plain_http_to_tls_port_fails_cleanly(pki, tls_upstream, lbproxy):
    """TLS spoken to a server that does not (here: answers garbage): a 502, not a hang."""
    srv = socket.socket()
    srv.bind(("127.0.0.2", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def answer():
        c, _ = srv.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        c.close()

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    lb = lbproxy(config(https_upstream("up", [("127.0.0.2", port)], ca=pki.ca,
                                       sni="httpbin.org")))
    r = lb.request("GET", "/not-tls")
    assert r.status == 502, r
    assert "TLS handshake failed" in failure_line(lb, "/not-tls")
    t.join(5)
    srv.close()


def test_silent_server_handshake_bounded_by_connect_timeout(pki, tls_upstream, lbproxy):
    """A server that takes the TCP connection but never answers the ClientHello: the connect
    timeout covers the handshake, and the next node gets the request."""
    silent = socket.socket()
    silent.bind(("127.0.0.2", 0))
    silent.listen(8)  # accepted by the kernel, never read
    good = tls_upstream("good", pki.good, "127.0.0.3")
    try:
        lb = lbproxy(config(https_upstream(
            "up", [("127.0.0.2", silent.getsockname()[1]), good], ca=pki.ca,
            sni="httpbin.org", retries=1, timeout={"connect": "1s", "send": "5s", "read": "5s"})))
        t0 = time.monotonic()
        statuses = [lb.request("GET", f"/stall/{i}", timeout=15).status for i in range(2)]
        took = time.monotonic() - t0
        assert statuses == [200, 200]
        assert 0.9 < took < 6, took  # one node timed out once, then was skipped or retried
        assert len(good.requests) == 2

        lb2 = lbproxy(config(https_upstream(
            "only", [("127.0.0.2", silent.getsockname()[1])], ca=pki.ca, sni="httpbin.org",
            timeout={"connect": "1s", "send": "5s", "read": "5s"})))
        t0 = time.monotonic()
        assert lb2.request("GET", "/stall-only", timeout=15).status == 504
        assert time.monotonic() - t0 < 5
    finally:
        silent.close()


# -- connections ------------------------------------------------------------------------------
def test_keepalive_reuses_tls_connections(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.good, "127.0.0.2")
    # One worker: idle connections are pooled per worker, and this counts one pool's reuse.
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org"), workers=1))
    with lb.client() as c:
        for i in range(30):
            c.request("GET", f"/ka/{i}", "client.example")
            r = c.read_response("GET")
            assert r.status == 200, r
    for i in range(10):
        assert lb.request("GET", f"/ka-new-client/{i}").status == 200
    assert len(a.requests) == 40
    assert a.connections == 1, a.connections
    assert a.handshakes == 1


def test_many_session_tickets_do_not_hold_the_response(pki, tls_upstream, lbproxy):
    """GnuTLS stops reading at every TLS 1.3 ticket, and lbproxy reads ahead of it: an OpenSSL
    server sending 60 tickets with each new connection still gets every response through in
    time. (Tickets and response in one write, which OpenSSL cannot be made to do, are in
    tests/unit/test-tls.c.)"""
    a = tls_upstream("a", pki.good, "127.0.0.2", num_tickets=60)
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org", keepalive_pool=0,
                                       timeout={"connect": "5s", "send": "5s", "read": "3s"})))
    for i in range(8):
        t0 = time.monotonic()
        r = lb.request("GET", f"/tickets/{i}", timeout=10)
        assert r.status == 200, r
        assert time.monotonic() - t0 < 2.5, f"request {i} waited for the read timeout"
    assert a.handshakes == 8


@pytest.mark.parametrize("permissive", ["trusting-ca", "verify-false"])
def test_pool_not_shared_across_trust_policies(pki, tls_upstream, lbproxy, permissive):
    """Two upstreams on one address and SNI, one trusting the server's certificate (or not
    verifying at all), one with a CA that does not: the connection the first pooled must not
    serve the second, whose own handshake fails verification."""
    a = tls_upstream("a", pki.good, "127.0.0.2")
    loose = (https_upstream("loose", [a], ca=pki.ca, sni="httpbin.org")
             if permissive == "trusting-ca" else
             https_upstream("loose", [a], ca=pki.unknown_ca, sni="httpbin.org", verify=False))
    strict = https_upstream("strict", [a], ca=pki.unknown_ca, sni="httpbin.org", retries=0)
    # One worker: one pool, so a connection the first request leaves is there for the second.
    lb = lbproxy(config(loose, strict, workers=1,
                        routes=[route_cfg("r-loose", ["/loose/*"], ["loose"]),
                                route_cfg("r-strict", ["/strict/*"], ["strict"])]))

    assert lb.request("GET", "/loose/1").status == 200
    assert a.connections == 1 and a.handshakes == 1
    r = lb.request("GET", "/strict/1")
    assert r.status == 502, r
    line = failure_line(lb, "/strict/1")
    assert "certificate verification failed for 'httpbin.org'" in line, line
    assert "The certificate issuer is unknown" in line, line
    assert a.connections == 2, a.connections  # a handshake of its own, not the pooled one
    assert a.paths() == ["/loose/1"]
    # The permissive upstream's connection is still pooled and still serves it.
    assert lb.request("GET", "/loose/2").status == 200
    assert a.connections == 2 and a.handshakes == 1
    assert [rec.conn_id for rec in a.requests] == [1, 1]


def test_session_not_resumed_across_trust_policies(pki, tls_upstream, lbproxy):
    """Resumption skips the certificate check: the session one upstream left is not offered
    by another on the same address and SNI under another trust, which must verify afresh."""
    a = tls_upstream("a", pki.good, "127.0.0.2")
    lb = lbproxy(config(
        https_upstream("loose", [a], ca=pki.ca, sni="httpbin.org", keepalive_pool=0),
        https_upstream("strict", [a], ca=pki.unknown_ca, sni="httpbin.org", keepalive_pool=0,
                       retries=0),
        routes=[route_cfg("r-loose", ["/loose/*"], ["loose"]),
                route_cfg("r-strict", ["/strict/*"], ["strict"])]))
    assert lb.request("GET", "/loose/1").status == 200
    assert lb.request("GET", "/strict/1").status == 502
    assert "The certificate issuer is unknown" in failure_line(lb, "/strict/1")
    # The ticket is still there for the upstream that earned it.
    assert lb.request("GET", "/loose/2").status == 200
    assert a.handshakes == 2 and a.resumed == 1, (a.handshakes, a.resumed, a.handshake_errors)
    assert a.paths() == ["/loose/1", "/loose/2"]


def test_reload_changing_trust_does_not_reuse_pooled_connections(pki, tls_upstream, lbproxy,
                                                                   tmp_path):
    """A reload that changes an upstream's ca_file (its path, or only what the file holds)
    starts over with fresh handshakes; a reload that leaves the TLS policy as it was, or brings
    an earlier one back, keeps using the pooled connection."""
    a = tls_upstream("a", pki.good, "127.0.0.2")
    ca = tmp_path / "ca.pem"
    shutil.copy(pki.ca, ca)
    reloads = 0

    def cfg(ca_file, read="60s"):
        return config(https_upstream("up", [a], ca=ca_file, sni="httpbin.org", retries=0,
                                     timeout={"connect": "5s", "send": "60s", "read": read}),
                      workers=1)

    def reload(new):
        nonlocal reloads
        lb.config_src = new
        lb.config_path.write_text(lb._render(lb.port))
        os.kill(lb.pid, signal.SIGHUP)
        reloads += 1
        assert lb.wait_log("Configuration reloaded", count=reloads), lb.log_text()[-2000:]

    lb = lbproxy(cfg(ca))
    assert lb.request("GET", "/first").status == 200
    # Something else changed: the same policy, so the pooled connection serves on.
    reload(cfg(ca, read="61s"))
    assert lb.request("GET", "/same-policy").status == 200
    assert a.connections == 1 and a.handshakes == 1

    # Another file, with an anchor that does not trust the server.
    reload(cfg(pki.unknown_ca))
    assert lb.request("GET", "/other-file").status == 502
    assert "The certificate issuer is unknown" in failure_line(lb, "/other-file")
    assert a.connections == 2

    # The first path again, but the file now holds the untrusting anchor.
    shutil.copy(pki.unknown_ca, ca)
    reload(cfg(ca))
    assert lb.request("GET", "/same-path-new-content").status == 502
    assert "The certificate issuer is unknown" in failure_line(lb, "/same-path-new-content")
    assert a.connections == 3

    # And back to what the first connection was made under: it is still pooled, and reused.
    shutil.copy(pki.ca, ca)
    reload(cfg(ca))
    assert lb.request("GET", "/back").status == 200
    assert a.connections == 3 and a.handshakes == 1
    assert a.paths() == ["/first", "/same-policy", "/back"]
    assert {rec.conn_id for rec in a.requests} == {1}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
def test_session_resumption(pki, tls_upstream, lbproxy, version):
    a = tls_upstream("a", pki.good, "127.0.0.2", max_version=version)
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org",
                                       keepalive_pool=0)))
    for i in range(4):
        r = lb.request("GET", f"/resume/{i}")
        assert r.status == 200, r
    assert a.connections == 4
    assert a.handshakes == 4
    assert set(a.versions) == {"TLSv1.3" if version == ssl.TLSVersion.TLSv1_3 else "TLSv1.2"}
    # The first handshake is full; every later one resumes the session the one before left.
    assert a.resumed == 3, (a.resumed, a.handshake_errors)


def test_tls_1_1_server_refused(pki, tls_upstream, lbproxy):
    """TLS 1.2 is the minimum: a server stuck below it fails the handshake."""
    a = tls_upstream("a", pki.good, "127.0.0.2", max_version=ssl.TLSVersion.TLSv1_1,
                     legacy=True)
    # The server does speak TLS 1.1: a client that allows it gets through.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    try:
        with socket.create_connection((a.host, a.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="httpbin.org") as s:
            assert s.version() == "TLSv1.1"
    except ssl.SSLError as e:
        pytest.skip(f"this OpenSSL cannot speak TLS 1.1 here: {e}")
    # The server thread counts the probe's handshake a moment after the client saw it: wait for
    # that (bounded) before resetting, or the count lands after the reset.
    deadline = time.monotonic() + 5
    while a.handshakes < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    a.reset()

    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org")))
    assert lb.request("GET", "/old").status == 502
    line = failure_line(lb, "/old")
    assert "TLS handshake failed" in line, line
    assert a.handshakes == 0 and a.requests == []


# -- bodies -----------------------------------------------------------------------------------
def test_large_bodies_both_ways(pki, tls_upstream, lbproxy):
    a = tls_upstream("a", pki.good, "127.0.0.2")
    lb = lbproxy(config(https_upstream("up", [a], ca=pki.ca, sni="httpbin.org")))
    n = 3 * 1024 * 1024 + 7
    with lb.client(timeout=60) as c:
        c.request("GET", f"/bytes/{n}", "client.example")
        r = c.read_response("GET")
        assert r.status == 200, r
        assert len(r.body) == n
        assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(n)

        c.request("GET", f"/chunked/{n}", "client.example")
        r = c.read_response("GET")
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == pattern_sha256(n)

        body = bytes(range(256)) * (8 * 1024 + 3)
        c.request("POST", "/upload", "client.example", body=body)
        r = c.read_response("POST")
        assert r.status == 200, r
        assert r.json()["body_len"] == len(body)
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert a.connections == 1
