//! `tend snapshot`: record this machine for replay with `--snapshot`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::check::load_policy;
use crate::checks;
use crate::os::Machine;
use crate::os::snapshot::Recorder;
use crate::sql::Engine;
use crate::sql::table::Platform;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Record what a policy's checks read on this machine into DIR: the files
    /// they open, the commands they run and the system facts they ask for.
    /// `tend check --snapshot DIR` then replays the checks anywhere.
    Create {
        /// Where to write the recording (created if missing).
        dir: PathBuf,
        /// The policy whose checks to record (default: the policy in force,
        /// as `tend check` chooses it).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Also record what this query reads (repeatable).
        #[arg(long = "query", value_name = "SQL")]
        queries: Vec<String>,
        /// A note stored in the recording (who, where, why).
        #[arg(long)]
        description: Option<String>,
    },
}

pub fn run(cmd: Command, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Command::Create {
        dir,
        policy,
        queries,
        description,
    } = cmd;
    let (policy, _) = load_policy(policy.as_ref(), config)?;
    let recorder = Arc::new(Recorder::new(&dir, Platform::current())?);
    let machine = Machine {
        platform: Platform::current(),
        fs: recorder.clone(),
        commands: recorder.clone(),
        host: recorder.clone(),
        registry: recorder.clone(),
        wmi: recorder.clone(),
    };
    let engine = Engine::new(machine).context("opening the SQL engine")?;
    let outcomes = checks::evaluate_all(&engine, &policy);
    for sql in &queries {
        if let Err(e) = engine.query(sql) {
            eprintln!("tend: warning: {sql}: {e}");
        }
    }
    let failed_copies = recorder.finish(description)?;
    for f in &failed_copies {
        eprintln!("tend: warning: not recorded: {f}");
    }
    println!("recorded {} into {}", summary(&outcomes), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn summary(outcomes: &[checks::Outcome]) -> String {
    let parts: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{}={}", o.id, o.status.as_str()))
        .collect();
    parts.join(", ")
}
