//! `apt_sources`: APT package repositories (osquery's `apt_sources`).
//!
//! The repositories come from `/etc/apt/sources.list`, the one-line
//! `/etc/apt/sources.list.d/*.list` files and the deb822
//! `/etc/apt/sources.list.d/*.sources` files (binary `deb` entries only).
//! As in osquery, `name` is the URI without its scheme followed by the suite
//! (`deb.debian.org/debian bookworm`), and a repository has a row only when
//! APT has downloaded its `Release`/`InRelease` file into `/var/lib/apt/lists`:
//! `release`, `version`, `maintainer`, `components` and `architectures` are
//! that file's `Codename`, `Version`, `Origin`, `Components` and
//! `Architectures`. osquery's quirks are kept: the lists file name is not
//! escaped the way APT escapes it (a URI with `_` finds no file, so no row),
//! and a deb822 stanza is skipped unless `Enabled:` is absent or `on`.

use std::path::{Path, PathBuf};

use super::system_info::osquery_split;
use crate::os::{FileKind, Fs};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths;

pub static TABLE: TableDef = TableDef {
    name: "apt_sources",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("source"),
    col::text("base_uri"),
    col::text("release"),
    col::text("version"),
    col::text("maintainer"),
    col::text("components"),
    col::text("architectures"),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
];

const TABLE_NAME: &str = "apt_sources";
const LISTS_DIR: &str = "/var/lib/apt/lists";
const WHITESPACE: &[char] = &['\t', '\n', '\x0b', '\x0c', '\r', ' '];

/// One repository (URI and suite) of a sources file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AptSource {
    pub base_uri: String,
    pub name: String,
    /// The parts of its lists file name, before `_` joining.
    pub cache_file: Vec<String>,
}

impl AptSource {
    fn new(base_uri: &str, suite: &str) -> Option<AptSource> {
        let host = base_uri.find("://")?;
        let target = base_uri.get(host + 3..)?.to_string();
        let parts = osquery_split(suite, &['/']);
        let mut cache_file = vec![target.clone()];
        if parts.len() == 1 {
            // A `dists/<suite>` repository.
            cache_file.push("dists".into());
            cache_file.push(suite.to_string());
        } else {
            cache_file.extend(parts);
        }
        Some(AptSource {
            base_uri: base_uri.to_string(),
            name: format!("{target} {suite}"),
            cache_file,
        })
    }

    /// The lists file name without its `_Release`/`_InRelease` ending.
    pub fn cache_filename(&self) -> String {
        self.cache_file.join("_").replace('/', "_")
    }
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// Parses a one-line-style entry (`deb [options] uri suite [components]`).
pub fn parse_list_line(line: &str) -> Option<AptSource> {
    let line = strip_comment(line);
    // Binary repositories only: `deb-src` lines do not contain "deb ".
    let rest = &line[line.find("deb ")? + 4..];
    let tokens = osquery_split(rest, &[' ']);
    if tokens.len() < 2 {
        return None;
    }
    let mut offset = 0;
    if tokens[0].starts_with('[') {
        if let Some(close) = tokens.iter().position(|t| t.contains(']')) {
            offset = close;
        }
        offset += 1;
    }
    let uri = tokens.get(offset)?;
    uri.find("://")?;
    let suite = tokens.get(offset + 1)?;
    AptSource::new(uri.trim_end_matches('/'), suite)
}

/// Parses one deb822 stanza into its (URI, suite) repositories.
pub fn parse_deb822_block(block: &str) -> Vec<AptSource> {
    let mut uris = Vec::new();
    let mut suites = Vec::new();
    for line in osquery_split(block, &['\n']) {
        let line = strip_comment(&line);
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "types" if !osquery_split(value, WHITESPACE).iter().any(|t| t == "deb") => {
                return Vec::new();
            }
            "enabled" if value != "on" => return Vec::new(),
            "uris" => uris.extend(
                osquery_split(value, WHITESPACE)
                    .into_iter()
                    .filter(|u| u.contains("://"))
                    .map(|u| u.trim_end_matches('/').to_string()),
            ),
            "suites" => suites.extend(osquery_split(value, WHITESPACE)),
            _ => {}
        }
    }
    uris.iter()
        .flat_map(|uri| {
            suites
                .iter()
                .filter_map(move |suite| AptSource::new(uri, suite))
        })
        .collect()
}

