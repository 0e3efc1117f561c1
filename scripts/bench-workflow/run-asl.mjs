// aws-local-stepfunctions' side of scripts/bench-workflow.sh: the same
// measurement as Tend's `bench_asl run` (examples/bench_asl.rs).
//
// node run-asl.mjs FILE INPUT TRANSITIONS RUNS
//
// Builds the StateMachine from FILE (validated, as the library does by
// default), runs it RUNS times after one warm-up run, and prints one JSON
// line: the median run time and the transitions per second it makes.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';

const [file, inputFile, transitions, runs] = process.argv.slice(2);
if (!runs) {
  console.error('usage: node run-asl.mjs FILE INPUT TRANSITIONS RUNS');
  process.exit(2);
}
const definition = JSON.parse(readFileSync(file, 'utf8'));
const input = JSON.parse(readFileSync(inputFile, 'utf8'));
const machine = new StateMachine(definition);
const times = [];
for (let i = 0; i <= Number(runs); i++) {
  const started = process.hrtime.bigint();
  await machine.run(input).result;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  // Run 0 warms up.
  if (i > 0) times.push(elapsed);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({
  engine: 'aws-local-stepfunctions',
  file: basename(file),
  runs: Number(runs),
  median_ms: median * 1e3,
  transitions_per_s: Number(transitions) / median,
}));
