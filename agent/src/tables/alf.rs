//! `alf`: the settings of the macOS Application Layer Firewall (osquery's
//! `alf`).
//!
//! Where the settings come from depends on the macOS version, as in osquery
//! (the major version in `SystemVersion.plist` decides):
//!
//! - Up to macOS 14: the top-level keys of
//!   `/Library/Preferences/com.apple.alf.plist`. `globalstate`,
//!   `allowsignedenabled`, `firewallunload`, `loggingenabled`,
//!   `loggingoption` and `stealthenabled` are integers, -1 when the key is
//!   missing; `version` is text, empty when missing. A plist that is missing
//!   or does not parse gives no row.
//! - macOS 15 and later, which no longer keep that file: System
//!   Information's firewall report, which osquery reads through the
//!   `SPFirewallDataType` reporter and Tend through
//!   `system_profiler -xml SPFirewallDataType` (the same dictionary).
//!   `spfirewall_globalstate` is `spfirewall_globalstate_allow_all` (0),
//!   `..._limit_connections` (1) or `..._block_all` (2);
//!   `spfirewall_stealthenabled` and `spfirewall_loggingenabled` are
//!   `Yes`/`No`; `version` is the reporter's version. The other columns are
//!   NULL there, as in osquery.
//!
//! Tend does not parse `socketfilterfw --getglobalstate` and friends:
//! osquery does not use them, and their wording changes between releases.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "alf",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("allow_signed_enabled"),
    col::integer("firewall_unload"),
    col::integer("global_state"),
    col::integer("logging_enabled"),
    col::integer("logging_option"),
    col::integer("stealth_enabled"),
    col::text("version"),
];

/// The firewall's preferences, up to macOS 14.
pub(crate) const ALF_PLIST: &str = "/Library/Preferences/com.apple.alf.plist";

/// The System Information data type of the firewall (macOS 15 and later).
pub(crate) const FIREWALL_DATA_TYPE: &str = "SPFirewallDataType";

/// The plist's integer keys and their columns.
const INT_KEYS: &[(&str, &str)] = &[
    ("allowsignedenabled", "allow_signed_enabled"),
    ("firewallunload", "firewall_unload"),
    ("globalstate", "global_state"),
    ("loggingenabled", "logging_enabled"),
    ("loggingoption", "logging_option"),
    ("stealthenabled", "stealth_enabled"),
];

/// Whether this Mac keeps the firewall's settings out of `com.apple.alf.plist`
/// (macOS 15 and later). An unknown version counts as older, as osquery's
/// string comparison of an empty major version does.
pub(crate) fn uses_system_profiler(ctx: &ScanContext<'_>) -> bool {
    darwin::major_version(ctx).is_some_and(|major| major >= 15)
}

/// The parsed `com.apple.alf.plist`, when it exists and is a dictionary.
pub(crate) fn alf_plist(ctx: &ScanContext<'_>) -> Option<plist::Dictionary> {
    darwin::read_plist(ctx, Path::new(ALF_PLIST))?.into_dictionary()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    if uses_system_profiler(ctx) {
        return Ok(darwin::system_profiler(ctx, FIREWALL_DATA_TYPE)
            .map(|report| vec![from_report(&report)])
            .unwrap_or_default());
    }
    Ok(alf_plist(ctx)
        .map(|tree| vec![from_plist(&tree)])
        .unwrap_or_default())
}

/// osquery's `parseALFTree`.
pub fn from_plist(tree: &plist::Dictionary) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    for (key, column) in INT_KEYS {
        r.set(column, darwin::get_int(tree, key).unwrap_or(-1));
    }
    r.set(
        "version",
        darwin::get_text(tree, "version").unwrap_or_default(),
    );
    r.build()
}

/// osquery's `genALFFromSystemProfiler`.
pub fn from_report(report: &plist::Dictionary) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    let version = report
        .get("_versionInfo")
        .and_then(plist::Value::as_dictionary)
        .and_then(|v| darwin::string(v, "com.apple.SystemProfiler.SPFirewallReporter"));
    r.set_opt("version", version);
    let Some(item) = darwin::last_item(report) else {
        return r.build();
    };
    let state = match darwin::string(item, "spfirewall_globalstate") {
        Some("spfirewall_globalstate_limit_connections") => Some(1),
        Some("spfirewall_globalstate_block_all") => Some(2),
        Some("spfirewall_globalstate_allow_all") => Some(0),
        _ => None,
    };
    r.set_opt("global_state", state);
    let yes_no = |key: &str| match darwin::string(item, key) {
        Some("Yes") => Some(1),
        Some("No") => Some(0),
        _ => None,
    };
    r.set_opt("stealth_enabled", yes_no("spfirewall_stealthenabled"))
        .set_opt("logging_enabled", yes_no("spfirewall_loggingenabled"));
    r.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    fn int(i: i64) -> Value {
        Value::Integer(i)
    }

    #[test]
    fn sonoma_reads_the_plist() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM alf").unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                int(1),
                int(0),
                int(1),
                int(1),
                int(0),
                int(0),
                Value::Text("1.6".into())
            ]]
        );
        let off = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = off
            .query("SELECT global_state, stealth_enabled FROM alf")
            .unwrap();
        assert_eq!(r.rows, vec![vec![int(0), int(0)]]);
    }

    #[test]
    fn sequoia_reads_system_information() {
        let engine = Engine::new(fixture("alf")).unwrap();
        let r = engine.query("SELECT * FROM alf").unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                Value::Null,
                Value::Null,
                int(2),
                int(1),
                Value::Null,
                int(1),
                Value::Text("1.0".into())
            ]]
        );
    }

    #[test]
    fn missing_keys_are_minus_one() {
        let tree = darwin::parse_plist(
            b"<plist version=\"1.0\"><dict><key>globalstate</key><integer>1</integer></dict></plist>",
        )
        .and_then(plist::Value::into_dictionary)
        .unwrap();
        let row = from_plist(&tree);
        assert_eq!(row[2], int(1));
        assert_eq!(row[0], int(-1));
        assert_eq!(row[6], Value::Text(String::new()));
    }
}
