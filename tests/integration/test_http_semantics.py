# SPDX-License-Identifier: MIT
"""lbproxy as an HTTP/1.1 intermediary (RFC 9110, RFC 9112), beside what nginx, HAProxy and
APISIX users expect: the answers to requests it cannot take (414, 505), the fields it sets for
the upstream, its own pages' Date, and a cut response that must not look whole."""

import email.utils
import threading
import time

import pytest

from lbtest import route_cfg, upstream_cfg
from test_errors import assert_refused, assert_short_text
from upstream import ThreadedServer


class ScriptedUpstream(ThreadedServer):
    """Answers each request head with `answer` (bytes), then closes: for responses the test
    upstream will not send (no Date, a chunked body cut short). Bounded: one thread per
    connection, 10 s socket timeouts."""

    def __init__(self, host="127.0.0.3"):
        self.answer = b""
        self.hold = 0.0  # seconds to keep the connection open after the answer
        self._stop = threading.Event()
        super().__init__(host)

    def _serve(self, c):
        with c:
            c.settimeout(10)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                c.sendall(self.answer)
                self._stop.wait(self.hold)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        super().stop()


@pytest.fixture
def scripted(upstream, lbproxy):
    """lbproxy with /raw/* going to a ScriptedUpstream (read timeout 1 s, no retries)."""
    raw = ScriptedUpstream()
    lb = lbproxy({"upstreams": [upstream_cfg("raw", [(raw.host, raw.port)], retries=0,
                                             timeout={"connect": "5s", "send": "5s",
                                                      "read": "1s"})],
                  "routes": [route_cfg("raw", ["/raw/*"], ["raw"])]})
    yield raw, lb
    raw.stop()


def read_until_end(sock, timeout=10.0):
    """What the server sent, and how it ended: "eof", "reset" (bounded by timeout)."""
    sock.settimeout(timeout)
    data = b""
    for _ in range(10000):
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not d:
            return data, "eof"
        data += d
    raise AssertionError("no end")


@pytest.fixture
def one(upstream, lbproxy):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("all", ["/*"], ["up"])],
                  "limits": {"max_header_bytes": 4096}})
    return u, lb


# -- requests lbproxy does not take --------------------------------------------------------
def test_request_line_over_the_limit_gets_414(one):
    """A request line that alone fills limits.max_header_bytes: 414 URI Too Long (as nginx),
    closed, nothing forwarded; a long header still gets 431."""
    u, lb = one
    assert_refused(lb, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)
    with lb.client() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n")
        assert c.read_response().status == 431
    assert lb.request("GET", "/barrier").status == 200
    assert u.paths() == ["/barrier"]


@pytest.mark.parametrize("raw", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                                 b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
                                 b"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
                                 b"GET /\r\n"],
                         ids=["h2-preface", "http-1.2", "http-3.0", "http-0.9"])
def test_unsupported_version_gets_505(one, raw):
    """RFC 9110 15.6.6: a version lbproxy does not speak is refused as such, not as 501."""
    u, lb = one
    assert_refused(lb, raw, 505)
    assert u.heads == []


def test_connect_gets_501_and_is_closed(one):
    """CONNECT is a forward proxy's method: 501 (RFC 9110 9.1), closed, since what follows is
    tunnel data; nothing forwarded, though a catch-all route exists."""
    u, lb = one
    r = assert_refused(lb, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"
                           b"GET /tunnelled HTTP/1.1\r\nHost: a\r\n\r\n", 501)
    assert "CONNECT" in r.body.decode()
    assert lb.request("GET", "/barrier").status == 200
    assert u.paths() == ["/barrier"]

