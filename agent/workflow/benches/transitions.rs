//! Transitions per second, in memory (no journal), with and without history:
//! - a chain of 10,000 Pass states;
//! - a Choice + Pass loop of 100,000 iterations (200,002 states entered).
//!
//! `cargo bench -p tend-workflow --bench transitions`
//!
//! `scripts/bench-workflow.sh` runs the same definitions side by side with
//! aws-local-stepfunctions.

use std::sync::Arc;

use serde_json::Value;
use tend_workflow::{Engine, Registry, Status, VirtualClock, Workflow};

mod definitions;
use definitions::{CHAIN_STATES, Definition, LOOP_ITERATIONS, choice_loop, pass_chain};

fn main() {
    divan::main();
}

fn workflow(d: &Definition) -> Arc<Workflow> {
    Arc::new(Workflow::from_value(&d.document, None).expect("a valid benchmark definition"))
}

fn run(engine: &Engine, rt: &tokio::runtime::Runtime, wf: &Arc<Workflow>, input: &Value) {
    let out = rt.block_on(engine.run(wf.clone(), input.clone()));
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench(bencher: divan::Bencher, d: Definition, history: bool) {
    let wf = workflow(&d);
    let rt = runtime();
    let mut engine = Engine::new(Registry::new(), Arc::new(VirtualClock::new(0)));
    if !history {
        engine = engine.without_history();
    }
    bencher
        .counter(divan::counter::ItemsCount::new(d.transitions))
        .bench_local(|| run(&engine, &rt, &wf, &d.input));
}

#[divan::bench(sample_count = 10, args = [true, false])]
fn pass_chain_10k(bencher: divan::Bencher, history: bool) {
    bench(bencher, pass_chain(CHAIN_STATES), history);
}

#[divan::bench(sample_count = 5, args = [true, false])]
fn choice_loop_100k(bencher: divan::Bencher, history: bool) {
    bench(bencher, choice_loop(LOOP_ITERATIONS), history);
}
