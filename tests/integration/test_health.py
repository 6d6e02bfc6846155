# SPDX-License-Identifier: MIT
"""Health as requests see it: a node that fails goes down (one journal entry with its fields)
and gets no request while others can take them; with no active check it comes back by a trial
request after a back-off; an upstream whose nodes are all down serves in panic (said in the
journal and STATUS=), and a route sends its share to its other upstreams meanwhile."""

import time

import pytest

from journal_helpers import FakeJournal
from lbtest import route_cfg, upstream_cfg

HEALTH_ID = "7a3e9c1f5b2d4e8a9c6f1b3d5e7a9c2e"


@pytest.fixture
def journal(tmp_path):
    j = FakeJournal(tmp_path)
    yield j
    j.close()


def health_entries(journal, node=None, health=None):
    return journal.matching(lambda e: e.get("MESSAGE_ID") == HEALTH_ID
                            and (node is None or e.get("LBPROXY_NODE") == node)
                            and (health is None or e.get("LBPROXY_HEALTH") == health))


def panic_entries(journal, upstream):
    return journal.matching(lambda e: "(panic)" in e.get("MESSAGE", "")
                            and e.get("LBPROXY_UPSTREAM") == upstream)


def until(pred, timeout, step=None, what="condition"):
    """Runs step() until pred() holds; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        if pred():
            return
        if time.monotonic() > deadline:
            break
        if step:
            step()
        else:
            time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_dead_node_goes_down_then_comes_back_by_a_trial(upstream, lbproxy, journal):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    node_b = f"127.0.0.3:{b.port}"
    lb = lbproxy({"workers": 2,
                  "upstreams": [upstream_cfg("up", [a, b])],
                  "routes": [route_cfg("r", ["/*"], ["up"])]},
                 wrapper=journal.wrapper(), journal_stream=True)
    b.stop()
    # Every request is answered: a refused connect moves on to the other node (retries: 1).
    sent = 0
    until(lambda: health_entries(journal, node_b, "down"), 10,
          step=lambda: (lb.request("GET", "/x").status == 200 or pytest.fail("not 200")),
          what="node b down")
    e = health_entries(journal, node_b, "down")[0]
    assert e["LBPROXY_UPSTREAM"] == "up" and e["PRIORITY"] == "4", e
    assert e["LBPROXY_REASON"] == "2 TCP failures in a row (requests)", e
    down_at = time.monotonic()

    # Back on its port: no request reaches it before its trial (10 s after it went down).
    b.restart()
    for _ in range(40):
        assert lb.request("GET", "/y").status == 200
        sent += 1
    if time.monotonic() - down_at < 9:
        assert b.paths() == [], b.paths()
    # Its trial succeeds: healthy again, and round robin splits exactly over both.
    until(lambda: health_entries(journal, node_b, "healthy"), 20,
          step=lambda: (lb.request("GET", "/z"), time.sleep(0.05)), what="node b healthy")
    assert time.monotonic() - down_at >= 9.5
    e = health_entries(journal, node_b, "healthy")[0]
    assert e["LBPROXY_REASON"] == "1 success in a row (requests)", e
    a.reset()
    b.reset()
    for i in range(20):
        assert lb.request("GET", f"/after/{i}").status == 200
    assert len(a.paths()) == 10 and len(b.paths()) == 10


def test_every_node_down_is_panic_and_the_route_uses_its_other_upstream(upstream, lbproxy,
                                                                        journal):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    lb = lbproxy({"workers": 2,
                  "upstreams": [upstream_cfg("up_a", [a]), upstream_cfg("up_b", [b])],
                  "routes": [route_cfg("r", ["/*"], ["up_a", "up_b"])]},
                 wrapper=journal.wrapper(), journal_stream=True)
    for i in range(10):
        assert lb.request("GET", f"/both/{i}").status == 200
    assert len(a.paths()) == 5 and len(b.paths()) == 5
    a.stop()
    # Its one node refused twice: up_a is in panic.
    until(lambda: panic_entries(journal, "up_a"), 10,
          step=lambda: lb.request("GET", "/x"), what="panic of up_a")
    e = panic_entries(journal, "up_a")[0]
    assert "every node is down" in e["MESSAGE"] and e["PRIORITY"] == "3", e
    until(lambda: any("1 upstream in panic (every node down): up_a" in ln
                      for ln in lb.notify_lines()), 5, what="STATUS= naming the panic")

    # The route sends up_a's share to up_b: 50 requests, 50 answers from b.
    b.reset()
    for i in range(50):
        assert lb.request("GET", f"/seed/{i}").status == 200
    assert len(b.paths()) == 50
