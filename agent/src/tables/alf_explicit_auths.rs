//! `alf_explicit_auths`: the processes the macOS firewall explicitly
//! authorises (osquery's `alf_explicit_auths`).
//!
//! As osquery: the `id` of each entry of `explicitauths` in
//! `/Library/Preferences/com.apple.alf.plist` (empty when an entry has none).
//! macOS 15 and later keep no such list, and the table is empty there, as in
//! osquery.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::alf::{alf_plist, uses_system_profiler};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "alf_explicit_auths",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[col::text("process")];

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    if uses_system_profiler(ctx) {
        return Ok(Vec::new());
    }
    Ok(alf_plist(ctx).map(|t| from_plist(&t)).unwrap_or_default())
}

/// osquery's `parseALFExplicitAuthsTree`.
pub fn from_plist(tree: &plist::Dictionary) -> Vec<Row> {
    let auths = tree.get("explicitauths").and_then(plist::Value::as_array);
    auths
        .into_iter()
        .flatten()
        .map(|entry| {
            let id = entry
                .as_dictionary()
                .and_then(|e| darwin::get_text(e, "id"))
                .unwrap_or_default();
            let mut r = RowBuilder::new(COLUMNS);
            r.set("process", id);
            r.build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn sonoma_lists_the_authorised_processes() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine
            .query("SELECT process FROM alf_explicit_auths")
            .unwrap();
        let ids: Vec<&Value> = r.rows.iter().map(|row| &row[0]).collect();
        assert_eq!(ids.len(), 7);
        assert_eq!(ids[0], &Value::Text("org.python.python.app".into()));
        assert_eq!(ids[6], &Value::Text("com.apple.ksh".into()));
    }

    #[test]
    fn sequoia_has_none() {
        let engine = Engine::new(fixture("alf")).unwrap();
        let r = engine.query("SELECT * FROM alf_explicit_auths").unwrap();
        assert!(r.rows.is_empty());
    }
}
