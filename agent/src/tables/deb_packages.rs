//! `deb_packages`: Debian packages, from dpkg's `status` file (osquery's `deb_packages`).
//!
//! osquery reads the database through libdpkg; Tend parses the same file,
//! `<admindir>/status` (`admindir = ...` picks another dpkg directory, default
//! `/var/lib/dpkg`), with libdpkg's rules: every package whose state is not
//! `not-installed` is listed (so `deinstall ok config-files` too), sorted by
//! name and architecture; `status` is the `Status:` field, `revision` the
//! Debian revision (after the last `-`, empty for native packages), `source`
//! the raw `Source:` field (empty when the package is its own source),
//! `size` the `Installed-Size:` field, and a missing `Priority:` reads
//! `unknown`. Unlike libdpkg, Tend does not replay dpkg's journal
//! (`updates/`), which only holds changes of an interrupted dpkg run.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "deb_packages",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("version"),
    col::text("source"),
    col::bigint("size"),
    col::text("arch"),
    col::text("revision"),
    col::text("status"),
    col::text("maintainer"),
    col::text("section"),
    col::text("priority"),
    col::text("admindir").additional().optimized(),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::text("mount_namespace_id")
        .hidden()
        .on(Platforms::LINUX),
];

const TABLE_NAME: &str = "deb_packages";
const DEFAULT_ADMINDIR: &str = "/var/lib/dpkg";
const PRIORITIES: &[&str] = &["required", "important", "standard", "optional", "extra"];

/// One package stanza of the status file, as osquery reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub source: String,
    pub size: String,
    pub arch: String,
    pub revision: String,
    pub status: String,
    pub maintainer: String,
    pub section: String,
    pub priority: String,
}

/// The Debian revision of a version: after the last `-`, empty if none.
pub fn revision(version: &str) -> &str {
    let upstream = version.split_once(':').map_or(version, |(_, rest)| rest);
    upstream.rsplit_once('-').map_or("", |(_, rev)| rev)
}

/// Parses a dpkg status file into the packages osquery lists.
pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out: Vec<Package> = text.split("\n\n").filter_map(parse_stanza).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.arch.cmp(&b.arch)));
    out
}

