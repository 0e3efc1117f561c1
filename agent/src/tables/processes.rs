//! `processes`: running processes, from `/proc/<pid>/*` (osquery's `processes`).
//!
//! As osquery does on Linux: `stat` gives state, parent, process group,
//! times, nice, threads and the start tick; `status` gives the name, the
//! real/effective/saved uid and gid, and `VmRSS`/`VmSize` (kB, reported
//! times 1000 as osquery does); `exe`, `cwd` and `root` are the links'
//! targets; `cmdline` is NUL-separated arguments joined by spaces; `io` gives
//! disk bytes where it is readable (it needs root); `cgroup_path` is the
//! first line of `/proc/<pid>/cgroup` after its second colon.
//!
//! `start_time` is the boot time (`btime` in `/proc/stat`) plus the start
//! tick divided by `CLK_TCK`. osquery asks `sysconf(_SC_CLK_TCK)`; Tend may be
//! reading a recording, so it uses 100, the kernel's fixed `USER_HZ` on every
//! architecture Linux distributions ship.
//!
//! `pid = ...` reads only those processes.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::os::{FileKind, Fs};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "processes",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::bigint("pid").index().optimized(),
    col::text("name"),
    col::text("path"),
    col::text("cmdline"),
    col::text("state"),
    col::text("cwd"),
    col::text("root"),
    col::bigint("uid"),
    col::bigint("gid"),
    col::bigint("euid"),
    col::bigint("egid"),
    col::bigint("suid"),
    col::bigint("sgid"),
    col::integer("on_disk"),
    col::bigint("wired_size"),
    col::bigint("resident_size"),
    col::bigint("total_size"),
    col::bigint("user_time"),
    col::bigint("system_time"),
    col::bigint("disk_bytes_read"),
    col::bigint("disk_bytes_written"),
    col::bigint("start_time"),
    col::bigint("parent"),
    col::bigint("pgroup"),
    col::integer("threads"),
    col::integer("nice"),
    col::integer("elevated_token").on(Platforms::WINDOWS),
    col::integer("secure_process").on(Platforms::WINDOWS),
    col::text("protection_type").on(Platforms::WINDOWS),
    col::integer("virtual_process").on(Platforms::WINDOWS),
    col::bigint("elapsed_time").on(Platforms::WINDOWS),
    col::bigint("handle_count").on(Platforms::WINDOWS),
    col::bigint("percent_processor_time").on(Platforms::WINDOWS),
    col::bigint("upid").on(Platforms::MACOS),
    col::bigint("uppid").on(Platforms::MACOS),
    col::integer("cpu_type").on(Platforms::MACOS),
    col::integer("cpu_subtype").on(Platforms::MACOS),
    col::integer("translated").on(Platforms::MACOS),
    col::text("cgroup_path").on(Platforms::LINUX),
];

/// `sysconf(_SC_CLK_TCK)`: `USER_HZ`, 100 on every Linux architecture in use.
pub const CLK_TCK: i64 = 100;

/// The suffix the kernel gives `/proc/<pid>/exe` when the binary was deleted.
const DELETED: &str = " (deleted)";

/// `/proc/<pid>/<attr>`.
pub(crate) fn proc_path(pid: &str, attr: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{attr}"))
}

/// Every process: the numeric directories of `/proc`, in pid order.
pub(crate) fn all_pids(ctx: &ScanContext<'_>) -> Result<Vec<String>, TableError> {
    let entries = ctx
        .machine
        .fs
        .read_dir(Path::new("/proc"))
        .map_err(|e| TableError::io("processes", "listing /proc", e))?;
    let mut pids: Vec<u64> = entries
        .iter()
        .filter(|e| e.kind == FileKind::Dir)
        .filter_map(|e| e.name.parse::<u64>().ok())
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    Ok(pids.into_iter().map(|p| p.to_string()).collect())
}

