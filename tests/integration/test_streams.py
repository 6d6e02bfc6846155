# SPDX-License-Identifier: MIT
"""lbproxy as a TCP/TLS proxy: `tcp` listeners balanced over an upstream's nodes (large
transfers, half-close), `tls-passthrough` listeners routed by SNI to TLS upstreams that the
client verifies end to end, and WebSocket through an HTTP route."""

import base64
import collections
import hashlib
import os
import socket
import ssl
import struct
import threading

import pytest

import tls_helpers
from lbtest import free_port, read_to_eof, route_cfg, upstream_cfg
from tls_helpers import TlsUpstreamServer, make_pki
from upstream import ThreadedServer


# -- upstreams --------------------------------------------------------------------------------
class EchoServer(ThreadedServer):
    """Echoes bytes; when the client half-closes, sends a last line with the byte count it got
    and its own name, then closes. Counts connections."""

    def __init__(self, name, host):
        self.name = name
        super().__init__(host, backlog=64)

    def _serve(self, c):
        total = 0
        c.settimeout(60)
        try:
            while True:
                d = c.recv(256 * 1024)
                if not d:
                    break
                total += len(d)
                c.sendall(d)
            c.sendall(f"\nbye {total} from {self.name}\n".encode())
        except OSError:
            pass
        finally:
            c.close()


