//! `disk_encryption` on macOS.
//!
//! osquery lists the IOKit block devices and asks Apple's private
//! DiskManagement framework about each APFS volume that is mounted
//! (`isEncryptedVolume`, `isFileVaultEnabled`, `cryptoUsersForVolume`).
//! Tend asks `diskutil`, which is built on that framework, and `fdesetup`:
//!
//! - The rows: every device of `diskutil list -plist` (`AllDisks`: whole
//!   disks, partitions, APFS containers, volumes and mounted snapshots, as
//!   IOKit lists them), named `/dev/<id>`. `name = ...` keeps only those
//!   devices. `uuid` is the partition's or volume's `DiskUUID`, the
//!   container's `APFSContainerUUID` (`diskutil apfs list -plist`), a
//!   snapshot's `SnapshotUUID`, and empty for a physical disk.
//! - Devices mounted as `apfs` (per `/sbin/mount`, as osquery checks the
//!   mounts table) are looked up in `diskutil apfs list -plist`: `encrypted`
//!   is the volume's `Encryption`, `type` `APFS Encryption` (or empty),
//!   `encryption_status` `encrypted`/`not encrypted`, and `filevault_status`
//!   `on`/`off` from its `FileVault`. A mounted snapshot (`/` is the sealed
//!   snapshot `/dev/disk3s1s1`) answers for the volume it belongs to, and a
//!   volume with the `System` role for the `Data` volume of its container's
//!   volume group, whose encryption and FileVault protect the system (the
//!   signed system volume itself is not encrypted; Disk Utility, also
//!   built on DiskManagement, shows the boot snapshot as encrypted). A
//!   mounted volume `diskutil` does not know is `undefined`/`unknown` with
//!   `encrypted` 0, as osquery reports a failed DiskManagement call.
//! - On a volume whose FileVault is on, `user_uuid` and `uid` are the last
//!   FileVault user of `fdesetup list` (`name,UUID`, needs root) that is a
//!   local account (`dscl . -list /Users UniqueID` gives its uid), as osquery
//!   keeps the last of the volume's crypto users found in the users table.
//! - Every other device is `encrypted` 0, `type` empty, `undefined` and
//!   `unknown`. (osquery reads CoreStorage's `CoreStorage Encrypted` IOKit
//!   property for these; CoreStorage volumes do not exist on the macOS
//!   versions Tend supports.)
//!
//! As osquery, `encrypted` is about encryption at rest: on Macs with a T2
//! chip or Apple silicon the Data volume is always encrypted, and only
//! `filevault_status` tells whether FileVault protects it.
//! `fdesetup status` is not used: it describes only the boot volume, which
//! `diskutil`'s per-volume `FileVault` already covers.

use std::collections::{BTreeSet, HashMap};

use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::darwin;
use crate::tables::mounts::macos::mount_table;

use super::COLUMNS;

const TABLE_NAME: &str = "disk_encryption";
const DISKUTIL: &str = "/usr/sbin/diskutil";

/// What `diskutil list -plist` says about the devices.
#[derive(Debug, Default)]
pub struct DiskList {
    /// Device identifiers (`disk3s1`), in diskutil's order.
    pub devices: Vec<String>,
    /// Device identifier → its uuid.
    pub uuids: HashMap<String, String>,
    /// Snapshot device → the volume it is a snapshot of.
    pub snapshot_of: HashMap<String, String>,
}

