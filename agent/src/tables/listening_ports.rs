//! `listening_ports`: sockets waiting for connections (osquery's `listening_ports`).
//!
//! Derived from the same sockets as `process_open_sockets`, with osquery's
//! rule: an IPv4/IPv6 socket listens when it has no remote port (TCP sockets
//! in `LISTEN`, bound unconnected UDP, ICMP and raw sockets); a Unix socket
//! when it has a path (anonymous ones are left out); other families (packet
//! sockets) are kept as osquery keeps them. Unix sockets have port 0 and
//! socket 0, and their path; IP sockets have the local address and port.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::process_open_sockets::{AF_INET, AF_INET6, AF_UNIX, OpenSocket, open_sockets};

pub static TABLE: TableDef = TableDef {
    name: "listening_ports",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("pid"),
    col::integer("port"),
    col::integer("protocol"),
    col::integer("family"),
    col::text("address"),
    col::bigint("fd"),
    col::bigint("socket"),
    col::text("path"),
    col::text("net_namespace").on(Platforms::LINUX),
];

/// Whether osquery counts a socket as listening.
pub fn is_listening(s: &OpenSocket) -> bool {
    let i = &s.info;
    match i.family {
        AF_UNIX => !i.unix_path.is_empty(),
        AF_INET | AF_INET6 => i.remote_port == 0,
        _ => true,
    }
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for s in open_sockets(ctx, None)? {
        if !is_listening(&s) {
            continue;
        }
        let (pid, fd) = s.holder.unwrap_or((-1, -1));
        let i = s.info;
        let mut r = RowBuilder::new(COLUMNS);
        r.set("pid", pid)
            .set("fd", fd)
            .set("protocol", i.protocol)
            .set("family", i.family);
        if i.family == AF_UNIX {
            r.set("port", 0i64)
                .set("path", i.unix_path)
                .set("socket", 0i64);
        } else {
            r.set("address", i.local_address)
                .set("port", i.local_port)
                .set("socket", i.socket);
        }
        r.set("net_namespace", i.net_ns.to_string());
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    #[test]
    fn lists_recorded_listeners() {
        let engine = Engine::new(fixture("process_open_sockets")).unwrap();
        let r = engine
            .query(
                "SELECT pid, port, protocol, family, address, fd, socket, path, net_namespace FROM listening_ports \
                 WHERE family IN (2, 10) ORDER BY port, family",
            )
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![
                    Value::Integer(530),
                    Value::Integer(22),
                    Value::Integer(6),
                    Value::Integer(2),
                    text("0.0.0.0"),
                    Value::Integer(3),
                    Value::Integer(18133),
                    Value::Null,
                    text("4026531840"),
                ],
                vec![
                    Value::Integer(530),
                    Value::Integer(22),
                    Value::Integer(6),
                    Value::Integer(10),
                    text("::"),
                    Value::Integer(4),
                    Value::Integer(18135),
                    Value::Null,
                    text("4026531840"),
                ],
                vec![
                    Value::Integer(488),
                    Value::Integer(53),
                    Value::Integer(17),
                    Value::Integer(2),
                    text("127.0.0.53"),
                    Value::Integer(12),
                    Value::Integer(17789),
                    Value::Null,
                    text("4026531840"),
                ],
                vec![
                    Value::Integer(3100),
                    Value::Integer(8080),
                    Value::Integer(6),
                    Value::Integer(2),
                    text("0.0.0.0"),
                    Value::Integer(5),
                    Value::Integer(88412),
                    Value::Null,
                    text("4026532290"),
                ],
            ]
        );
        let unix = engine
            .query("SELECT pid, port, socket, path, address FROM listening_ports WHERE family = 1 ORDER BY path")
            .unwrap();
        assert_eq!(
            unix.rows,
            vec![
                vec![
                    Value::Integer(412),
                    Value::Integer(0),
                    Value::Integer(0),
                    text("/run/dbus/system_bus_socket"),
                    Value::Null
                ],
                vec![
                    Value::Integer(-1),
                    Value::Integer(0),
                    Value::Integer(0),
                    text("@/tmp/.X11-unix/X0"),
                    Value::Null
                ],
            ]
        );
        // The packet socket is kept, as osquery keeps it.
        let packet = engine
            .query("SELECT socket, protocol FROM listening_ports WHERE family = 17")
            .unwrap();
        assert_eq!(
            packet.rows,
            vec![vec![Value::Integer(24016), Value::Integer(3)]]
        );
        let total = engine
            .query("SELECT count(*) FROM listening_ports")
            .unwrap();
        assert_eq!(total.rows[0][0], Value::Integer(7));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT port, family FROM listening_ports WHERE family IN (2, 10)")
            .unwrap();
        for row in &r.rows {
            assert!(
                matches!(row[0], Value::Integer(p) if (0..=65535).contains(&p)),
                "{row:?}"
            );
        }
    }
}
