//! `mounts` on macOS.
//!
//! osquery lists the mounts with `getmntinfo(3)`. Tend reads the same list
//! from `/sbin/mount` (which prints `getmntinfo`'s entries:
//! `/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)`) and
//! the block and inode counts from `statfs(2)` of each mount point:
//!
//! - `device` is `f_mntfromname` (`/dev/disk3s1s1`, `map auto_home`),
//!   `device_alias` its real path through the machine's filesystem (the
//!   device itself when it is no path), `path` the mount point and `type` the
//!   file system (`apfs`).
//! - `flags` is `f_flags` as a decimal number, as osquery gives it, rebuilt
//!   from the option names mount prints (`read-only` is `MNT_RDONLY`,
//!   `local` `MNT_LOCAL`, `nobrowse` `MNT_DONTBROWSE`, ...), plus
//!   `MNT_ROOTFS` for `/`, which the kernel always sets there. Bits mount
//!   does not print (`MNT_DOVOLFS`, `MNT_MULTILABEL`, `MNT_NOUSERXATTR`) are
//!   missing, so the number can be smaller than osquery's; `sealed`, `root
//!   data` and `mounted by <user>` are not `f_flags` bits.

use std::path::Path;

use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};

use super::COLUMNS;

/// One line of `mount`'s output.
#[derive(Clone, Debug, PartialEq)]
pub struct MountEntry {
    pub device: String,
    pub path: String,
    pub fstype: String,
    pub options: Vec<String>,
}

/// The option names mount(8) prints for `f_flags` bits (diskdev_cmds'
/// `mount_flags.c`), and the bits.
const OPTION_BITS: &[(&str, u32)] = &[
    ("read-only", 0x0000_0001),
    ("synchronous", 0x0000_0002),
    ("noexec", 0x0000_0004),
    ("nosuid", 0x0000_0008),
    ("nodev", 0x0000_0010),
    ("union", 0x0000_0020),
    ("asynchronous", 0x0000_0040),
    ("protect", 0x0000_0080),
    ("NFS exported", 0x0000_0100),
    ("quarantine", 0x0000_0400),
    ("local", 0x0000_1000),
    ("with quotas", 0x0000_2000),
    ("nobrowse", 0x0010_0000),
    ("noowners", 0x0020_0000),
    ("automounted", 0x0040_0000),
    ("journaled", 0x0080_0000),
    ("defwrite", 0x0200_0000),
    ("nofollow", 0x0800_0000),
    ("noatime", 0x1000_0000),
    ("strictatime", 0x8000_0000),
];

/// `MNT_ROOTFS`.
const MNT_ROOTFS: u32 = 0x0000_4000;

/// Parses one line of `mount`: `DEVICE on PATH (TYPE, OPTION, ...)`.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let line = line.trim_end();
    let open = line.rfind(" (")?;
    let inner = line[open + 2..].strip_suffix(')')?;
    let (device, path) = line[..open].split_once(" on ")?;
    let mut fields = inner.split(", ");
    let fstype = fields.next()?.to_string();
    Some(MountEntry {
        device: device.to_string(),
        path: path.to_string(),
        fstype,
        options: fields.map(String::from).collect(),
    })
}

/// `f_flags` of a mount, from the options mount printed.
pub fn flags(entry: &MountEntry) -> u32 {
    let mut f = entry
        .options
        .iter()
        .filter_map(|o| OPTION_BITS.iter().find(|(n, _)| n == o).map(|(_, b)| *b))
        .fold(0, |a, b| a | b);
    if entry.path == "/" {
        f |= MNT_ROOTFS;
    }
    f
}

/// The mounts, from `/sbin/mount`.
pub fn mount_table(ctx: &ScanContext<'_>) -> Result<Vec<MountEntry>, TableError> {
    let out = ctx
        .machine
        .commands
        .run("/sbin/mount", &[])
        .map_err(|e| TableError::io("mounts", "running /sbin/mount", e))?;
    if out.status != 0 {
        return Err(TableError::other(
            "mounts",
            format!("/sbin/mount failed: {}", out.stderr.trim()),
        ));
    }
    Ok(out.stdout.lines().filter_map(parse_line).collect())
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let m = ctx.machine;
    let mut rows = Vec::new();
    for entry in mount_table(ctx)? {
        let mut r = RowBuilder::new(COLUMNS);
        let alias = if entry.device.starts_with('/') {
            m.fs.canonicalize(Path::new(&entry.device)).map_or_else(
                |_| entry.device.clone(),
                |p| p.to_string_lossy().into_owned(),
            )
        } else {
            entry.device.clone()
        };
        if let Ok(s) = m.host.statfs(Path::new(&entry.path)) {
            r.set("blocks_size", s.blocks_size as i64)
                .set("blocks", s.blocks as i64)
                .set("blocks_free", s.blocks_free as i64)
                .set("blocks_available", s.blocks_available as i64)
                .set("inodes", s.inodes as i64)
                .set("inodes_free", s.inodes_free as i64);
        }
        r.set("flags", flags(&entry).to_string())
            .set("device", entry.device)
            .set("device_alias", alias)
            .set("path", entry.path)
            .set("type", entry.fstype);
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn parses_mount_lines() {
        let e =
            parse_line("/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)").unwrap();
        assert_eq!(e.device, "/dev/disk3s1s1");
        assert_eq!(e.path, "/");
        assert_eq!(e.fstype, "apfs");
        assert_eq!(flags(&e), 0x1 | 0x1000 | 0x80_0000 | 0x4000);
        let e = parse_line(
            "map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)",
        )
        .unwrap();
        assert_eq!(e.device, "map auto_home");
        assert_eq!(flags(&e), 0x40_0000 | 0x10_0000);
        let e = parse_line("/dev/disk4s1 on /Volumes/My Disk (msdos, local, nodev, nosuid, noowners, noatime, mounted by alice)").unwrap();
        assert_eq!(e.path, "/Volumes/My Disk");
        assert_eq!(flags(&e), 0x1000 | 0x10 | 0x8 | 0x20_0000 | 0x1000_0000);
    }

    #[test]
    fn sonoma_mounts() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine
            .query("SELECT device, device_alias, type, flags, blocks_size, blocks FROM mounts WHERE path = '/'")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("/dev/disk3s1s1"),
                t("/dev/disk3s1s1"),
                t("apfs"),
                t("8409089"),
                Value::Integer(4096),
                Value::Integer(120_699_413),
            ]]
        );
        let all = engine.query("SELECT path FROM mounts").unwrap();
        assert_eq!(all.rows.len(), 10);
    }
}
