//! `iptables`: the IPv4 packet filter rules (osquery's `iptables`).
//!
//! osquery reads the kernel's tables through libiptc; Tend runs
//! `iptables-save -c` (every table, with counters) and parses its output
//! into the same rows: for each table and chain, one row per rule followed by
//! one row for the chain itself. `policy`, `packets` and `bytes` are the
//! chain's policy and policy counters on every row of the chain (empty and 0
//! for user-defined chains), as osquery reports them. `match` is osquery's
//! `yes` for every rule. Addresses and masks are dotted (`0.0.0.0` when the
//! rule has none); interfaces are `all` when unset, with the mask osquery
//! prints (`FF` per byte libiptc compares: the name and its NUL, or the
//! prefix before a `+`); `!` marks an inverted protocol, address or interface.
//! `src_port`/`dst_port` are `low:high` from the rule's `tcp`/`udp` match
//! (`0:65535` for a bound left open) and empty otherwise; osquery reads the
//! first match of a TCP/UDP rule as a port match even when it is another
//! module, and then prints meaningless numbers that Tend does not imitate.
//!
//! Unlike osquery, which sees only legacy x_tables, `iptables-save` also
//! shows the rules of the nf_tables backend (`iptables-nft`), what a
//! firewall check on a current distribution needs.

use std::path::Path;

use crate::os::CommandOutput;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "iptables",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("filter_name"),
    col::text("chain"),
    col::text("policy"),
    col::text("target"),
    col::integer("protocol"),
    col::text("src_port"),
    col::text("dst_port"),
    col::text("src_ip"),
    col::text("src_mask"),
    col::text("iniface"),
    col::text("iniface_mask"),
    col::text("dst_ip"),
    col::text("dst_mask"),
    col::text("outiface"),
    col::text("outiface_mask"),
    col::text("match"),
    col::integer("packets"),
    col::integer("bytes"),
];

/// The program, tried by name on the PATH and then where distributions install it.
const PROGRAMS: [&str; 3] = [
    "iptables-save",
    "/usr/sbin/iptables-save",
    "/sbin/iptables-save",
];
/// `-c`: counters, for the chains' policy packets and bytes.
const ARGS: [&str; 1] = ["-c"];

/// One chain of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub table: String,
    pub name: String,
    /// `ACCEPT`/`DROP` for built-in chains, "" for user-defined ones.
    pub policy: String,
    pub packets: i64,
    pub bytes: i64,
    pub rules: Vec<Rule>,
}

/// One rule, in osquery's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub target: String,
    /// The protocol number, `!`-prefixed when inverted.
    pub protocol: String,
    pub src_ip: String,
    pub src_mask: String,
    pub dst_ip: String,
    pub dst_mask: String,
    pub iniface: String,
    pub iniface_mask: String,
    pub outiface: String,
    pub outiface_mask: String,
    pub src_port: String,
    pub dst_port: String,
}

/// Splits a rule line into words as iptables-save quotes them (`"a b"`, `\"`).
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A prefix length or dotted mask as a dotted mask.
fn mask_of(mask: &str) -> Option<String> {
    if let Ok(bits) = mask.parse::<u32>() {
        if bits > 32 {
            return None;
        }
        let m: u32 = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        return Some(std::net::Ipv4Addr::from(m).to_string());
    }
    mask.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| a.to_string())
}

/// `10.0.0.0/8` → (`10.0.0.0`, `255.0.0.0`); a bare address is a /32.
pub fn address_and_mask(spec: &str) -> (String, String) {
    match spec.split_once('/') {
        Some((addr, mask)) => (
            addr.to_string(),
            mask_of(mask).unwrap_or_else(|| "0.0.0.0".into()),
        ),
        None => (spec.to_string(), "255.255.255.255".into()),
    }
}

/// osquery's interface mask: `FF` for each byte libiptc compares.
pub fn interface_mask(name: &str) -> String {
    let n = name.len();
    let bytes = match name.strip_suffix('+') {
        Some(prefix) => prefix.len(),
        None if n == 0 => 0,
        None => n + 1,
    };
    "FF".repeat(bytes.min(16))
}

