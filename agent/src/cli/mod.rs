//! The `tend` command line.
//!
//! Each subcommand is a module with a `run` function returning the process's
//! exit code. This is the edge where typed errors become reports: `anyhow`
//! adds context (which file, which check) and `main` prints the chain.

mod check;
mod config_cmd;
mod daemon_cmd;
pub mod output;
mod policy_cmd;
mod query;
mod schema;
mod secret_cmd;
mod session_cmd;
mod shell;
mod snapshot;
mod update_cmd;
mod workflow_api;
mod workflow_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::os::Machine;

/// Tend: endpoint compliance checks in osquery's SQL.
///
/// Tend answers four questions on this machine — is the disk encrypted, is the
/// firewall on, are automatic updates on, is anti-virus running with fresh
/// definitions — with osquery-compatible queries it evaluates itself.
#[derive(Debug, Parser)]
#[command(name = "tend", version = crate::VERSION, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Log more (-v: debug, -vv: trace). TEND_LOG takes a tracing filter too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Read the agent config from FILE instead of the places MDM manages
    /// (/etc/tend/agent.toml and agent.d/ on Linux, managed preferences on
    /// macOS, HKLM\SOFTWARE\Policies\Tend on Windows).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate a policy's checks on this machine and show what to fix.
    ///
    /// Exit status: 0 when every applicable check passes, 1 when any fails,
    /// 2 when any could not be evaluated (and none failed).
    Check(check::Args),
    /// Run one SQL query, as `osqueryi` would.
    Query(query::Args),
    /// An interactive SQL shell, like `osqueryi`.
    Shell(shell::Args),
    /// List tables and their columns, with where osquery and Tend have them.
    Schema(schema::Args),
    /// Show the agent's configuration and where each value comes from.
    Config {
        #[command(subcommand)]
        command: config_cmd::Command,
    },
    /// Work with policies: lint, fetch, show, verify.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::Command,
    },
    /// Record this machine for replay elsewhere with --snapshot.
    Snapshot {
        #[command(subcommand)]
        command: snapshot::Command,
    },
    /// Run the service: keep every check current, record every change,
    /// deliver ASSET_COMPLIANCE events, serve the local API.
    Run(daemon_cmd::RunArgs),
    /// Ask the running service for every check's state.
    ///
    /// Exit status as for `tend check`.
    Status(daemon_cmd::StatusArgs),
    /// Store or remove the secrets the agent sends (sink tokens), in the
    /// OS keychain / Credential Manager, or root-only files on Linux.
    Secret {
        #[command(subcommand)]
        command: secret_cmd::Command,
    },
    /// Ask the running service to re-check a check (or every check) now.
    Recheck(daemon_cmd::RecheckArgs),
    /// Ask the running service when checks changed status (it keeps the
    /// last 100 results of each check).
    History(daemon_cmd::HistoryArgs),
    /// Self-update from the signed release at `update_url`: check, apply.
    Update {
        #[command(subcommand)]
        command: update_cmd::Command,
    },
    /// The per-user process that shows the service's notifications (where
    /// no tray is installed); start it at login. Runs until stopped.
    Session(session_cmd::SessionArgs),
    /// Hand a clicked tend:// link (a button in a Slack message) to the
    /// running service as the workflow's interaction.
    OpenUrl(session_cmd::OpenUrlArgs),
    /// Workflows: validate, draw (Mermaid, DOT, SVG), run in memory; start
    /// them, list executions and histories, send events in the service.
    Workflow {
        #[command(subcommand)]
        command: workflow_cmd::Command,
    },
}

/// Which machine to read: this one, or a recording.
#[derive(Debug, clap::Args)]
struct Target {
    /// Evaluate against a recorded machine (made by `tend snapshot create`)
    /// instead of this one.
    #[arg(long, value_name = "DIR")]
    snapshot: Option<PathBuf>,
}

impl Target {
    fn machine(&self) -> anyhow::Result<Machine> {
        match &self.snapshot {
            None => Ok(Machine::real()),
            Some(dir) => Machine::snapshot(dir)
                .with_context(|| format!("cannot open the recording {}", dir.display())),
        }
    }
}

/// The agent config: `--config FILE`, or the places MDM manages on this OS.
fn load_config(path: Option<&Path>) -> anyhow::Result<crate::config::LoadedConfig> {
    use crate::config::{LoadedConfig, Places};
    let places = match path {
        Some(p) => Places::file(p),
        None => Places::managed(crate::sql::table::Platform::current()),
    };
    let machine = Machine::real();
    LoadedConfig::load(&places, machine.registry.as_ref()).context("reading the agent config")
}

/// Reads a file given on the command line, `-` meaning standard input.
fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TEND_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => daemon_cmd::init_logging(cli.verbose, a),
        _ => init_logging(cli.verbose),
    }
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Check(a) => check::run(a, config),
        Command::Query(a) => query::run(a),
        Command::Shell(a) => shell::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Config { command } => config_cmd::run(command, config),
        Command::Policy { command } => policy_cmd::run(command, config),
        Command::Snapshot { command } => snapshot::run(command, config),
        Command::Run(a) => daemon_cmd::run(a, config),
        Command::Status(a) => daemon_cmd::status(a),
        Command::Recheck(a) => daemon_cmd::recheck(a),
        Command::History(a) => daemon_cmd::history(a),
        Command::Secret { command } => secret_cmd::run(command, config),
        Command::Update { command } => update_cmd::run(command, config),
        Command::Workflow { command } => workflow_cmd::run(command),
        Command::Session(a) => session_cmd::session(a),
        Command::OpenUrl(a) => session_cmd::open_url(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tend: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
