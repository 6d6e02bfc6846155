# SPDX-License-Identifier: MIT
"""The D-Bus control API (org.lbproxy1) on a real dbus-daemon with a system-bus configuration,
driven with busctl: every method, every error, traffic following the changes, the unprivileged
refusal, the introspection XML, persistence across a restart and a kill -9, and changes made
while a load generator runs."""

import collections
import os
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import dbus  # Debian's python3-dbus: error names, which busctl does not print
import pytest

from dbus_helpers import dbus_error
from lbtest import REPO_ROOT, route_cfg, upstream_cfg
from tls_helpers import TlsUpstreamServer, make_pki

NOBODY = 65534


@pytest.fixture
def two(upstream):
    return upstream("a", "127.0.0.2"), upstream("b", "127.0.0.3")


def config_for(a, b):
    return {
        "upstreams": [upstream_cfg("up_a", [a]), upstream_cfg("up_b", [b])],
        "routes": [route_cfg("r1", ["/headers"], ["up_a", "up_b"])],
    }


@pytest.fixture
def lb(lbproxy, bus, two, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    p = lbproxy(config_for(*two), args=["--state-dir", str(state)], env=bus.env())
    bus.wait_name()
    p.state_dir = state
    return p


def servers(lb, n, path="/headers"):
    got = []
    with lb.client() as c:
        for _ in range(n):
            c.request("GET", path)
            r = c.read_response()
            assert r.status == 200, r
            got.append(r.json()["server"])
    return got


def test_tree_lists_objects(lb, bus):
    out = bus.busctl("tree", "org.lbproxy1").stdout
    for path in ("/org/lbproxy1/upstream/up_5fa", "/org/lbproxy1/upstream/up_5fb",
                 "/org/lbproxy1/route/r1"):
        assert path in out, out


def test_list_methods_and_properties(lb, bus):
    out = bus.call("ListUpstreams").stdout
    assert '"up_a" "/org/lbproxy1/upstream/up_5fa"' in out
    out = bus.call("ListRoutes").stdout
    assert '"r1" "/org/lbproxy1/route/r1"' in out
    up = "/org/lbproxy1/upstream/up_5fa"
    p = bus.busctl("get-property", "org.lbproxy1", up, "org.lbproxy1.Upstream", "Name", "Scheme",
                   "PassHost", "Balancer", "Nodes", "Health").stdout.splitlines()
    assert p[0] == 's "up_a"'
    assert p[1] == 's "http"'
    assert p[2] == 's "pass"'
    assert p[3] == 's "roundrobin"'
    assert p[4].startswith('a(squ) 1 "127.0.0.2"') and p[4].endswith(" 1")
    assert p[5].startswith('a(sqs) 1 "127.0.0.2"') and p[5].endswith('"healthy"')
    servers(lb, 4)
    served = bus.busctl("get-property", "org.lbproxy1", up, "org.lbproxy1.Upstream",
                        "RequestsServed").stdout.strip()
    assert served == "t 2"
    r = bus.busctl("get-property", "org.lbproxy1", "/org/lbproxy1/route/r1", "org.lbproxy1.Route",
                   "Paths", "Upstreams", "RequestsServed").stdout.splitlines()
    assert r == ['as 1 "/headers"', 'a(su) 2 "up_a" 1 "up_b" 1', "t 4"]


def interfaces(xml_text):
    root = ET.fromstring(xml_text)
    return {i.get("name"): ET.canonicalize(ET.tostring(i), strip_text=True)
            for i in root.iter("interface") if i.get("name").startswith("org.lbproxy1.")}


def test_introspection_matches_checked_in_xml(lb, bus):
    want = interfaces((REPO_ROOT / "dbus" / "org.lbproxy1.xml").read_text())
    got = {}
    for path in ("/org/lbproxy1", "/org/lbproxy1/upstream/up_5fa", "/org/lbproxy1/route/r1"):
        out = bus.busctl("introspect", "--xml-interface", "org.lbproxy1", path).stdout
        got.update(interfaces(out))
    assert set(got) == {"org.lbproxy1.Manager", "org.lbproxy1.Upstream", "org.lbproxy1.Route"}
    assert got == want


def test_add_upstream_and_route_then_traffic_follows(lb, bus, upstream):
    c = upstream("c", "127.0.0.4")
    out = bus.call("AddUpstream", "ssa(squ)a{sv}", "up_c", "http", 1, c.host, c.port, 1,
                   1, "pass_host", "s", "node").stdout
    assert out.strip() == 'o "/org/lbproxy1/upstream/up_5fc"'
    out = bus.call("AddRoute", "sasa(su)a{sv}", "rc", 1, "/c/*", 1, "up_c", 1, 0).stdout
    assert out.strip() == 'o "/org/lbproxy1/route/rc"'
    r = lb.request("GET", "/c/x")
    assert r.status == 200 and r.json()["server"] == "c"
    # pass_host node: the node's host:port
    assert r.json()["host"] == f"{c.host}:{c.port}"
    assert "/org/lbproxy1/route/rc" in bus.busctl("tree", "org.lbproxy1").stdout


def test_add_node_and_set_weight_give_exact_splits(lb, bus, two, upstream):
    a, b = two
    a2 = upstream("a2", "127.0.0.5")
    bus.call("AddNode", "ssqu", "up_a", a2.host, a2.port, 1)
    got = collections.Counter(servers(lb, 40))
    assert got == {"a": 10, "a2": 10, "b": 20}
    bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 3)
    got = collections.Counter(servers(lb, 80))
    assert got == {"a": 30, "a2": 10, "b": 40}