def test_absolute_form_authority_is_the_host(upstream, lbproxy):
    """RFC 9112 3.2.2: with an absolute-form target the host is the target's authority, not
    the Host field: the route is matched on it, and the upstream gets it as Host (a proxy
    "MUST generate a new Host field value based on the received request-target"), so the two
    cannot read the request differently."""
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.4")
    lb = lbproxy({"upstreams": [upstream_cfg("up_a", [a]), upstream_cfg("up_b", [b])],
                  "routes": [route_cfg("ra", ["/*"], ["up_a"], hosts=["a.example"]),
                             route_cfg("rb", ["/*"], ["up_b"], hosts=["b.example"])]})
    with lb.client() as c:
        c.send(b"GET http://b.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        c.send(b"GET /z HTTP/1.1\r\nHost: a.example\r\n\r\n")
        assert c.read_response().status == 200
    assert a.paths() == ["/z"]
    (rec,) = b.requests
    assert rec.target == "/x?y=1"
    assert rec.header("host") == ["b.example"], rec.headers
    assert rec.header("x-forwarded-host") == ["b.example"]

# -- fields lbproxy sets for the upstream --------------------------------------------------
def test_real_ip_and_forwarded_host_set_as_apisix_does(one):
    """X-Real-IP is the client's address, X-Forwarded-Host the Host it asked for and
    X-Forwarded-Port the port it reached (APISIX's defaults); a client's own values are
    replaced, never passed on, so they cannot be forged; X-Forwarded-For is appended to."""
    u, lb = one
    hs = [("X-Real-IP", "6.6.6.6"), ("X-Forwarded-Host", "evil.example"),
          ("X-Forwarded-Port", "1"), ("X-Forwarded-For", "192.0.2.1")]
    assert lb.request("GET", "/h", host_header="shop.example:8080", headers=hs,
                      source="127.0.0.9").status == 200
    assert lb.request("GET", "/h2", host_header="a.example", source="127.0.0.9").status == 200
    first, second = u.requests
    assert first.header("x-real-ip") == ["127.0.0.9"], first.headers
    assert first.header("x-forwarded-host") == ["shop.example:8080"], first.headers
    assert first.header("x-forwarded-for") == ["192.0.2.1, 127.0.0.9"]
    assert first.header("x-forwarded-port") == [str(lb.port)], first.headers
    assert second.header("x-real-ip") == ["127.0.0.9"]
    assert second.header("x-forwarded-port") == [str(lb.port)]
    assert second.header("x-forwarded-host") == ["a.example"]


# -- lbproxy's own answers -----------------------------------------------------------------
def assert_date_now(r):
    """One Date field, an IMF-fixdate (RFC 9110 5.6.7) within a few seconds of now."""
    (date,) = r.header("date")
    assert date.endswith(" GMT") and len(date) == 29, date
    when = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(when - time.time()) < 5, date


def test_status_pages_carry_date(upstream, lbproxy):
    """RFC 9110 6.6.1: lbproxy is the origin of its status pages, and an origin with a clock
    sends Date; the body stays one text/plain line."""
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("api", ["/api/*"], ["up"])]})
    r = lb.request("GET", "/nothing")
    assert r.status == 404, r
    assert_date_now(r)
    assert_short_text(r)
    with lb.client() as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400
        r = c.read_response()
        assert r.status == 400, r
        assert_date_now(r)


def test_forwarded_response_without_date_gets_one(scripted):
    """RFC 9110 6.6.1: a response forwarded without Date gets the time it came; the upstream's
    own Date is passed on as it is, once."""
    raw, lb = scripted
    raw.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == b"ok", r
    assert_date_now(r)
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    raw.answer = (b"HTTP/1.1 200 OK\r\nDate: " + old.encode()
                  + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
    assert r.header("date") == [old], r

def test_status_page_to_http10_keep_alive_client_says_keep_alive(upstream, lbproxy):
    """An HTTP/1.0 client that asked to keep its connection is told it is kept (else it
    takes the close for granted), and its next request is served on it."""
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("api", ["/api/*"], ["up"])]})
    with lb.client() as c:
        c.send(b"GET /nothing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 404, r
        assert r.header("connection") == ["keep-alive"], r
        c.send(b"GET /api/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("connection") == ["keep-alive"], r
    with lb.client() as c:
        c.send(b"GET /nothing HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 404 and r.header("connection") == ["close"], r
        assert c.is_closed()


# -- a response cut short ------------------------------------------------------------------
CUT_CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n")


def test_cut_chunked_answer_to_http10_client_is_a_reset(scripted):
    """An HTTP/1.0 client gets a chunked answer decoded, delimited by the close: when the
    upstream stops mid-body, a FIN would make the cut body look whole, so it gets a reset."""
    raw, lb = scripted
    raw.answer = CUT_CHUNKED
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.0\r\n\r\n")
        data, end = read_until_end(c.sock)
    assert data.startswith(b"HTTP/1.0 200 OK\r\n"), data
    assert end == "reset", data


def test_cut_chunked_answer_to_http11_client_lacks_its_last_chunk(scripted):
    """An HTTP/1.1 client sees the cut by the chunked coding itself: no last chunk."""
    raw, lb = scripted
    raw.answer = CUT_CHUNKED
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.1\r\nHost: a\r\n\r\n")
        data, end = read_until_end(c.sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"5\r\nhello\r\n" in data, data
    assert not data.endswith(b"0\r\n\r\n"), data


def test_close_delimited_answer_stalled_past_read_timeout_is_a_reset(scripted):
    """An answer without a length ends at the close; one the upstream leaves unfinished past
    its read timeout must not end with a FIN either."""
    raw, lb = scripted
    raw.answer = b"HTTP/1.1 200 OK\r\n\r\npart of it"
    raw.hold = 5.0
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.1\r\nHost: a\r\n\r\n")
        data, end = read_until_end(c.sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert end == "reset", data


def test_close_delimited_answer_ended_by_upstream_is_whole(scripted):
    """The upstream's close is the end of such an answer: a FIN, the body whole."""
    raw, lb = scripted
    raw.answer = b"HTTP/1.1 200 OK\r\n\r\nall of it"
    with lb.client() as c:
        c.send(b"GET /raw/a HTTP/1.0\r\n\r\n")
        data, end = read_until_end(c.sock)
    assert data.endswith(b"\r\n\r\nall of it") and end == "eof", data
