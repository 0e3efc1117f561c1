//! `tend check`: evaluate a policy and show what to fix.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Target, read_input};
use crate::checks::{self, Outcome, Status};
use crate::policy::manager::{PolicyManager, PolicyOrigin};
use crate::policy::{self, Policy};
use crate::sql::Engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy to evaluate (default: the policy in force: the last good
    /// one fetched from the configured policy URL, or the built-in policy).
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
    format: CheckFormat,
    /// Evaluate only these checks (by id; repeatable).
    #[arg(long = "check", value_name = "ID")]
    only: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
}

/// The policy to evaluate, and where it came from: `--policy FILE`; else the
/// policy in force. With no agent config anywhere that is the built-in
/// policy, as it always was; with one, the cached last good policy when the
/// config names a policy URL (re-verified), or the built-in policy when the
/// config allows it ([`PolicyManager::active`]).
pub fn load_policy(
    path: Option<&PathBuf>,
    config: Option<&Path>,
) -> anyhow::Result<(Policy, String)> {
    if let Some(p) = path {
        let text = read_input(p)?;
        let name = p.display().to_string();
        return Ok((Policy::parse(&text, &name)?, name));
    }
    let loaded = super::load_config(config)?;
    if !loaded.found_any() {
        return Ok((policy::default_policy(), PolicyOrigin::BuiltIn.to_string()));
    }
    let (policy, origin) = PolicyManager::new(&loaded.config).active()?;
    Ok((policy, origin.to_string()))
}

pub fn run(args: Args, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (mut policy, source) = load_policy(args.policy.as_ref(), config)?;
    if !args.only.is_empty() {
        for id in &args.only {
            if policy.check(id).is_none() {
                anyhow::bail!("the policy has no check {id:?}");
            }
        }
        policy.checks.retain(|c| args.only.contains(&c.id));
    }
    let machine = args.target.machine()?;
    let engine = Engine::new(machine).context("opening the SQL engine")?;
    let outcomes = checks::evaluate_all(&engine, &policy);
    match args.format {
        CheckFormat::Json => {
            let doc = serde_json::json!({
                "platform": engine.machine().platform.policy_key(),
                "policy": { "name": policy.name, "serial": policy.serial, "source": source },
                "checks": outcomes,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        CheckFormat::Table => print!(
            "{}",
            render(&policy, &outcomes, std::io::stdout().is_terminal())
        ),
    }
    Ok(exit_code(&outcomes))
}

/// 0 all applicable checks pass, 1 any fails, 2 any error (and none failed).
pub fn exit_code(outcomes: &[Outcome]) -> ExitCode {
    if outcomes.iter().any(|o| o.status == Status::Failed) {
        ExitCode::from(1)
    } else if outcomes.iter().any(|o| o.status == Status::Error) {
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

/// The human report: one line per check, then what to do about each problem.
pub fn render(policy: &Policy, outcomes: &[Outcome], color: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let name_w = outcomes
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(out, "{:<16}  {:<name_w$}  SEVERITY", "STATUS", "CHECK");
    for o in outcomes {
        let (mark, code) = match o.status {
            Status::Passed => ("✔ passed", "32"),
            Status::Failed => ("✘ failed", "31"),
            Status::Error => ("! error", "33"),
            Status::NotApplicable => ("- not applicable", "2"),
        };
        let severity = policy
            .check(&o.id)
            .map_or(String::new(), |c| c.severity.to_string());
        let _ = writeln!(
            out,
            "{}  {:<name_w$}  {severity}",
            paint(color, code, &format!("{mark:<16}")),
            o.name
        );
    }
    for o in outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Failed | Status::Error))
    {
        let _ = writeln!(out);
        let title = match o.status {
            Status::Failed => format!("✘ {} ({})", o.name, o.id),
            _ => format!("! {} ({}) could not be checked", o.name, o.id),
        };
        let _ = writeln!(out, "{}", paint(color, "1", &title));
        if let Some(e) = &o.error {
            let _ = writeln!(out, "  {e}");
        }
        if let Some(fix) = &o.remediation {
            for l in fix.lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} error, {} not applicable",
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Error),
        count(Status::NotApplicable)
    );
    out
}
