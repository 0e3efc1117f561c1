//! `process_open_sockets`: sockets and the processes that hold them, from
//! `/proc/<pid>/net/*` and the `/proc/<pid>/fd` links (osquery's
//! `process_open_sockets`).
//!
//! As osquery does on Linux, in three steps: every process's `socket:[inode]`
//! descriptors give inode → (pid, fd); each network namespace
//! (`/proc/<pid>/ns/net`) is read once, through the first process in it,
//! from `net/{icmp,tcp,udp,udplite,raw}{,6}`, `net/unix` and `net/packet`;
//! the sockets are joined to their holders by inode. A socket no process
//! holds has pid and fd -1. Addresses are printed as `inet_ntop(3)` prints
//! them (IPv6 compressed, lowercase); TCP states have the kernel's names
//! (`ESTABLISHED`, `LISTEN`, ...), other sockets have no state (packet
//! sockets `NONE`).
//!
//! `pid = ...` reads only those processes and returns only their sockets.
//!
//! A process whose namespace link cannot be read (another user's, without
//! privileges) counts as namespace 0, as in osquery; where osquery then lists
//! the sockets of that namespace twice (once as 0, once under the namespace
//! some other process showed), Tend drops the namespace-0 copy.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::process_open_files::descriptors;
use crate::tables::processes::{all_pids, proc_path};

pub static TABLE: TableDef = TableDef {
    name: "process_open_sockets",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("pid").additional(),
    col::bigint("fd"),
    col::bigint("socket"),
    col::integer("family"),
    col::integer("protocol"),
    col::text("local_address"),
    col::text("remote_address"),
    col::integer("local_port"),
    col::integer("remote_port"),
    col::text("path"),
    col::text("state"),
    col::text("net_namespace").on(Platforms::LINUX),
];

pub const AF_UNIX: i64 = 1;
pub const AF_INET: i64 = 2;
pub const AF_INET6: i64 = 10;
pub const AF_PACKET: i64 = 17;

/// The `/proc/net` files osquery reads per protocol, in its (numeric) order.
const PROTOCOLS: [(i64, &str); 5] = [
    (1, "icmp"),
    (6, "tcp"),
    (17, "udp"),
    (136, "udplite"),
    (255, "raw"),
];

/// The kernel's TCP states, by number (`include/net/tcp_states.h`).
const TCP_STATES: [&str; 12] = [
    "UNKNOWN",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSED",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

/// One socket of a network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SocketInfo {
    /// The socket's inode, as the kernel prints it.
    pub socket: String,
    pub net_ns: u64,
    pub family: i64,
    pub protocol: i64,
    pub local_address: String,
    pub local_port: u16,
    pub remote_address: String,
    pub remote_port: u16,
    pub unix_path: String,
    pub state: String,
}

/// A socket and the process holding it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSocket {
    /// (pid, fd), or `None` when no scanned process holds the socket.
    pub holder: Option<(i64, i64)>,
    pub info: SocketInfo,
}

/// Formats 16 bytes as glibc's `inet_ntop(AF_INET6)` does: the longest run
/// of two or more zero groups compressed, lowercase hex, and the last four
/// bytes dotted for IPv4-compatible and IPv4-mapped addresses.
pub fn format_ipv6(b: [u8; 16]) -> String {
    let words: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]))
        .collect();
    let (mut best, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if best.is_none() || i - start > best_len {
                best = Some(start);
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some(base) = best.filter(|base| (*base..*base + best_len).contains(&i)) {
            if i == base {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best == Some(0) && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            out.push_str(&format!("{}.{}.{}.{}", b[12], b[13], b[14], b[15]));
            return out;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    if best.is_some_and(|base| base + best_len == 8) {
        out.push(':');
    }
    out
}

/// Decodes a `/proc/net` address: 8 hex digits (IPv4) or 32 (IPv6), each
/// 32-bit word in the host's (little-endian) byte order. Other lengths decode
/// to "" as in osquery.
pub fn decode_address(hex: &str, family: i64) -> String {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_le_bytes);
    match (family, hex.len()) {
        (AF_INET, 8) => word(hex).map_or_else(String::new, |b| {
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        }),
        (AF_INET6, 32) if hex.is_ascii() => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let Some(w) = word(&hex[8 * i..8 * i + 8]) else {
                    return String::new();
                };
                bytes[4 * i..4 * i + 4].copy_from_slice(&w);
            }
            format_ipv6(bytes)
        }
        _ => String::new(),
    }
}

