//! `patches`: the hotfixes (KB updates) Windows lists as installed
//! (osquery's `patches`), from WMI `Win32_QuickFixEngineering` in
//! `ROOT\CIMV2`, as osquery reads them.
//!
//! One row per instance: `CSName`, `HotFixID`, `Caption` (the KB's support
//! URL), `Description` (`Update`, `Security Update`, ...), `FixComments`,
//! `InstalledBy`, `InstallDate` and `InstalledOn` (the date as WMI gives it,
//! `1/9/2024` in US format), each `""` when WMI has no value. Like WMI, this
//! does not list updates installed by MSI or feature updates.

use super::wmi;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "patches",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("csname"),
    col::text("hotfix_id"),
    col::text("caption"),
    col::text("description"),
    col::text("fix_comments"),
    col::text("installed_by"),
    col::text("install_date"),
    col::text("installed_on"),
];

pub const QUERY: &str = "select * from Win32_QuickFixEngineering";

/// (WMI property, column).
const FIELDS: [(&str, &str); 8] = [
    ("CSName", "csname"),
    ("HotFixID", "hotfix_id"),
    ("Caption", "caption"),
    ("Description", "description"),
    ("FixComments", "fix_comments"),
    ("InstalledBy", "installed_by"),
    ("InstallDate", "install_date"),
    ("InstalledOn", "installed_on"),
];

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    // osquery returns no rows when the query fails.
    let fixes = ctx
        .machine
        .wmi
        .query("ROOT\\CIMV2", QUERY)
        .unwrap_or_default();
    Ok(fixes
        .iter()
        .map(|f| {
            let mut r = RowBuilder::new(COLUMNS);
            for (property, column) in FIELDS {
                r.set(column, wmi::string_or_empty(f, property));
            }
            r.build()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn reads_recorded_hotfixes() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/patches"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query("SELECT * FROM patches ORDER BY hotfix_id")
            .unwrap();
        assert_eq!(res.rows.len(), 3);
        let t = |i: usize, c: &str| match res.get(i, c) {
            Some(Value::Text(s)) => s.clone(),
            other => panic!("{c}: {other:?}"),
        };
        assert_eq!(t(0, "hotfix_id"), "KB5032007");
        assert_eq!(t(0, "csname"), "WS-042");
        assert_eq!(
            t(0, "caption"),
            "https://support.microsoft.com/help/5032007"
        );
        assert_eq!(t(1, "description"), "Security Update");
        assert_eq!(t(1, "installed_by"), "NT AUTHORITY\\SYSTEM");
        assert_eq!(t(1, "installed_on"), "1/10/2024");
        assert_eq!(t(1, "install_date"), "");
        assert_eq!(t(1, "fix_comments"), "");
    }
}
