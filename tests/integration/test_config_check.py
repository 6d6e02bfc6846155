# SPDX-License-Identifier: MIT
"""`lbproxy --check`: exit 0 for a valid configuration; exit 1 with `FILE:LINE:COLUMN: message`
on stderr, pointing at the offending key (or its value) for an invalid one."""

import subprocess

import pytest

VALID = """\
access_log: true
timeouts:
  header: 30s
  keepalive: 60s
  shutdown_grace: 10s
limits:
  max_header_bytes: 32768
  max_headers: 100
listeners:
  - name: http
    listen: "127.0.0.1:9080"
upstreams:
  - name: up1
    scheme: http
    pass_host: pass
    retries: 1
    keepalive_pool: 32
    timeout:
      connect: 5s
      send: 60s
      read: 60s
    nodes:
      - host: 127.0.0.2
        port: 8080
        weight: 1
  - name: up2
    pass_host: rewrite
    upstream_host: up2.example
    nodes:
      - host: 127.0.0.3
        port: 8081
        weight: 1
routes:
  - name: r1
    paths: ["/headers", "/api/*"]
    hosts: ["a.example", "*.b.example"]
    methods: ["GET"]
    priority: 0
    upstreams:
      - name: up1
        weight: 1
      - name: up2
        weight: 1
"""