def test_set_node_weight_3_1_gives_30_10(lb, bus, two, lbproxy, upstream):
    a, b = two
    bus.call("RemoveRoute", "s", "r1")
    bus.call("AddNode", "ssqu", "up_a", b.host, b.port, 1)
    bus.call("AddRoute", "sasa(su)a{sv}", "only_a", 1, "/headers", 1, "up_a", 1, 0)
    bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 3)
    got = collections.Counter(servers(lb, 40))
    assert got == {"a": 30, "b": 10}


def test_weight_zero_drains_and_remove_node(lb, bus, two, upstream):
    a, b = two
    a2 = upstream("a2", "127.0.0.5")
    bus.call("AddNode", "ssqu", "up_a", a2.host, a2.port, 1)
    bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 0)
    got = collections.Counter(servers(lb, 20))
    assert got == {"a2": 10, "b": 10}
    bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 1)
    bus.call("RemoveNode", "ssq", "up_a", a2.host, a2.port)
    got = collections.Counter(servers(lb, 20))
    assert got == {"a": 10, "b": 10}


def test_route_upstream_weight_remove_route_remove_upstream(lb, bus, two):
    bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", 3)
    got = collections.Counter(servers(lb, 40))
    assert got == {"a": 10, "b": 30}
    bus.call("RemoveRoute", "s", "r1")
    assert lb.request("GET", "/headers").status == 404
    bus.call("RemoveUpstream", "s", "up_a")
    assert '"up_a"' not in bus.call("ListUpstreams").stdout
    assert "/org/lbproxy1/upstream/up_5fa" not in bus.busctl("tree", "org.lbproxy1").stdout


