//! `managed_policies`: the preferences configuration profiles (MDM) enforce
//! (osquery's `managed_policies`).
//!
//! As osquery: every property list directly in `/Library/Managed
//! Preferences` applies to the whole machine (`username` empty), and every
//! one in a folder there applies to the user the folder is named after. The
//! file's name without `.plist` is the `domain` (`complete.plist`, the
//! aggregate macOS keeps, is skipped). Each top-level key is a row, in key
//! order: `PayloadUUID` fills `uuid` and `_manualProfile` sets `manual` to 1
//! instead of being rows. Values are printed as osquery prints plist scalars
//! (booleans `1`/`0`); a dictionary or array value is empty text.

use std::collections::BTreeMap;
use std::path::Path;

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "managed_policies",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("domain"),
    col::text("uuid"),
    col::text("name"),
    col::text("value"),
    col::text("username"),
    col::integer("manual"),
];

/// Where macOS caches the preferences profiles install.
pub(crate) const MANAGED_PREFERENCES: &str = "/Library/Managed Preferences";

/// The name of a file without its last extension (boost's `stem`).
fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(0) | None => name,
        Some(i) => &name[..i],
    }
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let root = Path::new(MANAGED_PREFERENCES);
    let Ok(mut entries) = fs.read_dir(root) else {
        return Ok(Vec::new());
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = Vec::new();
    for e in entries.iter().filter(|e| e.kind != FileKind::Dir) {
        policy_rows(ctx, &root.join(&e.name), "", &mut rows);
    }
    for user in entries.iter().filter(|e| e.kind == FileKind::Dir) {
        let dir = root.join(&user.name);
        let Ok(mut files) = fs.read_dir(&dir) else {
            continue;
        };
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for f in files.iter().filter(|f| f.kind != FileKind::Dir) {
            policy_rows(ctx, &dir.join(&f.name), stem(&user.name), &mut rows);
        }
    }
    Ok(rows)
}

/// osquery's `genPolicy`.
fn policy_rows(ctx: &ScanContext<'_>, path: &Path, username: &str, rows: &mut Vec<Row>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let domain = stem(&name);
    if domain == "complete" {
        return;
    }
    let Some(plist::Value::Dictionary(tree)) = darwin::read_plist(ctx, path) else {
        return;
    };
    rows.extend(rows_for(domain, username, &tree));
}

/// The rows of one parsed policy file.
pub fn rows_for(domain: &str, username: &str, tree: &plist::Dictionary) -> Vec<Row> {
    let mut manual = 0;
    let mut uuid = None;
    let mut settings = BTreeMap::new();
    for (key, value) in tree {
        match key.as_str() {
            "_manualProfile" => manual = 1,
            "PayloadUUID" => uuid = Some(darwin::text(value)),
            _ => {
                settings.insert(key.clone(), darwin::text(value));
            }
        }
    }
    settings
        .into_iter()
        .map(|(name, value)| {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("domain", domain)
                .set("username", username)
                .set("manual", manual)
                .set_opt("uuid", uuid.as_deref())
                .set("name", name)
                .set("value", value);
            r.build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn machine_and_user_policies() {
        let engine = Engine::new(fixture("preferences")).unwrap();
        let r = engine
            .query("SELECT domain, uuid, name, value, username, manual FROM managed_policies")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("com.apple.SoftwareUpdate"),
                    t("8D0C3E0A-6F2B-4C36-9E51-2B7B3C8E1F40"),
                    t("AutomaticCheckEnabled"),
                    t("1"),
                    t(""),
                    Value::Integer(0)
                ],
                vec![
                    t("com.apple.SoftwareUpdate"),
                    t("8D0C3E0A-6F2B-4C36-9E51-2B7B3C8E1F40"),
                    t("AutomaticDownload"),
                    t("1"),
                    t(""),
                    Value::Integer(0)
                ],
                vec![
                    t("com.apple.screensaver"),
                    Value::Null,
                    t("askForPassword"),
                    t("1"),
                    t("alice"),
                    Value::Integer(1)
                ],
                vec![
                    t("com.apple.screensaver"),
                    Value::Null,
                    t("askForPasswordDelay"),
                    t("5"),
                    t("alice"),
                    Value::Integer(1)
                ],
            ]
        );
    }
}
