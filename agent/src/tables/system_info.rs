//! `system_info`: the machine's name, identity, CPU, memory and DMI strings
//! (osquery's `system_info`).
//!
//! - `hostname`/`local_hostname`: osquery's FQDN, which is the canonical name
//!   `getaddrinfo(AI_CANONNAME)` gives for the kernel hostname. Tend resolves
//!   it the way glibc's `files` source does, from `/etc/hosts` (the first name
//!   of the line that lists the hostname); names only DNS knows stay short.
//!   `computer_name` is the kernel hostname (`/proc/sys/kernel/hostname`).
//! - `uuid`: `/sys/class/dmi/id/product_uuid`, as osquery's host UUID, unless
//!   it is missing or one of the firmware placeholders osquery rejects. Then
//!   osquery invents a random UUID and stores it in its database; Tend has no
//!   database, so it formats `/etc/machine-id` as a UUID instead, which is as
//!   stable and needs no state.
//! - `cpu_*`: `/proc/cpuinfo` (`model name` is the CPUID brand string osquery
//!   reads on x86_64; `model` and `microcode` as osquery takes them), logical
//!   cores from `/sys/devices/system/cpu/online` (what `get_nprocs` counts),
//!   physical cores as Boost counts them (distinct `physical id`/`core id`
//!   pairs), `cpu_type` from `uname`.
//! - `physical_memory`: `MemTotal` of `/proc/meminfo`, which is the
//!   `_SC_PHYS_PAGES * _SC_PAGESIZE` osquery multiplies out.
//! - `hardware_*`/`board_*`: the SMBIOS system and baseboard strings, which
//!   the kernel exports in `/sys/class/dmi/id/` (osquery parses the raw SMBIOS
//!   table, readable by root only). Lenovo's model and version are swapped as
//!   osquery does. A string the kernel does not show to this user (serials,
//!   for non-root) is NULL.

use std::collections::BTreeSet;
use std::path::Path;

use crate::os::Fs;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::read_optional;

mod macos;
mod windows;

pub static TABLE: TableDef = TableDef {
    name: "system_info",
    columns: COLUMNS,
    platforms: Platforms::LINUX
        .union(Platforms::MACOS)
        .union(Platforms::WINDOWS),
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("hostname"),
    col::text("uuid"),
    col::text("cpu_type"),
    col::text("cpu_subtype"),
    col::text("cpu_brand"),
    col::integer("cpu_physical_cores"),
    col::integer("cpu_logical_cores"),
    col::integer("cpu_sockets"),
    col::text("cpu_microcode"),
    col::bigint("physical_memory"),
    col::text("hardware_vendor"),
    col::text("hardware_model"),
    col::text("hardware_version"),
    col::text("hardware_serial"),
    col::text("board_vendor"),
    col::text("board_model"),
    col::text("board_version"),
    col::text("board_serial"),
    col::text("computer_name"),
    col::text("local_hostname"),
    col::text("emulated_cpu_type").on(Platforms::WINDOWS),
];

const TABLE_NAME: &str = "system_info";
const DMI_DIR: &str = "/sys/class/dmi/id";

/// SMBIOS UUIDs that firmware ships unset; osquery does not take them as the host's.
const PLACEHOLDER_UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "03000200-0400-0500-0006-000700080009",
    "03020100-0504-0706-0809-0a0b0c0d0e0f",
    "10000000-0000-8000-0040-000000000000",
];

/// Splits like osquery's `split(s, delims)`: on any of `delims`, dropping
/// empty pieces, then trimming each (a piece of only blanks stays, as "").
pub(crate) fn osquery_split(s: &str, delims: &[char]) -> Vec<String> {
    s.split(|c| delims.contains(&c))
        .filter(|p| !p.is_empty())
        .map(|p| p.trim().to_string())
        .collect()
}

