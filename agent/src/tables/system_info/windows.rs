//! `system_info` on Windows, as osquery fills it, through WMI (`ROOT\CIMV2`)
//! and the registry:
//!
//! - `hostname`: the DNS name with the primary DNS suffix (osquery's
//!   `GetComputerNameEx(ComputerNameDnsFullyQualified)`), `computer_name`
//!   and `local_hostname` the host name alone: `Hostname` and `Domain` of
//!   `HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`, which is
//!   where Windows keeps them.
//! - `uuid`: `Win32_ComputerSystemProduct.UUID` (the SMBIOS UUID osquery
//!   reads), unless missing or a firmware placeholder; then, as on Linux,
//!   a stable identifier instead of osquery's stored random one: the
//!   installation's `MachineGuid` (`HKLM\SOFTWARE\Microsoft\Cryptography`).
//! - `cpu_logical_cores`: `Win32_ComputerSystem.NumberOfLogicalProcessors`;
//!   `cpu_physical_cores`: the first `Win32_Processor`'s `NumberOfCores`;
//!   `hardware_vendor`/`hardware_model`: `Win32_ComputerSystem`'s
//!   `Manufacturer`/`Model`; all four `-1` when WMI has no answer.
//!   `cpu_sockets`: the number of `Win32_Processor` instances.
//! - `cpu_brand`: the processor's brand string (`Win32_Processor.Name`,
//!   which Windows takes from CPUID as osquery does), trimmed.
//! - `physical_memory`: the installed memory modules' sizes
//!   (`Win32_PhysicalMemory.Capacity`, the SMBIOS table
//!   `GetPhysicallyInstalledSystemMemory` sums), `-1` without any.
//! - `cpu_microcode`: as osquery, one byte of the `Update Revision` value of
//!   `HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0`, in decimal.
//! - `hardware_serial`: `Win32_Bios.SerialNumber` (`-1` without an answer);
//!   `board_*`: `Win32_BaseBoard`'s `Manufacturer`, `Product`, `Version`,
//!   `SerialNumber`.
//! - `cpu_type`: the processor architecture (`Win32_Processor.Architecture`:
//!   `x86_64`, `x86`, `ARM`, `ARM64`, `x64 Itanium`); `emulated_cpu_type`,
//!   the architecture the reading process runs as, is the same for Tend's
//!   native builds. `cpu_subtype` and `hardware_version` are `-1`, as osquery.

use super::{COLUMNS, PLACEHOLDER_UUIDS};
use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::registry;
use crate::tables::wmi::{self, WmiRow};

const CIMV2: &str = "ROOT\\CIMV2";
const TCPIP: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters";
const CRYPTOGRAPHY: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography";
const CPU0: &str = "HKEY_LOCAL_MACHINE\\HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0\\";

/// osquery's `cpu_type` for a `Win32_Processor.Architecture` value.
pub fn cpu_type(architecture: i64) -> Option<&'static str> {
    Some(match architecture {
        0 => "x86",
        5 => "ARM",
        6 => "x64 Itanium",
        9 => "x86_64",
        12 => "ARM64",
        _ => return None,
    })
}

/// osquery's microcode: the hex digits 8–9 of the rendered `Update Revision`
/// data (which must be at least 16 digits), in decimal.
pub fn microcode(update_revision: &str) -> Option<String> {
    if update_revision.len() < 16 {
        return None;
    }
    let byte = update_revision.get(8..10)?;
    Some(u64::from_str_radix(byte, 16).unwrap_or(0).to_string())
}

fn query(ctx: &ScanContext<'_>, wql: &str) -> Vec<WmiRow> {
    ctx.machine.wmi.query(CIMV2, wql).unwrap_or_default()
}

