//! `windows_security_center`: the health Windows Security Center reports for
//! each security area (osquery's `windows_security_center`), one row of
//! `Good`, `Poor`, `Snoozed`, `Not Monitored` or `Error`.
//!
//! osquery asks `WscGetSecurityProviderHealth`, an API with no WMI or
//! registry form. Tend derives each health from the settings Security
//! Center itself evaluates, read through the registry and WMI seams:
//!
//! - `firewall`: `Good` if a registered third-party firewall
//!   (`ROOT\SecurityCenter2` `FirewallProduct`) is on, or if Windows
//!   Defender Firewall is on for all three profiles (Domain, Private =
//!   `StandardProfile`, Public), each profile's `EnableFirewall` taken from
//!   Group Policy (`HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall\
//!   {Domain,Private,Public}Profile`) where set, else from
//!   `HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\
//!   FirewallPolicy\*Profile`; `Snoozed` if the only firewall product on is
//!   snoozed; otherwise `Poor` (Security Center flags a single disabled
//!   profile, as osquery's own notes on this table show).
//! - `antivirus`: from `AntiVirusProduct`: `Good` if one is on with current
//!   signatures, `Snoozed` if one is snoozed, otherwise `Poor` (none on, or
//!   signatures out of date); `Error` if Security Center is not there (no
//!   `ROOT\SecurityCenter2`, as on Windows Server, where osquery's call fails).
//! - `autoupdate`: `Poor` if policy turns automatic updates off
//!   (`HKLM\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU`
//!   `NoAutoUpdate` = 1), else `Good`; then, as osquery adds, `Poor` if the
//!   `wuauserv` or `UsoSvc` service is disabled (registry `Start` = 4).
//! - `user_account_control`: `Poor` when UAC is off or set never to notify
//!   (`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`
//!   `EnableLUA` = 0, or `ConsentPromptBehaviorAdmin` = 0), else `Good`.
//! - `windows_security_center_service`: `Good` when the `wscsvc` service
//!   runs (WMI `Win32_Service`), else `Poor`.
//! - `antispyware`: `Good`, which is all Security Center answers on current
//!   Windows (the spec calls the column deprecated).
//! - `internet_settings`: NULL. Security Center grades the Internet Options
//!   security zones against their defaults, a computation Tend does not
//!   reproduce; rather than guess, the column is left empty.
//!
//! These are derivations, not the API's answer: a machine where Security
//! Center itself is misreporting, or a product registered through private
//! interfaces, can differ from osquery.

use super::registry;
use super::windows_security_products::{self as wsp, decode_product_state};
use super::wmi;
use crate::os::windows::Registry;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "windows_security_center",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("firewall"),
    col::text("autoupdate"),
    col::text("antivirus"),
    col::text("antispyware").hidden(),
    col::text("internet_settings"),
    col::text("windows_security_center_service"),
    col::text("user_account_control"),
];

const FIREWALL_POLICY: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
const FIREWALL_GPO: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall";
/// (local profile key, Group Policy profile key).
const PROFILES: [(&str, &str); 3] = [
    ("DomainProfile", "DomainProfile"),
    ("StandardProfile", "PrivateProfile"),
    ("PublicProfile", "PublicProfile"),
];
const AU_POLICY: &str =
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU";
const UAC_POLICY: &str =
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System";
const SERVICES: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services";

/// A DWORD value of a key, `None` when the key or value is missing.
pub fn dword(reg: &dyn Registry, key: &str, name: &str) -> Option<i64> {
    let rows = registry::query_key(reg, key, false).ok()?;
    registry::value(&rows, name)?.parse().ok()
}

/// The health a set of registered products gives (`None`: no product on).
fn products_health(products: &[wmi::WmiRow], need_signatures: bool) -> Option<&'static str> {
    let states: Vec<_> = products
        .iter()
        .filter_map(|p| wmi::get_u64(p, "productState"))
        .map(decode_product_state)
        .collect();
    if states
        .iter()
        .any(|s| s.state == "On" && (s.signatures_up_to_date || !need_signatures))
    {
        Some("Good")
    } else if states.iter().any(|s| s.state == "Snoozed") {
        Some("Snoozed")
    } else {
        None
    }
}

