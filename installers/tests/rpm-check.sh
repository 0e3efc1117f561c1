#!/usr/bin/env bash
# Checks a Tend .rpm: its metadata, files, config file, dependencies and
# scriptlets (shellcheck), then installs it into a throw-away root with rpm
# itself (scriptlets off: the root has no systemd or shell of its own) and
# removes it again. With the tray's package too: its files, that it needs the
# agent of its version and the libraries it links, and that it installs
# beside the agent and comes off again. Prints the installed footprints.
#
# Usage: installers/tests/rpm-check.sh PATH/TO/tend-VERSION-1.x86_64.rpm [PATH/TO/tend-tray-VERSION-1.x86_64.rpm]
set -euo pipefail
rpmfile=$(realpath "${1:?usage: rpm-check.sh TEND.rpm [TEND-TRAY.rpm]}")
tray_rpm=${2:+$(realpath "$2")}
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "rpm-check: FAIL: $*" >&2; exit 1; }

rpm -qip "$rpmfile"
files=$(rpm -qlp "$rpmfile")
for f in /usr/bin/tend /usr/lib/systemd/system/tend.service /etc/tend/agent.toml \
         /usr/share/tend/lenses/tend_extra.aug /usr/share/tend/packaged-by /usr/share/man/man1/tend.1.gz; do
  grep -qx "$f" <<<"$files" || fail "$f is not in the package"
done
[ "$(rpm -qcp "$rpmfile")" = /etc/tend/agent.toml ] || fail "/etc/tend/agent.toml is not the one config file"
rpm -qpR "$rpmfile" | grep -q '^/usr/bin/systemctl' || fail "no dependency on systemctl"
for s in post_install pre_uninstall post_uninstall; do
  shellcheck -s sh "$here/../rpm/$s.sh"
done
rpm -qp --scripts "$rpmfile" | grep -q 'systemctl enable --now tend.service' || fail "%post does not enable the service"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rpm --root "$root" --initdb
rpm --root "$root" -i --nodeps --noscripts --excludedocs "$rpmfile"
[ -x "$root/usr/bin/tend" ] || fail "tend was not installed"
"$root/usr/bin/tend" --version
du -sb "$root/usr" "$root/etc" | awk '{ total += $1 } END { print "installed footprint: " total " bytes" }'
if [ -n "$tray_rpm" ]; then
  echo "== the tray"
  tray_files=$(rpm -qlp "$tray_rpm")
  for f in /usr/bin/tend-tray /usr/libexec/tend-tray/tend-tray-window /usr/share/applications/tend-tray.desktop \
           /etc/xdg/autostart/tend-tray.desktop /usr/share/icons/hicolor/128x128/apps/tend.png; do
    grep -qx "$f" <<<"$tray_files" || fail "$f is not in the tray's package"
  done
  requires=$(rpm -qpR "$tray_rpm")
  version=$(rpm -qp --qf '%{VERSION}' "$rpmfile")
  grep -qx "tend = $version" <<<"$requires" || fail "tend-tray does not require tend = $version"
  for lib in libwebkit2gtk-4.1.so.0 libgtk-3.so.0 libayatana-appindicator3.so.1; do
    grep -q "^$lib" <<<"$requires" || fail "tend-tray does not require $lib"
  done
  rpm --root "$root" -i --noscripts --nodeps "$tray_rpm"
  "$root/usr/bin/tend-tray" --version
  "$root/usr/libexec/tend-tray/tend-tray-window" --version
  rpm --root "$root" -q --whatrequires tend | grep -q '^tend-tray' || fail "rpm does not see tend-tray needing tend"
  du -cb "$root/usr/bin/tend-tray" "$root/usr/libexec/tend-tray/tend-tray-window" | tail -n 1 \
    | awk '{print "tend-tray binaries: " $1 " bytes"}'
  rpm --root "$root" -e --noscripts tend-tray
  [ ! -e "$root/usr/bin/tend-tray" ] || fail "tend-tray left after rpm -e"
fi
rpm --root "$root" -e --nodeps --noscripts tend
[ ! -e "$root/usr/bin/tend" ] || fail "tend left after rpm -e"
echo "rpm-check: OK"
