//! `sip_config`: System Integrity Protection's configuration (osquery's
//! `sip_config`).
//!
//! osquery asks the kernel for the running configuration
//! (`csr_get_active_config`, `csr_check`) and reads the `csr-active-config`
//! NVRAM property for the stored one. Tend has neither call, so:
//!
//! - The running configuration comes from `csrutil status`: `enabled.` is
//!   configuration 0. A custom configuration lists each protection as
//!   `enabled`/`disabled`; a disabled one sets its `CSR_ALLOW_*` bit (Kext
//!   Signing → untrusted kexts, Filesystem Protections → unrestricted fs,
//!   Debugging Restrictions → task_for_pid, Apple Internal, DTrace
//!   Restrictions, NVRAM Protections, BaseSystem Verification → any
//!   recovery OS, Authenticated Root Requirement → unauthenticated root). The
//!   two bits csrutil does not show (kernel debugger, device configuration)
//!   and a plain `disabled.` are taken from the NVRAM value, which on Intel
//!   Macs is the configuration the machine booted with; a `disabled.` with
//!   no NVRAM value is `csrutil disable`'s 0x7f. When csrutil cannot be run
//!   the NVRAM value stands for the running configuration.
//! - `enabled_nvram` is from `nvram csr-active-config` (its value printed
//!   with `%xx` escapes, read as a little-endian 32-bit number). A missing
//!   property is configuration 0, as osquery treats it; when nvram cannot be
//!   run at all, every flag's `enabled_nvram` is -1.
//!
//! The rows are osquery's: first `sip`, 1/1 when the configuration is 0,
//! 0/0 when only the eight flags below are allowed, and NULL otherwise (osquery
//! leaves them unset); then one row per flag in osquery's (alphabetical)
//! order, `enabled` 1 when the running configuration allows it.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "sip_config",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("config_flag"),
    col::integer("enabled"),
    col::integer("enabled_nvram"),
];

/// osquery's flags and their `CSR_ALLOW_*` bits, in osquery's order.
const FLAGS: &[(&str, u32)] = &[
    ("allow_apple_internal", 1 << 4),
    ("allow_device_configuration", 1 << 7),
    ("allow_kernel_debugger", 1 << 3),
    ("allow_task_for_pid", 1 << 2),
    ("allow_unrestricted_dtrace", 1 << 5),
    ("allow_unrestricted_fs", 1 << 1),
    ("allow_unrestricted_nvram", 1 << 6),
    ("allow_untrusted_kexts", 1 << 0),
];

/// The protections `csrutil status` lists for a custom configuration, and
/// the bit each one sets when disabled.
const CSRUTIL_NAMES: &[(&str, u32)] = &[
    ("Apple Internal", 1 << 4),
    ("Kext Signing", 1 << 0),
    ("Filesystem Protections", 1 << 1),
    ("Debugging Restrictions", 1 << 2),
    ("DTrace Restrictions", 1 << 5),
    ("NVRAM Protections", 1 << 6),
    ("BaseSystem Verification", 1 << 8),
    ("Authenticated Root Requirement", 1 << 11),
];

/// The bits csrutil does not show, taken from NVRAM for a custom configuration.
const NOT_SHOWN: u32 = (1 << 3) | (1 << 7);

/// What `csrutil disable` stores.
const CSRUTIL_DISABLE: u32 = 0x7f;

/// What `csrutil status` says.
#[derive(Debug, PartialEq)]
pub enum CsrStatus {
    Enabled,
    Disabled,
    /// A custom configuration: the bits of the protections listed as disabled.
    Custom(u32),
}

/// Parses `csrutil status`.
pub fn parse_csrutil(text: &str) -> Option<CsrStatus> {
    let line = text
        .lines()
        .find(|l| l.starts_with("System Integrity Protection status:"))?;
    let state = line["System Integrity Protection status:".len()..].trim();
    if state.starts_with("enabled") && !text.contains("Configuration:") {
        return Some(CsrStatus::Enabled);
    }
    if state.starts_with("disabled") && !text.contains("Configuration:") {
        return Some(CsrStatus::Disabled);
    }
    let mut bits = 0;
    for l in text.lines() {
        let Some((name, value)) = l.trim().split_once(':') else {
            continue;
        };
        if let Some((_, bit)) = CSRUTIL_NAMES.iter().find(|(n, _)| *n == name.trim())
            && value.trim().starts_with("disabled")
        {
            bits |= bit;
        }
    }
    Some(CsrStatus::Custom(bits))
}

/// The value `nvram <name>` prints: `name<TAB>value`, bytes outside
/// printable ASCII (and `%`) as `%xx`.
pub fn nvram_bytes(text: &str) -> Option<Vec<u8>> {
    let line = text.lines().next()?;
    let (_, value) = line.split_once('\t')?;
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = value.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Up to four bytes as a little-endian number (osquery copies them into a `uint32_t`).
fn le_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u32::from_le_bytes(buf)
}

