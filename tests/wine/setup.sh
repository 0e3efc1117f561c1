#!/usr/bin/env bash
# Prepares a Wine prefix for running Tend's Windows build: builds the
# bcryptprimitives.dll stand-in (see bcryptprimitives.c), boots the prefix
# once, and installs the DLL into its system32.
#
# Usage: tests/wine/setup.sh PREFIX
set -euo pipefail
prefix=${1:?usage: setup.sh PREFIX}
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir -p "$prefix"
# A persistent wineserver started with its output detached: one started later
# by a test would inherit the test runner's pipes and keep them open after the
# run. The test command stops it at the end (`wineserver -k`).
wineserver -p </dev/null >/dev/null 2>&1 || true
if [ ! -f "$prefix/system.reg" ]; then
  # Boot detached from our pipes: a wineserver holding them would hang the caller.
  timeout 300 wineboot --init </dev/null >/dev/null 2>&1 || true
  timeout 60 wineserver -w </dev/null >/dev/null 2>&1 || true
fi
dll="$prefix/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$prefix/bcryptprimitives.dll" "$here/bcryptprimitives.c" -ladvapi32
  cp "$prefix/bcryptprimitives.dll" "$dll"
fi
