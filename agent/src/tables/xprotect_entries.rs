//! `xprotect_entries`: the malware signatures of XProtect's legacy list
//! (osquery's `xprotect_entries`).
//!
//! As osquery: `XProtect.plist` in the first XProtect directory that has one
//! that parses (see `xprotect_meta`). It is an array of entries; each entry's
//! `Description` is `name` and its `LaunchServices`/`LSItemContentType`
//! `launch_type`. Each of its `Matches` becomes a row: `identity` (the
//! SHA-1, data printed as base64 as osquery prints data), `filename` and
//! `filetype` from `MatchFile` (`NSURLNameKey`; `LSDownloadContentTypeKey`,
//! else `NSURLTypeIdentifierKey`), `uses_pattern` when it has a `Pattern`,
//! and `optional` when the entry's `MatchType` is `MatchAny`. A match that
//! has `Matches` of its own is walked instead, with its own `MatchType`; a
//! match without `MatchFile` is skipped.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;
use crate::tables::xprotect_meta::xprotect_plist;

pub static TABLE: TableDef = TableDef {
    name: "xprotect_entries",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("launch_type"),
    col::text("identity"),
    col::text("filename"),
    col::text("filetype"),
    col::integer("optional"),
    col::integer("uses_pattern"),
];

/// The deepest nesting of `Matches` followed.
const MAX_DEPTH: usize = 32;

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let Some(list) = xprotect_plist(ctx, "XProtect.plist") else {
        return Ok(Vec::new());
    };
    Ok(list.as_array().map(|a| rows(a)).unwrap_or_default())
}

/// osquery's rows for the entries of a parsed `XProtect.plist`.
pub fn rows(entries: &[plist::Value]) -> Vec<Row> {
    let mut out = Vec::new();
    for entry in entries.iter().filter_map(plist::Value::as_dictionary) {
        let name = darwin::get_text(entry, "Description").unwrap_or_default();
        let launch_type =
            darwin::get_text(entry, "LaunchServices.LSItemContentType").unwrap_or_default();
        let mut matches = Vec::new();
        collect_matches(entry, &mut matches, 0);
        for mut r in matches {
            r.set("name", name.as_str())
                .set("launch_type", launch_type.as_str());
            out.push(r.build());
        }
    }
    out
}

/// osquery's `genMatches`.
fn collect_matches(entry: &plist::Dictionary, out: &mut Vec<RowBuilder>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(matches) = entry.get("Matches").and_then(plist::Value::as_array) else {
        return;
    };
    let optional = darwin::get_text(entry, "MatchType").as_deref() == Some("MatchAny");
    for m in matches.iter().filter_map(plist::Value::as_dictionary) {
        if m.contains_key("Matches") {
            collect_matches(m, out, depth + 1);
            continue;
        }
        let Some(file) = m.get("MatchFile") else {
            continue;
        };
        let field = |k: &str| {
            file.as_dictionary()
                .and_then(|f| darwin::get_text(f, k))
                .unwrap_or_default()
        };
        let filetype = match file.as_dictionary() {
            Some(f) if f.contains_key("LSDownloadContentTypeKey") => {
                field("LSDownloadContentTypeKey")
            }
            _ => field("NSURLTypeIdentifierKey"),
        };
        let mut r = RowBuilder::new(COLUMNS);
        r.set("optional", i64::from(optional))
            .set(
                "identity",
                darwin::get_text(m, "Identity").unwrap_or_default(),
            )
            .set("filetype", filetype)
            .set("uses_pattern", i64::from(m.contains_key("Pattern")))
            .set("filename", field("NSURLNameKey"));
        out.push(r);
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn entries_and_nested_matches() {
        let engine = Engine::new(fixture("xprotect")).unwrap();
        let r = engine.query("SELECT * FROM xprotect_entries").unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("OSX.Pirrit.A"),
                    t("com.apple.application-bundle"),
                    t("7TqiT8rZmPh7Wl2LYrXk4A3vHxE="),
                    t(""),
                    t("com.apple.application-bundle"),
                    Value::Integer(0),
                    Value::Integer(0),
                ],
                vec![
                    t("OSX.Bundlore.D"),
                    t("com.apple.disk-image-udif"),
                    t(""),
                    t("Installer"),
                    t("public.unix-executable"),
                    Value::Integer(1),
                    Value::Integer(1),
                ],
                vec![
                    t("OSX.Bundlore.D"),
                    t("com.apple.disk-image-udif"),
                    t(""),
                    t(""),
                    t("com.apple.installer-package-archive"),
                    Value::Integer(0),
                    Value::Integer(1),
                ],
            ]
        );
    }
}