/// `22`, `1024:65535`, `:1023`, `1024:` → `low:high`.
pub fn port_range(spec: &str) -> String {
    let (lo, hi) = match spec.split_once(':') {
        Some((lo, hi)) => (lo, hi),
        None => (spec, spec),
    };
    let lo = if lo.is_empty() { "0" } else { lo };
    let hi = if hi.is_empty() { "65535" } else { hi };
    format!("{lo}:{hi}")
}

/// The protocol numbers iptables knows by name (`xtables_chain_protos`) and
/// the common ones of `/etc/protocols`.
fn known_protocol(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "all" | "ip" => 0,
        "icmp" => 1,
        "igmp" => 2,
        "ipencap" => 4,
        "tcp" => 6,
        "egp" => 8,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "sctp" => 132,
        "mh" | "ipv6-mh" => 135,
        "udplite" => 136,
        _ => return None,
    })
}

/// The number of a protocol named in `/etc/protocols` text.
pub fn protocol_from_etc(etc_protocols: &str, name: &str) -> Option<u8> {
    etc_protocols.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut f = line.split_whitespace();
        let first = f.next()?;
        let number = f.next()?;
        let aliases: Vec<&str> = f.collect();
        (first.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .then(|| number.parse().ok())
            .flatten()
    })
}

/// Parses one `-A CHAIN ...` rule (the words after the counters).
pub fn parse_rule(words: &[String], etc_protocols: &str) -> Rule {
    let mut r = Rule {
        target: String::new(),
        protocol: "0".into(),
        src_ip: "0.0.0.0".into(),
        src_mask: "0.0.0.0".into(),
        dst_ip: "0.0.0.0".into(),
        dst_mask: "0.0.0.0".into(),
        iniface: "all".into(),
        iniface_mask: String::new(),
        outiface: "all".into(),
        outiface_mask: String::new(),
        src_port: String::new(),
        dst_port: String::new(),
    };
    let bang = |inv: bool| if inv { "!" } else { "" };
    let mut proto_number = 0u8;
    let mut module = String::new();
    let (mut sport, mut dport) = (None::<String>, None::<String>);
    let mut port_module = false;
    let mut invert = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let arg = words.get(i + 1).cloned().unwrap_or_default();
        let mut consumed = 2;
        match w {
            "!" => {
                invert = true;
                i += 1;
                continue;
            }
            "-A" | "--append" => {}
            "-s" | "--source" => {
                let (a, m) = address_and_mask(&arg);
                r.src_ip = format!("{}{a}", bang(invert));
                r.src_mask = m;
            }
            "-d" | "--destination" => {
                let (a, m) = address_and_mask(&arg);
                r.dst_ip = format!("{}{a}", bang(invert));
                r.dst_mask = m;
            }
            "-i" | "--in-interface" => {
                r.iniface_mask = interface_mask(&arg);
                r.iniface = format!("{}{arg}", bang(invert));
            }
            "-o" | "--out-interface" => {
                r.outiface_mask = interface_mask(&arg);
                r.outiface = format!("{}{arg}", bang(invert));
            }
            "-p" | "--protocol" => {
                proto_number = arg
                    .parse::<u8>()
                    .ok()
                    .or_else(|| known_protocol(&arg))
                    .or_else(|| protocol_from_etc(etc_protocols, &arg))
                    .unwrap_or(0);
                r.protocol = format!("{}{proto_number}", bang(invert));
            }
            "-m" | "--match" => {
                module = arg.clone();
                if arg == "tcp" || arg == "udp" {
                    port_module = true;
                }
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                r.target = arg.clone();
                module.clear();
            }
            "--sport" | "--source-port" if module == "tcp" || module == "udp" => {
                sport = Some(port_range(&arg))
            }
            "--dport" | "--destination-port" if module == "tcp" || module == "udp" => {
                dport = Some(port_range(&arg))
            }
            "-f" | "--fragment" => consumed = 1,
            "-c" | "--set-counters" => consumed = 3,
            _ => consumed = 1,
        }
        invert = false;
        i += consumed;
    }
    if port_module && (proto_number == 6 || proto_number == 17) {
        r.src_port = sport.unwrap_or_else(|| "0:65535".into());
        r.dst_port = dport.unwrap_or_else(|| "0:65535".into());
    }
    r
}

