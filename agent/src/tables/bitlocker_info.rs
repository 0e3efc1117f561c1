//! `bitlocker_info`: BitLocker state of each volume (osquery's
//! `bitlocker_info`), from WMI `Win32_EncryptableVolume` in
//! `ROOT\CIMV2\Security\MicrosoftVolumeEncryption`.
//!
//! As osquery: one row per instance of `SELECT * FROM
//! Win32_EncryptableVolume`. `device_id`, `drive_letter`,
//! `persistent_volume_id` are the properties (`""` when NULL, e.g. a volume
//! without a letter); `conversion_status` and `protection_status` the
//! `ConversionStatus` and `ProtectionStatus` properties (0 when missing);
//! `encryption_method` names `EncryptionMethod` (`None`,
//! `AES_128_WITH_DIFFUSER`, `AES_256_WITH_DIFFUSER`, `AES_128`, `AES_256`,
//! `HARDWARE_ENCRYPTION`, `XTS_AES_128`, `XTS_AES_256`, else `UNKNOWN`).
//! The rest are method calls on the instance, -1 when a call fails:
//! `version` (`GetVersion` → `Version`), `percentage_encrypted`
//! (`GetConversionStatus` → `EncryptionPercentage`), `lock_status`
//! (`GetLockStatus` → `LockStatus`), and `protector_types`: the
//! `GetKeyProtectors` IDs, each named through `GetKeyProtectorType` (`TPM`,
//! `EXTERNAL_KEY`, `NUMERIC_PASSWORD`, `TPM_AND_PIN`, `TPM_AND_STARTUP_KEY`,
//! `TPM_AND_PIN_AND_STARTUP_KEY`, `PUBLIC_KEY`, `PASSPHRASE`,
//! `TPM_CERTIFICATE`, `SID`, else `UNKNOWN`), joined by `,`.
//!
//! Method calls go through the WMI seam in the `CALL` form described in
//! [`super::wmi`], so recordings hold their answers next to the query.

use super::wmi::{self, MethodCall, WmiRow};
use crate::os::windows::Wmi;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "bitlocker_info",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("device_id"),
    col::text("drive_letter"),
    col::text("persistent_volume_id"),
    col::integer("conversion_status"),
    col::integer("protection_status"),
    col::text("encryption_method"),
    col::text("protector_types"),
    col::integer("version"),
    col::integer("percentage_encrypted"),
    col::integer("lock_status"),
];

pub const NAMESPACE: &str = "ROOT\\CIMV2\\Security\\MicrosoftVolumeEncryption";
pub const QUERY: &str = "SELECT * FROM Win32_EncryptableVolume";

/// osquery's name for an `EncryptionMethod` value.
pub fn encryption_method(n: Option<i64>) -> &'static str {
    match n {
        Some(0) => "None",
        Some(1) => "AES_128_WITH_DIFFUSER",
        Some(2) => "AES_256_WITH_DIFFUSER",
        Some(3) => "AES_128",
        Some(4) => "AES_256",
        Some(5) => "HARDWARE_ENCRYPTION",
        Some(6) => "XTS_AES_128",
        Some(7) => "XTS_AES_256",
        _ => "UNKNOWN",
    }
}

/// osquery's name for a `KeyProtectorType` value.
pub fn protector_type(n: Option<i64>) -> &'static str {
    match n {
        Some(1) => "TPM",
        Some(2) => "EXTERNAL_KEY",
        Some(3) => "NUMERIC_PASSWORD",
        Some(4) => "TPM_AND_PIN",
        Some(5) => "TPM_AND_STARTUP_KEY",
        Some(6) => "TPM_AND_PIN_AND_STARTUP_KEY",
        Some(7) => "PUBLIC_KEY",
        Some(8) => "PASSPHRASE",
        Some(9) => "TPM_CERTIFICATE",
        Some(10) => "SID",
        _ => "UNKNOWN",
    }
}

/// A method's integer out-parameter, or -1 as osquery's `fetchMethodResultLong`.
fn method_long(wmi: &dyn Wmi, path: &str, method: &str, param: &str) -> i64 {
    wmi::call(wmi, NAMESPACE, &MethodCall::new(path, method))
        .ok()
        .flatten()
        .and_then(|out| wmi::get_long(&out, param))
        .unwrap_or(-1)
}

/// `GetKeyProtectors`, each ID named by `GetKeyProtectorType`.
fn protector_types(wmi: &dyn Wmi, path: &str) -> String {
    let ids = wmi::call(wmi, NAMESPACE, &MethodCall::new(path, "GetKeyProtectors"))
        .ok()
        .flatten()
        .and_then(|out| wmi::get_strings(&out, "VolumeKeyProtectorID"))
        .unwrap_or_default();
    let names: Vec<&str> = ids
        .iter()
        .map(|id| {
            let call = MethodCall::new(path, "GetKeyProtectorType").arg("VolumeKeyProtectorID", id);
            protector_type(
                wmi::call(wmi, NAMESPACE, &call)
                    .ok()
                    .flatten()
                    .and_then(|out| wmi::get_long(&out, "KeyProtectorType")),
            )
        })
        .collect();
    names.join(",")
}

