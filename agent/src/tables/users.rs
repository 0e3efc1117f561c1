//! `users`: local user accounts, from `/etc/passwd` (osquery's `users`).
//!
//! osquery reads the same file (`fgetpwent`) unless `include_remote = 1`
//! asks it to go through NSS (LDAP, SSSD, ...). Tend reads only the file:
//! with `include_remote = 1` it still returns the local accounts. `uuid` is
//! not set on Linux, as in osquery.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "users",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::bigint("uid").index(),
    col::bigint("gid"),
    col::bigint("uid_signed"),
    col::bigint("gid_signed"),
    col::text("username").additional(),
    col::text("description"),
    col::text("directory"),
    col::text("shell"),
    col::text("uuid").index(),
    col::text("type").on(Platforms::WINDOWS),
    col::integer("is_hidden").on(Platforms::MACOS),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::integer("include_remote")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
];

/// One `/etc/passwd` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub dir: String,
    pub shell: String,
}

/// Parses `/etc/passwd`, skipping lines that are not `name:pw:uid:gid:gecos:dir:shell`
/// (as `fgetpwent` does).
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 7 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            Some(Passwd {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                gecos: f[4].to_string(),
                dir: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let text = read_optional(ctx.machine.fs.as_ref(), Path::new("/etc/passwd"))
        .map_err(|e| TableError::io("users", "reading /etc/passwd", e))?
        .unwrap_or_default();
    // Echo include_remote so `WHERE include_remote = 1` keeps the rows.
    let include_remote = i64::from(constraints.eq_int("include_remote").contains(&1));
    Ok(parse_passwd(&text)
        .into_iter()
        .map(|p| {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("uid", i64::from(p.uid))
                .set("gid", i64::from(p.gid))
                .set("uid_signed", i64::from(p.uid as i32))
                .set("gid_signed", i64::from(p.gid as i32))
                .set("username", p.name)
                .set("description", p.gecos)
                .set("directory", p.dir)
                .set("shell", p.shell)
                .set("pid_with_namespace", 0)
                .set("include_remote", include_remote);
            r.build()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn parses_passwd_lines() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nbroken line\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        );
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].uid, 65534);
        assert_eq!(users[1].shell, "/usr/sbin/nologin");
    }

    #[test]
    fn reads_a_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("users")).unwrap();
        let res = engine.query("SELECT * FROM users ORDER BY uid").unwrap();
        assert_eq!(res.rows.len(), 6);
        let alice = engine
            .query("SELECT * FROM users WHERE username = 'alice'")
            .unwrap();
        let get = |c: &str| alice.get(0, c).cloned();
        assert_eq!(get("uid"), Some(Value::Integer(1000)));
        assert_eq!(get("gid"), Some(Value::Integer(1000)));
        assert_eq!(
            get("description"),
            Some(Value::Text("Alice Example,,,".into()))
        );
        assert_eq!(get("directory"), Some(Value::Text("/home/alice".into())));
        assert_eq!(get("shell"), Some(Value::Text("/bin/bash".into())));
        assert_eq!(get("uuid"), Some(Value::Null));
        // 4294967294 is -2 as a signed 32-bit id.
        let nfs = engine
            .query("SELECT uid, uid_signed FROM users WHERE username = 'nfsanon'")
            .unwrap();
        assert_eq!(nfs.get(0, "uid"), Some(&Value::Integer(4_294_967_294)));
        assert_eq!(nfs.get(0, "uid_signed"), Some(&Value::Integer(-2)));
        let root = engine
            .query("SELECT username FROM users WHERE uid = 0")
            .unwrap();
        assert_eq!(root.get(0, "username"), Some(&Value::Text("root".into())));
        let remote = engine
            .query("SELECT count(*) AS n FROM users WHERE include_remote = 1")
            .unwrap();
        assert_eq!(remote.get(0, "n"), Some(&Value::Integer(6)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine
            .query("SELECT username FROM users WHERE uid = 0")
            .unwrap();
        assert_eq!(res.get(0, "username"), Some(&Value::Text("root".into())));
    }
}
