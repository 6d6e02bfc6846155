# SPDX-License-Identifier: MIT
"""Two-level smooth weighted round robin: across a route's upstreams, then an upstream's
nodes."""

import collections

from lbtest import route_cfg, upstream_cfg


def servers_of(lb, n, path="/headers", keepalive=False):
    """Sends n sequential requests; returns the list of upstream names that answered."""
    names = []
    if keepalive:
        with lb.client() as c:
            for _ in range(n):
                c.request("GET", path)
                r = c.read_response()
                assert r.status == 200, r
                names.append(r.json()["server"])
        return names
    for _ in range(n):
        r = lb.request("GET", path)
        assert r.status == 200, r
        names.append(r.json()["server"])
    return names


def two_upstreams(upstream, lbproxy, w1, w2):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    lb = lbproxy({
        "upstreams": [upstream_cfg("up_a", [a]), upstream_cfg("up_b", [b])],
        "routes": [route_cfg("r1", ["/headers", "/api/*"], [("up_a", w1), ("up_b", w2)])],
    })
    return a, b, lb


def test_equal_weights_split_exactly_25_25(upstream, lbproxy):
    a, b, lb = two_upstreams(upstream, lbproxy, 1, 1)
    got = collections.Counter(servers_of(lb, 50))
    assert got == {"a": 25, "b": 25}
    assert len(a.requests) == 25 and len(b.requests) == 25


def test_equal_weights_over_one_keepalive_connection(upstream, lbproxy):
    """Balancing is per request, not per client connection."""
    a, b, lb = two_upstreams(upstream, lbproxy, 1, 1)
    got = collections.Counter(servers_of(lb, 50, keepalive=True))
    assert got == {"a": 25, "b": 25}


def test_weights_3_1_give_30_10_of_40(upstream, lbproxy):
    a, b, lb = two_upstreams(upstream, lbproxy, 3, 1)
    got = collections.Counter(servers_of(lb, 40))
    assert got == {"a": 30, "b": 10}


def test_smooth_3_1_never_three_b_in_a_row_and_each_window_of_4_has_one_b(upstream, lbproxy):
    """Smooth WRR interleaves: every period of 4 (the sum of the weights) holds exactly 3 a and
    1 b."""
    a, b, lb = two_upstreams(upstream, lbproxy, 3, 1)
    seq = servers_of(lb, 40)
    for i in range(0, 40, 4):
        assert collections.Counter(seq[i:i + 4]) == {"a": 3, "b": 1}, seq


def test_upstream_weight_zero_is_out_of_rotation(upstream, lbproxy):
    a, b, lb = two_upstreams(upstream, lbproxy, 1, 0)
    got = collections.Counter(servers_of(lb, 20))
    assert got == {"a": 20}
    assert b.connections == 0


def nodes_upstream(upstream, lbproxy, weights):
    servers = [upstream(f"n{i}", f"127.0.0.{i + 2}") for i in range(len(weights))]
    nodes = [(s.host, s.port, w) for s, w in zip(servers, weights)]
    lb = lbproxy({
        "upstreams": [upstream_cfg("up", nodes)],
        "routes": [route_cfg("r1", ["/*"], ["up"])],
    })
    return servers, lb


def test_nodes_equal_weights_split_25_25(upstream, lbproxy):
    servers, lb = nodes_upstream(upstream, lbproxy, [1, 1])
    assert collections.Counter(servers_of(lb, 50)) == {"n0": 25, "n1": 25}


def test_nodes_weights_3_1_give_30_10(upstream, lbproxy):
    servers, lb = nodes_upstream(upstream, lbproxy, [3, 1])
    assert collections.Counter(servers_of(lb, 40)) == {"n0": 30, "n1": 10}


def test_node_weight_zero_is_out_of_rotation(upstream, lbproxy):
    servers, lb = nodes_upstream(upstream, lbproxy, [1, 0, 1])
    assert collections.Counter(servers_of(lb, 30)) == {"n0": 15, "n2": 15}
    assert servers[1].connections == 0


def test_two_levels(upstream, lbproxy):
    """Route: A (weight 1, nodes a1 a2 of weight 1) and B (weight 1, node b1): B answers half,
    a1 and a2 a quarter each."""
    a1 = upstream("a1", "127.0.0.2")
    a2 = upstream("a2", "127.0.0.3")
    b1 = upstream("b1", "127.0.0.4")
    lb = lbproxy({
        "upstreams": [upstream_cfg("A", [a1, a2]), upstream_cfg("B", [b1])],
        "routes": [route_cfg("r1", ["/*"], ["A", "B"])],
    })
    assert collections.Counter(servers_of(lb, 40)) == {"a1": 10, "a2": 10, "b1": 20}


def test_access_log_names_the_node_that_answered(upstream, lbproxy):
    a, b, lb = two_upstreams(upstream, lbproxy, 1, 1)
    seq = servers_of(lb, 4)
    lines = lb.wait_log("route=r1", count=4)
    assert len(lines) == 4, lb.log_text()
    # Lines are written as requests finish, possibly by different workers: compare as multisets.
    want = collections.Counter(
        f"upstream=up_{n} node={(a if n == 'a' else b).address}" for n in seq)
    got = collections.Counter()
    for line in lines:
        assert " 200 " in f" {line} ", line
        for n, srv in (("a", a), ("b", b)):
            if f"upstream=up_{n} " in line and f"node={srv.address}" in line:
                got[f"upstream=up_{n} node={srv.address}"] += 1
    assert got == want, lines
