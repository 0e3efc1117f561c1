//! `extended_attributes`: a file's extended attributes (osquery's
//! `extended_attributes`, as its Linux implementation reports them).
//!
//! Files are named by `path` (`=` or `LIKE`) or `directory` (its entries);
//! the attributes come from `listxattr`/`getxattr` through the machine's
//! [`Host::xattrs`](crate::os::Host::xattrs). One row per attribute:
//!
//! - A value that ends in a NUL and is printable before it is text, without
//!   the NUL (`base64` 0). Anything else, and an empty value, is base64
//!   (`base64` 1) — osquery's rule.
//! - `security.capability` is decoded as libcap's `cap_to_text` prints it
//!   (`cap_net_raw=ep`), first, with `base64` 0, as osquery does through
//!   `cap_get_file`; a value that does not decode is reported raw instead.
//!
//! `directory` is the file's parent. A missing file has no rows. osquery's
//! Linux table reads only `path`; Tend also lists `directory = ...`.

use std::path::Path;

use base64::Engine as _;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::{self, constrained_paths};

pub static TABLE: TableDef = TableDef {
    name: "extended_attributes",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").required().optimized(),
    col::text("directory").required().optimized(),
    col::text("key"),
    col::text("value"),
    col::integer("base64"),
];

const CAPABILITY: &str = "security.capability";

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for path in constrained_paths(ctx, constraints, "path", Some("directory"))? {
        ctx.check_deadline()?;
        // Missing files, and filesystems without xattrs, have no rows (osquery logs and goes on).
        let Ok(attrs) = ctx.machine.host.xattrs(&path) else {
            continue;
        };
        rows.extend(rows_for(&path, &attrs));
    }
    Ok(rows)
}

/// The rows of one file's attributes.
pub fn rows_for(path: &Path, attrs: &[(String, Vec<u8>)]) -> Vec<Row> {
    let text = path.to_string_lossy().into_owned();
    let directory =
        paths::parent(path).map_or_else(String::new, |p| p.to_string_lossy().into_owned());
    let mut r = RowBuilder::new(COLUMNS);
    let mut out = Vec::new();
    let mut push = |r: &mut RowBuilder, key: &str, value: String, b64: bool| {
        r.set("path", text.as_str())
            .set("directory", directory.as_str())
            .set("key", key)
            .set("value", value)
            .set("base64", i64::from(b64));
        out.push(r.take());
    };
    let decoded_caps = attrs
        .iter()
        .find(|(k, _)| k == CAPABILITY)
        .and_then(|(_, v)| caps::to_text(v));
    if let Some(text) = &decoded_caps {
        push(&mut r, CAPABILITY, text.clone(), false);
    }
    for (key, value) in attrs {
        if key == CAPABILITY && decoded_caps.is_some() {
            continue;
        }
        let (value, b64) = encode_value(value);
        push(&mut r, key, value, b64);
    }
    out
}

/// osquery's rule: printable text ending in one NUL is shown as text; an
/// empty value or anything else is base64. Returns the value and whether it
/// is base64.
pub fn encode_value(value: &[u8]) -> (String, bool) {
    let b64 = || base64::engine::general_purpose::STANDARD.encode(value);
    match value.split_last() {
        None => (String::new(), true),
        Some((0, text)) if text.iter().all(|&c| (0x20..0x7f).contains(&c)) => {
            (String::from_utf8_lossy(text).into_owned(), false)
        }
        Some(_) => (b64(), true),
    }
}

/// `security.capability` (`struct vfs_cap_data`) to libcap's text form.
mod caps {
    /// libcap 2.66's names, by capability number.
    const NAMES: [&str; 41] = [
        "chown",
        "dac_override",
        "dac_read_search",
        "fowner",
        "fsetid",
        "kill",
        "setgid",
        "setuid",
        "setpcap",
        "linux_immutable",
        "net_bind_service",
        "net_broadcast",
        "net_admin",
        "net_raw",
        "ipc_lock",
        "ipc_owner",
        "sys_module",
        "sys_rawio",
        "sys_chroot",
        "sys_ptrace",
        "sys_pacct",
        "sys_admin",
        "sys_boot",
        "sys_nice",
        "sys_resource",
        "sys_time",
        "sys_tty_config",
        "mknod",
        "lease",
        "audit_write",
        "audit_control",
        "setfcap",
        "mac_override",
        "mac_admin",
        "syslog",
        "wake_alarm",
        "block_suspend",
        "audit_read",
        "perfmon",
        "bpf",
        "checkpoint_restore",
    ];
    /// `cap_max_bits()` on a current kernel (`/proc/sys/kernel/cap_last_cap` + 1).
    const MAX_BITS: usize = NAMES.len();
    const ALL_BITS: usize = 64;
    const EFF: u8 = 1;
    const INH: u8 = 2;
    const PER: u8 = 4;

