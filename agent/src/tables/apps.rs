//! `apps`: application bundles and their `Info.plist` properties (osquery's
//! `apps`).
//!
//! osquery asks LaunchServices for every registered application and falls
//! back to walking folders when that fails. Tend cannot read the
//! LaunchServices database, so it walks folders: the `.app` bundles directly
//! in `/Applications`, `/Applications/Utilities`, `/System/Applications`,
//! `/System/Applications/Utilities`, `/System/Library/CoreServices/Applications`,
//! `/Library/Apple/System/Library/CoreServices` and
//! `/Users/Shared/Applications`, and in each home's `Applications`, `Desktop`
//! and `Downloads` (osquery's fallback folders, with its misspelt
//! `Core Services` corrected and the `/System/Applications` folders where
//! macOS 10.15 and later keep the bundled apps). Bundles elsewhere that
//! LaunchServices knows are not found. `path = ...` reads just the bundles
//! named.
//!
//! Each bundle with a `Contents/Info.plist` that parses is a row: `name` is
//! the bundle's folder name, and the other text columns are the Info.plist
//! keys osquery maps, as text (empty when missing; a dictionary such as
//! `LSEnvironment` is empty text), with `true`/`YES`/`Yes` turned into `1`
//! and `false`/`NO`/`No` into `0`. `last_opened_time` is Spotlight's
//! `kMDItemLastUsedDate` in Unix seconds, -1 when Spotlight has none, read
//! for all bundles with one `mdls -raw -name kMDItemLastUsedDate ...`
//! (osquery asks the same attribute through `MDItemCopyAttribute`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;
use crate::tables::util::paths;

pub static TABLE: TableDef = TableDef {
    name: "apps",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("path").index().optimized(),
    col::text("bundle_executable"),
    col::text("bundle_identifier"),
    col::text("bundle_name"),
    col::text("bundle_short_version"),
    col::text("bundle_version"),
    col::text("bundle_package_type"),
    col::text("environment"),
    col::text("element"),
    col::text("compiler"),
    col::text("development_region"),
    col::text("display_name"),
    col::text("info_string"),
    col::text("minimum_system_version"),
    col::text("category"),
    col::text("applescript_enabled"),
    col::text("copyright"),
    col::double("last_opened_time"),
];

/// The Info.plist keys osquery maps to columns.
const KEYS: &[(&str, &str)] = &[
    ("CFBundleExecutable", "bundle_executable"),
    ("CFBundleIdentifier", "bundle_identifier"),
    ("CFBundleName", "bundle_name"),
    ("CFBundleShortVersionString", "bundle_short_version"),
    ("CFBundleVersion", "bundle_version"),
    ("CFBundlePackageType", "bundle_package_type"),
    ("LSEnvironment", "environment"),
    ("LSUIElement", "element"),
    ("CFBundleDevelopmentRegion", "development_region"),
    ("CFBundleDisplayName", "display_name"),
    ("CFBundleGetInfoString", "info_string"),
    ("DTCompiler", "compiler"),
    ("LSMinimumSystemVersion", "minimum_system_version"),
    ("LSApplicationCategoryType", "category"),
    ("NSAppleScriptEnabled", "applescript_enabled"),
    ("NSHumanReadableCopyright", "copyright"),
];

const SYSTEM_DIRS: &[&str] = &[
    "/Applications",
    "/Applications/Utilities",
    "/System/Applications",
    "/System/Applications/Utilities",
    "/System/Library/CoreServices/Applications",
    "/Library/Apple/System/Library/CoreServices",
    "/Users/Shared/Applications",
];

const HOME_DIRS: &[&str] = &["Applications", "Desktop", "Downloads"];

/// The `.app` folders directly in `dir`.
fn bundles_in(ctx: &ScanContext<'_>, dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = ctx.machine.fs.read_dir(dir) else {
        return;
    };
    for e in entries {
        if e.name.ends_with(".app") && matches!(e.kind, FileKind::Dir | FileKind::Symlink) {
            out.insert(paths::join(dir, e.name));
        }
    }
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut bundles = BTreeSet::new();
    let wanted = constraints.eq("path");
    if wanted.is_empty() {
        for dir in SYSTEM_DIRS {
            bundles_in(ctx, Path::new(dir), &mut bundles);
        }
        for home in darwin::home_directories(ctx) {
            for dir in HOME_DIRS {
                bundles_in(ctx, &paths::join(&home, dir), &mut bundles);
            }
        }
    } else {
        bundles.extend(wanted.iter().map(PathBuf::from));
    }
    let mut found = Vec::new();
    for bundle in bundles {
        ctx.check_deadline()?;
        let info = paths::join(&bundle, "Contents/Info.plist");
        if let Some(plist::Value::Dictionary(tree)) = darwin::read_plist(ctx, &info) {
            found.push((bundle, tree));
        }
    }
    let opened = last_opened(
        ctx,
        &found.iter().map(|(p, _)| p.as_path()).collect::<Vec<_>>(),
    );
    Ok(found
        .iter()
        .zip(opened)
        .map(|((path, tree), opened)| row(path, tree, opened))
        .collect())
}

