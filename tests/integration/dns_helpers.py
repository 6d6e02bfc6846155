# SPDX-License-Identifier: MIT
"""DNS for the integration tests: dnsmasq as a real DNS server on a loopback port.

  dnsmasq       fixture, factory: dnsmasq(records=[(NAME, IP, TTL), ...], local=["test"],
                addresses=[(NAME, IP)], port=None) -> a started Dnsmasq, ready once it answered
                a query. A record without TTL (TTL None) answers TTL 0. `local` domains answer
                NXDOMAIN for names nobody configured. Stopped at teardown.
  dns_gate      fixture, factory: dns_gate() -> a started DnsGate: a UDP port that takes DNS
                queries and holds them (a DNS server that does not answer) until open(PORT)
                sends them, and every later one, on to a real server there (dnsmasq) and its
                answers back.
  dns_query     one query over UDP: (rcode, [(address, ttl), ...]).
  free_udp_tcp_port
                a port free on 127.0.0.1 for both UDP and TCP (dnsmasq binds both).

Dnsmasq runs in the foreground with --log-queries, its log in a file of its own: `queries(name)`
counts the queries it received for a name, which shows how often lbproxy re-resolved.
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
QTYPES = {"A": 1, "AAAA": 28}
RCODE_NXDOMAIN = 3


# -- a minimal DNS client ---------------------------------------------------------------------
def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        b = label.encode("ascii")
        assert 0 < len(b) < 64, name
        out += bytes([len(b)]) + b
    return out + b"\0"


def _skip_name(msg, off):
    for _ in range(128):
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:  # compression pointer: the name ends here
            return off + 2
        off += 1 + n
    raise ValueError("DNS name too long")


def build_query(name, qtype="A", qid=None):
    qid = random.randrange(1 << 16) if qid is None else qid
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) + \
        struct.pack("!HH", QTYPES[qtype], 1)


def parse_answer(msg, qid=None):
    """(rcode, [(address, ttl)]) of the A/AAAA records in a response."""
    rid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if qid is not None and rid != qid:
        raise ValueError(f"answer id {rid}, asked {qid}")
    if not flags & 0x8000:
        raise ValueError("not a response")
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    out = []
    for _ in range(an):
        off = _skip_name(msg, off)
        rtype, _rclass, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1:
            out.append((socket.inet_ntop(socket.AF_INET, rdata), ttl))
        elif rtype == 28:
            out.append((socket.inet_ntop(socket.AF_INET6, rdata), ttl))
    return flags & 0xF, out


def dns_query(name, port, qtype="A", host="127.0.0.1", timeout=1.0):
    """One query over UDP; (rcode, [(address, ttl)]). Raises socket.timeout without answer."""
    qid, q = build_query(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(q)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            msg = s.recv(4096)
            try:
                return parse_answer(msg, qid)
            except ValueError:
                if time.monotonic() > deadline:
                    raise socket.timeout("no matching answer") from None


def free_udp_tcp_port(host="127.0.0.1", attempts=50):
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise AssertionError("no port free for both UDP and TCP")


# -- dnsmasq ----------------------------------------------------------------------------------
class Dnsmasq:
    def __init__(self, workdir, records=(), local=(), addresses=(), port=None,
                 host="127.0.0.1"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.records = list(records)
        self.local = list(local)
        self.addresses = list(addresses)
        self.proc = None
        self.log_path = self.workdir / "dnsmasq.log"
        self._log = None
        self.starts = 0

    @property
    def server(self):
        """The lbproxy `dns.servers` entry."""
        return f"{self.host}:{self.port}"

    def _args(self):
        a = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
             "--conf-file=/dev/null", f"--listen-address={self.host}", "--bind-interfaces",
             f"--port={self.port}", "--pid-file=", "--log-facility=-", "--log-queries"]
        if os.geteuid() == 0:
            a += ["--user=root", "--group=root"]  # no change of user needed for a test
        for rec in self.records:
            name, ips, *ttl = rec
            ttl = ttl[0] if ttl else None
            for ip in [ips] if isinstance(ips, str) else ips:
                a.append(f"--host-record={name},{ip}" + (f",{ttl}" if ttl is not None else ""))
        for dom in self.local:
            a.append(f"--local=/{dom}/")
        for name, ip in self.addresses:
            a.append(f"--address=/{name}/{ip}")
        return a

    def start(self, timeout=10.0, attempts=3):
        """Starts dnsmasq (on self.port, or a free port) and waits until it answers."""
        fixed = self.port is not None
        why = ""
        for _ in range(attempts):
            if not fixed:
                self.port = free_udp_tcp_port(self.host)
            ok, why = self._start_once(timeout)
            if ok:
                self.starts += 1
                return self
            if "in use" not in why.lower():
                break
            if fixed:
                time.sleep(0.2)  # the old process's sockets; bounded by `attempts`
        raise AssertionError(f"dnsmasq did not start: {why}\n{self.log_text()[-3000:]}")

    def _start_once(self, timeout):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                return False, f"exited with {self.proc.returncode}: {self.log_text()[-500:]}"
            try:
                dns_query("readiness-probe.invalid", self.port, host=self.host, timeout=0.2)
                return True, ""
            except (socket.timeout, ConnectionRefusedError, OSError):
                time.sleep(0.02)
        self.stop()
        return False, f"no answer within {timeout}s"

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self, records=None, local=None, addresses=None):
        """Stops, and starts again on the same port with (possibly) other records."""
        self.stop()
        if records is not None:
            self.records = list(records)
        if local is not None:
            self.local = list(local)
        if addresses is not None:
            self.addresses = list(addresses)
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def query(self, name, qtype="A", timeout=1.0):
        return dns_query(name, self.port, qtype, host=self.host, timeout=timeout)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queries(self, name, qtype="A"):
        """How many queries of `qtype` for `name` it received (all its runs)."""
        needle = f"query[{qtype}] {name} from"
        return sum(1 for ln in self.log_text().splitlines() if needle in ln)


# -- a gate in front of a DNS server -----------------------------------------------------------
class DnsGate:
    """A UDP DNS port that holds the queries it gets (nothing answers them) until open(port):
    then the held queries and all later ones go to the DNS server on `port`, and its answers
    back to whoever asked. stop() closes the port."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.target = None
        self.received = 0
        self._held = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = None
        self._thread = None

    @property
    def server(self):
        return f"{self.host}:{self.port}"

    def start(self):
        self.port = free_udp_tcp_port(self.host)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.host, self.port))
        s.settimeout(0.05)
        self._sock = s
        self._thread = threading.Thread(target=self._loop, name="dns-gate", daemon=True)
        self._thread.start()
        return self

    def open(self, target_port):
        with self._lock:
            self.target = target_port

    def wait_received(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.received >= n:
                    return True
            time.sleep(0.01)
        return False

    def _forward(self, data, addr, target):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as f:
            f.settimeout(2.0)
            try:
                f.sendto(data, (self.host, target))
                answer = f.recv(65536)
            except OSError:
                return
        try:
            self._sock.sendto(answer, addr)
        except OSError:
            pass

    def _loop(self):
        while not self._stop.is_set():
            with self._lock:
                target = self.target
                held, self._held = (self._held, []) if target else ([], self._held)
            for data, addr in held:
                self._forward(data, addr, target)
            try:
                data, addr = self._sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.received += 1
                self._held.append((data, addr))

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._sock:
            self._sock.close()
            self._sock = None


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def dnsmasq(tmp_path):
    servers = []

    def make(records=(), local=(), addresses=(), port=None):
        d = Dnsmasq(tmp_path / f"dnsmasq{len(servers)}", records, local, addresses, port)
        servers.append(d)
        return d.start()

    yield make
    for d in servers:
        d.stop()


@pytest.fixture
def dns_gate():
    gates = []

    def make():
        g = DnsGate().start()
        gates.append(g)
        return g

    yield make
    for g in gates:
        g.stop()
