//! `firefox_addons`: add-ons of each user's Firefox profiles, from the
//! profiles' `extensions.json` (osquery's `firefox_addons`).
//!
//! For each user of `/etc/passwd` (only those named by `uid = ...` when
//! given), every directory in `~/.mozilla/firefox` is a profile, as osquery
//! reads them; Tend adds the profiles `profiles.ini` places elsewhere and the
//! snap and Flatpak Firefox directories (`~/snap/firefox/common/.mozilla/firefox`,
//! `~/.var/app/org.mozilla.firefox/.mozilla/firefox`), which osquery does not
//! read. Values are read as osquery's Boost property tree reads JSON
//! (`null` is the text `null`); boolean words become 1 or 0 as osquery's
//! `tryTo<bool>` turns them; `disabled` is 1 when `softDisable`,
//! `appDisabled` or `userDisabled` is true. Without a `uid` constraint osquery
//! reads only the user it runs as; Tend reads every user.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::chrome_extensions::{PTree, list_dirs, users};

pub static TABLE: TableDef = TableDef {
    name: "firefox_addons",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::bigint("uid").additional().optimized(),
    col::text("name"),
    col::text("identifier").index(),
    col::text("creator"),
    col::text("type"),
    col::text("version"),
    col::text("description"),
    col::text("source_url"),
    col::integer("visible"),
    col::integer("active"),
    col::integer("disabled"),
    col::integer("autoupdate"),
    col::text("location"),
    col::text("path"),
];

/// Firefox directories under a home: osquery's, then snap's and Flatpak's.
const FIREFOX_DIRS: [&str; 3] = [
    ".mozilla/firefox",
    "snap/firefox/common/.mozilla/firefox",
    ".var/app/org.mozilla.firefox/.mozilla/firefox",
];

/// `extensions.json` keys and the columns osquery copies them to.
const KEYS: [(&str, &str); 12] = [
    ("defaultLocale.name", "name"),
    ("id", "identifier"),
    ("type", "type"),
    ("version", "version"),
    ("defaultLocale.creator", "creator"),
    ("defaultLocale.description", "description"),
    ("sourceURI", "source_url"),
    ("visible", "visible"),
    ("active", "active"),
    ("applyBackgroundUpdates", "autoupdate"),
    ("location", "location"),
    ("path", "path"),
];

/// osquery's `tryTo<bool>` words as 1/0; other text unchanged.
pub fn bool_as_int(s: &str) -> String {
    match s.to_ascii_lowercase().as_str() {
        "1" | "y" | "yes" | "t" | "true" | "ok" | "enable" => "1".into(),
        "0" | "n" | "no" | "f" | "false" | "disable" => "0".into(),
        _ => s.to_string(),
    }
}

/// Profile directories `profiles.ini` names (`Path=`, relative to its
/// directory when `IsRelative=1`).
pub fn parse_profiles_ini(text: &str, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut section_is_profile = false;
    let (mut path, mut relative) = (None::<String>, true);
    let flush = |path: &mut Option<String>, relative: bool, out: &mut Vec<PathBuf>| {
        if let Some(p) = path.take() {
            out.push(if relative {
                base.join(p)
            } else {
                PathBuf::from(p)
            });
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            if section_is_profile {
                flush(&mut path, relative, &mut out);
            }
            section_is_profile = line.starts_with("[Profile");
            path = None;
            relative = true;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "Path" => path = Some(v.trim().to_string()),
            "IsRelative" => relative = v.trim() != "0",
            _ => {}
        }
    }
    if section_is_profile {
        flush(&mut path, relative, &mut out);
    }
    out
}

