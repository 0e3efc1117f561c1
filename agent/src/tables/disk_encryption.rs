//! `disk_encryption`: whether each block device is encrypted (osquery's
//! `disk_encryption`, Linux).
//!
//! osquery asks libcryptsetup about every device `block_devices` lists.
//! Tend reads the same facts from device-mapper's sysfs files and `dmsetup`:
//!
//! - A device-mapper device whose `/sys/block/dm-N/dm/uuid` is
//!   `CRYPT-<TYPE>-...` was set up by cryptsetup: it is encrypted, and its
//!   `type` is libcryptsetup's type, cipher and mode joined with `-`
//!   (`LUKS2-aes-xts-plain64`), the cipher taken from the `crypt` line of
//!   `dmsetup table <dm name>`. When `dmsetup` cannot be run (not root, not
//!   installed) the type is just `LUKS2`. A mapping without a uuid whose
//!   table is a `crypt` target (a bare `dmsetup create`) is encrypted too,
//!   typed by its cipher alone.
//! - A device built on encrypted devices — an LVM volume on a LUKS
//!   container, RAID over encrypted members — is encrypted and inherits the
//!   type, as osquery's `parent` inheritance does. The container's backing
//!   partition is not: it holds ciphertext, and osquery reports it as not
//!   encrypted too.
//! - `uuid` is the device's blkid UUID from `block_devices` (the LUKS UUID on
//!   the backing partition, the LVM PV UUID on an opened container with LVM
//!   inside), empty when there is none, as in osquery.
//!
//! `name = ...` is answered for the name as given, as osquery does: a name
//! that is a symlink to a device (`/dev/mapper/vgubuntu-root`) is resolved
//! through the machine's filesystem, and a name that is no block device at
//! all is "not encrypted".
//!
//! Where Tend differs from osquery, deliberately:
//! - osquery computes a `name = ...` device in isolation, so a volume on a
//!   LUKS container reads as not encrypted whenever the query constrains
//!   `name` — including `WHERE name IN (SELECT ... FROM mounts ...)` (osquery
//!   issues #7314 and #7889). Tend resolves the stack in every case.
//! - Inheritance goes through any number of levels (osquery: one) and needs
//!   every slave of a multi-device mapping to be encrypted.
//! - dm-verity and dm-integrity mappings (`CRYPT-VERITY-`, `CRYPT-INTEGRITY-`)
//!   are not encryption; libcryptsetup reports them active, so osquery calls
//!   them encrypted.
//! - osquery returns no rows unless it runs as root; Tend reads sysfs and
//!   udev's files as any user (only the cipher needs root, for `dmsetup`).

use std::collections::HashMap;
use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::block_devices::{BlockDevice, enumerate};

mod macos;

pub static TABLE: TableDef = TableDef {
    name: "disk_encryption",
    columns: COLUMNS,
    platforms: Platforms::LINUX.union(Platforms::MACOS),
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name").index(),
    col::text("uuid"),
    col::integer("encrypted"),
    col::text("type"),
    col::text("encryption_status"),
    col::text("uid").on(Platforms::MACOS),
    col::text("user_uuid").on(Platforms::MACOS),
    col::text("filevault_status").on(Platforms::MACOS),
];

/// The cryptsetup types that are encryption (dm uuid `CRYPT-<TYPE>-...`).
const CRYPT_TYPES: &[&str] = &[
    "LUKS1", "LUKS2", "PLAIN", "LOOPAES", "TCRYPT", "BITLK", "FVAULT2",
];

