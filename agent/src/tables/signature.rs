//! `signature`: the code signature of files and bundles (osquery's
//! `signature`).
//!
//! osquery asks the Security framework; Tend runs `codesign`, which reports
//! the same facts from the same framework:
//!
//! - `signed`: whether `codesign --verify --strict --deep
//!   --all-architectures` accepts the code (osquery's
//!   `kSecCSStrictValidate | kSecCSCheckAllArchitectures |
//!   kSecCSCheckNestedCode`), with `--ignore-resources` when
//!   `hash_resources = 0` (`kSecCSDoNotValidateResources`).
//! - `identifier`, `cdhash`, `team_identifier`, `authority`: the
//!   `Identifier=`, `CDHash=`, `TeamIdentifier=` (empty for `not set`) and
//!   first `Authority=` (the leaf certificate's common name) lines of
//!   `codesign -dvvv`. Code without a signature has an empty identifier and
//!   NULL for the rest, as in osquery.
//! - `entitlements`: the entitlements `codesign -d --entitlements - --xml`
//!   prints (the same run), as a JSON object; NULL when there are none.
//!   osquery's exact JSON spelling of them is not known to Tend.
//!
//! As osquery, each existing path gets a row for the default architecture
//! (`arch` empty) and one per architecture of a universal binary among
//! `arm`, `arm64`, `i386`, `ppc` and `x86_64` (`arm64e` code answers to
//! `arm64`); the architectures are read from `codesign`'s `Format=` line,
//! and each row runs `codesign` with `--architecture`. `path` is required (`=` or
//! `LIKE`). `hash_executable` is echoed: `codesign` offers no way to skip
//! checking the executable.

use std::path::PathBuf;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;
use crate::tables::util::paths::constrained_paths;

pub static TABLE: TableDef = TableDef {
    name: "signature",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").required().index().optimized(),
    col::integer("hash_resources").additional(),
    col::integer("hash_executable").additional(),
    col::text("arch"),
    col::integer("signed"),
    col::text("identifier"),
    col::text("cdhash"),
    col::text("team_identifier"),
    col::text("authority"),
    col::text("entitlements"),
];

const CODESIGN: &str = "/usr/bin/codesign";

/// The architectures osquery checks besides the default one, in its order.
const ARCHES: &[&str] = &["arm", "arm64", "i386", "ppc", "x86_64"];

/// What `codesign -dvvv` reports.
#[derive(Debug, Default, PartialEq)]
pub struct Display {
    pub identifier: Option<String>,
    pub cdhash: Option<String>,
    pub team_identifier: Option<String>,
    pub authority: Option<String>,
    /// The architectures of the `Format=` line (`Mach-O universal (x86_64 arm64e)`).
    pub arches: Vec<String>,
}

/// Parses `codesign -dvvv` output (it prints to stderr).
pub fn parse_display(text: &str) -> Display {
    let mut d = Display::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "Identifier" => d.identifier = Some(value.to_string()),
            "CDHash" => d.cdhash = Some(value.to_string()),
            "TeamIdentifier" => {
                d.team_identifier = Some(if value == "not set" {
                    String::new()
                } else {
                    value.to_string()
                });
            }
            "Authority" if d.authority.is_none() => d.authority = Some(value.to_string()),
            "Format" => {
                if let Some((_, archs)) = value.rsplit_once('(') {
                    d.arches = archs
                        .trim_end_matches(')')
                        .split_whitespace()
                        .map(String::from)
                        .collect();
                }
            }
            _ => {}
        }
    }
    d
}

/// The entitlements XML `codesign` prints on stdout, as compact JSON.
pub fn entitlements_json(xml: &str) -> Option<String> {
    let v = darwin::parse_plist(xml.trim().as_bytes())?;
    let dict = v.as_dictionary()?;
    Some(serde_json::Value::Object(to_json_object(dict)).to_string())
}

fn to_json_object(d: &plist::Dictionary) -> serde_json::Map<String, serde_json::Value> {
    d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}