@pytest.mark.parametrize("method,sig,args,name,text", [
    ("AddNode", "ssqu", ("up_a", "127.0.0.9", 0, 1), "org.freedesktop.DBus.Error.InvalidArgs",
     "port"),
    ("AddNode", "ssqu", ("up_a", "bad host!", 80, 1), "org.freedesktop.DBus.Error.InvalidArgs",
     "host"),
    ("AddNode", "ssqu", ("up_a", "127.0.0.9", 80, 100000),
     "org.freedesktop.DBus.Error.InvalidArgs", "weight"),
    ("AddNode", "ssqu", ("nope", "127.0.0.9", 80, 1), "org.lbproxy1.Error.NotFound", "nope"),
    ("AddNode", "ssqu", ("up_a", "127.0.0.2", "@APORT@", 1), "org.lbproxy1.Error.Exists",
     "127.0.0.2"),
    ("RemoveUpstream", "s", ("up_a",), "org.lbproxy1.Error.InUse", "r1"),
    ("RemoveUpstream", "s", ("nope",), "org.lbproxy1.Error.NotFound", "nope"),
    ("RemoveRoute", "s", ("nope",), "org.lbproxy1.Error.NotFound", "nope"),
    ("SetNodeWeight", "ssqu", ("up_a", "10.9.9.9", 80, 1), "org.lbproxy1.Error.NotFound",
     "10.9.9.9"),
    ("RemoveNode", "ssq", ("up_a", "127.0.0.2", "@APORT@"),
     "org.freedesktop.DBus.Error.InvalidArgs", "node"),
    ("SetRouteUpstreamWeight", "ssu", ("r1", "nope", 1), "org.lbproxy1.Error.NotFound", "nope"),
    ("AddRoute", "sasa(su)a{sv}", ("r1", ["/x"], [("up_a", 1)], {}),
     "org.lbproxy1.Error.Exists", "r1"),
    ("AddRoute", "sasa(su)a{sv}", ("r9", ["x"], [("up_a", 1)], {}),
     "org.freedesktop.DBus.Error.InvalidArgs", "paths"),
    ("AddRoute", "sasa(su)a{sv}", ("r9", ["/x"], [("nope", 1)], {}),
     "org.lbproxy1.Error.NotFound", "nope"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_a", "http", [("127.0.0.9", 80, 1)], {}),
     "org.lbproxy1.Error.Exists", "up_a"),
    ("AddUpstream", "ssa(squ)a{sv}", ("x y", "http", [("127.0.0.9", 80, 1)], {}),
     "org.freedesktop.DBus.Error.InvalidArgs", "name"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_x", "gopher", [("127.0.0.9", 80, 1)], {}),
     "org.freedesktop.DBus.Error.InvalidArgs", "scheme"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_x", "http", [("127.0.0.9", 80, 1)], {"colour": "red"}),
     "org.freedesktop.DBus.Error.InvalidArgs", "colour"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_x", "http", [("127.0.0.9", 80, 1)],
                                      {"tls": {"verify": "yes"}}),
     "org.freedesktop.DBus.Error.InvalidArgs",
     "options.tls.verify: expected a boolean (true or false), got the quoted string 'yes'"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_x", "http", [("127.0.0.9", 80, 1)],
                                      {"pass_host": "rewrite"}),
     "org.freedesktop.DBus.Error.InvalidArgs", "upstream_host"),
    ("AddUpstream", "ssa(squ)a{sv}", ("up_x", "http", [("127.0.0.9", 80, 1)],
                                      {"timeout": {"connect": dbus.UInt64(2**63)}}),
     "org.freedesktop.DBus.Error.InvalidArgs", "options.timeout.connect: duration"),
    ("AddRoute", "sasa(su)a{sv}", ("r9", ["/x"], [("up_a", 1)], {"priority": "high"}),
     "org.freedesktop.DBus.Error.InvalidArgs", "priority"),
])
def test_errors_name_the_argument_and_change_nothing(lb, bus, two, method, sig, args, name,
                                                     text):
    a, _ = two
    args = tuple(a.port if x == "@APORT@" else x for x in args)
    before = bus.busctl("get-property", "org.lbproxy1", "/org/lbproxy1/upstream/up_5fa",
                        "org.lbproxy1.Upstream", "Nodes").stdout
    before_state = sorted(os.listdir(lb.state_dir))
    err = dbus_error(bus, method, sig, *args)
    assert err is not None, "the call succeeded"
    assert err[0] == name, err
    assert text in err[1], err
    after = bus.busctl("get-property", "org.lbproxy1", "/org/lbproxy1/upstream/up_5fa",
                       "org.lbproxy1.Upstream", "Nodes").stdout
    assert after == before
    assert sorted(os.listdir(lb.state_dir)) == before_state
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}


