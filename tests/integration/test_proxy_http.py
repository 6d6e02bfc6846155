# SPDX-License-Identifier: MIT
"""Proxying HTTP/1.1: forwarded headers, hop-by-hop removal, pass_host, keep-alive on both
sides, pipelining, request and response bodies."""

import hashlib
import os
import socket

import pytest

from lbtest import Client, build_request, route_cfg, upstream_cfg
from upstream import UpstreamServer, pattern_sha256

HOP_BY_HOP = ("connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection",
              "transfer-encoding")


@pytest.fixture
def one(upstream, lbproxy):
    """One upstream `u` (127.0.0.2) behind a catch-all route; returns (upstream, lbproxy)."""
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    return u, lb


# -- request line and headers --------------------------------------------------------------
def test_method_target_and_body_forwarded(one):
    u, lb = one
    r = lb.request("PATCH", "/a/b%20c?x=1&y=%2F", body=b"hello")
    assert r.status == 200, r
    (rec,) = u.requests
    assert rec.method == "PATCH"
    assert rec.target == "/a/b%20c?x=1&y=%2F"
    assert rec.body_len == 5
    assert rec.body_sha256 == hashlib.sha256(b"hello").hexdigest()


def test_end_to_end_headers_kept_in_order(one):
    u, lb = one
    hs = [("X-One", "1"), ("X-Two", "a, b"), ("X-One", "again"), ("Accept", "*/*")]
    assert lb.request("GET", "/h", headers=hs).status == 200
    (rec,) = u.requests
    assert rec.header("x-one") == ["1", "again"]
    assert rec.header("x-two") == ["a, b"]
    assert rec.header("accept") == ["*/*"]


def test_forwarded_headers_added(one):
    u, lb = one
    assert lb.request("GET", "/h", source="127.0.0.9").status == 200
    (rec,) = u.requests
    assert rec.header("x-forwarded-for") == ["127.0.0.9"]
    assert rec.header("x-forwarded-proto") == ["http"]
    assert [v.strip() for v in ",".join(rec.header("via")).split(",")] == ["1.1 lbproxy"]


def test_forwarded_for_and_via_are_appended(one):
    u, lb = one
    hs = [("X-Forwarded-For", "192.0.2.1, 198.51.100.2"), ("Via", "1.0 fred")]
    assert lb.request("GET", "/h", headers=hs, source="127.0.0.9").status == 200
    (rec,) = u.requests
    xff = [v.strip() for v in ",".join(rec.header("x-forwarded-for")).split(",")]
    assert xff == ["192.0.2.1", "198.51.100.2", "127.0.0.9"]
    via = [v.strip() for v in ",".join(rec.header("via")).split(",")]
    assert via == ["1.0 fred", "1.1 lbproxy"]
    assert rec.header("x-forwarded-proto") == ["http"]


def test_hop_by_hop_request_headers_removed(one):
    u, lb = one
    hs = [("Connection", "keep-alive, X-Client-Hop"), ("X-Client-Hop", "client-hop-secret"),
          ("Keep-Alive", "timeout=99"), ("TE", "trailers"), ("Trailer", "X-Client-Trailer"),
          ("Upgrade", "client-upgrade/1"), ("Proxy-Connection", "keep-alive"),
          ("X-End", "kept")]
    r = lb.request("GET", "/h", headers=hs)
    assert r.status == 200, r
    (rec,) = u.requests
    names = {k.lower() for k, _ in rec.headers}
    for h in ("keep-alive", "te", "trailer", "upgrade", "proxy-connection", "x-client-hop"):
        assert h not in names, rec.headers
    # lbproxy may speak its own Connection header to the upstream, never the client's tokens.
    for v in rec.header("connection"):
        assert "x-client-hop" not in v.lower(), rec.headers
    values = " ".join(v for _, v in rec.headers)
    assert "client-hop-secret" not in values and "timeout=99" not in values
    assert "client-upgrade/1" not in values
    assert rec.header("x-end") == ["kept"]


def test_hop_by_hop_response_headers_removed(one):
    u, lb = one
    r = lb.request("GET", "/hop")
    assert r.status == 200, r
    names = {k.lower() for k, _ in r.headers}
    for h in ("x-hop-secret", "proxy-connection", "trailer", "upgrade"):
        assert h not in names, r.headers
    values = " ".join(v for _, v in r.headers)
    for secret in ("upstream-hop-secret", "timeout=77", "upstream-proxy-connection",
                   "X-Upstream-Trailer", "upstream-upgrade/1"):
        assert secret not in values, r.headers
    for v in r.header("connection"):
        assert "x-hop-secret" not in v.lower()
    assert r.header("x-end-to-end") == ["kept"]
    assert r.json()["server"] == "u"


