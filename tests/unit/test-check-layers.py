#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/check-layers.py on small trees made for it: a tree that keeps the rules passes, and each
kind of broken rule fails with exit status 1 and the line that says which file, line and rule."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "..", "check-layers.py")
failures = 0
n = 0


def check(ok, what):
    global failures, n
    n += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}")
    if not ok:
        failures += 1


def make_tree(root, files):
    src = os.path.join(root, "src")
    for path, text in files.items():
        p = os.path.join(src, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return src


def run(src):
    r = subprocess.run(["/usr/bin/python3", CHECK, src], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout.splitlines()


# A tree that keeps every rule, a little like src/.
GOOD = {
    "base/util.h": "#pragma once\n#include <stdint.h>\n",
    "http/http1.h": '#pragma once\n#include <event2/buffer.h>\n#include "base/util.h"\n',
    "net/stream.h": '#pragma once\n#include <event2/event.h>\n#include "base/util.h"\n',
    "tls/tls.c": '#include <gnutls/gnutls.h>\n#include "net/stream.h"\n#include "tls/tls.h"\n',
    "tls/tls.h": '#pragma once\n#include "base/util.h"\n',
    "config/config.h": '#pragma once\n#include <yaml.h>\n#include "base/util.h"\n',
    "lb/model.h": '#pragma once\n#include "config/config.h"\n#include "http/http1.h"\n',
    "proxy/worker.c": '#include "lb/model.h"\n#include "net/stream.h"\n',
    "control/control.h": "#pragma once\n",
    "control/manager.c": '#include "control/control.h"\n#include "proxy/worker.c"\n',
    "bus/bus.c": '#include <systemd/sd-bus.h>\n#include "control/control.h"\n'
                 '#include "lb/model.h"\n',
    "main.c": '#include "bus/bus.c"\n#include "control/manager.c"\n',
}

with tempfile.TemporaryDirectory() as tmp:
    rc, out = run(make_tree(os.path.join(tmp, "good"), GOOD))
    check(rc == 0 and out == ["12 files: the layer rules hold"],
          f"a tree that keeps the rules: {rc} {out}")

    # One include against the direction: exit 1, and the line names file, line and rule.
    bad = dict(GOOD)
    bad["http/http-rewrite.c"] = '#include <string.h>\n\n#include "lb/model.h"\n'
    rc, out = run(make_tree(os.path.join(tmp, "up"), bad))
    check(rc == 1 and out == ["src/http/http-rewrite.c:3: http may not include lb (lb/model.h)"],
          f"http including lb: {rc} {out}")

    # bus may see control/control.h, not the rest of control.
    bad = dict(GOOD)
    bad["bus/bus-manager.c"] = '#include "control/control.h"\n#include "control/manager.h"\n'
    bad["control/manager.h"] = "#pragma once\n"
    rc, out = run(make_tree(os.path.join(tmp, "bus"), bad))
    check(rc == 1 and out == ["src/bus/bus-manager.c:2: bus may not include control "
                              "(control/manager.h)"], f"bus including manager.h: {rc} {out}")

    # Each violation is a line of its own; a foreign library counts too (http has libevent's
    # buffers, not its loop), and so does a header not named by its layer's path.
    bad = dict(GOOD)
    bad["net/resolver.h"] = '#pragma once\n#include "config/config.h"\n'
    bad["http/http-body.c"] = '#include <event2/event.h>\n#include "util.h"\n'
    rc, out = run(make_tree(os.path.join(tmp, "three"), bad))
    check(rc == 1 and out == [
        "src/http/http-body.c:1: http may not include libevent (event2/event.h)",
        'src/http/http-body.c:2: include "util.h" by its layer\'s path ("<layer>/<name>.h")',
        "src/net/resolver.h:2: net may not include config (config/config.h)",
    ], f"three violations: {rc} {out}")

    # A folder the table does not know is not a layer yet.
    bad = dict(GOOD)
    bad["metrics/metrics.c"] = '#include "base/util.h"\n'
    rc, out = run(make_tree(os.path.join(tmp, "new"), bad))
    check(rc == 1 and len(out) == 1 and
          out[0].startswith("src/metrics/metrics.c:0: metrics is not a layer"),
          f"an unknown folder: {rc} {out}")

    rc, out = run(os.path.join(tmp, "missing"))
    check(rc == 2, f"no src/: exit {rc}")

# The real tree keeps the rules (the meson test check-layers says the same; here it shows the
# checker reads src/ by default).
r = subprocess.run(["/usr/bin/python3", CHECK], capture_output=True, text=True, timeout=60)
check(r.returncode == 0, f"src/ keeps the rules: {r.stdout}{r.stderr}")

print(f"1..{n}")
sys.exit(1 if failures else 0)
