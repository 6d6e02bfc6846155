#!/bin/bash
# SPDX-License-Identifier: MIT
# lbproxy against HAProxy and nginx on loopback: see tests/bench/README.md.
#
#   tests/bench/run.sh [--quick] [--lbproxy PATH] [--runs N] [--duration S] [--only LIST] [--keep]
#                      [--cpu-quota PCT] [--balancers LIST]
#
# Full mode (about 25 minutes) writes tests/bench/RESULTS.md; --quick (about 1.5 minutes, one run of
# each, short) is a smoke check of the script and writes nothing. Not part of the test suite.
# `--only quota` holds every proxy to PCT% (default 50) of one core with a cgroup CPU quota, so
# that the proxy bounds requests/s; `--only balancers` adds a row per lbproxy balancer.
set -euo pipefail
cd "$(dirname "$0")/../.."

# What the benchmark drives, from Debian's packages.
missing=()
for pair in haproxy:haproxy nginx:nginx-light wrk:wrk certtool:gnutls-bin valgrind:valgrind \
            callgrind_control:valgrind perf:linux-perf strace:strace taskset:util-linux \
            ss:iproute2 meson:meson ninja:ninja-build; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq >/dev/null && \
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A Debian nginx package may have left its default site running on port 80: not ours, left alone.

export LBPROXY_BENCH_COMMAND="tests/bench/run.sh${*:+ $*}"

# The lbproxy under test: --lbproxy PATH, or the optimized build in build-bench/ (made here).
lbproxy=""
args=()
while (($#)); do
        case "$1" in
        --lbproxy) lbproxy="$2"; shift 2 ;;
        --lbproxy=*) lbproxy="${1#*=}"; shift ;;
        *) args+=("$1"); shift ;;
        esac
done
if [[ -z "$lbproxy" ]]; then
        lbproxy=build-bench/src/lbproxy
        [[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release >/dev/null
        if ! meson compile -C build-bench lbproxy >/dev/null 2>build-bench/compile.log; then
                if [[ -x "$lbproxy" ]]; then
                        echo "warning: build failed (build-bench/compile.log); benchmarking the last binary" >&2
                else
                        cat build-bench/compile.log >&2
                        exit 1
                fi
        fi
fi
[[ -x "$lbproxy" ]] || { echo "no lbproxy at $lbproxy" >&2; exit 1; }

exec /usr/bin/python3 tests/bench/bench.py --lbproxy "$lbproxy" "${args[@]}"