/// Decodes a 4-digit hex port (or packet protocol); anything else is 0.
pub fn decode_u16(hex: &str) -> u16 {
    if hex.len() == 4 {
        u16::from_str_radix(hex, 16).unwrap_or(0)
    } else {
        0
    }
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

fn fields(line: &str) -> Vec<&str> {
    line.split(' ').filter(|s| !s.is_empty()).collect()
}

/// Parses `/proc/net/{tcp,udp,...}{,6}`. `None` when the header is not one.
pub fn parse_inet(text: &str, family: i64, protocol: i64, net_ns: u64) -> Option<Vec<SocketInfo>> {
    let mut it = lines(text);
    let header = it.next()?;
    if !header.starts_with("sl") && !header.starts_with("sk") {
        return None;
    }
    let mut out = Vec::new();
    for line in it {
        let f = fields(line);
        if f.len() < 10 {
            continue;
        }
        let (Some((la, lp)), Some((ra, rp))) = (f[1].split_once(':'), f[2].split_once(':')) else {
            continue;
        };
        if lp.contains(':') || rp.contains(':') {
            continue;
        }
        let state = if protocol == 6 {
            match usize::from_str_radix(f[3], 16) {
                Ok(n) if n > 0 && n < TCP_STATES.len() => TCP_STATES[n].to_string(),
                _ => "UNKNOWN".to_string(),
            }
        } else {
            String::new()
        };
        out.push(SocketInfo {
            socket: f[9].to_string(),
            net_ns,
            family,
            protocol,
            local_address: decode_address(la, family),
            local_port: decode_u16(lp),
            remote_address: decode_address(ra, family),
            remote_port: decode_u16(rp),
            unix_path: String::new(),
            state,
        });
    }
    Some(out)
}

/// Parses `/proc/net/unix`. The path is the first word of the last column
/// (abstract sockets start with `@`), as osquery splits it.
pub fn parse_unix(text: &str, net_ns: u64) -> Option<Vec<SocketInfo>> {
    let mut it = lines(text);
    if !it.next()?.starts_with("Num") {
        return None;
    }
    let mut out = Vec::new();
    for line in it {
        let f = fields(line);
        if f.len() < 7 {
            continue;
        }
        out.push(SocketInfo {
            socket: f[6].to_string(),
            net_ns,
            family: AF_UNIX,
            // osquery's atoll of the hex Protocol column: always 0 in practice.
            protocol: f[2]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0),
            unix_path: f.get(7).map_or_else(String::new, |p| p.to_string()),
            ..SocketInfo::default()
        });
    }
    Some(out)
}

/// Parses `/proc/net/packet`: protocol in column 3 (hex), inode in column 8.
pub fn parse_packet(text: &str, net_ns: u64) -> Option<Vec<SocketInfo>> {
    let mut it = lines(text);
    let header = it.next()?;
    if !header.starts_with("sl") && !header.starts_with("sk") {
        return None;
    }
    let mut out = Vec::new();
    for line in it {
        let f = fields(line);
        if f.len() < 9 {
            continue;
        }
        out.push(SocketInfo {
            socket: f[8].to_string(),
            net_ns,
            family: AF_PACKET,
            protocol: i64::from(decode_u16(f[3])),
            state: "NONE".to_string(),
            ..SocketInfo::default()
        });
    }
    Some(out)
}

/// The inode of a process's network namespace (`net:[4026531840]`), 0 if unknown.
pub fn parse_namespace_link(target: &str, name: &str) -> u64 {
    target
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix(":["))
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `socket:[inode]` inode of a descriptor link.
pub fn socket_inode(target: &str) -> Option<&str> {
    target.strip_prefix("socket:[")?.strip_suffix(']')
}

