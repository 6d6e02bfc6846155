#!/bin/bash
# Runs INSIDE the container booted by run.sh (real systemd as PID 1, loopback-only network).
# /opt/lbproxy-dest: the `meson install` staging tree; /opt/lbproxy-tests: this folder.
# Prints "ok - NAME" / "not ok - NAME" per check; diagnostics start with "#".
set -uo pipefail

TESTS=/opt/lbproxy-tests
REQUEST_ID=5c1b9a2e4d7f4e1a9b3c6d8e0f2a4b6c
CONFIG_CHANGE_ID=9e1c3a5f7b2d4c6e8a0f1b3d5c7e9a2b
STATE_REJECTED_ID=62b7d884506b458d9d5b7432629bc9dc
BUS=(org.lbproxy1 /org/lbproxy1 org.lbproxy1.Manager)
URL=http://127.0.0.1
CONF=/etc/lbproxy/lbproxy.yaml

ok() { echo "ok - $1"; }
not_ok() {
        echo "not ok - $1"
        shift
        for l in "$@"; do printf '%s\n' "$l" | sed 's/^/#   /'; done
}
# check NAME COMMAND...: ok when COMMAND succeeds; else its output is shown.
check() {
        local name=$1 out
        shift
        if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
# wait_for SECONDS COMMAND...: polls COMMAND (every 50 ms) until it succeeds or time runs out.
wait_for() {
        local deadline=$(($(date +%s%N) + $1 * 1000000000))
        shift
        while ! "$@" >/dev/null 2>&1; do
                [ "$(date +%s%N)" -lt "$deadline" ] || return 1
                sleep 0.05
        done
}
# get PATH: the body of a request, or "ERROR <curl exit status>".
get() {
        curl -sS --max-time 10 "$URL$1" 2>/dev/null || echo "ERROR $?"
}
get_is() { [ "$(get "$1")" = "$2" ]; }
journal_count() { # journal_count MATCHES...: entries of lbproxy.service matching all MATCHES
        journalctl -u lbproxy.service "$@" -o cat --no-pager 2>/dev/null | wc -l
}
count_is() { # count_is N MATCHES...
        local n=$1
        shift
        [ "$(journal_count "$@")" -ge "$n" ]
}
main_pid() { systemctl show -P MainPID lbproxy.service; }

write_config() { # write_config [EXTRA_ROUTE_YAML]
        cat >"$CONF" <<EOF
access_log: true
timeouts: {shutdown_grace: 5s}
listeners:
  - {name: http, listen: "127.0.0.1:9080"}   # fallback only: the socket named http is passed
upstreams:
  - name: alpha
    nodes: [{host: 127.0.0.2, port: 8081}]
routes:
  - name: alpha
    paths: ["/alpha", "/alpha/*"]
    upstreams: [{name: alpha}]
$1
EOF
}

# ---- install, the way a user finishes `meson install` on a live system ----
installed() {
        tar -C /opt/lbproxy-dest -cf - . | tar -C / -xf - --keep-directory-symlink &&
                systemd-sysusers /usr/lib/sysusers.d/lbproxy.conf &&
                journalctl --update-catalog &&
                busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                        ReloadConfig &&
                systemctl daemon-reload
}
check "install: unpack, systemd-sysusers, journalctl --update-catalog, dbus and systemd reload" \
        installed

files_installed() {
        local f
        for f in /usr/bin/lbproxy /lib/systemd/system/lbproxy.service \
                /lib/systemd/system/lbproxy.socket /usr/share/dbus-1/system.d/org.lbproxy1.conf \
                /usr/lib/systemd/catalog/lbproxy.catalog /usr/lib/sysusers.d/lbproxy.conf \
                /etc/lbproxy/lbproxy.yaml /usr/share/man/man8/lbproxy.8 \
                /usr/share/man/man5/lbproxy.yaml.5; do
                [ -e "$f" ] || { echo "missing: $f"; return 1; }
        done
        grep -qx 'ExecStart=/usr/bin/lbproxy --config /etc/lbproxy' \
                /lib/systemd/system/lbproxy.service || { echo "ExecStart= not substituted"; return 1; }
}
check "install: binary, units, D-Bus policy, catalog, sysusers.d, /etc/lbproxy, man pages" \
        files_installed
check "install: the default /etc/lbproxy is valid (lbproxy --check)" \
        /usr/bin/lbproxy --check --config /etc/lbproxy
check "install: user lbproxy created by systemd-sysusers" getent passwd lbproxy
check "units: systemd-analyze verify" systemd-analyze verify lbproxy.socket lbproxy.service
catalog_ok() {
        local id
        for id in $REQUEST_ID 7a3e9c1f5b2d4e8a9c6f1b3d5e7a9c2e 687cb4e2411e40749ce24f1f14f568c5 2f8d6b4a1c9e4f7b8a5d3c1e9f7b5a3d \
                4b6d8f0a2c4e4a6b8d0f2a4c6e8b0d2f $CONFIG_CHANGE_ID; do
                journalctl --list-catalog "$id" 2>/dev/null | grep -q lbproxy ||
                        { echo "no catalog entry $id"; return 1; }
        done
}
check "catalog: journalctl knows all 6 lbproxy MESSAGE_IDs" catalog_ok

sec=$(systemd-analyze security --no-pager lbproxy.service 2>&1)
level=$(sed -n 's/.*Overall exposure level for lbproxy.service: \([0-9.]*\).*/\1/p' <<<"$sec")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
        ok "security: systemd-analyze security lbproxy.service = $level (<= 2.0)"
else
        not_ok "security: systemd-analyze security lbproxy.service = ${level:-?} (<= 2.0)" \
                "$(grep '✗' <<<"$sec")"
fi

# ---- upstreams: tiny HTTP servers on other loopback addresses, run as transient units ----
start_upstream() { # start_upstream NAME ADDRESS PORT
        systemd-run --quiet --unit="lbproxy-test-upstream-$1" /usr/bin/python3 \
                "$TESTS/upstream.py" "$2" "$3" "$1"
}
start_upstream a 127.0.0.2 8081
start_upstream b 127.0.0.3 8082
start_upstream c 127.0.0.4 8083
upstreams_up() {
        curl -sf -o /dev/null http://127.0.0.2:8081/ && curl -sf -o /dev/null http://127.0.0.3:8082/ &&
                curl -sf -o /dev/null http://127.0.0.4:8083/
}
wait_for 10 upstreams_up || not_ok "test upstreams answer" "$(systemctl status --no-pager 'lbproxy-test-upstream-*' 2>&1)"

write_config ""

# ---- socket activation ----
check "socket: systemctl start lbproxy.socket" systemctl start lbproxy.socket
st=$(systemctl is-active lbproxy.service)
if [ "$st" = inactive ]; then ok "socket: the service waits for the first connection"
else not_ok "socket: the service waits for the first connection" "lbproxy.service is $st"; fi
body=$(get /alpha)
if [ "$body" = "a /alpha" ] && [ "$(systemctl is-active lbproxy.service)" = active ]; then
        ok "socket: the first connection starts lbproxy.service and is answered"
else
        not_ok "socket: the first connection starts lbproxy.service and is answered" \
                "body: $body" "$(systemctl status --no-pager lbproxy.service 2>&1 | tail -15)"
fi
status=$(systemctl show -P StatusText lbproxy.service)
case "$status" in
Serving*) ok "notify: READY=1 and STATUS= (\"$status\")" ;;
*) not_ok "notify: READY=1 and STATUS=" "StatusText: $status" ;;
esac
wd=$(systemctl show -P WatchdogTimestampMonotonic lbproxy.service)
if [ "$(systemctl show -P WatchdogUSec lbproxy.service)" = 30s ] && [ "${wd:-0}" -gt 0 ]; then
        ok "notify: watchdog armed (WatchdogSec=30s) and pinged"
