# SPDX-License-Identifier: MIT
"""Runtime state outlives models: the counters, requests in flight and health of nodes,
upstreams and routes stay exact through D-Bus changes and reloads made while clients send
requests, and an upstream the change did not touch keeps its pooled connections and TLS sessions
(incremental models)."""

import collections
import os
import shlex
import signal
import threading
import time

import pytest

from lbtest import route_cfg, upstream_cfg
from tls_helpers import TlsUpstreamServer, make_pki

UP_PATH = "/org/lbproxy1/upstream/"


def prop(bus, upstream, name):
    """A property of an org.lbproxy1.Upstream, as busctl prints it, split into words."""
    out = bus.busctl("get-property", "org.lbproxy1", UP_PATH + upstream.replace("_", "_5f"),
                     "org.lbproxy1.Upstream", name).stdout
    return shlex.split(out)


def node_requests(bus, upstream):
    """NodeRequests as {(host, port): count}."""
    w = prop(bus, upstream, "NodeRequests")
    assert w[0] == "a(sqt)", w
    n = int(w[1])
    return {(w[2 + 3 * i], int(w[3 + 3 * i])): int(w[4 + 3 * i]) for i in range(n)}


def active(bus, upstream):
    w = prop(bus, upstream, "ActiveConnections")
    assert w[0] == "u", w
    return int(w[1])


def served(bus, upstream):
    w = prop(bus, upstream, "RequestsServed")
    assert w[0] == "t", w
    return int(w[1])


def wait_for(what, want, timeout=10.0):
    """Polls what() until it equals want (a count may lag the answer by the moment between
    the response's last byte and the worker counting it); returns the last value."""
    deadline = time.monotonic() + timeout
    got = what()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = what()
    return got


class Reloader:
    """SIGHUP with the files unchanged, waiting for each to be done."""

    def __init__(self, lb):
        self.lb = lb
        self.n = 0

    def __call__(self):
        os.kill(self.lb.pid, signal.SIGHUP)
        self.n += 1
        assert self.lb.wait_log("Configuration reloaded", count=self.n, timeout=30), \
            self.lb.log_text()[-2000:]


def test_counts_exact_through_200_changes_and_20_reloads(lbproxy, bus, upstream, tmp_path):
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")
    c, x = upstream("c", "127.0.0.4"), upstream("x", "127.0.0.5")
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy({
        "upstreams": [upstream_cfg("up_a", [a, b]), upstream_cfg("up_b", [c])],
        "routes": [route_cfg("r1", ["/headers"], ["up_a", "up_b"])],
    }, args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()

    stop = threading.Event()
    answers = collections.Counter()  # server name -> answers the clients received from it
    lock = threading.Lock()
    errors = []
    samples = []

    def client():
        mine = collections.Counter()
        deadline = time.monotonic() + 240
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                with lb.client() as conn:
                    for _ in range(20):
                        conn.request("GET", "/headers")
                        r = conn.read_response()
                        if r.status != 200:
                            errors.append(r.status)
                            continue
                        mine[r.json()["server"]] += 1
        except Exception as e:  # noqa: BLE001 - any failure is a lost answer
            errors.append(repr(e))
        with lock:
            answers.update(mine)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    reload = Reloader(lb)
    changes = 0
    try:
        for i in range(40):
            # Five changes, of other nodes and routes than the ones counted, and of a weight.
            bus.call("AddNode", "ssqu", "up_a", x.host, x.port, 1)
            bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 1 + i % 4)
            bus.call("AddRoute", "sasa(su)a{sv}", "other", 1, "/other/*", 1, "up_b", 1, 0)
            bus.call("RemoveRoute", "s", "other")
            bus.call("RemoveNode", "ssq", "up_a", x.host, x.port)
            changes += 5
            samples.append((active(bus, "up_a"), active(bus, "up_b")))
            if i % 2 == 1:
                reload()
    finally:
        stop.set()
        for t in clients:
            t.join(60)
    assert changes == 200 and reload.n == 20
    assert not errors, errors[:5]
    assert answers["a"] > 0 and answers["b"] > 0 and answers["c"] > 0, answers

    # Requests in flight: at most the four clients' at any time, never an underflow.
    assert all(0 <= s <= 4 for pair in samples for s in pair), samples
    assert wait_for(lambda: (active(bus, "up_a"), active(bus, "up_b")), (0, 0)) == (0, 0)

    # Every answer counted on the node that gave it, whichever model it started on.
    want_a = {(a.host, a.port): answers["a"], (b.host, b.port): answers["b"]}
    assert wait_for(lambda: node_requests(bus, "up_a"), want_a) == want_a, answers
    want_b = {(c.host, c.port): answers["c"]}
    assert wait_for(lambda: node_requests(bus, "up_b"), want_b) == want_b, answers
    # The upstream's count has the answers of the node that came and went too.
    want = answers["a"] + answers["b"] + answers["x"]
    assert wait_for(lambda: served(bus, "up_a"), want) == want, answers
    assert served(bus, "up_b") == answers["c"]
    assert answers["x"] == len(x.requests)