fn to_json(v: &plist::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        plist::Value::Dictionary(d) => J::Object(to_json_object(d)),
        plist::Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        plist::Value::Boolean(b) => J::Bool(*b),
        plist::Value::Integer(i) => i
            .as_signed()
            .map(J::from)
            .or_else(|| i.as_unsigned().map(J::from))
            .unwrap_or(J::Null),
        plist::Value::Real(f) => J::from(*f),
        other => J::String(darwin::text(other)),
    }
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let hash_resources = constraints
        .eq("hash_resources")
        .first()
        .is_none_or(|v| v != "0");
    let hash_executable = constraints
        .eq("hash_executable")
        .first()
        .is_none_or(|v| v != "0");
    let paths: Vec<PathBuf> = constrained_paths(ctx, constraints, "path", None)?;
    let mut rows = Vec::new();
    for path in paths {
        ctx.check_deadline()?;
        if !ctx.machine.fs.exists(&path) {
            continue;
        }
        let path = path.to_string_lossy().into_owned();
        let Some(default) = signature(ctx, &path, None, hash_resources, hash_executable) else {
            continue;
        };
        let arches = default.1.arches.clone();
        rows.push(default.0);
        for arch in ARCHES {
            let present = arches
                .iter()
                .any(|a| a == arch || (*arch == "arm64" && a == "arm64e"));
            if !present {
                continue;
            }
            if let Some((row, _)) =
                signature(ctx, &path, Some(arch), hash_resources, hash_executable)
            {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// One row: the signature of `path`, for one architecture or the default one.
fn signature(
    ctx: &ScanContext<'_>,
    path: &str,
    arch: Option<&str>,
    hash_resources: bool,
    hash_executable: bool,
) -> Option<(Row, Display)> {
    let mut display_args = vec!["-dvvv", "--entitlements", "-", "--xml"];
    let mut verify_args = vec!["--verify", "--strict", "--deep", "--all-architectures"];
    if !hash_resources {
        verify_args.push("--ignore-resources");
    }
    if let Some(a) = arch {
        display_args.extend(["--architecture", a]);
        verify_args.extend(["--architecture", a]);
    }
    display_args.push(path);
    verify_args.push(path);
    let shown = darwin::run(ctx, CODESIGN, &display_args)?;
    let display = parse_display(&shown.stderr);
    if arch.is_some() && display.identifier.is_none() {
        // osquery has no row for an architecture the file does not hold.
        return None;
    }
    let signed = darwin::run(ctx, CODESIGN, &verify_args).is_some_and(|o| o.status == 0);
    let mut r = RowBuilder::new(COLUMNS);
    r.set("path", path)
        .set("hash_resources", i64::from(hash_resources))
        .set("hash_executable", i64::from(hash_executable))
        .set("arch", arch.unwrap_or(""))
        .set("signed", i64::from(signed))
        .set("identifier", display.identifier.clone().unwrap_or_default());
    if display.identifier.is_some() {
        r.set("cdhash", display.cdhash.clone().unwrap_or_default())
            .set(
                "team_identifier",
                display.team_identifier.clone().unwrap_or_default(),
            )
            .set("authority", display.authority.clone().unwrap_or_default())
            .set_opt("entitlements", entitlements_json(&shown.stdout));
    }
    Some((r.build(), display))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn parses_codesign_display() {
        let d = parse_display(
            "Executable=/bin/ls\nIdentifier=com.apple.ls\nFormat=Mach-O universal (x86_64 arm64e)\nCDHash=3a1f\nAuthority=Software Signing\nAuthority=Apple Root CA\nTeamIdentifier=not set\n",
        );
        assert_eq!(d.identifier.as_deref(), Some("com.apple.ls"));
        assert_eq!(d.authority.as_deref(), Some("Software Signing"));
        assert_eq!(d.team_identifier.as_deref(), Some(""));
        assert_eq!(d.arches, vec!["x86_64", "arm64e"]);
    }

    #[test]
    fn entitlements_as_json() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>com.apple.security.app-sandbox</key><true/><key>com.apple.security.application-groups</key><array><string>EQHXZ8M8AV.group</string></array></dict></plist>"#;
        assert_eq!(
            entitlements_json(xml).as_deref(),
            Some(
                r#"{"com.apple.security.app-sandbox":true,"com.apple.security.application-groups":["EQHXZ8M8AV.group"]}"#
            )
        );
        assert_eq!(entitlements_json(""), None);
    }

    #[test]
    fn universal_apple_binary_and_unsigned_file() {
        let engine = Engine::new(fixture("signature")).unwrap();
        let r = engine
            .query("SELECT path, arch, signed, identifier, cdhash, team_identifier, authority FROM signature WHERE path IN ('/bin/ls', '/usr/local/bin/tool')")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("/bin/ls"),
                    t(""),
                    Value::Integer(1),
                    t("com.apple.ls"),
                    t("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"),
                    t(""),
                    t("Software Signing")
                ],
                vec![
                    t("/bin/ls"),
                    t("arm64"),
                    Value::Integer(1),
                    t("com.apple.ls"),
                    t("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"),
                    t(""),
                    t("Software Signing")
                ],
                vec![
                    t("/bin/ls"),
                    t("x86_64"),
                    Value::Integer(1),
                    t("com.apple.ls"),
                    t("a1b5d3c7e9f20468ac13579bdf02468ace13579b"),
                    t(""),
                    t("Software Signing")
                ],
                vec![
                    t("/usr/local/bin/tool"),
                    t(""),
                    Value::Integer(0),
                    t(""),
                    Value::Null,
                    Value::Null,
                    Value::Null
                ],
            ]
        );
    }

    #[test]
    fn path_is_required() {
        let engine = Engine::new(fixture("signature")).unwrap();
        assert!(engine.query("SELECT * FROM signature").is_err());
    }
}
