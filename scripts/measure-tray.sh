#!/usr/bin/env bash
# Measures the tray app on a release build (Linux), on a private desktop
# (Xvfb, a D-Bus session bus with no service files) against `tend run` on
# the recorded compliant Linux laptop with its firewall turned off:
#   - PSS (proportional set size, /proc/PID/smaps_rollup) of tend-tray and
#     every process under it (WebKit's web and network processes), idle with
#     the window closed, with it open, and after it is closed again;
#   - CPU time (user + system, /proc/PID/stat, all of them) over
#     IDLE_SECONDS (default 30) while idle, window closed.
# The window is opened the way a user would: starting tend-tray again (the
# single instance opens the first one's window); it is closed with Escape
# (xdotool). Needs Xvfb, dbus-daemon, xdotool (scripts/deps.sh test).
#
#   scripts/measure-tray.sh            # IDLE_SECONDS=30 PROFILE=release
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tend/target}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"

PROFILE="${PROFILE:-release}"   # PROFILE=dev for a quick trial
cargo build --profile "$PROFILE" -p tend -p tend-tray >&2
dir="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
tend="$dir/tend"
tray="$dir/tend-tray"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

cp -r tests/fixtures/machines/linux-compliant "$tmp/machine"
printf 'ENABLED=no\n' >"$tmp/machine/root/etc/ufw/ufw.conf"
printf 'state_dir = "%s/state"\n' "$tmp" >"$tmp/agent.toml"
chmod 644 "$tmp/agent.toml"
TEND_LOG=warn "$tend" run --config "$tmp/agent.toml" --policy policies/default.json \
  --snapshot "$tmp/machine" --socket "$tmp/tend.sock" 2>"$tmp/daemon.log" &
pids+=($!)

display=""
for n in $(seq 95 140); do
  [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] && continue
  Xvfb ":$n" -screen 0 1280x1000x24 -nolisten tcp 2>"$tmp/xvfb.log" &
  pids+=($!)
  display=":$n"
  break
done
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
cat >"$tmp/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=$tmp</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
BUS
dbus-daemon --config-file="$tmp/bus.conf" --nofork --print-address=1 >"$tmp/bus.addr" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/bus.addr" ] && break; sleep 0.1; done

export DISPLAY="$display" DBUS_SESSION_BUS_ADDRESS="$(head -1 "$tmp/bus.addr")"
export HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/home" NO_AT_BRIDGE=1 GTK_A11Y=none TEND_SOCKET="$tmp/tend.sock"
mkdir -p "$HOME"; chmod 700 "$HOME"
# A panel would show the icon; without one the window opens by itself for
# a failing check. This measures the icon alone first: Escape closes the
# window if it opened.
TEND_LOG=warn "$tray" 2>"$tmp/tray.log" &
tray_pid=$!
pids+=("$tray_pid")

# tend-tray and its descendants.
tree() {
  local all=("$1") kids
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
  for k in $kids; do all+=($(tree "$k")); done
  echo "${all[@]}"
}
pss_kib() {
  local total=0 p v
  for p in $(tree "$tray_pid"); do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
cpu_ticks() {
  local total=0 p
  for p in $(tree "$tray_pid"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# Each process: its name, PSS and the anonymous part of it, in MiB.
describe() {
  local p parts=()
  for p in $(tree "$tray_pid"); do
    parts+=("$(cat "/proc/$p/comm" 2>/dev/null) $(awk '/^Pss:/ {t=$2} /^Pss_Anon:/ {a=$2} END {printf "%d (anon %d)", t/1024, a/1024}' "/proc/$p/smaps_rollup" 2>/dev/null)")
  done
  local IFS=,
  echo "${parts[*]}"
}
close_window() {
  local w
  for w in $(xdotool search --name '^Tend' 2>/dev/null || true); do
    xdotool windowfocus --sync "$w" key Escape 2>/dev/null && break
  done
}

sleep 5
close_window
sleep 5
ticks0=$(cpu_ticks)
sleep "$IDLE_SECONDS"
ticks1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
echo "tray alone (window closed): PSS $(( $(pss_kib) / 1024 )) MiB  [$(describe)]"
echo "idle CPU over ${IDLE_SECONDS}s: $(( (ticks1 - ticks0) * 1000 / hz )) ms"

TEND_LOG=warn "$tray" 2>>"$tmp/tray.log"   # the second start opens the window
sleep 8
echo "window open: PSS $(( $(pss_kib) / 1024 )) MiB  [$(describe)]"
close_window
sleep 8
echo "window closed again: PSS $(( $(pss_kib) / 1024 )) MiB  [$(describe)]"
