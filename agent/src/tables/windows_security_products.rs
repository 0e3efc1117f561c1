//! `windows_security_products`: the firewall, anti-virus and anti-spyware
//! products registered with Windows Security Center (osquery's
//! `windows_security_products`).
//!
//! osquery asks the Security Center API (`IWSCProductList`). The same
//! registrations are published in WMI, `ROOT\SecurityCenter2`, as
//! `FirewallProduct`, `AntiVirusProduct` and `AntiSpywareProduct`, which is
//! what Tend reads: `displayName` → `name`, `timestamp` → `state_timestamp`
//! (the same text the API gives, e.g. `Mon, 15 Jan 2024 08:12:44 GMT`),
//! `pathToSignedProductExe` → `remediation_path` (Defender's is
//! `windowsdefender://`). `productState` packs what the API returns
//! separately:
//!
//! - bits 12–15, the product state: 0 `Off`, 1 `On`, 2 `Snoozed`,
//!   3 `Expired` (another value `Unknown`, as osquery);
//! - bits 4–7, the signature status: 0 up to date (`signatures_up_to_date`
//!   1), anything else out of date (0);
//! - bits 8–11 (owner: 1 for Microsoft) and 16–23 (provider) are not shown.
//!
//! Rows come in osquery's order: firewalls, then anti-virus, then
//! anti-spyware. As in osquery, Windows Server has no Security Center and
//! no rows. The Windows Defender Firewall itself is not a registered
//! product: it appears in `windows_security_center.firewall`, not here.

use super::wmi::{self, WmiRow};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "windows_security_products",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("type"),
    col::text("name"),
    col::text("state"),
    col::text("state_timestamp"),
    col::text("remediation_path"),
    col::integer("signatures_up_to_date"),
];

pub const NAMESPACE: &str = "ROOT\\SecurityCenter2";

/// The classes osquery's three providers map to, in its order, with its type names.
pub const PRODUCT_CLASSES: [(&str, &str); 3] = [
    ("Firewall", "SELECT * FROM FirewallProduct"),
    ("Antivirus", "SELECT * FROM AntiVirusProduct"),
    ("Antispyware", "SELECT * FROM AntiSpywareProduct"),
];

/// A decoded `productState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductState {
    pub state: &'static str,
    pub signatures_up_to_date: bool,
}

/// Decodes `productState` (see the module docs).
pub fn decode_product_state(n: u64) -> ProductState {
    let state = match (n >> 12) & 0xF {
        0 => "Off",
        1 => "On",
        2 => "Snoozed",
        3 => "Expired",
        _ => "Unknown",
    };
    ProductState {
        state,
        signatures_up_to_date: (n >> 4) & 0xF == 0,
    }
}

/// The registered products of one kind; none when WMI has no answer.
pub fn products(ctx: &ScanContext<'_>, wql: &str) -> Vec<WmiRow> {
    ctx.machine.wmi.query(NAMESPACE, wql).unwrap_or_default()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for (kind, wql) in PRODUCT_CLASSES {
        for p in products(ctx, wql) {
            let decoded = wmi::get_u64(&p, "productState").map(decode_product_state);
            let mut r = RowBuilder::new(COLUMNS);
            r.set("type", kind)
                .set("name", wmi::string_or_empty(&p, "displayName"))
                .set("state", decoded.map_or("Unknown", |d| d.state))
                .set("state_timestamp", wmi::string_or_empty(&p, "timestamp"))
                .set(
                    "remediation_path",
                    wmi::string_or_empty(&p, "pathToSignedProductExe"),
                )
                .set(
                    "signatures_up_to_date",
                    decoded.is_some_and(|d| d.signatures_up_to_date),
                );
            rows.push(r.build());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn product_states_decode() {
        // Defender on, up to date / off / on with old signatures.
        assert_eq!(
            decode_product_state(397_568),
            ProductState {
                state: "On",
                signatures_up_to_date: true
            }
        );
        assert_eq!(decode_product_state(393_472).state, "Off");
        assert!(!decode_product_state(397_584).signatures_up_to_date);
        assert_eq!(decode_product_state(397_584).state, "On");
        // A third-party product, snoozed.
        assert_eq!(decode_product_state(0x06_2000).state, "Snoozed");
        assert_eq!(decode_product_state(0x06_3000).state, "Expired");
        assert_eq!(decode_product_state(0x06_5000).state, "Unknown");
    }

    #[test]
    fn reads_recorded_products() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/windows_security_products"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query("SELECT * FROM windows_security_products")
            .unwrap();
        let rows: Vec<Vec<Value>> = res.rows.clone();
        assert_eq!(rows.len(), 4, "{rows:?}");
        let t = |i: usize, c: &str| match res.get(i, c) {
            Some(Value::Text(s)) => s.clone(),
            Some(Value::Integer(n)) => n.to_string(),
            other => panic!("{c}: {other:?}"),
        };
        assert_eq!(
            (t(0, "type"), t(0, "name"), t(0, "state")),
            ("Firewall".into(), "ESET Firewall".into(), "On".into())
        );
        assert_eq!(
            (t(1, "type"), t(1, "name"), t(1, "state")),
            ("Antivirus".into(), "Windows Defender".into(), "Off".into())
        );
        assert_eq!(t(1, "remediation_path"), "windowsdefender://");
        assert_eq!(t(1, "state_timestamp"), "Mon, 15 Jan 2024 08:12:44 GMT");
        assert_eq!(
            (t(2, "type"), t(2, "name"), t(2, "state")),
            ("Antivirus".into(), "ESET Security".into(), "On".into())
        );
        assert_eq!(t(2, "signatures_up_to_date"), "1");
        assert_eq!(
            (t(3, "type"), t(3, "name"), t(3, "signatures_up_to_date")),
            ("Antispyware".into(), "Windows Defender".into(), "1".into())
        );
        let passed = engine
            .query(
                "SELECT COUNT(*) AS passed FROM windows_security_products \
                 WHERE type = 'Antivirus' AND state = 'On' AND signatures_up_to_date = 1",
            )
            .unwrap();
        assert_eq!(passed.get(0, "passed"), Some(&Value::Integer(1)));
    }
}
