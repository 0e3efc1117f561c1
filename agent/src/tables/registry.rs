//! `registry`: keys and values of the Windows registry (osquery's `registry`),
//! read through the machine's [`Registry`] seam; and the registry helpers the
//! other Windows tables share (osquery's `registry.h`).
//!
//! As osquery:
//!
//! - Keys are full paths starting with a hive's long name
//!   (`HKEY_LOCAL_MACHINE\SOFTWARE\...`). The hives are osquery's nine:
//!   `HKEY_CLASSES_ROOT`, `HKEY_CURRENT_CONFIG`, `HKEY_CURRENT_USER`,
//!   `HKEY_CURRENT_USER_LOCAL_SETTINGS`, `HKEY_LOCAL_MACHINE`,
//!   `HKEY_PERFORMANCE_DATA`, `HKEY_PERFORMANCE_NLSTEXT`,
//!   `HKEY_PERFORMANCE_TEXT`, `HKEY_USERS`. Another first component (`HKLM`)
//!   gives no rows. `HKEY_CURRENT_USER` is the hive of the account Tend runs
//!   as, exactly as in osquery (which warns that a service sees its own, not
//!   a user's): per-user settings are read as `HKEY_USERS\<SID>\...`.
//! - `key = K` lists K: one row per subkey (`type` `subkey`, `name` the
//!   subkey's name, `path` `K\name`, `data` "", `mtime` the subkey's last
//!   write) and one row per value (`name` `(Default)` for the unnamed value,
//!   `path` `K\<raw name>`).
//! - `key LIKE` and `path LIKE` expand osquery's way: the pattern is split at
//!   `\`; a component containing `%` stands for every subkey at that level
//!   (SQLite then filters the rows), a last component ending in `%%` for
//!   every key below, up to 32 levels. `path = P` and `path LIKE P` (not
//!   ending in `%%`) read the key part of P. Without a `key` or `path`
//!   constraint the table lists the nine hives' top level.
//! - `data`: `REG_SZ`/`REG_EXPAND_SZ`/`REG_LINK` up to the first NUL (not
//!   expanded); `REG_MULTI_SZ` its strings joined by `,`; `REG_DWORD` as a
//!   *signed* 32-bit decimal (osquery prints `0xffffffff` as `-1`);
//!   `REG_DWORD_BIG_ENDIAN` and `REG_QWORD` unsigned decimal; `REG_BINARY`,
//!   `REG_RESOURCE_LIST` and `REG_FULL_RESOURCE_DESCRIPTOR` as uppercase hex
//!   of osquery's value buffer, which is as long as the key's largest value
//!   (so shorter values are padded with `00`s); `REG_NONE` as
//!   `(zero-length binary value)`. `REG_RESOURCE_REQUIREMENTS_LIST`, which
//!   osquery does not name, and numbers Windows does not define are type
//!   `UNKNOWN` with empty data.
//! - `mtime`: the last write time in Unix seconds. osquery reuses one
//!   variable for the key's time and each subkey's, so a key's value rows
//!   carry the write time of its *last subkey* when it has subkeys; Tend
//!   reproduces that.
//!
//! One deliberate difference: where osquery abandons a whole `LIKE`
//! expansion when one key cannot be opened (access denied below
//! `HKEY_LOCAL_MACHINE\SECURITY`, say), Tend skips that key and expands the
//! rest.

use std::collections::BTreeSet;
use std::io;

use super::system_info::osquery_split;
use crate::os::windows::{RecordedKey, RegType, Registry};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "registry",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("key").additional().optimized(),
    col::text("path").index().optimized(),
    col::text("name"),
    col::text("type"),
    col::text("data"),
    col::bigint("mtime"),
];

