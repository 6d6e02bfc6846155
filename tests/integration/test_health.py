# SPDX-License-Identifier: MIT
"""Health as requests see it: a node that fails goes down (one journal entry with its fields)
and gets no request while others can take them; with no active check it comes back by a trial
request after a back-off; an upstream whose nodes are all down serves in panic (said in the
journal and STATUS=), and a route sends its share to its other upstreams meanwhile."""

import os
import re
import signal
import subprocess
import threading
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


class Monitor:
    """busctl monitor on lbproxy's name: its lines, ready once it saw a call of ours."""

    def __init__(self, bus):
        env = dict(os.environ)
        env.update(bus.env())
        self.proc = subprocess.Popen(["busctl", "--system", "monitor", "org.lbproxy1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines = []
        ready = threading.Event()

        def reader():
            for line in self.proc.stdout:
                self.lines.append(line)
                if "ListUpstreams" in line:
                    ready.set()

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + 10
        while not ready.is_set() and time.monotonic() < deadline:
            bus.call("ListUpstreams")
            ready.wait(0.2)
        assert ready.is_set(), "busctl monitor saw nothing"

    def text(self):
        return "".join(self.lines)

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def health_of(bus, upstream):
    path = "/org/lbproxy1/upstream/" + upstream.replace("_", "_5f")
    out = bus.busctl("get-property", "org.lbproxy1", path, "org.lbproxy1.Upstream",
                     "HealthDetails").stdout
    # a(sqssbt) N "host" port "state" "reason" bool since ...
    return re.findall(r'"([^"]*)" (\d+) "([a-z]+)" "([^"]*)" (true|false) (\d+)', out)


def test_drain_finishes_what_it_has_then_signals_and_maint_takes_nothing(upstream, lbproxy,
                                                                          journal, bus,
                                                                          tmp_path):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    state = tmp_path / "state"
    state.mkdir()
    cfg = {"workers": 2, "upstreams": [upstream_cfg("up", [a, b])],
           "routes": [route_cfg("r", ["/*"], ["up"])]}
    lb = lbproxy(cfg, args=["--state-dir", str(state)], env=bus.env(),
                 wrapper=journal.wrapper(), journal_stream=True)
    bus.wait_name()
    mon = Monitor(bus)
    try:
        # A slow request in flight on a (the first pick), then a is drained.
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=lb.request("GET", "/delay/1.5")))
        t.start()
        until(lambda: len(a.paths()) == 1, 5, what="the slow request at a")
        bus.call("SetNodeState", "ssqs", "up", a.host, a.port, "drain")
        assert journal.wait(lambda e: e.get("LBPROXY_HEALTH") == "drain"
                            and e.get("LBPROXY_NODE") == f"127.0.0.2:{a.port}")
        assert ("127.0.0.2", str(a.port), "drain", "", "false") == health_of(bus, "up")[0][:5]
        # No new request reaches it; the one in flight finishes, and only then NodeDrained.
        for i in range(10):
            assert lb.request("GET", f"/new/{i}").status == 200
        assert a.paths() == ["/delay/1.5"] and len(b.paths()) == 10
        assert "NodeDrained" not in mon.text() or "r" in slow
        t.join(10)
        assert slow["r"].status == 200
        until(lambda: "NodeDrained" in mon.text(), 5, what="NodeDrained")
        text = mon.text()
        i = text.index("NodeDrained")
        assert '"up"' in text[i:i + 600] and '"127.0.0.2"' in text[i:i + 600], text[i:i + 600]
        assert text.count("Member=NodeDrained") == 1

        # maint: nothing either, even with every other node gone down; back to ready: exact.
        bus.call("SetNodeState", "ssqs", "up", a.host, a.port, "maint")
        assert health_of(bus, "up")[0][2] == "maint"
        bad = bus.call("SetNodeState", "ssqs", "up", a.host, a.port, "sleeping", check=False)
        assert bad.returncode != 0 and "unknown state 'sleeping'" in bad.stderr, bad.stderr
        a.reset()
        b.reset()
        for i in range(6):
            assert lb.request("GET", f"/m/{i}").status == 200
        assert a.paths() == [] and len(b.paths()) == 6
        # Kept across a restart like every D-Bus change.
        assert lb.terminate() == 0
        lb2 = lbproxy(cfg, args=["--state-dir", str(state)], env=bus.env())
        bus.wait_name()
        assert health_of(bus, "up")[0][2] == "maint"
        bus.call("SetNodeState", "ssqs", "up", a.host, a.port, "ready")
        a.reset()
        b.reset()
        for i in range(10):
            assert lb2.request("GET", f"/r/{i}").status == 200
        assert len(a.paths()) == 5 and len(b.paths()) == 5
        assert "PropertiesChanged" in mon.text() and '"HealthDetails"' in mon.text()
    finally:
        mon.close()


def test_active_check_panic_ends_and_health_outlives_reloads_and_other_changes(
        upstream, lbproxy, journal, bus):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    c = upstream("c", "127.0.0.4")
    check = {"active": {"type": "tcp", "timeout": "500ms",
                        "healthy": {"interval": "100ms", "successes": 1},
                        "unhealthy": {"interval": "100ms", "tcp_failures": 1}}}
    lb = lbproxy({"workers": 2,
                  "upstreams": [upstream_cfg("up_a", [a], health_check=check),
                                upstream_cfg("up_b", [b, c], health_check=check)],
                  "routes": [route_cfg("r", ["/*"], ["up_a", "up_b"])]},
                 env=bus.env(), wrapper=journal.wrapper(), journal_stream=True)
    bus.wait_name()
    a.stop()
    until(lambda: panic_entries(journal, "up_a"), 10, what="panic of up_a")
    until(lambda: any("up_a" in ln and "panic" in ln for ln in lb.notify_lines()), 5,
          what="STATUS= naming the panic")
    # The route's other upstream takes everything, with no error.
    for i in range(20):
        assert lb.request("GET", f"/p/{i}").status == 200
    # c goes down too; a reload and a D-Bus change of another object keep both down.
    c.stop()
    until(lambda: health_entries(journal, f"127.0.0.4:{c.port}", "down"), 10, what="c down")
    os.kill(lb.pid, signal.SIGHUP)
    assert journal.wait(lambda e: "Configuration reloaded" in e.get("MESSAGE", ""),
                        timeout=30)
    bus.call("AddUpstream", "ssa(squ)a{sv}", "other", "http", 1, "127.0.0.9", 80, 1, 0)
    assert [h[2] for h in health_of(bus, "up_b")] == ["healthy", "down"]
    assert health_of(bus, "up_a")[0][2] == "down"
    b.reset()
    for i in range(10):
        assert lb.request("GET", f"/q/{i}").status == 200
    assert len(b.paths()) == 10
    # a back: healthy at its next probe, and the panic is over.
    a.restart()
    until(lambda: any("panic over" in e.get("MESSAGE", "")
                      for e in panic_entries_any(journal, "up_a")), 10, what="panic over")
    a.reset()
    b.reset()
    for i in range(10):
        assert lb.request("GET", f"/e/{i}").status == 200
    assert len(a.paths()) == 5 and len(b.paths()) == 5


def panic_entries_any(journal, upstream):
    return journal.matching(lambda e: "panic" in e.get("MESSAGE", "")
                            and e.get("LBPROXY_UPSTREAM") == upstream)
