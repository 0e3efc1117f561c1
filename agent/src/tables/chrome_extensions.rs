//! `chrome_extensions`: extensions of Chromium-based browsers in each user's
//! profiles (osquery's `chrome_extensions`).
//!
//! For each user of `/etc/passwd` (only those named by `uid = ...` when
//! given), each browser's directory under the home (`.config/google-chrome`,
//! `.config/chromium`, `.config/BraveSoftware/Brave-Browser`, ...) is a
//! profile itself or holds profiles (`Default`, `Profile 1`): directories with
//! a `Preferences` or `Secure Preferences` file. In each profile, as osquery
//! does:
//!
//! - every `Extensions/<id>/<version>/manifest.json` is an extension, first
//!   counted as not referenced;
//! - the extensions the preferences' `extensions.settings` (Opera:
//!   `opsettings`) point to are referenced (`referenced = 1`), including
//!   unpacked ones outside the profile, and get `referenced_identifier`,
//!   `from_webstore`, `state` and `install_time` from their entry;
//! - manifest values are read as osquery's Boost property tree reads JSON:
//!   numbers and booleans as text, `__MSG_name__` strings localized from
//!   `_locales/<default_locale>/messages.json`, lists joined with ", ";
//!   `permissions_json` and `manifest_json` are written as Boost writes JSON;
//! - `identifier` is computed from the manifest's `key` (the first 128 bits
//!   of its SHA-256, one letter `a`-`p` per hex digit), and `manifest_hash` is
//!   the SHA-256 of `manifest.json`.
//!
//! Differences from osquery: without a `uid` constraint osquery reads only the
//! user osquery runs as; Tend reads every user, what a compliance check
//! means. Users come from `/etc/passwd` (not NSS). Besides osquery's Linux
//! paths, Microsoft Edge (`.config/microsoft-edge{,-beta}`) and Yandex's
//! stable directory are read. A profile missing one of its two preferences
//! files is read from the other (osquery skips it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::os::{FileKind, Fs};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::users::parse_passwd;
use crate::tables::util::{paths, read_optional};

pub static TABLE: TableDef = TableDef {
    name: "chrome_extensions",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("browser_type"),
    col::bigint("uid").index().optimized(),
    col::text("name"),
    col::text("profile"),
    col::text("profile_path"),
    col::text("referenced_identifier"),
    col::text("identifier"),
    col::text("version"),
    col::text("description"),
    col::text("default_locale"),
    col::text("current_locale"),
    col::text("update_url"),
    col::text("author"),
    col::integer("persistent"),
    col::text("path"),
    col::text("permissions"),
    col::text("permissions_json").hidden(),
    col::text("optional_permissions"),
    col::text("optional_permissions_json").hidden(),
    col::text("manifest_hash"),
    col::bigint("referenced"),
    col::text("from_webstore"),
    col::text("state"),
    col::text("install_time"),
    col::bigint("install_timestamp"),
    col::text("manifest_json").hidden(),
    col::text("key").hidden(),
];

/// Browser directories under a home, and the `browser_type` osquery gives them.
const BROWSERS: &[(&str, &str)] = &[
    ("chrome", ".config/google-chrome"),
    ("chrome_beta", ".config/google-chrome-beta"),
    ("chrome_dev", ".config/google-chrome-unstable"),
    ("brave", ".config/BraveSoftware/Brave-Browser"),
    ("chromium", ".config/chromium"),
    ("chromium", "snap/chromium/common/chromium"),
    ("yandex", ".config/yandex-browser-beta"),
    ("yandex", ".config/yandex-browser"),
    ("opera", ".config/opera"),
    ("vivaldi", ".config/vivaldi"),
    ("edge", ".config/microsoft-edge"),
    ("edge_beta", ".config/microsoft-edge-beta"),
];

const PREFERENCES: [&str; 2] = ["Preferences", "Secure Preferences"];

/// The users a per-user table reads: those `uid = ...` names, or all of
/// `/etc/passwd`. Each is (uid, home directory).
pub(crate) fn users(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
    table: &'static str,
) -> Result<Vec<(i64, String)>, TableError> {
    let text = read_optional(ctx.machine.fs.as_ref(), Path::new("/etc/passwd"))
        .map_err(|e| TableError::io(table, "reading /etc/passwd", e))?
        .unwrap_or_default();
    let wanted = constraints.eq_int("uid");
    Ok(parse_passwd(&text)
        .into_iter()
        .filter(|p| wanted.is_empty() || wanted.contains(&i64::from(p.uid)))
        .map(|p| (i64::from(p.uid), p.dir))
        .collect())
}