/// `[packets:bytes]`.
fn counters(s: &str) -> Option<(i64, i64)> {
    let (p, b) = s.strip_prefix('[')?.strip_suffix(']')?.split_once(':')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

/// Parses `iptables-save [-c]` output into chains, tables and chains in order.
pub fn parse_save(text: &str, etc_protocols: &str) -> Vec<Chain> {
    let mut chains: Vec<Chain> = Vec::new();
    let mut table = String::new();
    let mut first_of_table = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_string();
            first_of_table = chains.len();
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut f = decl.split_whitespace();
            let name = f.next().unwrap_or("").to_string();
            let policy = f.next().unwrap_or("-");
            let (packets, bytes) = f.next().and_then(counters).unwrap_or((0, 0));
            let builtin = policy != "-";
            chains.push(Chain {
                table: table.clone(),
                name,
                policy: if builtin {
                    policy.to_string()
                } else {
                    String::new()
                },
                packets: if builtin { packets } else { 0 },
                bytes: if builtin { bytes } else { 0 },
                rules: Vec::new(),
            });
            continue;
        }
        // `[p:b] -A CHAIN ...` with -c, `-A CHAIN ...` without.
        let rest = match line.strip_prefix('[') {
            Some(_) => line.split_once(' ').map_or("", |(_, r)| r),
            None => line,
        };
        let words = split_words(rest);
        let Some(pos) = words.iter().position(|w| w == "-A" || w == "--append") else {
            continue;
        };
        let Some(chain_name) = words.get(pos + 1) else {
            continue;
        };
        let rule = parse_rule(&words, etc_protocols);
        let idx = match chains[first_of_table..]
            .iter()
            .position(|c| &c.name == chain_name)
        {
            Some(i) => first_of_table + i,
            None => {
                chains.push(Chain {
                    table: table.clone(),
                    name: chain_name.clone(),
                    ..Chain::default()
                });
                chains.len() - 1
            }
        };
        chains[idx].rules.push(rule);
    }
    chains
}

