//! `time`: the machine's clock (osquery's `time`; the broken-down fields are UTC).

use std::time::UNIX_EPOCH;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::Civil;

pub static TABLE: TableDef = TableDef {
    name: "time",
    columns: COLUMNS,
    platforms: Platforms::ALL,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("weekday"),
    col::integer("year"),
    col::integer("month"),
    col::integer("day"),
    col::integer("hour"),
    col::integer("minutes"),
    col::integer("seconds"),
    col::text("timezone"),
    col::text("local_timezone"),
    col::integer("unix_time"),
    col::text("timestamp"),
    col::text("datetime"),
    col::text("iso_8601"),
    col::bigint("win_timestamp").on(Platforms::WINDOWS),
];

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let host = ctx.machine.host.as_ref();
    let now = host
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (_, zone) = host.local_offset();
    let c = Civil::from_unix(now);
    let mut r = RowBuilder::new(COLUMNS);
    r.set("weekday", c.weekday_name())
        .set("year", c.year)
        .set("month", i64::from(c.month))
        .set("day", i64::from(c.day))
        .set("hour", i64::from(c.hour))
        .set("minutes", i64::from(c.minute))
        .set("seconds", i64::from(c.second))
        .set("timezone", "UTC")
        .set("local_timezone", zone)
        .set("unix_time", now)
        .set(
            "timestamp",
            format!(
                "{} {} {:2} {:02}:{:02}:{:02} {} UTC",
                &c.weekday_name()[..3],
                c.month_abbrev(),
                c.day,
                c.hour,
                c.minute,
                c.second,
                c.year
            ),
        )
        .set("datetime", c.iso8601())
        .set("iso_8601", c.iso8601());
    if ctx.platform() == crate::sql::table::Platform::Windows {
        // FILETIME: 100 ns intervals since 1601-01-01.
        r.set("win_timestamp", (now + 11_644_473_600) * 10_000_000);
    }
    Ok(vec![r.build()])
}
