//! `kernel_modules`: loaded kernel modules, from `/proc/modules` (osquery's `kernel_modules`).
//!
//! Each line is `name size refcount used_by state address [taints]`; as in
//! osquery, `used_by` is the dependents list without its trailing comma (`-`
//! when none), and `address` is `0x0000000000000000` unless read by root.

use std::path::Path;

use super::system_info::osquery_split;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

pub static TABLE: TableDef = TableDef {
    name: "kernel_modules",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::bigint("size"),
    col::text("used_by"),
    col::text("status"),
    col::text("address"),
];

/// One line of /proc/modules: name, size, used_by, status, address.
pub fn parse_line(line: &str) -> Option<[String; 5]> {
    let mut d = osquery_split(line, &[' ']);
    if d.len() < 6 {
        return None;
    }
    for field in &mut d {
        if field.ends_with(',') {
            field.pop();
        }
    }
    Some([
        d[0].clone(),
        d[1].clone(),
        d[3].clone(),
        d[4].clone(),
        d[5].clone(),
    ])
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let Some(text) = read_optional(ctx.machine.fs.as_ref(), Path::new("/proc/modules"))
        .map_err(|e| TableError::io("kernel_modules", "reading /proc/modules", e))?
    else {
        // A kernel without module support has no /proc/modules.
        return Ok(Vec::new());
    };
    Ok(text
        .lines()
        .filter_map(parse_line)
        .map(|[name, size, used_by, status, address]| {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("name", name)
                .set("size", size)
                .set("used_by", used_by)
                .set("status", status)
                .set("address", address);
            r.build()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn parses_module_lines() {
        let [name, size, used_by, status, address] =
            parse_line("nf_tables 344064 1 nft_compat, Live 0xffffffffc0a80000").unwrap();
        assert_eq!(
            [
                name.as_str(),
                size.as_str(),
                used_by.as_str(),
                status.as_str(),
                address.as_str()
            ],
            [
                "nf_tables",
                "344064",
                "nft_compat",
                "Live",
                "0xffffffffc0a80000"
            ]
        );
        assert!(parse_line("short line").is_none());
    }

    #[test]
    fn reads_a_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("kernel_modules")).unwrap();
        let res = engine.query("SELECT * FROM kernel_modules").unwrap();
        assert_eq!(res.rows.len(), 6);
        let kvm = engine
            .query("SELECT * FROM kernel_modules WHERE name = 'kvm'")
            .unwrap();
        assert_eq!(kvm.get(0, "size"), Some(&Value::Integer(1_146_880)));
        assert_eq!(
            kvm.get(0, "used_by"),
            Some(&Value::Text("kvm_intel".into()))
        );
        assert_eq!(kvm.get(0, "status"), Some(&Value::Text("Live".into())));
        assert_eq!(
            kvm.get(0, "address"),
            Some(&Value::Text("0xffffffffc0b1e000".into()))
        );
        let nvidia = engine
            .query("SELECT used_by FROM kernel_modules WHERE name = 'nvidia'")
            .unwrap();
        assert_eq!(
            nvidia.get(0, "used_by"),
            Some(&Value::Text("nvidia_uvm,nvidia_modeset".into()))
        );
        let loop_ = engine
            .query("SELECT used_by FROM kernel_modules WHERE name = 'loop'")
            .unwrap();
        assert_eq!(loop_.get(0, "used_by"), Some(&Value::Text("-".into())));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        // This machine's kernel may have no module support (no /proc/modules).
        engine.query("SELECT name FROM kernel_modules").unwrap();
    }
}