/// osquery's hives, in its (sorted) order.
pub const HIVES: [&str; 9] = [
    "HKEY_CLASSES_ROOT",
    "HKEY_CURRENT_CONFIG",
    "HKEY_CURRENT_USER",
    "HKEY_CURRENT_USER_LOCAL_SETTINGS",
    "HKEY_LOCAL_MACHINE",
    "HKEY_PERFORMANCE_DATA",
    "HKEY_PERFORMANCE_NLSTEXT",
    "HKEY_PERFORMANCE_TEXT",
    "HKEY_USERS",
];

/// How deep `%%` recurses, as osquery's `kRegMaxRecursiveDepth`.
const MAX_DEPTH: usize = 32;

/// One row of osquery's `queryKey`: a subkey or a value of `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegRow {
    pub key: String,
    pub path: String,
    /// The value's name (`(Default)` for the unnamed one) or the subkey's.
    pub name: String,
    /// `subkey`, a `REG_*` name or `UNKNOWN`.
    pub kind: String,
    pub data: String,
    pub mtime: i64,
}

impl RegRow {
    pub fn is_subkey(&self) -> bool {
        self.kind == "subkey"
    }
}

/// `HKEY_X\a\b` → the hive and the path below it, as osquery's
/// `explodeRegistryPath` splits them (empty components dropped).
pub fn explode(path: &str) -> (String, String) {
    let mut parts = osquery_split(path, &['\\']);
    if parts.is_empty() {
        return (String::new(), String::new());
    }
    let hive = parts.remove(0);
    (hive, parts.join("\\"))
}

/// The normalized path the [`Registry`] seam is asked for, or `None` when
/// the first component is not one of osquery's hives.
pub fn seam_path(key_path: &str) -> Option<String> {
    let (hive, key) = explode(key_path);
    if !HIVES.contains(&hive.as_str()) {
        return None;
    }
    Some(if key.is_empty() {
        hive
    } else {
        format!("{hive}\\{key}")
    })
}

/// Reads a key through the seam (`NotFound` also for an unknown hive).
pub fn read_key(reg: &dyn Registry, key_path: &str) -> io::Result<RecordedKey> {
    match seam_path(key_path) {
        Some(p) => reg.key(&p),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{key_path}: not a registry hive"),
        )),
    }
}

/// UTF-16LE code units of `bytes` up to the first NUL (an odd last byte is
/// padded with zero, as osquery's zeroed buffer does).
fn wide_units(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
}

fn wide_string(units: &[u16]) -> String {
    String::from_utf16_lossy(units)
}

/// Reads up to 8 little-endian bytes, zero-padded.
fn le_bytes<const N: usize>(data: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    for (d, s) in b.iter_mut().zip(data) {
        *d = *s;
    }
    b
}

/// The type name osquery prints.
pub fn type_name(kind: RegType) -> &'static str {
    match kind {
        RegType::ResourceRequirementsList => "UNKNOWN",
        other => other.name(),
    }
}

/// A value's `data` as osquery renders it; `max_len` is the size of the
/// key's largest value (osquery's buffer, which binary data is printed from).
pub fn render_data(kind: RegType, data: &[u8], max_len: usize) -> String {
    let mut buf = data.to_vec();
    // osquery NUL-terminates string types at their last byte.
    if matches!(kind, RegType::Sz | RegType::ExpandSz | RegType::MultiSz) && !buf.is_empty() {
        let n = buf.len();
        buf[n - 1] = 0;
    }
    let first_string = |b: &[u8]| {
        let units: Vec<u16> = wide_units(b).take_while(|u| *u != 0).collect();
        wide_string(&units)
    };
    match kind {
        RegType::Sz | RegType::ExpandSz | RegType::Link => first_string(&buf),
        RegType::MultiSz => {
            let units: Vec<u16> = wide_units(&buf).collect();
            let strings: Vec<String> = units
                .split(|u| *u == 0)
                .take_while(|s| !s.is_empty())
                .map(wide_string)
                .collect();
            strings.join(",")
        }
        RegType::Dword => i32::from_le_bytes(le_bytes::<4>(&buf)).to_string(),
        RegType::DwordBigEndian => u32::from_be_bytes(le_bytes::<4>(&buf)).to_string(),
        RegType::Qword => u64::from_le_bytes(le_bytes::<8>(&buf)).to_string(),
        RegType::Binary | RegType::ResourceList | RegType::FullResourceDescriptor => {
            use std::fmt::Write;
            let mut out = String::with_capacity(max_len.max(buf.len()) * 2);
            for i in 0..max_len.max(buf.len()) {
                let _ = write!(out, "{:02X}", buf.get(i).copied().unwrap_or(0));
            }
            out
        }
        RegType::None => "(zero-length binary value)".to_string(),
        RegType::ResourceRequirementsList | RegType::Unknown => String::new(),
    }
}

