# SPDX-License-Identifier: MIT
"""A private system bus for the D-Bus tests: a real dbus-daemon with Debian's system-bus
configuration (only the socket path and the policy folder changed) and lbproxy's own policy file,
so sd-bus and busctl reach it through DBUS_SYSTEM_BUS_ADDRESS."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from lbtest import REPO_ROOT

SYSTEM_CONF = Path("/usr/share/dbus-1/system.conf")

# Used when dbus/org.lbproxy1.conf is not in the tree: the same rules.
FALLBACK_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root"><allow own="org.lbproxy1"/></policy>
  <policy context="default"><allow send_destination="org.lbproxy1"/></policy>
</busconfig>
"""


class SystemBus:
    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.socket = self.dir / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self.proc = None

    def start(self):
        policy_dir = self.dir / "system.d"
        policy_dir.mkdir(parents=True, exist_ok=True)
        policy = REPO_ROOT / "dbus" / "org.lbproxy1.conf"
        if policy.exists():
            shutil.copy(policy, policy_dir / "org.lbproxy1.conf")
        else:
            (policy_dir / "org.lbproxy1.conf").write_text(FALLBACK_POLICY)
        conf = SYSTEM_CONF.read_text()
        conf = re.sub(r"<listen>.*?</listen>", f"<listen>unix:path={self.socket}</listen>", conf)
        conf = re.sub(r"<user>.*?</user>", "", conf)
        conf = re.sub(r"<pidfile>.*?</pidfile>", "", conf)
        conf = conf.replace("<includedir>system.d</includedir>",
                            f"<includedir>{policy_dir}</includedir>")
        conf = conf.replace("<includedir>/etc/dbus-1/system.d</includedir>", "")
        conf = re.sub(r"<include ignore_missing=\"yes\">/etc/dbus-1/system[^<]*</include>", "",
                      conf)
        (self.dir / "bus.conf").write_text(conf)
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.dir / 'bus.conf'}", "--nofork", "--nosyslog"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "dbus.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.socket.exists():
            if self.proc.poll() is not None:
                raise AssertionError("dbus-daemon exited: " + (self.dir / "dbus.log").read_text())
            time.sleep(0.02)
        assert self.socket.exists(), "dbus-daemon socket did not appear"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def env(self):
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def busctl(self, *args, user=None, check=True, timeout=20):
        """Runs busctl --system against this bus; as `user` (a uid) through setpriv."""
        cmd = ["busctl", "--system", "--timeout=10"] + [str(a) for a in args]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        env = dict(os.environ)
        env.update(self.env())
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
        return p

    def call(self, method, signature="", *args, **kw):
        return self.busctl("call", "org.lbproxy1", "/org/lbproxy1", "org.lbproxy1.Manager",
                           method, *((signature,) + args if signature else args), **kw)

    def wait_name(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.busctl("status", "org.lbproxy1", check=False)
            if p.returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("org.lbproxy1 did not appear on the bus")


def dbus_error(bus, method, signature, *args):
    """Calls a Manager method through dbus-python and returns (error name, message), or None
    when it succeeded: busctl prints the message but not the error name."""
    import dbus  # Debian's python3-dbus

    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
    conn = dbus.bus.BusConnection(bus.address)
    try:
        obj = conn.get_object("org.lbproxy1", "/org/lbproxy1")
        iface = dbus.Interface(obj, "org.lbproxy1.Manager")
        getattr(iface, method)(*args, signature=signature)
        return None
    except dbus.exceptions.DBusException as e:
        return e.get_dbus_name(), e.get_dbus_message()
    finally:
        conn.close()
