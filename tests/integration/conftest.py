# SPDX-License-Identifier: MIT
"""Fixtures of the lbproxy integration suite.

  lbproxy_bin   the daemon under test: $LBPROXY_BIN (relative paths are taken from the repo
                root), default build/src/lbproxy
  upstream      factory: upstream(NAME, host="127.0.0.2") -> a started UpstreamServer
  bus           a private system bus (dbus_helpers.SystemBus) for the D-Bus tests
  lbproxy       factory: lbproxy(CONFIG) -> a started, ready LbProxy; CONFIG is a dict (YAML is
                written from it; a listener on 127.0.0.1 with a free port is added when it has
                no `listeners`) or a YAML string (@LISTEN@ / @PORT@ are replaced); wrapper= a
                command that execs it, same pid (["prlimit", "--nofile=64:64"], or
                journal_helpers.journal_namespace(...)); journal_stream=True: stderr passes for
                journald's stream, as under systemd (LbProxy). At teardown:
                SIGTERM, bounded wait, exit code 0 asserted, and no sanitizer report in its log.
                With LBPROXY_TEST_WORKERS=N, a config that sets no `workers` gets N (lbtest.py).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dbus_helpers import SystemBus  # noqa: E402
from lbtest import REPO_ROOT, LbProxy  # noqa: E402
from upstream import UpstreamServer  # noqa: E402


@pytest.fixture(scope="session")
def lbproxy_bin():
    p = Path(os.environ.get("LBPROXY_BIN", "build/src/lbproxy"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not os.access(p, os.X_OK):
        pytest.fail(f"lbproxy binary not found or not executable: {p} (set LBPROXY_BIN)")
    return p


@pytest.fixture
def bus():
    # Not under pytest's tmp_path (mode 0700): an unprivileged caller must reach the socket.
    d = tempfile.mkdtemp(prefix="lbp-bus-", dir="/tmp")
    os.chmod(d, 0o755)
    b = SystemBus(d).start()
    yield b
    b.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def upstream():
    servers = []

    def make(name, host="127.0.0.2", port=0):
        s = UpstreamServer(name, host, port).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def lbproxy(lbproxy_bin, tmp_path, request):
    procs = []

    def start(config, *, args=(), env=None, expect_exit=0, listen_host="127.0.0.1", wrapper=(),
              journal_stream=False):
        d = tmp_path / f"lbproxy{len(procs)}"
        d.mkdir()
        p = LbProxy(lbproxy_bin, d, config, args=args, env=env, listen_host=listen_host,
                    wrapper=wrapper, journal_stream=journal_stream)
        p.expect_exit = expect_exit
        procs.append(p)
        return p.start()

    yield start

    problems = []
    for p in procs:
        if p.proc is None:
            continue
        if p.alive():
            rc = p.terminate()
            if rc is None:
                problems.append(f"lbproxy {p.pid} did not exit within 20 s of SIGTERM")
            elif p.expect_exit is not None and rc != p.expect_exit:
                problems.append(f"lbproxy {p.pid} exited with {rc} after SIGTERM, "
                                f"wanted {p.expect_exit}")
        else:
            p._finish()
        reports = p.sanitizer_reports()
        if reports:
            # The first report itself (a busy log would push it out of a tail).
            text = p.log_text()
            start = min(text.find(m) for m in reports)
            problems.append(f"sanitizer report in lbproxy's log ({', '.join(reports)}):\n"
                            + text[max(0, start - 200):start + 8000])
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
