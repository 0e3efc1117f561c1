//! `secureboot` on macOS.
//!
//! As osquery, by processor (Tend goes by `uname`'s machine, osquery by the
//! architecture it was built for):
//!
//! - Apple silicon: System Information's controller report, read through
//!   `system_profiler -xml SPiBridgeDataType` (osquery asks the same
//!   reporter). `description` is `ibridge_secure_boot`; `secure_boot` is 1
//!   for `Full Security` and `Reduced Security`, 0 for `Permissive Security`;
//!   `kernel_extensions` is `ibridge_sb_other_kext` (`Yes` 1, `No` 0);
//!   `mdm_operations` is 1 when `ibridge_sb_manual_mdm` or
//!   `ibridge_sb_device_mdm` is `Yes`, 0 when either is present.
//! - Intel: the T2 chip's NVRAM variable
//!   `94b73556-2197-4702-82a8-3e1337dafbfb:AppleSecureBootPolicy` (one byte:
//!   2 full, 1 medium, 0 no security), which `nvram` prints with `%xx`
//!   escapes. `secure_mode` is that byte's mode (0 none, 1 full, 2 medium,
//!   osquery's numbering) and `secure_boot` 1 unless it is 0. A Mac without
//!   the variable (no T2 chip) has one row of NULLs, as in osquery.
//!
//! When the report or variable cannot be read at all there is no row.

use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::darwin;
use crate::tables::sip_config::nvram_bytes;

use super::COLUMNS;

const SECURE_BOOT_POLICY: &str = "94b73556-2197-4702-82a8-3e1337dafbfb:AppleSecureBootPolicy";

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let arm = ctx
        .machine
        .host
        .uname()
        .is_ok_and(|u| u.machine == "arm64" || u.machine == "aarch64");
    let row = if arm { apple_silicon(ctx) } else { intel(ctx) };
    Ok(row.into_iter().collect())
}

fn apple_silicon(ctx: &ScanContext<'_>) -> Option<Row> {
    let report = darwin::system_profiler(ctx, "SPiBridgeDataType")?;
    let mut r = RowBuilder::new(COLUMNS);
    let Some(item) = darwin::last_item(&report) else {
        return Some(r.build());
    };
    if let Some(desc) = darwin::string(item, "ibridge_secure_boot") {
        match desc {
            "Full Security" | "Reduced Security" => {
                r.set("secure_boot", 1);
            }
            "Permissive Security" => {
                r.set("secure_boot", 0);
            }
            _ => {}
        }
        r.set("description", desc);
    }
    match darwin::string(item, "ibridge_sb_other_kext") {
        Some("Yes") => {
            r.set("kernel_extensions", 1);
        }
        Some("No") => {
            r.set("kernel_extensions", 0);
        }
        _ => {}
    }
    let manual = darwin::string(item, "ibridge_sb_manual_mdm");
    let device = darwin::string(item, "ibridge_sb_device_mdm");
    if manual.is_some() || device.is_some() {
        r.set(
            "mdm_operations",
            i64::from(manual == Some("Yes") || device == Some("Yes")),
        );
    }
    Some(r.build())
}

fn intel(ctx: &ScanContext<'_>) -> Option<Row> {
    let out = darwin::run(ctx, "/usr/sbin/nvram", &[SECURE_BOOT_POLICY])?;
    let mut r = RowBuilder::new(COLUMNS);
    if out.status != 0 {
        // No such variable: a Mac without Secure Boot.
        return Some(r.build());
    }
    let bytes = nvram_bytes(&out.stdout)?;
    let mode = match bytes.as_slice() {
        [2] => 1,
        [1] => 2,
        [0] => 0,
        // osquery reports an error and no row for any other value.
        _ => return None,
    };
    r.set("secure_boot", i64::from(mode != 0))
        .set("secure_mode", mode);
    Some(r.build())
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn apple_silicon_full_security() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine
            .query("SELECT secure_boot, secure_mode, description, kernel_extensions, mdm_operations FROM secureboot")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                Value::Integer(1),
                Value::Null,
                t("Full Security"),
                Value::Integer(0),
                Value::Integer(0),
            ]]
        );
    }

    #[test]
    fn intel_without_t2_has_a_row_of_nulls() {
        let engine = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = engine
            .query("SELECT secure_boot, secure_mode, description FROM secureboot")
            .unwrap();
        assert_eq!(r.rows, vec![vec![Value::Null, Value::Null, Value::Null]]);
    }

    #[test]
    fn intel_t2_medium_security() {
        let engine = Engine::new(fixture("secureboot_macos")).unwrap();
        let r = engine
            .query("SELECT secure_boot, secure_mode FROM secureboot")
            .unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(1), Value::Integer(2)]]);
    }
}
