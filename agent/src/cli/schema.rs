//! `tend schema`: the tables, their columns, and where they exist.

use std::process::ExitCode;

use serde::Serialize;

use crate::sql::schema::{SpecColumn, spec};
use crate::sql::table::{Platforms, flags};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One table to describe (default: list every table).
    table: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Table)]
    format: SchemaFormat,
    /// List only the tables Tend implements.
    #[arg(long)]
    implemented: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    Table,
    Json,
}

#[derive(Serialize)]
struct ColumnInfo {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    index: bool,
    hidden: bool,
    /// Extended columns: the platforms where osquery shows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    platforms: Option<Vec<&'static str>>,
}

#[derive(Serialize)]
struct TableInfo {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
    osquery_platforms: Vec<&'static str>,
    tend_platforms: Vec<&'static str>,
    columns: Vec<ColumnInfo>,
}

fn names(p: Platforms) -> Vec<&'static str> {
    p.iter().map(|p| p.spec_name()).collect()
}

fn info(name: &str) -> Option<TableInfo> {
    let s = spec().get(name);
    let target = s
        .and_then(|s| s.alias_of.clone())
        .unwrap_or_else(|| name.to_string());
    let ours = crate::tables::all().iter().find(|t| t.name == target);
    if s.is_none() && ours.is_none() {
        return None;
    }
    let columns: Vec<SpecColumn> = match ours {
        Some(t) => t.columns.iter().map(SpecColumn::from).collect(),
        None => s.map(|s| s.columns.clone()).unwrap_or_default(),
    };
    Some(TableInfo {
        name: name.to_string(),
        alias_of: s.and_then(|s| s.alias_of.clone()),
        osquery_platforms: s.map_or_else(Vec::new, |s| names(s.platforms)),
        tend_platforms: ours.map_or_else(Vec::new, |t| names(t.platforms)),
        columns: columns
            .into_iter()
            .map(|c| ColumnInfo {
                name: c.name,
                ty: c.ty.spec_name(),
                required: c.flags & flags::REQUIRED != 0,
                index: c.flags & (flags::INDEX | flags::ADDITIONAL) != 0,
                hidden: c.flags & flags::HIDDEN != 0,
                platforms: (c.visible_on != Platforms::ALL).then(|| names(c.visible_on)),
            })
            .collect(),
    })
}

fn all_names() -> Vec<String> {
    let mut v: Vec<String> = spec().keys().cloned().collect();
    for t in crate::tables::all() {
        if !v.iter().any(|n| n == t.name) {
            v.push(t.name.to_string());
        }
    }
    v.sort();
    v
}

fn or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tables: Vec<TableInfo> = match &args.table {
        Some(t) => vec![
            info(t).ok_or_else(|| anyhow::anyhow!("no table {t:?}; `tend schema` lists them"))?,
        ],
        None => all_names()
            .iter()
            .filter_map(|n| info(n))
            .filter(|t| !args.implemented || !t.tend_platforms.is_empty())
            .collect(),
    };
    if args.format == SchemaFormat::Json {
        println!("{}", serde_json::to_string_pretty(&tables)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.table.is_none() {
        let w = tables.iter().map(|t| t.name.len()).max().unwrap_or(5);
        println!("{:<w$}  {:<22}  TEND", "TABLE", "OSQUERY");
        for t in &tables {
            println!(
                "{:<w$}  {:<22}  {}",
                t.name,
                or_none(&t.osquery_platforms),
                or_none(&t.tend_platforms)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    for t in &tables {
        if let Some(a) = &t.alias_of {
            println!("{} (an alias of {a})", t.name);
        } else {
            println!("{}", t.name);
        }
        println!("  osquery has it on: {}", or_none(&t.osquery_platforms));
        println!("  Tend implements it on: {}", or_none(&t.tend_platforms));
        let w = t.columns.iter().map(|c| c.name.len()).max().unwrap_or(4);
        for c in &t.columns {
            let mut notes = Vec::new();
            if c.required {
                notes.push("required".to_string());
            }
            if c.index {
                notes.push("index".to_string());
            }
            if c.hidden {
                notes.push("hidden".to_string());
            }
            if let Some(p) = &c.platforms {
                notes.push(format!("only on {}", p.join(",")));
            }
            println!("  {:<w$}  {:<15}  {}", c.name, c.ty, notes.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