def test_unprivileged_caller_refused_but_may_read(lb, bus, two):
    a, _ = two
    p = bus.busctl("call", "org.lbproxy1", "/org/lbproxy1", "org.lbproxy1.Manager",
                   "SetNodeWeight", "ssqu", "up_a", a.host, a.port, 5, user=NOBODY, check=False)
    assert p.returncode != 0
    assert "Access denied" in p.stderr or "AccessDenied" in p.stderr, p.stderr
    p = bus.call("ListUpstreams", user=NOBODY)
    assert '"up_a"' in p.stdout
    p = bus.busctl("get-property", "org.lbproxy1", "/org/lbproxy1/upstream/up_5fa",
                   "org.lbproxy1.Upstream", "Nodes", user=NOBODY)
    assert p.stdout.strip().endswith(" 1")


def restart(lbproxy, bus, two, state_dir, old, how):
    if how == "kill":
        os.kill(old.pid, signal.SIGKILL)
        old.proc.wait(10)
        old.expect_exit = None
    else:
        old.terminate()
    new = lbproxy(config_for(*two), args=["--state-dir", str(state_dir)], env=bus.env())
    bus.wait_name()
    return new


@pytest.mark.parametrize("how", ["sigterm", "kill"])
def test_changes_survive_restart(lb, bus, two, lbproxy, upstream, how):
    c = upstream("c", "127.0.0.4")
    bus.call("AddUpstream", "ssa(squ)a{sv}", "up_c", "http", 1, c.host, c.port, 1, 0)
    bus.call("AddRoute", "sasa(su)a{sv}", "rc", 1, "/c", 1, "up_c", 1, 0)
    bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", 3)
    new = restart(lbproxy, bus, two, lb.state_dir, lb, how)
    assert new.request("GET", "/c").json()["server"] == "c"
    assert collections.Counter(servers(new, 40)) == {"a": 10, "b": 30}
    assert "runtime state" in new.log_text()


def test_added_upstream_with_other_trust_gets_no_pooled_connection(lbproxy, bus, tmp_path):
    """An upstream added over D-Bus on the address and SNI of a running one, with a CA that
    does not trust the server: the pooled connection of the first does not serve it."""
    pki = make_pki(tmp_path / "pki")
    state = tmp_path / "state"
    state.mkdir()
    a = TlsUpstreamServer("a", "127.0.0.2", pki.good).start()
    try:
        up = upstream_cfg("loose", [a], scheme="https",
                          tls={"ca_file": str(pki.ca), "sni": "httpbin.org"})
        lb = lbproxy({"upstreams": [up], "routes": [route_cfg("r", ["/loose/*"], ["loose"])],
                      "workers": 1, "access_log": True},
                     args=["--state-dir", str(state)], env=bus.env())
        bus.wait_name()
        assert lb.request("GET", "/loose/1").status == 200
        bus.call("AddUpstream", "ssa(squ)a{sv}", "strict", "https", 1, a.host, a.port, 1,
                 1, "tls", "a{sv}", 2, "sni", "s", "httpbin.org", "ca_file", "s",
                 str(pki.unknown_ca))
        bus.call("AddRoute", "sasa(su)a{sv}", "rs", 1, "/strict/*", 1, "strict", 1, 0)
        assert lb.request("GET", "/strict/1").status == 502
        assert lb.wait_log('"GET /strict/1" 502 ', "issuer is unknown"), lb.log_text()[-2000:]
        assert lb.request("GET", "/loose/2").status == 200
        assert a.paths() == ["/loose/1", "/loose/2"]
        assert a.connections == 2 and a.handshakes == 1
    finally:
        a.stop()


