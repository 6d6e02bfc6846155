#!/bin/sh
# Run by `meson install`. With DESTDIR (staging, packaging) nothing is done; on a live system
# with systemd it creates the lbproxy user and makes systemd, journald and dbus-daemon see the
# new files. Each step may fail (not root, no systemd) without failing the install.
[ -z "$DESTDIR" ] || exit 0
[ "${MESON_INSTALL_DESTDIR_PREFIX:-}" = "${MESON_INSTALL_PREFIX:-}" ] || exit 0
[ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] || {
        echo "lbproxy: not on a running systemd as root: run these yourself:"
        echo "  systemd-sysusers $1; journalctl --update-catalog; systemctl reload dbus; systemctl daemon-reload"
        exit 0
}
systemd-sysusers "$1" || true
journalctl --update-catalog || true
# dbus-daemon resolves the user of <policy user="lbproxy"> when it loads its configuration.
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig \
        >/dev/null 2>&1 || true
systemctl daemon-reload || true
exit 0
