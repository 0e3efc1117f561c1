//! `yum_sources`: YUM/DNF repositories (osquery's `yum_sources`).
//!
//! Every INI section of `/etc/yum.conf` other than `[main]`, then of each
//! `*.repo` file in the repository directory (`reposdir` of `[main]`,
//! default `/etc/yum.repos.d`), is a row with that section's `name`,
//! `baseurl`, `mirrorlist`, `metalink`, `enabled`, `gpgcheck` and `gpgkey`
//! as written (no `$releasever` expansion). The files are read with the
//! rules of the Boost INI parser osquery uses, so a file it rejects (a
//! duplicate section or key, a line without `=`, such as a multi-line
//! `baseurl` continuation) gives no rows, as in osquery.

use std::path::{Path, PathBuf};

use crate::os::{FileKind, Fs};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths;

pub static TABLE: TableDef = TableDef {
    name: "yum_sources",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("source"),
    col::text("baseurl"),
    col::text("mirrorlist"),
    col::text("metalink"),
    col::text("enabled"),
    col::text("gpgcheck"),
    col::text("gpgkey"),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
];

const YUM_CONF: &str = "/etc/yum.conf";
const DEFAULT_REPOS_DIR: &str = "/etc/yum.repos.d";
const OPTIONS: &[&str] = &[
    "name",
    "baseurl",
    "mirrorlist",
    "metalink",
    "enabled",
    "gpgcheck",
    "gpgkey",
];

/// A top-level INI entry: a section with its keys, or a key outside any section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniEntry {
    pub name: String,
    pub keys: Vec<(String, String)>,
}

/// Parses INI text as Boost's `read_ini` does; `None` where it would throw.
pub fn parse_ini(text: &str) -> Option<Vec<IniEntry>> {
    let mut entries: Vec<IniEntry> = Vec::new();
    let mut in_section = false;
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if in_section && entries.last().is_some_and(|e| e.keys.is_empty()) {
                entries.pop(); // an empty section is dropped
            }
            let name = rest[..rest.find(']')?].trim().to_string();
            if entries.iter().any(|e| e.name == name) {
                return None; // duplicate section name
            }
            entries.push(IniEntry {
                name,
                keys: Vec::new(),
            });
            in_section = true;
            continue;
        }
        let eq = line.find('=')?;
        if eq == 0 {
            return None; // key expected
        }
        let (key, value) = (
            line[..eq].trim().to_string(),
            line[eq + 1..].trim().to_string(),
        );
        if in_section {
            let section = entries.last_mut()?;
            if section.keys.iter().any(|(k, _)| *k == key) {
                return None; // duplicate key name
            }
            section.keys.push((key, value));
        } else {
            if entries.iter().any(|e| e.name == key) {
                return None;
            }
            // A key before any section is a childless top-level entry.
            entries.push(IniEntry {
                name: key,
                keys: Vec::new(),
            });
        }
    }
    if in_section && entries.last().is_some_and(|e| e.keys.is_empty()) {
        entries.pop();
    }
    Some(entries)
}

/// The repository directory named by `[main] reposdir`, if any.
pub fn repos_dir(entries: &[IniEntry]) -> Option<String> {
    entries
        .iter()
        .find(|e| e.name == "main")?
        .keys
        .iter()
        .find(|(k, _)| k == "reposdir")
        .map(|(_, v)| v.clone())
}

fn rows_of(source: &Path, entries: &[IniEntry], rows: &mut Vec<Row>) {
    for entry in entries.iter().filter(|e| e.name != "main") {
        let mut r = RowBuilder::new(COLUMNS);
        r.set("source", source.to_string_lossy().as_ref());
        for (key, value) in &entry.keys {
            if OPTIONS.contains(&key.as_str()) {
                r.set(key, value.as_str());
            }
        }
        r.set("pid_with_namespace", 0);
        rows.push(r.build());
    }
}

/// The `*.repo` files of `dir`, sorted (osquery's `dir/%.repo`).
fn repo_files(fs: &dyn Fs, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs.read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".repo") && !n.starts_with('.'))
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
    let mut rows = Vec::new();
    let mut dir = DEFAULT_REPOS_DIR.to_string();
    // osquery skips a file it cannot read or parse.
    if let Some(entries) = fs
        .read_string(Path::new(YUM_CONF))
        .ok()
        .and_then(|t| parse_ini(&t))
    {
        if let Some(d) = repos_dir(&entries) {
            dir = d;
        }
        rows_of(Path::new(YUM_CONF), &entries, &mut rows);
    }
    for path in repo_files(fs, Path::new(&dir)) {
        ctx.check_deadline()?;
        if let Some(entries) = fs.read_string(&path).ok().and_then(|t| parse_ini(&t)) {
            rows_of(&path, &entries, &mut rows);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn boost_ini_rules() {
        let e = parse_ini("# c\n; c\n[a]\nx = 1\n[empty]\n[b]\ny=2\n").unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(e[0].keys, vec![("x".to_string(), "1".to_string())]);
        assert!(parse_ini("[a]\nx=1\n[a]\ny=2\n").is_none());
        assert!(parse_ini("[a]\nx=1\nx=2\n").is_none());
        assert!(parse_ini("[a]\nbaseurl=http://a\n  http://b\n").is_none());
    }

    #[test]
    fn reads_a_recorded_rocky() {
        let engine = crate::sql::Engine::new(fixture("yum_sources")).unwrap();
        let res = engine
            .query("SELECT name, source FROM yum_sources")
            .unwrap();
        let names: Vec<(String, String)> = res
            .rows
            .iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Text(n), Value::Text(s)) => (n.clone(), s.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        let expect = [
            ("Local mirror", "/etc/yum.conf"),
            (
                "Docker CE Stable - $basearch",
                "/etc/yum.repos.d/docker-ce.repo",
            ),
            (
                "Rocky Linux $releasever - BaseOS",
                "/etc/yum.repos.d/rocky.repo",
            ),
            (
                "Rocky Linux $releasever - AppStream",
                "/etc/yum.repos.d/rocky.repo",
            ),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(names, expect);
        let base = engine
            .query("SELECT * FROM yum_sources WHERE name LIKE '%BaseOS'")
            .unwrap();
        let get = |c: &str| base.get(0, c).cloned();
        assert_eq!(
            get("mirrorlist"),
            Some(Value::Text(
                "https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype".into()
            ))
        );
        assert_eq!(get("baseurl"), Some(Value::Null));
        assert_eq!(get("enabled"), Some(Value::Text("1".into())));
        assert_eq!(get("gpgcheck"), Some(Value::Text("1".into())));
        assert_eq!(
            get("gpgkey"),
            Some(Value::Text(
                "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9".into()
            ))
        );
        let docker = engine
            .query("SELECT baseurl, enabled FROM yum_sources WHERE source LIKE '%docker%'")
            .unwrap();
        assert_eq!(
            docker.get(0, "baseurl"),
            Some(&Value::Text(
                "https://download.docker.com/linux/centos/$releasever/$basearch/stable".into()
            ))
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        engine.query("SELECT name FROM yum_sources").unwrap();
    }
}