/// Whether Windows Defender Firewall is on for every profile.
fn defender_firewall_on(reg: &dyn Registry) -> bool {
    PROFILES.iter().all(|(local, gpo)| {
        let policy = dword(reg, &format!("{FIREWALL_GPO}\\{gpo}"), "EnableFirewall");
        let value = policy.or_else(|| {
            dword(
                reg,
                &format!("{FIREWALL_POLICY}\\{local}"),
                "EnableFirewall",
            )
        });
        value == Some(1)
    })
}

fn firewall(ctx: &ScanContext<'_>) -> &'static str {
    let products = wsp::products(ctx, "SELECT * FROM FirewallProduct");
    match products_health(&products, false) {
        Some("Good") => "Good",
        _ if defender_firewall_on(ctx.machine.registry.as_ref()) => "Good",
        Some(other) => other,
        None => "Poor",
    }
}

fn antivirus(ctx: &ScanContext<'_>) -> &'static str {
    match ctx
        .machine
        .wmi
        .query(wsp::NAMESPACE, "SELECT * FROM AntiVirusProduct")
    {
        Err(_) => "Error",
        Ok(products) => products_health(&products, true).unwrap_or("Poor"),
    }
}

fn service_disabled(reg: &dyn Registry, name: &str) -> bool {
    dword(reg, &format!("{SERVICES}\\{name}"), "Start") == Some(4)
}

fn autoupdate(reg: &dyn Registry) -> &'static str {
    if dword(reg, AU_POLICY, "NoAutoUpdate") == Some(1) {
        return "Poor";
    }
    if service_disabled(reg, "wuauserv") || service_disabled(reg, "UsoSvc") {
        return "Poor";
    }
    "Good"
}

fn user_account_control(reg: &dyn Registry) -> &'static str {
    if dword(reg, UAC_POLICY, "EnableLUA") == Some(0)
        || dword(reg, UAC_POLICY, "ConsentPromptBehaviorAdmin") == Some(0)
    {
        "Poor"
    } else {
        "Good"
    }
}

fn security_center_service(ctx: &ScanContext<'_>) -> &'static str {
    let rows = ctx
        .machine
        .wmi
        .query("ROOT\\CIMV2", "SELECT * FROM Win32_Service")
        .unwrap_or_default();
    let running = rows.iter().any(|s| {
        wmi::get_string(s, "Name").is_some_and(|n| n.eq_ignore_ascii_case("wscsvc"))
            && wmi::get_string(s, "State").as_deref() == Some("Running")
    });
    if running { "Good" } else { "Poor" }
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let mut r = RowBuilder::new(COLUMNS);
    r.set("firewall", firewall(ctx))
        .set("autoupdate", autoupdate(reg))
        .set("antivirus", antivirus(ctx))
        .set("antispyware", "Good")
        .set(
            "windows_security_center_service",
            security_center_service(ctx),
        )
        .set("user_account_control", user_account_control(reg));
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    fn row(fixture: &str) -> Vec<(String, Option<String>)> {
        let dir = format!("{}/../tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(&dir)).unwrap()).unwrap();
        let res = engine
            .query(
                "SELECT firewall, autoupdate, antivirus, antispyware, internet_settings, \
                 windows_security_center_service, user_account_control FROM windows_security_center",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        res.columns
            .iter()
            .map(|c| {
                let v = match res.get(0, c) {
                    Some(Value::Text(s)) => Some(s.clone()),
                    Some(Value::Null) => None,
                    other => panic!("{c}: {other:?}"),
                };
                (c.clone(), v)
            })
            .collect()
    }

    fn pairs(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.map(String::from)))
            .collect()
    }

    #[test]
    fn a_healthy_machine_is_good() {
        assert_eq!(
            row("tables/windows_security_center"),
            pairs(&[
                ("firewall", Some("Good")),
                ("autoupdate", Some("Good")),
                ("antivirus", Some("Good")),
                ("antispyware", Some("Good")),
                ("internet_settings", None),
                ("windows_security_center_service", Some("Good")),
                ("user_account_control", Some("Good")),
            ])
        );
    }

    #[test]
    fn an_unhealthy_machine_is_poor() {
        // Public profile off, updates off by policy, Defender's signatures
        // old, UAC never notifies, the Security Center service stopped.
        assert_eq!(
            row("tables/windows_security_center/poor"),
            pairs(&[
                ("firewall", Some("Poor")),
                ("autoupdate", Some("Poor")),
                ("antivirus", Some("Poor")),
                ("antispyware", Some("Good")),
                ("internet_settings", None),
                ("windows_security_center_service", Some("Poor")),
                ("user_account_control", Some("Poor")),
            ])
        );
    }
}