/// The most levels of stacking followed.
const MAX_STACK: usize = 16;

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    if ctx.platform() == crate::sql::table::Platform::Macos {
        return macos::generate(ctx, constraints);
    }
    let devices = enumerate(ctx)?;
    let mut status = Resolver::new(ctx, &devices);
    let names = constraints.eq("name");
    let mut rows = Vec::new();
    if names.is_empty() {
        for d in &devices {
            ctx.check_deadline()?;
            let enc = status.of(&d.kernel_name, 0);
            rows.push(row(&d.name, d.uuid(), enc));
        }
        return Ok(rows);
    }
    for name in names {
        ctx.check_deadline()?;
        let found = find(ctx, &devices, &name);
        let enc = found.and_then(|d| status.of(&d.kernel_name, 0));
        rows.push(row(&name, found.and_then(BlockDevice::uuid), enc));
    }
    Ok(rows)
}

/// The device a `name` constraint means: its node, or a symlink to it.
fn find<'a>(
    ctx: &ScanContext<'_>,
    devices: &'a [BlockDevice],
    name: &str,
) -> Option<&'a BlockDevice> {
    if let Some(d) = devices.iter().find(|d| d.name == name) {
        return Some(d);
    }
    let real = ctx.machine.fs.canonicalize(Path::new(name)).ok()?;
    let real = real.to_string_lossy();
    devices.iter().find(|d| d.name == real)
}

fn row(name: &str, uuid: Option<&str>, encryption: Option<String>) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("name", name).set("uuid", uuid.unwrap_or(""));
    match encryption {
        Some(ty) => {
            r.set("encrypted", 1)
                .set("encryption_status", "encrypted")
                .set("type", ty);
        }
        None => {
            r.set("encrypted", 0)
                .set("encryption_status", "not encrypted");
        }
    }
    r.build()
}

/// Works out, once per device, whether it is encrypted and how.
struct Resolver<'a, 'c> {
    ctx: &'a ScanContext<'c>,
    devices: HashMap<&'a str, &'a BlockDevice>,
    memo: HashMap<String, Option<String>>,
}

impl<'a, 'c> Resolver<'a, 'c> {
    fn new(ctx: &'a ScanContext<'c>, devices: &'a [BlockDevice]) -> Self {
        Resolver {
            ctx,
            devices: devices
                .iter()
                .map(|d| (d.kernel_name.as_str(), d))
                .collect(),
            memo: HashMap::new(),
        }
    }

    /// The encryption type of a device (`Some`), or `None` when it is not encrypted.
    fn of(&mut self, kernel_name: &str, depth: usize) -> Option<String> {
        if let Some(known) = self.memo.get(kernel_name) {
            return known.clone();
        }
        let d = *self.devices.get(kernel_name)?;
        let result = match self.own(d) {
            Some(ty) => Some(ty),
            None if depth < MAX_STACK => {
                let parents: Vec<String> = match &d.disk {
                    Some(disk) => vec![disk.clone()],
                    None => d.slaves.clone(),
                };
                let mut types = Vec::new();
                for p in &parents {
                    match self.of(p, depth + 1) {
                        Some(ty) => types.push(ty),
                        None => {
                            types.clear();
                            break;
                        }
                    }
                }
                types.into_iter().next()
            }
            None => None,
        };
        self.memo.insert(kernel_name.to_string(), result.clone());
        result
    }

    /// Whether the device itself is a dm-crypt mapping, and its type.
    fn own(&self, d: &BlockDevice) -> Option<String> {
        let fs = self.ctx.machine.fs.as_ref();
        let dm_name = d.attr(fs, "dm/name")?;
        let uuid = d.attr(fs, "dm/uuid").unwrap_or_default();
        let ty = match crypt_type(&uuid) {
            Some(ty) => Some(ty),
            None if uuid.is_empty() => None,
            None => return None,
        };
        let cipher = self.cipher(&dm_name);
        match (ty, cipher) {
            (Some(ty), Some(c)) => Some(format!("{ty}-{c}")),
            (Some(ty), None) => Some(ty.to_string()),
            // No cryptsetup uuid: encrypted only if the table says `crypt`.
            (None, c) => c,
        }
    }

    /// The cipher of a crypt mapping, from `dmsetup table`.
    fn cipher(&self, dm_name: &str) -> Option<String> {
        let out = self
            .ctx
            .machine
            .commands
            .run("dmsetup", &["table", dm_name])
            .ok()?;
        if out.status != 0 {
            return None;
        }
        crypt_cipher(&out.stdout)
    }
}

