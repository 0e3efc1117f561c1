//! `tend config show`: the merged agent config and where each value came from.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{LoadedConfig, known_settings};
use crate::policy::signature::TrustedKey;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the merged config, each value with the place that set it
    /// (`default` when none did), as TOML that could be used as a config file.
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Toml)]
        format: ShowFormat,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Toml,
    Json,
}

pub fn run(cmd: Command, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Command::Show { format } = cmd;
    let loaded = super::load_config(config)?;
    let key_ids: Vec<String> = loaded
        .config
        .trusted_keys
        .iter()
        .map(|k| match TrustedKey::parse(k) {
            Ok(k) => k.id.to_string(),
            Err(e) => format!("invalid: {e}"),
        })
        .collect();
    match format {
        ShowFormat::Json => {
            let doc = serde_json::json!({
                "config": loaded.config,
                "origins": loaded.origins,
                "sources": loaded.sources,
                "warnings": loaded.warnings,
                "effective": {
                    "state_dir": loaded.config.state_dir(),
                    "allow_default_policy": loaded.config.allow_default_policy(),
                    "trusted_key_ids": key_ids,
                },
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ShowFormat::Toml => print!("{}", render(&loaded, &key_ids)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// TOML with dotted keys, one setting a line, its origin in a comment.
fn render(loaded: &LoadedConfig, key_ids: &[String]) -> anyhow::Result<String> {
    use std::fmt::Write;
    let table = toml::Table::try_from(&loaded.config)?;
    let mut out = String::new();
    let _ = writeln!(out, "# Places read, lowest precedence first:");
    for s in &loaded.sources {
        let state = if s.found { "read" } else { "not present" };
        let _ = writeln!(out, "#   {} ({state})", s.place);
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    for key in known_settings() {
        let mut value = Some(&table);
        let mut item: Option<&toml::Value> = None;
        for part in key.split('.') {
            item = value.and_then(|t| t.get(part));
            value = item.and_then(toml::Value::as_table);
        }
        let origin = loaded.origin(key).to_string();
        match item {
            Some(v) => {
                let mut note = origin;
                if key == "trusted_keys" && !key_ids.is_empty() {
                    note = format!("{note}; key ids {}", key_ids.join(", "));
                }
                lines.push((format!("{key} = {v}"), note));
            }
            None => lines.push((format!("# {key} is not set"), String::new())),
        }
    }
    let width = lines
        .iter()
        .filter(|(_, n)| !n.is_empty())
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(70);
    for (line, note) in lines {
        if note.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{line:<width$}  # {note}");
        }
    }
    let c = &loaded.config;
    let _ = writeln!(
        out,
        "# In effect: state_dir {}, built-in policy {}",
        c.state_dir().display(),
        if c.allow_default_policy() {
            "allowed until a policy is fetched"
        } else {
            "not allowed"
        }
    );
    for w in &loaded.warnings {
        let _ = writeln!(out, "# warning: {w}");
    }
    Ok(out)
}
