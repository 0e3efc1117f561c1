#!/usr/bin/env bash
# Installs what building and testing Tend needs on Debian/Ubuntu. Idempotent.
# Usage: scripts/deps.sh [run|tray|test]
set -euo pipefail
what=${1:-run}

# Run-time libraries the agent loads when present: libaugeas (the `augeas`
# table, with Debian's lenses) and libmagic (the `magic` table).
packages=(gcc pkg-config libaugeas0 augeas-lenses libmagic1)
if [ "$what" = tray ] || [ "$what" = test ]; then
  # Building the tray app (Tauri 2 on WebKitGTK, the tray icon over
  # libayatana-appindicator).
  packages+=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev)
fi
if [ "$what" = test ]; then
  # The tray app's end-to-end tests: WebKitWebDriver under Xvfb, a private
  # D-Bus session bus; xdotool closes its window in scripts/measure-tray.sh.
  packages+=(webkit2gtk-driver xvfb dbus dbus-x11 xdotool)
  # The tray's notification drawn on that display (dunst) and photographed
  # for the README (ImageMagick's import and identify).
  packages+=(dunst imagemagick)
  # Live-machine table tests read these tools' output.
  packages+=(iptables dmsetup file hyperfine augeas-tools)
  # The stock minisign tool signs a policy as an admin would (policy_fetch test).
  packages+=(minisign)
  # A private D-Bus session bus for the notification tests (tests/src/dbus.rs).
  packages+=(dbus-daemon)
  # libfaketime: the workflow crash test restarts the daemon with its wall
  # clock a day ahead, so a 24 h WAIT ends without a hook in the product.
  packages+=(faketime)
  # The Windows build (mingw) and its tests (Wine); pip for zig (Apple type-checks).
  packages+=(gcc-mingw-w64-x86-64 wine wine64 python3-pip)
  # Packages (installers/): lintian checks the .deb, debootstrap makes the
  # throw-away root it is installed into, systemd verifies the unit, rpm
  # reads the .rpm back, wixl (msitools) builds the .msi, shellcheck checks
  # the installer scripts.
  packages+=(lintian debootstrap systemd rpm wixl msitools shellcheck)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup first" >&2
  exit 1
fi
if [ "$what" = test ]; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
  rustup target add x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin >/dev/null
  # zig compiles the C parts (bundled SQLite) for the Apple targets.
  if ! python3 -c 'import ziglang' >/dev/null 2>&1; then
    python3 -m pip install --quiet ziglang==0.17.1 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages ziglang==0.17.1
  fi
  command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked --quiet cargo-zigbuild@0.24.1
  # cargo xtask dist deb|rpm runs these.
  command -v cargo-deb >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb@3.8.0
  command -v cargo-generate-rpm >/dev/null 2>&1 || cargo install --locked --quiet cargo-generate-rpm@0.21.1
  # tauri-driver: the WebDriver front for the tray app's tests.
  command -v tauri-driver >/dev/null 2>&1 || cargo install --locked --quiet tauri-driver@2.1.0
fi
