//! `block_devices`: the machine's block devices (osquery's `block_devices`).
//!
//! osquery enumerates udev's `block` subsystem and probes each device with
//! libblkid (and LVM's library for logical volumes' parents). Tend reads the
//! same facts from files, so a recording replays them:
//!
//! - the devices: `/sys/block/<disk>` and the partitions inside it (entries
//!   with a `partition` file); the name is `/dev/` + the `DEVNAME` of the
//!   device's `uevent` (udev's devnode);
//! - `size`: sysfs `size`, a count of 512-byte sectors whatever the device's
//!   block size (osquery reports the raw attribute too); `block_size`:
//!   `queue/logical_block_size` (partitions have none, as in osquery);
//!   `vendor`: `device/vendor`; `serial`: `device/wwid`;
//! - `model`, `uuid`, `type`, `label`: udev's database,
//!   `/run/udev/data/b<major>:<minor>` (`ID_MODEL_FROM_DATABASE` or
//!   `ID_MODEL`; `ID_FS_UUID`, `ID_FS_TYPE`, `ID_FS_LABEL_ENC` decoded),
//!   which udev fills from the same blkid probe osquery runs. Without udev's
//!   database (containers), those columns are NULL.
//!
//! `parent` is the disk for a partition and, for a device-mapper or md
//! device, the first device in its `slaves/` directory. osquery fills it for
//! LVM volumes only (from LVM's metadata, which names the same physical
//! volume); for a dm-crypt or other non-LVM mapping osquery leaves it empty
//! where Tend names the backing device.
//!
//! Rows come in udev's order: disks and partitions by name, then
//! device-mapper and md devices (udev sorts those last).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::os::Fs;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "block_devices",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name").index(),
    col::text("parent"),
    col::text("vendor"),
    col::text("model"),
    col::text("serial"),
    col::bigint("size"),
    col::integer("block_size"),
    col::text("uuid"),
    col::text("type"),
    col::text("label"),
];

/// One block device as sysfs and udev describe it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockDevice {
    /// The kernel's name (`nvme0n1p3`, `dm-0`).
    pub kernel_name: String,
    /// The device node (`/dev/nvme0n1p3`).
    pub name: String,
    /// Its sysfs directory (`/sys/block/nvme0n1/nvme0n1p3`).
    pub sys: PathBuf,
    /// `major:minor`.
    pub dev: Option<String>,
    /// The disk's kernel name, for a partition.
    pub disk: Option<String>,
    /// The kernel names in `slaves/` (what a dm or md device is built on).
    pub slaves: Vec<String>,
    /// udev's properties (`E:` lines of its database entry).
    pub udev: HashMap<String, String>,
}

impl BlockDevice {
    /// The parent's kernel name: the disk of a partition, the first slave of a mapping.
    pub fn parent(&self) -> Option<&str> {
        self.disk
            .as_deref()
            .or_else(|| self.slaves.first().map(String::as_str))
    }

    /// The filesystem (or container) UUID blkid reports.
    pub fn uuid(&self) -> Option<&str> {
        self.udev.get("ID_FS_UUID").map(String::as_str)
    }

    /// A sysfs attribute of this device, without its trailing newline.
    pub fn attr(&self, fs: &dyn Fs, name: &str) -> Option<String> {
        let text = read_optional(fs, &self.sys.join(name)).ok()??;
        Some(text.trim_end_matches('\n').to_string())
    }
}

/// `/dev/` + a kernel name (`!` in sysfs names stands for `/`).
pub fn dev_node(kernel_name: &str) -> String {
    format!("/dev/{}", kernel_name.replace('!', "/"))
}

/// udev sorts device-mapper and md devices after the others.
fn late(name: &str) -> bool {
    name.starts_with("dm-") || name.starts_with("md")
}

/// Orders names as udev does: others first, then dm/md; numbers compared as numbers.
fn udev_order(a: &str, b: &str) -> std::cmp::Ordering {
    late(a)
        .cmp(&late(b))
        .then_with(|| crate::tables::util::versions::generic(a, b))
        .then_with(|| a.cmp(b))
}

fn names_in(fs: &dyn Fs, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs
        .read_dir(dir)
        .map(|entries| entries.into_iter().map(|e| e.name).collect())
        .unwrap_or_default();
    names.sort_by(|a, b| udev_order(a, b));
    names
}

/// Every block device: each disk of `/sys/block` followed by its partitions.
pub fn enumerate(ctx: &ScanContext<'_>) -> Result<Vec<BlockDevice>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let root = Path::new("/sys/block");
    let disks = match fs.read_dir(root) {
        Ok(_) => names_in(fs, root),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TableError::io("block_devices", "listing /sys/block", e)),
    };
    let mut out = Vec::new();
    for disk in disks {
        ctx.check_deadline()?;
        let sys = root.join(&disk);
        out.push(describe(fs, &disk, sys.clone(), None));
        // Partitions are subdirectories named after the disk, with a `partition` file.
        let mut parts: Vec<String> = names_in(fs, &sys)
            .into_iter()
            .filter(|n| n.starts_with(disk.as_str()) && n != &disk)
            .filter(|n| fs.exists(&sys.join(n).join("partition")))
            .collect();
        parts.sort_by(|a, b| udev_order(a, b));
        for part in parts {
            out.push(describe(fs, &part, sys.join(&part), Some(disk.clone())));
        }
    }
    Ok(out)
}

