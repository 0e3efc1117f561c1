#!/usr/bin/env bash
# Installs what the tests need, then runs every check and test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# Build output is cached outside the clone so a fresh clone (CI) reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tend/target}"
export CARGO_TERM_COLOR=never

# Tests that flip real files under /etc (ufw.conf, 50unattended-upgrades) and
# restore them run where that is safe: as root in CI, or when asked.
if [ "${CI:-}" = true ] && [ "$(id -u)" -eq 0 ]; then
  export TEND_TEST_MUTATE_HOST=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== a newer tend for the self-update test (tests/tests/self_update.rs)"
# The same source stamped with the next patch version, copied aside before
# the normal build below replaces it.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
next_version=$(echo "$version" | awk -F. '{ printf "%d.%d.%d", $1, $2, $3 + 1 }')
TEND_RELEASE_VERSION=$next_version cargo build --locked -p tend --bin tend
mkdir -p "$CARGO_TARGET_DIR/self-update"
# Without debug info: the test compresses, signs and serves it.
strip --strip-debug -o "$CARGO_TARGET_DIR/self-update/tend-$next_version" "$CARGO_TARGET_DIR/debug/tend"
export TEND_NEXT_BINARY="$CARGO_TARGET_DIR/self-update/tend-$next_version"
echo "== tend policy lint policies/default.json"
cargo build --locked -p tend
"$CARGO_TARGET_DIR/debug/tend" policy lint policies/default.json
echo "== augeas lens tests"
augparse -I agent/lenses agent/lenses/tests/test_tend_extra.aug
echo "== cargo test"
cargo test --locked --workspace --all-targets --exclude tend-tray

echo "== tray app: unit tests, then its window end to end (Xvfb, tauri-driver, WebKitWebDriver)"
cargo test --locked -p tend-tray --all-targets

echo "== Apple targets: type-check (cargo-zigbuild; zig compiles the bundled SQLite)"
# notify-rust's mac-notification-sys compiles Objective-C against Apple's Cocoa
# headers, which zig does not ship; DOCS_RS=1 makes its build script skip that
# (as on docs.rs). This step type-checks the Rust; it links nothing.
for target in aarch64-apple-darwin x86_64-apple-darwin; do
  DOCS_RS=1 cargo-zigbuild check --locked --target "$target" -p tend --all-targets
done

echo "== Windows: build tend.exe, run the Windows test suite under Wine"
export TEND_WINEPREFIX="${TEND_WINEPREFIX:-$HOME/.cache/tend/wine}"
trap 'WINEPREFIX="$TEND_WINEPREFIX" wineserver -k </dev/null >/dev/null 2>&1 || true' EXIT
cargo build --locked --target x86_64-pc-windows-gnu -p tend
cargo test --locked --target x86_64-pc-windows-gnu -p tend --lib --test windows_live --test windows_service

echo "== packages (installers/): built with cargo xtask dist, then installed for real"
dist="$CARGO_TARGET_DIR/dist"
cargo xtask dist deb --out "$dist"
installers/tests/deb-chroot.sh "$dist/tend_${version}-1_amd64.deb" "$dist/tend-tray_${version}-1_amd64.deb"
cargo xtask dist rpm --out "$dist"
installers/tests/rpm-check.sh "$dist/tend-${version}-1.x86_64.rpm" "$dist/tend-tray-${version}-1.x86_64.rpm"
cargo xtask dist msi --out "$dist"
installers/tests/msi-wine.sh "$dist/tend-${version}-x64.msi"
installers/tests/pkg-check.sh
ls -l "$dist"