/// osquery's `queryKey`: the rows of one key. `subkey_mtimes` reads each
/// subkey for its write time (the `registry` table shows it; the other
/// tables only need the names). An unknown hive has no rows.
pub fn query_key(
    reg: &dyn Registry,
    key_path: &str,
    subkey_mtimes: bool,
) -> io::Result<Vec<RegRow>> {
    let Some(seam) = seam_path(key_path) else {
        return Ok(Vec::new());
    };
    let key = reg.key(&seam)?;
    let mut rows = Vec::with_capacity(key.subkeys.len() + key.values.len());
    // osquery's one FILETIME variable: each subkey's time overwrites the key's.
    let mut mtime = key.mtime;
    for sub in &key.subkeys {
        if subkey_mtimes {
            mtime = reg
                .key(&format!("{seam}\\{sub}"))
                .map_or(key.mtime, |k| k.mtime);
        }
        rows.push(RegRow {
            key: key_path.to_string(),
            path: format!("{key_path}\\{sub}"),
            name: sub.clone(),
            kind: "subkey".to_string(),
            data: String::new(),
            mtime,
        });
    }
    let max_len = key.values.iter().map(|v| v.data.len()).max().unwrap_or(0);
    for v in &key.values {
        rows.push(RegRow {
            key: key_path.to_string(),
            path: format!("{key_path}\\{}", v.name),
            name: if v.name.is_empty() {
                "(Default)".to_string()
            } else {
                v.name.clone()
            },
            kind: type_name(v.kind).to_string(),
            data: render_data(v.kind, &v.data, max_len),
            mtime,
        });
    }
    Ok(rows)
}

/// The `data` of the value `name` among `rows` (osquery's `name` column).
pub fn value<'a>(rows: &'a [RegRow], name: &str) -> Option<&'a str> {
    rows.iter()
        .find(|r| !r.is_subkey() && r.name == name)
        .map(|r| r.data.as_str())
}

/// The subkey paths of each key, skipping keys that cannot be read.
fn subkeys_of(reg: &dyn Registry, keys: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for k in keys {
        if let Ok(key) = read_key(reg, k) {
            out.extend(key.subkeys.iter().map(|s| format!("{k}\\{s}")));
        }
    }
    out
}

/// `keys` and every key below them, at most [`MAX_DEPTH`] levels down.
fn recurse(
    ctx: &ScanContext<'_>,
    mut keys: BTreeSet<String>,
) -> Result<BTreeSet<String>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let mut frontier = keys.clone();
    for _ in 0..MAX_DEPTH {
        ctx.check_deadline()?;
        let next: BTreeSet<String> = subkeys_of(reg, &frontier)
            .into_iter()
            .filter(|k| !keys.contains(k))
            .collect();
        if next.is_empty() {
            break;
        }
        keys.extend(next.iter().cloned());
        frontier = next;
    }
    Ok(keys)
}

