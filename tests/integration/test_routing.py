# SPDX-License-Identifier: MIT
"""Route matching: exact paths before prefixes, the longest prefix first, then hosts, methods,
and higher priority first."""

import pytest

from lbtest import route_cfg, upstream_cfg


@pytest.fixture
def three(upstream):
    return [upstream(n, f"127.0.0.{i + 2}") for i, n in enumerate(("A", "B", "C"))]


def cfg(servers, routes):
    return {"upstreams": [upstream_cfg(f"up_{s.name}", [s]) for s in servers],
            "routes": routes}


def who(lb, path, host="example.test", method="GET"):
    r = lb.request(method, path, host_header=host)
    if r.status != 200:
        return r.status
    return r.json()["server"]


def test_exact_path_beats_prefix(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("prefix", ["/api/*"], ["up_A"]),
        route_cfg("exact", ["/api/x"], ["up_B"]),
    ]))
    assert who(lb, "/api/x") == "B"
    assert who(lb, "/api/y") == "A"
    assert who(lb, "/api/x/more") == "A"
    assert who(lb, "/api/x?q=1") == "B"  # the query is not part of the path


def test_exact_path_beats_prefix_even_with_lower_priority(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("prefix", ["/api/*"], ["up_A"], priority=100),
        route_cfg("exact", ["/api/x"], ["up_B"], priority=0),
    ]))
    assert who(lb, "/api/x") == "B"


def test_longest_prefix_first(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("short", ["/api/*"], ["up_A"]),
        route_cfg("long", ["/api/v2/*"], ["up_B"]),
        route_cfg("all", ["/*"], ["up_C"]),
    ]))
    assert who(lb, "/api/v2/users") == "B"
    assert who(lb, "/api/v1/users") == "A"
    assert who(lb, "/api/") == "A"
    assert who(lb, "/apix") == "C"
    assert who(lb, "/") == "C"
    assert who(lb, "/other") == "C"


def test_no_matching_path_is_404(three, lbproxy):
    lb = lbproxy(cfg(three, [route_cfg("r", ["/only"], ["up_A"])]))
    assert who(lb, "/only") == "A"
    assert who(lb, "/only/") == 404
    assert who(lb, "/onl") == 404
    assert who(lb, "/other") == 404


def test_hosts_exact_and_wildcard(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("ra", ["/*"], ["up_A"], hosts=["a.example"]),
        route_cfg("rb", ["/*"], ["up_B"], hosts=["*.b.example"]),
    ]))
    assert who(lb, "/h", host="a.example") == "A"
    assert who(lb, "/h", host="x.b.example") == "B"
    assert who(lb, "/h", host="deep.x.b.example") == "B"
    assert who(lb, "/h", host="c.example") == 404
    assert who(lb, "/h", host="xa.example") == 404


def test_host_match_ignores_port_and_case(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("ra", ["/*"], ["up_A"], hosts=["a.example"]),
        route_cfg("rb", ["/*"], ["up_B"], hosts=["*.b.example"]),
    ]))
    assert who(lb, "/h", host="a.example:8080") == "A"
    assert who(lb, "/h", host="A.Example") == "A"
    assert who(lb, "/h", host="X.B.EXAMPLE:81") == "B"


def test_route_with_hosts_and_route_without(three, lbproxy):
    """A route without hosts matches any host; one whose hosts match is chosen for its
    host."""
    lb = lbproxy(cfg(three, [
        route_cfg("any", ["/p"], ["up_A"]),
        route_cfg("hosted", ["/p"], ["up_B"], hosts=["h.example"], priority=1),
    ]))
    assert who(lb, "/p", host="h.example") == "B"
    assert who(lb, "/p", host="other.example") == "A"


def test_methods(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("get", ["/m"], ["up_A"], methods=["GET", "HEAD"]),
        route_cfg("post", ["/m"], ["up_B"], methods=["POST"]),
    ]))
    assert who(lb, "/m", method="GET") == "A"
    assert who(lb, "/m", method="POST") == "B"
    assert who(lb, "/m", method="DELETE") == 404
    r = lb.request("HEAD", "/m")
    assert r.status == 200 and r.header1("x-upstream") == "A"


def test_higher_priority_first(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("low", ["/p"], ["up_A"], priority=0),
        route_cfg("high", ["/p"], ["up_B"], priority=10),
        route_cfg("mid", ["/p"], ["up_C"], priority=5),
    ]))
    for _ in range(3):
        assert who(lb, "/p") == "B"


def test_priority_among_prefixes_of_equal_length(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("low", ["/x/*"], ["up_A"], priority=-1),
        route_cfg("high", ["/x/*"], ["up_B"], priority=3),
    ]))
    assert who(lb, "/x/y") == "B"


def test_several_paths_in_one_route(three, lbproxy):
    lb = lbproxy(cfg(three, [
        route_cfg("multi", ["/headers", "/api/*"], ["up_A"]),
        route_cfg("rest", ["/*"], ["up_B"]),
    ]))
    assert who(lb, "/headers") == "A"
    assert who(lb, "/api/q") == "A"
    assert who(lb, "/headers2") == "B"


def test_access_log_names_the_route(three, lbproxy):
    lb = lbproxy(dict(cfg(three, [
        route_cfg("route_one", ["/one"], ["up_A"]),
        route_cfg("route_two", ["/two/*"], ["up_B"]),
    ]), access_log=True))
    assert who(lb, "/one") == "A"
    assert who(lb, "/two/x") == "B"
    assert len(lb.wait_log("route=route_one", "upstream=up_A")) == 1, lb.log_text()
    assert len(lb.wait_log("route=route_two", "upstream=up_B")) == 1, lb.log_text()