/// The fields osquery takes from a Release file, as (column, value).
pub fn release_fields(text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for header in osquery_split(text, &['\n']) {
        if header == "-----BEGIN PGP SIGNATURE-----" {
            break;
        }
        let fields = osquery_split(&header, &[':']);
        if fields.len() != 2 {
            continue;
        }
        let column = match fields[0].as_str() {
            "Codename" => "release",
            "Version" => "version",
            "Origin" => "maintainer",
            "Components" => "components",
            "Architectures" => "architectures",
            _ => continue,
        };
        out.push((column, fields[1].clone()));
    }
    out
}

/// The regular files of `dir` whose names end with `suffix`, sorted (osquery's `dir/%suffix`).
fn files_ending(fs: &dyn Fs, dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs.read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(suffix) && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| paths::join(dir, n))
        .filter(|p| fs.metadata(p, true).is_ok_and(|m| m.kind != FileKind::Dir))
        .collect()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut found: Vec<(PathBuf, AptSource)> = Vec::new();

    let mut lists = Vec::new();
    let main = PathBuf::from("/etc/apt/sources.list");
    if fs.exists(&main) {
        lists.push(main);
    }
    lists.extend(files_ending(
        fs,
        Path::new("/etc/apt/sources.list.d"),
        ".list",
    ));
    for path in lists {
        // osquery logs an unreadable sources file and goes on.
        let Ok(text) = fs.read_string(&path) else {
            continue;
        };
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            if let Some(s) = parse_list_line(line) {
                found.push((path.clone(), s));
            }
        }
    }
    for path in files_ending(fs, Path::new("/etc/apt/sources.list.d"), ".sources") {
        let Ok(text) = fs.read_string(&path) else {
            continue;
        };
        for block in text.split("\n\n").filter(|b| !b.is_empty()) {
            found.extend(
                parse_deb822_block(block)
                    .into_iter()
                    .map(|s| (path.clone(), s)),
            );
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }

    let release_files: Vec<String> = fs
        .read_dir(Path::new(LISTS_DIR))
        .map(|entries| {
            let mut names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
            names.sort();
            names
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (path, source) in found {
        let prefix = format!("{}_", source.cache_filename());
        let Some(release) = release_files.iter().find(|n| {
            n.starts_with(&prefix) && n.len() >= prefix.len() + 7 && n.ends_with("Release")
        }) else {
            continue;
        };
        let release_path = paths::join(Path::new(LISTS_DIR), release);
        let text = match fs.read_string(&release_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(TableError::io(
                    TABLE_NAME,
                    format!("reading {}", release_path.display()),
                    e,
                ));
            }
        };
        let mut r = RowBuilder::new(COLUMNS);
        r.set("source", path.to_string_lossy().as_ref())
            .set("base_uri", source.base_uri)
            .set("name", source.name);
        for (column, value) in release_fields(&text) {
            r.set(column, value);
        }
        r.set("pid_with_namespace", 0);
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn one_line_entries() {
        let s = parse_list_line("deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://packages.cloud.google.com/apt/ cloud-sdk main").unwrap();
        assert_eq!(s.base_uri, "https://packages.cloud.google.com/apt");
        assert_eq!(s.name, "packages.cloud.google.com/apt cloud-sdk");
        assert_eq!(
            s.cache_filename(),
            "packages.cloud.google.com_apt_dists_cloud-sdk"
        );
        assert!(parse_list_line("deb-src http://deb.debian.org/debian bookworm main").is_none());
        assert!(parse_list_line("# deb http://deb.debian.org/debian bookworm main").is_none());
        let flat = parse_list_line("deb https://download.example.com/repo/ stable/amd64/").unwrap();
        assert_eq!(
            flat.cache_filename(),
            "download.example.com_repo_stable_amd64"
        );
    }

    #[test]
    fn deb822_stanzas() {
        let all = parse_deb822_block(
            "Types: deb deb-src\n# a comment\nURIs: http://deb.debian.org/debian\n\
             Suites: bookworm bookworm-updates\nComponents: main\n",
        );
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "deb.debian.org/debian bookworm",
                "deb.debian.org/debian bookworm-updates"
            ]
        );
        assert!(parse_deb822_block("Types: deb-src\nURIs: http://x.org/d\nSuites: s\n").is_empty());
        assert!(
            parse_deb822_block("Enabled: no\nTypes: deb\nURIs: http://x.org/d\nSuites: s\n")
                .is_empty()
        );
    }

    #[test]
    fn release_file_fields() {
        let f = release_fields(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nVersion: 12.14\n\
             Codename: bookworm\nDate: Sat, 16 May 2026 10:54:28 UTC\nComponents: main contrib\n\
             -----BEGIN PGP SIGNATURE-----\nVersion: 9\n",
        );
        assert_eq!(
            f,
            vec![
                ("maintainer", "Debian".to_string()),
                ("version", "12.14".to_string()),
                ("release", "bookworm".to_string()),
                ("components", "main contrib".to_string()),
            ]
        );
    }

    #[test]
    fn reads_a_recorded_debian() {
        let engine = crate::sql::Engine::new(fixture("apt_sources")).unwrap();
        let res = engine.query("SELECT * FROM apt_sources").unwrap();
        let names: Vec<String> = res
            .rows
            .iter()
            .map(|r| match &r[0] {
                Value::Text(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        // The nodesource repository has no lists file under osquery's name; the
        // disabled stanza and the deb-src line give nothing.
        assert_eq!(
            names,
            [
                "packages.cloud.google.com/apt cloud-sdk-bookworm",
                "deb.debian.org/debian bookworm",
                "deb.debian.org/debian bookworm-updates",
                "deb.debian.org/debian-security bookworm-security",
            ]
        );
        let main = engine
            .query("SELECT * FROM apt_sources WHERE name = 'deb.debian.org/debian bookworm'")
            .unwrap();
        let get = |c: &str| main.get(0, c).cloned();
        assert_eq!(
            get("source"),
            Some(Value::Text("/etc/apt/sources.list.d/debian.sources".into()))
        );
        assert_eq!(
            get("base_uri"),
            Some(Value::Text("http://deb.debian.org/debian".into()))
        );
        assert_eq!(get("release"), Some(Value::Text("bookworm".into())));
        assert_eq!(get("version"), Some(Value::Text("12.14".into())));
        assert_eq!(get("maintainer"), Some(Value::Text("Debian".into())));
        assert_eq!(
            get("components"),
            Some(Value::Text(
                "main contrib non-free-firmware non-free".into()
            ))
        );
        assert_eq!(
            get("architectures"),
            Some(Value::Text(
                "all amd64 arm64 armel armhf i386 mips64el mipsel ppc64el s390x".into()
            ))
        );
        let google = engine
            .query("SELECT source, version FROM apt_sources WHERE name LIKE 'packages.%'")
            .unwrap();
        assert_eq!(
            google.get(0, "source"),
            Some(&Value::Text(
                "/etc/apt/sources.list.d/google-cloud-sdk.list".into()
            ))
        );
        assert_eq!(google.get(0, "version"), Some(&Value::Null));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        engine
            .query("SELECT name, base_uri FROM apt_sources")
            .unwrap();
    }
}