/// osquery's `expandRegistryGlobs`: the keys a `LIKE` pattern can match.
pub fn expand_globs(ctx: &ScanContext<'_>, pattern: &str) -> Result<BTreeSet<String>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let elems = osquery_split(pattern, &['\\']);
    let Some((first, rest)) = elems.split_first() else {
        return Ok(BTreeSet::new());
    };
    let all_hives = || HIVES.iter().map(|h| h.to_string()).collect::<BTreeSet<_>>();
    if rest.is_empty() && first.ends_with("%%") {
        return recurse(ctx, all_hives());
    }
    let mut keys = if first.contains('%') {
        all_hives()
    } else {
        BTreeSet::from([first.clone()])
    };
    let last = elems.last().map(String::as_str);
    for elem in rest {
        ctx.check_deadline()?;
        // osquery compares the text with the last component, not the position.
        if elem.ends_with("%%") && Some(elem.as_str()) == last {
            return recurse(ctx, keys);
        } else if elem.contains('%') {
            keys = subkeys_of(reg, &keys);
        } else {
            keys = keys.into_iter().map(|k| format!("{k}\\{elem}")).collect();
        }
    }
    Ok(keys)
}

/// The keys a scan reads, from its `key` and `path` constraints.
fn keys_to_read(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
) -> Result<BTreeSet<String>, TableError> {
    let (key_eq, key_like) = constraints.eq_or_like("key");
    let (path_eq, path_like) = constraints.eq_or_like("path");
    if key_eq.is_empty() && key_like.is_empty() && path_eq.is_empty() && path_like.is_empty() {
        return expand_globs(ctx, "%");
    }
    let mut keys: BTreeSet<String> = key_eq.into_iter().collect();
    for pattern in &key_like {
        keys.extend(expand_globs(ctx, pattern)?);
    }
    let key_part = |p: &str| p.rfind('\\').map_or(p, |i| &p[..i]).to_string();
    for p in &path_eq {
        keys.insert(key_part(p));
    }
    for p in &path_like {
        let pattern = if p.ends_with("%%") {
            p.clone()
        } else {
            key_part(p)
        };
        keys.extend(expand_globs(ctx, &pattern)?);
    }
    Ok(keys)
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let mut rows = Vec::new();
    for key in keys_to_read(ctx, constraints)? {
        ctx.check_deadline()?;
        // A key that cannot be opened has no rows, as in osquery.
        let Ok(found) = query_key(reg, &key, true) else {
            continue;
        };
        for f in found {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("key", f.key)
                .set("path", f.path)
                .set("name", f.name)
                .set("type", f.kind)
                .set("data", f.data)
                .set("mtime", f.mtime);
            rows.push(r.build());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::os::windows::utf16_bytes;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn data_renders_as_osquery_prints_it() {
        let sz = utf16_bytes("C:\\Program Files\\Tend");
        assert_eq!(
            render_data(RegType::Sz, &sz, 100),
            "C:\\Program Files\\Tend"
        );
        assert_eq!(
            render_data(RegType::ExpandSz, &utf16_bytes("%SystemRoot%\\x"), 0),
            "%SystemRoot%\\x"
        );
        let mut multi = utf16_bytes("a");
        multi.extend(utf16_bytes("bc"));
        multi.extend([0, 0]);
        assert_eq!(render_data(RegType::MultiSz, &multi, 0), "a,bc");
        assert_eq!(render_data(RegType::MultiSz, &[0, 0], 0), "");
        assert_eq!(render_data(RegType::Dword, &1u32.to_le_bytes(), 8), "1");
        assert_eq!(
            render_data(RegType::Dword, &0xffff_ffffu32.to_le_bytes(), 4),
            "-1"
        );
        assert_eq!(
            render_data(RegType::DwordBigEndian, &[0, 0, 1, 0], 4),
            "256"
        );
        assert_eq!(
            render_data(RegType::Qword, &u64::MAX.to_le_bytes(), 8),
            "18446744073709551615"
        );
        assert_eq!(render_data(RegType::Binary, &[0xde, 0xad], 2), "DEAD");
        // Padded to the key's largest value.
        assert_eq!(render_data(RegType::Binary, &[0xab], 4), "AB000000");
        assert_eq!(
            render_data(RegType::None, &[], 4),
            "(zero-length binary value)"
        );
        assert_eq!(render_data(RegType::ResourceRequirementsList, &[1], 1), "");
        assert_eq!(type_name(RegType::ResourceRequirementsList), "UNKNOWN");
        // A number Windows does not define: osquery's `UNKNOWN`, no data.
        assert_eq!(RegType::from_raw(0), RegType::None);
        assert_eq!(RegType::from_raw(0x4000), RegType::Unknown);
        assert_eq!(type_name(RegType::from_raw(0x4000)), "UNKNOWN");
        assert_eq!(render_data(RegType::Unknown, &[1, 2], 2), "");
        // A string without its NUL loses its last character's high byte only.
        let mut bare = utf16_bytes("ab");
        bare.truncate(4);
        assert_eq!(render_data(RegType::Sz, &bare, 4), "ab");
    }

    #[test]
    fn paths_split_as_osquery_splits_them() {
        assert_eq!(
            explode("HKEY_LOCAL_MACHINE\\SOFTWARE\\\\Foo\\"),
            (
                "HKEY_LOCAL_MACHINE".to_string(),
                "SOFTWARE\\Foo".to_string()
            )
        );
        assert_eq!(
            seam_path("HKEY_LOCAL_MACHINE\\SOFTWARE\\").as_deref(),
            Some("HKEY_LOCAL_MACHINE\\SOFTWARE")
        );
        assert_eq!(seam_path("HKLM\\SOFTWARE"), None);
        assert_eq!(seam_path("HKEY_USERS").as_deref(), Some("HKEY_USERS"));
    }

    fn engine() -> crate::sql::Engine {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/registry"
        );
        crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap()
    }

    fn text(v: Option<&Value>) -> String {
        match v {
            Some(Value::Text(s)) => s.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_key_lists_its_values_and_subkeys() {
        let res = engine()
            .query(
                "SELECT * FROM registry WHERE key = \
                 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\StandardProfile'",
            )
            .unwrap();
        let rows: Vec<(String, String, String, String)> = (0..res.rows.len())
            .map(|i| {
                (
                    text(res.get(i, "name")),
                    text(res.get(i, "type")),
                    text(res.get(i, "data")),
                    text(res.get(i, "path")),
                )
            })
            .collect();
        let base = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\StandardProfile";
        assert_eq!(
            rows,
            vec![
                (
                    "AuthorizedApplications".into(),
                    "subkey".into(),
                    "".into(),
                    format!("{base}\\AuthorizedApplications")
                ),
                (
                    "DisableNotifications".into(),
                    "REG_DWORD".into(),
                    "0".into(),
                    format!("{base}\\DisableNotifications")
                ),
                (
                    "EnableFirewall".into(),
                    "REG_DWORD".into(),
                    "1".into(),
                    format!("{base}\\EnableFirewall")
                ),
            ]
        );
        // Subkey rows carry the subkey's write time, value rows the last subkey's.
        assert_eq!(res.get(0, "mtime"), Some(&Value::Integer(1_700_000_100)));
        assert_eq!(res.get(2, "mtime"), Some(&Value::Integer(1_700_000_100)));
        // The seed's firewall check.
        let passed = engine()
            .query(&format!(
                "SELECT COUNT(*) AS passed FROM registry WHERE key = '{base}' \
                 AND name = 'EnableFirewall' AND data = '1'"
            ))
            .unwrap();
        assert_eq!(passed.get(0, "passed"), Some(&Value::Integer(1)));
    }

    #[test]
    fn values_render_with_their_types() {
        let res = engine()
            .query(
                "SELECT name, type, data, mtime FROM registry \
                 WHERE key = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Tend\\Types' ORDER BY name",
            )
            .unwrap();
        let got: Vec<(String, String, String)> = (0..res.rows.len())
            .map(|i| {
                (
                    text(res.get(i, "name")),
                    text(res.get(i, "type")),
                    text(res.get(i, "data")),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = [
            ("(Default)", "REG_SZ", "default text"),
            ("Big", "REG_QWORD", "1700000000000"),
            // Padded to the longest value, `Expand`'s 40 bytes.
            (
                "Bin",
                "REG_BINARY",
                format!("010203{}", "00".repeat(37)).as_str(),
            ),
            ("Expand", "REG_EXPAND_SZ", "%ProgramFiles%\\Tend"),
            ("Multi", "REG_MULTI_SZ", "one,two,three"),
            ("Negative", "REG_DWORD", "-2"),
            ("Nothing", "REG_NONE", "(zero-length binary value)"),
        ]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
        assert_eq!(got, want);
        // No subkeys: values carry the key's own write time.
        assert_eq!(res.get(0, "mtime"), Some(&Value::Integer(1_700_000_000)));
    }

    #[test]
    fn like_expands_one_level_and_recursively() {
        let res = engine()
            .query(
                "SELECT key, name, data FROM registry WHERE \
                 key LIKE 'HKEY_USERS\\%\\Software\\Tend' AND name = 'Owner'",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 2, "{:?}", res.rows);
        assert_eq!(
            text(res.get(0, "key")),
            "HKEY_USERS\\S-1-5-21-1004336348-1177238915-682003330-1001\\Software\\Tend"
        );
        assert_eq!(text(res.get(0, "data")), "alice");
        assert_eq!(text(res.get(1, "data")), "bob");

        let res = engine()
            .query(
                "SELECT path FROM registry WHERE key LIKE 'HKEY_LOCAL_MACHINE\\SOFTWARE\\%%' \
                 AND type = 'subkey' ORDER BY path",
            )
            .unwrap();
        let paths: Vec<String> = (0..res.rows.len())
            .map(|i| text(res.get(i, "path")))
            .collect();
        assert_eq!(
            paths,
            vec![
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft".to_string(),
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows".to_string(),
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate"
                    .to_string(),
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU"
                    .to_string(),
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Tend\\Types".to_string(),
            ]
        );
    }

    #[test]
    fn path_constraints_read_the_key_part() {
        let res = engine()
            .query(
                "SELECT name, data FROM registry WHERE path = \
                 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU\\NoAutoUpdate'",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        assert_eq!(text(res.get(0, "data")), "0");
        // The seed's automatic updates check.
        let passed = engine()
            .query(
                "SELECT COUNT(*) AS passed FROM registry WHERE key = \
                 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU' \
                 AND name = 'NoAutoUpdate' AND data = '0'",
            )
            .unwrap();
        assert_eq!(passed.get(0, "passed"), Some(&Value::Integer(1)));
        let res = engine()
            .query(
                "SELECT name FROM registry WHERE path LIKE \
                 'HKEY_USERS\\%\\Software\\Tend\\Own%'",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 2);
    }

    #[cfg(windows)]
    #[test]
    fn reads_this_windows_machine() {
        let engine = crate::sql::Engine::new(Machine::real()).unwrap();
        let res = engine
            .query(
                "SELECT type, data FROM registry WHERE key = \
                 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion' \
                 AND name = 'CurrentBuildNumber'",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        assert_eq!(text(res.get(0, "type")), "REG_SZ");
        assert!(text(res.get(0, "data")).parse::<u32>().is_ok());
    }

    #[test]
    fn unknown_hives_and_missing_keys_have_no_rows() {
        for q in [
            "SELECT * FROM registry WHERE key = 'HKLM\\SOFTWARE'",
            "SELECT * FROM registry WHERE key = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Nope'",
        ] {
            assert!(engine().query(q).unwrap().rows.is_empty(), "{q}");
        }
        // No constraint: the top level of the hives the recording has.
        let res = engine()
            .query("SELECT DISTINCT key FROM registry ORDER BY key")
            .unwrap();
        assert_eq!(text(res.get(0, "key")), "HKEY_LOCAL_MACHINE");
        assert_eq!(text(res.get(1, "key")), "HKEY_USERS");
    }
}