/// Parses `diskutil list -plist`.
pub fn parse_disk_list(v: &plist::Value) -> DiskList {
    let mut list = DiskList::default();
    let Some(top) = v.as_dictionary() else {
        return list;
    };
    let id = |d: &plist::Dictionary| darwin::string(d, "DeviceIdentifier").map(String::from);
    let uuid = |d: &plist::Dictionary| {
        darwin::string(d, "DiskUUID")
            .or_else(|| darwin::string(d, "VolumeUUID"))
            .map(String::from)
    };
    if let Some(all) = top.get("AllDisks").and_then(plist::Value::as_array) {
        list.devices = all
            .iter()
            .filter_map(plist::Value::as_string)
            .map(String::from)
            .collect();
    }
    let dicts = |v: Option<&plist::Value>| -> Vec<plist::Dictionary> {
        v.and_then(plist::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_dictionary().cloned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for disk in dicts(top.get("AllDisksAndPartitions")) {
        for part in dicts(disk.get("Partitions")) {
            if let (Some(i), Some(u)) = (id(&part), uuid(&part)) {
                list.uuids.insert(i, u);
            }
        }
        for vol in dicts(disk.get("APFSVolumes")) {
            let Some(vid) = id(&vol) else { continue };
            if let Some(u) = uuid(&vol) {
                list.uuids.insert(vid.clone(), u);
            }
            for snap in dicts(vol.get("MountedSnapshots")) {
                let Some(bsd) = darwin::string(&snap, "SnapshotBSD") else {
                    continue;
                };
                list.snapshot_of.insert(bsd.to_string(), vid.clone());
                if let Some(u) = darwin::string(&snap, "SnapshotUUID") {
                    list.uuids.insert(bsd.to_string(), u.to_string());
                }
            }
        }
    }
    if list.devices.is_empty() {
        // Older diskutil without AllDisks: the devices named in the tree.
        let mut seen = BTreeSet::new();
        for disk in dicts(top.get("AllDisksAndPartitions")) {
            if let Some(i) = id(&disk) {
                seen.insert(i);
            }
        }
        list.devices = seen.into_iter().collect();
    }
    list
}

/// One APFS volume of `diskutil apfs list -plist`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApfsVolume {
    pub device: String,
    pub container: String,
    pub encryption: bool,
    pub filevault: bool,
    pub roles: Vec<String>,
}

/// What `diskutil apfs list -plist` says: the volumes, and each container's uuid.
#[derive(Debug, Default)]
pub struct ApfsList {
    pub volumes: Vec<ApfsVolume>,
    pub container_uuids: HashMap<String, String>,
}

impl ApfsList {
    fn volume(&self, device: &str) -> Option<&ApfsVolume> {
        self.volumes.iter().find(|v| v.device == device)
    }

    /// The volume whose encryption answers for `device`: a snapshot's
    /// volume, and for a System volume the Data volume of its container.
    pub fn effective(&self, device: &str, disks: &DiskList) -> Option<&ApfsVolume> {
        let vol_id = disks.snapshot_of.get(device).map_or(device, String::as_str);
        let vol = self.volume(vol_id)?;
        if !vol.roles.iter().any(|r| r == "System") {
            return Some(vol);
        }
        let data: Vec<&ApfsVolume> = self
            .volumes
            .iter()
            .filter(|v| v.container == vol.container && v.roles.iter().any(|r| r == "Data"))
            .collect();
        match data.as_slice() {
            [only] => Some(only),
            _ => Some(vol),
        }
    }
}

/// Parses `diskutil apfs list -plist`.
pub fn parse_apfs_list(v: &plist::Value) -> ApfsList {
    let mut list = ApfsList::default();
    let containers = v
        .as_dictionary()
        .and_then(|d| d.get("Containers"))
        .and_then(plist::Value::as_array);
    for c in containers
        .into_iter()
        .flatten()
        .filter_map(plist::Value::as_dictionary)
    {
        let reference = darwin::string(c, "ContainerReference").unwrap_or_default();
        if let Some(u) = darwin::string(c, "APFSContainerUUID") {
            list.container_uuids
                .insert(reference.to_string(), u.to_string());
        }
        let volumes = c.get("Volumes").and_then(plist::Value::as_array);
        for vol in volumes
            .into_iter()
            .flatten()
            .filter_map(plist::Value::as_dictionary)
        {
            let flag = |k: &str| {
                vol.get(k)
                    .and_then(plist::Value::as_boolean)
                    .unwrap_or(false)
            };
            list.volumes.push(ApfsVolume {
                device: darwin::string(vol, "DeviceIdentifier")
                    .unwrap_or_default()
                    .to_string(),
                container: reference.to_string(),
                encryption: flag("Encryption"),
                filevault: flag("FileVault"),
                roles: vol
                    .get("Roles")
                    .and_then(plist::Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_string().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    list
}

/// Parses `fdesetup list`: `name,UUID` per FileVault user.
pub fn parse_fdesetup_list(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (name, uuid) = l.trim().split_once(',')?;
            Some((name.to_string(), uuid.trim().to_string()))
        })
        .collect()
}

/// Parses `dscl . -list /Users UniqueID`: name → uid.
pub fn parse_dscl_uids(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// Runs `diskutil <args> -plist` and parses its property list.
fn diskutil_plist(ctx: &ScanContext<'_>, args: &[&str]) -> Result<plist::Value, TableError> {
    let out = ctx.machine.commands.run(DISKUTIL, args).map_err(|e| {
        TableError::io(
            TABLE_NAME,
            format!("running diskutil {}", args.join(" ")),
            e,
        )
    })?;
    if out.status != 0 {
        return Err(TableError::other(
            TABLE_NAME,
            format!("diskutil {} failed: {}", args.join(" "), out.stderr.trim()),
        ));
    }
    darwin::parse_plist(out.stdout.as_bytes()).ok_or_else(|| {
        TableError::other(
            TABLE_NAME,
            format!("diskutil {} printed no property list", args.join(" ")),
        )
    })
}

/// The FileVault user osquery would report: the last one that is a local account.
fn filevault_user(ctx: &ScanContext<'_>) -> Option<(String, String)> {
    let out = darwin::run(ctx, "/usr/bin/fdesetup", &["list"])?;
    if out.status != 0 {
        return None;
    }
    let users = parse_fdesetup_list(&out.stdout);
    let dscl = darwin::run(ctx, "/usr/bin/dscl", &[".", "-list", "/Users", "UniqueID"])?;
    let uids = parse_dscl_uids(&dscl.stdout);
    users
        .into_iter()
        .filter_map(|(name, uuid)| uids.get(&name).map(|uid| (uid.clone(), uuid)))
        .next_back()
}

pub(super) fn generate(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
) -> Result<Vec<Row>, TableError> {
    let disks = parse_disk_list(&diskutil_plist(ctx, &["list", "-plist"])?);
    let apfs = match diskutil_plist(ctx, &["apfs", "list", "-plist"]) {
        Ok(v) => parse_apfs_list(&v),
        // No APFS (or no answer about it): every mounted volume is undefined.
        Err(_) => ApfsList::default(),
    };
    let apfs_mounted: BTreeSet<String> = mount_table(ctx)?
        .into_iter()
        .filter(|m| m.fstype == "apfs")
        .map(|m| m.device)
        .collect();
    let names = constraints.eq("name");
    let mut user = None;
    let mut user_looked_up = false;
    let mut rows = Vec::new();
    for id in &disks.devices {
        let name = format!("/dev/{id}");
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        let uuid = disks
            .uuids
            .get(id)
            .or_else(|| apfs.container_uuids.get(id))
            .cloned()
            .unwrap_or_default();
        let mut r = RowBuilder::new(COLUMNS);
        r.set("name", name.as_str()).set("uuid", uuid);
        if !apfs_mounted.contains(&name) {
            r.set("encrypted", 0)
                .set("type", "")
                .set("encryption_status", "undefined")
                .set("filevault_status", "unknown");
            rows.push(r.build());
            continue;
        }
        match apfs.effective(id, &disks) {
            Some(vol) => {
                r.set("encrypted", i64::from(vol.encryption))
                    .set(
                        "type",
                        if vol.encryption {
                            "APFS Encryption"
                        } else {
                            ""
                        },
                    )
                    .set(
                        "encryption_status",
                        if vol.encryption {
                            "encrypted"
                        } else {
                            "not encrypted"
                        },
                    )
                    .set("filevault_status", if vol.filevault { "on" } else { "off" });
                if vol.filevault {
                    if !user_looked_up {
                        user = filevault_user(ctx);
                        user_looked_up = true;
                    }
                    if let Some((uid, uuid)) = &user {
                        r.set("uid", uid.as_str()).set("user_uuid", uuid.as_str());
                    }
                }
            }
            None => {
                r.set("encrypted", 0)
                    .set("encryption_status", "undefined")
                    .set("filevault_status", "unknown");
            }
        }
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
    fn parses_fdesetup_and_dscl() {
        assert_eq!(
            parse_fdesetup_list("alice,5B8F1E0C-2D3A-4B6C-9E7F-0A1B2C3D4E5F\n"),
            vec![(
                "alice".to_string(),
                "5B8F1E0C-2D3A-4B6C-9E7F-0A1B2C3D4E5F".to_string()
            )]
        );
        let uids = parse_dscl_uids("_www                    70\nalice                   501\n");
        assert_eq!(uids.get("alice").map(String::as_str), Some("501"));
    }

    #[test]
    fn filevault_on_apple_silicon() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine
            .query("SELECT name, encrypted, type, encryption_status, filevault_status, uid, user_uuid FROM disk_encryption WHERE name IN ('/dev/disk3s1s1', '/dev/disk3s5', '/dev/disk3s2', '/dev/disk0s2', '/dev/disk3s1') ORDER BY name")
            .unwrap();
        let fv_user = |name: &str| {
            vec![
                t(name),
                Value::Integer(1),
                t("APFS Encryption"),
                t("encrypted"),
                t("on"),
                t("501"),
                t("5B8F1E0C-2D3A-4B6C-9E7F-0A1B2C3D4E5F"),
            ]
        };
        let undefined = |name: &str| {
            vec![
                t(name),
                Value::Integer(0),
                t(""),
                t("undefined"),
                t("unknown"),
                Value::Null,
                Value::Null,
            ]
        };
        assert_eq!(
            r.rows,
            vec![
                undefined("/dev/disk0s2"),
                // The System volume is not mounted; its snapshot is /.
                undefined("/dev/disk3s1"),
                fv_user("/dev/disk3s1s1"),
                vec![
                    t("/dev/disk3s2"),
                    Value::Integer(0),
                    t(""),
                    t("not encrypted"),
                    t("off"),
                    Value::Null,
                    Value::Null
                ],
                fv_user("/dev/disk3s5"),
            ]
        );
        let uuid = engine
            .query("SELECT uuid FROM disk_encryption WHERE name IN ('/dev/disk3', '/dev/disk0', '/dev/disk3s5') ORDER BY name")
            .unwrap();
        assert_eq!(
            uuid.rows,
            vec![
                vec![t("")],
                vec![t("C2B7E6A4-1D5F-4E8A-9B3C-7F0E2D4A6B81")],
                vec![t("3F6A9C12-7B4E-4D8F-A1C5-2E9B7D0F3A64")],
            ]
        );
    }

    #[test]
    fn the_policy_query() {
        let query = "SELECT COUNT(*) AS passed FROM disk_encryption \
                     WHERE name IN (SELECT device FROM mounts WHERE path = '/') AND encrypted = 1";
        let on = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        assert_eq!(on.query(query).unwrap().rows, vec![vec![Value::Integer(1)]]);
        let off = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        assert_eq!(
            off.query(query).unwrap().rows,
            vec![vec![Value::Integer(0)]]
        );
        let r = off
            .query("SELECT encrypted, encryption_status, filevault_status FROM disk_encryption WHERE name = '/dev/disk1s1s1'")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![Value::Integer(0), t("not encrypted"), t("off")]]
        );
    }

    #[test]
    fn apple_silicon_without_filevault_is_encrypted_at_rest() {
        let engine = Engine::new(fixture("disk_encryption_macos")).unwrap();
        let r = engine
            .query("SELECT encrypted, type, filevault_status, user_uuid FROM disk_encryption WHERE name = '/dev/disk3s1s1'")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                Value::Integer(1),
                t("APFS Encryption"),
                t("off"),
                Value::Null
            ]]
        );
    }
}