fn volume_row(wmi: &dyn Wmi, v: &WmiRow) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("device_id", wmi::string_or_empty(v, "DeviceID"))
        .set("drive_letter", wmi::string_or_empty(v, "DriveLetter"))
        .set(
            "persistent_volume_id",
            wmi::string_or_empty(v, "PersistentVolumeID"),
        )
        .set(
            "conversion_status",
            wmi::get_long(v, "ConversionStatus").unwrap_or(0),
        )
        .set(
            "protection_status",
            wmi::get_long(v, "ProtectionStatus").unwrap_or(0),
        )
        .set(
            "encryption_method",
            encryption_method(wmi::get_long(v, "EncryptionMethod")),
        );
    match wmi::object_path(v, "Win32_EncryptableVolume", "DeviceID") {
        Some(path) => {
            r.set("protector_types", protector_types(wmi, &path))
                .set("version", method_long(wmi, &path, "GetVersion", "Version"))
                .set(
                    "percentage_encrypted",
                    method_long(wmi, &path, "GetConversionStatus", "EncryptionPercentage"),
                )
                .set(
                    "lock_status",
                    method_long(wmi, &path, "GetLockStatus", "LockStatus"),
                );
        }
        None => {
            r.set("protector_types", "")
                .set("version", -1)
                .set("percentage_encrypted", -1)
                .set("lock_status", -1);
        }
    }
    r.build()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let wmi = ctx.machine.wmi.as_ref();
    // osquery logs a failed query and returns no rows (no BitLocker component
    // on Windows Home, or not running elevated).
    let Ok(volumes) = wmi.query(NAMESPACE, QUERY) else {
        return Ok(Vec::new());
    };
    Ok(volumes.iter().map(|v| volume_row(wmi, v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn names() {
        assert_eq!(encryption_method(Some(6)), "XTS_AES_128");
        assert_eq!(encryption_method(Some(0)), "None");
        assert_eq!(encryption_method(Some(9)), "UNKNOWN");
        assert_eq!(encryption_method(None), "UNKNOWN");
        assert_eq!(protector_type(Some(3)), "NUMERIC_PASSWORD");
        assert_eq!(protector_type(Some(0)), "UNKNOWN");
    }

    #[test]
    fn reads_recorded_volumes() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/bitlocker_info"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query("SELECT * FROM bitlocker_info ORDER BY drive_letter = '', drive_letter")
            .unwrap();
        assert_eq!(res.rows.len(), 3);
        let t = |i: usize, c: &str| res.get(i, c).cloned();
        let text = |s: &str| Some(Value::Text(s.to_string()));
        let int = |n: i64| Some(Value::Integer(n));
        // C: encrypted, TPM plus a recovery password.
        assert_eq!(t(0, "drive_letter"), text("C:"));
        assert_eq!(
            t(0, "device_id"),
            text("\\\\?\\Volume{4c1b5ad2-7e3f-4b8a-9c51-2f6d8e0a1b3c}\\")
        );
        assert_eq!(
            t(0, "persistent_volume_id"),
            text("{9D2E5C1A-3B4F-4E6A-8C7D-1F2A3B4C5D6E}")
        );
        assert_eq!(t(0, "conversion_status"), int(1));
        assert_eq!(t(0, "protection_status"), int(1));
        assert_eq!(t(0, "encryption_method"), text("XTS_AES_128"));
        assert_eq!(t(0, "protector_types"), text("TPM,NUMERIC_PASSWORD"));
        assert_eq!(t(0, "version"), int(2));
        assert_eq!(t(0, "percentage_encrypted"), int(100));
        assert_eq!(t(0, "lock_status"), int(0));
        // D: a data disk, not encrypted.
        assert_eq!(t(1, "drive_letter"), text("D:"));
        assert_eq!(t(1, "protection_status"), int(0));
        assert_eq!(t(1, "conversion_status"), int(0));
        assert_eq!(t(1, "encryption_method"), text("None"));
        assert_eq!(t(1, "protector_types"), text(""));
        assert_eq!(t(1, "percentage_encrypted"), int(0));
        // The recovery partition has no letter, and its method calls were
        // not recorded: -1 as when they fail.
        assert_eq!(t(2, "drive_letter"), text(""));
        assert_eq!(t(2, "version"), int(-1));
        assert_eq!(t(2, "lock_status"), int(-1));

        let passed = engine
            .query(
                "SELECT COUNT(*) AS passed FROM bitlocker_info WHERE protection_status = 1 \
                 AND conversion_status = 1 AND drive_letter = 'C:'",
            )
            .unwrap();
        assert_eq!(passed.get(0, "passed"), Some(&Value::Integer(1)));
    }
}
