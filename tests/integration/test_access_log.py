# SPDX-License-Identifier: MIT
"""The access log on stderr: one line per proxied request with route=, upstream=, node= and
the status; `access_log: false` turns it off."""

import re

from lbtest import route_cfg, upstream_cfg


def start(upstream, lbproxy, access_log):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy({"access_log": access_log,
                  "upstreams": [upstream_cfg("up1", [u])],
                  "routes": [route_cfg("r1", ["/*"], ["up1"])]})
    return u, lb


def test_one_line_per_request_with_fields(upstream, lbproxy):
    u, lb = start(upstream, lbproxy, True)
    statuses = [200, 404, 503, 200, 201]
    for i, s in enumerate(statuses):
        path = "/ok" if s == 200 else f"/status/{s}"
        assert lb.request("GET", f"{path}?n={i}").status == s
    lines = lb.wait_log("route=r1", count=len(statuses))
    assert len(lines) == len(statuses), lb.log_text()
    for line in lines:
        assert "upstream=up1" in line, line
        assert f"node=127.0.0.2:{u.port}" in line, line
        assert re.search(r"duration_usec=\d+", line), line
    got = sorted(int(m.group(1)) for ln in lines
                 for m in [re.search(r"(?:^|\s)([1-5]\d\d)(?:\s|$)", ln)] if m)
    assert got == sorted(statuses), lines
    # Still exactly one line each once the process is gone (nothing logged twice).
    assert lb.terminate() == 0
    assert len(lb.access_lines()) == len(statuses)


def test_keepalive_requests_each_logged(upstream, lbproxy):
    u, lb = start(upstream, lbproxy, True)
    with lb.client() as c:
        for i in range(7):
            c.request("GET", f"/k{i}")
            assert c.read_response().status == 200
    assert len(lb.wait_log("route=r1", count=7)) == 7


def test_access_log_false_logs_no_request(upstream, lbproxy):
    u, lb = start(upstream, lbproxy, False)
    for i in range(5):
        assert lb.request("GET", f"/quiet{i}").status == 200
    assert lb.terminate() == 0  # every line it would write is written by now
    assert lb.access_lines() == [], lb.log_text()
    assert not any("/quiet" in ln for ln in lb.log_text().splitlines()), lb.log_text()
