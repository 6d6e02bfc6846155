# SPDX-License-Identifier: MIT
"""The balancers beside round robin (issue #14), through the proxy with real upstreams and two
workers: least_conn sends a node that holds each request 500 ms fewer requests; chash sends a
key to the same node on every worker, across a reload and D-Bus changes of other nodes (the
remapped fraction measured); ewma moves traffic away from a node whose latency rises 10x and
back once it recovers; APISIX's loadbalancer types behave as the native balancers of their
names; a Balancer set over D-Bus serves from the next request."""

import collections
import os
import signal
import threading
import time

import pytest

from lbtest import route_cfg, upstream_cfg

NOBODY = 65534


def config(servers, workers=2, **upstream_kw):
    kw = {"retries": 0}
    kw.update(upstream_kw)
    return {"workers": workers,
            "upstreams": [upstream_cfg("up", servers, **kw)],
            "routes": [route_cfg("r", ["/*"], ["up"])]}


def served_by(lb, path="/", headers=(), keepalive=None):
    """The node that answered one request: on the client `keepalive`, else a new connection."""
    if keepalive:
        keepalive.request("GET", path, headers=headers)
        r = keepalive.read_response()
    else:
        r = lb.request("GET", path, headers=headers)
    assert r.status == 200, r
    return r.json()["server"]


def in_parallel(lb, clients, until, headers=()):
    """`clients` threads send requests on keep-alive connections until until() says stop;
    returns the Counter of the nodes that answered."""
    counts = collections.Counter()
    lock = threading.Lock()
    errors = []

    def run():
        try:
            with lb.client(timeout=10) as c:
                while not until():
                    c.request("GET", "/", headers=headers)
                    r = c.read_response()
                    assert r.status == 200, r
                    with lock:
                        counts[r.json()["server"]] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return counts


def for_seconds(s):
    end = time.monotonic() + s
    return lambda: time.monotonic() >= end


# -- least_conn -----------------------------------------------------------------------------
def test_least_conn_sends_a_node_holding_requests_fewer(upstream, lbproxy):
    fast = [upstream("f0", "127.0.0.2"), upstream("f1", "127.0.0.3")]
    slow = upstream("slow", "127.0.0.4")
    slow.delay = 0.5
    lb = lbproxy(config(fast + [slow], balancer="least_conn"))
    total = [0]
    lock = threading.Lock()

    def until():
        with lock:
            total[0] += 1
            return total[0] > 240
    got = in_parallel(lb, 6, until)
    print(f"least_conn, 6 clients, a node holding each request 500 ms: {dict(got)}")
    # Round robin would give each a third (80 of 240); the slow node gets what it can while
    # the fast ones are busier than it.
    assert got["slow"] * 4 < got["f0"] and got["slow"] * 4 < got["f1"], got
    assert got["slow"] >= 1, got  # idle ties rotate: it is not left out altogether


def test_least_conn_idle_ties_rotate(upstream, lbproxy):
    """One keep-alive connection: each request has ended (on the proxy too) before the next
    one is picked for, so the upstream is idle at every pick."""
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")
    lb = lbproxy(config([a, b], balancer="least_conn"))
    with lb.client() as c:
        got = collections.Counter(served_by(lb, keepalive=c) for _ in range(20))
    assert got == {"a": 10, "b": 10}


# -- chash ----------------------------------------------------------------------------------
KEYS = [f"user-{i}" for i in range(60)]


def mapping(lb, keys=KEYS, tries=1):
    """key -> node, each key sent `tries` times on new connections (any worker may take a
    connection); a key answered by two nodes fails the test."""
    m = {}
    for k in keys:
        seen = {served_by(lb, headers=[("X-User", k)]) for _ in range(tries)}
        assert len(seen) == 1, (k, seen)
        m[k] = seen.pop()
    return m


def chash_servers(upstream, n):
    return [upstream(f"n{i}", f"127.0.0.{i + 2}") for i in range(n)]


