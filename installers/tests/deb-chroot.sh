#!/usr/bin/env bash
# Installs a Tend .deb for real into a throw-away Debian root and checks it
# there: dpkg installs it (maintainer scripts included), the service is
# enabled, `tend check` runs, the unit passes `systemd-analyze verify`, the
# config is a conffile kept on remove and gone on purge, and nothing else is
# left behind. With the tray's package too: it installs beside the agent
# with every library it links, its desktop entries are valid, the tend://
# handler is registered system-wide, its autostart entry is a conffile, and
# it comes off cleanly. Prints the installed footprints.
#
# The base root (debootstrap minbase of this host's Debian release, with
# systemd and man-db so the unit and its man page can be verified, and the
# tray's runtime libraries and desktop-file-utils) is built
# once and cached as a tarball under $TEND_CACHE (default ~/.cache/tend).
# The mirror is the host's (from its APT sources) unless TEND_DEBIAN_MIRROR
# names one. Needs root (chroot, mount).
#
# Usage: installers/tests/deb-chroot.sh PATH/TO/tend_VERSION_amd64.deb [PATH/TO/tend-tray_VERSION_amd64.deb]
set -euo pipefail
deb=$(realpath "${1:?usage: deb-chroot.sh TEND.deb [TEND-TRAY.deb]}")
tray_deb=${2:+$(realpath "$2")}
cache=${TEND_CACHE:-$HOME/.cache/tend}
# shellcheck source=/dev/null
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
# What the packages need besides minbase (procps: /bin/kill for reloads;
# WebKitGTK, the tray-icon library and D-Bus for the tray: D-Bus by name,
# as its dependencies name the buses by virtual packages, which debootstrap
# does not resolve), and what the checks use (systemd-analyze, man,
# deb-systemd-helper, desktop-file-validate).
include=systemd,init-system-helpers,man-db,procps,libwebkit2gtk-4.1-0,libayatana-appindicator3-1,dbus,dbus-user-session,desktop-file-utils
base=$cache/debroot/$suite-minbase-${include//,/-}.tar.gz

host_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $3 == "'"$suite"'" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "$m"
}

if [ ! -f "$base" ]; then
  mirror=${TEND_DEBIAN_MIRROR:-$(host_mirror)}
  [ -n "$mirror" ] || { echo "deb-chroot: no Debian mirror in the APT sources; set TEND_DEBIAN_MIRROR" >&2; exit 1; }
  mkdir -p "$(dirname "$base")"
  build=$(mktemp -d "$cache/debroot/build.XXXXXX")
  echo "deb-chroot: debootstrap $suite (minbase) from $mirror, once"
  debootstrap --variant=minbase --include="$include" \
    "$suite" "$build/root" "$mirror" >"$build/debootstrap.log" 2>&1 \
    || { tail -n 30 "$build/debootstrap.log" >&2; exit 1; }
  # Apt's package lists and caches are not needed to install a local .deb.
  rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*
  tar -C "$build/root" -czf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$build"
fi

work=$(mktemp -d)
root=$work/root
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$root"
tar -C "$root" -xzf "$base"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/tend.deb"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
fail() { echo "deb-chroot: FAIL: $*" >&2; exit 1; }

echo "== dpkg -i"
in_root dpkg -i /tmp/tend.deb
in_root tend --version
[ -L "$root/etc/systemd/system/multi-user.target.wants/tend.service" ] \
  || fail "the postinst did not enable tend.service"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
in_root dpkg-query -W -f='${Conffiles}\n' tend | grep -q '/etc/tend/agent.toml' \
  || fail "/etc/tend/agent.toml is not a conffile"

echo "== tend check (in the root)"
status=0
in_root tend check --format json >"$work/check.json" || status=$?
# 0 all pass, 1 some fail, 2 some could not be evaluated: all mean it ran.
[ "$status" -le 2 ] || fail "tend check exited with $status"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); n=len(d["checks"]); assert n > 0; print(f"{n} checks evaluated")' "$work/check.json"

