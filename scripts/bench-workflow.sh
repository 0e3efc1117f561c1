#!/usr/bin/env bash
# Transitions per second in memory, Tend's workflow engine against
# aws-local-stepfunctions, on the same ASL files: a chain of 10,000 Pass
# states and a Choice + Pass loop of 100,000 iterations.
#
# Usage: scripts/bench-workflow.sh [RUNS]
#
# Installs Node 22 (npm's `node` package; aws-local-stepfunctions needs
# Node >= 22) and aws-local-stepfunctions into $HOME/.cache/tend, writes the
# definitions with Tend's generator (examples/bench_asl.rs `gen`, the same
# code as the divan bench), then for each definition:
#   - in-process: each engine reads the file once and times RUNS runs after a
#     warm-up (the median is reported), Tend with and without history;
#   - whole process (hyperfine): start-up, reading and validating the file and
#     two runs (the warm-up and one timed), for each engine.
# Needs npm (any version) and, for the whole-process timing, hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cache="$HOME/.cache/tend"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
node_version=22.23.3
asl_version=3.0.0

command -v npm >/dev/null 2>&1 || { echo "npm is needed to install Node 22" >&2; exit 1; }
if [ ! -x "$cache/node/node_modules/.bin/node" ]; then
  mkdir -p "$cache/node"
  (cd "$cache/node" && npm install --silent --no-audit --no-fund --prefix . "node@$node_version")
fi
node="$cache/node/node_modules/.bin/node"
asl="$cache/asl"
if [ ! -d "$asl/node_modules/aws-local-stepfunctions" ]; then
  mkdir -p "$asl"
  (cd "$asl" && npm install --silent --no-audit --no-fund --prefix . "aws-local-stepfunctions@$asl_version")
fi
# ES modules resolve packages next to the script: run it from the install.
cp scripts/bench-workflow/run-asl.mjs "$asl/run-asl.mjs"

cargo build --locked --release -q -p tend-workflow --example bench_asl
tend="$CARGO_TARGET_DIR/release/examples/bench_asl"
defs=$(mktemp -d)
trap 'rm -rf "$defs"' EXIT
"$tend" gen "$defs" > "$defs/list"
echo "node $("$node" --version), aws-local-stepfunctions $asl_version; $(nproc) CPUs"

while read -r name transitions; do
  file="$defs/$name.asl.json"
  input="$defs/$name.input.json"
  echo
  echo "== $name ($transitions transitions a run; $(wc -c < "$file") bytes of ASL)"
  t=$("$tend" run "$file" "$input" "$transitions" "$runs")
  th=$("$tend" run "$file" "$input" "$transitions" "$runs" --no-history)
  a=$("$node" "$asl/run-asl.mjs" "$file" "$input" "$transitions" "$runs")
  echo "tend (history):          $t"
  echo "tend (no history):       $th"
  echo "aws-local-stepfunctions: $a"
  python3 - "$t" "$th" "$a" <<'PY'
import json, sys
t, th, a = (json.loads(x) for x in sys.argv[1:])
print(f"transitions/s: tend {t['transitions_per_s']:,.0f} (no history {th['transitions_per_s']:,.0f}), "
      f"aws-local-stepfunctions {a['transitions_per_s']:,.0f}; "
      f"ratio {t['transitions_per_s'] / a['transitions_per_s']:.1f}x "
      f"(no history {th['transitions_per_s'] / a['transitions_per_s']:.1f}x)")
PY
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 1 --runs "$runs" -N \
      -n tend "$tend run $file $input $transitions 1" \
      -n aws-local-stepfunctions "$node $asl/run-asl.mjs $file $input $transitions 1"
  fi
done < "$defs/list"
