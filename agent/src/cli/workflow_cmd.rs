//! `tend workflow`: validate, draw and run workflows (in memory); the
//! service's executions are in [`super::workflow_api`].
//!
//! `run` uses demo resources: every task resource echoes its parameters,
//! unless `--resource NAME=JSON` gives its canned result. Waits and retry
//! intervals pass at once on a virtual clock (`--real-time` for the real
//! one). A task with events waits for one: `--event NAME` answers the waits
//! in order.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tend_workflow::graph::{self, Trace};
use tend_workflow::{
    Clock, Engine, FnResource, HistoryEvent, RealClock, Registry, Status, TaskCall, VirtualClock,
    Workflow,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read a workflow (seed dialect or Amazon States Language) and report
    /// every problem with its path. Exit 0 when valid, 1 when not.
    Validate {
        /// The workflow JSON (`-` for standard input).
        file: PathBuf,
    },
    /// Draw a workflow as Mermaid or Graphviz DOT.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: Format,
        /// Highlight the path an execution took: the JSON `tend workflow run
        /// --history` printed.
        #[arg(long, value_name = "FILE")]
        execution: Option<PathBuf>,
    },
    /// Run a workflow in memory and print the outcome as JSON.
    ///
    /// Exit status: 0 when it succeeds, 1 when it fails (or waits for an
    /// event no --event answers).
    Run {
        file: PathBuf,
        /// The execution's input, JSON.
        #[arg(long, default_value = "{}")]
        input: String,
        /// A task resource's canned result: NAME=JSON (repeatable). Other
        /// resources echo their parameters.
        #[arg(long = "resource", value_name = "NAME=JSON")]
        resources: Vec<String>,
        /// Answer the next wait for an event with this event (repeatable, in order).
        #[arg(long = "event", value_name = "NAME")]
        events: Vec<String>,
        /// Include the execution history.
        #[arg(long)]
        history: bool,
        /// Use the real clock: waits really wait.
        #[arg(long)]
        real_time: bool,
    },
    /// Start a workflow of the policy in force in the service (admin).
    Start(super::workflow_api::StartArgs),
    /// The service's newest workflow executions.
    Executions(super::workflow_api::ExecutionsArgs),
    /// One execution's history, from the service.
    History(super::workflow_api::HistoryArgs),
    /// Send an interaction event (a button) to a running execution; prints
    /// the event's response.
    Event(super::workflow_api::EventArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
    /// Laid out in-process (no Graphviz needed).
    Svg,
}

fn load(
    file: &std::path::Path,
    registry: Option<&Registry>,
) -> anyhow::Result<Result<Workflow, tend_workflow::Invalid>> {
    let text = super::read_input(file)?;
    Ok(Workflow::parse(&text, registry))
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Start(a) => super::workflow_api::start(a),
        Command::Executions(a) => super::workflow_api::executions(a),
        Command::History(a) => super::workflow_api::history(a),
        Command::Event(a) => super::workflow_api::event(a),
        Command::Validate { file } => match load(&file, None)? {
            Ok(wf) => {
                let states = count_states(&wf.machine);
                println!(
                    "{}: valid ({:?} dialect, {states} states)",
                    file.display(),
                    wf.dialect
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(invalid) => {
                println!("{}: {invalid}", file.display());
                Ok(ExitCode::from(1))
            }
        },
        Command::Graph {
            file,
            format,
            execution,
        } => {
            let wf = load(&file, None)?
                .with_context(|| format!("{} is not a valid workflow", file.display()))?;
            let trace = match execution {
                None => None,
                Some(p) => {
                    let v: Value = serde_json::from_str(&super::read_input(&p)?)
                        .with_context(|| format!("{} is not JSON", p.display()))?;
                    let h = v.get("history").cloned().unwrap_or(v);
                    let history: Vec<HistoryEvent> = serde_json::from_value(h)
                        .with_context(|| format!("{} has no execution history", p.display()))?;
                    Some(Trace::from_history(&history))
                }
            };
            let out = match format {
                Format::Mermaid => graph::mermaid(&wf, trace.as_ref()),
                Format::Dot => graph::dot(&wf, trace.as_ref()),
                Format::Svg => graph::svg(&wf, trace.as_ref()),
            };
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            input,
            resources,
            events,
            history,
            real_time,
        } => {
            let input: Value = serde_json::from_str(&input).context("--input is not JSON")?;
            let registry = demo_registry(&resources)?;
            let wf = load(&file, None)?
                .with_context(|| format!("{} is not a valid workflow", file.display()))?;
            let clock: Arc<dyn Clock> = if real_time {
                Arc::new(RealClock)
            } else {
                Arc::new(VirtualClock::new(RealClock.now_ms()))
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (mut outcome, unanswered) = rt.block_on(async {
                let exec = Engine::new(registry, clock).start(Arc::new(wf), input);
                let mut events = events.into_iter();
                let mut unanswered = None;
                loop {
                    let waiting = exec.awaiting().await;
                    let Some(w) = waiting.first() else { break };
                    match events.next() {
                        Some(name) => {
                            if let Err(e) = exec.send_event(&name, Value::Null) {
                                unanswered = Some(format!(
                                    "{e}; {} waits for {}",
                                    w.state,
                                    w.names.join(", ")
                                ));
                                exec.cancel();
                                break;
                            }
                        }
                        None => {
                            unanswered = Some(format!(
                                "{} waits for an event ({}): pass --event NAME",
                                w.state,
                                w.names.join(", ")
                            ));
                            exec.cancel();
                            break;
                        }
                    }
                }
                (exec.wait().await, unanswered)
            });
            if !history {
                outcome.history.clear();
            }
            let mut v = serde_json::to_value(&outcome)?;
            if !history && let Some(o) = v.as_object_mut() {
                o.remove("history");
            }
            if let Some(msg) = &unanswered {
                v["waiting"] = Value::String(msg.clone());
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(if outcome.status == Status::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn count_states(m: &tend_workflow::model::StateMachine) -> usize {
    m.states.len() + m.children().map(count_states).sum::<usize>()
}

/// Every resource echoes its parameters, except those given a canned result.
fn demo_registry(canned: &[String]) -> anyhow::Result<Registry> {
    let mut r = Registry::new();
    for spec in canned {
        let Some((name, json)) = spec.split_once('=') else {
            bail!("--resource {spec:?}: expected NAME=JSON");
        };
        let v: Value =
            serde_json::from_str(json).with_context(|| format!("--resource {name}: not JSON"))?;
        r.func(name, move |_c: TaskCall| {
            let v = v.clone();
            async move { Ok(v) }
        });
    }
    r.prefix("", FnResource(|c: TaskCall| async move { Ok(c.input) }));
    Ok(r)
}