/// osquery's `genApplication`.
pub fn row(path: &Path, tree: &plist::Dictionary, last_opened: i64) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    let name = paths::file_name(path).unwrap_or_default();
    r.set("name", name)
        .set("path", path.to_string_lossy().into_owned())
        .set("last_opened_time", last_opened);
    for (key, column) in KEYS {
        let value = darwin::get_text(tree, key).unwrap_or_default();
        let value = match value.as_str() {
            "true" | "YES" | "Yes" => "1".to_string(),
            "false" | "NO" | "No" => "0".to_string(),
            _ => value,
        };
        r.set(column, value);
    }
    r.build()
}

/// `kMDItemLastUsedDate` of each bundle, -1 where Spotlight has none.
fn last_opened(ctx: &ScanContext<'_>, bundles: &[&Path]) -> Vec<i64> {
    let mut out = vec![-1; bundles.len()];
    if bundles.is_empty() {
        return out;
    }
    let paths: Vec<String> = bundles
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["-raw", "-name", "kMDItemLastUsedDate"];
    args.extend(paths.iter().map(String::as_str));
    let Some(o) = darwin::run(ctx, "/usr/bin/mdls", &args) else {
        return out;
    };
    // With -raw, mdls separates the files' values with NUL characters.
    for (slot, value) in out.iter_mut().zip(o.stdout.split('\0')) {
        if let Some(t) = parse_md_date(value) {
            *slot = t;
        }
    }
    out
}

/// An `mdls` date (`2024-11-18 09:12:44 +0000`) in Unix seconds.
pub fn parse_md_date(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace();
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || zone.len() != 5 {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh: i64 = zone.get(1..3)?.parse().ok()?;
    let zm: i64 = zone.get(3..5)?.parse().ok()?;
    let days = days_from_civil(d[0], d[1], d[2]);
    Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2] - sign * (zh * 3600 + zm * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn spotlight_dates() {
        assert_eq!(
            parse_md_date("2024-11-18 09:12:44 +0000"),
            Some(1_731_921_164)
        );
        assert_eq!(
            parse_md_date("2024-11-18 10:12:44 +0100"),
            Some(1_731_921_164)
        );
        assert_eq!(parse_md_date("(null)"), None);
    }

    #[test]
    fn bundles_in_the_usual_folders() {
        let engine = Engine::new(fixture("apps")).unwrap();
        let r = engine
            .query("SELECT name, path, bundle_identifier, bundle_short_version, element, applescript_enabled, environment, last_opened_time FROM apps")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("Google Chrome.app"),
                    t("/Applications/Google Chrome.app"),
                    t("com.google.Chrome"),
                    t("131.0.6778.86"),
                    t(""),
                    t("1"),
                    t(""),
                    Value::Real(1_731_921_164.0),
                ],
                vec![
                    t("Safari.app"),
                    t("/Applications/Safari.app"),
                    t("com.apple.Safari"),
                    t("18.1.1"),
                    t(""),
                    t("1"),
                    t(""),
                    Value::Real(1_731_834_000.0),
                ],
                vec![
                    t("Calculator.app"),
                    t("/System/Applications/Calculator.app"),
                    t("com.apple.calculator"),
                    t("11.0"),
                    t(""),
                    t(""),
                    t(""),
                    Value::Real(-1.0),
                ],
                vec![
                    t("Rectangle.app"),
                    t("/Users/alice/Applications/Rectangle.app"),
                    t("com.knollsoft.Rectangle"),
                    t("0.84"),
                    t("1"),
                    t(""),
                    t(""),
                    Value::Real(-1.0),
                ],
            ]
        );
    }

    #[test]
    fn one_bundle_by_path() {
        let engine = Engine::new(fixture("apps")).unwrap();
        let r = engine
            .query(
                "SELECT name, bundle_executable FROM apps WHERE path = '/Applications/Safari.app'",
            )
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("Safari.app"), t("Safari")]]);
    }
}
