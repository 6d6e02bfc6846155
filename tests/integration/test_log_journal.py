# SPDX-License-Identifier: MIT
"""Logging off the request path: access entries reach a journal (a stand-in socket at
/run/systemd/journal/socket, in a mount namespace of lbproxy's own) with their fields; a
journal that reads nothing stalls no request, and what could not be queued is counted and
said; without a journal lbproxy says so once and goes on with stderr; warnings a client can
trigger at will are rate-limited and the rest counted."""

import os
import re
import socket
import time

import pytest

from journal_helpers import FakeJournal, journal_namespace
from lbtest import route_cfg, upstream_cfg

REQUEST_ID = "5c1b9a2e4d7f4e1a9b3c6d8e0f2a4b6c"
SANITIZED = os.environ.get("LBPROXY_SANITIZED") == "1"
# A request through lbproxy takes about a millisecond here; a stall on the journal would take
# until the journal reads again (forever, in these tests).
PROMPT = 3.0 if SANITIZED else 1.0


def config(u, **kw):
    cfg = {"workers": 2, "access_log": True,
           "upstreams": [upstream_cfg("up1", [u])],
           "routes": [route_cfg("r1", ["/*"], ["up1"])]}
    cfg.update(kw)
    return cfg


@pytest.fixture
def journal(tmp_path):
    j = FakeJournal(tmp_path)
    yield j
    j.close()


def is_access(e):
    return e.get("MESSAGE_ID") == REQUEST_ID


def dropped_access(journal_or_lines):
    """The N of every "dropped N access entries" said so far."""
    texts = journal_or_lines
    if isinstance(journal_or_lines, FakeJournal):
        texts = [e.get("MESSAGE", "") for e in journal_or_lines.matching(lambda e: True)]
    return sum(int(m.group(1)) for t in texts
               for m in [re.search(r"dropped (\d+) access entries", t)] if m)


def test_access_entries_reach_the_journal_with_their_fields(upstream, lbproxy, journal):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy(config(u), wrapper=journal.wrapper(), journal_stream=True)
    for i in range(5):
        assert lb.request("GET", f"/fields/{i}?q=1").status == 200
    assert lb.request("GET", "/status/503").status == 503
    entries = journal.wait(is_access, count=6)
    assert len(entries) == 6, journal.entries
    for i, e in enumerate(entries[:5]):
        assert e["LBPROXY_PATH"] == f"/fields/{i}", e  # the path, without the query
        assert e["LBPROXY_STATUS"] == "200" and e["PRIORITY"] == "6", e
    for e in entries:
        assert e["LBPROXY_ROUTE"] == "r1" and e["LBPROXY_UPSTREAM"] == "up1", e
        assert e["LBPROXY_NODE"] == f"127.0.0.2:{u.port}", e
        assert e["LBPROXY_NODE_ADDRESS"] == f"127.0.0.2:{u.port}", e
        assert e["LBPROXY_METHOD"] == "GET", e
        assert re.fullmatch(r"127\.0\.0\.1:\d+", e["LBPROXY_CLIENT"]), e
        assert re.fullmatch(r"\d+", e["LBPROXY_DURATION_USEC"]), e
        assert int(e["LBPROXY_BYTES_IN"]) > 0 and int(e["LBPROXY_BYTES_OUT"]) > 0, e
        assert e["SYSLOG_IDENTIFIER"] == "lbproxy", e
        assert e["MESSAGE"].startswith(e["LBPROXY_CLIENT"] + ' "GET '), e
        assert "LBPROXY_ERROR" not in e, e
    assert entries[5]["LBPROXY_STATUS"] == "503" and entries[5]["PRIORITY"] == "4"
    # Messages go there too (the start), and nothing to stderr, as under systemd.
    assert journal.matching(lambda e: e.get("MESSAGE") == "Listening on 'http'")
    assert lb.terminate() == 0
    assert journal.wait(lambda e: e.get("MESSAGE", "").startswith("Stopped after 6 requests"))
    assert lb.log_text() == ""


