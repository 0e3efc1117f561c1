//! `preferences`: macOS preference domains, key by key (osquery's
//! `preferences`).
//!
//! osquery asks CFPreferences. Tend reads the property lists CFPreferences
//! reads, for the user osquery's daemon (root) asks as:
//!
//! - Without `username = ...`, the domains every user sees:
//!   `/Library/Preferences/<domain>.plist` (host `any`) and
//!   `/Library/Preferences/ByHost/<domain>.<host UUID>.plist` (host
//!   `current`).
//! - With `username = 'alice'` (the first such value, as in osquery), that
//!   user's `~/Library/Preferences/<domain>.plist` and
//!   `~/Library/Preferences/ByHost/<domain>.<host UUID>.plist`, the home
//!   being `/Users/alice` (`/var/root` for root).
//! - `domain = ...` reads those domains (current host first, then any host);
//!   without it every domain that has a file is listed, as
//!   `CFPreferencesCopyApplicationList` lists them. ByHost files are matched
//!   by their host part having the form of a hardware UUID (or of the 12-digit
//!   MAC address older systems used), not compared with this Mac's UUID.
//! - `forced` is 1 when a configuration profile manages the key, i.e. the key
//!   is in `/Library/Managed Preferences/<domain>.plist`, and the value is
//!   then the managed one (osquery: `CFPreferencesAppValueIsForced` and
//!   `CFPreferencesCopyAppValue`).
//!
//! Rows are osquery's: keys holding `<` or `>` are skipped; a dictionary is
//! a row per entry and an array a row per element, `subkey` joining the
//! names and indexes below the top-level key with `/` (NULL for a top-level
//! scalar); nesting stops at 20 levels. Values print as CFPreferences types
//! do in osquery: booleans `true`/`false`, integers in decimal, reals with 17
//! significant digits (boost's `lexical_cast`), dates as rounded Unix
//! seconds, and data as a row without a value. Preferences only in a
//! sandboxed app's container are not read.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;
use crate::tables::managed_policies::MANAGED_PREFERENCES;

pub static TABLE: TableDef = TableDef {
    name: "preferences",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("domain").index().optimized(),
    col::text("key").index(),
    col::text("subkey"),
    col::text("value"),
    col::integer("forced"),
    col::text("username").additional(),
    col::text("host"),
];

/// osquery's `kPreferenceDepthLimit`.
const DEPTH_LIMIT: usize = 20;

/// Where one user's (or every user's) preferences live.
struct Source {
    dir: PathBuf,
    username: String,
}

impl Source {
    fn byhost(&self) -> PathBuf {
        self.dir.join("ByHost")
    }
}

/// Whether `s` is the host part of a ByHost file name: a hardware UUID, or
/// the 12 hex digits of a MAC address.
fn is_host_id(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(s, 12) {
        return true;
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && hex(parts[0], 8)
        && hex(parts[1], 4)
        && hex(parts[2], 4)
        && hex(parts[3], 4)
        && hex(parts[4], 12)
}

/// The domain of a ByHost file name (`com.apple.screensaver.<UUID>.plist`).
fn byhost_domain(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".plist")?;
    let (domain, host) = stem.rsplit_once('.')?;
    is_host_id(host).then_some(domain)
}

/// The files in a directory, sorted, that are not directories.
fn files(ctx: &ScanContext<'_>, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = ctx
        .machine
        .fs
        .read_dir(dir)
        .map(|entries| {
            entries
                .into_iter()
                .filter(|e| e.kind != FileKind::Dir)
                .map(|e| e.name)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let source = match constraints.eq("username").into_iter().next() {
        Some(user) => Source {
            dir: if user == "root" {
                PathBuf::from("/var/root/Library/Preferences")
            } else {
                Path::new("/Users").join(&user).join("Library/Preferences")
            },
            username: user,
        },
        None => Source {
            dir: PathBuf::from("/Library/Preferences"),
            username: String::new(),
        },
    };
    let domains = constraints.eq("domain");
    let mut rows = Vec::new();
    if domains.is_empty() {
        for name in files(ctx, &source.byhost()) {
            if let Some(domain) = byhost_domain(&name) {
                let path = source.byhost().join(&name);
                domain_rows(ctx, &source, domain, &path, true, &mut rows);
            }
        }
        for name in files(ctx, &source.dir) {
            if let Some(domain) = name.strip_suffix(".plist") {
                let path = source.dir.join(&name);
                domain_rows(ctx, &source, domain, &path, false, &mut rows);
            }
        }
        return Ok(rows);
    }
    let byhost = files(ctx, &source.byhost());
    for domain in &domains {
        for name in byhost.iter().filter(|n| byhost_domain(n) == Some(domain)) {
            let path = source.byhost().join(name);
            domain_rows(ctx, &source, domain, &path, true, &mut rows);
        }
    }
    for domain in &domains {
        let path = source.dir.join(format!("{domain}.plist"));
        domain_rows(ctx, &source, domain, &path, false, &mut rows);
    }
    Ok(rows)
}

/// osquery's `genOSXDomainPrefs` for one file.
fn domain_rows(
    ctx: &ScanContext<'_>,
    source: &Source,
    domain: &str,
    path: &Path,
    current_host: bool,
    rows: &mut Vec<Row>,
) {
    let Some(plist::Value::Dictionary(prefs)) = darwin::read_plist(ctx, path) else {
        return;
    };
    let managed_path = Path::new(MANAGED_PREFERENCES).join(format!("{domain}.plist"));
    let managed = match darwin::read_plist(ctx, &managed_path) {
        Some(plist::Value::Dictionary(d)) => d,
        _ => plist::Dictionary::new(),
    };
    for (key, value) in &prefs {
        if key.is_empty() || key.contains('<') || key.contains('>') {
            continue;
        }
        let forced = managed.get(key);
        let base = Base {
            domain,
            key,
            username: &source.username,
            host: if current_host { "current" } else { "any" },
            forced: forced.is_some(),
        };
        values(&base, forced.unwrap_or(value), None, 0, rows);
    }
}

/// What every row of one preference key shares.
struct Base<'a> {
    domain: &'a str,
    key: &'a str,
    username: &'a str,
    host: &'a str,
    forced: bool,
}

/// osquery's `genOSXPrefValues`.
fn values(
    base: &Base<'_>,
    v: &plist::Value,
    subkey: Option<String>,
    depth: usize,
    rows: &mut Vec<Row>,
) {
    let depth = depth + 1;
    if depth > DEPTH_LIMIT {
        return;
    }
    let join = |part: &str| match &subkey {
        Some(s) if !s.is_empty() => format!("{s}/{part}"),
        _ => part.to_string(),
    };
    let text = match v {
        plist::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                values(base, item, Some(join(&i.to_string())), depth, rows);
            }
            return;
        }
        plist::Value::Dictionary(d) => {
            for (k, item) in d {
                values(base, item, Some(join(k)), depth, rows);
            }
            return;
        }
        plist::Value::Boolean(b) => Some(if *b { "true" } else { "false" }.to_string()),
        plist::Value::Integer(i) => i
            .as_signed()
            .map(|n| n.to_string())
            .or_else(|| i.as_unsigned().map(|n| n.to_string())),
        plist::Value::Real(f) => Some(format_g17(*f)),
        plist::Value::String(s) => Some(s.clone()),
        plist::Value::Date(d) => {
            let t: SystemTime = (*d).into();
            let secs = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            Some((secs.round() as i64).to_string())
        }
        // osquery leaves data (and other types) without a value, but keeps the row.
        _ => None,
    };
    let mut r = RowBuilder::new(COLUMNS);
    r.set("domain", base.domain)
        .set("key", base.key)
        .set_opt("subkey", subkey)
        .set_opt("value", text)
        .set("forced", i64::from(base.forced))
        .set("username", base.username)
        .set("host", base.host);
    rows.push(r.build());
}