/// One add-on: its (column, value) pairs and whether it is disabled.
pub type Addon = (Vec<(&'static str, String)>, bool);

/// The add-ons of one `extensions.json`.
pub fn parse_extensions(text: &str) -> Option<Vec<Addon>> {
    let tree = PTree::parse(text)?;
    let addons = tree.child("addons")?;
    Some(
        addons
            .children
            .iter()
            .map(|(_, addon)| {
                let get = |k: &str| addon.child(k).map(|n| n.data.clone()).unwrap_or_default();
                let values = KEYS
                    .iter()
                    .map(|(key, column)| (*column, bool_as_int(&get(key))))
                    .collect();
                let disabled = ["softDisable", "appDisabled", "userDisabled"]
                    .iter()
                    .any(|k| get(k) == "true");
                (values, disabled)
            })
            .collect(),
    )
}

/// The profile directories of one user.
fn profiles(ctx: &ScanContext<'_>, home: &Path) -> Vec<PathBuf> {
    let fs = ctx.machine.fs.as_ref();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in FIREFOX_DIRS {
        let base = home.join(dir);
        let mut found = list_dirs(fs, &base);
        if let Ok(ini) = fs.read_string(&base.join("profiles.ini")) {
            found.extend(parse_profiles_ini(&ini, &base));
        }
        for p in found {
            let key = fs.canonicalize(&p).unwrap_or_else(|_| p.clone());
            if seen.insert(key) {
                out.push(p);
            }
        }
    }
    out
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut rows = Vec::new();
    for (uid, home) in users(ctx, constraints, "firefox_addons")? {
        if home.is_empty() {
            continue;
        }
        ctx.check_deadline()?;
        for profile in profiles(ctx, Path::new(&home)) {
            let Ok(text) = fs.read_string(&profile.join("extensions.json")) else {
                continue;
            };
            // An unreadable or malformed file has no add-ons, as in osquery.
            for (values, disabled) in parse_extensions(&text).unwrap_or_default() {
                let mut r = RowBuilder::new(COLUMNS);
                r.set("uid", uid).set("disabled", disabled);
                for (column, value) in values {
                    r.set(column, value);
                }
                rows.push(r.build());
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    #[test]
    fn parses_profiles_ini() {
        let ini = "[Install4F96D1932A9F858E]\nDefault=abcd.default-release\nLocked=1\n\n\
                   [Profile1]\nName=default\nIsRelative=1\nPath=x1y2.default\nDefault=1\n\n\
                   [Profile0]\nName=work\nIsRelative=0\nPath=/srv/work-profile\n\n[General]\nStartWithLastProfile=1\nVersion=2\n";
        let base = Path::new("/home/bob/.mozilla/firefox");
        assert_eq!(
            parse_profiles_ini(ini, base),
            vec![
                base.join("x1y2.default"),
                PathBuf::from("/srv/work-profile")
            ]
        );
        assert_eq!(bool_as_int("true"), "1");
        assert_eq!(bool_as_int("False"), "0");
        assert_eq!(
            bool_as_int("uBlock0@raymondhill.net"),
            "uBlock0@raymondhill.net"
        );
    }

    #[test]
    fn reads_recorded_profiles() {
        let engine = Engine::new(fixture("firefox_addons")).unwrap();
        let r = engine
            .query("SELECT * FROM firefox_addons ORDER BY uid, identifier")
            .unwrap();
        assert_eq!(
            r.columns,
            vec![
                "uid",
                "name",
                "identifier",
                "creator",
                "type",
                "version",
                "description",
                "source_url",
                "visible",
                "active",
                "disabled",
                "autoupdate",
                "location",
                "path"
            ]
        );
        assert_eq!(r.rows.len(), 4, "{:#?}", r.rows);
        assert_eq!(
            r.rows[2],
            vec![
                Value::Integer(1000),
                text("uBlock Origin"),
                text("uBlock0@raymondhill.net"),
                text("Raymond Hill & contributors"),
                text("extension"),
                text("1.58.0"),
                text(
                    "Finally, an efficient wide-spectrum content blocker. Easy on CPU and memory."
                ),
                text(
                    "https://addons.mozilla.org/firefox/downloads/file/4216633/ublock_origin-1.58.0.xpi"
                ),
                Value::Integer(1),
                Value::Integer(1),
                Value::Integer(0),
                Value::Integer(1),
                text("app-profile"),
                text(
                    "/home/bob/.mozilla/firefox/x1y2.default-release/extensions/uBlock0@raymondhill.net.xpi"
                ),
            ]
        );
        let builtin = engine
            .query("SELECT name, source_url, location, disabled, active FROM firefox_addons WHERE identifier = 'formautofill@mozilla.org'")
            .unwrap();
        assert_eq!(
            builtin.rows,
            vec![vec![
                text("Form Autofill"),
                text("null"),
                text("app-builtin"),
                Value::Integer(0),
                Value::Integer(1)
            ]]
        );
        let disabled = engine
            .query("SELECT identifier, disabled, active FROM firefox_addons WHERE disabled = 1")
            .unwrap();
        assert_eq!(
            disabled.rows,
            vec![vec![
                text("{446900e4-71c2-419f-a6a7-df9c091e268b}"),
                Value::Integer(1),
                Value::Integer(0)
            ]]
        );
        // The profile profiles.ini places outside ~/.mozilla.
        let work = engine
            .query("SELECT identifier FROM firefox_addons WHERE path LIKE '/srv/%'")
            .unwrap();
        assert_eq!(
            work.rows,
            vec![vec![text("langpack-de@firefox.mozilla.org")]]
        );
        let root = engine
            .query("SELECT count(*) FROM firefox_addons WHERE uid = 0")
            .unwrap();
        assert_eq!(root.rows[0][0], Value::Integer(0));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT uid, identifier FROM firefox_addons")
            .unwrap();
        for row in &r.rows {
            assert!(matches!(row[0], Value::Integer(_)), "{row:?}");
        }
    }
}
