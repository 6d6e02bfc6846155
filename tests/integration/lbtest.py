# SPDX-License-Identifier: MIT
"""Helpers for the integration tests: a raw-socket HTTP/1.1 client, YAML writing, and the
lbproxy process harness (readiness through NOTIFY_SOCKET, log capture, clean shutdown)."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Reports that fail any test whose lbproxy printed them.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "WARNING: ThreadSanitizer", "FATAL: ThreadSanitizer")


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


READY_TIMEOUT = env_float("LBPROXY_READY_TIMEOUT", 10.0)

# LBPROXY_TEST_WORKERS=N: every lbproxy runs N workers unless its config sets `workers` itself
# (the default, one per core, would test one thread only on a one-core machine).
TEST_WORKERS = os.environ.get("LBPROXY_TEST_WORKERS", "")


# -- ports ------------------------------------------------------------------------------------
def free_port(host="127.0.0.1"):
    """A port that was free on `host` a moment ago (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def dead_port(host="127.0.0.1"):
    """A port on `host` where nothing listens (connect is refused)."""
    return free_port(host)


def read_to_eof(sock):
    """Everything `sock` (a socket, or an SSL socket) receives until the peer closes."""
    data = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return data
        data += d


# -- YAML -------------------------------------------------------------------------------------
def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (strings always double-quoted)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}\n")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}\n")
        return "".join(out)
    if isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 2)
                out.append(pad + "- " + inner[indent + 2:])
            elif isinstance(v, list) and v:
                inner = to_yaml(v, indent + 2)
                out.append(pad + "- " + inner[indent + 2:])
            else:
                out.append(f"{pad}- {_scalar(v) if not isinstance(v, (dict, list)) else '[]'}\n")
        return "".join(out)
    return pad + _scalar(obj) + "\n"


def upstream_cfg(name, servers, **kw):
    """An `upstreams:` entry for UpstreamServer objects (or (host, port[, weight]) tuples)."""
    nodes = []
    for s in servers:
        if isinstance(s, tuple):
            host, port, *w = s
            nodes.append({"host": host, "port": port, "weight": w[0] if w else 1})
        else:
            nodes.append({"host": s.host, "port": s.port, "weight": 1})
    d = {"name": name, "scheme": "http", "pass_host": "pass", "retries": 1,
         "keepalive_pool": 32, "timeout": {"connect": "5s", "send": "60s", "read": "60s"},
         "nodes": nodes}
    d.update(kw)
    return d


def route_cfg(name, paths, upstreams, **kw):
    """A `routes:` entry; upstreams is a list of names or (name, weight) tuples."""
    ups = [{"name": u, "weight": 1} if isinstance(u, str) else {"name": u[0], "weight": u[1]}
           for u in upstreams]
    d = {"name": name, "paths": list(paths)}
    d.update(kw)
    d["upstreams"] = ups
    return d


# -- a raw HTTP/1.1 client --------------------------------------------------------------------
class Response:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # list of (name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header1(self, name):
        v = self.header(name)
        return v[0] if v else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:200]!r}>"


class Closed(Exception):
    """The server closed the connection before (or instead of) a whole response."""


