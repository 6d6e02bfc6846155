# SPDX-License-Identifier: MIT
"""A real HTTP/1.1 upstream for the integration tests.

A keep-alive HTTP/1.1 server run in-process on threads (one accept thread, one thread per
connection) on a given 127.0.0.x address. It RECORDS what it saw, so tests can assert on what
lbproxy forwarded:

  connections  number of TCP connections accepted
  heads        every request head it parsed (even when the body never completed)
  requests     every complete request (head and whole body)
  incomplete   requests whose body never completed, and bytes it could not parse at all

Bodies (Content-Length or chunked, decoded here) are read streaming and hashed as they come,
never held in memory. Endpoints (the names of the underscored ones keep them apart from paths other tests use):

  any path       200, JSON {"server", "host", "method", "path", "target", "query", "version",
                 "headers": {lower-case name: value}, "body_len", "body_sha256", "conn_id"}
  /bytes/N       N bytes (pattern_bytes) with Content-Length, written in pieces
  /chunked/N     N bytes in chunked coding
  /delay/S       waits S seconds (float), then the JSON answer
  (every path)   waits `delay` seconds first (an attribute, 0 by default: a slow node)
  /status/C      status C (JSON body unless the status forbids one)
  /close/N       N bytes without Content-Length, then closes
  /hop           the JSON answer, with hop-by-hop headers that a proxy must remove
  /garbage       an unparsable response, then closes
  /_hangup       closes the connection without an answer
  /_drip/N       N bytes with Content-Length in 10 pieces over about a second
  /_stall/N      Content-Length N, half the bytes, then silence (until stopped or 30 s), close
  /_badresp/KIND a response that must not be passed on: cl-te (Content-Length with chunked),
                 two-cl (differing Content-Lengths), bad-chunk (invalid chunk size),
                 obs-fold (folded header line), bigheader (a 100 KB header)
  ?h=Name:Value  (any path, repeatable) adds a response header
  ?close=1       (any path) answers with Connection: close and closes

Two modes a test switches on and off while it runs (attributes, as `delay`): `fail_status`
(None, or a status such as 500 that every request gets instead of its answer: a node in
trouble), and `hang` (every request is read and recorded, then never answered: the connection
is held until hang is switched off or the server stops, then closed). Killing a node is
stop(); restart() brings it back on its port.

HEAD gets the headers of GET without a body. `Expect: 100-continue` is answered with
100 Continue before the body is read.
"""

import hashlib
import json
import random
import re
import socket
import threading
import time
import urllib.parse

PIECE = 64 * 1024
_BLOCK = random.Random(20240607).randbytes(PIECE)

# Strict grammar for what the upstream accepts as a chunk size (1*HEXDIG, bounded).
_CHUNK_SIZE_RE = re.compile(rb"^([0-9A-Fa-f]{1,16})(;[^\r\n]*)?$")
_TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

MAX_HEAD_BYTES = 1024 * 1024
MAX_HEAD_LINES = 1000
IDLE_TIMEOUT = 60.0  # seconds a connection may stay idle (bounded)


def pattern_bytes(n):
    """Yields the deterministic test content of length n, in pieces of at most PIECE bytes."""
    left = n
    while left > 0:
        k = min(left, PIECE)
        yield _BLOCK[:k]
        left -= k


_sha_cache = {}


def pattern_sha256(n):
    """The sha256 hex digest of pattern_bytes(n)."""
    if n not in _sha_cache:
        h = hashlib.sha256()
        for piece in pattern_bytes(n):
            h.update(piece)
        _sha_cache[n] = h.hexdigest()
    return _sha_cache[n]


BAD_RESPONSES = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n"
                 b"0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "bigheader": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 100_000 + b"\r\nContent-Length: 0\r\n\r\n",
}


class BadRequest(Exception):
    pass


