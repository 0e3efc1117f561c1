#!/usr/bin/env bash
# Checks what of the macOS .pkg can be checked off a Mac: every property
# list and the example configuration profile parse (python3 plistlib, as
# launchd and MDM read them), the Distribution file is well-formed and names
# the component package, the scripts pass shellcheck, and the payload that
# build-pkg.sh lays out holds every program the LaunchDaemon and
# LaunchAgent start, at the paths they name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mac=$here/../macos
fail() { echo "pkg-check: FAIL: $*" >&2; exit 1; }

shellcheck "$mac/build-pkg.sh" "$mac/scripts/preinstall" "$mac/scripts/postinstall"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Any executable stands in for the binaries: only the layout is checked.
printf '#!/bin/sh\n' >"$work/stand-in"
chmod 755 "$work/stand-in"
mkdir "$work/tray"
cp "$work/stand-in" "$work/tray/tend-tray"
cp "$work/stand-in" "$work/tray/tend-tray-window"
"$mac/build-pkg.sh" --binary "$work/stand-in" --tray "$work/tray/tend-tray" --stage "$work/root"
# The icon finds the window in ../libexec/tend-tray/.
[ -x "$work/root/usr/local/libexec/tend-tray/tend-tray-window" ] \
  || { echo "pkg-check: the tray's window is not in usr/local/libexec/tend-tray" >&2; exit 1; }

python3 - "$mac" "$work/root" <<'PY'
import plistlib, sys, xml.etree.ElementTree as ET
from pathlib import Path
mac, root = Path(sys.argv[1]), Path(sys.argv[2])
for name in ["com.tend.agent.plist", "com.tend.tray.plist", "tend.mobileconfig"]:
    with open(mac / name, "rb") as f:
        plistlib.load(f)
    print(f"{name}: parses")
jobs = {"Library/LaunchDaemons/com.tend.agent.plist": "com.tend.agent",
        "Library/LaunchAgents/com.tend.tray.plist": "com.tend.tray"}
for rel, label in jobs.items():
    with open(root / rel, "rb") as f:
        job = plistlib.load(f)
    assert job["Label"] == label, (rel, job["Label"])
    program = Path(job["ProgramArguments"][0])
    staged = root / program.relative_to("/")
    assert staged.is_file(), f"{rel} starts {program}, which the payload lacks"
    print(f"{rel}: {label} starts {program} (in the payload)")
assert (root / "usr/local/share/tend/packaged-by").is_file()
profile = plistlib.load(open(mac / "tend.mobileconfig", "rb"))
settings = profile["PayloadContent"][0]
assert settings["PayloadType"] == "com.tend.agent", settings["PayloadType"]
assert "policy_url" in settings and isinstance(settings["trusted_keys"], list)
dist = ET.parse(mac / "Distribution.xml").getroot()
refs = [r.text for r in dist.iter("pkg-ref") if r.text]
assert refs == ["tend-component.pkg"], refs
print("Distribution.xml: names tend-component.pkg")
PY
echo "pkg-check: OK"