fn host_uuid(ctx: &ScanContext<'_>) -> String {
    let product = query(ctx, "SELECT UUID FROM Win32_ComputerSystemProduct");
    if let Some(uuid) = product
        .first()
        .and_then(|p| wmi::get_string(p, "UUID"))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty() && !PLACEHOLDER_UUIDS.iter().any(|p| p.eq_ignore_ascii_case(u)))
    {
        return uuid;
    }
    let crypto =
        registry::query_key(ctx.machine.registry.as_ref(), CRYPTOGRAPHY, false).unwrap_or_default();
    registry::value(&crypto, "MachineGuid")
        .unwrap_or("")
        .to_string()
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let mut r = RowBuilder::new(COLUMNS);

    let tcpip = registry::query_key(reg, TCPIP, false).unwrap_or_default();
    let host = registry::value(&tcpip, "Hostname")
        .unwrap_or("")
        .to_string();
    let fqdn = match registry::value(&tcpip, "Domain").filter(|d| !d.is_empty()) {
        Some(domain) => format!("{host}.{domain}"),
        None => host.clone(),
    };
    r.set("hostname", fqdn)
        .set("computer_name", host.as_str())
        .set("local_hostname", host.as_str())
        .set("uuid", host_uuid(ctx));

    let system = query(ctx, "select * from Win32_ComputerSystem");
    let processors = query(ctx, "select * from Win32_Processor");
    match (system.first(), processors.first()) {
        (Some(s), Some(p)) => {
            r.set(
                "cpu_logical_cores",
                wmi::get_long(s, "NumberOfLogicalProcessors").unwrap_or(0),
            )
            .set(
                "cpu_physical_cores",
                wmi::get_long(p, "NumberOfCores").unwrap_or(0),
            )
            .set("hardware_vendor", wmi::string_or_empty(s, "Manufacturer"))
            .set("hardware_model", wmi::string_or_empty(s, "Model"));
        }
        _ => {
            r.set("cpu_logical_cores", -1)
                .set("cpu_physical_cores", -1)
                .set("hardware_vendor", "-1")
                .set("hardware_model", "-1");
        }
    }
    if let Some(p) = processors.first() {
        r.set_opt(
            "cpu_brand",
            wmi::get_string(p, "Name").map(|n| n.trim().to_string()),
        );
        let ty = wmi::get_long(p, "Architecture").and_then(cpu_type);
        r.set_opt("cpu_type", ty).set_opt("emulated_cpu_type", ty);
    }
    if !processors.is_empty() {
        r.set("cpu_sockets", processors.len());
    }

    let modules = query(ctx, "SELECT Capacity FROM Win32_PhysicalMemory");
    let memory: u64 = modules
        .iter()
        .filter_map(|m| wmi::get_u64(m, "Capacity"))
        .sum();
    if memory > 0 {
        r.set("physical_memory", memory);
    } else {
        r.set("physical_memory", -1);
    }

    let cpu0 = registry::query_key(reg, CPU0, false).unwrap_or_default();
    r.set_opt(
        "cpu_microcode",
        registry::value(&cpu0, "Update Revision").and_then(microcode),
    );

    match query(ctx, "select * from Win32_Bios").first() {
        Some(b) => r.set("hardware_serial", wmi::string_or_empty(b, "SerialNumber")),
        None => r.set("hardware_serial", "-1"),
    };
    if let Some(b) = query(ctx, "select * from Win32_BaseBoard").first() {
        r.set("board_vendor", wmi::string_or_empty(b, "Manufacturer"))
            .set("board_model", wmi::string_or_empty(b, "Product"))
            .set("board_version", wmi::string_or_empty(b, "Version"))
            .set("board_serial", wmi::string_or_empty(b, "SerialNumber"));
    }
    r.set("cpu_subtype", "-1").set("hardware_version", "-1");
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    #[test]
    fn microcode_and_types() {
        // Update Revision 00000000 B4000000, padded to the key's longest value.
        assert_eq!(
            microcode("00000000B4000000000000000000").as_deref(),
            Some("180")
        );
        assert_eq!(microcode("0000"), None);
        assert_eq!(cpu_type(9), Some("x86_64"));
        assert_eq!(cpu_type(12), Some("ARM64"));
        assert_eq!(cpu_type(3), None);
    }

    #[test]
    fn reads_a_recorded_laptop() {
        let engine = crate::sql::Engine::new(fixture("system_info/windows")).unwrap();
        let res = engine.query("SELECT * FROM system_info").unwrap();
        assert_eq!(res.rows.len(), 1);
        let get = |c: &str| res.get(0, c).cloned().unwrap();
        assert_eq!(get("hostname"), text("WS-042.corp.example.com"));
        assert_eq!(get("computer_name"), text("WS-042"));
        assert_eq!(get("local_hostname"), text("WS-042"));
        assert_eq!(get("uuid"), text("4C4C4544-0042-3510-8052-B4C04F4E3332"));
        assert_eq!(get("cpu_type"), text("x86_64"));
        assert_eq!(get("cpu_subtype"), text("-1"));
        assert_eq!(
            get("cpu_brand"),
            text("13th Gen Intel(R) Core(TM) i7-1365U")
        );
        assert_eq!(get("cpu_physical_cores"), Value::Integer(10));
        assert_eq!(get("cpu_logical_cores"), Value::Integer(12));
        assert_eq!(get("cpu_sockets"), Value::Integer(1));
        assert_eq!(get("cpu_microcode"), text("17"));
        assert_eq!(get("physical_memory"), Value::Integer(34_359_738_368));
        assert_eq!(get("hardware_vendor"), text("Dell Inc."));
        assert_eq!(get("hardware_model"), text("Latitude 7440"));
        assert_eq!(get("hardware_version"), text("-1"));
        assert_eq!(get("hardware_serial"), text("5B4Q3N2"));
        assert_eq!(get("board_vendor"), text("Dell Inc."));
        assert_eq!(get("board_model"), text("0V1P5R"));
        assert_eq!(get("board_version"), text("A00"));
        assert_eq!(get("board_serial"), text("/5B4Q3N2/CNCMK0038B0123/"));
    }
}
