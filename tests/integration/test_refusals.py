# SPDX-License-Identifier: MIT
"""D-Bus refuses exactly what the loader refuses: every case of tests/data/config-refusals.tsv
(the table tests/unit/test-config-tree.c reads too), written in a YAML file, makes
`lbproxy --check` fail with a message that a D-Bus call carrying the same value gets too, but
for where it points (file:line:column and upstreams[0].KEY in a file, options.KEY over D-Bus)."""

import subprocess

import dbus  # Debian's python3-dbus: typed D-Bus values
import pytest

from dbus_helpers import dbus_error
from lbtest import REPO_ROOT, route_cfg, upstream_cfg

TABLE = REPO_ROOT / "tests" / "data" / "config-refusals.tsv"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


class Case:
    def __init__(self, line):
        (self.kind, self.key, self.yaml, self.type, self.value, at,
         self.message) = line.split("\t")
        self.at = self.key if at == "-" else at

    def __repr__(self):
        return f"{self.kind} {self.key}={self.yaml}"


def cases():
    return [Case(ln) for ln in TABLE.read_text().splitlines() if ln and not ln.startswith("#")]


def yaml_entry(key, value):
    """"timeout.connect", "5s" -> "timeout: {connect: 5s}"."""
    first, _, rest = key.partition(".")
    return f"{first}: {value}" if not rest else f"{first}: {{{yaml_entry(rest, value)}}}"


def yaml_for(case):
    entry = yaml_entry(case.key, case.yaml)
    text = 'listeners: [{name: http, listen: "127.0.0.1:1"}]\n'
    if case.kind == "upstream":
        return text + ("upstreams:\n  - name: u\n    nodes: [{host: 10.0.0.1, port: 80}]\n"
                       f"    {entry}\n")
    if case.kind == "store":
        scheme = "https" if case.key.startswith("tls") else "http"
        endpoints = "" if case.key == "endpoints" else \
            f'    endpoints: ["{scheme}://127.0.0.1:2379"]\n'
        return text + f"store:\n  etcd:\n{endpoints}    {entry}\n"
    if case.kind == "route":
        return text + ("upstreams: [{name: u, nodes: [{host: 10.0.0.1, port: 80}]}]\n"
                       "routes:\n  - name: r\n    paths: [/]\n    upstreams: [{name: u}]\n"
                       f"    {entry}\n")
    fields = {"host": "host: 10.0.0.9", "port": "port: 81"}
    fields[case.key] = entry
    return text + ("upstreams:\n  - name: u\n    nodes:\n      - {host: 10.0.0.1, port: 80}\n"
                   f"      - {{{', '.join(fields.values())}}}\n")


def dbus_value(case):
    t, v = case.type, case.value
    if t == "s":
        return dbus.String(v)
    if t == "b":
        return dbus.Boolean(v == "true")
    if t == "as":
        return dbus.Array([x for x in v.split(",") if x], signature="s")
    if t == "au":
        return dbus.Array([dbus.UInt32(int(x)) for x in v.split(",") if x], signature="u")
    return {"y": dbus.Byte, "q": dbus.UInt16, "u": dbus.UInt32, "t": dbus.UInt64,
            "n": dbus.Int16, "i": dbus.Int32, "x": dbus.Int64}[t](int(v))


def nested(key, value):
    first, _, rest = key.partition(".")
    return {first: value if not rest else dbus.Dictionary(nested(rest, value), signature="sv")}


def test_a_file_refuses_each_case(lbproxy_bin, tmp_path):
    where = {"upstream": "upstreams[0]", "route": "routes[0]", "node": "upstreams[0].nodes[1]",
             "store": "store.etcd"}
    failed = []
    for i, case in enumerate(cases()):
        path = tmp_path / f"case{i}.yaml"
        path.write_text(yaml_for(case))
        p = subprocess.run([str(lbproxy_bin), "--check", "--config", str(path)],
                           capture_output=True, text=True, timeout=30)
        lines = p.stderr.strip().splitlines()
        want = f": {where[case.kind]}{'.' if case.at else ''}{case.at}: {case.message}"
        if p.returncode != 1 or len(lines) != 1 or not lines[0].endswith(want) or \
                not lines[0].startswith(f"{path}:"):
            failed.append((case, p.stderr, want))
    assert not failed, failed


def test_dbus_refuses_each_case_as_a_file_does(lbproxy, bus, upstream):
    a = upstream("a", "127.0.0.2")
    lbproxy({"upstreams": [upstream_cfg("u", [a])], "routes": [route_cfg("r", ["/"], ["u"])]},
            env=bus.env())
    bus.wait_name()
    failed = []
    for case in cases():
        if case.kind == "store":
            continue  # the files' alone: no D-Bus method sets it
        value = dbus_value(case)
        if case.kind == "upstream" and case.key == "scheme":
            # An argument of AddUpstream's own.
            err = dbus_error(bus, "AddUpstream", "ssa(squ)a{sv}", "u2", value,
                             [("10.0.0.2", 80, 1)], {})
        elif case.kind == "upstream":
            err = dbus_error(bus, "AddUpstream", "ssa(squ)a{sv}", "u2", "",
                             [("10.0.0.2", 80, 1)], nested(case.key, value))
        elif case.kind == "route":
            err = dbus_error(bus, "AddRoute", "sasa(su)a{sv}", "r2", ["/x"], [("u", 1)],
                             nested(case.key, value))
        else:
            args = {"host": "10.0.0.9", "port": dbus.UInt16(81), "weight": dbus.UInt32(1)}
            args[case.key] = value
            err = dbus_error(bus, "AddNode", "ssqu", "u", args["host"], args["port"],
                             args["weight"])
        if case.kind == "node" or case.key == "scheme":
            want = f"{case.at}: {case.message}"
        else:
            want = f"options{'.' if case.at else ''}{case.at}: {case.message}"
        if err != (INVALID_ARGS, want):
            failed.append((case, err, want))
    assert not failed, failed
    assert '"u2"' not in bus.call("ListUpstreams").stdout
    assert '"r2"' not in bus.call("ListRoutes").stdout


@pytest.mark.parametrize("key", ["name", "nodes"])
def test_arguments_are_not_options(lbproxy, bus, upstream, key):
    a = upstream("a", "127.0.0.2")
    lbproxy({"upstreams": [upstream_cfg("u", [a])], "routes": [route_cfg("r", ["/"], ["u"])]},
            env=bus.env())
    bus.wait_name()
    err = dbus_error(bus, "AddUpstream", "ssa(squ)a{sv}", "u2", "", [("10.0.0.2", 80, 1)],
                     {key: "x"})
    assert err == (INVALID_ARGS, f"options.{key}: given as an argument of its own"), err