fn describe(fs: &dyn Fs, kernel_name: &str, sys: PathBuf, disk: Option<String>) -> BlockDevice {
    let mut d = BlockDevice {
        kernel_name: kernel_name.to_string(),
        name: dev_node(kernel_name),
        sys,
        disk,
        ..BlockDevice::default()
    };
    if let Some(uevent) = d.attr(fs, "uevent")
        && let Some(devname) = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))
    {
        d.name = format!("/dev/{devname}");
    }
    d.dev = d.attr(fs, "dev");
    d.slaves = names_in(fs, &d.sys.join("slaves"));
    if let Some(dev) = &d.dev {
        let db = PathBuf::from(format!("/run/udev/data/b{dev}"));
        if let Ok(Some(text)) = read_optional(fs, &db) {
            d.udev = udev_properties(&text);
        }
    }
    d
}

/// The `E:KEY=value` properties of a udev database entry.
pub fn udev_properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Undoes udev's `\xHH` escaping (`ID_FS_LABEL_ENC`).
pub fn udev_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let devices = enumerate(ctx)?;
    let mut rows = Vec::with_capacity(devices.len());
    for d in &devices {
        let mut r = RowBuilder::new(COLUMNS);
        r.set("name", d.name.as_str());
        if let Some(parent) = d.parent() {
            let node = devices
                .iter()
                .find(|p| p.kernel_name == parent)
                .map_or_else(|| dev_node(parent), |p| p.name.clone());
            r.set("parent", node);
        }
        r.set_opt("size", d.attr(fs, "size"))
            .set_opt("block_size", d.attr(fs, "queue/logical_block_size"))
            .set_opt("serial", d.attr(fs, "device/wwid"))
            .set_opt("vendor", d.attr(fs, "device/vendor"));
        let model = d
            .udev
            .get("ID_MODEL_FROM_DATABASE")
            .or_else(|| d.udev.get("ID_MODEL"));
        r.set_opt("model", model.cloned())
            .set_opt("uuid", d.uuid())
            .set_opt("type", d.udev.get("ID_FS_TYPE").cloned());
        let label = d
            .udev
            .get("ID_FS_LABEL_ENC")
            .map(|l| udev_decode(l))
            .or_else(|| d.udev.get("ID_FS_LABEL").cloned());
        r.set_opt("label", label);
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    /// The LUKS laptop recorded for `disk_encryption`.
    fn laptop() -> Machine {
        fixture("disk_encryption")
    }

    #[test]
    fn decodes_udev_escapes() {
        assert_eq!(udev_decode("My\\x20Disk"), "My Disk");
        assert_eq!(udev_decode("a\\x2fb\\xZZ"), "a/b\\xZZ");
        let p =
            udev_properties("S:disk/by-id/x\nE:ID_FS_TYPE=ext4\nE:ID_FS_UUID=ab-cd\nG:systemd\n");
        assert_eq!(p.get("ID_FS_TYPE").map(String::as_str), Some("ext4"));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn orders_like_udev() {
        let mut v = vec!["dm-10", "dm-2", "nvme0n1", "loop10", "loop2", "sda"];
        v.sort_by(|a, b| udev_order(a, b));
        assert_eq!(v, ["loop2", "loop10", "nvme0n1", "sda", "dm-2", "dm-10"]);
    }

    #[test]
    fn lists_the_laptop() {
        let engine = Engine::new(laptop()).unwrap();
        let r = engine
            .query("SELECT name, parent, model, size, block_size, uuid, type FROM block_devices")
            .unwrap();
        let names: Vec<&Value> = r.rows.iter().map(|row| &row[0]).collect();
        assert_eq!(
            names,
            [
                &t("/dev/nvme0n1"),
                &t("/dev/nvme0n1p1"),
                &t("/dev/nvme0n1p2"),
                &t("/dev/nvme0n1p3"),
                &t("/dev/dm-0"),
                &t("/dev/dm-1"),
                &t("/dev/dm-2"),
            ]
        );
        // The disk: model from udev, size in 512-byte sectors, no filesystem.
        assert_eq!(
            r.rows[0],
            vec![
                t("/dev/nvme0n1"),
                Value::Null,
                t("SAMSUNG MZVL2512HCJQ-00BL7"),
                Value::Integer(1_000_215_216),
                Value::Integer(512),
                Value::Null,
                Value::Null,
            ]
        );
        // The LUKS partition: its parent disk, no block size of its own.
        assert_eq!(
            r.rows[3],
            vec![
                t("/dev/nvme0n1p3"),
                t("/dev/nvme0n1"),
                t("SAMSUNG MZVL2512HCJQ-00BL7"),
                Value::Integer(995_491_840),
                Value::Null,
                t("7d1c5c1e-1c55-4f4c-8a38-1e0f6b7e1f2a"),
                t("crypto_LUKS"),
            ]
        );
        // The root volume sits on the opened LUKS device.
        assert_eq!(r.get(5, "parent"), Some(&t("/dev/dm-0")));
        assert_eq!(r.get(5, "type"), Some(&t("ext4")));
        assert_eq!(r.get(4, "type"), Some(&t("LVM2_member")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT name, size FROM block_devices")
            .unwrap();
        if Path::new("/sys/block").exists() {
            assert!(
                r.rows
                    .iter()
                    .all(|row| matches!(&row[0], Value::Text(n) if n.starts_with("/dev/")))
            );
        }
    }
}