/// The pids a scan must read: those named by `pid = ...` that exist (as
/// osquery's `getProcList` checks), or every process.
pub(crate) fn constrained_pids(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
) -> Result<Vec<String>, TableError> {
    let wanted = constraints.eq("pid");
    if wanted.is_empty() {
        return all_pids(ctx);
    }
    let mut pids: Vec<u64> = wanted
        .iter()
        .filter_map(|p| p.trim().parse::<u64>().ok())
        .filter(|p| *p > 0)
        .filter(|p| {
            ctx.machine
                .fs
                .metadata(&PathBuf::from(format!("/proc/{p}")), true)
                .is_ok_and(|m| m.kind == FileKind::Dir)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids.into_iter().map(|p| p.to_string()).collect())
}

/// The target of a `/proc/<pid>` link, or "" when it cannot be read (as osquery).
pub(crate) fn read_proc_link(fs: &dyn Fs, pid: &str, attr: &str) -> String {
    fs.read_link(&proc_path(pid, attr))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The fields osquery takes from `/proc/<pid>/stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub state: String,
    pub parent: i64,
    pub pgroup: i64,
    /// Clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub nice: i64,
    pub threads: i64,
    /// Clock ticks after boot.
    pub starttime: Option<i64>,
}

/// Parses `/proc/<pid>/stat`, starting after the `)` that closes the name
/// (names may hold spaces and parentheses). `None` when it is malformed.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let start = text.rfind(')')?;
    let rest = text.get(start + 2..)?;
    let f: Vec<&str> = rest
        .split(' ')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if f.len() <= 19 {
        return None;
    }
    let int = |s: &str| s.parse::<i64>().unwrap_or(0);
    Some(Stat {
        state: f[0].to_string(),
        parent: int(f[1]),
        pgroup: int(f[2]),
        utime: f[11].parse().unwrap_or(0),
        stime: f[12].parse().unwrap_or(0),
        nice: int(f[16]),
        threads: int(f[17]),
        starttime: f[19].parse().ok(),
    })
}

/// The fields osquery takes from `/proc/<pid>/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    /// Real, effective, saved.
    pub uids: Option<[i64; 3]>,
    pub gids: Option<[i64; 3]>,
    /// Bytes, as osquery computes them: kB times 1000.
    pub resident_size: Option<i64>,
    pub total_size: Option<i64>,
}

/// A `VmRSS`-style value (`"  11296 kB"`) as osquery turns it into bytes: the
/// unit is dropped and three zeros appended.
fn kb_times_1000(value: &str) -> Option<i64> {
    let v = value.trim();
    let digits = v.strip_suffix(" kB").unwrap_or(v);
    digits.trim().parse::<i64>().ok().map(|kb| kb * 1000)
}

/// `R E S F` id columns of `Uid:`/`Gid:`; osquery requires all four.
fn ids(value: &str) -> Option<[i64; 3]> {
    let f: Vec<&str> = value
        .split('\t')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if f.len() != 4 {
        return None;
    }
    Some([f[0].parse().ok()?, f[1].parse().ok()?, f[2].parse().ok()?])
}

/// Parses `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "Name" => s.name = value.trim().to_string(),
            "VmRSS" => s.resident_size = kb_times_1000(value),
            "VmSize" => s.total_size = kb_times_1000(value),
            "Uid" => s.uids = ids(value.trim()),
            "Gid" => s.gids = ids(value.trim()),
            _ => {}
        }
    }
    s
}

/// `/proc/<pid>/io`: bytes read, and bytes written less cancelled writes.
pub fn parse_io(text: &str) -> (Option<i64>, i64) {
    let mut read = None;
    let mut write = 0i64;
    let mut cancelled = 0i64;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let v = value.trim().parse::<i64>().ok();
        match key.trim() {
            "read_bytes" => read = v,
            "write_bytes" => write = v.unwrap_or(0),
            "cancelled_write_bytes" => cancelled = v.unwrap_or(0),
            _ => {}
        }
    }
    (read, write - cancelled)
}

/// The cgroup path on the first line of `/proc/<pid>/cgroup`
/// (`0::/user.slice` on cgroup v2, `12:cpu:/user.slice` on v1).
pub fn parse_cgroup(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut parts = first.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(path)) => path.to_string(),
        _ => String::new(),
    }
}