/// The directories in `dir` (symlinks to directories included), by name.
pub(crate) fn list_dirs(fs: &dyn Fs, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs.read_dir(dir) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| match e.kind {
            FileKind::Dir => true,
            FileKind::Symlink => fs
                .metadata(&paths::join(dir, &e.name), true)
                .is_ok_and(|m| m.kind == FileKind::Dir),
            _ => false,
        })
        .map(|e| paths::join(dir, e.name))
        .collect()
}

fn canonical(fs: &dyn Fs, path: &Path) -> PathBuf {
    fs.canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A JSON document as Boost's property tree holds it: every scalar is text
/// (`true`, `12`, `null`), arrays are children with empty keys, and key
/// order and duplicates are kept. osquery's values come from this shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PTree {
    pub data: String,
    pub children: Vec<(String, PTree)>,
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => return None,
                b => out.push(b),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<PTree> {
        if depth > 256 {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut t = PTree::default();
                if self.eat(b'}') {
                    return Some(t);
                }
                loop {
                    let k = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    t.children.push((k, v));
                    if self.eat(b'}') {
                        return Some(t);
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut t = PTree::default();
                if self.eat(b']') {
                    return Some(t);
                }
                loop {
                    let v = self.value(depth + 1)?;
                    t.children.push((String::new(), v));
                    if self.eat(b']') {
                        return Some(t);
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => Some(PTree {
                data: self.string()?,
                children: Vec::new(),
            }),
            _ => {
                for lit in ["true", "false", "null"] {
                    if self.s[self.i..].starts_with(lit.as_bytes()) {
                        self.i += lit.len();
                        return Some(PTree {
                            data: lit.to_string(),
                            children: Vec::new(),
                        });
                    }
                }
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let num = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                num.parse::<f64>().ok()?;
                Some(PTree {
                    data: num.to_string(),
                    children: Vec::new(),
                })
            }
        }
    }
}

/// Boost's JSON string escapes: printable ASCII as is, `/` escaped, and every
/// other byte (controls, UTF-8) as `\u00XX`.
fn boost_escape(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        match b {
            0x20 | 0x21 | 0x23..=0x2E | 0x30..=0x5B | 0x5D..=0x7F => out.push(b as char),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'/' => out.push_str("\\/"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\u{:04X}", b)),
        }
    }
}

impl PTree {
    /// Parses JSON as `boost::property_tree::read_json` does (a UTF-8 BOM is skipped).
    pub fn parse(text: &str) -> Option<PTree> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut r = JsonReader {
            s: text.as_bytes(),
            i: 0,
        };
        let v = r.value(0)?;
        r.ws();
        (r.i == r.s.len()).then_some(v)
    }

    /// The child at a `.`-separated path, keys compared without case (an `iptree`).
    pub fn child(&self, path: &str) -> Option<&PTree> {
        path.split('.').try_fold(self, |node, key| {
            node.children
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// `write_json(stream, tree, false)`: the root is always written as an
    /// object (an array's items under empty keys), values as strings.
    pub fn to_boost_json(&self) -> String {
        let mut out = String::new();
        self.write(0, &mut out);
        out
    }

    fn write(&self, depth: usize, out: &mut String) {
        if depth > 0 && self.children.is_empty() {
            out.push('"');
            boost_escape(&self.data, out);
            out.push('"');
        } else if depth > 0 && self.children.iter().all(|(k, _)| k.is_empty()) {
            out.push('[');
            for (i, (_, v)) in self.children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                v.write(depth + 1, out);
            }
            out.push(']');
        } else {
            out.push('{');
            for (i, (k, v)) in self.children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                boost_escape(k, out);
                out.push_str("\":");
                v.write(depth + 1, out);
            }
            out.push('}');
        }
    }
}

/// The manifest values osquery copies, after localization.
pub type Properties = BTreeMap<String, String>;

/// osquery's manifest properties: scalars as text, lists joined with ", "
/// plus their Boost JSON under `<name>_json`.
pub fn manifest_properties(manifest: &PTree) -> Properties {
    let mut p = Properties::new();
    let strings = [
        ("name", "name"),
        ("update_url", "update_url"),
        ("version", "version"),
        ("author", "author"),
        ("default_locale", "default_locale"),
        ("current_locale", "current_locale"),
        ("background.persistent", "persistent"),
        ("description", "description"),
    ];
    for (path, name) in strings {
        if let Some(node) = manifest.child(path) {
            p.insert(name.to_string(), node.data.clone());
        }
    }
    for name in ["permissions", "optional_permissions"] {
        if let Some(node) = manifest.child(name) {
            let list: Vec<&str> = node.children.iter().map(|(_, c)| c.data.as_str()).collect();
            p.insert(name.to_string(), list.join(", "));
            p.insert(format!("{name}_json"), node.to_boost_json());
        }
    }
    if let Some(node) = manifest.child("key") {
        p.insert("key".to_string(), node.data.clone());
    }
    p
}

/// The text a `__MSG_name__` value stands for in `messages.json`.
pub fn localize(value: &str, messages: &PTree) -> Option<String> {
    let name = value.strip_prefix("__MSG_")?;
    let name = &name[..name.len().saturating_sub(2)];
    messages
        .child(&format!("{name}.message"))
        .map(|m| m.data.clone())
}

/// Replaces `__MSG_` values with their localized text, as osquery does.
fn localize_properties(fs: &dyn Fs, ext_path: &Path, p: &mut Properties) {
    if !p.values().any(|v| v.starts_with("__MSG_")) {
        return;
    }
    let locale = p
        .get("default_locale")
        .or_else(|| p.get("current_locale"))
        .cloned()
        .unwrap_or_else(|| "en".to_string());
    let file = paths::join(ext_path, format!("_locales/{locale}/messages.json"));
    let Some(messages) = fs.read_string(&file).ok().and_then(|t| PTree::parse(&t)) else {
        return;
    };
    for v in p.values_mut() {
        if let Some(text) = localize(v, &messages) {
            *v = text;
        }
    }
}

/// Chrome's extension id from the manifest's base64 public key.
pub fn identifier_from_key(key: &str) -> Option<String> {
    let compact: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    if der.is_empty() {
        return None;
    }
    let digest = Sha256::digest(&der);
    Some(
        digest[..16]
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0f])
            .map(|n| (b'a' + n) as char)
            .collect(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Microseconds since 1601 (WebKit time, as text) to Unix seconds; 0 when not a time.
pub fn webkit_to_unix(t: &str) -> i64 {
    match t.parse::<i64>() {
        Ok(v) if v / 1_000_000 - 11_644_473_600 >= 0 => v / 1_000_000 - 11_644_473_600,
        _ => 0,
    }
}

/// The `extensions.settings` (or Opera's `opsettings`) node of a preferences file.
fn settings(prefs: &PTree) -> Option<&PTree> {
    prefs
        .child("extensions.settings")
        .or_else(|| prefs.child("extensions.opsettings"))
}

/// Where a settings entry's `path` is: absolute, or relative to the profile's `Extensions`.
fn settings_path(fs: &dyn Fs, profile: &Path, entry: &PTree) -> Option<PathBuf> {
    let path = &entry.child("path")?.data;
    // An absolute path replaces the folder it is joined to.
    let abs = paths::join(&paths::join(profile, "Extensions"), path);
    Some(canonical(fs, &abs))
}

/// The settings entry (id, values) of the extension at `ext_path`.
fn profile_settings(
    fs: &dyn Fs,
    profile: &Path,
    prefs: &PTree,
    ext_path: &Path,
) -> Option<(String, Properties)> {
    let (id, entry) = settings(prefs)?
        .children
        .iter()
        .find(|(_, e)| settings_path(fs, profile, e).as_deref() == Some(ext_path))?;
    let mut values = Properties::new();
    for name in ["from_webstore", "state", "install_time"] {
        if let Some(v) = entry.child(name) {
            values.insert(name.to_string(), v.data.clone());
        }
    }
    Some((id.clone(), values))
}

/// One extension found in a profile.
struct Found {
    path: PathBuf,
    manifest: Vec<u8>,
    referenced: bool,
}

struct Profile<'a> {
    browser: &'static str,
    uid: i64,
    path: PathBuf,
    prefs: Vec<PTree>,
    name: String,
    extensions: Vec<Found>,
    fs: &'a dyn Fs,
}

fn is_profile(fs: &dyn Fs, dir: &Path) -> bool {
    PREFERENCES.iter().any(|f| {
        fs.metadata(&paths::join(dir, f), true)
            .is_ok_and(|m| m.kind == FileKind::File)
    })
}

/// The profile directories of one browser directory.
fn profile_dirs(fs: &dyn Fs, browser_dir: &Path) -> Vec<PathBuf> {
    let dir = canonical(fs, browser_dir);
    if is_profile(fs, &dir) {
        return vec![dir];
    }
    list_dirs(fs, &dir)
        .into_iter()
        .map(|d| canonical(fs, &d))
        .filter(|d| is_profile(fs, d))
        .collect()
}

fn read_profile<'a>(
    ctx: &ScanContext<'a>,
    browser: &'static str,
    uid: i64,
    path: PathBuf,
) -> Option<Profile<'a>> {
    let fs = ctx.machine.fs.as_ref();
    let texts: Vec<String> = PREFERENCES
        .iter()
        .filter_map(|f| fs.read_string(&paths::join(&path, f)).ok())
        .filter(|t| !t.is_empty())
        .collect();
    if texts.is_empty() {
        return None;
    }
    // A preferences file that does not parse makes the profile unreadable, as in osquery.
    let prefs: Vec<PTree> = texts
        .iter()
        .map(|t| PTree::parse(t))
        .collect::<Option<_>>()?;
    let name = prefs
        .iter()
        .find_map(|p| {
            p.child("profile.name")
                .map(|n| n.data.clone())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_default();
    if name.is_empty() && browser != "opera" {
        return None;
    }
    // Every extension in the profile, then those the preferences reference.
    let mut found: BTreeMap<PathBuf, Found> = BTreeMap::new();
    for id_dir in list_dirs(fs, &paths::join(&path, "Extensions")) {
        for version_dir in list_dirs(fs, &id_dir) {
            let p = canonical(fs, &version_dir);
            if let Ok(manifest) = fs.read(&paths::join(&p, "manifest.json")) {
                found.insert(
                    p.clone(),
                    Found {
                        path: p,
                        manifest,
                        referenced: false,
                    },
                );
            }
        }
    }
    for prefs in &prefs {
        let Some(settings) = settings(prefs) else {
            continue;
        };
        for (_, entry) in &settings.children {
            let Some(p) = settings_path(fs, &path, entry) else {
                continue;
            };
            if let Some(f) = found.get_mut(&p) {
                f.referenced = true;
            } else if let Ok(manifest) = fs.read(&paths::join(&p, "manifest.json")) {
                found.insert(
                    p.clone(),
                    Found {
                        path: p,
                        manifest,
                        referenced: true,
                    },
                );
            }
        }
    }
    // osquery lists the unreferenced ones first, each group by path.
    let (mut extensions, referenced): (Vec<Found>, Vec<Found>) =
        found.into_values().partition(|f| !f.referenced);
    extensions.extend(referenced);
    Some(Profile {
        browser,
        uid,
        path,
        prefs,
        name,
        extensions,
        fs,
    })
}

fn extension_row(profile: &Profile<'_>, ext: &Found) -> Option<Row> {
    let text = String::from_utf8_lossy(&ext.manifest);
    let manifest = PTree::parse(&text)?;
    let mut p = manifest_properties(&manifest);
    localize_properties(profile.fs, &ext.path, &mut p);
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let (referenced_id, settings) = if ext.referenced {
        profile
            .prefs
            .iter()
            .find_map(|prefs| profile_settings(profile.fs, &profile.path, prefs, &ext.path))
            .unwrap_or_default()
    } else {
        Default::default()
    };
    let setting = |k: &str| settings.get(k).cloned().unwrap_or_default();
    let install_time = setting("install_time");
    let mut r = RowBuilder::new(COLUMNS);
    r.set("browser_type", profile.browser)
        .set("uid", profile.uid)
        .set("profile", profile.name.as_str())
        .set("profile_path", profile.path.to_string_lossy().into_owned())
        .set("name", get("name"))
        .set("version", get("version"))
        .set("author", get("author"))
        .set("manifest_json", manifest.to_boost_json())
        .set("update_url", get("update_url"))
        .set("default_locale", get("default_locale"))
        .set("current_locale", get("current_locale"))
        .set("permissions", get("permissions"))
        .set(
            "permissions_json",
            p.get("permissions_json")
                .cloned()
                .unwrap_or_else(|| "{}".into()),
        )
        .set("optional_permissions", get("optional_permissions"))
        .set(
            "optional_permissions_json",
            p.get("optional_permissions_json")
                .cloned()
                .unwrap_or_else(|| "{}".into()),
        )
        .set("persistent", get("persistent").eq_ignore_ascii_case("true"))
        .set("description", get("description"))
        .set("path", ext.path.to_string_lossy().into_owned())
        .set("manifest_hash", sha256_hex(&ext.manifest))
        .set("referenced", ext.referenced)
        .set("state", setting("state"))
        .set("from_webstore", setting("from_webstore"))
        .set("install_timestamp", webkit_to_unix(&install_time))
        .set("install_time", install_time)
        .set("referenced_identifier", referenced_id)
        .set(
            "identifier",
            p.get("key")
                .and_then(|k| identifier_from_key(k))
                .unwrap_or_default(),
        )
        .set("key", get("key"));
    Some(r.build())
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut rows = Vec::new();
    for (uid, home) in users(ctx, constraints, "chrome_extensions")? {
        if home.is_empty() {
            continue;
        }
        for (browser, suffix) in BROWSERS {
            ctx.check_deadline()?;
            for dir in profile_dirs(fs, &paths::join(Path::new(&home), suffix)) {
                let Some(profile) = read_profile(ctx, browser, uid, dir) else {
                    continue;
                };
                rows.extend(
                    profile
                        .extensions
                        .iter()
                        .filter_map(|e| extension_row(&profile, e)),
                );
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    const PROFILE: &str = "/home/alice/.config/google-chrome/Default";

    #[test]
    fn reads_json_as_boost_does() {
        let t = PTree::parse(
            "\u{feff}{\"a\": [\"x/y\", 2, true, null, {\"k\": \"v\"}], \"B\": {\"c\": \"\\u00e9\\ud83d\\ude00\"}, \"e\": []}",
        )
        .unwrap();
        assert_eq!(t.child("b.C").unwrap().data, "é😀");
        assert_eq!(t.child("a").unwrap().children[1].1.data, "2");
        assert_eq!(
            t.to_boost_json(),
            r#"{"a":["x\/y","2","true","null",{"k":"v"}],"B":{"c":"\u00C3\u00A9\u00F0\u009F\u0098\u0080"},"e":""}"#
        );
        // A list at the root is written as an object with empty keys.
        assert_eq!(
            t.child("a").unwrap().to_boost_json(),
            r#"{"":"x\/y","":"2","":"true","":"null","":{"k":"v"}}"#
        );
        assert!(PTree::parse("{\"a\": }").is_none());
        assert!(PTree::parse("{} x").is_none());
    }

    #[test]
    fn computes_ids_and_times() {
        // The fixture's Docs Offline key and the id Chrome derives from it.
        let key = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQAFndLWLboeVSHRNbCKIUh4u1XySb+aWclyZ5Tx0fXEyDKF4eyQD5XYg/K7R7qN86Y4\
                   ys6F/0qINeoGRqRJohVDxvOVeT3wHBh18Q7VMGeSSwn0oMb/vxm1Y6tutznyR/kxpYB5YapRvDdtJtkIV3LxcSR4sH6ztd1BxGH/ip5z7QIDAQAB";
        assert_eq!(
            identifier_from_key(key).as_deref(),
            Some("lolndcgobnkpibkhifcpoiicpmmdibmm")
        );
        assert_eq!(identifier_from_key("!!"), None);
        assert_eq!(webkit_to_unix("13345678901234567"), 1_701_205_301);
        assert_eq!(webkit_to_unix(""), 0);
        assert_eq!(webkit_to_unix("5"), 0);
    }

    #[test]
    fn localizes_messages() {
        let m = PTree::parse(r#"{"appName": {"message": "Docs Offline", "description": "x"}}"#)
            .unwrap();
        assert_eq!(
            localize("__MSG_appname__", &m).as_deref(),
            Some("Docs Offline")
        );
        assert_eq!(localize("__MSG_missing__", &m), None);
        assert_eq!(localize("plain", &m), None);
    }

    #[test]
    fn reads_recorded_profiles() {
        let engine = Engine::new(fixture("chrome_extensions")).unwrap();
        let r = engine
            .query(
                "SELECT browser_type, uid, name, profile, profile_path, referenced_identifier, identifier, version, \
                 default_locale, update_url, persistent, path, permissions, permissions_json, optional_permissions, \
                 referenced, from_webstore, state, install_time, install_timestamp, manifest_hash, key \
                 FROM chrome_extensions ORDER BY referenced, path",
            )
            .unwrap();
        assert_eq!(r.rows.len(), 4, "{:#?}", r.rows);
        let v = |row: usize, c: &str| r.get(row, c).cloned().unwrap();

        // The old version left on disk is not referenced.
        assert_eq!(v(0, "referenced"), Value::Integer(0));
        assert_eq!(v(0, "version"), text("1.57.0"));
        assert_eq!(v(0, "referenced_identifier"), text(""));
        assert_eq!(v(0, "install_timestamp"), Value::Integer(0));

        // Referenced, localized, with a computed id and settings from Secure Preferences.
        let docs = 2;
        assert_eq!(v(docs, "name"), text("Google Docs Offline"));
        assert_eq!(v(docs, "browser_type"), text("chrome"));
        assert_eq!(v(docs, "uid"), Value::Integer(1000));
        assert_eq!(v(docs, "profile"), text("Alice"));
        assert_eq!(v(docs, "profile_path"), text(PROFILE));
        let id = "lolndcgobnkpibkhifcpoiicpmmdibmm";
        assert_eq!(v(docs, "identifier"), text(id));
        assert_eq!(v(docs, "referenced_identifier"), text(id));
        assert_eq!(
            v(docs, "path"),
            text(&format!("{PROFILE}/Extensions/{id}/1.83.1_0"))
        );
        assert_eq!(
            v(docs, "permissions"),
            text("alarms, storage, unlimitedStorage, https://docs.google.com/*")
        );
        assert_eq!(
            v(docs, "permissions_json"),
            text(
                r#"{"":"alarms","":"storage","":"unlimitedStorage","":"https:\/\/docs.google.com\/*"}"#
            )
        );
        assert_eq!(v(docs, "from_webstore"), text("true"));
        assert_eq!(v(docs, "state"), text("1"));
        assert_eq!(v(docs, "install_time"), text("13345678901234567"));
        assert_eq!(v(docs, "install_timestamp"), Value::Integer(1_701_205_301));
        assert_eq!(
            v(docs, "update_url"),
            text("https://clients2.google.com/service/update2/crx")
        );
        assert_eq!(v(docs, "default_locale"), text("en"));
        assert_eq!(v(docs, "referenced"), Value::Integer(1));
        let Value::Text(hash) = v(docs, "manifest_hash") else {
            panic!()
        };
        assert_eq!(hash.len(), 64);

        // An unpacked extension outside the profile, referenced from Preferences.
        let dev = 3;
        assert_eq!(v(dev, "path"), text("/home/alice/src/tab-notes"));
        assert_eq!(v(dev, "name"), text("Tab Notes (dev)"));
        assert_eq!(v(dev, "identifier"), text(""));
        assert_eq!(
            v(dev, "referenced_identifier"),
            text("mkclhdpfljhbdgbeoaelhbbjcfbcaopm")
        );
        assert_eq!(v(dev, "from_webstore"), text("false"));
        assert_eq!(v(dev, "persistent"), Value::Integer(0));
        assert_eq!(v(dev, "permissions_json"), text("{}"));

        // uBlock Origin, referenced, persistent background page.
        let ublock = 1;
        assert_eq!(v(ublock, "name"), text("uBlock Origin"));
        assert_eq!(v(ublock, "version"), text("1.58.0"));
        assert_eq!(v(ublock, "persistent"), Value::Integer(1));
        assert_eq!(v(ublock, "optional_permissions"), text("file:///*"));

        // The uid constraint selects users.
        let none = engine
            .query("SELECT count(*) FROM chrome_extensions WHERE uid = 0")
            .unwrap();
        assert_eq!(none.rows[0][0], Value::Integer(0));
        let alice = engine
            .query("SELECT count(*) FROM chrome_extensions WHERE uid = 1000")
            .unwrap();
        assert_eq!(alice.rows[0][0], Value::Integer(4));
        let json = engine
            .query("SELECT manifest_json FROM chrome_extensions WHERE name = 'Tab Notes (dev)'")
            .unwrap();
        assert_eq!(
            json.rows[0][0],
            text(
                r#"{"manifest_version":"3","name":"Tab Notes (dev)","version":"0.3.0","action":{"default_title":"Notes"},"permissions":""}"#
            )
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(crate::os::Machine::real()).unwrap();
        let r = engine
            .query("SELECT browser_type, path FROM chrome_extensions")
            .unwrap();
        for row in &r.rows {
            assert!(
                matches!(&row[1], Value::Text(p) if p.starts_with('/')),
                "{row:?}"
            );
        }
    }
}
