#!/usr/bin/env bash
# Installs the Tend .msi under Wine as an MDM would, checks what it did, and
# uninstalls it: the files in Program Files, the service `tend` registered
# (and its state), the public properties written to
# HKLM\SOFTWARE\Policies\Tend and read back by `tend config show`, the tray
# app started at login (the HKLM Run key) and registered for tend:// links,
# and running (under Xvfb) it reaches the service and takes a second start's
# link; after `msiexec /x`, nothing of it left. Uses Tend's Wine prefix (tests/wine/).
#
# Usage: installers/tests/msi-wine.sh PATH/TO/tend-VERSION-x64.msi
set -euo pipefail
msi=$(realpath "${1:?usage: msi-wine.sh TEND.msi}")
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=${TEND_WINEPREFIX:-$HOME/.cache/tend/wine}
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
w() { timeout 300 wine "$@" </dev/null 2>/dev/null | tr -d '\r'; }
# A desktop for the whole Wine session, as at a Windows login: the tray
# icon needs one. A wineserver left without it (an earlier test) is ended
# first, so this session's desktop gets the display.
wineserver -k 2>/dev/null || true
for n in $(seq 150 199); do
  [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { display=":$n"; break; }
done
Xvfb "$display" -screen 0 1024x768x24 -nolisten tcp 2>/dev/null &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
export DISPLAY=$display
"$here/../../tests/wine/setup.sh" "$WINEPREFIX"
fail() { echo "msi-wine: FAIL: $*" >&2; exit 1; }
key='HKLM\SOFTWARE\Policies\Tend'
exe="$WINEPREFIX/drive_c/Program Files/Tend/tend.exe"
url=https://policy.example.com/tend/policy.json
log=$(mktemp)
keys=$(mktemp -d)
trap 'kill "$xvfb_pid" 2>/dev/null || true; rm -rf "$log" "$keys"' EXIT
# A real public key: the service refuses to start with one that is not.
minisign -G -W -p "$keys/tend.pub" -s "$keys/tend.key" >/dev/null
pub=$(tail -n 1 "$keys/tend.pub")

# A leftover from an interrupted run would turn the install into a repair.
w msiexec /x "$(winepath -w "$msi")" /qn >/dev/null || true

echo "== msiexec /i /qn POLICY_URL=... PUBLIC_KEY=... OWNER_EMAIL=..."
timeout 300 wine msiexec /i "$(winepath -w "$msi")" /qn /l*v "$(winepath -w "$log")" \
  POLICY_URL="$url" PUBLIC_KEY="$pub" OWNER_EMAIL=ada@example.com </dev/null \
  || { tr -d '\r\0' <"$log" | tail -n 40 >&2; fail "msiexec /i failed"; }
[ -f "$exe" ] || fail "tend.exe is not in Program Files"
[ -f "$(dirname "$exe")/packaged-by" ] || fail "packaged-by is not beside tend.exe"

echo "== the tray: started at login, the handler of tend:// links"
tray="$(dirname "$exe")/tend-tray.exe"
run_key='HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run'
[ -f "$tray" ] || fail "tend-tray.exe is not in Program Files"
# Both programs start (their DLLs, WebView2's loader included, are found);
# the window needs the WebView2 runtime, which Wine does not have.
timeout 120 wine "$tray" --version </dev/null 2>/dev/null | tr -d '\r' | grep -qx "tend-tray [0-9.]*" \
  || fail "tend-tray.exe --version does not run"
window="$(dirname "$exe")/tend-tray-window.exe"
timeout 120 wine "$window" --version </dev/null 2>/dev/null | tr -d '\r' | grep -qx "tend-tray-window [0-9.]*" \
  || fail "tend-tray-window.exe --version does not run"
w reg query "$run_key" /v Tend | grep -qi 'Program Files\\Tend\\tend-tray.exe' || fail "no Run entry for tend-tray.exe"
w reg query 'HKLM\SOFTWARE\Classes\tend' /v 'URL Protocol' | grep -q 'URL Protocol' || fail "tend: is not a URL protocol"
w reg query 'HKLM\SOFTWARE\Classes\tend\shell\open\command' | grep -qi 'tend-tray.exe" "%1"' \
  || fail "tend:// links do not open tend-tray.exe"

echo "== the registry policy values"
values=$(w reg query "$key")
echo "$values"
grep -q "$url" <<<"$values" || fail "policy_url not written"
w reg query "$key" /v trusted_keys | grep -q "$pub" || fail "trusted_keys not written"
w reg query "$key\\asset" /v owner_email | grep -q ada@example.com || fail "asset\\owner_email not written"
echo "== tend config show reads them"
shown=$(w "$exe" config show)
echo "$shown"
grep -q "$url" <<<"$shown" || fail "tend config show does not see policy_url"

echo "== the service"
# Wine's `sc qc` prints nothing: the service's registry key says the same.
image=$(w reg query 'HKLM\SYSTEM\CurrentControlSet\Services\tend' /v ImagePath)
echo "$image"
grep -q 'tend.exe.* run --service' <<<"$image" || fail "the service tend is not registered with run --service"
state=$(w sc query tend | awk '/STATE/ {print $4}')
echo "service state: ${state:-unknown}"
if [ "$state" != RUNNING ]; then
  fail "the service is not running"
fi
echo "== the tray icon: it reaches the service, and a second start hands its link over"
# Windows gives each session one icon (a session mutex; the link travels
# over a per-session pipe).
tray_log=$(mktemp)
TEND_LOG=info timeout 600 wine "$tray" </dev/null >/dev/null 2>"$tray_log" &
tray_pid=$!
stop_tray() { kill "$tray_pid" 2>/dev/null || true; wait "$tray_pid" 2>/dev/null || true; }
trap 'stop_tray; kill "$xvfb_pid" 2>/dev/null || true; rm -rf "$log" "$keys" "$tray_log"' EXIT
tray_said() {
  for _ in $(seq 600); do grep -q "$1" "$tray_log" && return 0; sleep 0.2; done
  fail "$2; its log ends: $(tr -d '\r' <"$tray_log" | tail -n 5)"
}
tray_said "connected to the Tend service" "tend-tray.exe did not connect to the service"
timeout 60 wine "$tray" "tend://recheck/firewall" </dev/null >/dev/null 2>&1 \
  || fail "a second tend-tray.exe did not hand its link to the first"
# The service has no policy here (its URL is not served): its answer about
# the firewall check is what shows the link reached it.
tray_said 'recheck asked of the service\|no check "firewall"' "the link's re-check did not reach the service"
if grep -q "ERROR" "$tray_log"; then fail "tend-tray.exe: $(grep ERROR "$tray_log" | tr -d '\r')"; fi
stop_tray
echo "tend-tray.exe: connected, made its icon, and took a second start's tend://recheck/firewall"

echo "== tend update refuses (the MSI owns this install)"
# (Not through w(), which drops Wine's stderr, where tend's error goes.)
refusal=$(timeout 300 wine "$exe" update apply </dev/null 2>&1 | tr -d '\r' || true)
grep -q "managed by a package manager" <<<"$refusal" || fail "tend update apply did not refuse: $refusal"

echo "== footprint"
du -sb "$(dirname "$exe")" | awk '{print "Program Files\\Tend: " $1 " bytes"}'

echo "== msiexec /x"
timeout 300 wine msiexec /x "$(winepath -w "$msi")" /qn </dev/null || fail "msiexec /x failed"
[ ! -e "$exe" ] || fail "tend.exe left after uninstall"
if w sc query tend | grep -q STATE; then fail "the service is still registered"; fi
if w reg query "$key" /v policy_url | grep -q policy_url; then fail "policy_url left in the registry"; fi
[ ! -e "$tray" ] || fail "tend-tray.exe left after uninstall"
[ ! -e "$window" ] || fail "tend-tray-window.exe left after uninstall"
[ ! -e "$(dirname "$tray")/WebView2Loader.dll" ] || fail "WebView2Loader.dll left after uninstall"
if w reg query "$run_key" /v Tend | grep -q Tend; then fail "the Run entry is left"; fi
if w reg query 'HKLM\SOFTWARE\Classes\tend' | grep -q 'URL'; then fail "the tend: protocol is left"; fi
echo "msi-wine: OK"
