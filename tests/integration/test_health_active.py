# SPDX-License-Identifier: MIT
"""Active health checks as a user sees them, against real upstreams that die (stop()), hang
(accept, never answer), answer 500s and come back: the time from the event to the journal's
"down" entry (within interval × threshold + timeout), no client request at a node once it is
down (its own access log), recovery and slow start shares, one probe per address and interval
whatever the workers, https probes that verify and resume, maintenance over D-Bus, a name with
one dead address, the seed with a dead stand-in, and an APISIX manifest with a healthCheck.

Probes are told from client requests by their path (PROBE_PATH); client requests use others."""

import contextlib
import os
import re
import socket
import time

import pytest

from dns_helpers import dnsmasq  # noqa: F401 (fixture)
from lbtest import free_port, route_cfg, to_yaml, upstream_cfg
from test_accept import thread_ids
from test_dns import pair  # noqa: F401 (fixture)
from test_health import health_entries, journal, until  # noqa: F401 (fixture)
from test_seed_https import (HTTPBIN, MOCK, certs, expected_host, globals_yaml,  # noqa: F401
                             seed_config_text, seed_dns, standins)
from test_tls_upstream import pki, tls_upstream  # noqa: F401 (fixtures)

PROBE_PATH = "/_health"
PROBE_AGENT = "lbproxy-health"
# Scheduling and journal delivery on a shared two-core machine; more under the sanitizers.
MARGIN = 1.0 if os.environ.get("LBPROXY_SANITIZED") else 0.5


def active_check(interval="500ms", timeout="500ms", successes=2, http_failures=3,
                 tcp_failures=2, timeouts=3, **kw):
    a = {"type": "http", "http_path": PROBE_PATH, "timeout": timeout,
         "headers": [f"User-Agent: {PROBE_AGENT}"],
         "healthy": {"interval": interval, "successes": successes},
         "unhealthy": {"interval": interval, "http_failures": http_failures,
                       "tcp_failures": tcp_failures, "timeouts": timeouts}}
    a.update(kw)
    return {"active": a}


def seconds(duration):
    m = re.fullmatch(r"([0-9.]+)(ms|s)", duration)
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def is_probe(rec):
    return rec.path == PROBE_PATH


def probes(server):
    with server._lock:
        return [r for r in server.requests if is_probe(r)]


def client_requests(server):
    with server._lock:
        return [r for r in server.requests if not is_probe(r)]


def node_of(server):
    return f"{server.host}:{server.port}"


def served_by(r):
    assert r.status == 200, r
    return r.json()["server"]


def two_node_lb(lbproxy, journal, a, b, check, **upstream_kw):
    return lbproxy({"workers": 2,
                    "upstreams": [upstream_cfg("up", [a, b], health_check=check,
                                               **upstream_kw)],
                    "routes": [route_cfg("r", ["/*"], ["up"])]},
                   wrapper=journal.wrapper(), journal_stream=True)


def wait_probed(server, n, timeout=10.0):
    until(lambda: len(probes(server)) >= n, timeout, what=f"{n} probes at {server.name}")


def wait_health(journal, node, health, timeout, step=None):
    """Waits for the node's journal entry; returns it and the monotonic time it was seen."""
    until(lambda: health_entries(journal, node, health), timeout, step=step,
          what=f"node {node} {health}")
    return health_entries(journal, node, health)[0], time.monotonic()


# -- 1. detection time ------------------------------------------------------------------------
def kill(server):
    server.stop()


def hang(server):
    server.hang = True


def fail_500(server):
    server.fail_status = 500


DETECTION = {
    # event, the reason the journal gives, the threshold that counts
    "dies": (kill, "2 TCP failures in a row (active check)", "tcp_failures"),
    "hangs": (hang, "3 timeouts in a row (active check)", "timeouts"),
    "answers-500": (fail_500, "3 HTTP failures in a row (active check)", "http_failures"),
}