fn parse_stanza(stanza: &str) -> Option<Package> {
    let mut p = Package::default();
    let mut priority = None;
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            continue; // continuation of a multi-line field
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Package" => p.name = value,
            "Version" => p.version = value,
            "Source" => p.source = value,
            "Installed-Size" => p.size = value,
            "Architecture" => p.arch = value,
            "Status" => p.status = value.split_whitespace().collect::<Vec<_>>().join(" "),
            "Maintainer" => p.maintainer = value,
            "Section" => p.section = value,
            "Priority" => priority = Some(value),
            _ => {}
        }
    }
    if p.name.is_empty() || p.status.is_empty() || p.status.ends_with(" not-installed") {
        return None;
    }
    p.revision = revision(&p.version).to_string();
    p.priority = match priority {
        // libdpkg knows the standard names case-insensitively and keeps others as written.
        Some(v) => PRIORITIES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&v))
            .map_or(v, |k| k.to_string()),
        None => "unknown".to_string(),
    };
    Some(p)
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut admindirs = constraints.eq("admindir");
    if admindirs.is_empty() {
        admindirs.push(DEFAULT_ADMINDIR.to_string());
    }
    let mut rows = Vec::new();
    for admindir in admindirs {
        let status = Path::new(&admindir).join("status");
        // osquery logs and skips a directory that is not a dpkg database.
        let Some(text) = read_optional(ctx.machine.fs.as_ref(), &status)
            .map_err(|e| TableError::io(TABLE_NAME, format!("reading {}", status.display()), e))?
        else {
            continue;
        };
        for p in parse_status(&text) {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("name", p.name)
                .set("version", p.version)
                .set("source", p.source)
                .set("size", p.size)
                .set("arch", p.arch)
                .set("revision", p.revision)
                .set("status", p.status)
                .set("maintainer", p.maintainer)
                .set("section", p.section)
                .set("priority", p.priority)
                .set("admindir", admindir.as_str())
                .set("pid_with_namespace", 0);
            rows.push(r.build());
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
    fn revisions() {
        assert_eq!(revision("2.36-9+deb12u7"), "9+deb12u7");
        assert_eq!(revision("1:9.2p1-2+deb12u3"), "2+deb12u3");
        assert_eq!(revision("3.134"), "");
        assert_eq!(revision("1:2.38.1-5+deb12u1"), "5+deb12u1");
    }

    fn engine() -> crate::sql::Engine {
        crate::sql::Engine::new(fixture("deb_packages")).unwrap()
    }

    #[test]
    fn reads_a_recorded_debian() {
        let e = engine();
        let all = e.query("SELECT name, arch FROM deb_packages").unwrap();
        let names: Vec<String> = all
            .rows
            .iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::Text(n), Value::Text(a)) => format!("{n}:{a}"),
                other => panic!("{other:?}"),
            })
            .collect();
        // Sorted; the purged package is gone, the removed-but-configured one stays.
        assert_eq!(
            names,
            [
                "adduser:all",
                "libc6:amd64",
                "libc6:i386",
                "openssh-server:amd64",
                "tzdata:all",
                "vim-tiny:amd64"
            ]
        );
        let ssh = e
            .query("SELECT * FROM deb_packages WHERE name = 'openssh-server'")
            .unwrap();
        let get = |c: &str| ssh.get(0, c).cloned();
        assert_eq!(
            get("version"),
            Some(Value::Text("1:9.2p1-2+deb12u3".into()))
        );
        assert_eq!(get("revision"), Some(Value::Text("2+deb12u3".into())));
        assert_eq!(get("source"), Some(Value::Text("openssh".into())));
        assert_eq!(get("size"), Some(Value::Integer(1836)));
        assert_eq!(
            get("status"),
            Some(Value::Text("install ok installed".into()))
        );
        assert_eq!(get("section"), Some(Value::Text("net".into())));
        assert_eq!(get("priority"), Some(Value::Text("optional".into())));
        assert_eq!(get("admindir"), Some(Value::Text("/var/lib/dpkg".into())));
        assert_eq!(
            get("maintainer"),
            Some(Value::Text(
                "Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>".into()
            ))
        );
        let adduser = e
            .query("SELECT source, revision, priority FROM deb_packages WHERE name = 'adduser'")
            .unwrap();
        assert_eq!(adduser.get(0, "source"), Some(&Value::Text(String::new())));
        assert_eq!(
            adduser.get(0, "revision"),
            Some(&Value::Text(String::new()))
        );
        assert_eq!(
            adduser.get(0, "priority"),
            Some(&Value::Text("important".into()))
        );
        let vim = e
            .query("SELECT status, priority FROM deb_packages WHERE name = 'vim-tiny'")
            .unwrap();
        assert_eq!(
            vim.get(0, "status"),
            Some(&Value::Text("deinstall ok config-files".into()))
        );
        assert_eq!(vim.get(0, "priority"), Some(&Value::Text("unknown".into())));
        let libc = e
            .query("SELECT source FROM deb_packages WHERE name = 'libc6' AND arch = 'amd64'")
            .unwrap();
        assert_eq!(libc.get(0, "source"), Some(&Value::Text("glibc".into())));
    }

    #[test]
    fn admindir_picks_another_database() {
        let e = engine();
        let res = e.query("SELECT name, admindir FROM deb_packages WHERE admindir = '/opt/chroot/var/lib/dpkg'").unwrap();
        assert_eq!(res.rows.len(), 1);
        assert_eq!(res.get(0, "name"), Some(&Value::Text("busybox".into())));
        let none = e
            .query("SELECT name FROM deb_packages WHERE admindir = '/nowhere'")
            .unwrap();
        assert!(none.rows.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine
            .query("SELECT count(*) AS n FROM deb_packages WHERE status = 'install ok installed'")
            .unwrap();
        if Path::new("/var/lib/dpkg/status").exists() {
            assert!(matches!(res.get(0, "n"), Some(Value::Integer(n)) if *n > 10));
        }
    }
}