def check(lbproxy_bin, *paths):
    args = [str(lbproxy_bin)]
    for p in paths:
        args += ["--config", str(p)]
    args.append("--check")
    return subprocess.run(args, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def pos(text, needle, nth=1):
    """1-based (line, column) of the nth occurrence of needle in text."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def write(tmp_path, text, name="lbproxy.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_error_at(proc, path, places):
    """Exit code 1, and a stderr line `path:LINE:COL: message` for one of the places."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    prefixes = [f"{path}:{line}:{col}: " for line, col in places]
    lines = proc.stderr.splitlines()
    hits = [ln for ln in lines if any(ln.startswith(p) for p in prefixes)]
    assert hits, f"no error line starting with one of {prefixes}; stderr:\n{proc.stderr}"
    assert all(len(h) > len(prefixes[0]) for h in hits), "error without a message"


def mutate(text, old, new, nth=1):
    i = -1
    for _ in range(nth):
        i = text.index(old, i + 1)
    return text[:i] + new + text[i + len(old):]


def test_valid_config_exits_0(lbproxy_bin, tmp_path):
    p = write(tmp_path, VALID)
    proc = check(lbproxy_bin, p)
    assert proc.returncode == 0, proc.stderr


def test_valid_flow_style_config_exits_0(lbproxy_bin, tmp_path):
    text = ('listeners: [{name: http, listen: "127.0.0.1:9080"}]\n'
            'upstreams: [{name: u, nodes: [{host: 127.0.0.2, port: 80, weight: 1}]}]\n'
            'routes: [{name: r, paths: ["/*"], upstreams: [{name: u, weight: 1}]}]\n')
    proc = check(lbproxy_bin, write(tmp_path, text))
    assert proc.returncode == 0, proc.stderr


def test_unknown_top_level_key(lbproxy_bin, tmp_path):
    text = VALID + "bogus_key: 1\n"
    p = write(tmp_path, text)
    assert_error_at(check(lbproxy_bin, p), p, [pos(text, "bogus_key")])


def test_unknown_nested_key(lbproxy_bin, tmp_path):
    text = mutate(VALID, "weight: 1", "wieght: 1")  # in up1's node
    p = write(tmp_path, text)
    assert_error_at(check(lbproxy_bin, p), p, [pos(text, "wieght")])


def test_unknown_key_in_route(lbproxy_bin, tmp_path):
    text = mutate(VALID, "    priority: 0", "    prority: 0")
    p = write(tmp_path, text)
    assert_error_at(check(lbproxy_bin, p), p, [pos(text, "prority")])


@pytest.mark.parametrize("key,old,new", [
    ("retries", "retries: 1", "retries: many"),
    ("access_log", "access_log: true", "access_log: perhaps"),
    ("keepalive_pool", "keepalive_pool: 32", "keepalive_pool: [32]"),
    ("priority", "priority: 0", "priority: high"),
    ("connect", "connect: 5s", "connect: soon"),
    ("max_headers", "max_headers: 100", "max_headers: {a: 1}"),
], ids=["int-retries", "bool-access_log", "list-for-int", "int-priority", "duration",
        "map-for-int"])
def test_wrong_type(lbproxy_bin, tmp_path, key, old, new):
    text = mutate(VALID, old, new)
    p = write(tmp_path, text)
    key_pos = pos(text, new)
    value_pos = (key_pos[0], key_pos[1] + len(key) + 2)
    assert_error_at(check(lbproxy_bin, p), p, [key_pos, value_pos])


@pytest.mark.parametrize("value,why", [
    ("0", "0 is out of range (1..10000000)"),
    ("-1", "-1 is out of range (1..10000000)"),
    ("lots", "expected an integer, got 'lots'"),
    ('"500"', "expected an integer, got the quoted string '500'"),
    ("2.5", "expected an integer, got '2.5'"),
], ids=["zero", "negative", "word", "quoted", "fraction"])
def test_bad_max_connections(lbproxy_bin, tmp_path, value, why):
    text = mutate(VALID, "  max_headers: 100\n",
                  f"  max_headers: 100\n  max_connections: {value}\n")
    p = write(tmp_path, text)
    line, col = pos(text, f"max_connections: {value}")
    proc = check(lbproxy_bin, p)
    assert proc.returncode == 1, proc.stderr
    assert f"{p}:{line}:{col + len('max_connections: ')}: limits.max_connections: {why}" \
        in proc.stderr.splitlines(), proc.stderr


@pytest.mark.parametrize("old,new", [
    ("scheme: http", "scheme: gopher"),
    ("pass_host: pass", "pass_host: sometimes"),
], ids=["scheme", "pass_host"])
def test_bad_enum_value(lbproxy_bin, tmp_path, old, new):
    text = mutate(VALID, old, new)
    p = write(tmp_path, text)
    key_pos = pos(text, new)
    value_pos = (key_pos[0], key_pos[1] + new.index(":") + 2)
    assert_error_at(check(lbproxy_bin, p), p, [key_pos, value_pos])


def test_duplicate_upstream_name(lbproxy_bin, tmp_path):
    dup = ("  - name: up2\n    nodes:\n      - host: 127.0.0.4\n        port: 8082\n"
           "        weight: 1\n")
    text = mutate(VALID, "routes:\n", dup + "routes:\n")
    p = write(tmp_path, text)
    line, col = pos(text, "name: up2", 2)
    assert_error_at(check(lbproxy_bin, p), p, [(line, col), (line, col + 6)])


def test_duplicate_route_name(lbproxy_bin, tmp_path):
    text = VALID + ("  - name: r1\n    paths: [\"/other\"]\n    upstreams:\n"
                    "      - name: up1\n        weight: 1\n")
    p = write(tmp_path, text)
    line, col = pos(text, "name: r1", 2)
    assert_error_at(check(lbproxy_bin, p), p, [(line, col), (line, col + 6)])


def test_dangling_upstream_reference(lbproxy_bin, tmp_path):
    text = mutate(VALID, "      - name: up2\n        weight: 1",
                  "      - name: nope\n        weight: 1")
    p = write(tmp_path, text)
    line, col = pos(text, "name: nope")
    proc = check(lbproxy_bin, p)
    assert_error_at(proc, p, [(line, col), (line, col + 6)])
    assert "nope" in proc.stderr


@pytest.mark.parametrize("old,new", [
    ("port: 8080", "port: 70000"),
    ("port: 8080", "port: 0"),
    ("port: 8080", "port: -1"),
], ids=["70000", "0", "negative"])
def test_node_port_out_of_range(lbproxy_bin, tmp_path, old, new):
    text = mutate(VALID, old, new)
    p = write(tmp_path, text)
    line, col = pos(text, new)
    assert_error_at(check(lbproxy_bin, p), p, [(line, col), (line, col + 6)])


def test_listener_port_out_of_range(lbproxy_bin, tmp_path):
    text = mutate(VALID, '"127.0.0.1:9080"', '"127.0.0.1:99999"')
    p = write(tmp_path, text)
    line, col = pos(text, "listen:")
    assert_error_at(check(lbproxy_bin, p), p, [(line, col), (line, col + 8)])


def test_rewrite_without_upstream_host(lbproxy_bin, tmp_path):
    text = mutate(VALID, "    upstream_host: up2.example\n", "")
    p = write(tmp_path, text)
    proc = check(lbproxy_bin, p)
    assert proc.returncode == 1, proc.stderr
    up2 = pos(text, "name: up2")
    rewrite = pos(text, "pass_host: rewrite")
    assert_error_at(proc, p, [up2, (up2[0], up2[1] + 6), rewrite, (rewrite[0], rewrite[1] + 11),
                              (up2[0], up2[1] - 2)])


def test_yaml_syntax_error(lbproxy_bin, tmp_path):
    text = mutate(VALID, 'paths: ["/headers", "/api/*"]', 'paths: ["/headers", "/api/*"')
    p = write(tmp_path, text)
    proc = check(lbproxy_bin, p)
    assert proc.returncode == 1, proc.stderr
    assert any(ln.startswith(f"{p}:") and ln.split(":")[1].isdigit()
               for ln in proc.stderr.splitlines()), proc.stderr


def test_missing_file(lbproxy_bin, tmp_path):
    proc = check(lbproxy_bin, tmp_path / "does-not-exist.yaml")
    assert proc.returncode == 1, proc.stderr
    assert "does-not-exist.yaml" in proc.stderr


def test_several_files_and_error_points_at_right_file(lbproxy_bin, tmp_path):
    head, rest = VALID.split("upstreams:\n", 1)
    ups, routes = rest.split("routes:\n", 1)
    a = write(tmp_path, head + "upstreams:\n" + ups, "a.yaml")
    b = write(tmp_path, "routes:\n" + routes, "b.yaml")
    proc = check(lbproxy_bin, a, b)
    assert proc.returncode == 0, proc.stderr
    bad = "routes:\n" + mutate(routes, "name: up1", "name: ghost")
    b.write_text(bad)
    proc = check(lbproxy_bin, a, b)
    line, col = pos(bad, "name: ghost")
    assert_error_at(proc, b, [(line, col), (line, col + 6)])


def test_directory_of_yaml_files(lbproxy_bin, tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    head, rest = VALID.split("upstreams:\n", 1)
    ups, routes = rest.split("routes:\n", 1)
    (d / "10-base.yaml").write_text(head)
    (d / "20-upstreams.yaml").write_text("upstreams:\n" + ups)
    (d / "30-routes.yaml").write_text("routes:\n" + routes)
    (d / "ignored.txt").write_text("this is not yaml: [")
    proc = check(lbproxy_bin, d)
    assert proc.returncode == 0, proc.stderr


def test_version_and_help(lbproxy_bin):
    v = subprocess.run([str(lbproxy_bin), "--version"], capture_output=True, text=True,
                       timeout=10)
    assert v.returncode == 0 and "0.1.0" in v.stdout + v.stderr, v
    h = subprocess.run([str(lbproxy_bin), "--help"], capture_output=True, text=True, timeout=10)
    assert h.returncode == 0 and "--config" in h.stdout + h.stderr, h
    bad = subprocess.run([str(lbproxy_bin), "--no-such-option"], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode != 0


def test_daemon_refuses_to_start_with_invalid_config(lbproxy_bin, tmp_path):
    text = VALID + "bogus_key: 1\n"
    p = write(tmp_path, text)
    proc = subprocess.run([str(lbproxy_bin), "--config", str(p)], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    line, col = pos(text, "bogus_key")
    assert f"{p}:{line}:{col}:" in proc.stderr
