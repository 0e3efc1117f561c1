//! `system_info` on macOS.
//!
//! osquery asks the Mach host (`host_info`), IOKit's device tree root and
//! SystemConfiguration. Tend reads the same values through commands:
//!
//! - `sysctl kern.hostname hw.cputype hw.cpusubtype hw.physicalcpu_max
//!   hw.logicalcpu_max hw.memsize machdep.cpu.brand_string`: `hostname`
//!   (`gethostname`; resolved to a canonical name through `/etc/hosts` as on
//!   Linux, where osquery asks the resolver), `cpu_physical_cores` and
//!   `cpu_logical_cores` (`host_info`'s `physical_cpu_max` and
//!   `logical_cpu_max`), `physical_memory` (`max_mem`), `cpu_brand`. The CPU
//!   type and subtype are named as osquery's `slot_name` names them
//!   (`arm64e`/`ARM64E`, `x86_64h`/`Intel x86-64h Haswell`).
//! - `ioreg -a -r -d 1 -c IOPlatformExpertDevice` (the device tree's root,
//!   as a property list): `uuid` (`IOPlatformUUID`, osquery's host UUID),
//!   `hardware_model` (`model`), `hardware_vendor` (`manufacturer`),
//!   `hardware_version` (`version`) and `hardware_serial`
//!   (`IOPlatformSerialNumber`), data values up to their NUL and trimmed.
//! - `scutil --get ComputerName` and `scutil --get LocalHostName`:
//!   `computer_name` and `local_hostname` (SystemConfiguration's), the
//!   hostname when unset.
//!
//! `cpu_sockets`, `cpu_microcode` and the `board_*` columns are NULL on
//! macOS, as in osquery.

use std::collections::HashMap;
use std::path::Path;

use crate::sql::table::{Constraints, Row, RowBuilder, ScanContext, TableError};
use crate::tables::darwin;
use crate::tables::system_info::canonical_name;
use crate::tables::util::read_optional;

use super::COLUMNS;

const SYSCTL_NAMES: &[&str] = &[
    "kern.hostname",
    "hw.cputype",
    "hw.cpusubtype",
    "hw.physicalcpu_max",
    "hw.logicalcpu_max",
    "hw.memsize",
    "machdep.cpu.brand_string",
];