else
        not_ok "notify: watchdog armed (WatchdogSec=30s) and pinged" \
                "$(systemctl show -p WatchdogUSec -p WatchdogTimestampMonotonic lbproxy.service)"
fi
sandboxed() {
        local pid user
        pid=$(main_pid)
        user=$(ps -o user= -p "$pid")
        [ "$user" = lbproxy ] || { echo "runs as '$user'"; return 1; }
        grep -q '^CapEff:[[:space:]]*0000000000000000$' "/proc/$pid/status" ||
                { grep Cap "/proc/$pid/status"; return 1; }
        grep -q '^CapBnd:[[:space:]]*0000000000000000$' "/proc/$pid/status" ||
                { grep Cap "/proc/$pid/status"; return 1; }
        grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status" || { echo "NoNewPrivs off"; return 1; }
        [ "$(stat -L -c %U /var/lib/lbproxy)" = lbproxy ] ||
                { ls -ld /var/lib/lbproxy; return 1; }
}
check "sandbox: runs as user lbproxy, no capabilities, no new privileges, owns /var/lib/lbproxy" \
        sandboxed
thread_field() { # thread_field NAME FIELD: FIELD of /proc/PID/task/TID/sched of lbproxy's thread NAME
        local t
        for t in /proc/"$(main_pid)"/task/*; do
                [ "$(cat "$t/comm")" = "$1" ] || continue
                awk -v f="$2" '$1 == f { print $3 }' "$t/sched"
                return 0
        done
        return 1
}
gives_way() {
        local w c s
        w=$(thread_field lbproxy-w0 se.load.weight)
        c=$(thread_field lbproxy se.load.weight)
        s=$(thread_field lbproxy-state se.load.weight)
        [ "$(thread_field lbproxy-w0 se.slice)" = 100000 ] ||
                { echo "worker slice $(thread_field lbproxy-w0 se.slice)"; return 1; }
        # nice 0, 5 and 10: weights 1024, 335 and 110 (times 1024 in /proc)
        [ "$c" -lt "$w" ] && [ "$s" -lt "$c" ] || { echo "weights: worker $w control $c state $s"; return 1; }
}
check "sandbox: sched_setattr let through: a worker's short slice, the control thread and the state writer below it" \
        gives_way

# ---- journal: one entry per request, with its fields ----
for _ in $(seq 20); do get /alpha/x >/dev/null; done
# 21 requests so far went to upstream alpha; journald is asynchronous: wait for them, bounded.
wait_for 10 count_is 21 LBPROXY_UPSTREAM=alpha MESSAGE_ID=$REQUEST_ID
n=$(journal_count LBPROXY_UPSTREAM=alpha MESSAGE_ID=$REQUEST_ID)
if [ "$n" -eq 21 ]; then
        ok "journal: journalctl -u lbproxy LBPROXY_UPSTREAM=alpha counts exactly the 21 requests"
else
        not_ok "journal: journalctl -u lbproxy LBPROXY_UPSTREAM=alpha counts exactly the 21 requests" \
                "counted $n" "$(journalctl -u lbproxy.service -n 5 --no-pager -o cat)"
fi
fields=$(journalctl -u lbproxy.service MESSAGE_ID=$REQUEST_ID LBPROXY_PATH=/alpha/x -n 1 \
        -o export --no-pager 2>/dev/null)
if grep -qx LBPROXY_ROUTE=alpha <<<"$fields" && grep -qx LBPROXY_STATUS=200 <<<"$fields" &&
        grep -qx 'LBPROXY_NODE=127.0.0.2:8081' <<<"$fields"; then
        ok "journal: an entry carries LBPROXY_ROUTE, LBPROXY_NODE, LBPROXY_STATUS"
else
        not_ok "journal: an entry carries LBPROXY_ROUTE, LBPROXY_NODE, LBPROXY_STATUS" \
                "$(grep ^LBPROXY_ <<<"$fields")"
fi
rl=$(systemctl show -P LogRateLimitIntervalUSec lbproxy.service)
if [ "$rl" = 0 ]; then
        ok "journal: no journald rate limit for the unit (one entry per request)"
else
        not_ok "journal: no journald rate limit for the unit (one entry per request)" \
                "LogRateLimitIntervalUSec=$rl"
fi
if journalctl -u lbproxy.service MESSAGE_ID=$REQUEST_ID -n 1 -x --no-pager 2>/dev/null |
        grep -q 'lbproxy proxied a request'; then
        ok "journal: journalctl -x explains the entry from the catalog"
else
        not_ok "journal: journalctl -x explains the entry from the catalog"
fi

# ---- D-Bus on the real system bus ----
owner_ok() { busctl status org.lbproxy1 2>/dev/null | grep -qx 'Unit=lbproxy.service'; }
if wait_for 10 owner_ok; then
        ok "dbus: lbproxy.service owns org.lbproxy1 on the system bus (policy for user lbproxy)"
else
        not_ok "dbus: lbproxy.service owns org.lbproxy1 on the system bus (policy for user lbproxy)" \
                "$(busctl status org.lbproxy1 2>&1 | head -5)" \
                "$(journalctl -u lbproxy.service -u dbus.service --no-pager -n 10 -o cat)"
fi
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
check "dbus: an unprivileged user may read (ListUpstreams)" \
        as_nobody busctl call "${BUS[@]}" ListUpstreams
out=$(as_nobody busctl call "${BUS[@]}" AddNode ssqu alpha 127.0.0.9 80 1 2>&1)
if [ $? -ne 0 ] && grep -qi 'denied' <<<"$out"; then
        ok "dbus: an unprivileged user may not change (AddNode: access denied)"
else
        not_ok "dbus: an unprivileged user may not change (AddNode: access denied)" "$out"
fi

dbus_change() { # dbus_change NAME busctl-call-arguments...
        local name=$1 out
        shift
        if out=$(busctl call "${BUS[@]}" "$@" 2>&1); then
                ok "$name"
        else
                not_ok "$name" "$out"
                return 1
        fi
}
dbus_change "dbus: AddUpstream beta (127.0.0.3:8082)" \
        AddUpstream 'ssa(squ)a{sv}' beta http 1 127.0.0.3 8082 1 0
dbus_change "dbus: AddRoute beta (/beta -> beta)" \
        AddRoute 'sasa(su)a{sv}' beta 1 /beta 1 beta 1 0
if wait_for 5 get_is /beta "b /beta"; then
        ok "dbus: traffic follows AddUpstream + AddRoute (/beta served by b)"
else
        not_ok "dbus: traffic follows AddUpstream + AddRoute (/beta served by b)" "got: $(get /beta)"
fi
dbus_change "dbus: AddNode alpha 127.0.0.4:8083" AddNode ssqu alpha 127.0.0.4 8083 1
split=$(for _ in $(seq 10); do get /alpha; done | sort | uniq -c | awk '{print $2 "=" $1}' | xargs)
if [ "$split" = "a=5 c=5" ]; then
        ok "dbus: traffic follows AddNode (10 requests: a=5 c=5)"
else
        not_ok "dbus: traffic follows AddNode (10 requests: a=5 c=5)" "got: $split"
fi
if wait_for 5 count_is 3 MESSAGE_ID=$CONFIG_CHANGE_ID; then
        ok "journal: the D-Bus changes are logged with the config-change MESSAGE_ID"
else
        not_ok "journal: the D-Bus changes are logged with the config-change MESSAGE_ID" \
                "counted $(journal_count MESSAGE_ID=$CONFIG_CHANGE_ID)"
fi

check "restart: systemctl restart lbproxy" systemctl restart lbproxy
if get_is /beta "b /beta" && [ -f /var/lib/lbproxy/state.yaml ]; then
        ok "state: D-Bus changes survive a restart (/var/lib/lbproxy/state.yaml)"
else
        not_ok "state: D-Bus changes survive a restart (/var/lib/lbproxy/state.yaml)" \
                "got: $(get /beta)" "$(ls -la /var/lib/lbproxy/ 2>&1)"
fi

# A crash: Restart=on-failure brings it back on the same socket, with its D-Bus changes.
pid=$(main_pid)
systemctl kill -s KILL --kill-who=main lbproxy.service
restarted() { [ "$(systemctl is-active lbproxy.service)" = active ] && [ "$(main_pid)" != "$pid" ]; }
if wait_for 10 restarted && get_is /beta "b /beta"; then
        ok "crash: kill -9 -> restarted (Restart=on-failure), D-Bus changes kept"
else
        not_ok "crash: kill -9 -> restarted (Restart=on-failure), D-Bus changes kept" \
                "$(systemctl status --no-pager lbproxy.service 2>&1 | tail -8)"
fi

# ---- restart under a request loop: the socket holds the backlog, nothing is refused ----
# More starts than systemd's start limit allows in 10 s (5) come next, on purpose.
systemctl reset-failed lbproxy.service
LOOP=/run/lbproxy-test-loop
: >"$LOOP"
(
        deadline=$(($(date +%s) + 30))
        for _ in $(seq 300); do
                [ "$(date +%s)" -lt "$deadline" ] || break
                code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/alpha")
                echo "$? $code" >>"$LOOP"
        done
) &
loop_pid=$!
lines_ge() { [ "$(wc -l <"$LOOP")" -ge "$1" ]; }
restarts=0
for at in 40 120 200; do
        wait_for 20 lines_ge $at || break
        systemctl restart lbproxy && restarts=$((restarts + 1))
done
wait $loop_pid
total=$(wc -l <"$LOOP")
refused=$(grep -c '^7 ' "$LOOP")
bad=$(grep -vc '^0 200$' "$LOOP")
if [ "$restarts" -eq 3 ] && [ "$total" -ge 250 ] && [ "$refused" -eq 0 ]; then
        ok "restart: 3 restarts under a loop of $total requests, no connection refused"
else
        not_ok "restart: 3 restarts under a loop of $total requests, no connection refused" \
                "restarts=$restarts refused=$refused"
fi
if [ "$bad" -eq 0 ]; then
        ok "restart: every one of the $total requests answered 200"
else
        not_ok "restart: every one of the $total requests answered 200" \
                "$bad failed (curl status, HTTP code):" "$(grep -v '^0 200$' "$LOOP" | sort | uniq -c)"
fi

# ---- reload: a good file goes live; a broken one fails visibly and changes nothing ----
write_config '  - name: gamma
    paths: ["/gamma"]
    upstreams: [{name: alpha}]'
pid=$(main_pid)
check "reload: systemctl reload lbproxy with a good file succeeds" systemctl reload lbproxy
if wait_for 5 get_is /gamma "a /gamma" && [ "$(main_pid)" = "$pid" ]; then
        ok "reload: the new route serves, same process"
else
        not_ok "reload: the new route serves, same process" "got: $(get /gamma)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/beta")
if [ "$code" = 404 ] && [ ! -e /var/lib/lbproxy/state.yaml ]; then
        ok "reload: the files are the truth again (D-Bus route gone, state.yaml removed)"
else
        not_ok "reload: the files are the truth again (D-Bus route gone, state.yaml removed)" \
                "/beta: $code" "$(ls -la /var/lib/lbproxy/ 2>&1)"
fi

cp "$CONF" /run/lbproxy-good.yaml
cat >>"$CONF" <<'EOF'
  - name: broken
    paths: ["/broken"]
    upstreams: [{name: no-such-upstream}]
EOF
since=$(date +'%Y-%m-%d %H:%M:%S')
if out=$(systemctl reload lbproxy 2>&1); then
        not_ok "reload: a broken file makes systemctl reload fail" "$out"
else
        ok "reload: a broken file makes systemctl reload fail"
fi
if [ "$(systemctl is-active lbproxy.service)" = active ] && [ "$(main_pid)" = "$pid" ] &&
        get_is /gamma "a /gamma"; then
        ok "reload: after the failed reload the old configuration keeps serving"
else
        not_ok "reload: after the failed reload the old configuration keeps serving" \
                "$(systemctl is-active lbproxy.service) pid $(main_pid) (was $pid), /gamma: $(get /gamma)"
fi
why_logged() {
        journalctl -u lbproxy.service --since "$since" --no-pager -o cat |
                grep -q 'lbproxy.yaml:[0-9]*:[0-9]*:.*no-such-upstream'
}
if wait_for 5 why_logged; then
        ok "reload: the journal says why (file:line:column)"
else
        not_ok "reload: the journal says why (file:line:column)" \
                "$(journalctl -u lbproxy.service --since "$since" --no-pager -o cat | tail -5)"
fi
# SIGHUP without the unit's check: the daemon refuses the file itself.
systemctl kill -s HUP --kill-who=main lbproxy.service
refused_logged() {
        journalctl -u lbproxy.service --since "$since" --no-pager -o cat |
                grep -q 'Reload refused'
}
if wait_for 5 refused_logged && [ "$(main_pid)" = "$pid" ] && get_is /gamma "a /gamma" &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/broken")" = 404 ]; then
        ok "reload: SIGHUP with a broken file is refused by the daemon, old configuration kept"
else
        not_ok "reload: SIGHUP with a broken file is refused by the daemon, old configuration kept" \
                "$(journalctl -u lbproxy.service --since "$since" --no-pager -o cat | tail -5)"
fi
cp /run/lbproxy-good.yaml "$CONF"

systemctl reset-failed lbproxy.service
# ---- systemctl start lbproxy (not the socket) works too; stopping the socket stops both ----
systemctl stop lbproxy.socket
a=$(systemctl is-active lbproxy.service lbproxy.socket | xargs)
if [ "$a" = "inactive inactive" ]; then
        ok "stop: systemctl stop lbproxy.socket stops the service too"
else
        not_ok "stop: systemctl stop lbproxy.socket stops the service too" "$a"
fi
check "start: systemctl start lbproxy" systemctl start lbproxy
a=$(systemctl is-active lbproxy.service lbproxy.socket | xargs)
if [ "$a" = "active active" ] && get_is /gamma "a /gamma"; then
        ok "start: service and socket active, serving"
else
        not_ok "start: service and socket active, serving" "$a, /gamma: $(get /gamma)"
fi

# ---- a state that does not load: moved aside, said in the journal and in the unit's status ----
printf 'upstreams: [{name: alpha\n' >/var/lib/lbproxy/state.yaml
systemctl reset-failed lbproxy.service
check "state: restart with a state.yaml that does not parse" systemctl restart lbproxy
status_text() { systemctl show -P StatusText lbproxy.service; }
if get_is /gamma "a /gamma" && [ -f /var/lib/lbproxy/state.yaml.rejected ] &&
        [ ! -e /var/lib/lbproxy/state.yaml ]; then
        ok "state: a state that does not parse is moved aside, the files serve"
else
        not_ok "state: a state that does not parse is moved aside, the files serve" \
                "/gamma: $(get /gamma)" "$(ls -la /var/lib/lbproxy/ 2>&1)"
fi
rejected_entries() { # entries, not lines: the message has several
        journalctl -u lbproxy.service MESSAGE_ID=$STATE_REJECTED_ID -o json --no-pager | wc -l
}
if wait_for 5 count_is 1 MESSAGE_ID=$STATE_REJECTED_ID && [ "$(rejected_entries)" -eq 1 ] &&
        journalctl -u lbproxy.service MESSAGE_ID=$STATE_REJECTED_ID -o cat --no-pager |
        grep -q '/var/lib/lbproxy/state.yaml:[0-9]*:[0-9]*: '; then
        ok "state: one journal entry says why, with state.yaml's line and column"
else
        not_ok "state: one journal entry says why, with state.yaml's line and column" \
                "$(journalctl -u lbproxy.service -n 5 --no-pager -o cat)"
fi
case "$(status_text)" in
*"runtime state rejected"*"/var/lib/lbproxy/state.yaml:"[0-9]*) ok "state: systemctl status says it" ;;
*) not_ok "state: systemctl status says it" "StatusText: $(status_text)" ;;
esac
no_note() { case "$(status_text)" in *"runtime state rejected"*) return 1 ;; esac; }
if systemctl reload lbproxy && wait_for 5 no_note; then
        ok "state: a reload clears the note"
else
        not_ok "state: a reload clears the note" "StatusText: $(status_text)"
fi
