//! Tend's side of `scripts/bench-workflow.sh`, the comparison with
//! aws-local-stepfunctions.
//!
//! - `bench_asl gen DIR` writes each benchmark definition as
//!   `DIR/<name>.asl.json` and its input as `DIR/<name>.input.json`, and
//!   prints `<name> <transitions>` lines: the one generator both engines'
//!   files come from.
//! - `bench_asl run FILE INPUT TRANSITIONS RUNS [--no-history]` reads and
//!   validates FILE, runs it RUNS times in memory (after one warm-up run) on
//!   a current-thread tokio runtime, and prints one JSON line: the median
//!   run time and the transitions per second it makes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tend_workflow::{Engine, Registry, Status, VirtualClock, Workflow};

#[path = "../benches/definitions.rs"]
mod definitions;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 2 => generate(Path::new(&args[1])),
        Some("run") if args.len() >= 5 => {
            let history = !args[5..].iter().any(|a| a == "--no-history");
            run(
                Path::new(&args[1]),
                Path::new(&args[2]),
                args[3].parse().context("TRANSITIONS")?,
                args[4].parse().context("RUNS")?,
                history,
            )
        }
        _ => bail!(
            "usage: bench_asl gen DIR | bench_asl run FILE INPUT TRANSITIONS RUNS [--no-history]"
        ),
    }
}

fn generate(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for d in definitions::all() {
        let file = dir.join(format!("{}.asl.json", d.name));
        std::fs::write(&file, serde_json::to_string(&d.document)?)
            .with_context(|| file.display().to_string())?;
        let file = dir.join(format!("{}.input.json", d.name));
        std::fs::write(&file, serde_json::to_string(&d.input)?)
            .with_context(|| file.display().to_string())?;
        println!("{} {}", d.name, d.transitions);
    }
    Ok(())
}

fn run(
    file: &Path,
    input: &Path,
    transitions: u64,
    runs: usize,
    history: bool,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let wf = Arc::new(
        Workflow::parse(&text, None).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
    );
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string(input).with_context(|| input.display().to_string())?,
    )
    .with_context(|| input.display().to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut engine = Engine::new(Registry::new(), Arc::new(VirtualClock::new(0)));
    if !history {
        engine = engine.without_history();
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..=runs {
        let started = Instant::now();
        let out = rt.block_on(engine.run(wf.clone(), input.clone()));
        let elapsed = started.elapsed().as_secs_f64();
        if out.status != Status::Succeeded {
            bail!("{}: {:?} {:?}", file.display(), out.status, out.error);
        }
        // Run 0 warms up.
        if i > 0 {
            times.push(elapsed);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        json!({
            "engine": "tend",
            "history": history,
            "file": file.file_name().map(|n| n.to_string_lossy()),
            "runs": runs,
            "median_ms": median * 1e3,
            "transitions_per_s": transitions as f64 / median,
        })
    );
    Ok(())
}
