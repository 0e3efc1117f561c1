//! `services`: the Windows services (osquery's `services`).
//!
//! osquery asks the Service Control Manager (`EnumServicesStatusEx` for
//! Win32 services, `QueryServiceConfig`, `QueryServiceConfig2`). Tend reads
//! the same SCM answers through WMI `Win32_Service` (`ROOT\CIMV2`), whose
//! provider makes those calls, and the service's registry key
//! (`HKLM\SYSTEM\CurrentControlSet\Services\<name>`) where WMI rewrites what
//! the SCM says:
//!
//! - `name`, `display_name`, `description`, `path` (`PathName`),
//!   `user_account` (`StartName`), `pid` (`ProcessId`), `win32_exit_code`
//!   (`ExitCode`), `service_exit_code` (`ServiceSpecificExitCode`): WMI.
//! - `status`: WMI's `State` in the SCM's spelling (`Running` → `RUNNING`,
//!   `Start Pending` → `START_PENDING`, ...).
//! - `start_type`: the registry `Start` value (0 `BOOT_START`,
//!   1 `SYSTEM_START`, 2 `AUTO_START`, 3 `DEMAND_START`, 4 `DISABLED`), else
//!   WMI's `StartMode` (`Auto`, `Manual`, ...) mapped the same way.
//! - `service_type`: the registry `Type` value, named as osquery names it
//!   (0x10 `OWN_PROCESS`, 0x20 `SHARE_PROCESS`, 0x100
//!   `INTERACTIVE_PROCESS`, 0x110/0x120 with `(Interactive)`, any other —
//!   per-user service templates and instances — `UNKNOWN`); without the
//!   key, WMI's `ServiceType` (`Own Process`, `Share Process`).
//! - `module_path`: the `ServiceDll` value of the service's `Parameters`
//!   key with its environment variables expanded. osquery expands them with
//!   its own environment; Tend expands the system ones a service DLL path
//!   uses (`%SystemRoot%`, `%windir%`, `%SystemDrive%`, `%ProgramFiles%`,
//!   `%ProgramData%`), read from the registry, and leaves others as written.

use super::registry;
use super::wmi::{self, WmiRow};
use crate::os::windows::Registry;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "services",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("service_type"),
    col::text("display_name"),
    col::text("status"),
    col::integer("pid"),
    col::text("start_type"),
    col::integer("win32_exit_code"),
    col::integer("service_exit_code"),
    col::text("path"),
    col::text("module_path"),
    col::text("description"),
    col::text("user_account"),
];

pub const QUERY: &str = "SELECT * FROM Win32_Service";
const SERVICES_KEY: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services";
const CURRENT_VERSION: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion";
const NT_CURRENT_VERSION: &str =
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";

/// WMI's `State` as the SCM names it.
pub fn status_name(state: &str) -> String {
    state.trim().to_ascii_uppercase().replace(' ', "_")
}

/// osquery's start type for the registry `Start` value.
pub fn start_type(start: i64) -> Option<&'static str> {
    Some(match start {
        0 => "BOOT_START",
        1 => "SYSTEM_START",
        2 => "AUTO_START",
        3 => "DEMAND_START",
        4 => "DISABLED",
        _ => return None,
    })
}

/// osquery's start type for WMI's `StartMode`.
fn start_mode(mode: &str) -> Option<&'static str> {
    start_type(match mode {
        "Boot" => 0,
        "System" => 1,
        "Auto" => 2,
        "Manual" => 3,
        "Disabled" => 4,
        _ => return None,
    })
}

/// osquery's service type name for the registry `Type` value.
pub fn service_type(ty: i64) -> &'static str {
    match ty {
        0x10 => "OWN_PROCESS",
        0x20 => "SHARE_PROCESS",
        0x100 => "INTERACTIVE_PROCESS",
        0x110 => "OWN_PROCESS(Interactive)",
        0x120 => "SHARE_PROCESS(Interactive)",
        _ => "UNKNOWN",
    }
}

/// The system environment variables service DLL paths use, from the registry.
pub fn system_environment(reg: &dyn Registry) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let read = |key: &str| registry::query_key(reg, key, false).unwrap_or_default();
    let nt = read(NT_CURRENT_VERSION);
    if let Some(root) = registry::value(&nt, "SystemRoot") {
        env.push(("SystemRoot".to_string(), root.to_string()));
        env.push(("windir".to_string(), root.to_string()));
        if let Some(drive) = root.get(..2).filter(|d| d.ends_with(':')) {
            env.push(("SystemDrive".to_string(), drive.to_string()));
        }
    }
    let cv = read(CURRENT_VERSION);
    if let Some(pf) = registry::value(&cv, "ProgramFilesDir") {
        env.push(("ProgramFiles".to_string(), pf.to_string()));
    }
    let profiles =
        read("HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList");
    if let Some(pd) = registry::value(&profiles, "ProgramData") {
        let pd = expand(pd, &env);
        env.push(("ProgramData".to_string(), pd));
    }
    env
}