/// The stored configuration: `Some(config)`, 0 when the property is not
/// set, `None` when nvram cannot be run.
fn nvram_config(ctx: &ScanContext<'_>) -> Option<u32> {
    let out = darwin::run(ctx, "/usr/sbin/nvram", &["csr-active-config"])?;
    if out.status != 0 {
        return Some(0);
    }
    Some(nvram_bytes(&out.stdout).map_or(0, |b| le_u32(&b)))
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let nvram = nvram_config(ctx);
    let status = darwin::run(ctx, "/usr/bin/csrutil", &["status"])
        .and_then(|o| parse_csrutil(&format!("{}{}", o.stdout, o.stderr)));
    let active = match status {
        Some(CsrStatus::Enabled) => 0,
        Some(CsrStatus::Disabled) => match nvram {
            Some(c) if c != 0 => c,
            _ => CSRUTIL_DISABLE,
        },
        Some(CsrStatus::Custom(bits)) => bits | (nvram.unwrap_or(0) & NOT_SHOWN),
        None => match nvram {
            Some(c) => c,
            None => return Ok(Vec::new()),
        },
    };
    Ok(rows(active, nvram))
}

/// osquery's rows for a running and a stored configuration.
pub fn rows(active: u32, nvram: Option<u32>) -> Vec<Row> {
    let valid: u32 = FLAGS.iter().map(|(_, b)| b).fold(0, |a, b| a | b);
    let mut out = Vec::new();
    let mut r = RowBuilder::new(COLUMNS);
    r.set("config_flag", "sip");
    if active == 0 {
        r.set("enabled", 1).set("enabled_nvram", 1);
    } else if active | valid == valid {
        r.set("enabled", 0).set("enabled_nvram", 0);
    }
    out.push(r.build());
    for (name, bit) in FLAGS {
        let mut r = RowBuilder::new(COLUMNS);
        r.set("config_flag", *name)
            .set("enabled", i64::from(active & bit != 0))
            .set(
                "enabled_nvram",
                nvram.map_or(-1, |c| i64::from(c & bit != 0)),
            );
        out.push(r.build());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn csrutil_outputs() {
        assert_eq!(
            parse_csrutil("System Integrity Protection status: enabled.\n"),
            Some(CsrStatus::Enabled)
        );
        assert_eq!(
            parse_csrutil("System Integrity Protection status: disabled.\n"),
            Some(CsrStatus::Disabled)
        );
        let custom = "System Integrity Protection status: unknown (Custom Configuration).\n\nConfiguration:\n\tApple Internal: disabled\n\tKext Signing: disabled\n\tFilesystem Protections: enabled\n\tDebugging Restrictions: enabled\n\tDTrace Restrictions: disabled\n\tNVRAM Protections: enabled\n\tBaseSystem Verification: enabled\n\tBoot-arg Restrictions: enabled\n\tKernel Integrity Protections: enabled\n\tAuthenticated Root Requirement: enabled\n\nThis is an unsupported configuration, likely to break in the future and leave your machine in an unknown state.\n";
        assert_eq!(
            parse_csrutil(custom),
            Some(CsrStatus::Custom((1 << 4) | 1 | (1 << 5)))
        );
        assert_eq!(parse_csrutil("csrutil: command not found"), None);
    }

    #[test]
    fn nvram_values() {
        let b = nvram_bytes("csr-active-config\t%7f%00%00%00\n").unwrap();
        assert_eq!(le_u32(&b), 0x7f);
        let b = nvram_bytes("csr-active-config\tw%08%00%00\n").unwrap();
        assert_eq!(le_u32(&b), 0x877);
    }

    #[test]
    fn enabled_sip() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM sip_config").unwrap();
        assert_eq!(r.rows.len(), 9);
        assert_eq!(
            r.rows[0],
            vec![
                Value::Text("sip".into()),
                Value::Integer(1),
                Value::Integer(1)
            ]
        );
        assert!(
            r.rows[1..]
                .iter()
                .all(|row| row[1] == Value::Integer(0) && row[2] == Value::Integer(0))
        );
    }

    #[test]
    fn disabled_sip_reads_nvram() {
        let engine = Engine::new(fixture("sip_config")).unwrap();
        let r = engine
            .query("SELECT config_flag, enabled, enabled_nvram FROM sip_config WHERE config_flag IN ('sip', 'allow_untrusted_kexts', 'allow_device_configuration')")
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    Value::Text("sip".into()),
                    Value::Integer(0),
                    Value::Integer(0)
                ],
                vec![
                    Value::Text("allow_device_configuration".into()),
                    Value::Integer(0),
                    Value::Integer(0)
                ],
                vec![
                    Value::Text("allow_untrusted_kexts".into()),
                    Value::Integer(1),
                    Value::Integer(1)
                ],
            ]
        );
    }
}
