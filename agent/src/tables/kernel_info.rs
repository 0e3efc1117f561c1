//! `kernel_info`: the running kernel's version and boot arguments (osquery's `kernel_info`).
//!
//! From `/proc/cmdline` as osquery splits it: `BOOT_IMAGE=` is `path`,
//! `root=` is `device`, and the other arguments, space-joined, are
//! `arguments`. `version` is the third word of `/proc/version` (the `uname`
//! release), or `uname`'s release where that file cannot be read.

use std::path::Path;

use super::system_info::osquery_split;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "kernel_info",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("version"),
    col::text("arguments"),
    col::text("path"),
    col::text("device"),
];

const TABLE_NAME: &str = "kernel_info";

/// The kernel command line: (path, device, other arguments).
pub fn parse_cmdline(cmdline: &str) -> (Option<String>, Option<String>, String) {
    let (mut path, mut device) = (None, None);
    let mut rest = Vec::new();
    for arg in osquery_split(cmdline, &[' ']) {
        if let Some(p) = arg.strip_prefix("BOOT_IMAGE=") {
            path = Some(p.to_string());
        } else if let Some(d) = arg.strip_prefix("root=") {
            device = Some(d.to_string());
        } else {
            rest.push(arg);
        }
    }
    (path, device, rest.join(" "))
}

/// The release in `/proc/version` (`Linux version 6.1.0-21-amd64 (...) ...`).
pub fn version_from_signature(signature: &str) -> Option<String> {
    let words = osquery_split(signature, &[' ']);
    (words.len() > 2 && words[1] == "version").then(|| words[2].clone())
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut r = RowBuilder::new(COLUMNS);
    let cmdline = read_optional(fs, Path::new("/proc/cmdline"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /proc/cmdline", e))?;
    if let Some(cmdline) = cmdline {
        let (path, device, arguments) = parse_cmdline(&cmdline);
        r.set_opt("path", path)
            .set_opt("device", device)
            .set("arguments", arguments);
    }
    let signature = read_optional(fs, Path::new("/proc/version"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /proc/version", e))?;
    let version = signature
        .and_then(|s| version_from_signature(&s))
        .or_else(|| ctx.machine.host.uname().ok().map(|u| u.release));
    r.set_opt("version", version);
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn splits_the_command_line() {
        let (path, device, args) =
            parse_cmdline("BOOT_IMAGE=/vmlinuz-6.1.0-21-amd64 root=UUID=0b1c  ro quiet\n");
        assert_eq!(path.as_deref(), Some("/vmlinuz-6.1.0-21-amd64"));
        assert_eq!(device.as_deref(), Some("UUID=0b1c"));
        assert_eq!(args, "ro quiet");
    }

    #[test]
    fn reads_a_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("kernel_info")).unwrap();
        let res = engine.query("SELECT * FROM kernel_info").unwrap();
        assert_eq!(res.rows.len(), 1);
        let text = |c: &str| res.get(0, c).cloned();
        assert_eq!(text("version"), Some(Value::Text("6.1.0-21-amd64".into())));
        assert_eq!(
            text("path"),
            Some(Value::Text("/boot/vmlinuz-6.1.0-21-amd64".into()))
        );
        assert_eq!(
            text("device"),
            Some(Value::Text(
                "UUID=3a7f5d2e-8c41-4b7e-9f0a-6d2c1e5b8a90".into()
            ))
        );
        assert_eq!(
            text("arguments"),
            Some(Value::Text("ro quiet splash".into()))
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine.query("SELECT version FROM kernel_info").unwrap();
        assert_eq!(res.rows.len(), 1);
        assert!(matches!(res.get(0, "version"), Some(Value::Text(v)) if !v.is_empty()));
    }
}