class Client:
    """One client TCP connection, for exact control over the bytes sent and read."""

    def __init__(self, host, port, timeout=5.0, source=None):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method="GET", path="/", host="example.test", headers=(), body=None,
                version="HTTP/1.1"):
        self.send(build_request(method, path, host, headers, body, version))

    def _fill(self):
        d = self.sock.recv(256 * 1024)
        if not d:
            raise Closed(f"connection closed; unparsed bytes {self.buf[:200]!r}")
        self.buf += d

    def _line(self):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > 1024 * 1024:
                raise AssertionError("response line too long")
            self._fill()
        raise AssertionError("no line")

    def _exact(self, n, sink=None):
        got = 0
        parts = []
        while got < n:
            if not self.buf:
                self._fill()
            piece, self.buf = self.buf[:n - got], self.buf[n - got:]
            got += len(piece)
            if sink:
                sink(piece)
            else:
                parts.append(piece)
        return b"".join(parts)

    def read_head(self):
        """Reads one response head (interim 1xx ones included): (status, reason, version,
        headers, raw)."""
        line = self._line()
        raw = [line]
        m = re.fullmatch(rb"(HTTP/1\.[01]) ([0-9]{3})(?: (.*))?", line)
        if not m:
            raise AssertionError(f"bad status line {line!r}")
        headers = []
        for _ in range(1000):
            h = self._line()
            raw.append(h)
            if h == b"":
                break
            k, sep, v = h.partition(b":")
            assert sep, f"bad response header line {h!r}"
            assert re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", k), f"bad name {h!r}"
            headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        return (int(m.group(2)), (m.group(3) or b"").decode("latin-1"),
                m.group(1).decode(), headers, b"\r\n".join(raw))

    def read_response(self, method="GET", sink=None, interim=False):
        """Reads one whole response. 1xx interim responses are skipped unless interim=True
        (then the first one is returned). With sink, the body goes to sink(piece) instead."""
        for _ in range(10):
            status, reason, version, headers, raw = self.read_head()
            if 100 <= status < 200 and status != 101 and not interim:
                continue
            break
        resp = Response(status, reason, version, headers, b"", raw)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = ",".join(resp.header("transfer-encoding")).lower()
        cl = resp.header("content-length")
        parts = []
        add = sink or parts.append
        if te:
            assert te.split(",")[-1].strip() == "chunked", f"response TE {te!r}"
            for _ in range(10_000_000):
                size_line = self._line()
                m = re.fullmatch(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;.*)?", size_line)
                if not m:
                    raise AssertionError(f"bad chunk size line {size_line[:40]!r}")
                size = int(m.group(1), 16)
                if size == 0:
                    for _ in range(1000):
                        if self._line() == b"":
                            break
                    break
                self._exact(size, add)
                assert self._line() == b"", "no CRLF after chunk"
        elif cl:
            assert len(set(cl)) == 1, f"several Content-Length {cl!r}"
            self._exact(int(cl[0]), add)
        else:  # until close
            while True:
                if self.buf:
                    add(self.buf)
                    self.buf = b""
                d = self.sock.recv(256 * 1024)
                if not d:
                    break
                self.buf = d
        resp.body = b"".join(parts)
        return resp

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection (EOF or reset) within timeout and
        sent nothing more; False if it stays open that long. Extra bytes fail."""
        self.sock.settimeout(timeout)
        try:
            extra = self.buf or self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if extra:
            raise AssertionError(f"unexpected bytes after the response: {extra[:200]!r}")
        return True


def build_request(method="GET", path="/", host="example.test", headers=(), body=None,
                  version="HTTP/1.1"):
    lines = [f"{method} {path} {version}"]
    names = {k.lower() for k, _ in headers}
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


def request(host, port, method="GET", path="/", host_header="example.test", headers=(),
            body=None, timeout=5.0, source=None):
    """One request on a new connection; returns the Response."""
    with Client(host, port, timeout=timeout, source=source) as c:
        c.request(method, path, host_header, headers, body)
        return c.read_response(method)


def curl(*args, timeout=60, check=False, **kw):
    """Runs curl (bounded in time); returns the CompletedProcess (bytes)."""
    cmd = ["curl", "-sS", "--max-time", str(timeout)] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout + 10, check=check, **kw)


# -- lbproxy ----------------------------------------------------------------------------------
class LbProxy:
    """One lbproxy process: started with a config, ready once READY=1 arrived."""

    def __init__(self, binary, workdir, config, *, args=(), env=None, listen_host="127.0.0.1",
                 wrapper=(), journal_stream=False):
        self.binary = str(binary)
        self.wrapper = list(wrapper)  # a command that execs lbproxy, e.g. prlimit: same pid
        # journal_stream: JOURNAL_STREAM names the log file, as systemd names the journal's
        # stream: lbproxy then writes entries to the journal socket, nothing to stderr.
        self.journal_stream = journal_stream
        self.workdir = Path(workdir)
        self.config_src = config
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.listen_host = listen_host
        self.proc = None
        self.port = None
        self.notify = []
        self._notify_lock = threading.Lock()
        self._notify_stop = threading.Event()
        self._notify_thread = None
        self._notify_sock = None
        self._notify_dir = None
        self.returncode = None
        self.log_path = self.workdir / "lbproxy.log"
        self.config_path = self.workdir / "lbproxy.yaml"

    # -- config ------
    def _render(self, port):
        cfg = self.config_src
        h = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        listen = f"{h}:{port}"
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            if "listeners" not in cfg:
                cfg["listeners"] = [{"name": "http", "listen": listen}]
            # Put listeners first so a reader finds them at the top.
            order = ["access_log", "timeouts", "limits", "listeners"]
            cfg = {k: cfg[k] for k in order if k in cfg} | {k: v for k, v in cfg.items()
                                                             if k not in order}
            return to_yaml(cfg)
        return cfg.replace("@LISTEN@", listen).replace("@PORT@", str(port))

    @property
    def address(self):
        return (self.listen_host, self.port)

    @property
    def url(self):
        h = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{h}:{self.port}"

    # -- life ------
    def start(self, attempts=3):
        last = None
        for _ in range(attempts):
            self.port = free_port(self.listen_host)
            self.config_path.write_text(self._render(self.port))
            ok, why = self._start_once()
            if ok:
                return self
            last = why
            if "in use" not in why:
                break
        raise AssertionError(f"lbproxy did not become ready: {last}\n--- log ---\n"
                             f"{self.log_text()[-4000:]}\n--- config ---\n"
                             f"{self.config_path.read_text()}")

    def _start_once(self):
        self._notify_dir = tempfile.mkdtemp(prefix="lbp-", dir="/tmp")
        path = os.path.join(self._notify_dir, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(0.1)
        self._notify_sock = s
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = path
        env.update(self.extra_env)
        self.log_file = open(self.log_path, "ab")
        if self.journal_stream:
            st = os.fstat(self.log_file.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        configs = ["--config", str(self.config_path)]
        if TEST_WORKERS and not re.search(r"(?m)(^|[{,])\s*workers\s*:",
                                          self.config_path.read_text()):
            # A file of its own, so that YAML text is left as the test wrote it.
            workers = self.workdir / "test-workers.yaml"
            workers.write_text(f"workers: {int(TEST_WORKERS)}\n")
            configs = ["--config", str(workers)] + configs
        self.proc = subprocess.Popen(
            self.wrapper + [self.binary] + configs + self.args,
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
            cwd=self.workdir)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                msg = s.recv(65536).decode("utf-8", "replace")
                with self._notify_lock:
                    self.notify.append(msg)
                if "READY=1" in msg.split("\n"):
                    self._notify_thread = threading.Thread(target=self._notify_loop,
                                                           daemon=True)
                    self._notify_thread.start()
                    return True, ""
            except socket.timeout:
                pass
            if self.proc.poll() is not None:
                break
        rc = self.proc.poll()
        if rc is None:
            self._kill()
            why = f"no READY=1 within {READY_TIMEOUT}s"
        else:
            why = f"exited with {rc} before READY=1"
        self._close_notify()
        self.returncode = self.proc.returncode
        log = self.log_text()
        if "in use" in log.lower() or "EADDRINUSE" in log:
            why += " (address in use)"
        return False, why

    def _notify_loop(self):
        while not self._notify_stop.is_set():
            try:
                msg = self._notify_sock.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
            except OSError:
                return
            with self._notify_lock:
                self.notify.append(msg)

    def notify_lines(self):
        with self._notify_lock:
            return [ln for m in self.notify for ln in m.split("\n") if ln]

    def wait_notify(self, line, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.notify_lines():
                return True
            time.sleep(0.02)
        return False

    def _close_notify(self):
        self._notify_stop.set()
        if self._notify_thread:
            self._notify_thread.join(2)
        if self._notify_sock:
            self._notify_sock.close()
            self._notify_sock = None
        if self._notify_dir:
            try:
                os.unlink(os.path.join(self._notify_dir, "notify"))
                os.rmdir(self._notify_dir)
            except OSError:
                pass
            self._notify_dir = None

    def _kill(self):
        try:
            self.proc.kill()
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=None):
        """SIGTERM, then waits (bounded) for the exit; returns the exit code (None when it had
        to be killed)."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = 20.0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                self.returncode = None
                self._finish()
                return None
        self.returncode = self.proc.returncode
        self._finish()
        return self.returncode

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._finish()
        return self.returncode

    def _finish(self):
        self._close_notify()
        try:
            self.log_file.close()
        except Exception:
            pass

    # -- log ------
    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, *needles):
        """Log lines containing every needle."""
        return [ln for ln in self.log_text().splitlines() if all(n in ln for n in needles)]

    def access_lines(self):
        return self.log_lines("route=")

    def wait_log(self, *needles, count=1, timeout=10.0):
        """Waits (bounded) until at least `count` log lines contain every needle."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(*needles)
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]

    def cpu_seconds(self):
        """User plus system CPU time the process used so far (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def vm_hwm_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    # -- convenience ------
    def request(self, method="GET", path="/", host_header="example.test", headers=(),
                body=None, timeout=5.0, source=None):
        return request(self.listen_host, self.port, method, path, host_header, headers, body,
                       timeout, source)

    def client(self, timeout=5.0, source=None):
        return Client(self.listen_host, self.port, timeout=timeout, source=source)