/// The machine's UUID as osquery's `system_info` and `osquery_info` give it.
pub fn host_uuid(fs: &dyn Fs) -> Option<String> {
    if let Ok(raw) = fs.read_string(Path::new("/sys/class/dmi/id/product_uuid")) {
        let uuid = raw.split('\0').next().unwrap_or("").trim().to_string();
        if !uuid.is_empty()
            && !PLACEHOLDER_UUIDS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&uuid))
        {
            return Some(uuid);
        }
    }
    let id = fs.read_string(Path::new("/etc/machine-id")).ok()?;
    machine_id_uuid(&id)
}

/// `/etc/machine-id` (32 hex digits) in UUID form.
pub fn machine_id_uuid(id: &str) -> Option<String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    ))
}

/// What osquery takes from `/proc/cpuinfo`.
#[derive(Debug, Default, PartialEq)]
pub struct CpuInfo {
    pub brand: Option<String>,
    /// `model` (the family's model number); osquery's default is "0".
    pub subtype: Option<String>,
    pub microcode: Option<String>,
    /// Logical CPUs per socket.
    pub siblings: Option<i64>,
    pub processors: i64,
    /// Distinct (physical id, core id) pairs, or `None` where Boost would
    /// fall back to the logical count.
    pub physical_cores: Option<i64>,
}

/// Parses `/proc/cpuinfo`. Later processor blocks overwrite earlier ones, as
/// in osquery (whose line splitter drops the blank separator lines).
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cores = BTreeSet::new();
    let mut physical_ok = true;
    let mut physical_id: u32 = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parts = osquery_split(line, &[':']);
        if line.starts_with("model\t") && parts.len() == 2 {
            info.subtype = Some(parts[1].clone());
        } else if line.starts_with("microcode") && parts.len() == 2 {
            info.microcode = Some(parts[1].clone());
        } else if line.starts_with("siblings") && parts.len() == 2 {
            info.siblings = parts[1].parse().ok();
        }
        if let Some(rest) = line.strip_prefix("model name")
            && let Some((_, brand)) = rest.split_once(':')
        {
            info.brand = Some(brand.trim().to_string());
        }
        // Boost's physical_concurrency: every line must be `key: value`.
        let pieces: Vec<&str> = line.split(':').collect();
        if pieces.len() != 2 {
            physical_ok = false;
            continue;
        }
        let (key, value) = (pieces[0].trim(), pieces[1].trim());
        match key {
            "processor" => info.processors += 1,
            "physical id" => match value.parse() {
                Ok(v) => physical_id = v,
                Err(_) => physical_ok = false,
            },
            "core id" => match value.parse::<u32>() {
                Ok(v) => {
                    cores.insert((physical_id, v));
                }
                Err(_) => physical_ok = false,
            },
            _ => {}
        }
    }
    if physical_ok && !cores.is_empty() {
        info.physical_cores = Some(cores.len() as i64);
    }
    info
}

/// Counts a kernel CPU list such as `0-3,8-11`.
pub fn count_cpu_list(list: &str) -> Option<i64> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b - a + 1;
            }
            None => {
                part.trim().parse::<i64>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub fn mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i64 = line["MemTotal:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The canonical name of `host` in an /etc/hosts text: the first name of the
/// first line that lists it (what glibc's `files` source gives as canonname).
pub fn canonical_name(hosts: &str, host: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        fields.next()?; // the address
        let names: Vec<&str> = fields.collect();
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(host))
            .then(|| names[0].to_string())
    })
}

