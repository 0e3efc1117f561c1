//! Transitions per second, in memory (no journal):
//! - a chain of 10,000 Pass states;
//! - a Choice + Pass loop of 100,000 iterations (200,000 transitions).
//!
//! `cargo bench -p tend-workflow --bench transitions`

use std::sync::Arc;

use serde_json::{Value, json};
use tend_workflow::{Engine, Registry, Status, VirtualClock, Workflow};

fn main() {
    divan::main();
}

fn pass_chain(n: usize) -> Arc<Workflow> {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass"});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    let doc = json!({"StartAt": "S0", "States": states});
    Arc::new(Workflow::from_value(&doc, None).expect("valid chain"))
}

fn choice_loop() -> Arc<Workflow> {
    let doc = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$.i", "NumericGreaterThanEquals": 100000, "Next": "Done"}], "Default": "Inc"},
        "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}});
    Arc::new(Workflow::from_value(&doc, None).expect("valid loop"))
}

fn run(engine: &Engine, rt: &tokio::runtime::Runtime, wf: &Arc<Workflow>, input: Value) {
    let out = rt.block_on(engine.run(wf.clone(), input));
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(sample_count = 10, args = [true, false])]
fn pass_chain_10k(bencher: divan::Bencher, history: bool) {
    let wf = pass_chain(10_000);
    let rt = runtime();
    let mut engine = Engine::new(Registry::new(), Arc::new(VirtualClock::new(0)));
    if !history {
        engine = engine.without_history();
    }
    bencher
        .counter(divan::counter::ItemsCount::new(10_000usize))
        .bench_local(|| run(&engine, &rt, &wf, json!({"x": 1})));
}

#[divan::bench(sample_count = 5, args = [true, false])]
fn choice_loop_100k(bencher: divan::Bencher, history: bool) {
    let wf = choice_loop();
    let rt = runtime();
    let mut engine = Engine::new(Registry::new(), Arc::new(VirtualClock::new(0)));
    if !history {
        engine = engine.without_history();
    }
    bencher
        .counter(divan::counter::ItemsCount::new(200_001usize))
        .bench_local(|| run(&engine, &rt, &wf, json!({"i": 0})));
}