/// `ExpandEnvironmentStrings` over `env` (names case-insensitive; unknown
/// variables stay as written).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) => {
                let name = &after[..end];
                match env.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    Some((_, v)) => {
                        out.push_str(v);
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push('%');
                        out.push_str(name);
                        rest = &after[end..];
                    }
                }
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn service_row(reg: &dyn Registry, env: &[(String, String)], s: &WmiRow) -> Row {
    let name = wmi::string_or_empty(s, "Name");
    let key = registry::query_key(reg, &format!("{SERVICES_KEY}\\{name}"), false).ok();
    let reg_int = |v: &str| {
        key.as_deref()
            .and_then(|k| registry::value(k, v))
            .and_then(|d| d.parse::<i64>().ok())
    };
    let mut r = RowBuilder::new(COLUMNS);
    let service_type_name = match reg_int("Type") {
        Some(t) => service_type(t),
        None => match wmi::get_string(s, "ServiceType").as_deref() {
            Some("Own Process") => "OWN_PROCESS",
            Some("Share Process") => "SHARE_PROCESS",
            Some("Interactive Process") => "INTERACTIVE_PROCESS",
            _ => "UNKNOWN",
        },
    };
    let start = reg_int("Start").and_then(start_type).or_else(|| {
        wmi::get_string(s, "StartMode")
            .as_deref()
            .and_then(start_mode)
    });
    r.set("name", name.as_str())
        .set("service_type", service_type_name)
        .set("display_name", wmi::string_or_empty(s, "DisplayName"))
        .set(
            "status",
            wmi::get_string(s, "State")
                .map_or_else(|| "UNKNOWN".to_string(), |st| status_name(&st)),
        )
        .set("pid", wmi::get_long(s, "ProcessId").unwrap_or(0))
        .set_opt("start_type", start)
        .set("win32_exit_code", wmi::get_long(s, "ExitCode").unwrap_or(0))
        .set(
            "service_exit_code",
            wmi::get_long(s, "ServiceSpecificExitCode").unwrap_or(0),
        )
        .set("path", wmi::string_or_empty(s, "PathName"))
        .set("user_account", wmi::string_or_empty(s, "StartName"))
        .set_opt("description", wmi::get_string(s, "Description"));
    let params = registry::query_key(reg, &format!("{SERVICES_KEY}\\{name}\\Parameters"), false)
        .unwrap_or_default();
    if let Some(dll) = registry::value(&params, "ServiceDll") {
        r.set("module_path", expand(dll, env));
    }
    r.build()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    // osquery returns no rows when the SCM cannot be asked.
    let Ok(services) = ctx.machine.wmi.query("ROOT\\CIMV2", QUERY) else {
        return Ok(Vec::new());
    };
    let env = system_environment(reg);
    let mut rows = Vec::with_capacity(services.len());
    for s in &services {
        ctx.check_deadline()?;
        rows.push(service_row(reg, &env, s));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn names_and_expansion() {
        assert_eq!(status_name("Start Pending"), "START_PENDING");
        assert_eq!(status_name("Running"), "RUNNING");
        assert_eq!(start_type(4), Some("DISABLED"));
        assert_eq!(start_mode("Manual"), Some("DEMAND_START"));
        assert_eq!(service_type(0x110), "OWN_PROCESS(Interactive)");
        assert_eq!(service_type(0x60), "UNKNOWN");
        let env = vec![("SystemRoot".to_string(), "C:\\WINDOWS".to_string())];
        assert_eq!(
            expand("%systemroot%\\system32\\wuaueng.dll", &env),
            "C:\\WINDOWS\\system32\\wuaueng.dll"
        );
        assert_eq!(expand("%NOPE%\\x.dll", &env), "%NOPE%\\x.dll");
        assert_eq!(expand("50% off", &env), "50% off");
    }

    #[test]
    fn reads_recorded_services() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/services"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query("SELECT * FROM services ORDER BY name")
            .unwrap();
        let t = |i: usize, c: &str| match res.get(i, c) {
            Some(Value::Text(s)) => s.clone(),
            Some(Value::Integer(n)) => n.to_string(),
            Some(Value::Null) => "NULL".to_string(),
            other => panic!("{c}: {other:?}"),
        };
        let names: Vec<String> = (0..res.rows.len()).map(|i| t(i, "name")).collect();
        assert_eq!(names, ["CDPUserSvc_5d2a1", "Spooler", "wuauserv"]);
        // wuauserv: a shared svchost service, demand start, stopped.
        assert_eq!(t(2, "service_type"), "SHARE_PROCESS");
        assert_eq!(t(2, "display_name"), "Windows Update");
        assert_eq!(t(2, "status"), "STOPPED");
        assert_eq!(t(2, "pid"), "0");
        assert_eq!(t(2, "start_type"), "DEMAND_START");
        assert_eq!(
            t(2, "path"),
            "C:\\WINDOWS\\system32\\svchost.exe -k netsvcs -p"
        );
        assert_eq!(t(2, "module_path"), "C:\\WINDOWS\\system32\\wuaueng.dll");
        assert_eq!(t(2, "user_account"), "LocalSystem");
        // Spooler runs in its own process.
        assert_eq!(t(1, "service_type"), "OWN_PROCESS");
        assert_eq!(t(1, "status"), "RUNNING");
        assert_eq!(t(1, "pid"), "3312");
        assert_eq!(t(1, "start_type"), "AUTO_START");
        assert_eq!(t(1, "module_path"), "NULL");
        // A per-user service instance: osquery has no name for its type.
        assert_eq!(t(0, "service_type"), "UNKNOWN");
        assert_eq!(t(0, "win32_exit_code"), "1077");
    }
}
