//! `secureboot`: UEFI Secure Boot state, from efivarfs (osquery's `secureboot`).
//!
//! As osquery: a machine that did not boot through UEFI (no
//! `/sys/firmware/efi`) has no row. Otherwise one row, with `secure_boot`
//! and `setup_mode` from the `SecureBoot` and `SetupMode` variables in
//! `/sys/firmware/efi/efivars` (four attribute bytes, then the value byte):
//! 1 or 0, -1 for another value, NULL when the variable cannot be read
//! (efivarfs not mounted, or a firmware that does not define it).

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

mod macos;
mod windows;

pub static TABLE: TableDef = TableDef {
    name: "secureboot",
    columns: COLUMNS,
    platforms: Platforms::LINUX
        .union(Platforms::MACOS)
        .union(Platforms::WINDOWS),
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("secure_boot"),
    col::integer("secure_mode").on(Platforms::MACOS),
    col::text("description").on(Platforms::MACOS),
    col::integer("kernel_extensions").on(Platforms::MACOS),
    col::integer("mdm_operations").on(Platforms::MACOS),
    col::integer("setup_mode").on(Platforms::LINUX.union(Platforms::WINDOWS)),
];

const EFI_DIR: &str = "/sys/firmware/efi";
const EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";
/// EFI_GLOBAL_VARIABLE, the vendor GUID of the Secure Boot variables.
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// The boolean of an efivarfs file: 1, 0, -1 for another value, `None` if short.
pub fn efi_bool(data: &[u8]) -> Option<i64> {
    match data.get(4)? {
        0 => Some(0),
        1 => Some(1),
        _ => Some(-1),
    }
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    if ctx.platform() == crate::sql::table::Platform::Macos {
        return macos::generate(ctx, constraints);
    }
    if ctx.platform() == crate::sql::table::Platform::Windows {
        return windows::generate(ctx, constraints);
    }
    let fs = ctx.machine.fs.as_ref();
    if !fs.exists(Path::new(EFI_DIR)) {
        return Ok(Vec::new());
    }
    let read = |name: &str| {
        let path = Path::new(EFIVARS_DIR).join(format!("{name}-{GLOBAL_GUID}"));
        fs.read(&path).ok().and_then(|d| efi_bool(&d))
    };
    let mut r = RowBuilder::new(COLUMNS);
    r.set_opt("secure_boot", read("SecureBoot"))
        .set_opt("setup_mode", read("SetupMode"));
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;

    #[test]
    fn efivar_values() {
        assert_eq!(efi_bool(&[6, 0, 0, 0, 1]), Some(1));
        assert_eq!(efi_bool(&[6, 0, 0, 0, 0]), Some(0));
        assert_eq!(efi_bool(&[6, 0, 0, 0, 7]), Some(-1));
        assert_eq!(efi_bool(&[6, 0, 0, 0]), None);
    }

    fn query(fixture: &str) -> crate::sql::QueryResult {
        let engine =
            crate::sql::Engine::new(crate::tables::util::testing::fixture(fixture)).unwrap();
        engine.query("SELECT * FROM secureboot").unwrap()
    }

    #[test]
    fn reads_a_recorded_uefi_laptop() {
        let res = query("secureboot");
        assert_eq!(res.rows.len(), 1);
        assert_eq!(res.get(0, "secure_boot"), Some(&Value::Integer(1)));
        assert_eq!(res.get(0, "setup_mode"), Some(&Value::Integer(0)));
    }

    #[test]
    fn a_bios_machine_has_no_row() {
        // The uptime fixture has no /sys/firmware/efi.
        assert!(query("uptime").rows.is_empty());
    }

    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(Machine::real()).unwrap();
        let res = engine.query("SELECT * FROM secureboot").unwrap();
        assert!(res.rows.len() <= 1);
    }
}
