//! `secureboot` on Windows: one row, as osquery's.
//!
//! osquery reads the `SecureBoot` and `SetupMode` firmware variables with
//! `GetFirmwareEnvironmentVariable`, which no seam offers. Instead:
//!
//! - `secure_boot`: `UEFISecureBootEnabled` of
//!   `HKLM\SYSTEM\CurrentControlSet\Control\SecureBoot\State`, which Windows
//!   sets from the `SecureBoot` variable at boot (1, 0, -1 for another value).
//! - `setup_mode`: the `SetupMode` variable through PowerShell's
//!   `Get-SecureBootUEFI` (the same firmware call, which also needs
//!   administrator rights) via the command seam: its byte, or -1 when the
//!   command fails, as osquery gives -1 when its call fails.
//!
//! A machine that did not boot through UEFI has no `State` key (osquery's
//! call fails there with "not supported"): both columns are NULL and no
//! command is run.

use super::COLUMNS;
use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::registry;

const STATE: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\State";
pub const POWERSHELL: &str = "powershell.exe";
pub const SETUP_MODE_ARGS: [&str; 4] = [
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    "(Get-SecureBootUEFI -Name SetupMode).Bytes",
];

/// A firmware boolean as osquery reports it: 0, 1, or -1 for another value.
fn efi_bool(n: i64) -> i64 {
    match n {
        0 | 1 => n,
        _ => -1,
    }
}

/// `Get-SecureBootUEFI`'s `.Bytes`: one decimal byte per line.
pub fn parse_setup_mode(stdout: &str) -> Option<i64> {
    let mut bytes = stdout.split_whitespace();
    let first = bytes.next()?.parse::<i64>().ok()?;
    bytes.next().is_none().then_some(efi_bool(first))
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut r = RowBuilder::new(COLUMNS);
    if let Ok(state) = registry::query_key(ctx.machine.registry.as_ref(), STATE, false) {
        let secure = registry::value(&state, "UEFISecureBootEnabled")
            .and_then(|d| d.parse::<i64>().ok())
            .map_or(-1, efi_bool);
        let setup = match ctx.machine.commands.run(POWERSHELL, &SETUP_MODE_ARGS) {
            Ok(o) if o.status == 0 => parse_setup_mode(&o.stdout).unwrap_or(-1),
            _ => -1,
        };
        r.set("secure_boot", secure).set("setup_mode", setup);
    }
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn setup_mode_output() {
        assert_eq!(parse_setup_mode("0\r\n"), Some(0));
        assert_eq!(parse_setup_mode("1\r\n"), Some(1));
        assert_eq!(parse_setup_mode("7\r\n"), Some(-1));
        assert_eq!(parse_setup_mode(""), None);
        assert_eq!(parse_setup_mode("0\r\n1\r\n"), None);
    }

    fn row(rel: &str) -> (Value, Value) {
        let engine = crate::sql::Engine::new(fixture(rel)).unwrap();
        let res = engine
            .query("SELECT secure_boot, setup_mode FROM secureboot")
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        (
            res.get(0, "secure_boot").cloned().unwrap(),
            res.get(0, "setup_mode").cloned().unwrap(),
        )
    }

    #[test]
    fn reads_recorded_machines() {
        assert_eq!(
            row("secureboot/windows"),
            (Value::Integer(1), Value::Integer(0))
        );
        // UEFI with Secure Boot off, and the firmware query refused (not elevated).
        assert_eq!(
            row("secureboot/windows-off"),
            (Value::Integer(0), Value::Integer(-1))
        );
        // Legacy BIOS: no State key.
        assert_eq!(row("secureboot/windows-bios"), (Value::Null, Value::Null));
    }
}