def test_reload_goes_back_to_files_and_refuses_broken_file(lb, bus, two):
    bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", 3)
    assert (lb.state_dir / "state.yaml").exists()
    bus.call("Reload")
    assert not (lb.state_dir / "state.yaml").exists()
    assert collections.Counter(servers(lb, 40)) == {"a": 20, "b": 20}

    text = lb.config_path.read_text()
    lb.config_path.write_text(text + "\nbogus_key: 1\n")
    p = bus.call("Reload", check=False)
    assert p.returncode != 0
    assert "bogus_key" in p.stderr and "lbproxy.yaml:" in p.stderr, p.stderr
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}
    lb.config_path.write_text(text)


def test_200_changes_under_load_lose_no_request(lb, bus, two, upstream):
    a, b = two
    a2 = upstream("a2", "127.0.0.5")
    stop = threading.Event()
    results = collections.Counter()
    errors = []

    def load():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with lb.client() as c:
                    for _ in range(20):
                        c.request("GET", "/headers")
                        r = c.read_response()
                        results[r.status] += 1
            except Exception as e:  # noqa: BLE001 - any failure is a lost request
                errors.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(50):
            bus.call("AddNode", "ssqu", "up_a", a2.host, a2.port, 1)
            bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 1 + i % 4)
            bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", 1 + i % 3)
            bus.call("RemoveNode", "ssq", "up_a", a2.host, a2.port)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    assert set(results) == {200}, results
    assert results[200] > 0


def test_losing_the_bus_keeps_proxying_and_reconnects(lb, bus):
    bus.stop()
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}
    bus.start()
    bus.wait_name(timeout=15)  # lbproxy retries every 5 s
    assert '"up_a"' in bus.call("ListUpstreams").stdout
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}


