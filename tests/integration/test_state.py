# SPDX-License-Identifier: MIT
"""The runtime state at start: a state.yaml older than the files (or that does not parse) is
checked with the files as one configuration, moved aside to state.yaml.rejected and reported with
its file:line:column in the log and in STATUS=, and lbproxy serves the files; the state directory
is created when missing, and a start that could not persist is refused."""

import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from lbtest import free_port, read_to_eof
from test_streams import EchoServer

NOTE = "runtime state rejected (moved to state.yaml.rejected)"


@pytest.fixture
def pg():
    s = EchoServer("pg", "127.0.0.3")
    yield s
    s.stop()


def files_yaml(web, pg=None, db_port=None):
    """The configuration files: an http listener and route to `web`; with `pg`, also a tcp
    listener on `db_port` whose upstream is pg (what a newer file adds)."""
    text = "listeners:\n  - {name: http, listen: \"@LISTEN@\"}\n"
    if pg:
        text += (f"  - {{name: db, listen: \"127.0.0.1:{db_port}\", protocol: tcp, "
                 f"upstream: pg}}\n")
    text += ("upstreams:\n"
             f"  - {{name: web, nodes: [{{host: {web.host}, port: {web.port}}}]}}\n")
    if pg:
        text += f"  - {{name: pg, nodes: [{{host: {pg.host}, port: {pg.port}}}]}}\n"
    text += "routes: [{name: r, paths: [/headers], upstreams: [{name: web}]}]\n"
    return text