class WebSocketEcho(ThreadedServer):
    """A minimal RFC 6455 server: answers the handshake, then echoes text frames back."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, host):
        self.heads = []
        super().__init__(host)

    def _serve(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        try:
            lines = []
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                lines.append(line.decode().rstrip("\r\n"))
            self.heads.append(lines)
            hdr = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
            if hdr.get("upgrade", "").lower() != "websocket":
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            accept = base64.b64encode(hashlib.sha1(
                (hdr["sec-websocket-key"] + self.GUID).encode()).digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            while True:
                op, payload = read_frame(f)
                if op is None or op == 8:
                    break
                c.sendall(frame(op, payload, mask=False))
        except OSError:
            pass
        finally:
            c.close()


def frame(op, payload, mask=True):
    head = bytes([0x80 | op])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_exact(f, n):
    d = f.read(n)
    if len(d) < n:
        raise EOFError
    return d


def read_frame(f):
    try:
        b0, b1 = read_exact(f, 2)
    except EOFError:
        return None, None
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(f, 8))[0]
    key = read_exact(f, 4) if b1 & 0x80 else None
    data = read_exact(f, n)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


def echo_through(address, n, block_size=1024 * 1024, on_read=None, timeout=30):
    """Sends n random bytes to an EchoServer through `address`, half-closing at the end, while
    reading back; calls on_read() after each read. Returns (received, echoed intact, the
    server's last line)."""
    block = os.urandom(block_size)
    sent, got = hashlib.sha256(), hashlib.sha256()
    received, tail = 0, b""
    with socket.create_connection(address, timeout=timeout) as s:
        def writer():
            for _ in range(n // len(block)):
                s.sendall(block)
                sent.update(block)
            s.shutdown(socket.SHUT_WR)  # half-close: the answer still comes back

        t = threading.Thread(target=writer)
        t.start()
        while True:
            d = s.recv(1024 * 1024)
            if not d:
                break
            room = n - received
            got.update(d[:room])
            tail += d[room:] if len(d) > room else b""
            received += min(len(d), room)
            if on_read:
                on_read()
        t.join(60)
    return received, got.hexdigest() == sent.hexdigest(), tail.strip()


@pytest.fixture
def echo():
    servers = []

    def make(name, host="127.0.0.2"):
        s = EchoServer(name, host)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def tcp_config(listen_port, upstream, **listener):
    return {
        "listeners": [
            {"name": "http", "listen": "@LISTEN@"},
            dict({"name": "tcp", "listen": f"127.0.0.1:{listen_port}", "protocol": "tcp",
                  "upstream": upstream["name"]}, **listener),
        ],
        "upstreams": [upstream],
        "routes": [route_cfg("r", ["/unused"], [upstream["name"]])],
    }


def render(cfg):
    from lbtest import to_yaml
    return to_yaml(cfg)


def start(lbproxy, cfg):
    return lbproxy(render(cfg))


# -- tcp ----------------------------------------------------------------------------------------
def test_tcp_balanced_round_robin(echo, lbproxy):
    a, b = echo("a", "127.0.0.2"), echo("b", "127.0.0.3")
    port = free_port()
    lb = start(lbproxy, tcp_config(port, upstream_cfg("echo", [a, b])))
    got = collections.Counter()
    for i in range(10):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"hello {i}".encode())
            s.shutdown(socket.SHUT_WR)
            data = read_to_eof(s)
        assert data.startswith(f"hello {i}".encode()), data
        got[data.rsplit(b" from ", 1)[1].strip().decode()] += 1
    assert got == {"a": 5, "b": 5}
    lines = lb.wait_log(" route=tcp upstream=echo ")
    assert lines, lb.log_text()[-2000:]


def test_tcp_large_transfer_and_half_close(echo, lbproxy):
    a = echo("a")
    port = free_port()
    start(lbproxy, tcp_config(port, upstream_cfg("echo", [a])))
    n = 50 * 1024 * 1024
    received, intact, tail = echo_through(("127.0.0.1", port), n)
    assert received == n
    assert intact
    assert tail == f"bye {n} from a".encode()


def test_tcp_upstream_down_closes_client_and_logs(lbproxy):
    dead = ("127.0.0.2", free_port("127.0.0.2"))
    port = free_port()
    lb = start(lbproxy, tcp_config(port, upstream_cfg("echo", [dead])))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        assert s.recv(10) == b""
    assert lb.wait_log(" route=tcp upstream=echo "), lb.log_text()[-2000:]


def test_tcp_idle_timeout(echo, lbproxy):
    a = echo("a")
    port = free_port()
    lb = start(lbproxy, tcp_config(port, upstream_cfg("echo", [a]), idle_timeout="1s"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        s.settimeout(10)
        assert s.recv(100) in (b"", b"\nbye 1 from a\n")
    assert any("idle" in l for l in lb.wait_log("error=idle")), lb.log_text()[-2000:]


# -- tls-passthrough ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = make_pki(tmp_path_factory.mktemp("pki-streams"))
    d = p.ca.parent
    ca = (p.ca, d / "ca.key")
    p.a = tls_helpers._leaf(d, "a", ca, ["a.example"])
    p.b = tls_helpers._leaf(d, "b", ca, ["b.example", "*.b.example"])
    return p


def test_passthrough_routes_by_sni_end_to_end(pki, lbproxy):
    a = TlsUpstreamServer("a", "127.0.0.2", pki.a).start()
    b = TlsUpstreamServer("b", "127.0.0.3", pki.b).start()
    try:
        port = free_port()
        cfg = {
            "listeners": [
                {"name": "http", "listen": "@LISTEN@"},
                {"name": "pass", "listen": f"127.0.0.1:{port}", "protocol": "tls-passthrough",
                 "sni_routes": [{"server_names": ["a.example"], "upstream": "ua"},
                                {"server_names": ["*.b.example", "b.example"],
                                 "upstream": "ub"}]},
            ],
            "upstreams": [upstream_cfg("ua", [a]), upstream_cfg("ub", [b])],
            "routes": [route_cfg("r", ["/unused"], ["ua"])],
        }
        lb = start(lbproxy, cfg)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        for name, want in (("a.example", "a"), ("b.example", "b"), ("x.b.example", "b")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                # The client verifies the upstream's own certificate: lbproxy did not terminate.
                with ctx.wrap_socket(raw, server_hostname=name) as s:
                    s.sendall(f"GET /who HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
                              .encode())
                    data = read_to_eof(s)
            assert b" 200 " in data.split(b"\r\n", 1)[0], data[:200]
            assert f'"server": "{want}"'.encode() in data.replace(b'":"', b'": "'), data[-300:]
        # No SNI route: the connection is closed without a byte.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                with ctx.wrap_socket(raw, server_hostname="nobody.example") as s:
                    s.recv(1)
        assert lb.wait_log("no route for server name 'nobody.example'")
    finally:
        a.stop()
        b.stop()


# -- WebSocket ----------------------------------------------------------------------------------------
def ws_client(port, path, host="example.test"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    f = s.makefile("rb")
    status = f.readline()
    head = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        head.append(line.decode().strip())
    return s, f, status, head, key


def test_websocket_echo_through_route(lbproxy):
    ws = WebSocketEcho("127.0.0.2")
    try:
        lb = lbproxy({
            "upstreams": [upstream_cfg("ws", [(ws.host, ws.port)])],
            "routes": [dict(route_cfg("r", ["/ws"], ["ws"]), websocket=True)],
        })
        s, f, status, head, key = ws_client(lb.port, "/ws")
        assert b" 101 " in status, (status, head)
        want = base64.b64encode(hashlib.sha1((key + WebSocketEcho.GUID).encode())
                                .digest()).decode()
        assert f"Sec-WebSocket-Accept: {want}" in head
        for msg in (b"hello", b"x" * 70000):
            s.sendall(frame(1, msg))
            op, data = read_frame(f)
            assert op == 1 and data == msg
        s.sendall(frame(8, b""))
        f.close()  # the socket's file object holds the descriptor open too
        s.close()
        assert lb.wait_log('"GET /ws" 101 ')
    finally:
        ws.stop()


def test_websocket_refused_on_route_without_it(lbproxy):
    ws = WebSocketEcho("127.0.0.2")
    try:
        lb = lbproxy({
            "upstreams": [upstream_cfg("ws", [(ws.host, ws.port)])],
            "routes": [route_cfg("r", ["/ws"], ["ws"])],
        })
        s, f, status, head, key = ws_client(lb.port, "/ws")
        # The Upgrade is not passed on: the upstream answers the plain request (400 here).
        assert b" 101 " not in status
        f.close()
        s.close()
        assert ws.heads and not any(l.lower().startswith("upgrade:") for l in ws.heads[-1])
    finally:
        ws.stop()