def test_stuck_journal_stalls_no_request_and_drops_are_counted(upstream, lbproxy, journal):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy(config(u), wrapper=journal.wrapper(), journal_stream=True)
    assert lb.request("GET", "/before").status == 200
    assert journal.wait(is_access)

    # journald stops reading: its socket holds a few entries, each worker's queue about 700
    # of these (1 MiB, 3/4 for access entries), the rest must be dropped, never waited for.
    journal.pause()
    n = 2500
    path = "/stuck/" + "x" * 1000
    conns = [lb.client() for _ in range(4)]
    slowest = 0.0
    start = time.monotonic()
    for i in range(n):
        c = conns[i % len(conns)]
        t = time.monotonic()
        c.request("GET", f"{path}?{i}")
        assert c.read_response().status == 200
        slowest = max(slowest, time.monotonic() - t)
    took = time.monotonic() - start
    for c in conns:
        c.close()
    assert slowest < PROMPT, f"slowest request {slowest:.3f}s with a stuck journal"

    # journald reads again: every entry arrives, or was counted in "dropped N access entries".
    journal.resume()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = len(journal.matching(lambda e: is_access(e) and
                                   e["LBPROXY_PATH"].startswith("/stuck/")))
        dropped = dropped_access(journal)
        if got + dropped >= n:
            break
        time.sleep(0.05)
    assert dropped > 0, f"{got} entries arrived, none dropped"
    assert got + dropped == n, f"{got} arrived + {dropped} dropped != {n}"
    reports = journal.matching(lambda e: "dropped" in e.get("MESSAGE", ""))
    assert all(e["PRIORITY"] == "4" for e in reports), reports
    # Once a second at most (plus the one at the stop).
    assert len(reports) <= took + 3, (len(reports), took)
    print(f"{n} requests in {took:.2f}s, slowest {slowest * 1000:.1f} ms; {got} entries "
          f"arrived, {dropped} dropped, said in {len(reports)} reports")
    assert lb.terminate() == 0


@pytest.mark.parametrize("journal_stream", [True, False])
def test_stop_with_a_stuck_journal_is_prompt(upstream, lbproxy, journal, journal_stream):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy(config(u), wrapper=journal.wrapper(), journal_stream=journal_stream)
    journal.pause()
    for i in range(300):
        assert lb.request("GET", f"/s{i}").status == 200
    t = time.monotonic()
    assert lb.terminate(timeout=15) == 0
    assert time.monotonic() - t < (8 if SANITIZED else 4)
    if not journal_stream:
        # Outside systemd stderr is the log: the access lines the log thread could not write
        # while it waited for the journal are written there at the stop, and the last word.
        assert len(lb.access_lines()) == 300, lb.log_text()[-2000:]
        assert lb.log_lines("Stopped after 300 requests"), lb.log_text()[-2000:]


@pytest.mark.parametrize("socket_state", ["missing", "stale"])
@pytest.mark.parametrize("journal_stream,notice", [
    # Not under systemd: the access log is on stderr; copying it to the journal fails once.
    (False, "No journal ({}): access entries go to stderr only"),
    # Under systemd (JOURNAL_STREAM) with the journal's socket gone: every entry goes to stderr.
    (True, "Cannot write to the journal ({}): log entries go to stderr from now on"),
])
def test_without_a_journal_stderr_says_so_once(upstream, lbproxy, tmp_path, journal_stream,
                                               notice, socket_state):
    # missing: no socket at the path, found at the start. stale: a socket file nobody is
    # behind (journald gone), found by the first send.
    path, reason = None, "No such file or directory"
    if socket_state == "stale":
        path, reason = tmp_path / "stale.sock", "Connection refused"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(str(path))
        s.close()
    u = upstream("u", "127.0.0.2")
    lb = lbproxy(config(u), wrapper=journal_namespace(path), journal_stream=journal_stream)
    for i in range(50):
        assert lb.request("GET", f"/nj{i}").status == 200
    assert len(lb.wait_log("route=r1", count=50)) == 50
    assert lb.terminate() == 0
    assert len(lb.log_lines(notice.format(reason))) == 1, lb.log_text()
    assert len(lb.log_lines("journal")) == 1, lb.log_text()
    assert len(lb.access_lines()) == 50
    assert lb.log_lines("Listening on 'http'") and lb.log_lines("Stopped after 50 requests")


def test_refused_request_warnings_are_rate_limited(upstream, lbproxy):
    u = upstream("u", "127.0.0.2")
    lb = lbproxy(config(u))
    n = 300
    start = time.monotonic()
    for i in range(n):
        with lb.client() as c:
            c.send(b"NOT A REQUEST\r\n\r\n")
            assert c.read_response().status == 400
    took = time.monotonic() - start
    assert lb.terminate() == 0
    refused = lb.log_lines("refused request")
    suppressed = sum(int(m.group(1)) for ln in lb.log_lines("Suppressed")
                     for m in [re.search(r"Suppressed (\d+) warnings about clients", ln)] if m)
    assert suppressed > 0, lb.log_text()[-3000:]
    assert len(refused) + suppressed == n, (len(refused), suppressed)
    # 10 a second per worker (2), over the seconds the flood touched.
    assert len(refused) <= 10 * 2 * (int(took) + 2), (len(refused), took)
