//! `os_version`: the distribution's name and version, from `/etc/os-release`
//! (osquery's `os_version`).
//!
//! As osquery does: `NAME`, `VERSION`, `BUILD_ID`, `ID`, `ID_LIKE` and
//! `VERSION_CODENAME` (or any other `*CODENAME*` key, the last one winning)
//! fill `name`, `version`, `build`, `platform`, `platform_like` and
//! `codename`; `VERSION_ID` splits into `major`/`minor`/`patch` (0 when
//! absent); `arch` is `uname`'s machine. On Red Hat and Gentoo family systems
//! osquery then reads `/etc/redhat-release` (or `/etc/gentoo-release`), sets
//! `platform`/`platform_like` to `rhel` (`gentoo`), `version` to that file's
//! text, and takes the name and version numbers from it where it matches
//! `NAME ... MAJOR.MINOR[.PATCH]`.

use std::path::Path;

use regex::Regex;

use super::system_info::osquery_split;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

mod macos;
mod windows;

pub static TABLE: TableDef = TableDef {
    name: "os_version",
    columns: COLUMNS,
    platforms: Platforms::LINUX
        .union(Platforms::MACOS)
        .union(Platforms::WINDOWS),
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("version"),
    col::integer("major"),
    col::integer("minor"),
    col::integer("patch"),
    col::text("build"),
    col::text("platform"),
    col::text("platform_like"),
    col::text("codename"),
    col::text("arch"),
    col::text("extra").on(Platforms::MACOS),
    col::bigint("install_date").on(Platforms::WINDOWS),
    col::integer("revision").on(Platforms::WINDOWS),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::text("mount_namespace_id")
        .hidden()
        .on(Platforms::LINUX),
];

const TABLE_NAME: &str = "os_version";

/// The older Red Hat release line: `CentOS Linux release 7.9.2009 (Core)`.
const REDHAT_RELEASE: &str = r"([A-Za-z0-9_+\s]+) .* ([0-9]+)\.([0-9]+)\.?([A-Za-z0-9_]+)?";

/// The columns osquery fills, by name, as text (the engine types them).
#[derive(Debug, Default, PartialEq)]
pub struct OsVersion {
    pub fields: Vec<(&'static str, String)>,
}

impl OsVersion {
    fn set(&mut self, column: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(c, _)| *c == column) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((column, value)),
        }
    }

    #[cfg(test)]
    pub fn get(&self, column: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v.as_str())
    }
}

/// Applies /etc/os-release to `v` the way osquery's `genOSRelease` does.
pub fn apply_os_release(v: &mut OsVersion, text: &str) {
    for line in text.split('\n') {
        // osquery's split(line, '=', 1): the key, then the rest rejoined.
        let pieces = osquery_split(line, &['=']);
        if pieces.len() < 2 {
            continue;
        }
        let key = pieces[0].as_str();
        let mut value = pieces[1..].join("=");
        let column = match key {
            "NAME" => "name",
            "VERSION" => "version",
            "BUILD_ID" => "build",
            "ID" => "platform",
            "ID_LIKE" => "platform_like",
            "VERSION_CODENAME" => "codename",
            "VERSION_ID" => "_id",
            // Some distributions invent their own codename key (UBUNTU_CODENAME).
            k if k.contains("CODENAME") => "codename",
            _ => continue,
        };
        if value.starts_with('"') {
            // osquery drops the first and last character of a quoted value.
            let end = value.len().saturating_sub(1).max(1);
            value = value.get(1..end).unwrap_or("").to_string();
        }
        if column == "_id" {
            let parts = osquery_split(&value, &['.']);
            let mut it = parts.iter();
            if let Some(major) = it.next() {
                v.set("major", major.clone());
            }
            if let Some(minor) = it.next() {
                v.set("minor", minor.clone());
            }
            let rest: Vec<&str> = it.map(String::as_str).collect();
            if !rest.is_empty() {
                v.set("patch", rest.join("."));
            }
            continue;
        }
        v.set(column, value);
    }
}

/// Applies an /etc/redhat-release (or gentoo-release) text, as osquery does.
pub fn apply_release_file(v: &mut OsVersion, text: &str, re: &Regex) {
    let content = trim_all(text);
    if let Some(c) = content.split('\n').find_map(|line| re.captures(line)) {
        let group = |i: usize| c.get(i).map_or("", |m| m.as_str()).to_string();
        v.set("name", group(1));
        v.set("major", group(2));
        v.set("minor", group(3));
        let patch = group(4);
        v.set(
            "patch",
            if patch.is_empty() {
                "0".to_string()
            } else {
                patch
            },
        );
    }
    v.set("version", content);
    v.set("build", "");
}

