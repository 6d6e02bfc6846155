# SPDX-License-Identifier: MIT
"""A journald stand-in for the integration tests: a datagram socket that reads the journal's
native protocol when told to (and, paused, reads nothing: a stuck journald), and the mount
namespace that puts it at /run/systemd/journal/socket for lbproxy alone."""

import shlex
import socket
import threading
import time


def journal_namespace(socket_path):
    """A wrapper argv (LbProxy(wrapper=...)) that runs the daemon with a private, empty /run in
    which /run/systemd/journal/socket is `socket_path`, or absent when it is None."""
    script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal"
    if socket_path:
        script += f" && ln -s {shlex.quote(str(socket_path))} /run/systemd/journal/socket"
    script += ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


def parse_native(data):
    """One native-protocol datagram: {field: value}. A value with a newline comes as
    NAME\\n, a 64-bit little-endian length, the value, \\n."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            v = data[nl + 9:nl + 9 + n]
            assert data[nl + 9 + n:nl + 10 + n] == b"\n", data[i:i + 200]
            i = nl + 10 + n
        fields[k.decode()] = v.decode("utf-8", "replace")
    return fields


class FakeJournal:
    def __init__(self, directory):
        self.path = str(directory / "journal.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.entries = []
        self._lock = threading.Lock()
        self._reading = threading.Event()
        self._reading.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def wrapper(self):
        return journal_namespace(self.path)

    def pause(self):
        """Stops reading (after the datagram being read, if any): journald stuck."""
        self._reading.clear()
        time.sleep(0.1)  # a recv already under way ends within its 0.05 s timeout

    def resume(self):
        self._reading.set()

    def _loop(self):
        while not self._stop.is_set():
            if not self._reading.wait(0.05):
                continue
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            e = parse_native(data)
            with self._lock:
                self.entries.append(e)

    def matching(self, pred):
        with self._lock:
            return [e for e in self.entries if pred(e)]

    def wait(self, pred, count=1, timeout=10.0):
        """Waits (bounded) until at least `count` entries satisfy pred; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.matching(pred)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
