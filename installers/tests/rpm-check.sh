#!/usr/bin/env bash
# Checks a Tend .rpm: its metadata, files, config file, dependencies and
# scriptlets (shellcheck), then installs it into a throw-away root with rpm
# itself (scriptlets off: the root has no systemd or shell of its own) and
# removes it again. Prints the installed footprint.
#
# Usage: installers/tests/rpm-check.sh PATH/TO/tend-VERSION-1.x86_64.rpm
set -euo pipefail
rpmfile=$(realpath "${1:?usage: rpm-check.sh TEND.rpm}")
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
rpm --root "$root" -e --nodeps --noscripts tend
[ ! -e "$root/usr/bin/tend" ] || fail "tend left after rpm -e"
echo "rpm-check: OK"