/// Boost's `trim_all`: trims, and shortens each inner run of blanks to its first character.
fn trim_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            if !in_run {
                out.push(c);
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    if ctx.platform() == crate::sql::table::Platform::Macos {
        return macos::generate(ctx, constraints);
    }
    if ctx.platform() == crate::sql::table::Platform::Windows {
        return windows::generate(ctx, constraints);
    }
    let fs = ctx.machine.fs.as_ref();
    let mut v = OsVersion::default();
    v.set("name", "Unknown");
    v.set("major", "0");
    v.set("minor", "0");
    v.set("patch", "0");
    v.set("platform", "posix");
    v.set("pid_with_namespace", "0");

    let os_release = read_optional(fs, Path::new("/etc/os-release"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /etc/os-release", e))?;
    if let Some(text) = os_release.filter(|t| !t.is_empty()) {
        apply_os_release(&mut v, &text);
    }
    if let Ok(u) = ctx.machine.host.uname() {
        v.set("arch", u.machine);
    }

    let family = [
        ("/etc/redhat-release", "rhel"),
        ("/etc/gentoo-release", "gentoo"),
    ]
    .into_iter()
    .find_map(|(path, platform)| fs.read_string(Path::new(path)).ok().map(|t| (t, platform)));
    if let Some((text, platform)) = family {
        v.set("platform", platform);
        v.set("platform_like", platform);
        let re =
            Regex::new(REDHAT_RELEASE).map_err(|e| TableError::other(TABLE_NAME, e.to_string()))?;
        apply_release_file(&mut v, &text, &re);
    }

    let mut r = RowBuilder::new(COLUMNS);
    for (column, value) in v.fields {
        if COLUMNS.iter().any(|c| c.name == column) {
            r.set(column, value);
        }
    }
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;

    #[test]
    fn ubuntu_os_release() {
        let mut v = OsVersion::default();
        apply_os_release(
            &mut v,
            "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n\
             VERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\n\
             ID_LIKE=debian\nUBUNTU_CODENAME=jammy\n",
        );
        assert_eq!(v.get("name"), Some("Ubuntu"));
        assert_eq!(v.get("version"), Some("22.04.4 LTS (Jammy Jellyfish)"));
        assert_eq!(v.get("major"), Some("22"));
        assert_eq!(v.get("minor"), Some("04"));
        assert_eq!(v.get("patch"), None);
        assert_eq!(v.get("platform"), Some("ubuntu"));
        assert_eq!(v.get("platform_like"), Some("debian"));
        assert_eq!(v.get("codename"), Some("jammy"));
    }

    #[test]
    fn centos_release_line() {
        let re = Regex::new(REDHAT_RELEASE).unwrap();
        let mut v = OsVersion::default();
        apply_release_file(&mut v, "CentOS Linux release 7.9.2009 (Core)\n", &re);
        assert_eq!(v.get("name"), Some("CentOS Linux"));
        assert_eq!(
            (v.get("major"), v.get("minor"), v.get("patch")),
            (Some("7"), Some("9"), Some("2009"))
        );
        assert_eq!(
            v.get("version"),
            Some("CentOS Linux release 7.9.2009 (Core)")
        );
        let mut v = OsVersion::default();
        apply_release_file(&mut v, "Red Hat Enterprise Linux release 9.3 (Plow)\n", &re);
        assert_eq!(v.get("name"), Some("Red Hat Enterprise Linux"));
        assert_eq!(
            (v.get("major"), v.get("minor"), v.get("patch")),
            (Some("9"), Some("3"), Some("0"))
        );
    }

    fn query(fixture: &str) -> crate::sql::QueryResult {
        let engine =
            crate::sql::Engine::new(crate::tables::util::testing::fixture(fixture)).unwrap();
        engine.query("SELECT * FROM os_version").unwrap()
    }

    #[test]
    fn reads_a_recorded_debian() {
        let res = query("os_version");
        assert_eq!(res.rows.len(), 1);
        let get = |c: &str| res.get(0, c).cloned();
        assert_eq!(get("name"), Some(Value::Text("Debian GNU/Linux".into())));
        assert_eq!(get("version"), Some(Value::Text("12 (bookworm)".into())));
        assert_eq!(get("major"), Some(Value::Integer(12)));
        assert_eq!(get("minor"), Some(Value::Integer(0)));
        assert_eq!(get("patch"), Some(Value::Integer(0)));
        assert_eq!(get("build"), Some(Value::Null));
        assert_eq!(get("platform"), Some(Value::Text("debian".into())));
        assert_eq!(get("platform_like"), Some(Value::Null));
        assert_eq!(get("codename"), Some(Value::Text("bookworm".into())));
        assert_eq!(get("arch"), Some(Value::Text("x86_64".into())));
    }

    #[test]
    fn reads_a_recorded_rocky() {
        let res = query("os_version/rocky");
        let get = |c: &str| res.get(0, c).cloned();
        assert_eq!(get("name"), Some(Value::Text("Rocky Linux".into())));
        assert_eq!(
            get("version"),
            Some(Value::Text("Rocky Linux release 9.3 (Blue Onyx)".into()))
        );
        assert_eq!(get("major"), Some(Value::Integer(9)));
        assert_eq!(get("minor"), Some(Value::Integer(3)));
        assert_eq!(get("patch"), Some(Value::Integer(0)));
        assert_eq!(get("build"), Some(Value::Text(String::new())));
        assert_eq!(get("platform"), Some(Value::Text("rhel".into())));
        assert_eq!(get("platform_like"), Some(Value::Text("rhel".into())));
        assert_eq!(get("codename"), Some(Value::Null));
        assert_eq!(get("arch"), Some(Value::Text("aarch64".into())));
    }

    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(Machine::real()).unwrap();
        let res = engine
            .query("SELECT name, platform, arch FROM os_version")
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        assert!(matches!(res.get(0, "name"), Some(Value::Text(n)) if !n.is_empty()));
        assert!(matches!(res.get(0, "arch"), Some(Value::Text(a)) if !a.is_empty()));
    }
}
