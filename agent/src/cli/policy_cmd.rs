//! `tend policy`: authoring checks for admins.

use std::path::PathBuf;
use std::process::ExitCode;

use super::read_input;
use crate::policy::lint::{Level, lint};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a policy before signing it: parse it, validate it, and prepare
    /// every check's query for every OS it names. Exit 0 when there is no
    /// error (warnings allowed), 1 otherwise.
    Lint {
        /// The policy file (`-` for standard input).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LintFormat::Text)]
        format: LintFormat,
    },
    /// Print the built-in default policy, a starting point for your own.
    Default,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Default => {
            print!("{}", crate::policy::default_policy_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Lint { file, format } => {
            let text = read_input(&file)?;
            let name = file.display().to_string();
            let findings = lint(&text, &name);
            let errors = findings.iter().filter(|f| f.level == Level::Error).count();
            match format {
                LintFormat::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
                LintFormat::Text => {
                    for f in &findings {
                        let level = match f.level {
                            Level::Error => "error",
                            Level::Warning => "warning",
                        };
                        println!(
                            "{name}:{}:{}: {level}: {}: {}",
                            f.line, f.column, f.path, f.message
                        );
                    }
                    let warnings = findings.len() - errors;
                    println!("{name}: {errors} error(s), {warnings} warning(s)");
                }
            }
            Ok(if errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