def test_active_connections_held_across_a_change_and_a_reload(lbproxy, bus, upstream,
                                                              tmp_path):
    """ActiveConnections counts the requests a slow node holds open, and goes on counting them
    after a D-Bus change and a reload swapped the model under them."""
    slow, other = upstream("slow", "127.0.0.2"), upstream("other", "127.0.0.3")
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy({
        "upstreams": [upstream_cfg("up_slow", [slow]), upstream_cfg("up_other", [other])],
        "routes": [route_cfg("slow", ["/delay/*"], ["up_slow"]),
                   route_cfg("other", ["/headers"], ["up_other"])],
    }, args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()
    assert active(bus, "up_slow") == 0

    held = 3
    results = []

    def slow_request():
        with lb.client(timeout=30) as conn:
            conn.request("GET", "/delay/4")
            results.append(conn.read_response().status)

    threads = [threading.Thread(target=slow_request) for _ in range(held)]
    for t in threads:
        t.start()
    try:
        slow.wait_heads(held)
        assert active(bus, "up_slow") == held
        bus.call("SetNodeWeight", "ssqu", "up_other", other.host, other.port, 3)
        assert lb.request("GET", "/headers").status == 200  # a worker takes the new model
        assert active(bus, "up_slow") == held
        Reloader(lb)()
        assert lb.request("GET", "/headers").status == 200
        assert active(bus, "up_slow") == held
        assert active(bus, "up_other") == 0
    finally:
        for t in threads:
            t.join(30)
    assert results == [200] * held
    assert wait_for(lambda: active(bus, "up_slow"), 0) == 0
    assert wait_for(lambda: node_requests(bus, "up_slow"),
                    {(slow.host, slow.port): held}) == {(slow.host, slow.port): held}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_unchanged_https_upstream_keeps_connections_and_sessions(lbproxy, bus, upstream, pki,
                                                                 tmp_path):
    """A D-Bus change of another upstream, and a reload that changed nothing, leave an https
    upstream as it was: its pooled connection serves on (no new handshake), and one that pools
    nothing resumes its session (no new full handshake)."""
    pooled = TlsUpstreamServer("pooled", "127.0.0.2", pki.good).start()
    unpooled = TlsUpstreamServer("unpooled", "127.0.0.3", pki.good).start()
    plain = upstream("plain", "127.0.0.4")
    try:
        state = tmp_path / "state"
        state.mkdir()
        tls = {"ca_file": str(pki.ca), "sni": "httpbin.org"}
        lb = lbproxy({
            "workers": 1,  # one pool
            "upstreams": [
                upstream_cfg("up_pooled", [pooled], scheme="https", tls=tls),
                upstream_cfg("up_unpooled", [unpooled], scheme="https", tls=tls,
                             keepalive_pool=0),
                upstream_cfg("up_plain", [plain]),
            ],
            "routes": [route_cfg("pooled", ["/pooled/*"], ["up_pooled"]),
                       route_cfg("unpooled", ["/unpooled/*"], ["up_unpooled"]),
                       route_cfg("plain", ["/plain/*"], ["up_plain"])],
        }, args=["--state-dir", str(state)], env=bus.env())
        bus.wait_name()

        def both(tag):
            for path in (f"/pooled/{tag}", f"/unpooled/{tag}", f"/plain/{tag}"):
                assert lb.request("GET", path).status == 200, path

        both("first")
        assert (pooled.connections, pooled.handshakes) == (1, 1)
        assert (unpooled.handshakes, unpooled.resumed) == (1, 0)

        bus.call("SetNodeWeight", "ssqu", "up_plain", plain.host, plain.port, 2)
        bus.call("AddRoute", "sasa(su)a{sv}", "extra", 1, "/extra/*", 1, "up_plain", 1, 0)
        both("after-dbus")
        Reloader(lb)()
        both("after-reload")

        # The pooled connection made first served every request.
        assert (pooled.connections, pooled.handshakes) == (1, 1)
        assert {rec.conn_id for rec in pooled.requests} == {1}
        # A new connection per request, each resuming the session the one before left.
        assert unpooled.handshakes == 3
        assert unpooled.resumed == 2, (unpooled.resumed, unpooled.handshake_errors)
    finally:
        pooled.stop()
        unpooled.stop()
