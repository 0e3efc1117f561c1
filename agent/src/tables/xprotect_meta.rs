//! `xprotect_meta`: the browser extensions and plugins XProtect blocks, with
//! their minimum versions (osquery's `xprotect_meta`).
//!
//! As osquery: `XProtect.meta.plist` in the first of
//! `/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Resources`
//! (macOS 10.15 and later) and
//! `/System/Library/CoreServices/CoreTypes.bundle/Contents/Resources` that
//! has one that parses. `JavaWebComponentVersionMinimum` is one `java`
//! plugin row; each entry of `ExtensionBlacklist`'s `Extensions` is an
//! `extension` row (`CFBundleIdentifier`, `Developer Identifier`); each
//! plugin of each category of `PlugInBlacklist` is a `plugin` row with its
//! `MinimumPlugInBundleVersion`.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "xprotect_meta",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("identifier"),
    col::text("type"),
    col::text("developer_id"),
    col::text("min_version"),
];

/// Where XProtect keeps its data, newest location first (osquery's order).
pub(crate) const XPROTECT_DIRS: &[&str] = &[
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Resources",
    "/System/Library/CoreServices/CoreTypes.bundle/Contents/Resources",
];

/// The first of XProtect's directories with `file` as a parsable property list.
pub(crate) fn xprotect_plist(ctx: &ScanContext<'_>, file: &str) -> Option<plist::Value> {
    XPROTECT_DIRS
        .iter()
        .find_map(|dir| darwin::read_plist(ctx, &Path::new(dir).join(file)))
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let Some(meta) = xprotect_plist(ctx, "XProtect.meta.plist") else {
        return Ok(Vec::new());
    };
    Ok(meta.as_dictionary().map(rows).unwrap_or_default())
}

/// osquery's rows for a parsed `XProtect.meta.plist`.
pub fn rows(meta: &plist::Dictionary) -> Vec<Row> {
    let mut out = Vec::new();
    for (key, value) in meta {
        match key.as_str() {
            "JavaWebComponentVersionMinimum" => {
                let mut r = RowBuilder::new(COLUMNS);
                r.set("identifier", "java")
                    .set("min_version", darwin::text(value))
                    .set("type", "plugin");
                out.push(r.build());
            }
            "ExtensionBlacklist" => {
                let extensions = value
                    .as_dictionary()
                    .and_then(|d| d.get("Extensions"))
                    .and_then(plist::Value::as_array);
                for ext in extensions.into_iter().flatten() {
                    let ext = ext.as_dictionary();
                    let field =
                        |k: &str| ext.and_then(|e| darwin::get_text(e, k)).unwrap_or_default();
                    let mut r = RowBuilder::new(COLUMNS);
                    r.set("identifier", field("CFBundleIdentifier"))
                        .set("developer_id", field("Developer Identifier"))
                        .set("type", "extension");
                    out.push(r.build());
                }
            }
            "PlugInBlacklist" => {
                let categories = value.as_dictionary();
                for (_, category) in categories.into_iter().flatten() {
                    let plugins = category.as_dictionary();
                    for (id, plugin) in plugins.into_iter().flatten() {
                        let min = plugin
                            .as_dictionary()
                            .and_then(|p| darwin::get_text(p, "MinimumPlugInBundleVersion"))
                            .unwrap_or_default();
                        let mut r = RowBuilder::new(COLUMNS);
                        r.set("identifier", id.as_str())
                            .set("min_version", min)
                            .set("type", "plugin")
                            .set("developer_id", "");
                        out.push(r.build());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn meta_rows() {
        let engine = Engine::new(fixture("xprotect")).unwrap();
        let r = engine.query("SELECT * FROM xprotect_meta").unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("com.cliqz.safari"),
                    t("extension"),
                    t("WCJF4G7E36"),
                    Value::Null
                ],
                vec![t("com.mac.flashmall"), t("extension"), t(""), Value::Null],
                vec![t("java"), t("plugin"), Value::Null, t("1.8.0_361")],
                vec![
                    t("com.macromedia.Flash Player.plugin"),
                    t("plugin"),
                    t(""),
                    t("32.0.0.465")
                ],
                vec![
                    t("com.oracle.java.JavaAppletPlugin"),
                    t("plugin"),
                    t(""),
                    t("1.8.361.09")
                ],
            ]
        );
    }
}
