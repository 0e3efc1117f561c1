//! `uptime`: time since boot, from `/proc/uptime` (osquery's `uptime`).
//!
//! osquery takes `sysinfo(2)`'s uptime, which the kernel rounds up to the
//! next whole second; `/proc/uptime` shows the same clock to 1/100 s, so Tend
//! rounds its first field up the same way.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "uptime",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("days"),
    col::integer("hours"),
    col::integer("minutes"),
    col::integer("seconds"),
    col::bigint("total_seconds"),
];

/// Whole seconds of uptime as `sysinfo(2)` gives them, from `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<i64> {
    let first = text.split_whitespace().next()?;
    let secs: i64 = first.split('.').next()?.parse().ok()?;
    // sysinfo adds a second for any nanoseconds past the whole second. The
    // two decimals here may show those as .00, but the clock is never exact.
    Some(secs + 1)
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let text = ctx
        .machine
        .fs
        .read_string(Path::new("/proc/uptime"))
        .map_err(|e| TableError::io("uptime", "reading /proc/uptime", e))?;
    let Some(total) = parse_uptime(&text) else {
        return Err(TableError::other(
            "uptime",
            format!("unexpected /proc/uptime: {:?}", text.trim()),
        ));
    };
    let mut r = RowBuilder::new(COLUMNS);
    r.set("days", total / 86_400)
        .set("hours", total / 3600 % 24)
        .set("minutes", total / 60 % 60)
        .set("seconds", total % 60)
        .set("total_seconds", total);
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn rounds_up_like_sysinfo() {
        assert_eq!(parse_uptime("721.10 1128.68\n"), Some(722));
        assert_eq!(parse_uptime("garbage"), None);
    }

    #[test]
    fn reads_a_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("uptime")).unwrap();
        let res = engine.query("SELECT * FROM uptime").unwrap();
        // 273845.47 s: 3 days, 4 hours, 4 minutes, 6 seconds (rounded up).
        let expect = [
            ("days", 3),
            ("hours", 4),
            ("minutes", 4),
            ("seconds", 6),
            ("total_seconds", 273_846),
        ];
        for (c, v) in expect {
            assert_eq!(res.get(0, c), Some(&Value::Integer(v)), "{c}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine.query("SELECT total_seconds FROM uptime").unwrap();
        assert!(matches!(res.get(0, "total_seconds"), Some(Value::Integer(n)) if *n > 0));
    }
}
