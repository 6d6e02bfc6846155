#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks the include directions between the layers of src/ (ARCHITECTURE.md, "Layers").

Every folder of src/ is a layer; a file includes another layer's header by its path
("base/util.h"). Reads every .c and .h file under src/ and prints each include that breaks
a rule as

    src/http/http-rewrite.c:5: http may not include lb (lb/model.h)

Exit status: 0 when every rule holds, 1 when one breaks, 2 when src/ cannot be read.
Usage: check-layers.py [SRC_DIR]   (default: the src/ beside this script's tests/)
"""

import os
import re
import sys

# What each layer may include besides itself: a layer, or one header of a layer. Files at the top
# of src/ (main.c, the program) may include every layer.
ALLOWED = {
    "base": [],
    "http": ["base"],
    "net": ["base"],
    "tls": ["base", "net"],  # the TLS transport sits under a net Stream
    "config": ["base"],
    "store": ["base", "http", "net", "tls", "config"],  # a shared store of upstreams and routes (etcd)
    "lb": ["base", "http", "net", "tls", "config"],
    "proxy": ["base", "http", "net", "tls", "config", "lb"],
    "control": ["base", "net", "tls", "config", "store", "lb", "proxy"],
    "bus": ["base", "config", "lb", "control/control.h"],
}
TOP = "main"  # what the messages call the files at the top of src/

# Foreign libraries (by the path of their headers) and the layers that may use them: each has its
# glue in the layers named, and nowhere else. Headers not listed (the C library, POSIX, Linux)
# are free for all.
ALL = list(ALLOWED) + [TOP]
LIBRARIES = [
    # (header or header prefix, what it is, layers)
    ("event2/buffer.h", "libevent's buffers", [l for l in ALL if l != "config"]),
    ("event2/util.h", "libevent's utilities", [l for l in ALL if l != "config"]),  # http: its date
    ("event2/", "libevent", [l for l in ALL if l not in ("http", "config")]),
    ("gnutls/", "GnuTLS", ["tls"]),
    ("ares.h", "c-ares", ["net"]),
    ("yaml.h", "libyaml", ["config"]),
    ("json-c/", "json-c", ["store"]),
    ("systemd/sd-bus.h", "sd-bus", ["bus"]),
    ("systemd/sd-journal.h", "sd-journal", ["base"]),
    ("systemd/sd-daemon.h", "sd-daemon", ["net", "control"]),
    ("systemd/", "libsystemd", []),
]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def library_of(header):
    for prefix, what, layers in LIBRARIES:
        if header == prefix or (prefix.endswith("/") and header.startswith(prefix)):
            return what, layers
    return None, None


def check_file(src, path, layers):
    """Yields (line number, message) for each include of `path` that breaks a rule."""
    rel = os.path.relpath(path, src)
    parts = rel.split(os.sep)
    layer = parts[0] if len(parts) > 1 else TOP
    if layer != TOP and layer not in ALLOWED:
        yield 0, f"{layer} is not a layer: add it to ALLOWED in {os.path.basename(__file__)}"
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, header = m.groups()
            if kind == "<":
                what, allowed = library_of(header)
                if what and layer not in allowed:
                    yield n, f"{layer} may not include {what} ({header})"
                continue
            target = header.split("/")
            if len(target) != 2 or target[0] not in layers:
                yield n, f'include "{header}" by its layer\'s path ("<layer>/<name>.h")'
                continue
            if layer == TOP or target[0] == layer:
                continue
            rules = ALLOWED[layer]
            if target[0] not in rules and header not in rules:
                yield n, f"{layer} may not include {target[0]} ({header})"


def main(argv):
    if len(argv) > 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) == 2 else os.path.join(here, "..", "src")
    src = os.path.normpath(src)
    if not os.path.isdir(src):
        print(f"{src}: not a directory", file=sys.stderr)
        return 2
    layers = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}
    n_files = n_bad = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            n_files += 1
            for n, message in check_file(src, path, layers):
                where = os.path.join(os.path.basename(src), os.path.relpath(path, src))
                print(f"{where}:{n}: {message}")
                n_bad += 1
    if n_bad:
        print(f"{n_bad} include(s) break the layer rules", file=sys.stderr)
        return 1
    print(f"{n_files} files: the layer rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
