//! `os_version` on Windows, as osquery: WMI `Win32_OperatingSystem`
//! (`SELECT CAPTION,VERSION,INSTALLDATE,OSARCHITECTURE`): `name` and
//! `codename` are `Caption` (`Microsoft Windows 11 Pro`), `Version`
//! (`10.0.22631`) splits into `major`, `minor` and `build`, `version` is
//! `major.minor.build`, `install_date` is `InstallDate` in Unix seconds,
//! `arch` is `OSArchitecture` (`64-bit`), `platform` and `platform_like`
//! are `windows`. `revision` is the update build revision, `UBR` in
//! `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
//!
//! When WMI has no answer osquery falls back to that registry key:
//! `ProductName`, `InstallDate`, `CurrentMajorVersionNumber` and
//! `CurrentMinorVersionNumber` (or the older `CurrentVersion` `6.3`),
//! `CurrentBuildNumber`, and the architecture of the processor
//! (`PROCESSOR_ARCHITECTURE` of the system environment here, where osquery
//! asks `GetNativeSystemInfo`).

use super::COLUMNS;
use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::registry;
use crate::tables::system_info::osquery_split;
use crate::tables::wmi;

pub const QUERY: &str =
    "SELECT CAPTION,VERSION,INSTALLDATE,OSARCHITECTURE FROM Win32_OperatingSystem";
const CURRENT_VERSION: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";
const ENVIRONMENT: &str =
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment";

/// osquery's `arch` for `PROCESSOR_ARCHITECTURE`.
fn arch_name(processor: &str) -> Option<&'static str> {
    match processor {
        "AMD64" => Some("64-bit"),
        "ARM64" => Some("ARM 64-bit"),
        "x86" => Some("32-bit"),
        _ => None,
    }
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let cv = registry::query_key(reg, CURRENT_VERSION, false).unwrap_or_default();
    let mut r = RowBuilder::new(COLUMNS);
    let (mut major, mut minor, mut build) = (String::new(), String::new(), String::new());

    let os = ctx
        .machine
        .wmi
        .query("ROOT\\CIMV2", QUERY)
        .unwrap_or_default();
    if let Some(os) = os.first() {
        let caption = wmi::string_or_empty(os, "Caption");
        r.set("name", caption.as_str()).set("codename", caption);
        r.set_opt(
            "install_date",
            wmi::cim_datetime_to_unix(&wmi::string_or_empty(os, "InstallDate")),
        );
        let parts = osquery_split(&wmi::string_or_empty(os, "Version"), &['.']);
        if (1..=3).contains(&parts.len()) {
            major = parts[0].clone();
            if let Some(m) = parts.get(1) {
                minor = m.clone();
            }
            if let Some(b) = parts.get(2) {
                build = b.clone();
            }
        }
        r.set("arch", wmi::string_or_empty(os, "OSArchitecture"));
    } else {
        // osquery's fallback: the registry.
        if let Some(name) = registry::value(&cv, "ProductName") {
            r.set("name", name).set("codename", name);
        }
        r.set_opt("install_date", registry::value(&cv, "InstallDate"));
        match (
            registry::value(&cv, "CurrentMajorVersionNumber"),
            registry::value(&cv, "CurrentMinorVersionNumber"),
        ) {
            (Some(a), Some(b)) => (major, minor) = (a.to_string(), b.to_string()),
            _ => {
                if let Some(v) = registry::value(&cv, "CurrentVersion") {
                    let (a, b) = v.split_once('.').unwrap_or((v, v));
                    (major, minor) = (a.to_string(), b.to_string());
                }
            }
        }
        build = registry::value(&cv, "CurrentBuildNumber")
            .unwrap_or("")
            .to_string();
        let env = registry::query_key(reg, ENVIRONMENT, false).unwrap_or_default();
        r.set_opt(
            "arch",
            registry::value(&env, "PROCESSOR_ARCHITECTURE").and_then(arch_name),
        );
    }
    if !major.is_empty() {
        r.set("major", major.as_str());
    }
    if !minor.is_empty() {
        r.set("minor", minor.as_str());
    }
    if !build.is_empty() {
        r.set("build", build.as_str());
    }
    r.set("platform", "windows")
        .set("platform_like", "windows")
        .set("version", format!("{major}.{minor}.{build}"))
        .set_opt("revision", registry::value(&cv, "UBR"));
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    fn query(rel: &str) -> crate::sql::QueryResult {
        let engine = crate::sql::Engine::new(fixture(rel)).unwrap();
        engine
            .query(
                "SELECT name, version, major, minor, patch, build, platform, platform_like, \
                 codename, arch, install_date, revision FROM os_version",
            )
            .unwrap()
    }

    #[test]
    fn reads_a_recorded_windows_11() {
        let res = query("os_version/windows");
        assert_eq!(res.rows.len(), 1);
        let get = |c: &str| res.get(0, c).cloned().unwrap();
        assert_eq!(get("name"), text("Microsoft Windows 11 Pro"));
        assert_eq!(get("codename"), text("Microsoft Windows 11 Pro"));
        assert_eq!(get("version"), text("10.0.22631"));
        assert_eq!(get("major"), Value::Integer(10));
        assert_eq!(get("minor"), Value::Integer(0));
        assert_eq!(get("patch"), Value::Null);
        assert_eq!(get("build"), text("22631"));
        assert_eq!(get("platform"), text("windows"));
        assert_eq!(get("platform_like"), text("windows"));
        assert_eq!(get("arch"), text("64-bit"));
        // 2023-06-12 09:35:12 at UTC+2.
        assert_eq!(get("install_date"), Value::Integer(1_686_555_312));
        assert_eq!(get("revision"), Value::Integer(3007));
    }

    #[cfg(windows)]
    #[test]
    fn reads_this_windows_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine
            .query("SELECT name, platform, major FROM os_version")
            .unwrap();
        assert_eq!(res.get(0, "platform"), Some(&text("windows")));
        assert!(
            matches!(res.get(0, "name"), Some(Value::Text(n)) if n.starts_with("Microsoft Windows"))
        );
        assert!(matches!(res.get(0, "major"), Some(Value::Integer(n)) if *n >= 6));
    }

    #[test]
    fn falls_back_to_the_registry() {
        // The same machine with WMI not answering.
        let res = query("os_version/windows-registry");
        let get = |c: &str| res.get(0, c).cloned().unwrap();
        // The registry's ProductName still says Windows 10 on Windows 11.
        assert_eq!(get("name"), text("Windows 10 Pro"));
        assert_eq!(get("version"), text("10.0.22631"));
        assert_eq!(get("install_date"), Value::Integer(1_686_555_312));
        assert_eq!(get("arch"), text("64-bit"));
        assert_eq!(get("revision"), Value::Integer(3007));
    }
}