@pytest.mark.parametrize("kind", list(DETECTION))
def test_detection_time(kind, upstream, lbproxy, journal):
    event, reason, key = DETECTION[kind]
    interval, timeout = "500ms", "500ms"
    check = active_check(interval, timeout)
    bound = seconds(interval) * check["active"]["unhealthy"][key] + seconds(timeout)
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    two_node_lb(lbproxy, journal, a, b, check)
    wait_probed(b, 2)
    assert not health_entries(journal, node_of(b)), journal.entries

    event(b)
    at = time.monotonic()  # after stop() returned: its socket is closed
    e, seen = wait_health(journal, node_of(b), "down", bound + 10)
    took = seen - at
    print(f"\n{kind}: down after {took:.3f} s (bound {bound:.1f} s + {MARGIN} s margin)")
    assert e["LBPROXY_REASON"] == reason, e
    assert e["LBPROXY_UPSTREAM"] == "up" and e["PRIORITY"] == "4", e
    assert took <= bound + MARGIN, (took, bound)
    assert not health_entries(journal, node_of(a)), "node a is healthy all along"
    b.hang = False


# -- 2. no request after down -----------------------------------------------------------------
def test_no_client_request_reaches_a_node_marked_down(upstream, lbproxy, journal):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    lb = two_node_lb(lbproxy, journal, a, b, active_check("200ms", http_failures=2))
    wait_probed(b, 1)
    b.fail_status = 500
    statuses = []
    # Traffic flows (b's share answered 500) until the journal says b is down.
    wait_health(journal, node_of(b), "down", 10,
                step=lambda: statuses.append(lb.request("GET", "/before").status))
    assert set(statuses) <= {200, 500}, statuses
    before = len(client_requests(b))
    probes_before = len(probes(b))
    # Every later request was picked after the transition: none reaches b.
    for i in range(50):
        assert served_by(lb.request("GET", f"/after/{i}")) == "a"
    assert len(client_requests(b)) == before, [r.path for r in client_requests(b)]
    # b is still probed meanwhile (it is down, not forgotten).
    wait_probed(b, probes_before + 1)
    assert all(r.header("user-agent") == [PROBE_AGENT] for r in probes(b))


# -- 3. recovery and slow start ---------------------------------------------------------------
def back_up(server, kind):
    if kind == "restart":
        server.restart()
    else:
        server.fail_status = None


@pytest.mark.parametrize("kind", ["restart", "stops-500"])
def test_recovery_brings_traffic_back(kind, upstream, lbproxy, journal):
    interval = "300ms"
    check = active_check(interval, successes=2, http_failures=2)
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    lb = two_node_lb(lbproxy, journal, a, b, check)
    wait_probed(b, 1)
    if kind == "restart":
        b.stop()
    else:
        b.fail_status = 500
    wait_health(journal, node_of(b), "down", 10)
    for i in range(10):
        assert served_by(lb.request("GET", f"/down/{i}")) == "a"

    back_up(b, kind)
    at = time.monotonic()
    e, seen = wait_health(journal, node_of(b), "healthy", 10)
    took = seen - at
    bound = seconds(interval) * check["active"]["healthy"]["successes"]
    print(f"\n{kind}: healthy after {took:.3f} s (bound {bound:.1f} s + {MARGIN} s margin)")
    assert e["LBPROXY_REASON"] == "2 successes in a row (active check)", e
    assert took <= bound + MARGIN, (took, bound)
    order = [served_by(lb.request("GET", f"/back/{i}")) for i in range(20)]
    assert order.count("a") == 10 and order.count("b") == 10, order


def test_slow_start_ramps_the_share_of_a_node_back(upstream, lbproxy, journal):
    window = 4.0
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    lb = two_node_lb(lbproxy, journal, a, b, active_check("200ms", successes=2),
                     slow_start=f"{window:g}s")
    wait_probed(b, 1)
    b.stop()
    wait_health(journal, node_of(b), "down", 10)
    b.restart()

    served = []  # (monotonic time, server)
    with lb.client() as c:
        def one():
            c.request("GET", "/ramp")
            served.append((time.monotonic(), served_by(c.read_response())))

        _, up_at = wait_health(journal, node_of(b), "healthy", 10, step=one)
        for _ in range(1_000_000):
            if time.monotonic() > up_at + window + 1.2:
                break
            one()

    def share(t0, t1):
        """b's requests per request of a (its weight in effect: 1 when fully back) and its
        fraction of all requests, between t0 and t1 seconds after it was seen healthy."""
        got = [s for t, s in served if up_at + t0 <= t < up_at + t1]
        assert len(got) >= 40, (t0, t1, len(got))
        return got.count("b") / got.count("a"), got.count("b") / len(got), len(got)

    first, first_fraction, n_first = share(0, window / 4)
    after, after_fraction, n_after = share(window + 0.2, window + 1.2)
    print(f"\nslow start {window:g}s: b per request of a {first:.3f} in the first quarter "
          f"(fraction {first_fraction:.3f} of {n_first} requests), {after:.3f} after the "
          f"window (fraction {after_fraction:.3f} of {n_after})")
    # Its full share is a's (the same weight): what "a third" bounds is its weight in effect,
    # about 0.21 on average in the first quarter. Its fraction of all requests, w / (1 + w)
    # with two nodes, is about 0.18 there: more than a third of its full fraction (0.5).
    assert first <= 1 / 3, first
    assert abs(after - 1) <= 0.1, after


