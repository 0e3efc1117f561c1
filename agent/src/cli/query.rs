//! `tend query`: one SQL query, as `osqueryi` runs it.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Target;
use super::output::{Format, render};
use crate::sql::Engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SQL to run, e.g. "SELECT * FROM mounts WHERE path = '/'".
    sql: String,
    #[command(flatten)]
    target: Target,
    /// Output format (`json` matches `osqueryi --json`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(args.target.machine()?).context("opening the SQL engine")?;
    let result = engine.query(&args.sql)?;
    print!("{}", render(&result, args.format));
    Ok(ExitCode::SUCCESS)
}
