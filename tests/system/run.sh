#!/bin/bash
# System tests on real systemd: boots systemd as PID 1 in systemd-nspawn on a throw-away overlay
# of this host's root, installs lbproxy there from `meson install` and runs what a user runs
# (tests/system/inside.sh): systemctl, curl, busctl on the real system bus, journalctl,
# systemd-analyze security.
#
# usage: tests/system/run.sh BUILD_DIR
#   BUILD_DIR must be configured with --prefix=/usr --sysconfdir=/etc (the paths the units,
#   the D-Bus policy and the default configuration are installed to).
# Needs root, systemd-container (systemd-nspawn), util-linux (unshare, nsenter), curl, dbus,
# python3 (/usr/bin/python3) on the host: the container runs the host's own files.
# The host is not modified: every write inside the container goes to a tmpfs overlay, the
# container has its own network namespace (loopback only), /run is private to it.
# Prints "ok - NAME" / "not ok - NAME" per check, then "N passed, N failed"; exits 1 when a
# check failed. KEEP_WORK=1 keeps the work folder (/var/tmp/lbproxy-system.*: console log,
# staged install) for a look afterwards.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
not_ok() { echo "not ok - $1"; FAIL=$((FAIL + 1)); }
finish() {
        echo "$PASS passed, $FAIL failed"
        [ "$FAIL" -eq 0 ]
        exit $?
}

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
        echo "usage: $0 BUILD_DIR" >&2
        exit 2
fi
BUILD=$(realpath "$1")
T0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - T0) / 1000000)); }

# ---- prerequisites ----
missing=
[ "$(id -u)" = 0 ] || missing="$missing root"
for c in systemd-nspawn unshare nsenter meson curl busctl dbus-daemon /usr/bin/python3; do
        command -v "$c" >/dev/null || missing="$missing $c"
done
if [ -n "$missing" ]; then
        not_ok "prerequisites (missing:$missing; apt-get install systemd-container dbus curl python3)"
        finish
fi
ok "prerequisites"

read -r prefix sysconfdir < <(/usr/bin/python3 - "$BUILD" <<'EOF'
import json, sys
opts = {o["name"]: o["value"] for o in
        json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))}
print(opts.get("prefix"), opts.get("sysconfdir"))
EOF
)
if [ "$prefix" != /usr ] || [ "$sysconfdir" != /etc ]; then
        not_ok "build directory configured for /usr and /etc (prefix=$prefix sysconfdir=$sysconfdir; use: meson setup BUILD --prefix=/usr --sysconfdir=/etc)"
        finish
fi

# ---- install into a staging tree; the container unpacks it over its overlay ----
WORK=$(mktemp -d /var/tmp/lbproxy-system.XXXXXX)
NSPID=
LEADER=
CG=lbproxy-system-$$
# The host's PID 1 is not systemd: nspawn (--keep-unit) nests the container's cgroups in a
# cgroup of our own, in the unified and the named systemd hierarchy (cgroup v1 hybrid), or in
# the one cgroup2 tree.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        CGDIRS=/sys/fs/cgroup/$CG
else
        CGDIRS=
        for h in unified systemd; do
                [ -d "/sys/fs/cgroup/$h" ] && CGDIRS="$CGDIRS /sys/fs/cgroup/$h/$CG"
        done