/// Parses `sysctl name ...` output (`name: value` lines).
pub fn parse_sysctl(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// osquery's `slot_name` for a CPU type and subtype: (type name, subtype description).
pub fn cpu_names(cputype: i64, subtype: i64) -> Option<(&'static str, &'static str)> {
    const ARM64: i64 = 0x0100_000C;
    const X86: i64 = 7;
    const X86_64: i64 = 0x0100_0007;
    // The subtype's capability bits (CPU_SUBTYPE_MASK) are not part of its name.
    let subtype = subtype & 0x00FF_FFFF;
    match (cputype, subtype) {
        (ARM64, 2) => Some(("arm64e", "ARM64E")),
        (ARM64, _) => Some(("arm64", "ARM64")),
        (X86 | X86_64, 8) => Some(("x86_64h", "Intel x86-64h Haswell")),
        (X86 | X86_64, _) => Some(("x86_64", "Intel x86-64")),
        _ => None,
    }
}

/// A device-tree property as osquery's `getIOKitProperty` prints it.
pub fn iokit_text(v: &plist::Value) -> Option<String> {
    let s = match v {
        plist::Value::String(s) => s.clone(),
        plist::Value::Data(d) => {
            let end = d.iter().position(|b| *b == 0).unwrap_or(d.len());
            String::from_utf8_lossy(&d[..end]).into_owned()
        }
        plist::Value::Integer(i) => i.as_signed().map(|n| n.to_string())?,
        plist::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
        _ => return None,
    };
    Some(s.trim().to_string())
}

/// The first line a command prints, when it succeeds.
fn first_line(ctx: &ScanContext<'_>, program: &str, args: &[&str]) -> Option<String> {
    let out = darwin::run(ctx, program, args)?;
    if out.status != 0 {
        return None;
    }
    out.stdout
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

pub(super) fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let sysctl = darwin::run(ctx, "/usr/sbin/sysctl", SYSCTL_NAMES)
        .map(|o| parse_sysctl(&o.stdout))
        .unwrap_or_default();
    let get = |k: &str| sysctl.get(k).cloned();
    let int = |k: &str| sysctl.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut r = RowBuilder::new(COLUMNS);

    let short = get("kern.hostname")
        .or_else(|| ctx.machine.host.uname().ok().map(|u| u.nodename))
        .unwrap_or_default();
    let hosts = read_optional(ctx.machine.fs.as_ref(), Path::new("/etc/hosts"))
        .ok()
        .flatten()
        .unwrap_or_default();
    r.set(
        "hostname",
        canonical_name(&hosts, &short).unwrap_or_else(|| short.clone()),
    );
    let computer = first_line(ctx, "/usr/sbin/scutil", &["--get", "ComputerName"]);
    let local = first_line(ctx, "/usr/sbin/scutil", &["--get", "LocalHostName"]);
    r.set("computer_name", computer.unwrap_or_else(|| short.clone()))
        .set("local_hostname", local.unwrap_or_else(|| short.clone()));

    if let (Some(t), Some(s)) = (int("hw.cputype"), int("hw.cpusubtype")) {
        let (ty, sub) = cpu_names(t, s).unwrap_or(("", ""));
        r.set("cpu_type", ty).set("cpu_subtype", sub);
    }
    r.set_opt("cpu_physical_cores", int("hw.physicalcpu_max"))
        .set_opt("cpu_logical_cores", int("hw.logicalcpu_max"))
        .set_opt("physical_memory", int("hw.memsize"))
        .set(
            "cpu_brand",
            get("machdep.cpu.brand_string").unwrap_or_default(),
        );

    let platform = darwin::run(
        ctx,
        "/usr/sbin/ioreg",
        &["-a", "-r", "-d", "1", "-c", "IOPlatformExpertDevice"],
    )
    .filter(|o| o.status == 0)
    .and_then(|o| darwin::parse_plist(o.stdout.as_bytes()))
    .and_then(|v| v.into_array())
    .and_then(|a| a.into_iter().next())
    .and_then(plist::Value::into_dictionary);
    match platform {
        Some(p) => {
            let prop = |k: &str| p.get(k).and_then(iokit_text).unwrap_or_default();
            r.set("uuid", prop("IOPlatformUUID"))
                .set("hardware_version", prop("version"))
                .set("hardware_vendor", prop("manufacturer"))
                .set("hardware_model", prop("model"))
                .set("hardware_serial", prop("IOPlatformSerialNumber"));
        }
        None => {
            r.set("uuid", "");
        }
    }
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn cpu_names_as_slot_name() {
        assert_eq!(cpu_names(0x0100_000C, 2), Some(("arm64e", "ARM64E")));
        assert_eq!(cpu_names(7, 8), Some(("x86_64h", "Intel x86-64h Haswell")));
        assert_eq!(cpu_names(0x0100_0007, 3), Some(("x86_64", "Intel x86-64")));
        assert_eq!(cpu_names(18, 0), None);
    }

    #[test]
    fn apple_silicon_laptop() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM system_info").unwrap();
        let get = |c: &str| r.get(0, c).cloned().unwrap();
        assert_eq!(get("hostname"), t("Alices-MacBook-Air.local"));
        assert_eq!(get("computer_name"), t("Alice’s MacBook Air"));
        assert_eq!(get("local_hostname"), t("Alices-MacBook-Air"));
        assert_eq!(get("uuid"), t("8F3A2C1E-5B7D-4E9F-A0C2-6D4B8E1F3A57"));
        assert_eq!(get("cpu_type"), t("arm64e"));
        assert_eq!(get("cpu_subtype"), t("ARM64E"));
        assert_eq!(get("cpu_brand"), t("Apple M2"));
        assert_eq!(get("cpu_physical_cores"), Value::Integer(8));
        assert_eq!(get("cpu_logical_cores"), Value::Integer(8));
        assert_eq!(get("physical_memory"), Value::Integer(17_179_869_184));
        assert_eq!(get("hardware_vendor"), t("Apple Inc."));
        assert_eq!(get("hardware_model"), t("Mac14,2"));
        assert_eq!(get("hardware_serial"), t("C02FK1ABQ6L4"));
        assert_eq!(get("hardware_version"), t(""));
        assert_eq!(get("board_model"), Value::Null);
    }

    #[test]
    fn intel_imac() {
        let engine = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = engine
            .query("SELECT cpu_type, cpu_subtype, cpu_physical_cores, cpu_logical_cores, hardware_model, hardware_version FROM system_info")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("x86_64h"),
                t("Intel x86-64h Haswell"),
                Value::Integer(6),
                Value::Integer(6),
                t("iMac19,1"),
                t("1.0"),
            ]]
        );
    }
}
