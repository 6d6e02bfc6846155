# SPDX-License-Identifier: MIT
"""Readiness and SIGTERM: READY=1 once listening, STATUS= lines; on SIGTERM STOPPING=1, no new
connections served, requests in flight finish within shutdown_grace, exit code 0."""

import socket
import threading
import time

from lbtest import Client, route_cfg, upstream_cfg


def start_proxy(upstream, lbproxy, grace="10s"):
    u = upstream("u")
    lb = lbproxy({"timeouts": {"header": "30s", "keepalive": "60s", "shutdown_grace": grace},
                  "upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("r1", ["/*"], ["up"])]})
    return u, lb


def in_flight(lb, path, timeout=20):
    """Starts a request in a thread; returns (thread, result dict)."""
    out = {}

    def run():
        try:
            out["response"] = lb.request("GET", path, timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported by the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_ready_and_status_notified(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy)
    lines = lb.notify_lines()
    assert "READY=1" in lines
    assert any(ln.startswith("STATUS=") for ln in lines), lines
    # Ready means listening: a request goes through at once.
    assert lb.request("GET", "/now").status == 200


def test_sigterm_idle_exits_0_and_notifies_stopping(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy)
    assert lb.request("GET", "/x").status == 200
    t0 = time.monotonic()
    rc = lb.terminate(timeout=10)
    assert rc == 0
    assert time.monotonic() - t0 < 5
    assert "STOPPING=1" in lb.notify_lines()


def test_sigterm_with_request_in_flight(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy)
    t, out = in_flight(lb, "/delay/2")
    u.wait_heads(1)  # the request reached the upstream: it is in flight
    t0 = time.monotonic()
    lb.proc.send_signal(15)
    t.join(15)
    assert not t.is_alive()
    assert "error" not in out, out.get("error")
    r = out["response"]
    assert r.status == 200
    assert r.json()["path"] == "/delay/2"
    rc = lb.wait_exit(15)
    assert rc == 0
    assert time.monotonic() - t0 < 10
    assert "STOPPING=1" in lb.notify_lines()


def test_no_new_connections_served_after_sigterm(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy)
    t, out = in_flight(lb, "/delay/2")
    u.wait_heads(1)
    lb.proc.send_signal(15)
    assert lb.wait_notify("STOPPING=1", 5), lb.notify_lines()
    served = None
    try:
        with Client(*lb.address, timeout=5) as c:
            c.request("GET", "/late")
            served = c.read_response()
    except (OSError, Exception):  # refused, reset, closed, or timed out: not served
        served = None
    assert served is None or served.status != 200, served
    t.join(15)
    assert out.get("response") is not None and out["response"].status == 200, out
    assert lb.wait_exit(15) == 0
    assert "/late" not in [h.path for h in u.heads]


def test_idle_keepalive_client_does_not_delay_exit(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy)
    with lb.client() as c:
        c.request("GET", "/x")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        lb.proc.send_signal(15)
        assert lb.wait_exit(10) == 0
        assert time.monotonic() - t0 < 5


def test_grace_period_bounds_shutdown(upstream, lbproxy):
    u, lb = start_proxy(upstream, lbproxy, grace="1s")
    t, out = in_flight(lb, "/delay/8")
    u.wait_heads(1)
    t0 = time.monotonic()
    lb.proc.send_signal(15)
    rc = lb.wait_exit(15)
    took = time.monotonic() - t0
    assert rc == 0
    assert took < 5, f"exit took {took:.1f}s with shutdown_grace 1s"
    t.join(15)
    r = out.get("response")
    assert r is None or r.status != 200, r


def test_sigterm_with_upload_in_flight(upstream, lbproxy):
    """An upload half sent when SIGTERM comes still completes."""
    import hashlib
    from lbtest import build_request
    u, lb = start_proxy(upstream, lbproxy)
    body = bytes(range(256)) * 4096  # 1 MiB
    with lb.client(timeout=15) as c:
        c.send(build_request("PUT", "/up", headers=[("Content-Length", str(len(body)))]))
        c.send(body[:len(body) // 2])
        u.wait_heads(1)
        lb.proc.send_signal(15)
        assert lb.wait_notify("STOPPING=1", 5)
        c.send(body[len(body) // 2:])
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert lb.wait_exit(15) == 0


def test_sigterm_then_idle_keepalive_after_inflight_request_is_closed(upstream, lbproxy):
    """A keep-alive client whose request finished during the shutdown gets its answer and then
    the connection is closed (not left for another request)."""
    u, lb = start_proxy(upstream, lbproxy)
    with lb.client(timeout=10) as c:
        c.request("GET", "/delay/1")
        u.wait_heads(1)
        lb.proc.send_signal(15)
        r = c.read_response()
        assert r.status == 200
        assert c.is_closed(5)
    assert lb.wait_exit(15) == 0
