//! `process_memory_map`: the mapped regions of processes, from
//! `/proc/<pid>/maps` (osquery's `process_memory_map`).
//!
//! Parsed as osquery parses it: fields split on spaces, `start`/`end` as
//! `0x`-prefixed hex, `offset` as a number, and `path` the first word after
//! the inode (osquery's split keeps only that word, so `/usr/lib/x (deleted)`
//! is `/usr/lib/x`). `pseudo` is 1 for a named region with no inode
//! (`[heap]`, `[stack]`, `[vdso]`). `pid = ...` reads only those processes;
//! without it every process is read, as osquery does.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::processes::{constrained_pids, proc_path};

pub static TABLE: TableDef = TableDef {
    name: "process_memory_map",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("pid").index().optimized(),
    col::text("start"),
    col::text("end"),
    col::text("permissions"),
    col::bigint("offset"),
    col::text("device"),
    col::integer("inode"),
    col::text("path"),
    col::integer("pseudo"),
];

/// One region of `/proc/<pid>/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: String,
    pub end: String,
    pub permissions: String,
    pub offset: i64,
    pub device: String,
    pub inode: String,
    pub path: String,
    pub pseudo: bool,
}

/// Parses `/proc/<pid>/maps`.
pub fn parse_maps(text: &str) -> Vec<Region> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
        if f.len() < 5 {
            continue;
        }
        let Some((start, end)) = f[0].split_once('-') else {
            continue;
        };
        let path = f.get(5).map_or("", |p| p.trim()).to_string();
        out.push(Region {
            start: format!("0x{start}"),
            end: format!("0x{end}"),
            permissions: f[1].to_string(),
            offset: i64::from_str_radix(f[2], 16).unwrap_or(-1),
            device: f[3].to_string(),
            inode: f[4].to_string(),
            pseudo: f[4] == "0" && !path.is_empty(),
            path,
        });
    }
    out
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for pid in constrained_pids(ctx, constraints)? {
        ctx.check_deadline()?;
        // Other users' maps are unreadable without privileges: no rows for them.
        let Ok(text) = ctx.machine.fs.read_string(&proc_path(&pid, "maps")) else {
            continue;
        };
        let pid_num = pid.parse::<i64>().unwrap_or(0);
        for region in parse_maps(&text) {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("pid", pid_num)
                .set("start", region.start)
                .set("end", region.end)
                .set("permissions", region.permissions)
                .set("offset", region.offset)
                .set("device", region.device)
                .set("inode", region.inode)
                .set("path", region.path)
                .set("pseudo", region.pseudo);
            rows.push(r.build());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn parses_maps_like_osquery() {
        let regions = parse_maps(
            "5598e6a00000-5598e6a2c000 r--p 00000000 fe:01 1836402                    /usr/sbin/sshd\n\
             5598e7f1b000-5598e7f3c000 rw-p 00000000 00:00 0                          [heap]\n\
             7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0 \n\
             7f3a1d400000-7f3a1d428000 r--p 00000000 fe:01 1835133                    /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)\n\
             7ffd5a7f0000-7ffd5a7f4000 r--p 00000000 00:00 0                          [vvar]\n",
        );
        assert_eq!(regions.len(), 5);
        assert_eq!(regions[0].start, "0x5598e6a00000");
        assert_eq!(regions[0].end, "0x5598e6a2c000");
        assert_eq!(regions[0].path, "/usr/sbin/sshd");
        assert!(!regions[0].pseudo);
        assert_eq!(
            (regions[1].path.as_str(), regions[1].pseudo),
            ("[heap]", true)
        );
        assert_eq!((regions[2].path.as_str(), regions[2].pseudo), ("", false));
        assert_eq!(regions[3].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(regions[4].pseudo);
    }

    #[test]
    fn reads_recorded_maps() {
        let engine = Engine::new(fixture("process_memory_map")).unwrap();
        let r = engine
            .query("SELECT start, permissions, offset, device, inode, path, pseudo FROM process_memory_map WHERE pid = 1234")
            .unwrap();
        assert_eq!(r.rows.len(), 9);
        assert_eq!(
            r.get(1, "start"),
            Some(&Value::Text("0x55f1c2a15000".into()))
        );
        assert_eq!(r.get(1, "permissions"), Some(&Value::Text("r-xp".into())));
        assert_eq!(r.get(1, "offset"), Some(&Value::Integer(0x15000)));
        assert_eq!(r.get(1, "device"), Some(&Value::Text("fe:01".into())));
        assert_eq!(r.get(1, "inode"), Some(&Value::Integer(1_836_402)));
        let pseudo = engine
            .query("SELECT path FROM process_memory_map WHERE pid = 1234 AND pseudo = 1 ORDER BY start")
            .unwrap();
        let names: Vec<&Value> = pseudo.rows.iter().map(|r| &r[0]).collect();
        assert_eq!(
            names,
            vec![
                &Value::Text("[heap]".into()),
                &Value::Text("[stack]".into()),
                &Value::Text("[vvar]".into()),
                &Value::Text("[vdso]".into())
            ]
        );
        let all = engine
            .query("SELECT count(*) FROM process_memory_map")
            .unwrap();
        assert_eq!(all.rows[0][0], Value::Integer(9));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let me = std::process::id();
        let r = engine
            .query(&format!(
                "SELECT count(*) FROM process_memory_map WHERE pid = {me} AND path LIKE '%[stack]%'"
            ))
            .unwrap();
        assert_eq!(r.rows[0][0], Value::Integer(1));
    }
}