def test_chash_same_node_on_every_worker_and_across_a_reload(upstream, lbproxy):
    servers = chash_servers(upstream, 4)
    cfg = config(servers, balancer="chash", hash_on="header", hash_key="X-User")
    lb = lbproxy(cfg)
    before = mapping(lb, tries=4)
    assert len(set(before.values())) >= 3, before  # spread, not one node

    # A reload whose upstream changed elsewhere (a new Balancer, the same ring).
    cfg["upstreams"][0]["retries"] = 1
    lb.config_path.write_text(lb.config_path.read_text().replace("retries: 0", "retries: 1"))
    os.kill(lb.pid, signal.SIGHUP)
    assert lb.wait_log("Configuration reloaded", timeout=30), lb.log_text()
    assert mapping(lb, tries=2) == before

    # A missing key hashes the client's address: one node for all of them.
    assert len({served_by(lb) for _ in range(10)}) == 1


def test_chash_walks_past_a_node_that_is_down_without_moving_other_keys(upstream, lbproxy):
    servers = chash_servers(upstream, 4)
    lb = lbproxy(config(servers, balancer="chash", hash_on="header", hash_key="X-User",
                        retries=3))
    before = mapping(lb)
    down = before[KEYS[0]]
    next(s for s in servers if s.name == down).stop()
    after = mapping(lb)  # a connect failure: the next node on the ring, then it is skipped
    assert all(after[k] == before[k] for k in KEYS if before[k] != down), (before, after)
    assert all(after[k] != down for k in KEYS)


