//! `screenlock`: whether a password is required after sleep or the screen
//! saver, and after how long (osquery's `screenlock`).
//!
//! osquery reads the grace period from the private MobileKeyBag framework
//! (`MKBDeviceGetGracePeriod`). Tend runs `sysadminctl -screenLock status`,
//! which reports the same setting (it logs through NSLog, so the answer is
//! on stderr): `screenLock delay is immediate` is enabled with a grace period
//! of 0, `screenLock delay is N seconds` enabled with N, and `screenLock is
//! off` disabled with -1, as osquery gives a disabled lock. Any other answer,
//! or no `sysadminctl`, gives no row, as osquery gives none when the
//! framework does not answer. Like osquery's call, the answer is the
//! keybag's of the session that asks.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "screenlock",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[col::integer("enabled"), col::integer("grace_period")];

/// (enabled, grace period) from `sysadminctl -screenLock status` output.
pub fn parse_status(text: &str) -> Option<(i64, i64)> {
    for line in text.lines() {
        let Some(i) = line.find("screenLock ") else {
            continue;
        };
        let rest = line[i + "screenLock ".len()..].trim();
        if rest.starts_with("is off") {
            return Some((0, -1));
        }
        if let Some(delay) = rest.strip_prefix("delay is ") {
            let delay = delay.trim();
            if delay.starts_with("immediate") {
                return Some((1, 0));
            }
            let seconds = delay.split_whitespace().next()?.parse().ok()?;
            return Some((1, seconds));
        }
    }
    None
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let Some(out) = darwin::run(ctx, "/usr/sbin/sysadminctl", &["-screenLock", "status"]) else {
        return Ok(Vec::new());
    };
    let Some((enabled, grace)) = parse_status(&format!("{}\n{}", out.stderr, out.stdout)) else {
        return Ok(Vec::new());
    };
    let mut r = RowBuilder::new(COLUMNS);
    r.set("enabled", enabled).set("grace_period", grace);
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn sysadminctl_answers() {
        let log = "2024-11-19 09:41:07.512 sysadminctl[4711:88812] ";
        assert_eq!(
            parse_status(&format!("{log}screenLock delay is immediate")),
            Some((1, 0))
        );
        assert_eq!(
            parse_status(&format!("{log}screenLock delay is 300 seconds")),
            Some((1, 300))
        );
        assert_eq!(
            parse_status(&format!("{log}screenLock is off")),
            Some((0, -1))
        );
        assert_eq!(parse_status("usage: sysadminctl"), None);
    }

    #[test]
    fn recorded_answer() {
        let engine = Engine::new(fixture("../machines/macos14-compliant")).unwrap();
        let r = engine.query("SELECT * FROM screenlock").unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(1), Value::Integer(0)]]);
        let engine = Engine::new(fixture("../machines/macos14-noncompliant")).unwrap();
        let r = engine.query("SELECT * FROM screenlock").unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(0), Value::Integer(-1)]]);
    }
}