# -- 4. one probe per address and interval ----------------------------------------------------
def test_probes_once_per_address_not_per_worker(upstream, lbproxy, journal):
    """One probe per interval: not one per worker, and not one per interval and a step either
    (the next is due an interval after the last was due, not after it started, which a step
    later each time would have made 27 in the 3 s)."""
    interval = 0.1
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    check = active_check(f"{interval * 1000:g}ms", host="status.example",
                         headers=[f"User-Agent: {PROBE_AGENT}", "X-Probe: yes"])
    lbproxy({"workers": 2,
             "upstreams": [upstream_cfg("up", [a, b], health_check=check)],
             "routes": [route_cfg("r", ["/*"], ["up"])]},
            wrapper=journal.wrapper(), journal_stream=True)
    wait_probed(a, 1)
    wait_probed(b, 1)
    n0 = {s.name: len(probes(s)) for s in (a, b)}
    t0 = time.monotonic()
    until(lambda: time.monotonic() - t0 >= 3.0, 5, what="a 3 s window")
    t1 = time.monotonic()
    want = (t1 - t0) / interval
    for s in (a, b):
        got = len(probes(s)) - n0[s.name]
        print(f"\n{s.name}: {got} probes in {t1 - t0:.2f} s (one per interval: {want:.1f})")
        assert abs(got - want) <= 1.5, (s.name, got, want)
        for r in probes(s):
            assert r.method == "GET" and r.target == PROBE_PATH, r
            assert r.header("host") == ["status.example"], r.headers
            assert r.header("user-agent") == [PROBE_AGENT], r.headers
            assert r.header("x-probe") == ["yes"], r.headers
            # Kept alive between probes (interval <= 4 s): no Connection: close.
            assert r.header("connection") == [], r.headers
    assert client_requests(a) == [] and client_requests(b) == []


