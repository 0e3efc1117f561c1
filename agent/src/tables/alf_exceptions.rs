//! `alf_exceptions`: the macOS firewall's per-program exceptions (osquery's
//! `alf_exceptions`).
//!
//! Sources as in osquery, chosen by the macOS major version:
//!
//! - Up to macOS 14, `/Library/Preferences/com.apple.alf.plist`: every entry
//!   of `exceptions` (its `path` and `state`, -1 when missing), then every
//!   entry of `applications` that has an `alias`. That alias is a nested
//!   property list whose `data` is a classic Alias Manager record; osquery
//!   resolves it through CoreServices into a `file://` URL and strips the
//!   scheme, so the path is percent-encoded and a folder (an `.app`) ends in
//!   `/`. Tend cannot call CoreServices: it reads the POSIX path recorded in
//!   the alias (tags 0x12 and 0x13), encodes it the way CFURL does, and adds
//!   the `/` when the path is a directory on the machine. An alias that
//!   cannot be read is skipped, as osquery skips one it cannot resolve; an
//!   alias whose target has moved gives the recorded path (osquery follows
//!   the move). As in osquery, a plist without `exceptions` has no rows.
//! - macOS 15 and later: `spfirewall_applications` of System Information's
//!   firewall report (`system_profiler -xml SPFirewallDataType`): each entry
//!   is a path or bundle identifier and `spfirewall_allow_all` (state 0) or
//!   `spfirewall_block_all` (state 2); other values are skipped.

use std::path::Path;

use base64::Engine as _;

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::alf::{FIREWALL_DATA_TYPE, alf_plist, uses_system_profiler};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "alf_exceptions",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[col::text("path"), col::integer("state")];

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    if uses_system_profiler(ctx) {
        let Some(report) = darwin::system_profiler(ctx, FIREWALL_DATA_TYPE) else {
            return Ok(Vec::new());
        };
        return Ok(from_report(&report));
    }
    let Some(tree) = alf_plist(ctx) else {
        return Ok(Vec::new());
    };
    let is_dir = |p: &str| {
        ctx.machine
            .fs
            .metadata(Path::new(p), true)
            .is_ok_and(|m| m.kind == FileKind::Dir)
    };
    Ok(from_plist(&tree, &is_dir))
}

fn row(path: &str, state: i64) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("path", path).set("state", state);
    r.build()
}

/// osquery's `parseALFExceptionsTree`; `is_dir` tells which alias targets are folders.
pub fn from_plist(tree: &plist::Dictionary, is_dir: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let Some(exceptions) = tree.get("exceptions") else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for e in exceptions.as_array().into_iter().flatten() {
        let Some(e) = e.as_dictionary() else { continue };
        rows.push(row(
            &darwin::get_text(e, "path").unwrap_or_default(),
            darwin::get_int(e, "state").unwrap_or(-1),
        ));
    }
    let applications = tree.get("applications").and_then(plist::Value::as_array);
    for app in applications.into_iter().flatten() {
        let Some(app) = app.as_dictionary() else {
            continue;
        };
        let Some(alias) = app.get("alias").and_then(plist::Value::as_data) else {
            continue;
        };
        let Some(path) = nested_alias_path(alias) else {
            continue;
        };
        let url_path = file_url_path(&path, is_dir(&path));
        rows.push(row(&url_path, darwin::get_int(app, "state").unwrap_or(-1)));
    }
    rows
}

/// osquery's `genALFExceptionsFromSystemProfiler`.
pub fn from_report(report: &plist::Dictionary) -> Vec<Row> {
    let Some(item) = darwin::last_item(report) else {
        return Vec::new();
    };
    let apps = item
        .get("spfirewall_applications")
        .and_then(plist::Value::as_dictionary);
    let mut rows = Vec::new();
    for (key, value) in apps.into_iter().flatten() {
        let state = match value.as_string() {
            Some("spfirewall_allow_all") => 0,
            Some("spfirewall_block_all") => 2,
            _ => continue,
        };
        rows.push(row(key, state));
    }
    rows
}

/// The POSIX path of an `applications` alias: a property list whose `data`
/// is an Alias Manager record.
pub fn nested_alias_path(data: &[u8]) -> Option<String> {
    let nested = darwin::parse_plist(data)?;
    let record = match &nested {
        plist::Value::Data(d) => d.clone(),
        plist::Value::Dictionary(d) => {
            // osquery reads `data` as text (base64) and decodes it again.
            let text = darwin::get_text(d, "data")?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?
        }
        _ => return None,
    };
    alias_record_path(&record)
}