def test_weight_change_emits_properties_changed(lb, bus, two):
    a, _ = two
    env = dict(os.environ)
    env.update(bus.env())
    mon = subprocess.Popen(["busctl", "--system", "monitor", "org.lbproxy1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        # The monitor is ready once it sees traffic of ours: poll with harmless reads.
        deadline = time.monotonic() + 10
        ready = threading.Event()
        lines = []

        def reader():
            for line in mon.stdout:
                lines.append(line)
                if "ListUpstreams" in line:
                    ready.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        while not ready.is_set() and time.monotonic() < deadline:
            bus.call("ListUpstreams")
            ready.wait(0.2)
        assert ready.is_set(), "busctl monitor saw nothing"
        bus.call("SetNodeWeight", "ssqu", "up_a", a.host, a.port, 7)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = "".join(lines)
            if "PropertiesChanged" in text and '"Nodes"' in text:
                break
            time.sleep(0.1)
        text = "".join(lines)
        assert "PropertiesChanged" in text, text[-3000:]
        assert "/org/lbproxy1/upstream/up_5fa" in text
        assert '"Nodes"' in text
    finally:
        mon.terminate()
        mon.wait(10)


def test_reload_refuses_listener_changes(lb, bus):
    text = lb.config_path.read_text()
    moved = text.replace(f":{lb.port}", f":{lb.port + 1}")
    assert moved != text
    lb.config_path.write_text(moved)
    p = bus.call("Reload", check=False)
    assert p.returncode != 0
    assert "listener 'http' changes its address" in p.stderr, p.stderr
    assert "restart lbproxy" in p.stderr
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}
    lb.config_path.write_text(text)


def test_connection_properties_show_count_and_limit(lbproxy, bus, two):
    """ActiveConnections and MaxConnections on the Manager: 5/5 with five clients held at
    max_connections 5 (two workers), back down when they leave; a reload changes the limit."""
    import socket

    cfg = dict(config_for(*two), workers=2, limits={"max_connections": 5})
    lb = lbproxy(cfg, env=bus.env())
    bus.wait_name()

    def props():
        out = bus.busctl("get-property", "org.lbproxy1", "/org/lbproxy1", "org.lbproxy1.Manager",
                         "ActiveConnections", "MaxConnections").stdout.split()
        return out[1], out[3]

    assert props() == ("0", "5")
    held = []
    try:
        for _ in range(5):
            s = socket.create_connection(lb.address, timeout=5)
            s.sendall(b"GET /headers HTTP/1.1\r\nHost: t\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
            held.append(s)
        waiting = socket.create_connection(lb.address, timeout=5)
        held.append(waiting)
        assert props() == ("5", "5")
        for s in held:
            s.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and props()[0] != "0":
            time.sleep(0.05)
        assert props() == ("0", "5")
    finally:
        for s in held:
            s.close()
    lb.config_path.write_text(lb.config_path.read_text().replace("max_connections: 5",
                                                                 "max_connections: 7"))
    bus.call("Reload")
    assert props() == ("0", "7")


def test_limits_refuse_oversized_calls_and_change_nothing(lb, bus, two):
    """A 1 MB path and 10,000 nodes are refused by the loader's own limits, naming the field;
    the running configuration and the state directory stay as they were."""
    before_state = sorted(os.listdir(lb.state_dir))
    before_routes = bus.call("ListRoutes").stdout
    before_upstreams = bus.call("ListUpstreams").stdout

    err = dbus_error(bus, "AddRoute", "sasa(su)a{sv}", "big", ["/" + "a" * (1 << 20)],
                     [("up_a", 1)], {})
    assert err is not None and err[0] == "org.freedesktop.DBus.Error.InvalidArgs", err
    assert err[1].startswith("paths[0]: invalid path '/aaaa") and \
        err[1].endswith("': longer than 4096 bytes"), err[1][:300]

    nodes = [(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 80, 1) for i in range(10000)]
    err = dbus_error(bus, "AddUpstream", "ssa(squ)a{sv}", "big", "http", nodes, {})
    assert err == ("org.freedesktop.DBus.Error.InvalidArgs",
                   "nodes: too many nodes (10000; at most 4096 per upstream)"), err

    assert bus.call("ListRoutes").stdout == before_routes
    assert bus.call("ListUpstreams").stdout == before_upstreams
    assert sorted(os.listdir(lb.state_dir)) == before_state
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}


def test_option_names_are_the_yaml_keys(lb, bus, upstream):
    """AddUpstream and AddRoute take every key a file has, nested as in YAML; state.yaml shows
    them as a file would."""
    c = upstream("c", "127.0.0.4")
    bus.call("AddUpstream", "ssa(squ)a{sv}", "up_c", "http", 1, c.host, c.port, 1,
             3, "keepalive_idle", "s", "90s",
             "timeout", "a{sv}", 2, "connect", "s", "2s", "read", "t", 7,
             "retries", "u", 0)
    bus.call("AddRoute", "sasa(su)a{sv}", "rc", 1, "/c/*", 1, "up_c", 1,
             3, "websocket", "b", True, "methods", "as", 1, "get", "priority", "i", 5)
    state = (lb.state_dir / "state.yaml").read_text()
    assert "keepalive_idle: 90s" in state, state
    assert "timeout: {connect: 2s, send: 1m, read: 7s}" in state, state
    assert "websocket: true" in state and "methods: [GET]" in state, state
    assert lb.request("GET", "/c/x").json()["server"] == "c"
    assert lb.request("POST", "/c/x").status == 404


def test_health_check_options_are_the_yaml_keys(lb, bus, upstream):
    """health_check (dictionaries in dictionaries, status lists as av) and slow_start arrive as
    a file's keys; SetUpstreamOptions merges into them and resets them key by key."""
    c = upstream("c", "127.0.0.4")
    bus.call("AddUpstream", "ssa(squ)a{sv}", "up_c", "http", 1, c.host, c.port, 1,
             2, "slow_start", "s", "30s",
             "health_check", "a{sv}", 2,
             "active", "a{sv}", 3, "http_path", "s", "/status",
             "headers", "as", 1, "User-Agent: lbproxy-health",
             "healthy", "a{sv}", 2, "successes", "u", 3,
             "http_statuses", "av", 3, "u", 200, "s", "300-308", "u", 226,
             "passive", "a{sv}", 1, "unhealthy", "a{sv}", 1, "timeouts", "u", 4)
    state = (lb.state_dir / "state.yaml").read_text()
    assert "slow_start: 30s" in state, state
    assert "http_path: /status" in state and "User-Agent: lbproxy-health" in state, state
    assert ("healthy: {interval: 1s, successes: 3, http_statuses: [200, 226, \"300-308\"]}"
            in state), state
    assert "http_failures: 5, tcp_failures: 2, timeouts: 4, http_statuses: [429, 500, 503]" \
        in state, state
    assert lb.request("GET", "/headers").status == 200

    # A refusal names the option by its path, as a file's message names the key.
    p = bus.call("SetUpstreamOptions", "sa{sv}as", "up_c",
                 1, "health_check", "a{sv}", 1, "active", "a{sv}", 1,
                 "unhealthy", "a{sv}", 1, "tcp_failures", "u", 255, 0, check=False)
    assert p.returncode != 0, p
    assert "options.health_check.active.unhealthy.tcp_failures: 255 is out of range (0..254)" \
        in p.stderr, p.stderr

    # Merged key by key; the rest of the check stays.
    bus.call("SetUpstreamOptions", "sa{sv}as", "up_c",
             1, "health_check", "a{sv}", 1, "active", "a{sv}", 1, "timeout", "s", "2s",
             1, "health_check.passive")
    state = (lb.state_dir / "state.yaml").read_text()
    assert "timeout: 2s" in state and "http_path: /status" in state, state
    assert "passive:" not in state, state
    bus.call("SetUpstreamOptions", "sa{sv}as", "up_c", 0, 2, "health_check", "slow_start")
    state = (lb.state_dir / "state.yaml").read_text()
    assert "health_check" not in state and "slow_start" not in state, state


def test_set_options_merges_and_resets(lb, bus, two):
    a, _ = two
    # pass_host rewrite needs upstream_host: refused, nothing changed.
    p = bus.call("SetUpstreamOptions", "sa{sv}as", "up_a",
                 2, "timeout", "a{sv}", 1, "connect", "s", "3s",
                 "pass_host", "s", "rewrite", 0, check=False)
    assert p.returncode != 0 and "upstream_host" in p.stderr, p.stderr
    assert not (lb.state_dir / "state.yaml").exists()
    bus.call("SetUpstreamOptions", "sa{sv}as", "up_a",
             3, "timeout", "a{sv}", 1, "connect", "s", "3s",
             "pass_host", "s", "rewrite", "upstream_host", "s", "rewritten.example", 0)
    state = (lb.state_dir / "state.yaml").read_text()
    assert "timeout: {connect: 3s, send: 1m, read: 1m}" in state, state
    hosts = {r.json()["server"]: r.json()["host"] for r in
             (lb.request("GET", "/headers") for _ in range(2))}
    assert hosts["a"] == "rewritten.example", hosts
    # Back to pass: upstream_host must go with it.
    bus.call("SetUpstreamOptions", "sa{sv}as", "up_a", 1, "pass_host", "s", "pass",
             1, "upstream_host")
    state = (lb.state_dir / "state.yaml").read_text()
    assert "rewritten.example" not in state and "connect: 3s" in state, state
    hosts = {r.json()["server"]: r.json()["host"] for r in
             (lb.request("GET", "/headers") for _ in range(2))}
    assert hosts["a"] != "rewritten.example", hosts

    bus.call("SetRouteOptions", "sa{sv}as", "r1", 1, "methods", "as", 1, "POST", 0)
    assert lb.request("GET", "/headers").status == 404
    bus.call("SetRouteOptions", "sa{sv}as", "r1", 0, 1, "methods")
    assert lb.request("GET", "/headers").status == 200


@pytest.mark.parametrize("method,args,name,text", [
    ("SetUpstreamOptions", ("up_a", {"pass_host": "rewrite"}, []),
     "org.freedesktop.DBus.Error.InvalidArgs",
     "options: missing required key 'upstream_host' (pass_host is rewrite)"),
    ("SetUpstreamOptions", ("up_a", {"name": "up_z"}, []),
     "org.freedesktop.DBus.Error.InvalidArgs",
     "options.name: an upstream is renamed by removing it and adding it"),
    ("SetUpstreamOptions", ("up_a", {}, ["colour"]),
     "org.freedesktop.DBus.Error.InvalidArgs", "reset: unknown key 'colour'"),
    ("SetUpstreamOptions", ("nope", {}, []),
     "org.lbproxy1.Error.NotFound", "name: no upstream named 'nope'"),
    ("SetRouteOptions", ("r1", {"upstreams": dbus.Array([{"name": "nope"}], signature="a{sv}")},
                         []),
     "org.lbproxy1.Error.NotFound", "options.upstreams[0].name: no upstream named 'nope'"),
    ("SetRouteOptions", ("r1", {"websocket": "yes"}, []),
     "org.freedesktop.DBus.Error.InvalidArgs",
     "options.websocket: expected a boolean (true or false), got the quoted string 'yes'"),
])
def test_set_options_errors_change_nothing(lb, bus, method, args, name, text):
    before_state = sorted(os.listdir(lb.state_dir))
    err = dbus_error(bus, method, "sa{sv}as", *args)
    assert err == (name, text), err
    assert sorted(os.listdir(lb.state_dir)) == before_state
    assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}