/// A double as boost's `lexical_cast<std::string>` prints it: `%.17g`.
pub fn format_g17(v: f64) -> String {
    super::plist::format_g(v, 17)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn doubles_print_like_boost() {
        assert_eq!(format_g17(0.5), "0.5");
        assert_eq!(format_g17(1.0), "1");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1e20), "1e+20");
    }

    #[test]
    fn byhost_names() {
        assert_eq!(
            byhost_domain("com.apple.screensaver.0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9.plist"),
            Some("com.apple.screensaver")
        );
        assert_eq!(byhost_domain("com.apple.screensaver.plist"), None);
    }

    #[test]
    fn a_domain_for_every_user() {
        let engine = Engine::new(fixture("preferences")).unwrap();
        let r = engine
            .query("SELECT key, subkey, value, forced, username, host FROM preferences WHERE domain = 'com.apple.SoftwareUpdate'")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("AutomaticCheckEnabled"),
                    Value::Null,
                    t("true"),
                    Value::Integer(1),
                    t(""),
                    t("any")
                ],
                vec![
                    t("AutomaticDownload"),
                    Value::Null,
                    t("true"),
                    Value::Integer(1),
                    t(""),
                    t("any")
                ],
                vec![
                    t("LastFullSuccessfulDate"),
                    Value::Null,
                    t("1731571200"),
                    Value::Integer(0),
                    t(""),
                    t("any")
                ],
                vec![
                    t("LastRecommendedUpdatesAvailable"),
                    Value::Null,
                    t("0"),
                    Value::Integer(0),
                    t(""),
                    t("any")
                ],
                vec![
                    t("PrimaryLanguages"),
                    t("0"),
                    t("en"),
                    Value::Integer(0),
                    t(""),
                    t("any")
                ],
                vec![
                    t("PrimaryLanguages"),
                    t("1"),
                    t("en-GB"),
                    Value::Integer(0),
                    t(""),
                    t("any")
                ],
            ]
        );
    }

    #[test]
    fn a_users_domains_and_byhost() {
        let engine = Engine::new(fixture("preferences")).unwrap();
        let r = engine
            .query("SELECT domain, key, subkey, value, host FROM preferences WHERE username = 'alice' AND domain = 'com.apple.screensaver'")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("com.apple.screensaver"),
                    t("idleTime"),
                    Value::Null,
                    t("300"),
                    t("current")
                ],
                vec![
                    t("com.apple.screensaver"),
                    t("moduleDict"),
                    t("moduleName"),
                    t("Flurry"),
                    t("current")
                ],
                vec![
                    t("com.apple.screensaver"),
                    t("moduleDict"),
                    t("type"),
                    t("0"),
                    t("current")
                ],
            ]
        );
        let dock = engine
            .query("SELECT domain, key, subkey, value, host FROM preferences WHERE username = 'alice' AND domain = 'com.apple.dock'")
            .unwrap();
        assert_eq!(
            dock.rows,
            vec![
                vec![
                    t("com.apple.dock"),
                    t("autohide"),
                    Value::Null,
                    t("false"),
                    t("any")
                ],
                vec![
                    t("com.apple.dock"),
                    t("tilesize"),
                    Value::Null,
                    t("48.5"),
                    t("any")
                ],
            ]
        );
        let all = engine
            .query("SELECT DISTINCT domain, host FROM preferences WHERE username = 'alice'")
            .unwrap();
        assert_eq!(all.rows.len(), 3);
    }
}