    fn name(n: usize) -> String {
        NAMES
            .get(n)
            .map_or_else(|| n.to_string(), |s| format!("cap_{s}"))
    }

    fn flags(f: u8) -> String {
        let mut s = String::new();
        for (bit, c) in [(EFF, 'e'), (INH, 'i'), (PER, 'p')] {
            if f & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// Decodes the attribute as libcap's `cap_get_file` does and prints it as
    /// `cap_to_text` does; `None` when it is not a valid `vfs_cap_data`.
    pub fn to_text(raw: &[u8]) -> Option<String> {
        let word = |i: usize| -> Option<u64> {
            let b = raw.get(i * 4..i * 4 + 4)?;
            Some(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        };
        let magic = word(0)? as u32;
        let words = match (magic & 0xff00_0000, raw.len()) {
            (0x0100_0000, 12) => 1,
            (0x0200_0000, 20) | (0x0300_0000, 24) => 2,
            _ => return None,
        };
        let (mut permitted, mut inheritable) = (0u64, 0u64);
        for i in 0..words {
            permitted |= word(1 + 2 * i)? << (32 * i);
            inheritable |= word(2 + 2 * i)? << (32 * i);
        }
        let effective = if magic & 1 != 0 {
            permitted | inheritable
        } else {
            0
        };
        let state = |n: usize| -> u8 {
            let bit = |set: u64| (set >> n) & 1 == 1;
            (if bit(effective) { EFF } else { 0 })
                | (if bit(permitted) { PER } else { 0 })
                | (if bit(inheritable) { INH } else { 0 })
        };
        Some(render(state))
    }

    /// libcap's `cap_to_text` over a per-capability state (`EFF|INH|PER`).
    fn render(state: impl Fn(usize) -> u8) -> String {
        let mut histo = [0usize; 8];
        for n in 0..MAX_BITS {
            histo[state(n) as usize] += 1;
        }
        // The most common state is the base; ties go to the lower state.
        let mut m = 7usize;
        for t in (0..7).rev() {
            if histo[t] >= histo[m] {
                m = t;
            }
        }
        let mut buf = format!("={}", flags(m as u8));
        let mut base = 0usize;
        for t in (0..8).rev() {
            if t == m || histo[t] == 0 {
                continue;
            }
            buf.push(' ');
            let names: Vec<String> = (0..MAX_BITS)
                .filter(|&n| state(n) as usize == t)
                .map(name)
                .collect();
            buf.push_str(&names.join(","));
            let raised = (t & !m) as u8;
            if raised != 0 {
                let mut op = '+';
                if buf[base..].starts_with("= ") {
                    // "= foo+eip" is written "foo=eip".
                    base += 2;
                    op = '=';
                }
                buf.push(op);
                buf.push_str(&flags(raised));
            }
            let lowered = (!t & m) as u8;
            if lowered != 0 {
                buf.push('-');
                buf.push_str(&flags(lowered));
            }
        }
        // Bits the running kernel does not name are only ever raised.
        let mut histo = [0usize; 8];
        for n in MAX_BITS..ALL_BITS {
            histo[state(n) as usize] += 1;
        }
        for t in (1..8).rev() {
            if histo[t] == 0 {
                continue;
            }
            buf.push(' ');
            let names: Vec<String> = (MAX_BITS..ALL_BITS)
                .filter(|&n| state(n) as usize == t)
                .map(name)
                .collect();
            buf.push_str(&names.join(","));
            buf.push('+');
            buf.push_str(&flags(t as u8));
        }
        buf[base..].to_string()
    }

    #[cfg(test)]
    mod tests {
        use super::to_text;

        fn v2(effective: bool, permitted: u64, inheritable: u64) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend((0x0200_0000u32 | u32::from(effective)).to_le_bytes());
            out.extend((permitted as u32).to_le_bytes());
            out.extend((inheritable as u32).to_le_bytes());
            out.extend(((permitted >> 32) as u32).to_le_bytes());
            out.extend(((inheritable >> 32) as u32).to_le_bytes());
            out
        }

        #[test]
        fn prints_like_getcap() {
            // ping: cap_net_raw=ep
            assert_eq!(
                to_text(&v2(true, 1 << 13, 0)).as_deref(),
                Some("cap_net_raw=ep")
            );
            // Two capabilities, permitted only.
            assert_eq!(
                to_text(&v2(false, (1 << 10) | (1 << 13), 0)).as_deref(),
                Some("cap_net_bind_service,cap_net_raw=p")
            );
            // Two groups: the higher state first, the next one with `+`.
            assert_eq!(
                to_text(&v2(true, (1 << 12) | (1 << 13), 1 << 12)).as_deref(),
                Some("cap_net_admin=eip cap_net_raw+ep")
            );
            // Everything: the base itself.
            assert_eq!(to_text(&v2(true, (1 << 41) - 1, 0)).as_deref(), Some("=ep"));
            // Everything but one.
            assert_eq!(
                to_text(&v2(true, ((1 << 41) - 1) & !(1 << 13), 0)).as_deref(),
                Some("=ep cap_net_raw-ep")
            );
        }

        #[test]
        fn rejects_what_libcap_rejects() {
            assert_eq!(to_text(&[1, 2, 3]), None);
            let mut bad = v2(true, 1, 0);
            bad.push(0);
            assert_eq!(to_text(&bad), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn printable_rule() {
        assert_eq!(encode_value(b"text\0"), ("text".into(), false));
        assert_eq!(encode_value(b"text"), ("dGV4dA==".into(), true));
        assert_eq!(encode_value(b""), ("".into(), true));
        assert_eq!(encode_value(b"a\nb\0"), ("YQpiAA==".into(), true));
    }

    #[test]
    fn rows_from_a_recording() {
        let engine = Engine::new(fixture("extended_attributes")).unwrap();
        let r = engine
            .query(
                "SELECT key, value, base64 FROM extended_attributes WHERE path = '/usr/bin/ping'",
            )
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![
                t("security.capability"),
                t("cap_net_raw=ep"),
                Value::Integer(0)
            ]]
        );
        let r = engine
            .query(
                "SELECT path, directory, key, value, base64 FROM extended_attributes \
                 WHERE directory = '/home/user/Downloads' ORDER BY key",
            )
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    t("/home/user/Downloads/setup.sh"),
                    t("/home/user/Downloads"),
                    t("user.checksum"),
                    t("3q2+7w=="),
                    Value::Integer(1),
                ],
                vec![
                    t("/home/user/Downloads/setup.sh"),
                    t("/home/user/Downloads"),
                    t("user.tend.owner"),
                    t("it-team"),
                    Value::Integer(0),
                ],
                // Browsers write the URL without a NUL: osquery shows it as base64.
                vec![
                    t("/home/user/Downloads/setup.sh"),
                    t("/home/user/Downloads"),
                    t("user.xdg.origin.url"),
                    t("aHR0cHM6Ly9leGFtcGxlLmNvbS9zZXR1cC5zaA=="),
                    Value::Integer(1),
                ],
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tagged");
        std::fs::write(&file, "x").unwrap();
        let c = std::ffi::CString::new(file.to_string_lossy().as_bytes()).unwrap();
        let value = b"tend\0";
        // SAFETY: a NUL-terminated path and name, and a buffer of the length given.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"user.tend.test".as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            // The filesystem has no user xattrs (tmpfs on some kernels).
            return;
        }
        let engine = Engine::new(crate::os::Machine::real()).unwrap();
        let r = engine
            .query(&format!(
                "SELECT key, value, base64 FROM extended_attributes WHERE path = '{}'",
                file.display()
            ))
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![t("user.tend.test"), t("tend"), Value::Integer(0)]]
        );
    }

    #[test]
    fn missing_files_have_no_rows() {
        let engine = Engine::new(fixture("extended_attributes")).unwrap();
        let r = engine
            .query("SELECT * FROM extended_attributes WHERE path = '/nope'")
            .unwrap();
        assert!(r.rows.is_empty());
    }
}