/// `cmdline` as osquery shows it: NULs become spaces, outer whitespace trimmed.
pub fn join_cmdline(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace('\0', " ");
    text.trim().to_string()
}

/// The boot time in Unix seconds: `btime` from `/proc/stat`.
pub fn parse_btime(proc_stat: &str) -> Option<i64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn boot_time(ctx: &ScanContext<'_>) -> Option<i64> {
    let fs = ctx.machine.fs.as_ref();
    if let Some(b) = fs
        .read_string(Path::new("/proc/stat"))
        .ok()
        .as_deref()
        .and_then(parse_btime)
    {
        return Some(b);
    }
    // Fall back to what osquery computes: now minus the uptime.
    let uptime: f64 = fs
        .read_string(Path::new("/proc/uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = ctx
        .machine
        .host
        .now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(now - uptime as i64)
}

/// The `maps` line's inode for `path`, as osquery's `deletedMatchesInode` finds it.
fn mapped_inode(maps: &str, path: &str) -> Option<u64> {
    maps.lines().find_map(|line| {
        let idx = line.find(path)?;
        let before = line[..idx].trim_end();
        if before.len() == line[..idx].len() {
            return None; // the path must follow whitespace
        }
        before
            .rsplit(|c: char| c.is_whitespace())
            .next()?
            .parse()
            .ok()
    })
}

/// osquery's `on_disk`: 1 if the binary exists, 0 if it was deleted, -1 if
/// unknown. A path ending in " (deleted)" is trimmed unless a file of that
/// very name is the mapped binary.
fn on_disk(fs: &dyn Fs, pid: &str, path: &mut String) -> i64 {
    if path.is_empty() {
        return -1;
    }
    let exists = |p: &str| fs.metadata(Path::new(p), true).is_ok();
    if !path.ends_with(DELETED) {
        return i64::from(exists(path));
    }
    if !exists(path) {
        path.truncate(path.len() - DELETED.len());
        return 0;
    }
    let Ok(maps) = fs.read_string(&proc_path(pid, "maps")) else {
        return -1;
    };
    let Some(inode) = mapped_inode(&maps, path) else {
        return -1;
    };
    let Ok(meta) = fs.metadata(Path::new(path.as_str()), true) else {
        return -1;
    };
    if meta.inode == inode {
        1
    } else {
        path.truncate(path.len() - DELETED.len());
        0
    }
}

fn process_row(ctx: &ScanContext<'_>, pid: &str, boot: Option<i64>) -> Option<Row> {
    let fs = ctx.machine.fs.as_ref();
    let stat = match fs.read_string(&proc_path(pid, "stat")) {
        Ok(text) => Some(parse_stat(&text)?),
        Err(_) => None,
    };
    // osquery skips a process whose status it cannot read.
    let status = parse_status(&fs.read_string(&proc_path(pid, "status")).ok()?);
    let mut r = RowBuilder::new(COLUMNS);
    r.set("pid", pid.parse::<i64>().unwrap_or(0));
    // Reading links, cmdline, cgroup and io costs a syscall or more each per
    // process; skip what the query does not read (SQLite's colUsed).
    let wants = |c: &str| ctx.wants(COLUMNS, c);
    if wants("path") || wants("on_disk") {
        let mut path = read_proc_link(fs, pid, "exe");
        let disk = on_disk(fs, pid, &mut path);
        r.set("path", path).set("on_disk", disk);
    }
    r.set("name", status.name);
    if let Some(s) = &stat {
        r.set("parent", s.parent)
            .set("pgroup", s.pgroup)
            .set("state", s.state.as_str())
            .set("nice", s.nice)
            .set("threads", s.threads);
    }
    if wants("cmdline") {
        let cmdline = fs
            .read(&proc_path(pid, "cmdline"))
            .map(|b| join_cmdline(&b))
            .unwrap_or_default();
        r.set("cmdline", cmdline);
    }
    if wants("cgroup_path") {
        let cgroup = fs
            .read_string(&proc_path(pid, "cgroup"))
            .map(|t| parse_cgroup(&t))
            .unwrap_or_default();
        r.set("cgroup_path", cgroup);
    }
    if wants("cwd") {
        r.set("cwd", read_proc_link(fs, pid, "cwd"));
    }
    if wants("root") {
        r.set("root", read_proc_link(fs, pid, "root"));
    }
    if let Some([u, eu, su]) = status.uids {
        r.set("uid", u).set("euid", eu).set("suid", su);
    }
    if let Some([g, eg, sg]) = status.gids {
        r.set("gid", g).set("egid", eg).set("sgid", sg);
    }
    r.set("wired_size", 0i64);
    r.set_opt("resident_size", status.resident_size);
    r.set_opt("total_size", status.total_size);
    let ms_per_tick = (1000 / CLK_TCK) as u64;
    let (utime, stime) = stat.as_ref().map_or((0, 0), |s| (s.utime, s.stime));
    r.set("user_time", utime.saturating_mul(ms_per_tick));
    r.set("system_time", stime.saturating_mul(ms_per_tick));
    let start = match (stat.as_ref().and_then(|s| s.starttime), boot) {
        (Some(ticks), Some(b)) if b > 0 => b + ticks / CLK_TCK,
        _ => -1,
    };
    r.set("start_time", start);
    // /proc/<pid>/io needs root (or the process's owner); unreadable is no value.
    let io = (wants("disk_bytes_read") || wants("disk_bytes_written"))
        .then(|| fs.read_string(&proc_path(pid, "io")).ok())
        .flatten();
    if let Some(io) = io {
        let (read, written) = parse_io(&io);
        r.set_opt("disk_bytes_read", read);
        r.set("disk_bytes_written", written);
    }
    Some(r.build())
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let boot = boot_time(ctx);
    let mut rows = Vec::new();
    for pid in constrained_pids(ctx, constraints)? {
        ctx.check_deadline()?;
        if let Some(row) = process_row(ctx, &pid, boot) {
            rows.push(row);
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
    fn parses_stat_with_odd_names() {
        let s = parse_stat(
            "812 (tmux: server) S 1 812 812 0 -1 4194368 1626 0 3 0 171 58 0 0 20 0 1 0 4213 9506816 1166 \
             18446744073709551615 1 1 0 0 0 0 0 528386 134433281 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        assert_eq!(s.state, "S");
        assert_eq!((s.parent, s.pgroup), (1, 812));
        assert_eq!((s.utime, s.stime), (171, 58));
        assert_eq!((s.nice, s.threads), (0, 1));
        assert_eq!(s.starttime, Some(4213));
        assert_eq!(parse_stat("12 (a) S 1 2"), None);
    }

    #[test]
    fn parses_status_like_osquery() {
        let s = parse_status(
            "Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nGid:\t0\t4\t0\t0\n\
             VmSize:\t   15420 kB\nVmRSS:\t    9024 kB\nThreads:\t1\n",
        );
        assert_eq!(s.name, "sshd");
        assert_eq!(s.uids, Some([0, 0, 0]));
        assert_eq!(s.gids, Some([0, 4, 0]));
        assert_eq!(s.resident_size, Some(9_024_000));
        assert_eq!(s.total_size, Some(15_420_000));
    }

    #[test]
    fn small_parsers() {
        assert_eq!(
            parse_cgroup("0::/system.slice/ssh.service\n"),
            "/system.slice/ssh.service"
        );
        assert_eq!(
            parse_cgroup("12:cpu,cpuacct:/user.slice\n1:name=systemd:/x\n"),
            "/user.slice"
        );
        assert_eq!(parse_cgroup(""), "");
        assert_eq!(join_cmdline(b"/usr/sbin/sshd\0-D\0"), "/usr/sbin/sshd -D");
        assert_eq!(
            parse_io(
                "rchar: 5\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 4096\n"
            ),
            (Some(4096), 4096)
        );
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1795968616\nprocesses 9\n"),
            Some(1_795_968_616)
        );
        let maps = "55d0c0a00000-55d0c0a2e000 r--p 00000000 fe:01 393530   /usr/bin/x (deleted)\n";
        assert_eq!(mapped_inode(maps, "/usr/bin/x (deleted)"), Some(393530));
    }

    #[test]
    fn reads_recorded_processes() {
        let machine = fixture("processes");
        let engine = Engine::new(machine).unwrap();
        let r = engine
            .query(
                "SELECT pid, name, path, cmdline, state, cwd, root, uid, gid, euid, egid, on_disk, resident_size, \
                 total_size, user_time, system_time, disk_bytes_read, disk_bytes_written, start_time, parent, \
                 pgroup, threads, nice, cgroup_path FROM processes ORDER BY pid",
            )
            .unwrap();
        assert_eq!(r.rows.len(), 3, "{:?}", r.rows);
        let init = |c: &str| r.get(0, c).cloned().unwrap();
        assert_eq!(init("pid"), Value::Integer(1));
        assert_eq!(init("name"), Value::Text("systemd".into()));
        assert_eq!(init("path"), Value::Text("/usr/lib/systemd/systemd".into()));
        assert_eq!(init("cmdline"), Value::Text("/sbin/init splash".into()));
        assert_eq!(init("on_disk"), Value::Integer(1));
        assert_eq!(init("resident_size"), Value::Integer(13_312_000));
        assert_eq!(init("user_time"), Value::Integer(1_250));
        assert_eq!(init("system_time"), Value::Integer(3_070));
        // btime 1795900000 + 25 ticks / 100.
        assert_eq!(init("start_time"), Value::Integer(1_795_900_000));
        assert_eq!(init("disk_bytes_read"), Value::Integer(512_000_000));
        assert_eq!(init("disk_bytes_written"), Value::Integer(90_000_000));
        assert_eq!(init("cgroup_path"), Value::Text("/init.scope".into()));
        assert_eq!(init("cwd"), Value::Text("/".into()));

        let editor = |c: &str| r.get(2, c).cloned().unwrap();
        assert_eq!(editor("pid"), Value::Integer(2211));
        assert_eq!(editor("name"), Value::Text("vim".into()));
        // The binary was replaced by an upgrade: the suffix is trimmed, on_disk 0.
        assert_eq!(editor("path"), Value::Text("/usr/bin/vim.basic".into()));
        assert_eq!(editor("on_disk"), Value::Integer(0));
        assert_eq!(editor("uid"), Value::Integer(1000));
        assert_eq!(editor("egid"), Value::Integer(1000));
        assert_eq!(editor("parent"), Value::Integer(2190));
        assert_eq!(editor("start_time"), Value::Integer(1_795_900_000 + 63_412));
        // io was not readable.
        assert_eq!(editor("disk_bytes_read"), Value::Null);

        let kthread = |c: &str| r.get(1, c).cloned().unwrap();
        assert_eq!(kthread("name"), Value::Text("kworker/0:1-events".into()));
        assert_eq!(kthread("path"), Value::Text("".into()));
        assert_eq!(kthread("on_disk"), Value::Integer(-1));
        assert_eq!(kthread("resident_size"), Value::Null);
        assert_eq!(kthread("state"), Value::Text("I".into()));

        let one = engine
            .query("SELECT name FROM processes WHERE pid = 2211")
            .unwrap();
        assert_eq!(one.rows, vec![vec![Value::Text("vim".into())]]);
        let none = engine
            .query("SELECT name FROM processes WHERE pid = 4242")
            .unwrap();
        assert!(none.rows.is_empty());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let me = std::process::id();
        let r = engine
            .query(&format!("SELECT name, path, on_disk, uid, parent, start_time FROM processes WHERE pid = {me}"))
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        let Some(Value::Text(path)) = r.get(0, "path") else {
            panic!("{:?}", r.rows)
        };
        assert!(!path.is_empty());
        assert_eq!(r.get(0, "on_disk"), Some(&Value::Integer(1)));
        assert!(matches!(r.get(0, "start_time"), Some(Value::Integer(t)) if *t > 1_000_000_000));
        let all = engine.query("SELECT count(*) FROM processes").unwrap();
        assert!(matches!(all.rows[0][0], Value::Integer(n) if n >= 1));
    }
}