def test_response_headers_passed_through(one):
    u, lb = one
    r = lb.request("GET", "/h?h=Set-Cookie:a=1&h=Set-Cookie:b=2&h=X-Resp:yes")
    assert r.status == 200
    assert r.header("set-cookie") == ["a=1", "b=2"]
    assert r.header("x-resp") == ["yes"]


@pytest.mark.parametrize("code", [201, 301, 404, 418, 500, 503])
def test_status_passed_through(one, code):
    u, lb = one
    r = lb.request("GET", f"/status/{code}")
    assert r.status == code
    assert r.json()["server"] == "u"


# -- pass_host -----------------------------------------------------------------------------
def host_seen(upstream, lbproxy, client_host, server=None, **kw):
    u = server or upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u], **kw)],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    r = lb.request("GET", "/h", host_header=client_host)
    assert r.status == 200, r
    (rec,) = u.requests
    assert len(rec.header("host")) == 1, rec.headers
    return u, rec.header("host")[0]


def test_pass_host_pass(upstream, lbproxy):
    u, host = host_seen(upstream, lbproxy, "client.example:8123", pass_host="pass")
    assert host == "client.example:8123"


def test_pass_host_node(upstream, lbproxy):
    u, host = host_seen(upstream, lbproxy, "client.example", pass_host="node")
    assert host == f"127.0.0.2:{u.port}"


def test_pass_host_node_omits_default_port(upstream, lbproxy):
    try:
        srv = upstream("u80", "127.0.0.2", 80)
    except OSError as e:
        pytest.skip(f"cannot listen on 127.0.0.2:80 for this test: {e}")
    u, host = host_seen(upstream, lbproxy, "client.example", server=srv, pass_host="node")
    assert host == "127.0.0.2"


def test_pass_host_rewrite(upstream, lbproxy):
    u, host = host_seen(upstream, lbproxy, "client.example", pass_host="rewrite",
                        upstream_host="rewritten.example")
    assert host == "rewritten.example"


# -- keep-alive ----------------------------------------------------------------------------
def test_client_keepalive_many_requests_one_connection(one):
    u, lb = one
    with lb.client() as c:
        for i in range(20):
            c.request("GET", f"/k{i}")
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/k{i}"
    assert u.paths() == [f"/k{i}" for i in range(20)]


def test_upstream_keepalive_pool_reuses_connections(upstream, lbproxy):
    # One worker: pools are per worker, and a new client connection may land on any of them.
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"workers": 1, "upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    for i in range(30):
        assert lb.request("GET", f"/p{i}").status == 200
    assert len(u.requests) == 30
    assert u.connections == 1, f"{u.connections} upstream connections for 30 requests"


def test_http10_client_connection_closed_after_response(one):
    u, lb = one
    with lb.client() as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: example.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["path"] == "/old"
        if not r.header("content-length") and not r.header("transfer-encoding"):
            return  # body delimited by close: read_response already saw the close
        assert not r.header("transfer-encoding"), "chunked answer to an HTTP/1.0 client"
        assert c.is_closed(5)


def test_connection_close_from_client(one):
    u, lb = one
    with lb.client() as c:
        c.request("GET", "/bye", headers=[("Connection", "close")])
        r = c.read_response()
        assert r.status == 200
        assert c.is_closed(5)


def test_head_then_get_on_same_connection(one):
    u, lb = one
    with lb.client() as c:
        c.request("HEAD", "/bytes/1000")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        c.request("GET", "/bytes/10")
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 10


@pytest.mark.parametrize("code", [204, 304])
def test_bodiless_status_then_next_request(one, code):
    u, lb = one
    with lb.client() as c:
        c.request("GET", f"/status/{code}")
        r = c.read_response()
        assert r.status == code and r.body == b""
        c.request("GET", "/after")
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/after"


