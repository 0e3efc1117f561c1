//! The benchmark definitions, in ASL, built in one place: the divan bench
//! (`benches/transitions.rs`) and the side-by-side comparison
//! (`examples/bench_asl.rs`, driven by `scripts/bench-workflow.sh`, which
//! writes these documents to files so both engines read the same bytes).

use serde_json::{Value, json};

/// Iterations of the Choice + Pass loop.
pub const LOOP_ITERATIONS: u64 = 100_000;
/// States in the Pass chain.
pub const CHAIN_STATES: usize = 10_000;

/// One benchmark: its document, its input and how many state transitions
/// one run makes (states entered).
pub struct Definition {
    #[allow(dead_code)] // the divan bench names its functions instead
    pub name: &'static str,
    pub document: Value,
    pub input: Value,
    pub transitions: u64,
}

/// A chain of `n` Pass states, each handing its input on.
pub fn pass_chain(n: usize) -> Definition {
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
    Definition {
        name: "pass-chain-10k",
        document: json!({"StartAt": "S0", "States": states}),
        input: json!({"x": 1}),
        transitions: n as u64,
    }
}

/// A Choice that leaves after `n` rounds and a Pass that counts with
/// `States.MathAdd`: `n` Pass states and `n + 1` Choices entered, then Done.
pub fn choice_loop(n: u64) -> Definition {
    let document = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$.i", "NumericGreaterThanEquals": n, "Next": "Done"}], "Default": "Inc"},
        "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}});
    Definition {
        name: "choice-loop-100k",
        document,
        input: json!({"i": 0}),
        transitions: 2 * n + 2,
    }
}

/// Both benchmarks at their standard sizes.
#[allow(dead_code)] // the divan bench builds them one at a time
pub fn all() -> Vec<Definition> {
    vec![pass_chain(CHAIN_STATES), choice_loop(LOOP_ITERATIONS)]
}
