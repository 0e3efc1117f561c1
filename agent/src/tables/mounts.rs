//! `mounts`: mounted filesystems, from `/proc/mounts` and `statfs(2)` (osquery's `mounts`).
//!
//! `device` is the source as the kernel lists it (`/dev/mapper/root`);
//! `device_alias` is that path with symlinks resolved (`/dev/dm-0`), which is
//! the name `disk_encryption` and `block_devices` use.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub(super) mod macos;

pub static TABLE: TableDef = TableDef {
    name: "mounts",
    columns: COLUMNS,
    platforms: Platforms::LINUX.union(Platforms::MACOS),
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("device"),
    col::text("device_alias"),
    col::text("path"),
    col::text("type"),
    col::bigint("blocks_size"),
    col::bigint("blocks"),
    col::bigint("blocks_free"),
    col::bigint("blocks_available"),
    col::bigint("inodes"),
    col::bigint("inodes_free"),
    col::text("flags"),
];

/// Undoes the kernel's octal escapes in /proc/mounts (`\040` for a space).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/mounts: device, mount point, type, options.
pub fn parse_line(line: &str) -> Option<(String, String, String, String)> {
    let mut f = line.split_whitespace();
    Some((
        unescape(f.next()?),
        unescape(f.next()?),
        f.next()?.to_string(),
        f.next().unwrap_or("").to_string(),
    ))
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    if ctx.platform() == crate::sql::table::Platform::Macos {
        return macos::generate(ctx, constraints);
    }
    let m = ctx.machine;
    let text =
        m.fs.read_string(Path::new("/proc/mounts"))
            .map_err(|e| TableError::io("mounts", "reading /proc/mounts", e))?;
    let mut rows = Vec::new();
    for (device, path, fstype, flags) in text.lines().filter_map(parse_line) {
        let mut r = RowBuilder::new(COLUMNS);
        let alias = if device.starts_with('/') {
            m.fs.canonicalize(Path::new(&device))
                .map_or_else(|_| device.clone(), |p| p.to_string_lossy().into_owned())
        } else {
            device.clone()
        };
        r.set("device", device).set("device_alias", alias);
        if let Ok(s) = m.host.statfs(Path::new(&path)) {
            r.set("blocks_size", s.blocks_size as i64)
                .set("blocks", s.blocks as i64)
                .set("blocks_free", s.blocks_free as i64)
                .set("blocks_available", s.blocks_available as i64)
                .set("inodes", s.inodes as i64)
                .set("inodes_free", s.inodes_free as i64);
        }
        r.set("path", path).set("type", fstype).set("flags", flags);
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_mount_points() {
        let (d, p, t, o) = parse_line("/dev/sdb1 /media/my\\040disk ext4 rw,relatime 0 0").unwrap();
        assert_eq!(
            (d.as_str(), p.as_str(), t.as_str(), o.as_str()),
            ("/dev/sdb1", "/media/my disk", "ext4", "rw,relatime")
        );
    }
}