fn read_trimmed(fs: &dyn Fs, path: &str) -> Option<String> {
    fs.read_string(Path::new(path))
        .ok()
        .map(|s| s.trim().to_string())
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    if ctx.platform() == crate::sql::table::Platform::Macos {
        return macos::generate(ctx, constraints);
    }
    if ctx.platform() == crate::sql::table::Platform::Windows {
        return windows::generate(ctx, constraints);
    }
    let m = ctx.machine;
    let fs = m.fs.as_ref();
    let uname = m.host.uname().ok();
    let mut r = RowBuilder::new(COLUMNS);

    let short = read_trimmed(fs, "/proc/sys/kernel/hostname")
        .or_else(|| uname.as_ref().map(|u| u.nodename.trim().to_string()))
        .unwrap_or_default();
    let hosts = read_optional(fs, Path::new("/etc/hosts"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /etc/hosts", e))?
        .unwrap_or_default();
    let fqdn = canonical_name(&hosts, &short).unwrap_or_else(|| short.clone());
    r.set("hostname", fqdn.as_str())
        .set("local_hostname", fqdn.as_str())
        .set("computer_name", short);
    r.set("uuid", host_uuid(fs).unwrap_or_default());

    let cpuinfo = read_optional(fs, Path::new("/proc/cpuinfo"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /proc/cpuinfo", e))?
        .map(|t| parse_cpuinfo(&t))
        .unwrap_or_default();
    let logical = read_trimmed(fs, "/sys/devices/system/cpu/online")
        .and_then(|l| count_cpu_list(&l))
        .or((cpuinfo.processors > 0).then_some(cpuinfo.processors))
        .unwrap_or(-1);
    r.set("cpu_logical_cores", logical)
        .set(
            "cpu_physical_cores",
            cpuinfo.physical_cores.unwrap_or(logical),
        )
        .set("cpu_subtype", cpuinfo.subtype.unwrap_or_else(|| "0".into()))
        .set_opt("cpu_brand", cpuinfo.brand)
        .set_opt("cpu_microcode", cpuinfo.microcode)
        .set_opt("cpu_type", uname.map(|u| u.machine));
    if let Some(siblings) = cpuinfo.siblings {
        r.set(
            "cpu_sockets",
            if logical > 0 && siblings > 0 {
                logical / siblings
            } else {
                -1
            },
        );
    }

    let memory = read_optional(fs, Path::new("/proc/meminfo"))
        .map_err(|e| TableError::io(TABLE_NAME, "reading /proc/meminfo", e))?
        .and_then(|t| mem_total(&t));
    r.set("physical_memory", memory.unwrap_or(-1));

    set_dmi(fs, &mut r);
    Ok(vec![r.build()])
}

/// The SMBIOS system (type 1) and baseboard (type 2) strings.
fn set_dmi(fs: &dyn Fs, r: &mut RowBuilder) {
    if !fs.exists(Path::new(DMI_DIR)) {
        // osquery: no SMBIOS table found.
        r.set("hardware_model", "");
        return;
    }
    let dmi = |file: &str| match fs.read_string(&Path::new(DMI_DIR).join(file)) {
        Ok(s) => Some(s.trim().to_string()),
        // The kernel shows no file for a string the firmware left out.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(String::new()),
        Err(_) => None,
    };
    let vendor = dmi("sys_vendor");
    let (mut model, mut version) = (dmi("product_name"), dmi("product_version"));
    if vendor
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("lenovo"))
    {
        // Lenovo puts the model name in Version and a SKU in Product Name.
        std::mem::swap(&mut model, &mut version);
    }
    r.set_opt("hardware_vendor", vendor)
        .set_opt("hardware_model", model)
        .set_opt("hardware_version", version)
        .set_opt("hardware_serial", dmi("product_serial"))
        .set_opt("board_vendor", dmi("board_vendor"))
        .set_opt("board_model", dmi("board_name"))
        .set_opt("board_version", dmi("board_version"))
        .set_opt("board_serial", dmi("board_serial"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn machine_id_becomes_a_uuid() {
        assert_eq!(
            machine_id_uuid("3d1219c7c4c5404aaa1f6d2a48adfda4\n").as_deref(),
            Some("3d1219c7-c4c5-404a-aa1f-6d2a48adfda4")
        );
        assert_eq!(machine_id_uuid("uninitialized\n"), None);
    }

    #[test]
    fn cpu_lists_and_meminfo() {
        assert_eq!(count_cpu_list("0-3,8-11\n"), Some(8));
        assert_eq!(count_cpu_list("0\n"), Some(1));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(
            mem_total("MemTotal:       16314676 kB\nMemFree: 1 kB\n"),
            Some(16_314_676 * 1024)
        );
    }

    #[test]
    fn canonical_names_come_from_etc_hosts() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1\tws-042.corp.example.com ws-042 # me\n";
        assert_eq!(
            canonical_name(hosts, "ws-042").as_deref(),
            Some("ws-042.corp.example.com")
        );
        assert_eq!(canonical_name(hosts, "other"), None);
    }

    #[test]
    fn reads_a_recorded_laptop() {
        let engine = crate::sql::Engine::new(fixture("system_info")).unwrap();
        let res = engine.query("SELECT * FROM system_info").unwrap();
        assert_eq!(res.rows.len(), 1);
        let text = |c: &str| match res.get(0, c) {
            Some(Value::Text(s)) => s.clone(),
            other => panic!("{c}: {other:?}"),
        };
        let int = |c: &str| match res.get(0, c) {
            Some(Value::Integer(i)) => *i,
            other => panic!("{c}: {other:?}"),
        };
        assert_eq!(text("hostname"), "ws-042.corp.example.com");
        assert_eq!(text("local_hostname"), "ws-042.corp.example.com");
        assert_eq!(text("computer_name"), "ws-042");
        assert_eq!(text("uuid"), "b5e2f8c4-2a3d-11b2-a85c-d7e3a1c9f0b1");
        assert_eq!(text("cpu_type"), "x86_64");
        assert_eq!(text("cpu_subtype"), "140");
        assert_eq!(
            text("cpu_brand"),
            "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz"
        );
        assert_eq!(text("cpu_microcode"), "0xb4");
        assert_eq!(int("cpu_logical_cores"), 4);
        assert_eq!(int("cpu_physical_cores"), 2);
        assert_eq!(int("cpu_sockets"), 1);
        assert_eq!(int("physical_memory"), 16_314_676 * 1024);
        // Lenovo: model and version swapped back.
        assert_eq!(text("hardware_vendor"), "LENOVO");
        assert_eq!(text("hardware_model"), "ThinkPad X1 Carbon Gen 9");
        assert_eq!(text("hardware_version"), "20XW0055US");
        assert_eq!(text("hardware_serial"), "PF3ABCDE");
        assert_eq!(text("board_vendor"), "LENOVO");
        assert_eq!(text("board_model"), "20XW0055US");
        assert_eq!(text("board_version"), "SDK0J40697 WIN");
        assert_eq!(text("board_serial"), "L1HF1AB0CDE");
    }

    #[test]
    fn placeholder_uuid_falls_back_to_machine_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("snapshot.json"),
            r#"{"format": 1, "platform": "linux"}"#,
        )
        .unwrap();
        let dmi = dir.path().join("root/sys/class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        std::fs::write(
            dmi.join("product_uuid"),
            "03000200-0400-0500-0006-000700080009\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("root/etc")).unwrap();
        std::fs::write(
            dir.path().join("root/etc/machine-id"),
            "3d1219c7c4c5404aaa1f6d2a48adfda4\n",
        )
        .unwrap();
        let m = Machine::snapshot(dir.path()).unwrap();
        assert_eq!(
            host_uuid(m.fs.as_ref()).as_deref(),
            Some("3d1219c7-c4c5-404a-aa1f-6d2a48adfda4")
        );
    }

    #[test]
    fn reads_this_machine() {
        let engine = crate::sql::Engine::new(Machine::real()).unwrap();
        let res = engine
            .query("SELECT hostname, cpu_logical_cores, physical_memory FROM system_info")
            .unwrap();
        assert_eq!(res.rows.len(), 1);
        assert!(matches!(res.get(0, "hostname"), Some(Value::Text(h)) if !h.is_empty()));
        assert!(matches!(res.get(0, "cpu_logical_cores"), Some(Value::Integer(n)) if *n >= 1));
        assert!(matches!(res.get(0, "physical_memory"), Some(Value::Integer(n)) if *n > 0));
    }
}
