#!/usr/bin/env bash
# Builds Tend's macOS installer on a Mac (pkgbuild and productbuild are
# Apple's; Debian has no xar or bom tools). `cargo xtask dist pkg` runs it.
#
#   installers/macos/build-pkg.sh --binary tend --version 0.1.0 --out tend-0.1.0.pkg [--tray tend-tray]
#   (--tray: the icon; tend-tray-window must be beside it)
#   installers/macos/build-pkg.sh --binary tend --stage DIR    # only lay out the payload (any OS)
#
# The binary should be universal: `lipo -create -output tend
# target/aarch64-apple-darwin/release/tend target/x86_64-apple-darwin/release/tend`.
#
# Signing and notarization, when these are set (a Developer ID team):
#   DEVELOPER_ID_APP="Developer ID Application: Example Ltd (TEAMID)"
#   DEVELOPER_ID_INSTALLER="Developer ID Installer: Example Ltd (TEAMID)"
#   NOTARY_PROFILE=tend   # made once: xcrun notarytool store-credentials tend --apple-id ... --team-id ...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary="" version="" out="" tray="" stage=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tray) tray=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    *) echo "build-pkg: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$binary" ] || { echo "build-pkg: --binary is required" >&2; exit 2; }

# The payload, laid out as it lands on disk (install location /).
lay_out() {
  local root=$1
  install -d -m 0755 "$root/usr/local/bin" "$root/usr/local/share/tend" "$root/Library/LaunchDaemons"
  install -m 0755 "$binary" "$root/usr/local/bin/tend"
  install -m 0644 "$here/packaged-by" "$root/usr/local/share/tend/packaged-by"
  install -m 0644 "$here/com.tend.agent.plist" "$root/Library/LaunchDaemons/com.tend.agent.plist"
  if [ -n "$tray" ]; then
    install -d -m 0755 "$root/Library/LaunchAgents"
    install -m 0755 "$tray" "$root/usr/local/bin/tend-tray"
    # The window, which the icon finds in ../libexec/tend-tray/.
    install -d -m 0755 "$root/usr/local/libexec/tend-tray"
    install -m 0755 "$(dirname "$tray")/tend-tray-window" "$root/usr/local/libexec/tend-tray/tend-tray-window"
    install -m 0644 "$here/com.tend.tray.plist" "$root/Library/LaunchAgents/com.tend.tray.plist"
  fi
}

if [ -n "$stage" ]; then
  lay_out "$stage"
  exit 0
fi

if [ -z "$version" ] || [ -z "$out" ]; then
  echo "build-pkg: --version and --out are required" >&2
  exit 2
fi
if ! command -v pkgbuild >/dev/null || ! command -v productbuild >/dev/null; then
  echo "build-pkg: pkgbuild/productbuild not found: build the .pkg on a Mac (use --stage DIR elsewhere)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lay_out "$work/root"

if [ -n "${DEVELOPER_ID_APP:-}" ]; then
  # The hardened runtime and a secure timestamp are what notarization requires.
  for b in "$work/root/usr/local/bin/"*; do
    codesign --force --options runtime --timestamp --sign "$DEVELOPER_ID_APP" "$b"
  done
fi

pkgbuild --root "$work/root" --scripts "$here/scripts" --identifier com.tend.agent \
  --version "$version" --install-location / "$work/tend-component.pkg"
sed "s/VERSION/$version/" "$here/Distribution.xml" >"$work/Distribution.xml"
sign=()
[ -z "${DEVELOPER_ID_INSTALLER:-}" ] || sign=(--sign "$DEVELOPER_ID_INSTALLER")
productbuild --distribution "$work/Distribution.xml" --package-path "$work" "${sign[@]}" "$out"

if [ -n "${NOTARY_PROFILE:-}" ]; then
  xcrun notarytool submit "$out" --keychain-profile "$NOTARY_PROFILE" --wait
  xcrun stapler staple "$out"
fi
pkgutil --check-signature "$out" || true
echo "$out"