# -- pipelining ----------------------------------------------------------------------------
def test_pipelined_requests_answered_in_order(one):
    u, lb = one
    reqs = b"".join([
        build_request("GET", "/p1"),
        build_request("POST", "/p2", body=b"x" * 1000),
        build_request("GET", "/p3"),
        build_request("PUT", "/p4", headers=[("Transfer-Encoding", "chunked")],
                      body=b"3\r\nabc\r\n0\r\n\r\n"),
        build_request("GET", "/p5"),
    ])
    with lb.client() as c:
        c.send(reqs)
        got = [c.read_response().json() for _ in range(5)]
    assert [g["path"] for g in got] == ["/p1", "/p2", "/p3", "/p4", "/p5"]
    assert got[1]["body_len"] == 1000
    assert got[3]["body_len"] == 3
    assert got[3]["body_sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_pipelined_slow_first_answer_stays_first(upstream, lbproxy):
    a = upstream("a", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [a])],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    with lb.client() as c:
        c.send(build_request("GET", "/delay/0.5") + build_request("GET", "/fast"))
        assert c.read_response().json()["path"] == "/delay/0.5"
        assert c.read_response().json()["path"] == "/fast"


# -- bodies --------------------------------------------------------------------------------
def test_request_body_content_length(one):
    u, lb = one
    body = os.urandom(1_000_000)
    r = lb.request("POST", "/upload", body=body)
    assert r.status == 200
    assert r.json()["body_len"] == len(body)
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_request_body_chunked_with_extensions_and_trailers(one):
    u, lb = one
    pieces = [os.urandom(n) for n in (1, 10, 4096, 70000, 3)]
    raw = b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in pieces)
    raw += b"0\r\nX-Trailer: t\r\n\r\n"
    with lb.client() as c:
        c.send(build_request("POST", "/chunky", headers=[("Transfer-Encoding", "chunked")])
               + raw)
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == sum(map(len, pieces))
        assert r.json()["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
        c.request("GET", "/next")  # the connection is still in sync
        assert c.read_response().json()["path"] == "/next"


def test_request_body_chunked_in_small_writes(one):
    u, lb = one
    body = os.urandom(50_000)
    with lb.client() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(build_request("POST", "/slow", headers=[("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 5000):
            piece = body[i:i + 5000]
            c.send(b"%x\r\n" % len(piece))
            c.send(piece)
            c.send(b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_empty_body_with_content_length_zero(one):
    u, lb = one
    r = lb.request("POST", "/empty", body=b"")
    assert r.status == 200 and r.json()["body_len"] == 0


@pytest.mark.parametrize("kind", ["bytes", "chunked", "close"])
def test_response_bodies(one, kind):
    u, lb = one
    n = 3_000_001
    with lb.client() as c:
        c.request("GET", f"/{kind}/{n}")
        h = hashlib.sha256()
        size = [0]

        def sink(p):
            h.update(p)
            size[0] += len(p)

        r = c.read_response(sink=sink)
    assert r.status == 200
    assert size[0] == n
    assert h.hexdigest() == pattern_sha256(n)


def test_expect_100_continue(one):
    u, lb = one
    body = b"z" * 5000
    with lb.client() as c:
        c.send(build_request("POST", "/expect", headers=[("Expect", "100-continue"),
                                                          ("Content-Length", str(len(body)))]))
        first = c.read_response(interim=True)
        assert first.status == 100, first
        c.send(body)
        r = c.read_response()
    assert r.status == 200 and r.json()["body_len"] == len(body)


def test_many_headers_within_limits(one):
    u, lb = one
    hs = [(f"X-H{i}", "v" * 100) for i in range(60)]
    r = lb.request("GET", "/many", headers=hs)
    assert r.status == 200
    (rec,) = u.requests
    assert all(rec.header(f"x-h{i}") == ["v" * 100] for i in range(60))


def test_head_over_the_limits_gets_431_and_is_not_forwarded(upstream, lbproxy):
    """limits.max_header_bytes and limits.max_headers: 431, the connection closed, nothing
    forwarded; a head just within both passes."""
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("all", ["/*"], ["up"])],
                  "limits": {"max_header_bytes": 4096, "max_headers": 20}})
    within = [(f"X-H{i}", "v") for i in range(18)]
    assert lb.request("GET", "/ok", headers=within).status == 200
    cases = {"size": [("X-Big", "v" * 5000)],
             "count": [(f"X-H{i}", "v") for i in range(30)]}
    for what, hs in cases.items():
        with lb.client() as c:
            c.send(f"GET /{what} HTTP/1.1\r\nHost: t\r\n".encode()
                   + b"".join(f"{k}: {v}\r\n".encode() for k, v in hs) + b"\r\n")
            r = c.read_response()
            assert r.status == 431, (what, r)
            assert r.header("connection") == ["close"], r
            assert c.is_closed()
    assert u.paths() == ["/ok"]


def test_curl_through_proxy(one):
    """A real client: curl, with its keep-alive over several URLs."""
    from lbtest import curl
    u, lb = one
    p = curl("-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
             f"{lb.url}/c1", f"{lb.url}/c2", f"{lb.url}/c3", timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [b"200", b"200", b"200"]
    assert u.paths() == ["/c1", "/c2", "/c3"]


# -- more framing and ordering -------------------------------------------------------------
def test_absolute_form_target_routed_by_path(one):
    """RFC 9112 3.2.2: a server accepts the absolute-form; the upstream gets the origin-form."""
    u, lb = one
    with lb.client() as c:
        c.send(b"GET http://a.example/abs?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    (rec,) = u.requests
    assert rec.target == "/abs?x=1"


def test_pipelined_local_error_keeps_order(upstream, lbproxy):
    """A 404 lbproxy answers itself must wait for the slower upstream answer before it."""
    u = upstream("u")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("api", ["/api/*"], ["up"])]})
    with lb.client() as c:
        c.send(build_request("GET", "/api/delay/0.5") + build_request("GET", "/nothing")
               + build_request("GET", "/api/last"))
        first, second, third = (c.read_response() for _ in range(3))
    assert first.status == 200 and first.json()["path"] == "/api/delay/0.5"
    assert second.status == 404
    assert third.status == 200 and third.json()["path"] == "/api/last"


def test_pipelined_requests_after_connection_close_are_not_served(one):
    u, lb = one
    with lb.client() as c:
        c.send(build_request("GET", "/first", headers=[("Connection", "close")])
               + build_request("GET", "/second"))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/first"
        assert c.is_closed(5)
    assert lb.request("GET", "/barrier").status == 200
    assert u.paths() == ["/first", "/barrier"]


def test_response_streamed_not_stored(one):
    """/_drip/N takes about a second upstream: the client has the head and first bytes long
    before the upstream finished."""
    import time
    u, lb = one
    with lb.client() as c:
        t0 = time.monotonic()
        c.request("GET", "/_drip/100000")
        status, _, _, headers, _ = c.read_head()
        first = c.buf or c.sock.recv(65536)
        t_first = time.monotonic() - t0
        assert status == 200 and first
        got = len(first)
        while got < 100000:
            d = c.sock.recv(65536)
            assert d
            got += len(d)
        t_all = time.monotonic() - t0
    assert t_first < 0.5, f"first body bytes after {t_first:.2f}s (whole body {t_all:.2f}s)"
    assert t_all > 0.7


def test_request_head_forwarded_before_body_complete(one):
    """A request body is streamed: the upstream has the head while the client still sends."""
    u, lb = one
    with lb.client() as c:
        c.send(build_request("POST", "/streaming", headers=[("Content-Length", "200000")]))
        c.send(b"a" * 50000)
        u.wait_heads(1, timeout=5)
        assert u.requests == []
        c.send(b"a" * 150000)
        r = c.read_response()
    assert r.status == 200 and r.json()["body_len"] == 200000


def test_stale_pooled_connection_is_not_an_error(one):
    """The upstream closes its idle keep-alive connections; the next requests still succeed."""
    u, lb = one
    for round_ in range(3):
        for i in range(3):
            r = lb.request("GET", f"/r{round_}-{i}")
            assert r.status == 200, r
        u.drop_connections()
    assert lb.request("GET", "/final").status == 200


def test_client_gone_mid_request_then_service_continues(one):
    u, lb = one
    for i in range(5):
        c = lb.client()
        c.request("GET", "/delay/0.3")
        c.close()
    c = lb.client()
    c.send(build_request("POST", "/partial", headers=[("Content-Length", "100000")])
           + b"x" * 1000)
    c.close()
    for i in range(5):
        assert lb.request("GET", f"/after{i}").status == 200


def test_concurrent_clients(one):
    """100 clients at once, 5 keep-alive requests each: every answer right and in order."""
    import concurrent.futures
    u, lb = one

    def client(k):
        with lb.client(timeout=20) as c:
            for i in range(5):
                c.request("GET", f"/c{k}/{i}")
                r = c.read_response()
                assert r.status == 200 and r.json()["path"] == f"/c{k}/{i}", r
        return k

    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as ex:
        done = list(ex.map(client, range(100), timeout=60))
    assert done == list(range(100))
    assert len(u.requests) == 500


def test_ipv6_listener_and_upstream(upstream, lbproxy):
    u6 = upstream("six", "::1")
    lb = lbproxy({"upstreams": [upstream_cfg("up6", [u6], pass_host="node")],
                  "routes": [route_cfg("all", ["/*"], ["up6"])]}, listen_host="::1")
    r = lb.request("GET", "/v6")
    assert r.status == 200, r
    (rec,) = u6.requests
    assert rec.header("host") == [f"[::1]:{u6.port}"]
    assert [v.strip() for v in rec.header("x-forwarded-for")[0].split(",")] == ["::1"]


def test_client_forwarded_proto_is_replaced(one):
    u, lb = one
    assert lb.request("GET", "/p", headers=[("X-Forwarded-Proto", "https")]).status == 200
    (rec,) = u.requests
    assert rec.header("x-forwarded-proto") == ["http"]


@pytest.mark.parametrize("path", ["/bytes/1000", "/chunked/1000", "/status/404"])
def test_head_requests_have_no_body(one, path):
    u, lb = one
    with lb.client() as c:
        for _ in range(2):
            c.request("HEAD", path)
            r = c.read_response("HEAD")
            assert r.body == b""
        c.request("GET", "/after-head")
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/after-head", r


def test_304_with_content_length_has_no_body(one):
    u, lb = one
    with lb.client() as c:
        c.request("GET", "/status/304?h=Content-Length:50&h=ETag:x")
        r = c.read_response()
        assert r.status == 304 and r.body == b""
        c.request("GET", "/after")
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/after"


def test_http10_client_gets_no_chunked_response(one):
    """An HTTP/1.0 client cannot read chunked coding: lbproxy must decode the upstream's chunked
    body and close-delimit it (or send Content-Length). (A bug this test found: the framing used
    to go through as body bytes.)"""
    u, lb = one
    with lb.client() as c:
        c.send(b"GET /chunked/100000 HTTP/1.0\r\nHost: example.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.header("transfer-encoding") == [], r
        assert len(r.body) == 100000
        assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(100000)


def test_many_pipelined_requests(one):
    u, lb = one
    n = 200
    with lb.client(timeout=20) as c:
        c.send(b"".join(build_request("GET", f"/pp{i}") for i in range(n)))
        paths = [c.read_response().json()["path"] for _ in range(n)]
    assert paths == [f"/pp{i}" for i in range(n)]


def test_content_length_with_leading_zeros(one):
    u, lb = one
    with lb.client() as c:
        c.send(b"POST /lz HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello")
        r = c.read_response()
    assert r.status == 200 and r.json()["body_len"] == 5


def test_long_url_within_limits(one):
    u, lb = one
    path = "/long/" + "x" * 16000
    r = lb.request("GET", path)
    assert r.status == 200
    assert u.requests[0].target == path


def test_keepalive_pool_zero_opens_a_connection_per_request(upstream, lbproxy):
    u = upstream("u")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u], keepalive_pool=0)],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    for i in range(10):
        assert lb.request("GET", f"/n{i}").status == 200
    assert u.connections == 10


