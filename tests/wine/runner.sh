#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu: runs a Windows executable under
# Wine in Tend's test prefix, detached from stdin, with a time limit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=${TEND_WINEPREFIX:-$HOME/.cache/tend/wine}
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
"$here/setup.sh" "$WINEPREFIX"
timeout "${TEND_WINE_TIMEOUT:-900}" wine "$@" </dev/null
