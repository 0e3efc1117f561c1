//! `gatekeeper`: whether Gatekeeper assesses software, and its data versions
//! (osquery's `gatekeeper`).
//!
//! The same files osquery reads:
//!
//! - `assessments_enabled` and `dev_id_enabled`:
//!   `/var/db/SystemPolicy-prefs.plist` (written by `spctl --master-disable`
//!   and System Settings). No file, or no rows in it, means Gatekeeper is
//!   fully on (both 1). Its `enabled` key set to `yes` means assessments are
//!   on, and then `dev_id_enabled` is 0 if the `Developer ID` authority is
//!   disabled in the policy database `/var/db/SystemPolicy` (SQLite, opened
//!   read-only through the recording's copy), 1 otherwise; a database that
//!   cannot be opened also gives 0, as in osquery. Any other key or value in
//!   the plist sets both to 0 (osquery's loop over the plist's rows).
//! - `version` and `opaque_version`: `CFBundleShortVersionString` of
//!   `/var/db/gke.bundle/Contents/version.plist` and
//!   `/var/db/gkopaque.bundle/Contents/version.plist`, empty when the file is
//!   missing (those bundles are gone on recent macOS).
//!
//! osquery does not run `spctl --status`, and neither does Tend: it prints
//! the same setting the plist holds.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, Value, col,
};
use crate::tables::plist::{parse, rows_of};

pub static TABLE: TableDef = TableDef {
    name: "gatekeeper",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("assessments_enabled"),
    col::integer("dev_id_enabled"),
    col::text("version"),
    col::text("opaque_version"),
];

const STATUS_PLIST: &str = "/var/db/SystemPolicy-prefs.plist";
const GKE_VERSION: &str = "/var/db/gke.bundle/Contents/version.plist";
const OPAQUE_VERSION: &str = "/var/db/gkopaque.bundle/Contents/version.plist";
const POLICY_DB: &str = "/var/db/SystemPolicy";

/// (key, value) of each row the `plist` table gives for a file.
fn plist_rows(ctx: &ScanContext<'_>, path: &str) -> Vec<(String, String)> {
    let Ok(bytes) = ctx.machine.fs.read(Path::new(path)) else {
        return Vec::new();
    };
    let Some(tree) = parse(&bytes) else {
        return Vec::new();
    };
    rows_of(Path::new(path), &tree)
        .into_iter()
        .map(|r| {
            let text = |v: &Value| match v {
                Value::Text(s) => s.clone(),
                _ => String::new(),
            };
            (text(&r[0]), text(&r[2]))
        })
        .collect()
}

/// Whether the `Developer ID` authority is enabled in the policy database.
fn dev_id_enabled(ctx: &ScanContext<'_>) -> bool {
    let fs = ctx.machine.fs.as_ref();
    // Read it through the seam first, so that a recording captures the file.
    if fs.read(Path::new(POLICY_DB)).is_err() {
        return false;
    }
    let Some(host) = fs.host_path(Path::new(POLICY_DB)) else {
        return false;
    };
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(db) = rusqlite::Connection::open_with_flags(host, flags) else {
        return false;
    };
    let Ok(mut stmt) = db.prepare("SELECT disabled FROM authority WHERE label = 'Developer ID'")
    else {
        return false;
    };
    let Ok(values) = stmt.query_map([], |row| row.get::<_, Option<i64>>(0)) else {
        return false;
    };
    let mut enabled = true;
    for v in values {
        match v {
            Ok(Some(1)) => enabled = false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    enabled
}

/// `CFBundleShortVersionString` of a version plist: "" when the file has no rows.
fn bundle_version(ctx: &ScanContext<'_>, path: &str) -> Option<String> {
    let rows = plist_rows(ctx, path);
    if rows.is_empty() {
        return Some(String::new());
    }
    rows.into_iter()
        .filter(|(k, _)| k == "CFBundleShortVersionString")
        .map(|(_, v)| v)
        .next_back()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut r = RowBuilder::new(COLUMNS);
    let status = plist_rows(ctx, STATUS_PLIST);
    if status.is_empty() {
        r.set("assessments_enabled", 1).set("dev_id_enabled", 1);
    }
    for (key, value) in &status {
        if key == "enabled" && value == "yes" {
            r.set("assessments_enabled", 1)
                .set("dev_id_enabled", i64::from(dev_id_enabled(ctx)));
        } else {
            r.set("assessments_enabled", 0).set("dev_id_enabled", 0);
        }
    }
    r.set_opt("version", bundle_version(ctx, GKE_VERSION))
        .set_opt("opaque_version", bundle_version(ctx, OPAQUE_VERSION));
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn no_prefs_file_means_fully_on() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM gatekeeper").unwrap();
        assert_eq!(
            r.rows,
            vec![vec![Value::Integer(1), Value::Integer(1), t(""), t("")]]
        );
    }

    #[test]
    fn master_disable_turns_it_off() {
        let engine = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = engine
            .query("SELECT assessments_enabled, dev_id_enabled FROM gatekeeper")
            .unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(0), Value::Integer(0)]]);
    }

    #[test]
    fn developer_id_from_the_policy_database() {
        let engine = Engine::new(fixture("gatekeeper")).unwrap();
        let r = engine.query("SELECT * FROM gatekeeper").unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                Value::Integer(1),
                Value::Integer(0),
                t("181"),
                t("1.0")
            ]]
        );
    }
}