/// The cryptsetup type in a dm uuid (`CRYPT-LUKS2-<hex>-<name>` → `LUKS2`),
/// for the types that are encryption.
pub fn crypt_type(dm_uuid: &str) -> Option<&str> {
    let rest = dm_uuid.strip_prefix("CRYPT-")?;
    let ty = rest.split('-').next()?;
    CRYPT_TYPES.contains(&ty).then_some(ty)
}

/// The cipher of the first `crypt` target in `dmsetup table` output, as
/// libcryptsetup's cipher and mode joined with `-` (`aes-xts-plain64`; the
/// kernel-API form `capi:xts(aes)-plain64` is turned the same way).
pub fn crypt_cipher(table: &str) -> Option<String> {
    let spec = table.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_start, _len, target) = (f.next()?, f.next()?, f.next()?);
        (target == "crypt").then(|| f.next()).flatten()
    })?;
    if let Some(capi) = spec.strip_prefix("capi:") {
        // capi:<mode>(<cipher>)-<iv>
        let (chain, iv) = capi
            .split_once(")-")
            .unwrap_or((capi.trim_end_matches(')'), ""));
        let (mode, cipher) = chain.split_once('(')?;
        let mut out = format!("{cipher}-{mode}");
        if !iv.is_empty() {
            out.push('-');
            out.push_str(iv);
        }
        return Some(out);
    }
    Some(spec.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    fn laptop() -> Machine {
        fixture("disk_encryption")
    }

    #[test]
    fn parses_dm_uuids() {
        let uuid = "CRYPT-LUKS2-7d1c5c1e1c554f4c8a381e0f6b7e1f2a-nvme0n1p3_crypt";
        assert_eq!(crypt_type(uuid), Some("LUKS2"));
        assert_eq!(crypt_type("CRYPT-PLAIN-swap"), Some("PLAIN"));
        assert_eq!(crypt_type("CRYPT-VERITY-abc-root"), None);
        assert_eq!(crypt_type("LVM-abcdef"), None);
    }

    #[test]
    fn parses_dmsetup_tables() {
        let t = "0 1996795904 crypt aes-xts-plain64 :64:logon:cryptsetup:7d1c-d0 0 259:3 32768 1 allow_discards\n";
        assert_eq!(crypt_cipher(t).as_deref(), Some("aes-xts-plain64"));
        assert_eq!(
            crypt_cipher("0 8 crypt capi:xts(aes)-plain64 00 0 8:1 0\n").as_deref(),
            Some("aes-xts-plain64")
        );
        assert_eq!(crypt_cipher("0 2048 linear 253:0 2048\n"), None);
    }

    #[test]
    fn lvm_on_luks_laptop() {
        let engine = Engine::new(laptop()).unwrap();
        let r = engine
            .query("SELECT name, uuid, encrypted, type, encryption_status FROM disk_encryption")
            .unwrap();
        let enc = |name: &str| -> Vec<Value> {
            r.rows
                .iter()
                .find(|row| row[0] == t(name))
                .unwrap_or_else(|| panic!("no row for {name}"))
                .clone()
        };
        assert_eq!(r.rows.len(), 7);
        // The container: its own LUKS2 type and cipher; uuid is what blkid
        // reads inside it, the LVM physical volume.
        assert_eq!(
            enc("/dev/dm-0"),
            vec![
                t("/dev/dm-0"),
                t("Kq3x0A-8fJd-3kLm-Qw2e-Zx9c-Vb7n-Tr5yUi"),
                Value::Integer(1),
                t("LUKS2-aes-xts-plain64"),
                t("encrypted"),
            ]
        );
        // The root and swap volumes inherit it.
        assert_eq!(
            enc("/dev/dm-1")[2..],
            [
                Value::Integer(1),
                t("LUKS2-aes-xts-plain64"),
                t("encrypted")
            ]
        );
        assert_eq!(enc("/dev/dm-2")[2], Value::Integer(1));
        // The backing partition holds ciphertext: not encrypted, as osquery says.
        assert_eq!(
            enc("/dev/nvme0n1p3"),
            vec![
                t("/dev/nvme0n1p3"),
                t("7d1c5c1e-1c55-4f4c-8a38-1e0f6b7e1f2a"),
                Value::Integer(0),
                Value::Null,
                t("not encrypted"),
            ]
        );
        assert_eq!(enc("/dev/nvme0n1p1")[2], Value::Integer(0));
        assert_eq!(enc("/dev/nvme0n1")[1], t(""));
    }

    #[test]
    fn seed_query_and_corrected_query() {
        let engine = Engine::new(laptop()).unwrap();
        // The seed's query compares with `mounts.device`, which is
        // /dev/mapper/vgubuntu-root. osquery answers a `name` constraint for
        // the name as given, and so does Tend: the mapper name resolves to
        // dm-1, which is encrypted. (osquery itself returns 0 here, because it
        // does not follow the LVM volume down to its LUKS container when
        // `name` is constrained — its bugs #7314/#7889.)
        let seed = engine
            .query(
                "SELECT COUNT(*) AS passed FROM disk_encryption \
                 WHERE name IN (SELECT device FROM mounts WHERE path = '/') AND encrypted = 1;",
            )
            .unwrap();
        assert_eq!(seed.rows, vec![vec![Value::Integer(1)]]);
        let corrected = engine
            .query(
                "SELECT COUNT(*) AS passed FROM disk_encryption \
                 WHERE name IN (SELECT device_alias FROM mounts WHERE path = '/') AND encrypted = 1",
            )
            .unwrap();
        assert_eq!(corrected.rows, vec![vec![Value::Integer(1)]]);
        // /boot is on a plain partition.
        let boot = engine
            .query(
                "SELECT COUNT(*) AS passed FROM disk_encryption \
                 WHERE name IN (SELECT device_alias FROM mounts WHERE path = '/boot') AND encrypted = 1",
            )
            .unwrap();
        assert_eq!(boot.rows, vec![vec![Value::Integer(0)]]);
    }

    #[test]
    fn named_lookups_keep_the_name_given() {
        let engine = Engine::new(laptop()).unwrap();
        let r = engine
            .query(
                "SELECT name, encrypted, type FROM disk_encryption \
                 WHERE name IN ('/dev/mapper/vgubuntu-root', '/dev/nvme0n1p2', 'tmpfs') ORDER BY name",
            )
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("/dev/mapper/vgubuntu-root"),
                    Value::Integer(1),
                    t("LUKS2-aes-xts-plain64")
                ],
                vec![t("/dev/nvme0n1p2"), Value::Integer(0), Value::Null],
                vec![t("tmpfs"), Value::Integer(0), Value::Null],
            ]
        );
    }

    #[test]
    fn without_dmsetup_the_type_is_the_format_alone() {
        struct NoCommands;
        impl crate::os::Commands for NoCommands {
            fn run(&self, program: &str, _: &[&str]) -> std::io::Result<crate::os::CommandOutput> {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{program}: not found"),
                ))
            }
        }
        let mut machine = laptop();
        machine.commands = std::sync::Arc::new(NoCommands);
        let engine = Engine::new(machine).unwrap();
        let r = engine
            .query("SELECT name, encrypted, type FROM disk_encryption WHERE name IN ('/dev/dm-0', '/dev/dm-1') ORDER BY name")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![t("/dev/dm-0"), Value::Integer(1), t("LUKS2")],
                vec![t("/dev/dm-1"), Value::Integer(1), t("LUKS2")],
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT name, encrypted FROM disk_encryption")
            .unwrap();
        for row in &r.rows {
            assert!(matches!(row[1], Value::Integer(0 | 1)));
        }
    }
}
