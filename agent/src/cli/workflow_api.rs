//! `tend workflow start|executions|history|event`: the service's workflow
//! executions, over the local API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::daemon_cmd::call;
use crate::ipc::proto::Op;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The workflow's `name` in the policy.
    name: String,
    /// The execution's input, JSON.
    #[arg(long, default_value = "{}")]
    input: String,
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long)]
    socket: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecutionsArgs {
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long)]
    socket: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The execution's id.
    id: String,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[arg(long)]
    socket: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// The execution's id.
    id: String,
    /// The event's name (a button: `yes`, `no`).
    event: String,
    /// The execution's token (as a `tend://` link carries it).
    #[arg(long)]
    token: Option<String>,
    #[arg(long)]
    socket: Option<String>,
}

fn time(ms: &Value) -> String {
    ms.as_i64()
        .map(crate::daemon::events::rfc3339)
        .unwrap_or_else(|| "-".into())
}

pub fn start(a: StartArgs) -> anyhow::Result<ExitCode> {
    let input: Value = serde_json::from_str(&a.input).context("--input is not JSON")?;
    let v = call(
        a.socket.as_deref(),
        Op::WorkflowStart {
            name: a.name,
            input: Some(input),
        },
        TIMEOUT,
    )?;
    println!("{}", v["execution"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub fn executions(a: ExecutionsArgs) -> anyhow::Result<ExitCode> {
    let v = call(
        a.socket.as_deref(),
        Op::WorkflowExecutions {
            limit: Some(a.limit),
        },
        TIMEOUT,
    )?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v["executions"])?),
        Format::Text => {
            for e in v["executions"].as_array().into_iter().flatten() {
                let waits = e["awaiting"]
                    .as_array()
                    .map(|a| {
                        let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                        format!("  awaiting {}", names.join("|"))
                    })
                    .unwrap_or_default();
                println!(
                    "{}  {:<9}  {}  {} ({}){waits}",
                    e["id"].as_str().unwrap_or_default(),
                    e["status"].as_str().unwrap_or_default(),
                    time(&e["started_ms"]),
                    e["workflow"].as_str().unwrap_or_default(),
                    e["trigger"].as_str().unwrap_or_default(),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn history(a: HistoryArgs) -> anyhow::Result<ExitCode> {
    let v = call(
        a.socket.as_deref(),
        Op::WorkflowHistory { execution: a.id },
        TIMEOUT,
    )?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v["history"])?),
        Format::Text => {
            for h in v["history"].as_array().into_iter().flatten() {
                let what = h["state"]
                    .as_str()
                    .or(h["name"].as_str())
                    .unwrap_or_default();
                let thread = h["thread"].as_str().filter(|t| !t.is_empty());
                println!(
                    "{}  {:<18} {what}{}",
                    time(&h["at_ms"]),
                    h["type"].as_str().unwrap_or_default(),
                    thread
                        .map(|t| format!("  (thread {t})"))
                        .unwrap_or_default(),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn event(a: EventArgs) -> anyhow::Result<ExitCode> {
    let v = call(
        a.socket.as_deref(),
        Op::Interaction {
            execution: a.id,
            event: a.event,
            token: a.token,
        },
        TIMEOUT,
    )?;
    println!("{}", serde_json::to_string(&v["response"])?);
    Ok(ExitCode::SUCCESS)
}
