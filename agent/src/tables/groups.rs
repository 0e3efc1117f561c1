//! `groups`: local groups, from `/etc/group` (osquery's `groups`).
//!
//! As in osquery, a gid listed twice gives one row, the first entry's.

use std::collections::HashSet;
use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "groups",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::bigint("gid").index(),
    col::bigint("gid_signed"),
    col::text("groupname"),
    col::text("group_sid").index().on(Platforms::WINDOWS),
    col::text("comment").on(Platforms::WINDOWS),
    col::integer("is_hidden").on(Platforms::MACOS),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
];

/// Parses `/etc/group` (`name:pw:gid:members`) into (name, gid), first gid wins.
pub fn parse_group(text: &str) -> Vec<(String, u32)> {
    let mut seen = HashSet::new();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 4 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            Some((f[0].to_string(), f[2].trim().parse::<u32>().ok()?))
        })
        .filter(|(_, gid)| seen.insert(*gid))
        .collect()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let text = read_optional(ctx.machine.fs.as_ref(), Path::new("/etc/group"))
        .map_err(|e| TableError::io("groups", "reading /etc/group", e))?
        .unwrap_or_default();
    Ok(parse_group(&text)
        .into_iter()
        .map(|(name, gid)| {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("gid", i64::from(gid))
                .set("gid_signed", i64::from(gid as i32))
                .set("groupname", name)
                .set("pid_with_namespace", 0);
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
    fn first_entry_of_a_gid_wins() {
        let groups = parse_group("root:x:0:\nwheel:x:10:alice\nadmins:x:10:\nbad\n");
        assert_eq!(
            groups,
            vec![("root".to_string(), 0), ("wheel".to_string(), 10)]
        );
    }

    #[test]
    fn reads_a_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("groups")).unwrap();
        let res = engine.query("SELECT * FROM groups").unwrap();
        assert_eq!(res.rows.len(), 8);
        let sudo = engine
            .query("SELECT gid, gid_signed FROM groups WHERE groupname = 'sudo'")
            .unwrap();
        assert_eq!(sudo.get(0, "gid"), Some(&Value::Integer(27)));
        let nogroup = engine
            .query("SELECT groupname, gid_signed FROM groups WHERE gid = 4294967294")
            .unwrap();
        assert_eq!(
            nogroup.get(0, "groupname"),
            Some(&Value::Text("nfsanon".into()))
        );
        assert_eq!(nogroup.get(0, "gid_signed"), Some(&Value::Integer(-2)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine
            .query("SELECT groupname FROM groups WHERE gid = 0")
            .unwrap();
        assert_eq!(res.get(0, "groupname"), Some(&Value::Text("root".into())));
    }
}