def test_upstream_connection_close_not_reused(one):
    u, lb = one
    for i in range(3):
        r = lb.request("GET", f"/c{i}?close=1")
        assert r.status == 200, r
    assert u.connections == 3
    assert [r.conn_id for r in u.requests] == [1, 2, 3]


def test_many_one_byte_chunks(one):
    u, lb = one
    n = 10000
    raw = b"1\r\nx\r\n" * n + b"0\r\n\r\n"
    with lb.client(timeout=20) as c:
        c.send(build_request("POST", "/tiny", headers=[("Transfer-Encoding", "chunked")]) + raw)
        r = c.read_response()
    assert r.status == 200 and r.json()["body_len"] == n
    assert r.json()["body_sha256"] == hashlib.sha256(b"x" * n).hexdigest()


def test_obs_text_header_value_passes(one):
    u, lb = one
    with lb.client() as c:
        c.send(b"GET /o HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n")
        assert c.read_response().status == 200
    (rec,) = u.requests
    assert rec.header("x-latin") == ["caf\xe9"]


def test_two_listeners(upstream, lbproxy):
    from lbtest import free_port, request
    u = upstream("u")
    p2 = free_port("127.0.0.1")
    lb = lbproxy(f"""
listeners:
  - {{name: one, listen: "@LISTEN@"}}
  - {{name: two, listen: "127.0.0.1:{p2}"}}
upstreams:
  - {{name: up, nodes: [{{host: {u.host}, port: {u.port}, weight: 1}}]}}
routes:
  - {{name: r, paths: ["/*"], upstreams: [{{name: up, weight: 1}}]}}
""")
    assert lb.request("GET", "/via-one").status == 200
    assert request("127.0.0.1", p2, "GET", "/via-two").status == 200
    assert u.paths() == ["/via-one", "/via-two"]