/// Every socket of the namespace `pid` is in, read through that process.
fn namespace_sockets(ctx: &ScanContext<'_>, pid: &str, ns: u64) -> Vec<SocketInfo> {
    let fs = ctx.machine.fs.as_ref();
    let read = |name: &str| fs.read_string(&proc_path(pid, &format!("net/{name}"))).ok();
    let mut out = Vec::new();
    for (protocol, name) in PROTOCOLS {
        for (family, suffix) in [(AF_INET, ""), (AF_INET6, "6")] {
            if let Some(text) = read(&format!("{name}{suffix}")) {
                out.extend(parse_inet(&text, family, protocol, ns).unwrap_or_default());
            }
        }
    }
    if let Some(text) = read("unix") {
        out.extend(parse_unix(&text, ns).unwrap_or_default());
    }
    if let Some(text) = read("packet") {
        out.extend(parse_packet(&text, ns).unwrap_or_default());
    }
    out
}

/// The sockets of every process (`pids = None`) or of the given ones, with
/// their holders. Without a pid filter, sockets no process holds are kept
/// with no holder, as osquery reports them (pid -1).
pub(crate) fn open_sockets(
    ctx: &ScanContext<'_>,
    pids: Option<Vec<String>>,
) -> Result<Vec<OpenSocket>, TableError> {
    let filtered = pids.is_some();
    let pids = match pids {
        Some(p) => p,
        None => all_pids(ctx)?,
    };
    let fs = ctx.machine.fs.as_ref();
    let mut holders: HashMap<String, (i64, i64)> = HashMap::new();
    let mut seen_ns = BTreeSet::new();
    let mut sockets = Vec::new();
    for pid in &pids {
        ctx.check_deadline()?;
        let pid_num = pid.parse::<i64>().unwrap_or(0);
        for (fd, target) in descriptors(ctx, pid) {
            if let Some(inode) = socket_inode(&target) {
                holders.insert(inode.to_string(), (pid_num, fd));
            }
        }
        let ns = fs
            .read_link(&proc_path(pid, "ns/net"))
            .map_or(0, |t| parse_namespace_link(&t.to_string_lossy(), "net"));
        if seen_ns.insert(ns) {
            sockets.extend(namespace_sockets(ctx, pid, ns));
        }
    }
    let sockets = drop_unknown_namespace_copies(sockets);
    Ok(sockets
        .into_iter()
        .filter_map(|info| {
            let holder = holders.get(&info.socket).copied();
            if holder.is_none() && filtered {
                return None;
            }
            Some(OpenSocket { holder, info })
        })
        .collect())
}

/// Drops the sockets read through a process of unknown namespace (0) that a
/// read of a known namespace also found.
pub fn drop_unknown_namespace_copies(sockets: Vec<SocketInfo>) -> Vec<SocketInfo> {
    // The same socket, as a namespace-0 read would have it.
    let known: HashSet<SocketInfo> = sockets
        .iter()
        .filter(|s| s.net_ns != 0)
        .map(|s| SocketInfo {
            net_ns: 0,
            ..s.clone()
        })
        .collect();
    sockets
        .into_iter()
        .filter(|s| s.net_ns != 0 || !known.contains(s))
        .collect()
}

