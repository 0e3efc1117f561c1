//! `tend run` (the service), and `tend status` / `tend recheck` /
//! `tend history`, which ask it over the local API.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::{Target, read_input};
use crate::daemon::{self, Options};
use crate::ipc::client::Client;
use crate::ipc::proto::Op;
use crate::policy::{Interval, Policy};
use crate::sql::Limits;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Evaluate this policy instead of the one pulled from the configured
    /// URL (or the built-in one). For trials and tests.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
    /// The local API's socket (Unix) or pipe name (Windows). Default:
    /// /run/tend/tend.sock, /var/run/tend/tend.sock on macOS, \\.\pipe\tend;
    /// TEND_SOCKET also sets it.
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// The time one check's evaluation may take; past it the check is
    /// `error` and the others go on.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    check_timeout: Interval,
    /// The most rows one check's query may return.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    check_rows: usize,
    /// Run under the Windows service control manager (what the MSI
    /// registers). Under systemd and launchd `tend run` needs no flag.
    #[arg(long)]
    service: bool,
}

fn parse_interval(s: &str) -> Result<Interval, String> {
    Interval::parse(s)
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct RecheckArgs {
    /// The check to run now (default: every check).
    check: Option<String>,
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this check's changes (default: every check's).
    check: Option<String>,
    /// The most changes to show, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: u32,
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Logging for `tend run` (info by default, journald priorities, the
/// Windows event log under the service manager).
pub fn init_logging(verbose: u8, args: &RunArgs) {
    daemon::service::init_logging(verbose, args.service);
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_secs(2))
        .build()
        .context("starting the async runtime")
}

/// What `tend run` runs with: the config, the machine, the policy file.
fn options(args: &RunArgs, config: Option<&Path>) -> anyhow::Result<Options> {
    let loaded = super::load_config(config)?;
    let machine = args.target.machine()?;
    let policy_file = match &args.policy {
        Some(p) => {
            let text = read_input(p)?;
            let name = p.display().to_string();
            Some((Policy::parse(&text, &name)?, name))
        }
        None => None,
    };
    let config_path = config.map(Path::to_path_buf);
    Ok(Options {
        config: loaded,
        reload_config: Box::new(move || {
            super::load_config(config_path.as_deref()).map_err(|e| format!("{e:#}"))
        }),
        machine,
        policy_file,
        endpoint: crate::ipc::endpoint(args.socket.as_deref()),
        limits: Limits {
            time: args.check_timeout.0,
            rows: args.check_rows,
        },
    })
}

pub fn run(args: RunArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    if args.service {
        #[cfg(windows)]
        {
            // Everything happens inside the service: the service manager
            // gives a process only a few seconds to reach the dispatcher,
            // and a bad config or policy must end as a stopped service with
            // an error code and an event log entry, not a start time-out.
            let config = config.map(Path::to_path_buf);
            daemon::service::windows::run(Box::new(move |stop| {
                let opts = options(&args, config.as_deref()).map_err(|e| format!("{e:#}"))?;
                let rt = runtime().map_err(|e| format!("{e:#}"))?;
                rt.block_on(daemon::run(opts, stop))
                    .map_err(|e| format!("the Tend service: {e}"))
            }))
            .map_err(anyhow::Error::msg)?;
            return Ok(ExitCode::SUCCESS);
        }
        #[cfg(not(windows))]
        anyhow::bail!(
            "--service is for the Windows service manager; under systemd or launchd run `tend run` as it is"
        );
    }
    let opts = options(&args, config)?;
    // A new version's first start is its trial; one that failed its trial
    // has been replaced by the previous binary, which runs instead.
    let updates = crate::update::UpdateSettings::from_config(&opts.config.config);
    let exe = std::env::current_exe().context("cannot tell where this binary is")?;
    let trial = match super::update_cmd::start_trial(&updates) {
        Ok(t) => t,
        #[cfg(unix)]
        Err(previous) => return Err(super::update_cmd::exec(&previous)),
        #[cfg(not(unix))]
        Err(_) => anyhow::bail!(
            "the update failed its trial and was rolled back; start the service again"
        ),
    };
    let rt = runtime()?;
    let endpoint = opts.endpoint.clone();
    let restart = rt
        .block_on(async {
            // The update schedule ends only to restart into a new (or the
            // previous) binary: the service stops cleanly first.
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let restart = super::update_cmd::run_schedule(updates, exe, trial, endpoint).await;
                let _ = tx.send(restart);
            });
            let mut restart = None;
            let stop = async {
                if let Ok(r) = rx.await {
                    restart = Some(r);
                }
            };
            daemon::run(opts, stop).await.map(|()| restart)
        })
        .context("the Tend service")?;
    drop(rt);
    match restart {
        #[cfg(unix)]
        Some(super::update_cmd::Restart::Into(exe)) => Err(super::update_cmd::exec(&exe)),
        // The service manager starts the binary again (a rollback put the
        // previous one back): exit so that it does.
        #[cfg(not(unix))]
        Some(super::update_cmd::Restart::Into(exe)) => {
            tracing::info!("exiting so that {} starts", exe.display());
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

pub(super) fn call(socket: Option<&str>, op: Op, timeout: Duration) -> anyhow::Result<Value> {
    let rt = runtime()?;
    let endpoint = crate::ipc::endpoint(socket);
    rt.block_on(async {
        let mut c = Client::connect(&endpoint).await?;
        c.call(&op, timeout).await
    })
    .map_err(anyhow::Error::from)
}

/// 0 when every applicable check passes, 1 when any fails, 2 when any is
/// in error (and none fails), as `tend check`.
fn exit_code(checks: &[Value]) -> ExitCode {
    let any = |s: &str| checks.iter().any(|c| c["status"] == s);
    if any("failed") {
        ExitCode::from(1)
    } else if any("error") {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// The human view of a list of checks.
pub fn render_checks(checks: &[Value], color: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let name_w = checks
        .iter()
        .map(|c| text(&c["name"]).chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "{:<16}  {:<name_w$}  {:<25}  NEXT RUN",
        "STATUS", "CHECK", "SINCE"
    );
    for c in checks {
        let (mark, code) = match c["status"].as_str().unwrap_or("") {
            "passed" => ("✔ passed", "32"),
            "failed" => ("✘ failed", "31"),
            "error" => ("! error", "33"),
            "not_applicable" => ("- not applicable", "2"),
            _ => ("… pending", "2"),
        };
        let _ = writeln!(
            out,
            "{}  {:<name_w$}  {:<25}  {}",
            paint(color, code, &format!("{mark:<16}")),
            text(&c["name"]),
            text(&c["since"]),
            text(&c["next_run"]),
        );
    }
    for c in checks
        .iter()
        .filter(|c| c["status"] == "failed" || c["status"] == "error")
    {
        let _ = writeln!(out);
        let title = if c["status"] == "failed" {
            format!("✘ {} ({})", text(&c["name"]), text(&c["id"]))
        } else {
            format!(
                "! {} ({}) could not be checked",
                text(&c["name"]),
                text(&c["id"])
            )
        };
        let _ = writeln!(out, "{}", paint(color, "1", &title));
        if let Some(e) = c["error"].as_str() {
            let _ = writeln!(out, "  {e}");
        }
        if let Some(fix) = c["remediation"].as_str() {
            for l in fix.lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        if c["watching"] == true {
            let _ = writeln!(
                out,
                "  (watching the files and registry keys it read: a fix is seen within seconds)"
            );
        }
    }
    out
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let v = call(args.socket.as_deref(), Op::Status, Duration::from_secs(30))?;
    let checks = v["checks"].as_array().cloned().unwrap_or_default();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Table => {
            let p = &v["policy"];
            let asset = &v["asset"]["asset"];
            println!(
                "Tend {} (pid {}) · {} · policy {} serial {} · {}",
                v["daemon"]["version"].as_str().unwrap_or("?"),
                v["daemon"]["pid"],
                asset["name"].as_str().unwrap_or("this device"),
                p["name"].as_str().unwrap_or(""),
                p["serial"],
                p["origin"].as_str().unwrap_or("")
            );
            if let Some(problem) = p["problem"].as_str() {
                println!("policy problem: {problem}");
            }
            println!();
            print!(
                "{}",
                render_checks(&checks, std::io::stdout().is_terminal())
            );
            let s = &v["summary"];
            println!(
                "\n{} passed, {} failed, {} error, {} not applicable, {} pending",
                s["passed"], s["failed"], s["error"], s["not_applicable"], s["pending"]
            );
        }
    }
    Ok(exit_code(&checks))
}

pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let v = call(
        args.socket.as_deref(),
        Op::History {
            check: args.check.clone(),
            limit: Some(args.limit),
        },
        Duration::from_secs(30),
    )?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Table => print!("{}", render_history(&v)),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line a change, oldest first (as a log reads).
fn render_history(v: &Value) -> String {
    use std::fmt::Write;
    let changes = v["changes"].as_array().map_or(&[][..], Vec::as_slice);
    if changes.is_empty() {
        return "No changes recorded.\n".into();
    }
    let mut out = String::new();
    for c in changes.iter().rev() {
        let id = c["id"].as_str().unwrap_or("?");
        let _ = write!(
            out,
            "{}  {}  {} -> {}",
            c["at"].as_str().unwrap_or("?"),
            c["name"].as_str().unwrap_or(id),
            c["from"].as_str().unwrap_or("(first result)"),
            c["to"].as_str().unwrap_or("?"),
        );
        match c["error"].as_str() {
            Some(e) => {
                let _ = writeln!(out, ": {e}");
            }
            None => out.push('\n'),
        }
    }
    out
}

pub fn recheck(args: RecheckArgs) -> anyhow::Result<ExitCode> {
    let v = call(
        args.socket.as_deref(),
        Op::Recheck {
            check: args.check.clone(),
        },
        daemon::RECHECK_TIMEOUT + Duration::from_secs(5),
    )?;
    let checks = v["checks"].as_array().cloned().unwrap_or_default();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Table => print!(
            "{}",
            render_checks(&checks, std::io::stdout().is_terminal())
        ),
    }
    Ok(exit_code(&checks))
}