fi
cleanup() {
        set +e
        if [ -n "$NSPID" ] && kill -0 "$NSPID" 2>/dev/null; then
                [ -n "$LEADER" ] && nsenter -t "$LEADER" -a systemctl poweroff --no-block \
                        >/dev/null 2>&1
                for _ in $(seq 200); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.05; done
                kill -TERM "$NSPID" 2>/dev/null
                for _ in $(seq 40); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.05; done
                kill -KILL "$NSPID" 2>/dev/null
        fi
        [ -n "$NSPID" ] && wait "$NSPID" 2>/dev/null
        for d in $CGDIRS; do
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if meson install -C "$BUILD" --destdir "$WORK/dest" >"$WORK/install.log" 2>&1; then
        ok "meson install (DESTDIR)"
else
        not_ok "meson install (DESTDIR)"
        sed 's/^/#   /' "$WORK/install.log" | tail -20
        finish
fi

# ---- boot ----
# The container boots this host's own root, so services enabled here (web servers, databases,
# timers) would start in it too: mask them. lbproxy's own units are installed inside.
MASKS=
for u in /etc/systemd/system/multi-user.target.wants/*.service \
         /etc/systemd/system/timers.target.wants/*.timer; do
        [ -e "$u" ] || [ -L "$u" ] || continue
        MASKS="$MASKS systemd.mask=$(basename "$u")"
done
mkdir -p "$WORK/root"
MACHINE=lbproxy-system-$$
for d in $CGDIRS; do mkdir -p "$d"; done
(
        for d in $CGDIRS; do echo "$BASHPID" >"$d/cgroup.procs"; done
        # A private mount namespace: a NON-recursive bind of / (no host /dev, /proc, /run
        # submounts inside), and a private /run for nspawn's own files.
        exec unshare -m --propagation private /bin/bash -c '
                set -e
                machine=$1 work=$2 dest=$3 tests=$4; shift 4
                mount --bind / "$work/root"
                mount -t tmpfs tmpfs /run
                exec systemd-nspawn -D "$work/root" --volatile=overlay --register=no \
                        --keep-unit --private-network -M "$machine" --console=pipe \
                        --bind-ro="$dest":/opt/lbproxy-dest --bind-ro="$tests":/opt/lbproxy-tests \
                        -b -- "$@"' \
                bash "$MACHINE" "$WORK" "$WORK/dest" "$HERE" $MASKS
) >"$WORK/console.log" 2>&1 </dev/null &
NSPID=$!

# The container's PID 1 is nspawn's child named systemd; then wait for the boot to finish.
for _ in $(seq 400); do
        for c in $(pgrep -P "$NSPID" 2>/dev/null); do
                [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && LEADER=$c
        done
        [ -n "$LEADER" ] && break
        kill -0 "$NSPID" 2>/dev/null || break
        sleep 0.05
done
# is-system-running --wait fails at once while systemd's private socket is not there yet.
state=
for _ in $(seq 300); do
        [ -n "$LEADER" ] && kill -0 "$NSPID" 2>/dev/null || break
        state=$(timeout 60 nsenter -t "$LEADER" -a systemctl is-system-running --wait 2>/dev/null)
        case "$state" in running | degraded) break ;; esac
        sleep 0.1
done
case "$state" in
running | degraded)
        ok "container boots systemd as PID 1 ($state, $(ms) ms)"
        [ "$state" = running ] ||
                nsenter -t "$LEADER" -a systemctl --failed --no-pager --plain | sed 's/^/#   /'
        ;;
*)
        not_ok "container boots systemd as PID 1 (state '${state:-none}')"
        sed 's/^/#   /' "$WORK/console.log" | tail -30
        finish
        ;;
esac

# ---- the tests, inside ----
nsenter -t "$LEADER" -a /bin/bash /opt/lbproxy-tests/inside.sh 2>&1 | tee "$WORK/inside.log"
inside_rc=${PIPESTATUS[0]}
n_ok=$(grep -c '^ok - ' "$WORK/inside.log")
n_not_ok=$(grep -c '^not ok - ' "$WORK/inside.log")
PASS=$((PASS + n_ok))
FAIL=$((FAIL + n_not_ok))
if [ "$inside_rc" -ne 0 ] && [ "$n_not_ok" -eq 0 ]; then
        not_ok "inside.sh ran to the end (exit status $inside_rc)"
fi
if [ "$FAIL" -gt 0 ]; then
        echo "# --- lbproxy's journal in the container (last 40 entries)"
        nsenter -t "$LEADER" -a journalctl -u lbproxy.service -u lbproxy.socket --no-pager \
                -n 40 -o short-monotonic 2>&1 | sed 's/^/#   /'
fi
echo "# total $(ms) ms"
finish
