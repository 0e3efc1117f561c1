#!/usr/bin/env bash
# Measures the idle footprint of `tend run` on a release build (Linux):
#   - resident memory (VmRSS, and the peak VmHWM) once start-up is over and
#     the daemon is idle, and right after evaluation cycles,
#   - wake-ups while idle between checks: context switches of every thread
#     of the daemon over IDLE_SECONDS (default 60), from /proc/PID/task/*/status,
#   - CPU time (user + system, /proc/PID/stat) of one full evaluation cycle,
#     averaged over CYCLES re-checks of every check through the local API.
# It runs the built-in policy against the recorded compliant Linux laptop
# (tests/fixtures/machines/linux-compliant) with a JSON-lines sink; set
# MACHINE=live to evaluate this machine instead.
#
#   scripts/measure-daemon.sh            # IDLE_SECONDS=60 CYCLES=20
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tend/target}"
IDLE_SECONDS="${IDLE_SECONDS:-60}"
CYCLES="${CYCLES:-20}"

cargo build --release -p tend >&2
bin="$CARGO_TARGET_DIR/release/tend"

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cp -r tests/fixtures/machines/linux-compliant "$tmp/machine"
cat >"$tmp/agent.toml" <<EOF
state_dir = "$tmp/state"

[[sinks]]
type = "file"
path = "$tmp/events.jsonl"
EOF
chmod 644 "$tmp/agent.toml"
target=(--snapshot "$tmp/machine")
if [ "${MACHINE:-}" = live ]; then target=(); fi

sock="$tmp/tend.sock"
TEND_LOG=warn "$bin" run --config "$tmp/agent.toml" "${target[@]}" --socket "$sock" 2>"$tmp/daemon.log" &
pid=$!

# Ready when every check has a result.
for _ in $(seq 1 300); do
  out="$("$bin" status --format json --socket "$sock" 2>/dev/null || true)"
  if [ "$(printf '%s' "$out" | sed -n 's/.*"pending": \([0-9]*\).*/\1/p')" = 0 ]; then
    break
  fi
  sleep 0.1
done
kill -0 "$pid" || { cat "$tmp/daemon.log"; exit 1; }
# Let start-up's blocking threads retire (their keep-alive is 2 s) and the
# daemon trim its memory (2 s after the last evaluation).
sleep 4

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
switches() {
  local total=0 f v
  for f in /proc/"$pid"/task/*/status; do
    for v in $(awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { print $2 }' "$f" 2>/dev/null); do
      total=$((total + v))
    done
  done
  echo "$total"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
threads() { ls "/proc/$pid/task" | wc -l; }

rss_kb="$(field VmRSS)"
hwm_kb="$(field VmHWM)"
threads_idle="$(threads)"
s0="$(switches)"
sleep "$IDLE_SECONDS"
s1="$(switches)"
threads_after="$(threads)"

hz="$(getconf CLK_TCK)"
c0="$(cpu_ticks)"
t0="$(date +%s%N)"
for _ in $(seq 1 "$CYCLES"); do
  "$bin" recheck --format json --socket "$sock" >/dev/null || true
done
t1="$(date +%s%N)"
c1="$(cpu_ticks)"
rss_busy_kb="$(field VmRSS)"
sleep 4
rss_again_kb="$(field VmRSS)"
# (`tend status` exits 1 when a check fails, as on this live machine.)
checks="$("$bin" status --format json --socket "$sock" | grep -c '"severity"' || true)"

cpu_ms=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v n="$CYCLES" 'BEGIN { printf "%.1f", (b - a) * 1000 / hz / n }')
wall_ms=$(awk -v a="$t0" -v b="$t1" -v n="$CYCLES" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n }')

echo "tend run (release), built-in policy, $checks checks, ${MACHINE:-recorded linux-compliant} machine"
echo "  binary size:                      $(( $(stat -c %s "$bin") / 1024 )) KiB"
echo "  idle RSS after start-up:          $((rss_kb / 1024)).$(( (rss_kb % 1024) * 10 / 1024 )) MiB (VmRSS $rss_kb kB; peak VmHWM $hwm_kb kB)"
mib() { echo "$(($1 / 1024)).$(( ($1 % 1024) * 10 / 1024 )) MiB"; }
echo "  RSS right after $CYCLES cycles:     $(mib "$rss_busy_kb") (before the idle trim); idle again: $(mib "$rss_again_kb")"
echo "  threads while idle:               $threads_idle (after the idle period: $threads_after)"
echo "  context switches in ${IDLE_SECONDS}s idle:   $((s1 - s0)) (all threads, voluntary + nonvoluntary)"
echo "  one full evaluation cycle:        ${cpu_ms} ms CPU (user+system), ${wall_ms} ms wall per re-check of every check, mean of $CYCLES"