/// The POSIX path in a classic Alias Manager record (versions 2 and 3):
/// tag 0x12 is the path from the volume's root, tag 0x13 the volume's mount
/// point.
pub fn alias_record_path(record: &[u8]) -> Option<String> {
    let version = u16::from_be_bytes([*record.get(6)?, *record.get(7)?]);
    let mut off = match version {
        2 => 150,
        3 => 58,
        _ => return None,
    };
    let (mut path, mut volume) = (None, None);
    while off + 4 <= record.len() {
        let tag = u16::from_be_bytes([record[off], record[off + 1]]);
        let len = usize::from(u16::from_be_bytes([record[off + 2], record[off + 3]]));
        if tag == 0xFFFF {
            break;
        }
        let data = record.get(off + 4..off + 4 + len)?;
        match tag {
            0x12 => path = Some(String::from_utf8_lossy(data).into_owned()),
            0x13 => volume = Some(String::from_utf8_lossy(data).into_owned()),
            _ => {}
        }
        // Items are padded to an even length.
        off += 4 + len + (len & 1);
    }
    let path = path?;
    let volume = volume.unwrap_or_else(|| "/".into());
    let joined = format!(
        "{}/{}",
        volume.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    Some(joined)
}

/// The path of a `file://` URL CFURL makes for `path`: characters outside
/// RFC 3986's path set percent-encoded, and a trailing `/` for a directory.
pub fn file_url_path(path: &str, is_dir: bool) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if is_dir && !out.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    fn pairs(rows: &[Row]) -> Vec<(String, i64)> {
        rows.iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Text(p), Value::Integer(s)) => (p.clone(), *s),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// A version 2 alias record for `/Applications/<name>`.
    fn alias_v2(path: &str) -> Vec<u8> {
        let mut r = vec![0u8; 150];
        r[6..8].copy_from_slice(&2u16.to_be_bytes());
        for (tag, data) in [(0x12u16, path.as_bytes()), (0x13, b"/".as_slice())] {
            r.extend_from_slice(&tag.to_be_bytes());
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
            if data.len() % 2 == 1 {
                r.push(0);
            }
        }
        r.extend_from_slice(&[0xFF, 0xFF, 0, 0]);
        let size = r.len() as u16;
        r[4..6].copy_from_slice(&size.to_be_bytes());
        r
    }

    #[test]
    fn alias_records_give_paths() {
        let rec = alias_v2("Applications/zoom.us.app");
        assert_eq!(
            alias_record_path(&rec).as_deref(),
            Some("/Applications/zoom.us.app")
        );
        assert_eq!(alias_record_path(b"short"), None);
        assert_eq!(
            file_url_path("/Applications/Google Chrome.app", true),
            "/Applications/Google%20Chrome.app/"
        );
        assert_eq!(file_url_path("/usr/bin/nc", false), "/usr/bin/nc");
    }

    #[test]
    fn sonoma_exceptions_and_applications() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM alf_exceptions").unwrap();
        assert_eq!(
            pairs(&r.rows),
            vec![
                ("/usr/libexec/configd".to_string(), 3),
                ("/usr/sbin/mDNSResponder".to_string(), 3),
                ("/usr/sbin/racoon".to_string(), 3),
                ("/usr/bin/nmblookup".to_string(), 3),
                (
                    "/System/Library/PrivateFrameworks/Admin.framework/Versions/A/Resources/readconfig"
                        .to_string(),
                    3
                ),
                ("/Applications/Google%20Chrome.app/".to_string(), 0),
                ("/Applications/zoom.us.app/".to_string(), 2),
            ]
        );
    }

    #[test]
    fn sequoia_applications_from_system_information() {
        let engine = Engine::new(fixture("alf")).unwrap();
        let r = engine
            .query("SELECT * FROM alf_exceptions ORDER BY path")
            .unwrap();
        assert_eq!(
            pairs(&r.rows),
            vec![
                ("/Applications/Spotify.app".to_string(), 2),
                ("com.apple.sharingd".to_string(), 0),
            ]
        );
    }
}