class Record(dict):
    """What the upstream saw of one request; a dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def header(self, name):
        """Values of every header called `name` (case-insensitive), in order."""
        name = name.lower()
        return [v for k, v in self["headers"] if k.lower() == name]


class ThreadedServer:
    """A listening socket on `host`, any port, that serves each connection on a thread of its
    own with `_serve(conn)`, until stop(). A subclass sets its own attributes before calling
    this __init__ (the accept thread starts in it). For the few connections a test makes."""

    def __init__(self, host, backlog=16):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        raise NotImplementedError

    def stop(self):
        self.sock.close()


class UpstreamServer:
    def __init__(self, name, host="127.0.0.2", port=0):
        self.name = name
        self.host = host
        self._want_port = port
        self.port = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._socks = set()
        self._listener = None
        self.delay = 0.0  # seconds every answer waits: a node slow as a whole
        self.fail_status = None  # a status every request gets (500: a node in trouble)
        self.hang = False  # requests are read, never answered
        self.reset()

    # -- recording ----------------------------------------------------------------------------
    def reset(self):
        with self._lock:
            self.connections = 0
            self.heads = []
            self.requests = []
            self.incomplete = []

    def _add(self, what, rec):
        with self._lock:
            getattr(self, what).append(rec)

    def paths(self):
        with self._lock:
            return [r.path for r in self.requests]

    def wait_requests(self, n, timeout=10.0):
        """Waits (bounded) until at least n complete requests were recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"upstream {self.name}: {len(self.requests)} requests, wanted {n}")

    def drop_connections(self):
        """Closes every connection (as an upstream restarting or timing idle ones out)."""
        with self._lock:
            socks = list(self._socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(socks)

    def open_connections(self):
        with self._lock:
            return len(self._socks)

    def wait_heads(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.heads) >= n:
                    return list(self.heads)
            time.sleep(0.01)
        raise AssertionError(f"upstream {self.name}: {len(self.heads)} heads, wanted {n}")

    # -- life ---------------------------------------------------------------------------------
    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                          socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self._want_port))
        s.listen(512)
        s.settimeout(0.2)
        self._listener = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"upstream-{self.name}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        self.drop_connections()
        deadline = time.monotonic() + 5
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        if self._listener:
            self._listener.close()
            self._listener = None

    def restart(self):
        """Listens again on the port it had, after stop()."""
        self._stop.clear()
        self._want_port = self.port
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        conn_id = 0
        while not self._stop.is_set():
            try:
                c, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn_id += 1
            with self._lock:
                self.connections += 1
                self._socks.add(c)
            t = threading.Thread(target=self._serve, args=(c, peer, conn_id), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    # -- one connection -----------------------------------------------------------------------
    def _serve(self, c, peer, conn_id):
        c.settimeout(IDLE_TIMEOUT)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rf = c.makefile("rb", buffering=256 * 1024)
        try:
            for _ in range(1_000_000):  # requests per connection, bounded
                if self._stop.is_set() or not self._one(c, rf, peer, conn_id):
                    break
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._socks.discard(c)
            try:
                rf.close()
                c.close()
            except OSError:
                pass

    def _read_head(self, rf):
        """Returns the list of raw head lines (without line ends), None on EOF before a byte."""
        lines = []
        total = 0
        while True:
            line = rf.readline(MAX_HEAD_BYTES + 1)
            if not line:
                if not lines:
                    return None
                raise BadRequest("connection closed inside the head: %r" % b"".join(lines)[:200])
            total += len(line)
            if total > MAX_HEAD_BYTES or len(lines) > MAX_HEAD_LINES:
                raise BadRequest("head too large")
            if not line.endswith(b"\n"):
                raise BadRequest("closed inside a head line")
            # Lenient on purpose (records whatever a proxy let through): CRLF or bare LF.
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not lines and line == b"":
                continue  # stray empty lines before a request line (RFC 9112 2.2)
            if line == b"":
                return lines
            lines.append(line)

    def _one(self, c, rf, peer, conn_id):
        try:
            lines = self._read_head(rf)
        except BadRequest as e:
            self._add("incomplete", Record(conn_id=conn_id, error=str(e), method=None,
                                           path=None, headers=[]))
            return False
        if lines is None:
            return False
        raw_head = b"\r\n".join(lines)
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._add("incomplete", Record(conn_id=conn_id, error="bad request line",
                                           raw_head=raw_head, method=None, path=None,
                                           headers=[]))
            self._send_simple(c, 400, b"bad request line\n", close=True)
            return False
        method, target, version = (p.decode("latin-1") for p in parts)
        headers = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and headers:  # obs-fold: record it as a continuation
                k, v = headers[-1]
                headers[-1] = (k, v + " " + line.strip().decode("latin-1"))
                continue
            k, sep, v = line.partition(b":")
            headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        url = urllib.parse.urlsplit(target)
        rec = Record(conn_id=conn_id, peer=f"{peer[0]}:{peer[1]}", method=method, target=target,
                     path=url.path, query=url.query, version=version, headers=headers,
                     raw_head=raw_head, body_len=0, body_sha256=None, complete=False, error=None)
        self._add("heads", rec)

        def hget(name):
            return [v for k, v in headers if k.lower() == name]

        te = ",".join(hget("transfer-encoding"))
        cls = hget("content-length")
        if hget("expect") and hget("expect")[0].lower() == "100-continue" and \
                version == "HTTP/1.1":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        h = hashlib.sha256()
        n = 0
        try:
            if te:
                codings = [x.strip().lower() for x in te.split(",") if x.strip()]
                if not codings or codings[-1] != "chunked":
                    raise BadRequest(f"transfer-encoding {te!r}")
                n = self._read_chunked(rf, h)
            elif cls:
                vals = {x.strip() for v in cls for x in v.split(",")}
                if len(vals) != 1 or not next(iter(vals)).isdigit():
                    raise BadRequest(f"content-length {cls!r}")
                want = int(next(iter(vals)))
                while n < want:
                    piece = rf.read(min(want - n, 256 * 1024))
                    if not piece:
                        raise BadRequest(f"closed after {n} of {want} body bytes")
                    h.update(piece)
                    n += len(piece)
        except (BadRequest, socket.timeout, OSError, ValueError) as e:
            rec["error"] = str(e) or type(e).__name__
            rec["body_len"] = n
            self._add("incomplete", rec)
            if isinstance(e, BadRequest):
                try:
                    self._send_simple(c, 400, b"bad request body\n", close=True)
                except OSError:
                    pass
            return False
        rec["body_len"] = n
        rec["body_sha256"] = h.hexdigest()
        rec["complete"] = True
        self._add("requests", rec)

        conn_tokens = {t.strip().lower() for v in hget("connection") for t in v.split(",")}
        keep = ("close" not in conn_tokens) and (version == "HTTP/1.1" or
                                                  "keep-alive" in conn_tokens)
        if "close=1" in rec.query.split("&"):
            keep = False  # ?close=1: answer with Connection: close, then close
        return self._respond(c, rec, hget, keep)

    def _read_chunked(self, rf, h):
        n = 0
        for _ in range(100_000_000):
            line = rf.readline(4096)
            if not line:
                raise BadRequest("closed inside chunked body")
            if not line.endswith(b"\r\n"):
                raise BadRequest(f"bad chunk size line {line[:40]!r}")
            m = _CHUNK_SIZE_RE.match(line[:-2])
            if not m:
                raise BadRequest(f"bad chunk size {line[:40]!r}")
            size = int(m.group(1), 16)
            if size == 0:
                for _ in range(1000):  # trailers
                    t = rf.readline(8192)
                    if not t:
                        raise BadRequest("closed inside trailers")
                    if t == b"\r\n":
                        return n
                    if not t.endswith(b"\r\n"):
                        raise BadRequest("bad trailer line")
                raise BadRequest("too many trailers")
            left = size
            while left:
                piece = rf.read(min(left, 256 * 1024))
                if not piece:
                    raise BadRequest("closed inside a chunk")
                h.update(piece)
                left -= len(piece)
                n += len(piece)
            if rf.read(2) != b"\r\n":
                raise BadRequest("no CRLF after chunk data")
        raise BadRequest("too many chunks")

    # -- answers ------------------------------------------------------------------------------
    def _send_simple(self, c, status, body, close=False):
        c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                  % (status, len(body), b"Connection: close\r\n" if close else b"") + body)

    def _json(self, rec, hget):
        hd = {}
        for k, v in rec.headers:
            hd[k.lower()] = hd[k.lower()] + ", " + v if k.lower() in hd else v
        host = hget("host")
        return json.dumps({
            "server": self.name, "host": host[0] if host else None, "method": rec.method,
            "path": rec.path, "target": rec.target, "query": rec.query,
            "version": rec.version, "headers": hd, "body_len": rec.body_len,
            "body_sha256": rec.body_sha256, "conn_id": rec.conn_id,
        }).encode() + b"\n"

    def _respond(self, c, rec, hget, keep):
        path = rec.path
        head_only = rec.method == "HEAD"
        extra = []
        for item in urllib.parse.parse_qs(rec.query).get("h", []):
            k, _, v = item.partition(":")
            extra.append((k.strip(), v.strip()))
        m = re.fullmatch(
            r"/(bytes|chunked|delay|status|close|_drip|_stall|_badresp)/([0-9a-z.-]+)", path)
        kind, arg = (m.group(1), m.group(2)) if m else (path, None)
        if self.hang:
            # Held (bounded) until hang is switched off or the server stops; no answer.
            deadline = time.monotonic() + IDLE_TIMEOUT
            while self.hang and time.monotonic() < deadline and not self._stop.wait(0.05):
                pass
            return False
        if self.fail_status is not None:
            kind, arg = "status", str(self.fail_status)
        if self.delay and self._stop.wait(self.delay):
            return False
        status = 200
        body = None
        if kind == "/garbage":
            c.sendall(b"HTTP/1.1 abc\r\nthis is not http\r\n\r\n")
            return False
        if kind == "/_hangup":
            return False
        if kind == "_badresp":
            c.sendall(BAD_RESPONSES[arg])
            return False
        if kind in ("_drip", "_stall"):
            n = int(arg)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % n)
            data = b"".join(pattern_bytes(n))
            if kind == "_stall":
                c.sendall(data[:n // 2])
                self._stop.wait(30)
                return False
            step = max(1, (n + 9) // 10)
            for i in range(0, n, step):
                c.sendall(data[i:i + step])
                if i + step < n and self._stop.wait(0.1):
                    return False
            return keep
        if kind == "delay":
            if self._stop.wait(float(arg)):
                return False
        if kind == "status":
            status = int(arg)
        hdrs = [("Server", f"upstream-{self.name}"), ("X-Upstream", self.name)]
        if kind == "/hop":
            hdrs += [("Connection", "X-Hop-Secret, Keep-Alive"),
                     ("Keep-Alive", "timeout=77, max=777"),
                     ("X-Hop-Secret", "upstream-hop-secret"),
                     ("Proxy-Connection", "upstream-proxy-connection"),
                     ("Trailer", "X-Upstream-Trailer"),
                     ("Upgrade", "upstream-upgrade/1"),
                     ("X-End-To-End", "kept")]
        hdrs += extra
        if not keep:
            hdrs.append(("Connection", "close"))
        reason = {200: "OK", 204: "No Content", 304: "Not Modified", 404: "Not Found"}.get(
            status, "Status")
        no_body = status in (204, 304) or 100 <= status < 200

        def head(hs):
            out = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in hs]
            return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")

        if kind in ("bytes", "chunked", "close"):
            n = int(arg)
            hdrs.append(("Content-Type", "application/octet-stream"))
            if kind == "bytes":
                c.sendall(head(hdrs + [("Content-Length", str(n))]))
                if not head_only:
                    for piece in pattern_bytes(n):
                        c.sendall(piece)
                return keep
            if kind == "chunked":
                c.sendall(head(hdrs + [("Transfer-Encoding", "chunked")]))
                if not head_only:
                    for piece in pattern_bytes(n):
                        c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    c.sendall(b"0\r\n\r\n")
                return keep
            # close-delimited
            c.sendall(head([h for h in hdrs if h[0] != "Connection"] + [("Connection", "close")]))
            if not head_only:
                for piece in pattern_bytes(n):
                    c.sendall(piece)
            c.shutdown(socket.SHUT_WR)
            return False
        body = b"" if no_body else self._json(rec, hget)
        hdrs.append(("Content-Type", "application/json"))
        if not no_body:
            hdrs.append(("Content-Length", str(len(body))))
        c.sendall(head(hdrs) + (b"" if head_only else body))
        return keep


if __name__ == "__main__":  # manual use: python3 upstream.py NAME HOST PORT
    import sys
    srv = UpstreamServer(sys.argv[1], sys.argv[2], int(sys.argv[3])).start()
    print(f"listening on {srv.address}", flush=True)
    try:
        srv._stop.wait(3600)
    finally:
        srv.stop()
