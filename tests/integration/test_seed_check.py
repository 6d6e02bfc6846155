# SPDX-License-Identifier: MIT
"""tests/seed-check.sh, the APISIX tutorial's verification, against lbproxy with two plain-HTTP
stand-ins named httpbin.org and mock.api7.ai (their JSON "server" field carries the name)."""

import subprocess

from lbtest import REPO_ROOT, route_cfg, upstream_cfg

SCRIPT = REPO_ROOT / "tests" / "seed-check.sh"


def tutorial(upstream, lbproxy, w1=1, w2=1):
    h = upstream("httpbin.org", "127.0.0.2")
    m = upstream("mock.api7.ai", "127.0.0.3")
    return lbproxy({
        "upstreams": [upstream_cfg("httpbin", [h], pass_host="node"),
                      upstream_cfg("mockapi", [m], pass_host="node")],
        "routes": [route_cfg("getting-started-headers", ["/headers"],
                             [("httpbin", w1), ("mockapi", w2)])],
    })


def run(url, n):
    return subprocess.run(["bash", str(SCRIPT), url, str(n)], capture_output=True, text=True,
                          timeout=120)


def test_seed_check_passes_on_even_split(upstream, lbproxy):
    lb = tutorial(upstream, lbproxy)
    p = run(f"{lb.url}/headers", 50)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "httpbin.org: 25, mock.api7.ai: 25" in p.stdout


def test_seed_check_fails_on_uneven_split(upstream, lbproxy):
    lb = tutorial(upstream, lbproxy, 3, 1)
    p = run(f"{lb.url}/headers", 20)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "httpbin.org: 15, mock.api7.ai: 5" in p.stdout


def test_seed_check_fails_when_nothing_answers():
    p = run("http://127.0.0.1:9/headers", 4)
    assert p.returncode == 1
    assert "httpbin.org: 0, mock.api7.ai: 0" in p.stdout
