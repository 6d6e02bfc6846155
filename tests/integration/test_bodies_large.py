# SPDX-License-Identifier: MIT
"""100 MB bodies through lbproxy with curl, both directions, in bounded memory: the upstream's
sha256 must match, and lbproxy's VmHWM stays under 64 MB (LBPROXY_MAX_HWM_MB overrides the
limit, for sanitizer builds whose runtime alone is larger)."""

import hashlib
import os
import subprocess

import pytest

from lbtest import route_cfg, upstream_cfg
from upstream import pattern_sha256

SIZE = 100 * 1024 * 1024
MAX_HWM_KIB = int(float(os.environ.get("LBPROXY_MAX_HWM_MB", "64")) * 1024)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("big") / "body.bin"
    h = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(p, "wb") as f:
        for i in range(SIZE // len(block)):
            b = block[:-4] + i.to_bytes(4, "big")  # no two MiB alike
            f.write(b)
            h.update(b)
    return p, h.hexdigest()


@pytest.fixture
def proxied(upstream, lbproxy):
    u = upstream("big", "127.0.0.2")
    lb = lbproxy({"upstreams": [upstream_cfg("up", [u])],
                  "routes": [route_cfg("all", ["/*"], ["up"])]})
    return u, lb


def run_curl(args, stdin=None, timeout=120):
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + args, stdin=stdin,
                          capture_output=True, timeout=timeout + 10)


def assert_hwm(lb):
    hwm = lb.vm_hwm_kib()
    assert hwm < MAX_HWM_KIB, f"lbproxy VmHWM {hwm} KiB >= {MAX_HWM_KIB} KiB"


def test_upload_100mb_content_length(proxied, big_file):
    u, lb = proxied
    path, sha = big_file
    p = run_curl(["-T", str(path), "-X", "POST", f"{lb.url}/upload-cl"])
    assert p.returncode == 0, p.stderr
    (rec,) = u.requests
    assert rec.header("content-length") == [str(SIZE)]
    assert rec.body_len == SIZE
    assert rec.body_sha256 == sha
    assert_hwm(lb)


def test_upload_100mb_chunked(proxied, big_file):
    u, lb = proxied
    path, sha = big_file
    with open(path, "rb") as f:  # from stdin, of unknown size: curl sends it chunked
        p = run_curl(["-T", "-", "-X", "POST", "-H", "Transfer-Encoding: chunked",
                      f"{lb.url}/upload-chunked"], stdin=f)
    assert p.returncode == 0, p.stderr
    (rec,) = u.requests
    assert rec.body_len == SIZE
    assert rec.body_sha256 == sha
    assert_hwm(lb)


@pytest.mark.parametrize("kind", ["bytes", "chunked"])
def test_download_100mb(proxied, kind):
    u, lb = proxied
    proc = subprocess.Popen(["curl", "-sS", "--max-time", "120", f"{lb.url}/{kind}/{SIZE}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h = hashlib.sha256()
    n = 0
    while True:
        piece = proc.stdout.read(1024 * 1024)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    err = proc.stderr.read()
    assert proc.wait(30) == 0, err
    assert n == SIZE
    assert h.hexdigest() == pattern_sha256(SIZE)
    assert_hwm(lb)


def test_slow_reader_download_bounded_memory(proxied):
    """The client reads slowly: lbproxy must apply back-pressure instead of buffering the
    upstream's 100 MB."""
    import socket
    import time
    u, lb = proxied
    with lb.client(timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.request("GET", f"/bytes/{SIZE}")
        got = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and got < 8 * 1024 * 1024:
            got += len(c.sock.recv(16 * 1024))
            time.sleep(0.001)
        assert_hwm(lb)