def dump_state(lbproxy_bin, tmp_path, yaml):
    """What state.yaml holds: the configuration as `lbproxy --check --dump` writes it."""
    path = tmp_path / "old.yaml"
    path.write_text(yaml.replace("@LISTEN@", "127.0.0.1:1"))
    p = subprocess.run([str(lbproxy_bin), "--check", "--dump", "--config", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return "# lbproxy runtime state\n" + p.stdout


def status_lines(lb):
    return [ln for ln in lb.notify_lines() if ln.startswith("STATUS=")]


def wait_status(lb, pred, count=1, timeout=20.0):
    """Waits (bounded) until `count` STATUS= lines satisfy `pred`; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        got = [ln for ln in status_lines(lb) if pred(ln)]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def pg_says(port):
    """What the upstream behind a tcp listener says to a client that sends nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s).decode()


def test_stale_state_is_rejected_and_files_serve(lbproxy, lbproxy_bin, upstream, pg, tmp_path):
    web = upstream("web", "127.0.0.2")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    # The state was written before the files gained the tcp listener and its upstream pg.
    stale = dump_state(lbproxy_bin, tmp_path, files_yaml(web))
    (state_dir / "state.yaml").write_text(stale)
    (state_dir / "state.yaml.rejected").write_text("an older rejected state\n")
    upstreams_line = stale.splitlines().index("upstreams:") + 2  # the first item, 1-based

    db_port = free_port()
    lb = lbproxy(files_yaml(web, pg, db_port), args=["--state-dir", str(state_dir)])

    # The listener goes to pg, as the files say.
    assert pg_says(db_port) == "\nbye 0 from pg\n"
    assert lb.request("GET", "/headers").json()["server"] == "web"

    # The state is moved aside, replacing the older rejected one.
    assert not (state_dir / "state.yaml").exists()
    assert (state_dir / "state.yaml.rejected").read_text() == stale

    # One error naming state.yaml's line and column, and why.
    where = f"{state_dir}/state.yaml:{upstreams_line}:1: upstreams: no upstream named 'pg'"
    entries = lb.log_lines("Runtime state", "rejected, started from the configuration files "
                           "alone (moved to state.yaml.rejected)")
    assert len(entries) == 1, lb.log_text()
    assert where in lb.log_text(), lb.log_text()
    assert re.search(r"which listeners\[1\]\.upstream uses \(.*lbproxy\.yaml:3:\d+\)",
                     lb.log_text()), lb.log_text()

    # STATUS= says it at READY, and every 5 s after (the periodic status keeps the note).
    first = status_lines(lb)[0]
    assert NOTE in first and where in first, first
    assert len(wait_status(lb, lambda ln: where in ln, count=2)) >= 2, status_lines(lb)

    # A reload makes the files current: the note goes.
    n = len(status_lines(lb))
    os.kill(lb.pid, signal.SIGHUP)
    after = wait_status(lb, lambda ln: True, count=n + 1)
    assert len(after) > n, status_lines(lb)
    assert NOTE not in after[-1], after[-1]


def test_unparsable_state_is_rejected(lbproxy, upstream, tmp_path):
    web = upstream("web", "127.0.0.2")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    broken = "upstreams:\n  - {name: web, nodes: [\n"
    (state_dir / "state.yaml").write_text(broken)
    lb = lbproxy(files_yaml(web), args=["--state-dir", str(state_dir)])

    assert lb.request("GET", "/headers").json()["server"] == "web"
    assert not (state_dir / "state.yaml").exists()
    assert (state_dir / "state.yaml.rejected").read_text() == broken
    m = re.search(re.escape(f"{state_dir}/state.yaml") + r":(\d+):(\d+): ", lb.log_text())
    assert m, lb.log_text()
    assert len(lb.log_lines("Runtime state", "rejected")) == 1
    first = status_lines(lb)[0]
    assert NOTE in first and m.group(0) in first, first


def test_missing_state_dir_is_created_and_persisted_to(lbproxy, upstream, bus, tmp_path):
    web = upstream("web", "127.0.0.2")
    state_dir = tmp_path / "var" / "lib" / "lbproxy"
    lb = lbproxy(files_yaml(web), args=["--state-dir", str(state_dir)], env=bus.env())
    mode = stat.S_IMODE(os.stat(state_dir).st_mode)
    assert mode == 0o700, oct(mode)
    assert os.listdir(state_dir) == []  # the write check left nothing behind
    bus.wait_name()
    bus.call("SetRouteUpstreamWeight", "ssu", "r", "web", 3)
    assert "weight: 3" in (state_dir / "state.yaml").read_text()
    assert lb.alive()


def run_refused(lbproxy_bin, tmp_path, state_dir, prefix=()):
    config = tmp_path / "lb.yaml"
    config.write_text("listeners: [{name: http, listen: \"127.0.0.1:%d\"}]\n" % free_port())
    p = subprocess.run(list(prefix) + [str(lbproxy_bin), "--config", str(config),
                                       "--state-dir", str(state_dir)],
                       capture_output=True, text=True, timeout=30)
    return p


def test_state_dir_under_a_file_refuses_start(lbproxy_bin, tmp_path):
    (tmp_path / "file").write_text("")
    state_dir = tmp_path / "file" / "state"
    p = run_refused(lbproxy_bin, tmp_path, state_dir)
    assert p.returncode == 1, p
    assert f"Cannot use the state directory {state_dir}: Not a directory" in p.stderr, p.stderr


def test_read_only_state_dir_refuses_start(lbproxy_bin, tmp_path):
    state_dir = tmp_path / "ro"
    state_dir.mkdir()
    # A read-only bind mount in a mount namespace of its own: root can write anywhere else.
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here: " + probe.stderr.decode())
    wrapper = ["unshare", "--mount", "sh", "-c",
               f"mount --bind '{state_dir}' '{state_dir}' && "
               f"mount -o remount,bind,ro '{state_dir}' && exec \"$@\"", "sh"]
    p = run_refused(lbproxy_bin, tmp_path, state_dir, prefix=wrapper)
    assert p.returncode == 1, p
    assert f"Cannot use the state directory {state_dir}: Read-only file system" in p.stderr, \
        p.stderr


def test_state_that_does_not_build_is_rejected(lbproxy, upstream, tmp_path):
    """Past the loader, the model: a CA file the state names is gone since it was written."""
    web = upstream("web", "127.0.0.2")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.yaml").write_text(
        "upstreams:\n"
        "- {name: web, scheme: https, tls: {ca_file: /nonexistent/ca.pem},\n"
        "   nodes: [{host: 127.0.0.2, port: 443}]}\n"
        "routes: [{name: r, paths: [/headers], upstreams: [{name: web}]}]\n")
    lb = lbproxy(files_yaml(web), args=["--state-dir", str(state_dir)])
    assert lb.request("GET", "/headers").json()["server"] == "web"
    assert (state_dir / "state.yaml.rejected").exists()
    assert not (state_dir / "state.yaml").exists()
    assert len(lb.log_lines("Runtime state", "rejected")) == 1, lb.log_text()
    first = status_lines(lb)[0]
    assert NOTE in first and "tls.ca_file /nonexistent/ca.pem" in first, first