def test_chash_dbus_changes_of_other_nodes_move_only_their_keys(upstream, lbproxy, bus,
                                                                 tmp_path):
    servers = chash_servers(upstream, 5)
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy(config(servers[:4], balancer="chash", hash_on="header", hash_key="X-User"),
                 args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()
    before = mapping(lb, tries=2)

    bus.call("AddNode", "ssqu", "up", servers[4].host, servers[4].port, 1)
    added = mapping(lb)
    moved = [k for k in KEYS if added[k] != before[k]]
    print(f"chash: adding a 5th node moved {len(moved)} of {len(KEYS)} keys")
    assert all(added[k] == "n4" for k in moved), moved
    assert len(moved) <= len(KEYS) * 0.4, moved

    # Removing another node moves its keys only; the weight of one more, to 0, likewise.
    bus.call("RemoveNode", "ssq", "up", servers[1].host, servers[1].port)
    removed = mapping(lb)
    moved = [k for k in KEYS if removed[k] != added[k]]
    print(f"chash: removing a node moved {len(moved)} of {len(KEYS)} keys")
    assert all(added[k] == "n1" for k in moved), moved
    assert all(removed[k] == added[k] for k in KEYS if added[k] != "n1")

    # Adding it back restores the mapping.
    bus.call("AddNode", "ssqu", "up", servers[1].host, servers[1].port, 1)
    assert mapping(lb) == added


# -- ewma -----------------------------------------------------------------------------------
def share(counts, name):
    total = sum(counts.values())
    return counts[name] / total if total else 0.0


def test_ewma_moves_away_from_a_slow_node_and_back(upstream, lbproxy):
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")
    a.delay = b.delay = 0.02
    lb = lbproxy(config([a, b], balancer="ewma"))

    even = in_parallel(lb, 4, for_seconds(3))
    print(f"ewma, both 20 ms: {dict(even)}")
    assert share(even, "b") >= 0.2, even

    b.delay = 0.2  # 10x
    in_parallel(lb, 4, for_seconds(1))  # it learns
    slow = in_parallel(lb, 4, for_seconds(4))
    print(f"ewma, b at 200 ms: {dict(slow)}")
    # About none (a's cost is its EWMA times its requests in flight plus one: a slow moment of
    # a's under a sanitizer gives b a few).
    assert share(slow, "b") < 0.2, slow

    b.delay = 0.02
    start = time.monotonic()
    back = collections.Counter()
    while time.monotonic() - start < 60:
        back = in_parallel(lb, 4, for_seconds(2))
        if share(back, "b") >= 0.3:
            break
    print(f"ewma, b back at 20 ms: {dict(back)} after {time.monotonic() - start:.1f} s")
    assert share(back, "b") >= 0.3, back


# -- APISIX ---------------------------------------------------------------------------------
def apisix_yaml(a, b, lb_type):
    hash_keys = ", hashOn: header, key: X-User" if lb_type == "chash" else ""
    return ("workers: 2\n"
            "listeners:\n"
            "  - name: http\n"
            "    listen: \"@LISTEN@\"\n"
            "---\n"
            "apiVersion: apisix.apache.org/v2\n"
            "kind: ApisixUpstream\n"
            "metadata: {name: up}\n"
            "spec:\n"
            f"  loadbalancer: {{type: {lb_type}{hash_keys}}}\n"
            "  externalNodes:\n"
            f"  - {{type: Domain, name: {a.host}, port: {a.port}, weight: 1}}\n"
            f"  - {{type: Domain, name: {b.host}, port: {b.port}, weight: 1}}\n"
            "---\n"
            "apiVersion: apisix.apache.org/v2\n"
            "kind: ApisixRoute\n"
            "metadata: {name: rt}\n"
            "spec:\n"
            "  http:\n"
            "  - name: r\n"
            "    match: {paths: [\"/*\"]}\n"
            "    upstreams: [{name: up}]\n")


@pytest.mark.parametrize("lb_type", ["roundrobin", "least_conn", "chash", "ewma"])
def test_apisix_loadbalancer_types_behave_as_native(upstream, lbproxy, lb_type):
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")
    kw = {"balancer": lb_type}
    if lb_type == "chash":
        kw.update(hash_on="header", hash_key="X-User")
    native = lbproxy(config([a, b], **kw))
    manifest = lbproxy(apisix_yaml(a, b, lb_type))

    def run(lb):
        with lb.client() as c:
            return [served_by(lb, headers=[("X-User", f"u{i}")], keepalive=c)
                    for i in range(20)]

    got_native, got_apisix = run(native), run(manifest)
    if lb_type == "ewma":
        # Random draws: both nodes answer (each is tried first while it has no samples).
        assert set(got_native) == set(got_apisix) == {"a", "b"}
    else:
        # Sequential requests: the same nodes in the same order.
        assert got_apisix == got_native, (got_native, got_apisix)
    if lb_type in ("roundrobin", "least_conn"):
        assert collections.Counter(got_apisix) == {"a": 10, "b": 10}


# -- D-Bus ----------------------------------------------------------------------------------
UP_PATH = "/org/lbproxy1/upstream/up"


def balancer_property(bus):
    return bus.busctl("get-property", "org.lbproxy1", UP_PATH, "org.lbproxy1.Upstream",
                      "Balancer").stdout.strip()


def test_balancer_set_over_dbus_serves_from_the_next_request(upstream, lbproxy, bus, tmp_path):
    a, b = upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy(config([a, b]), args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()
    assert balancer_property(bus) == 's "roundrobin"'
    with lb.client() as c:
        assert {served_by(lb, keepalive=c) for _ in range(2)} == {"a", "b"}

        bus.busctl("set-property", "org.lbproxy1", UP_PATH, "org.lbproxy1.Upstream",
                   "Balancer", "s", "chash")
        # chash on the client's address: one node, from the very next request.
        assert len({served_by(lb, keepalive=c) for _ in range(10)}) == 1
        assert balancer_property(bus) == 's "chash"'
        assert "balancer: chash" in (state / "state.yaml").read_text()

        bus.busctl("set-property", "org.lbproxy1", UP_PATH, "org.lbproxy1.Upstream",
                   "Balancer", "s", "roundrobin")
        assert {served_by(lb, keepalive=c) for _ in range(2)} == {"a", "b"}

    # Refused as the loader refuses it; nothing changes.
    p = bus.busctl("set-property", "org.lbproxy1", UP_PATH, "org.lbproxy1.Upstream",
                   "Balancer", "s", "random", check=False)
    assert p.returncode != 0
    assert "unknown balancer 'random' (known: roundrobin, least_conn, chash, ewma)" in p.stderr
    p = bus.busctl("set-property", "org.lbproxy1", UP_PATH, "org.lbproxy1.Upstream",
                   "Balancer", "s", "ewma", user=NOBODY, check=False)
    assert p.returncode != 0 and "ccess" in p.stderr, p.stderr
    assert balancer_property(bus) == 's "roundrobin"'

    # SetUpstreamOptions takes chash's keys by their YAML names.
    bus.call("SetUpstreamOptions", "sa{sv}as", "up", 3, "balancer", "s", "chash", "hash_on",
             "s", "header", "hash_key", "s", "X-User", 0)
    m = mapping(lb, keys=[f"u{i}" for i in range(20)], tries=3)
    assert set(m.values()) == {"a", "b"}, m
    p = bus.call("SetUpstreamOptions", "sa{sv}as", "up", 1, "hash_on", "s", "consumer", 0,
                 check=False)
    assert "options.hash_on: hash_on 'consumer' is not supported" in p.stderr, p.stderr
