//! `launchd`: launch daemons and agents from their property lists (osquery's
//! `launchd`).
//!
//! As osquery: every file in `/System/Library/LaunchDaemons`,
//! `/Library/LaunchDaemons`, `/System/Library/LaunchAgents`,
//! `/Library/LaunchAgents`, `/Library/Apple/System/Library/LaunchDaemons`,
//! `/Library/Apple/System/Library/LaunchAgents` and each home's
//! `Library/LaunchAgents` (homes as `darwin::home_directories` finds them)
//! that parses as a property list is a row. `path = ...` skips the others.
//! The plist's string keys fill their columns as text (booleans `1`/`0`, a
//! dictionary such as a conditional `KeepAlive` empty text, missing keys
//! empty text); `ProgramArguments`, `WatchPaths` and `QueueDirectories` are
//! their elements joined with spaces, NULL when the key is missing.

use std::path::{Path, PathBuf};

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;
use crate::tables::util::paths;

pub static TABLE: TableDef = TableDef {
    name: "launchd",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").index(),
    col::text("name"),
    col::text("label"),
    col::text("program"),
    col::text("run_at_load"),
    col::text("keep_alive"),
    col::text("on_demand"),
    col::text("disabled"),
    col::text("username"),
    col::text("groupname"),
    col::text("stdout_path"),
    col::text("stderr_path"),
    col::text("start_interval"),
    col::text("program_arguments"),
    col::text("watch_paths"),
    col::text("queue_directories"),
    col::text("inetd_compatibility"),
    col::text("start_on_mount"),
    col::text("root_directory"),
    col::text("working_directory"),
    col::text("process_type"),
];

const SEARCH_DIRS: &[&str] = &[
    "/System/Library/LaunchDaemons",
    "/Library/LaunchDaemons",
    "/System/Library/LaunchAgents",
    "/Library/LaunchAgents",
    "/Library/Apple/System/Library/LaunchDaemons",
    "/Library/Apple/System/Library/LaunchAgents",
];

const STRING_KEYS: &[(&str, &str)] = &[
    ("Label", "label"),
    ("RunAtLoad", "run_at_load"),
    ("KeepAlive", "keep_alive"),
    ("StandardOutPath", "stdout_path"),
    ("StandardErrorPath", "stderr_path"),
    ("inetdCompatibility", "inetd_compatibility"),
    ("StartInterval", "start_interval"),
    ("Program", "program"),
    ("StartOnMount", "start_on_mount"),
    ("OnDemand", "on_demand"),
    ("Disabled", "disabled"),
    ("UserName", "username"),
    ("GroupName", "groupname"),
    ("RootDirectory", "root_directory"),
    ("WorkingDirectory", "working_directory"),
    ("ProcessType", "process_type"),
];

const ARRAY_KEYS: &[(&str, &str)] = &[
    ("ProgramArguments", "program_arguments"),
    ("WatchPaths", "watch_paths"),
    ("QueueDirectories", "queue_directories"),
];

/// The files (not folders) directly in `dir`, sorted.
fn files_in(ctx: &ScanContext<'_>, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(mut entries) = ctx.machine.fs.read_dir(dir) else {
        return;
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(
        entries
            .into_iter()
            .filter(|e| e.kind != FileKind::Dir)
            .map(|e| paths::join(dir, e.name)),
    );
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut files = Vec::new();
    for dir in SEARCH_DIRS {
        files_in(ctx, Path::new(dir), &mut files);
    }
    for home in darwin::home_directories(ctx) {
        files_in(ctx, &paths::join(&home, "Library/LaunchAgents"), &mut files);
    }
    let wanted = constraints.eq("path");
    let mut rows = Vec::new();
    for path in files {
        if !wanted.is_empty() && !wanted.iter().any(|w| Path::new(w) == path) {
            continue;
        }
        ctx.check_deadline()?;
        if let Some(plist::Value::Dictionary(tree)) = darwin::read_plist(ctx, &path) {
            rows.push(row(&path, &tree));
        }
    }
    Ok(rows)
}

/// osquery's `genLaunchdItem`.
pub fn row(path: &Path, tree: &plist::Dictionary) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("path", path.to_string_lossy().into_owned())
        .set("name", paths::file_name(path).unwrap_or_default());
    for (key, column) in STRING_KEYS {
        r.set(column, darwin::get_text(tree, key).unwrap_or_default());
    }
    for (key, column) in ARRAY_KEYS {
        let Some(v) = tree.get(key) else { continue };
        let joined = match v {
            plist::Value::Array(items) => {
                items.iter().map(darwin::text).collect::<Vec<_>>().join(" ")
            }
            _ => String::new(),
        };
        r.set(column, joined);
    }
    r.build()
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn daemons_and_agents() {
        let engine = Engine::new(fixture("launchd")).unwrap();
        let r = engine
            .query("SELECT path, label, program, program_arguments, run_at_load, keep_alive, start_interval, watch_paths FROM launchd")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("/Library/LaunchDaemons/com.microsoft.autoupdate.helper.plist"),
                    t("com.microsoft.autoupdate.helper"),
                    t(""),
                    t(
                        "/Library/Application Support/Microsoft/MAU2.0/Microsoft AutoUpdate.app/Contents/MacOS/Microsoft Update Assistant.app/Contents/MacOS/Microsoft Update Assistant"
                    ),
                    t(""),
                    t(""),
                    t(""),
                    Value::Null,
                ],
                vec![
                    t("/Library/LaunchDaemons/org.example.backup.plist"),
                    t("org.example.backup"),
                    t("/usr/local/bin/backup"),
                    Value::Null,
                    t("1"),
                    t(""),
                    t("3600"),
                    t("/etc/backup.conf /usr/local/etc/backup.d"),
                ],
                vec![
                    t("/Users/alice/Library/LaunchAgents/com.example.agent.plist"),
                    t("com.example.agent"),
                    t(""),
                    t("/Users/alice/bin/agent --serve"),
                    t("0"),
                    t("1"),
                    t(""),
                    Value::Null,
                ],
            ]
        );
    }

    #[test]
    fn path_constraint() {
        let engine = Engine::new(fixture("launchd")).unwrap();
        let r = engine
            .query("SELECT label FROM launchd WHERE path = '/Library/LaunchDaemons/org.example.backup.plist'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("org.example.backup")]]);
    }
}