def test_add_node_twice_is_exists(lb, bus, two):
    a, _ = two
    err = dbus_error(bus, "AddNode", "ssqu", "up_a", "127.0.0.2", a.port, 1)
    assert err == ("org.lbproxy1.Error.Exists",
                   f"upstream 'up_a': nodes[1]: 127.0.0.2:{a.port} is listed already "
                   "(as nodes[0])"), err


def test_reply_comes_once_the_state_has_the_change(lb, bus, two):
    """Each call is answered after its change is in state.yaml (written, fsync()ed, renamed),
    and calls made together are all answered, the file holding every one of them."""
    a, _ = two
    for w in (2, 3, 4):
        bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", w)
        assert f"{{name: up_b, weight: {w}}}" in (lb.state_dir / "state.yaml").read_text()

    errors = []

    def add(i):
        err = dbus_error(bus, "AddNode", "ssqu", "up_a", f"127.0.1.{i}", 80, 0)
        if err:
            errors.append(err)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(1, 21)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    state = (lb.state_dir / "state.yaml").read_text()
    assert all(f"host: \"127.0.1.{i}\"," in state for i in range(1, 21)), state
    assert collections.Counter(servers(lb, 8)) == {"a": 2, "b": 6}


def test_a_state_that_cannot_be_written_refuses_the_change(lb, bus, two):
    """The state directory gone (a file in its place): the call fails saying why, nothing
    changes; once it is back, changes go through again."""
    before = (lb.state_dir / "state.yaml").exists()
    moved = lb.state_dir.with_name("state.moved")
    os.rename(lb.state_dir, moved)
    lb.state_dir.write_text("")
    try:
        err = dbus_error(bus, "SetRouteUpstreamWeight", "ssu", "r1", "up_b", 3)
        assert err == ("System.Error.ENOTDIR",
                       f"cannot save the state in {lb.state_dir}: Not a directory"), err
        assert collections.Counter(servers(lb, 4)) == {"a": 2, "b": 2}
        assert lb.wait_log("Configuration change refused: cannot save the state")
        # The next change starts from what serves, not from the refused one.
        err = dbus_error(bus, "SetNodeWeight", "ssqu", "up_a", two[0].host, two[0].port, 1)
        assert err is not None and err[0] == "System.Error.ENOTDIR", err
    finally:
        lb.state_dir.unlink()
        os.rename(moved, lb.state_dir)
    assert (lb.state_dir / "state.yaml").exists() == before
    bus.call("SetRouteUpstreamWeight", "ssu", "r1", "up_b", 3)
    assert collections.Counter(servers(lb, 8)) == {"a": 2, "b": 6}
    assert "{name: up_b, weight: 3}" in (lb.state_dir / "state.yaml").read_text()