/// Runs `iptables-save -c`, trying the usual locations when it is not on the PATH.
fn run_save(ctx: &ScanContext<'_>) -> Result<CommandOutput, TableError> {
    let mut last = None;
    for program in PROGRAMS {
        match ctx.machine.commands.run(program, &ARGS) {
            Ok(out) => return Ok(out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(TableError::io("iptables", "running iptables-save -c", e)),
        }
    }
    Err(TableError::other(
        "iptables",
        format!(
            "iptables-save is not installed (looked for {}){}",
            PROGRAMS.join(", "),
            last.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    ))
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let out = run_save(ctx)?;
    if out.status != 0 {
        return Err(TableError::other(
            "iptables",
            format!(
                "iptables-save -c exited with status {}: {}",
                out.status,
                out.stderr.trim()
            ),
        ));
    }
    let etc_protocols = ctx
        .machine
        .fs
        .read_string(Path::new("/etc/protocols"))
        .unwrap_or_default();
    let mut rows = Vec::new();
    for chain in parse_save(&out.stdout, &etc_protocols) {
        let mut base = RowBuilder::new(COLUMNS);
        base.set("filter_name", chain.table.as_str())
            .set("chain", chain.name.as_str())
            .set("policy", chain.policy.as_str())
            .set("packets", chain.packets)
            .set("bytes", chain.bytes);
        for rule in &chain.rules {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("filter_name", chain.table.as_str())
                .set("chain", chain.name.as_str())
                .set("policy", chain.policy.as_str())
                .set("packets", chain.packets)
                .set("bytes", chain.bytes)
                .set("target", rule.target.as_str())
                .set("match", "yes")
                .set("src_port", rule.src_port.as_str())
                .set("dst_port", rule.dst_port.as_str())
                .set("protocol", rule.protocol.as_str())
                .set("iniface", rule.iniface.as_str())
                .set("outiface", rule.outiface.as_str())
                .set("src_ip", rule.src_ip.as_str())
                .set("dst_ip", rule.dst_ip.as_str())
                .set("src_mask", rule.src_mask.as_str())
                .set("dst_mask", rule.dst_mask.as_str())
                .set("iniface_mask", rule.iniface_mask.as_str())
                .set("outiface_mask", rule.outiface_mask.as_str());
            rows.push(r.build());
        }
        rows.push(base.build());
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

    fn words(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn splits_quoted_words() {
        assert_eq!(
            split_words(r#"-A INPUT -m comment --comment "allow \"ssh\" in" -j ACCEPT"#),
            vec![
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "allow \"ssh\" in",
                "-j",
                "ACCEPT"
            ]
        );
    }

    #[test]
    fn parses_rules_like_libiptc_reports_them() {
        let r = parse_rule(
            &words("-A INPUT -s 192.168.1.0/24 -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT"),
            "",
        );
        assert_eq!(
            (r.src_ip.as_str(), r.src_mask.as_str()),
            ("192.168.1.0", "255.255.255.0")
        );
        assert_eq!(
            (r.iniface.as_str(), r.iniface_mask.as_str()),
            ("eth0", "FFFFFFFFFF")
        );
        assert_eq!((r.outiface.as_str(), r.outiface_mask.as_str()), ("all", ""));
        assert_eq!(r.protocol, "6");
        assert_eq!(
            (r.src_port.as_str(), r.dst_port.as_str()),
            ("0:65535", "22:22")
        );
        assert_eq!(r.target, "ACCEPT");

        let r = parse_rule(
            &words("-A FORWARD ! -i docker0 -o docker+ ! -d 10.0.0.1/32 -j DROP"),
            "",
        );
        assert_eq!(
            (r.iniface.as_str(), r.iniface_mask.as_str()),
            ("!docker0", "FFFFFFFFFFFFFFFF")
        );
        assert_eq!(
            (r.outiface.as_str(), r.outiface_mask.as_str()),
            ("docker+", "FFFFFFFFFFFF")
        );
        assert_eq!(
            (r.dst_ip.as_str(), r.dst_mask.as_str()),
            ("!10.0.0.1", "255.255.255.255")
        );
        assert_eq!(r.protocol, "0");
        assert_eq!(r.src_port, "");

        let r = parse_rule(
            &words(
                "-A INPUT -p udp -m conntrack --ctstate NEW -m udp --sport 1024: --dport 60000:61000 -j ACCEPT",
            ),
            "",
        );
        assert_eq!(
            (r.src_port.as_str(), r.dst_port.as_str()),
            ("1024:65535", "60000:61000")
        );
        let r = parse_rule(
            &words("-A INPUT ! -p icmp -j LOG --log-prefix \"bad: \""),
            "",
        );
        assert_eq!((r.protocol.as_str(), r.target.as_str()), ("!1", "LOG"));
        let r = parse_rule(&words("-A INPUT -p ospf -g OSPF_IN"), "");
        assert_eq!((r.protocol.as_str(), r.target.as_str()), ("89", "OSPF_IN"));
        let r = parse_rule(
            &words("-A INPUT -p rsvp"),
            "rsvp\t46\tRSVP\t\t# Reservation Protocol\n",
        );
        assert_eq!((r.protocol.as_str(), r.target.as_str()), ("46", ""));
        assert_eq!(
            address_and_mask("10.1.0.0/255.255.0.0"),
            ("10.1.0.0".into(), "255.255.0.0".into())
        );
        assert_eq!(
            address_and_mask("0.0.0.0/0"),
            ("0.0.0.0".into(), "0.0.0.0".into())
        );
    }

    #[test]
    fn reads_recorded_ruleset() {
        let engine = Engine::new(fixture("iptables")).unwrap();
        let chains = engine
            .query("SELECT filter_name, chain, policy, packets, bytes FROM iptables WHERE target IS NULL")
            .unwrap();
        assert_eq!(
            chains.rows,
            vec![
                vec![
                    text("filter"),
                    text("INPUT"),
                    text("DROP"),
                    Value::Integer(1024),
                    Value::Integer(61440)
                ],
                vec![
                    text("filter"),
                    text("FORWARD"),
                    text("DROP"),
                    Value::Integer(0),
                    Value::Integer(0)
                ],
                vec![
                    text("filter"),
                    text("OUTPUT"),
                    text("ACCEPT"),
                    Value::Integer(88231),
                    Value::Integer(9120044)
                ],
                vec![
                    text("filter"),
                    text("f2b-sshd"),
                    text(""),
                    Value::Integer(0),
                    Value::Integer(0)
                ],
                vec![
                    text("nat"),
                    text("PREROUTING"),
                    text("ACCEPT"),
                    Value::Integer(12),
                    Value::Integer(720)
                ],
                vec![
                    text("nat"),
                    text("INPUT"),
                    text("ACCEPT"),
                    Value::Integer(0),
                    Value::Integer(0)
                ],
                vec![
                    text("nat"),
                    text("OUTPUT"),
                    text("ACCEPT"),
                    Value::Integer(310),
                    Value::Integer(23021)
                ],
                vec![
                    text("nat"),
                    text("POSTROUTING"),
                    text("ACCEPT"),
                    Value::Integer(310),
                    Value::Integer(23021)
                ],
            ]
        );
        let ssh = engine
            .query(
                "SELECT policy, target, protocol, src_port, dst_port, src_ip, src_mask, iniface, iniface_mask, match, packets \
                 FROM iptables WHERE filter_name = 'filter' AND chain = 'INPUT' AND dst_port = '22:22'",
            )
            .unwrap();
        assert_eq!(
            ssh.rows,
            vec![vec![
                text("DROP"),
                text("ACCEPT"),
                Value::Integer(6),
                text("0:65535"),
                text("22:22"),
                text("0.0.0.0"),
                text("0.0.0.0"),
                text("all"),
                text(""),
                text("yes"),
                Value::Integer(1024)
            ]]
        );
        let rules = engine
            .query("SELECT target FROM iptables WHERE chain = 'INPUT' AND filter_name = 'filter'")
            .unwrap();
        let targets: Vec<&Value> = rules.rows.iter().map(|r| &r[0]).collect();
        assert_eq!(
            targets,
            vec![
                &text("f2b-sshd"),
                &text("ACCEPT"),
                &text("ACCEPT"),
                &text("DROP"),
                &text("ACCEPT"),
                &text("ACCEPT"),
                &Value::Null
            ]
        );
        let lo = engine
            .query("SELECT iniface, iniface_mask FROM iptables WHERE chain = 'INPUT' AND iniface = 'lo'")
            .unwrap();
        assert_eq!(lo.rows, vec![vec![text("lo"), text("FFFFFF")]]);
        let ban = engine.query("SELECT src_ip, src_mask, target FROM iptables WHERE chain = 'f2b-sshd' AND target = 'REJECT'").unwrap();
        assert_eq!(
            ban.rows,
            vec![vec![
                text("203.0.113.7"),
                text("255.255.255.255"),
                text("REJECT")
            ]]
        );
        let masq = engine
            .query("SELECT outiface, src_ip, src_mask FROM iptables WHERE target = 'MASQUERADE'")
            .unwrap();
        assert_eq!(
            masq.rows,
            vec![vec![
                text("!docker0"),
                text("172.17.0.0"),
                text("255.255.0.0")
            ]]
        );
    }

    #[test]
    fn missing_command_is_an_error_naming_it() {
        // A recording without iptables-save: every candidate is "not in the recording".
        let engine = Engine::new(fixture("interface_addresses")).unwrap();
        let err = engine
            .query("SELECT * FROM iptables")
            .unwrap_err()
            .to_string();
        assert!(err.contains("iptables-save"), "{err}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn runs_on_this_machine() {
        // iptables may be missing, or need privileges: then the error names it.
        let engine = Engine::new(Machine::real()).unwrap();
        match engine.query("SELECT chain, policy FROM iptables WHERE target IS NULL") {
            Ok(r) => {
                for row in &r.rows {
                    assert!(matches!(&row[0], Value::Text(c) if !c.is_empty()));
                }
            }
            Err(e) => assert!(e.to_string().contains("iptables-save"), "{e}"),
        }
    }
}