/// The pids `pid = ...` names, or `None` for all (also when `-1` is among them, as in osquery).
pub(crate) fn pid_filter(constraints: &Constraints) -> Option<Vec<String>> {
    let wanted = constraints.eq("pid");
    if wanted.is_empty() || wanted.iter().any(|p| p.trim() == "-1") {
        return None;
    }
    let mut pids: Vec<u64> = wanted
        .iter()
        .filter_map(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Some(pids.into_iter().map(|p| p.to_string()).collect())
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for s in open_sockets(ctx, pid_filter(constraints))? {
        let (pid, fd) = s.holder.unwrap_or((-1, -1));
        let i = s.info;
        let mut r = RowBuilder::new(COLUMNS);
        r.set("pid", pid)
            .set("fd", fd)
            .set("socket", i.socket)
            .set("family", i.family)
            .set("protocol", i.protocol)
            .set("local_address", i.local_address)
            .set("local_port", i.local_port)
            .set("remote_address", i.remote_address)
            .set("remote_port", i.remote_port)
            .set("path", i.unix_path)
            .set("state", i.state)
            .set("net_namespace", i.net_ns.to_string());
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
    fn decodes_addresses_like_inet_ntop() {
        assert_eq!(decode_address("0100007F", AF_INET), "127.0.0.1");
        assert_eq!(decode_address("00000000", AF_INET), "0.0.0.0");
        assert_eq!(decode_address("0F02000A", AF_INET), "10.0.2.15");
        assert_eq!(
            decode_address("00000000000000000000000000000000", AF_INET6),
            "::"
        );
        assert_eq!(
            decode_address("00000000000000000000000001000000", AF_INET6),
            "::1"
        );
        assert_eq!(
            decode_address("0000000000000000FFFF00000F02000A", AF_INET6),
            "::ffff:10.0.2.15"
        );
        assert_eq!(
            decode_address("000080FE00000000FF005452123456FE", AF_INET6),
            "fe80::5254:ff:fe56:3412"
        );
        assert_eq!(
            decode_address("B80D0120000000000000000000000000", AF_INET6),
            "2001:db8::"
        );
        assert_eq!(decode_address("123", AF_INET), "");
        assert_eq!(decode_u16("0016"), 22);
        assert_eq!(decode_u16("16"), 0);
        // One zero group is not compressed; the first of equal runs is.
        let mut b = [0u8; 16];
        b[1] = 1;
        b[5] = 2;
        b[15] = 3;
        assert_eq!(format_ipv6(b), "1:0:2::3");
        assert_eq!(
            format_ipv6([0x20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
            "2001:0:0:1::1"
        );
        assert_eq!(
            format_ipv6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
            "::1.2.3.4"
        );
    }

    #[test]
    fn parses_proc_net_files() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18133 1 0000000000000000 100 0 0 10 0\n   \
                   1: 0F02000A:0016 0202000A:C51E 01 00000000:00000000 02:0008A3D2 00000000     0        0 52110 4 0000000000000000 20 4 29 10 -1\n";
        let s = parse_inet(tcp, AF_INET, 6, 7).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                s[0].local_address.as_str(),
                s[0].local_port,
                s[0].state.as_str()
            ),
            ("0.0.0.0", 22, "LISTEN")
        );
        assert_eq!(
            (
                s[1].remote_address.as_str(),
                s[1].remote_port,
                s[1].state.as_str()
            ),
            ("10.0.2.2", 50462, "ESTABLISHED")
        );
        assert_eq!(s[1].socket, "52110");
        assert!(parse_inet("garbage\n", AF_INET, 6, 0).is_none());

        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                    0000000000000000: 00000002 00000000 00010000 0001 01 17262 /run/systemd/journal/stdout\n\
                    0000000000000000: 00000003 00000000 00000000 0001 03 20873\n\
                    0000000000000000: 00000002 00000000 00010000 0001 01 19011 @/tmp/.X11-unix/X0\n";
        let u = parse_unix(unix, 7).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(
            (u[0].socket.as_str(), u[0].unix_path.as_str()),
            ("17262", "/run/systemd/journal/stdout")
        );
        assert_eq!(u[1].unix_path, "");
        assert_eq!(u[2].unix_path, "@/tmp/.X11-unix/X0");

        let packet = "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n\
                      0000000000000000 3      3    0003   2     1 0      0      24016\n";
        let p = parse_packet(packet, 7).unwrap();
        assert_eq!(
            (p[0].protocol, p[0].socket.as_str(), p[0].state.as_str()),
            (3, "24016", "NONE")
        );
        assert_eq!(
            parse_namespace_link("net:[4026531840]", "net"),
            4_026_531_840
        );
        assert_eq!(socket_inode("socket:[18133]"), Some("18133"));
        assert_eq!(socket_inode("pipe:[1]"), None);

        // A namespace-0 copy of a socket a known namespace has is dropped.
        let mut copy = s[0].clone();
        copy.net_ns = 0;
        let mut other = s[1].clone();
        other.net_ns = 0;
        other.socket = "99".into();
        let kept = drop_unknown_namespace_copies(vec![copy, s[0].clone(), other.clone()]);
        assert_eq!(kept, vec![s[0].clone(), other]);
    }

    #[test]
    fn reads_recorded_sockets() {
        let engine = Engine::new(fixture("process_open_sockets")).unwrap();
        let r = engine
            .query(
                "SELECT pid, fd, family, protocol, local_address, local_port, remote_address, remote_port, path, state, \
                 net_namespace FROM process_open_sockets WHERE socket = 18133",
            )
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        let v = |c: &str| r.get(0, c).cloned().unwrap();
        assert_eq!(
            (v("pid"), v("fd")),
            (Value::Integer(530), Value::Integer(3))
        );
        assert_eq!(
            (v("family"), v("protocol")),
            (Value::Integer(2), Value::Integer(6))
        );
        assert_eq!(
            (v("local_address"), v("local_port")),
            (text("0.0.0.0"), Value::Integer(22))
        );
        assert_eq!(
            (v("remote_address"), v("remote_port")),
            (text("0.0.0.0"), Value::Integer(0))
        );
        assert_eq!((v("path"), v("state")), (text(""), text("LISTEN")));
        assert_eq!(v("net_namespace"), text("4026531840"));

        let est = engine
            .query("SELECT pid, local_address, remote_address, state FROM process_open_sockets WHERE socket = 52110")
            .unwrap();
        assert_eq!(
            est.rows,
            vec![vec![
                Value::Integer(2301),
                text("10.0.2.15"),
                text("10.0.2.2"),
                text("ESTABLISHED")
            ]]
        );
        let v6 = engine
            .query("SELECT local_address, local_port, family FROM process_open_sockets WHERE socket = 18135")
            .unwrap();
        assert_eq!(
            v6.rows,
            vec![vec![text("::"), Value::Integer(22), Value::Integer(10)]]
        );
        // A socket no process holds (TIME_WAIT sockets have inode 0).
        let orphan = engine
            .query("SELECT pid, fd, socket, remote_address, remote_port FROM process_open_sockets WHERE state = 'TIME_WAIT'")
            .unwrap();
        assert_eq!(
            orphan.rows,
            vec![vec![
                Value::Integer(-1),
                Value::Integer(-1),
                Value::Integer(0),
                text("151.101.2.132"),
                Value::Integer(443)
            ]]
        );
        // A process in another network namespace: its namespace's sockets are read through it.
        let other = engine
            .query("SELECT pid, fd, local_port, net_namespace FROM process_open_sockets WHERE net_namespace = '4026532290'")
            .unwrap();
        assert_eq!(
            other.rows,
            vec![vec![
                Value::Integer(3100),
                Value::Integer(5),
                Value::Integer(8080),
                text("4026532290")
            ]]
        );
        let unix = engine
            .query("SELECT pid, fd, family, path FROM process_open_sockets WHERE family = 1 AND path != '' ORDER BY socket")
            .unwrap();
        assert_eq!(unix.rows.len(), 2);
        assert_eq!(
            unix.rows[0],
            vec![
                Value::Integer(412),
                Value::Integer(3),
                Value::Integer(1),
                text("/run/dbus/system_bus_socket")
            ]
        );

        // Filtering by pid: only that process's sockets, no orphans.
        let sshd = engine
            .query("SELECT socket FROM process_open_sockets WHERE pid = 530 ORDER BY socket")
            .unwrap();
        assert_eq!(
            sshd.rows,
            vec![vec![Value::Integer(18133)], vec![Value::Integer(18135)]]
        );
        let total = engine
            .query("SELECT count(*) FROM process_open_sockets")
            .unwrap();
        assert_eq!(total.rows[0][0], Value::Integer(10));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT pid, family, state FROM process_open_sockets")
            .unwrap();
        for row in &r.rows {
            assert!(matches!(row[1], Value::Integer(1 | 2 | 10 | 17)), "{row:?}");
        }
    }
}