def voluntary_switches(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


def test_probes_of_many_nodes_share_wake_ups(upstream, lbproxy, journal):
    """200 nodes probed every second start on a 100 ms grid (a tenth of the interval), and
    their results are looked at one 10 ms step later: 20 wake-ups of the prober a second,
    whatever the number of nodes, and a few more when libevent's coarse clock wakes it before a
    step. A start anywhere on the 10 ms grid made one for nearly every step: 113."""
    listener = listening("0.0.0.0", free_port("0.0.0.0"))
    port = listener.getsockname()[1]
    nodes = [(f"127.0.{2 + i // 200}.{1 + i % 200}", port) for i in range(200)]
    check = {"active": {"type": "tcp", "concurrency": 200,
                        "healthy": {"interval": "1s"}, "unhealthy": {"interval": "1s"}}}
    with contextlib.closing(listener):
        lb = lbproxy({"workers": 1,
                      "upstreams": [upstream_cfg("up", nodes, health_check=check)],
                      "routes": [route_cfg("r", ["/*"], ["up"])]},
                     wrapper=journal.wrapper(), journal_stream=True)
        tid = thread_ids(lb.pid)["lbproxy-probe"]
        t0 = time.monotonic()
        until(lambda: time.monotonic() - t0 >= 1.5, 5, what="every node's first probe")
        n0, t0 = voluntary_switches(lb.pid, tid), time.monotonic()
        until(lambda: time.monotonic() - t0 >= 3.0, 5, what="a 3 s window")
        n1, t1 = voluntary_switches(lb.pid, tid), time.monotonic()
        rate = (n1 - n0) / (t1 - t0)
        print(f"\nprober: {rate:.1f} wake-ups a second for 200 probes a second")
        assert rate <= 35, rate
        assert not health_entries(journal), "every node is up"


# -- 4b. tcp checks are half open -------------------------------------------------------------
def listening(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    s.setblocking(False)
    return s


def test_tcp_checks_are_half_open(upstream, lbproxy, journal):
    """A tcp check is a SYN, the node's SYN-ACK and a reset: the node's kernel answers for its
    listener, which gets no connection to accept, and wakes no application. A port closed is
    still found, and its reopening too."""
    a = upstream("a", "127.0.0.2")
    port = free_port("127.0.0.3")
    check = {"active": {"type": "tcp", "timeout": "500ms",
                        "healthy": {"interval": "100ms", "successes": 3},
                        "unhealthy": {"interval": "100ms", "tcp_failures": 1}}}
    lbproxy({"workers": 2,
             "upstreams": [upstream_cfg("up", [a, ("127.0.0.3", port)], health_check=check)],
             "routes": [route_cfg("r", ["/*"], ["up"])]},
            wrapper=journal.wrapper(), journal_stream=True)
    node = f"127.0.0.3:{port}"
    wait_health(journal, node, "down", 10)  # nothing listened at the start
    with contextlib.closing(listening("127.0.0.3", port)) as s:
        # Up again after 3 checks in a row that reached this listener, none of them accepted:
        # a full connect would have left 3 connections in its queue, reset or not.
        wait_health(journal, node, "healthy", 10)
        with pytest.raises(BlockingIOError):
            s.accept()
    until(lambda: len(health_entries(journal, node, "down")) >= 2, 10, what=f"{node} down again")


# -- 5. https probes --------------------------------------------------------------------------
def https_lb(lbproxy, journal, pki, nodes, **kw):
    check = active_check("200ms", type="https", **kw)
    return lbproxy({"workers": 2,
                    "upstreams": [upstream_cfg("up", nodes, scheme="https",
                                               tls={"ca_file": str(pki.ca)},
                                               health_check=check)],
                    "routes": [route_cfg("r", ["/*"], ["up"])]},
                   wrapper=journal.wrapper(), journal_stream=True)


def test_https_probes_resume_their_sessions(pki, tls_upstream, lbproxy, journal):
    good = tls_upstream("good", pki.good, "127.0.0.2")
    # The server closes after each answer (a probe's connection is kept otherwise): each
    # probe connects, and resumes the session of the one before.
    lb = https_lb(lbproxy, journal, pki, [good], http_path=PROBE_PATH + "?close=1")
    wait_probed(good, 4)
    with good._lock:
        handshakes, resumed = good.handshakes, good.resumed
    print(f"\nhttps probes: {handshakes} handshakes, {resumed} resumed")
    # After the first full handshake they resume (one more full one allowed: a probe may
    # start before the first one's ticket came back).
    assert handshakes >= 4 and resumed >= handshakes - 2, (handshakes, resumed)
    assert not health_entries(journal), journal.entries
    for i in range(5):
        assert served_by(lb.request("GET", f"/tls/{i}")) == "good"


def test_https_probes_verify(pki, tls_upstream, lbproxy, journal):
    good = tls_upstream("good", pki.good, "127.0.0.2")
    other_ca = tls_upstream("other", pki.unknown, "127.0.0.3")
    lb = https_lb(lbproxy, journal, pki, [good, other_ca])
    e, _ = wait_health(journal, node_of(other_ca), "down", 10)
    # The handshake failed: a TCP failure, and the journal says it was the certificate.
    print(f"\n{e['MESSAGE']}")
    assert e["LBPROXY_REASON"] == "2 TCP failures in a row (active check)", e
    assert "certificate verification failed" in e["MESSAGE"], e
    assert other_ca.requests == [] and other_ca.handshake_errors, other_ca.handshake_errors
    assert not health_entries(journal, node_of(good)), "the good node stays healthy"
    for i in range(10):
        assert served_by(lb.request("GET", f"/tls/{i}")) == "good"
    assert lb.terminate() == 0


# -- 6. maintenance over D-Bus ----------------------------------------------------------------
def maint_lb(upstream, lbproxy, journal, bus, tmp_path, interval):
    """a and b under an active check, b put in maint over D-Bus: no probe and no request
    reaches it. Returns (lb, a, b)."""
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy({"workers": 2,
                  "upstreams": [upstream_cfg("up", [a, b], health_check=active_check(
                      f"{interval * 1000:g}ms"))],
                  "routes": [route_cfg("r", ["/*"], ["up"])]},
                 args=["--state-dir", str(state)], env=bus.env(),
                 wrapper=journal.wrapper(), journal_stream=True)
    bus.wait_name()
    wait_probed(b, 2)

    bus.call("SetNodeState", "ssqs", "up", "127.0.0.3", b.port, "maint")
    e, _ = wait_health(journal, node_of(b), "maint", 10)
    assert e["LBPROXY_REASON"] == "admin state", e
    # A probe under way when the call came may still arrive, then none for 10 intervals while
    # traffic flows, all of it to a.
    sent = 0
    for allowed in (1, 0):
        n = len(probes(b))
        t0 = time.monotonic()
        for _ in range(100000):
            if time.monotonic() - t0 >= 5 * interval:
                break
            assert served_by(lb.request("GET", f"/maint/{sent}")) == "a"
            sent += 1
        assert len(probes(b)) <= n + allowed, (n, len(probes(b)))
    assert client_requests(b) == []
    return lb, a, b


def test_maint_over_dbus_stops_probes_and_traffic(upstream, lbproxy, journal, bus, tmp_path):
    maint_lb(upstream, lbproxy, journal, bus, tmp_path, 0.2)


def test_back_from_maint_probes_and_traffic_resume(upstream, lbproxy, journal, bus, tmp_path):
    lb, a, b = maint_lb(upstream, lbproxy, journal, bus, tmp_path, 0.2)
    n = len(probes(b))
    bus.call("SetNodeState", "ssqs", "up", "127.0.0.3", b.port, "ready")
    wait_health(journal, node_of(b), "healthy", 10)
    wait_probed(b, n + 2)
    order = [served_by(lb.request("GET", f"/ready/{i}")) for i in range(20)]
    assert order.count("a") == 10 and order.count("b") == 10, order
    assert lb.terminate() == 0


# -- 7. a name with one dead address ----------------------------------------------------------
def health_details(bus, upstream):
    out = bus.busctl("get-property", "org.lbproxy1", f"/org/lbproxy1/upstream/{upstream}",
                     "org.lbproxy1.Upstream", "Health", "HealthDetails").stdout.splitlines()
    return out


def test_a_dead_address_of_a_name_is_skipped_and_the_node_stays_up(pair, dnsmasq, lbproxy,
                                                                  journal, bus, tmp_path):
    a, b = pair
    d = dnsmasq(records=[("web.test", "127.0.0.2", 300), ("web.test", "127.0.0.3", 300)],
                local=["test"])
    node = f"web.test:{a.port}"
    state = tmp_path / "state"
    state.mkdir()
    lb = lbproxy({"workers": 2, "dns": {"servers": [d.server]},
                  "upstreams": [upstream_cfg("web", [("web.test", a.port)], pass_host="node",
                                             health_check=active_check("200ms"))],
                  "routes": [route_cfg("r", ["/*"], ["web"])]},
                 args=["--state-dir", str(state)], env=bus.env(),
                 wrapper=journal.wrapper(), journal_stream=True)
    bus.wait_name()
    wait_probed(a, 1)
    wait_probed(b, 1)
    order = [served_by(lb.request("GET", f"/both/{i}")) for i in range(10)]
    assert order.count("a") == 5 and order.count("b") == 5, order

    b.stop()
    said = f"address 127.0.0.3:{a.port} of node {node} is down"
    until(lambda: journal.matching(lambda e: said in e.get("MESSAGE", "")), 10,
          what="the address down")
    for i in range(50):
        assert served_by(lb.request("GET", f"/one/{i}")) == "a"
    assert not health_entries(journal, node), "the node itself stays healthy"
    health, details = health_details(bus, "web")
    assert health == f'a(sqs) 1 "web.test" {a.port} "healthy"', health
    assert details.startswith(f'a(sqssbt) 1 "web.test" {a.port} "healthy"'), details

    b.restart()
    said = f"address 127.0.0.3:{a.port} of node {node} is up again"
    until(lambda: journal.matching(lambda e: said in e.get("MESSAGE", "")), 10,
          what="the address up again")
    order = [served_by(lb.request("GET", f"/again/{i}")) for i in range(10)]
    assert order.count("a") == 5 and order.count("b") == 5, order


# -- 8. the seed with a dead stand-in ---------------------------------------------------------
def seed_with_checks(standins, interval="300ms"):
    """data/lbproxy.yaml (seed_config_text) with an active https check on both upstreams."""
    text = seed_config_text(standins)
    check = (f"    health_check: {{active: {{type: https, http_path: {PROBE_PATH}, "
             f"healthy: {{interval: {interval}}}, unhealthy: {{interval: {interval}}}}}}}\n")
    text, n = re.subn(r"(?m)^(    pass_host: node.*\n)", lambda m: m.group(1) + check, text)
    assert n == 2, text
    return text


def seed_counts(lb, n):
    seen = {HTTPBIN: 0, MOCK: 0}
    for i in range(n):
        r = lb.request("GET", "/headers", host_header="client.example")
        assert r.status == 200, r
        host = r.json()["headers"]["Host"]
        seen[HTTPBIN if host.split(":")[0] == HTTPBIN else MOCK] += 1
    return seen


def test_seed_with_active_checks_still_splits_25_25(standins, seed_dns, certs, lbproxy,
                                                    tmp_path, journal):
    g = globals_yaml(tmp_path / "globals.yaml", seed_dns, certs)
    lb = lbproxy(seed_with_checks(standins), args=["--config", str(g)],
                 wrapper=journal.wrapper(), journal_stream=True)
    for s in standins.values():
        wait_probed(s, 2)
    assert seed_counts(lb, 50) == {HTTPBIN: 25, MOCK: 25}
    for name, s in standins.items():
        reqs = client_requests(s)
        assert len(reqs) == 25, (name, len(reqs))
        assert {r.header("host")[0] for r in reqs} == {expected_host(name, s)}
        assert {r.header("host")[0] for r in probes(s)} == {expected_host(name, s)}
        assert s.sni and set(s.sni) == {name}, (name, s.sni)
        assert s.handshake_errors == [], s.handshake_errors
    assert not journal.matching(lambda e: e.get("LBPROXY_HEALTH")), "every node stays healthy"


def test_seed_with_httpbin_dead_sends_everything_to_mock(standins, seed_dns, certs, lbproxy,
                                                        tmp_path, journal):
    g = globals_yaml(tmp_path / "globals.yaml", seed_dns, certs)
    lb = lbproxy(seed_with_checks(standins), args=["--config", str(g)],
                 wrapper=journal.wrapper(), journal_stream=True)
    httpbin = standins[HTTPBIN]
    wait_probed(httpbin, 1)
    httpbin.stop()
    e, _ = wait_health(journal, f"{HTTPBIN}:{httpbin.port}", "down", 10)
    assert e["LBPROXY_REASON"] == "2 TCP failures in a row (active check)", e
    standins[MOCK].reset()
    assert seed_counts(lb, 50) == {HTTPBIN: 0, MOCK: 50}
    assert len(client_requests(standins[MOCK])) == 50


# -- 9. an APISIX manifest with a healthCheck -------------------------------------------------
APISIX_MANIFEST = """\
apiVersion: apisix.apache.org/v2
kind: ApisixUpstream
metadata: {{name: two}}
spec:
  externalNodes:
  - {{type: Domain, name: 127.0.0.2, port: {pa}}}
  - {{type: Domain, name: 127.0.0.3, port: {pb}}}
  healthCheck:
    active:
      type: http
      httpPath: {path}
      timeout: 300ms
      requestHeaders: ["User-Agent: {agent}"]
      healthy: {{interval: 300ms, successes: 2}}
      unhealthy: {{interval: 300ms, timeout: 2}}
---
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata: {{name: rt}}
spec:
  http:
  - name: all
    match: {{paths: ["/*"]}}
    upstreams: [{{name: two}}]
"""


def test_apisix_manifest_health_check_takes_a_silent_node_out(upstream, lbproxy, journal,
                                                            tmp_path):
    a = upstream("a", "127.0.0.2")
    b = upstream("b", "127.0.0.3")
    m = tmp_path / "two.yaml"
    m.write_text(APISIX_MANIFEST.format(pa=a.port, pb=b.port, path=PROBE_PATH,
                                        agent=PROBE_AGENT))
    lb = lbproxy(to_yaml({"workers": 2, "listeners": [{"name": "http", "listen": "@LISTEN@"}]}),
                 args=["--config", str(m)], wrapper=journal.wrapper(), journal_stream=True)
    wait_probed(b, 1)
    assert all(r.header("user-agent") == [PROBE_AGENT] for r in probes(b))
    order = [served_by(lb.request("GET", f"/both/{i}")) for i in range(10)]
    assert order.count("a") == 5 and order.count("b") == 5, order

    # It accepts and never answers: a request sent there would wait for its read timeout.
    b.hang = True
    e, _ = wait_health(journal, node_of(b), "down", 10)
    assert e["LBPROXY_REASON"] == "2 timeouts in a row (active check)", e
    before = len(client_requests(b))
    for i in range(20):
        assert served_by(lb.request("GET", f"/one/{i}")) == "a"
    assert len(client_requests(b)) == before
    b.hang = False