echo "== systemd-analyze verify (in the root)"
in_root systemd-analyze verify /usr/lib/systemd/system/tend.service
echo "== the augeas lens and the package-manager marker"
[ -f "$root/usr/share/tend/lenses/tend_extra.aug" ] || fail "lens missing"
# No update URL is configured, so the check itself fails; what matters is
# that it first says the package manager owns this install.
update_check=$(in_root tend update check 2>&1 || true)
grep -q "managed by a package manager" <<<"$update_check" \
  || fail "tend update does not see the package: $update_check"
in_root man -w tend >/dev/null || fail "man tend finds no page"

echo "== installed footprint"
# shellcheck disable=SC2016 # a dpkg-query format
in_root dpkg-query -W -f='Installed-Size: ${Installed-Size} KiB\n' tend
in_root dpkg -L tend | while read -r f; do [ -f "$root$f" ] && echo "$root$f"; done \
  | xargs du -cb | tail -n 1 | awk '{print "files on disk: " $1 " bytes"}'

if [ -n "$tray_deb" ]; then
  echo "== the tray: dpkg -i, its libraries, its desktop entries"
  cp "$tray_deb" "$root/tmp/tend-tray.deb"
  in_root dpkg -i /tmp/tend-tray.deb
  in_root tend-tray --version
  in_root /usr/libexec/tend-tray/tend-tray-window --version
  for b in /usr/bin/tend-tray /usr/libexec/tend-tray/tend-tray-window; do
    if in_root ldd "$b" | grep 'not found'; then fail "$b links a library its package does not depend on"; fi
  done
  in_root sh -c 'ls /usr/lib/*/libayatana-appindicator3.so.1' >/dev/null || fail "the tray-icon library is not installed"
  in_root desktop-file-validate /usr/share/applications/tend-tray.desktop /etc/xdg/autostart/tend-tray.desktop
  grep -q '^x-scheme-handler/tend=tend-tray.desktop' "$root/usr/share/applications/mimeinfo.cache" \
    || fail "tend:// is not handled by tend-tray.desktop (update-desktop-database did not run?)"
  # shellcheck disable=SC2016 # a dpkg-query format
  in_root dpkg-query -W -f='${Conffiles}\n' tend-tray | grep -q '/etc/xdg/autostart/tend-tray.desktop' \
    || fail "the autostart entry is not a conffile"
  if in_root dpkg -r tend >/dev/null 2>&1; then fail "tend was removed from under tend-tray"; fi
  # shellcheck disable=SC2016 # a dpkg-query format
  in_root dpkg-query -W -f='tend-tray Installed-Size: ${Installed-Size} KiB\n' tend-tray
  in_root dpkg -P tend-tray
  for p in /usr/bin/tend-tray /usr/libexec/tend-tray /usr/share/applications/tend-tray.desktop \
           /etc/xdg/autostart/tend-tray.desktop /usr/share/icons/hicolor/128x128/apps/tend.png; do
    [ ! -e "$root$p" ] || fail "$p left after purging tend-tray"
  done
  if grep -q 'x-scheme-handler/tend=' "$root/usr/share/applications/mimeinfo.cache"; then
    fail "tend:// is still registered after purging tend-tray"
  fi
fi

echo "== dpkg -r keeps the conffile, dpkg -P removes everything"
in_root dpkg -r tend
[ ! -e "$root/usr/bin/tend" ] || fail "/usr/bin/tend left after remove"
[ -f "$root/etc/tend/agent.toml" ] || fail "the conffile went on remove"
mkdir -p "$root/var/lib/tend" && touch "$root/var/lib/tend/state.db"
in_root dpkg -P tend
for p in /etc/tend /var/lib/tend /usr/share/tend /usr/lib/systemd/system/tend.service \
         /etc/systemd/system/multi-user.target.wants/tend.service; do
  [ ! -e "$root$p" ] || fail "$p left after purge"
done
echo "deb-chroot: OK"
