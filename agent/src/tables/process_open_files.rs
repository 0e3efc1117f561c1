//! `process_open_files`: file descriptors of processes that name files, from
//! the `/proc/<pid>/fd/<n>` links (osquery's `process_open_files`).
//!
//! As osquery does, descriptors whose target is a socket, a pipe or an
//! anonymous inode are left out. `pid = ...` reads only those processes.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::processes::{all_pids, proc_path};

pub static TABLE: TableDef = TableDef {
    name: "process_open_files",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::bigint("pid").index(),
    col::bigint("fd"),
    col::text("path"),
];

/// Whether a descriptor's link target is a file (not a socket, pipe or anonymous inode).
pub fn is_file_target(target: &str) -> bool {
    !["socket:", "anon_inode:", "pipe:"]
        .iter()
        .any(|p| target.contains(p))
}

/// The descriptors of one process, number and link target, in fd order.
/// A process whose `fd` directory cannot be listed has none.
pub(crate) fn descriptors(ctx: &ScanContext<'_>, pid: &str) -> Vec<(i64, String)> {
    let fs = ctx.machine.fs.as_ref();
    let dir = proc_path(pid, "fd");
    let Ok(entries) = fs.read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(i64, String)> = entries
        .iter()
        .filter_map(|e| {
            let fd = e.name.parse::<i64>().ok()?;
            // The descriptor may close between the listing and the readlink.
            let target = fs.read_link(&dir.join(&e.name)).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    out.sort_by_key(|(fd, _)| *fd);
    out
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    // Like osquery, constrained pids are read as given (a missing one has no fds).
    let wanted: Vec<String> = constraints
        .eq("pid")
        .iter()
        .filter_map(|p| p.trim().parse::<u64>().ok())
        .filter(|p| *p > 0)
        .map(|p| p.to_string())
        .collect();
    let pids = if constraints.eq("pid").is_empty() {
        all_pids(ctx)?
    } else {
        wanted
    };
    let mut rows = Vec::new();
    for pid in pids {
        ctx.check_deadline()?;
        for (fd, target) in descriptors(ctx, &pid) {
            if !is_file_target(&target) {
                continue;
            }
            let mut r = RowBuilder::new(COLUMNS);
            r.set("pid", pid.parse::<i64>().unwrap_or(0))
                .set("fd", fd)
                .set("path", target);
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
    fn filters_non_files() {
        assert!(is_file_target("/var/log/nginx/access.log"));
        assert!(is_file_target("/dev/null"));
        assert!(!is_file_target("socket:[40211]"));
        assert!(!is_file_target("pipe:[40190]"));
        assert!(!is_file_target("anon_inode:[eventpoll]"));
    }

    #[test]
    fn reads_recorded_descriptors() {
        let engine = Engine::new(fixture("process_open_files")).unwrap();
        let r = engine
            .query("SELECT pid, fd, path FROM process_open_files ORDER BY pid, fd")
            .unwrap();
        let rows: Vec<(i64, i64, String)> = r
            .rows
            .iter()
            .map(|row| match (&row[0], &row[1], &row[2]) {
                (Value::Integer(p), Value::Integer(f), Value::Text(t)) => (*p, *f, t.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (612, 0, "/dev/null".to_string()),
                (612, 2, "/var/log/nginx/error.log".to_string()),
                (612, 5, "/var/log/nginx/access.log".to_string()),
                (700, 1, "/home/bob/.bash_history".to_string()),
            ]
        );
        let one = engine
            .query("SELECT fd FROM process_open_files WHERE pid = 700")
            .unwrap();
        assert_eq!(one.rows, vec![vec![Value::Integer(1)]]);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let me = std::process::id();
        let r = engine
            .query(&format!(
                "SELECT fd, path FROM process_open_files WHERE pid = {me}"
            ))
            .unwrap();
        // The test binary has at least its standard descriptors open (often /dev/null or a file).
        for row in &r.rows {
            assert!(matches!(&row[1], Value::Text(p) if !p.starts_with("socket:")));
        }
    }
}
