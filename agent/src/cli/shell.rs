//! `tend shell`: an interactive SQL prompt, like `osqueryi`.
//!
//! Statements end with `;` and may span lines. Dot-commands: `.tables
//! [PATTERN]`, `.schema [TABLE]`, `.mode table|json|csv|line`, `.help`,
//! `.quit`. Table names and dot-commands complete with Tab; history is kept
//! in `$XDG_STATE_HOME/tend/history` (or `~/.local/state/tend/history`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};

use super::Target;
use super::output::{Format, render};
use crate::sql::Engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Output format to start with (`.mode` changes it).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

const DOT_COMMANDS: &[&str] = &[".tables", ".schema", ".mode", ".help", ".quit", ".exit"];

const HELP: &str = "\
Enter SQL statements terminated with a \";\".
.tables [PATTERN]    list tables (PATTERN as in LIKE, e.g. %encrypt%)
.schema [TABLE]      show the CREATE statement of a table (or all)
.mode MODE           output as table, json, csv or line
.help                this text
.quit                leave the shell (also .exit or Ctrl-D)
";

struct ShellHelper {
    tables: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        let pool: Box<dyn Iterator<Item = &str>> = if word.starts_with('.') {
            Box::new(DOT_COMMANDS.iter().copied())
        } else {
            Box::new(self.tables.iter().map(String::as_str))
        };
        let matches = pool
            .filter(|c| !word.is_empty() && c.starts_with(word))
            .map(|c| Pair {
                display: c.to_string(),
                replacement: c.to_string(),
            })
            .collect();
        Ok((start, matches))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("tend").join("history"))
}

/// What a line of input asks for.
#[derive(Debug, PartialEq)]
enum Action {
    Sql(String),
    Output(String),
    SetMode(Format),
    Quit,
}

fn table_names(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = crate::sql::schema::spec().keys().cloned().collect();
    names.extend(crate::tables::all().iter().map(|t| t.name.to_string()));
    names.sort();
    names.dedup();
    let _ = engine;
    names
}

fn dot_command(engine: &Engine, line: &str) -> Result<Action, String> {
    let mut parts = line.split_whitespace();
    let cmd = parts.next().unwrap_or("");
    let arg = parts.next();
    match cmd {
        ".quit" | ".exit" => Ok(Action::Quit),
        ".help" => Ok(Action::Output(HELP.to_string())),
        ".tables" => {
            let names = table_names(engine);
            let shown: Vec<String> = names
                .into_iter()
                .filter(|n| {
                    arg.is_none_or(|p| crate::tables::util::sql_like(p, n) || n.contains(p))
                })
                .map(|n| format!("  => {n}\n"))
                .collect();
            Ok(Action::Output(shown.concat()))
        }
        ".schema" => {
            let names = table_names(engine);
            let mut out = String::new();
            for n in names.iter().filter(|n| arg.is_none_or(|a| a == n.as_str())) {
                let sql = format!("SELECT name, type, hidden FROM pragma_table_xinfo('{n}')");
                let Ok(cols) = engine.query(&sql) else {
                    continue;
                };
                let decl: Vec<String> = cols
                    .rows
                    .iter()
                    .map(|r| {
                        let name = super::output::text(&r[0]);
                        let ty = super::output::text(&r[1]);
                        let hidden = if super::output::text(&r[2]) != "0" {
                            " HIDDEN"
                        } else {
                            ""
                        };
                        format!("`{name}` {ty}{hidden}")
                    })
                    .collect();
                out.push_str(&format!("CREATE TABLE {n}({});\n", decl.join(", ")));
            }
            if out.is_empty() {
                return Err(format!("no table {:?}", arg.unwrap_or("")));
            }
            Ok(Action::Output(out))
        }
        ".mode" => {
            let mode = match arg {
                Some("table" | "pretty") => Format::Table,
                Some("json") => Format::Json,
                Some("csv") => Format::Csv,
                Some("line") => Format::Line,
                other => {
                    return Err(format!(
                        "unknown mode {:?}: use table, json, csv or line",
                        other.unwrap_or("")
                    ));
                }
            };
            Ok(Action::SetMode(mode))
        }
        other => Err(format!("unknown command {other}; .help lists them")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(args.target.machine()?).context("opening the SQL engine")?;
    let mut rl: Editor<ShellHelper, DefaultHistory> =
        Editor::new().context("starting the line editor")?;
    rl.set_helper(Some(ShellHelper {
        tables: table_names(&engine),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut format = args.format;
    let mut pending = String::new();
    println!(
        "Tend {} interactive shell. Type .help for help.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let prompt = if pending.is_empty() {
            "tend> "
        } else {
            "  ...> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading input"),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(trimmed);
        let action = if pending.is_empty() && trimmed.starts_with('.') {
            dot_command(&engine, trimmed)
        } else {
            pending.push_str(&line);
            pending.push('\n');
            if !trimmed.ends_with(';') {
                continue;
            }
            Ok(Action::Sql(std::mem::take(&mut pending)))
        };
        match action {
            Ok(Action::Quit) => break,
            Ok(Action::Output(s)) => print!("{s}"),
            Ok(Action::SetMode(m)) => format = m,
            Ok(Action::Sql(sql)) => match engine.query(&sql) {
                Ok(result) => print!("{}", render(&result, format)),
                Err(e) => eprintln!("Error: {e}"),
            },
            Err(e) => eprintln!("Error: {e}"),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}
