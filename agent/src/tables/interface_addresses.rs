//! `interface_addresses`: the IPv4 and IPv6 addresses of network interfaces,
//! from `getifaddrs(3)` (osquery's `interface_addresses`).
//!
//! Addresses are printed as osquery's `getnameinfo(NI_NUMERICHOST)` prints
//! them: IPv6 compressed as glibc does, and link-local IPv6 addresses
//! (`fe80::/10`) followed by `%` and the interface, their scope. An address
//! has either a broadcast or a point-to-point address, never both; the other
//! is NULL. As in osquery, the second address `getifaddrs` gives is the
//! broadcast address when the interface has `IFF_BROADCAST` (read from
//! `/sys/class/net/<interface>/flags`) and the point-to-point address
//! otherwise, so loopback shows `127.0.0.1` as its point-to-point address.
//! `type` is osquery's: `unknown` on Linux.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::process_open_sockets::format_ipv6;

pub static TABLE: TableDef = TableDef {
    name: "interface_addresses",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("interface"),
    col::text("address"),
    col::text("mask"),
    col::text("broadcast"),
    col::text("point_to_point"),
    col::text("type"),
    col::text("friendly_name").on(Platforms::WINDOWS),
];

/// An address as glibc's `getnameinfo` prints it (IPv4 unchanged).
pub fn normalize(address: &str) -> String {
    match address.parse::<Ipv6Addr>() {
        Ok(a) => format_ipv6(a.octets()),
        Err(_) => address.to_string(),
    }
}

/// An interface address with its scope, as `getnameinfo` adds it for link-local IPv6.
pub fn with_scope(address: &str, interface: &str) -> String {
    let normalized = normalize(address);
    match address.parse::<Ipv6Addr>() {
        Ok(a) if a.segments()[0] & 0xffc0 == 0xfe80 && !interface.is_empty() => {
            format!("{normalized}%{interface}")
        }
        _ => normalized,
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// `IFF_BROADCAST` in `<net/if.h>`.
const IFF_BROADCAST: u64 = 0x2;

/// The interface flags `/sys/class/net/<name>/flags` holds (`0x1003`).
pub fn parse_flags(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

fn interface_flags(ctx: &ScanContext<'_>, name: &str) -> Option<u64> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let path = format!("/sys/class/net/{name}/flags");
    parse_flags(&ctx.machine.fs.read_string(Path::new(&path)).ok()?)
}

/// (broadcast, point_to_point): the interface's second address goes where
/// osquery puts it, by `IFF_BROADCAST`; without flags, as the host gave it.
pub fn place_second_address(
    broadcast: String,
    p2p: String,
    flags: Option<u64>,
) -> (Option<String>, Option<String>) {
    let Some(flags) = flags else {
        return (non_empty(broadcast), non_empty(p2p));
    };
    let other = non_empty(broadcast).or_else(|| non_empty(p2p));
    if flags & IFF_BROADCAST != 0 {
        (other, None)
    } else {
        (None, other)
    }
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let list = ctx.machine.host.interfaces().map_err(|e| {
        TableError::io(
            "interface_addresses",
            "listing interface addresses (getifaddrs)",
            e,
        )
    })?;
    let mut flags: HashMap<String, Option<u64>> = HashMap::new();
    let mut rows = Vec::new();
    for a in list {
        let f = *flags
            .entry(a.interface.clone())
            .or_insert_with(|| interface_flags(ctx, &a.interface));
        let (broadcast, p2p) = place_second_address(a.broadcast, a.point_to_point, f);
        let mut r = RowBuilder::new(COLUMNS);
        r.set("address", with_scope(&a.address, &a.interface))
            .set_opt("mask", non_empty(a.mask).map(|m| normalize(&m)))
            .set_opt("broadcast", broadcast.map(|b| normalize(&b)))
            .set_opt("point_to_point", p2p.map(|p| normalize(&p)))
            .set(
                "type",
                if a.kind.is_empty() {
                    "unknown".to_string()
                } else {
                    a.kind
                },
            )
            .set("interface", a.interface);
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    #[test]
    fn formats_like_getnameinfo() {
        assert_eq!(
            with_scope("fe80::5054:ff:fe12:3456", "eth0"),
            "fe80::5054:ff:fe12:3456%eth0"
        );
        assert_eq!(
            with_scope("2001:db8:0:0:1:0:0:1", "eth0"),
            "2001:db8::1:0:0:1"
        );
        assert_eq!(with_scope("10.0.2.15", "eth0"), "10.0.2.15");
        assert_eq!(normalize("ffff:ffff:ffff:ffff::"), "ffff:ffff:ffff:ffff::");
        assert_eq!(parse_flags("0x1003\n"), Some(0x1003));
        let lo = place_second_address("127.0.0.1".into(), String::new(), Some(0x9));
        assert_eq!(lo, (None, Some("127.0.0.1".into())));
        let eth = place_second_address("10.0.2.255".into(), String::new(), Some(0x1003));
        assert_eq!(eth, (Some("10.0.2.255".into()), None));
        let unknown = place_second_address("10.0.2.255".into(), String::new(), None);
        assert_eq!(unknown, (Some("10.0.2.255".into()), None));
    }

    #[test]
    fn reads_recorded_interfaces() {
        let engine = Engine::new(fixture("interface_addresses")).unwrap();
        let r = engine.query("SELECT * FROM interface_addresses").unwrap();
        assert_eq!(
            r.columns,
            vec![
                "interface",
                "address",
                "mask",
                "broadcast",
                "point_to_point",
                "type"
            ]
        );
        assert_eq!(
            r.rows,
            vec![
                vec![
                    text("lo"),
                    text("127.0.0.1"),
                    text("255.0.0.0"),
                    Value::Null,
                    text("127.0.0.1"),
                    text("unknown")
                ],
                vec![
                    text("eth0"),
                    text("10.0.2.15"),
                    text("255.255.255.0"),
                    text("10.0.2.255"),
                    Value::Null,
                    text("unknown")
                ],
                vec![
                    text("wg0"),
                    text("10.8.0.2"),
                    text("255.255.255.255"),
                    Value::Null,
                    text("10.8.0.1"),
                    text("unknown")
                ],
                vec![
                    text("lo"),
                    text("::1"),
                    text("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                    Value::Null,
                    Value::Null,
                    text("unknown")
                ],
                vec![
                    text("eth0"),
                    text("fe80::5054:ff:fe12:3456%eth0"),
                    text("ffff:ffff:ffff:ffff::"),
                    Value::Null,
                    Value::Null,
                    text("unknown")
                ],
            ]
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT address FROM interface_addresses WHERE interface = 'lo'")
            .unwrap();
        for row in &r.rows {
            assert!(
                matches!(&row[0], Value::Text(a) if a == "127.0.0.1" || a == "::1"),
                "{row:?}"
            );
        }
    }
}
