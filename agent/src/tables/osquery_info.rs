//! `osquery_info`: the running agent, Tend, in osquery's `osquery_info` shape.
//!
//! Most columns describe this process, not the machine read: `pid`, a random
//! `instance_id` made once per process, `version` (Tend's), `start_time`
//! (when this process started), `build_platform` (the target it was built
//! for) and `build_distro` `tend`. Tend has no osquery configuration or
//! extensions: `config_hash` is empty, `config_valid` 1, `extensions`
//! `inactive`, `watcher` -1. `uuid` is the machine's, as `system_info` gives
//! it, and `platform_mask` osquery's bits for the machine's platform (posix 1,
//! windows 2, linux 8, macOS 16: Linux is 9).

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::system_info::host_uuid;
use crate::sql::table::{
    Column, Constraints, Platform, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError,
    col,
};

pub static TABLE: TableDef = TableDef {
    name: "osquery_info",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("pid"),
    col::text("uuid"),
    col::text("instance_id"),
    col::text("version"),
    col::text("config_hash"),
    col::integer("config_valid"),
    col::text("extensions"),
    col::text("build_platform"),
    col::text("build_distro"),
    col::integer("start_time"),
    col::integer("watcher"),
    col::integer("platform_mask"),
];

const BUILD_PLATFORM: &str = if cfg!(target_os = "windows") {
    "windows"
} else if cfg!(target_os = "macos") {
    "darwin"
} else {
    "linux"
};

/// osquery's `kPlatformType` bits for a machine of `platform`.
pub fn platform_mask(platform: Platform) -> i64 {
    const POSIX: i64 = 1;
    const WINDOWS: i64 = 2;
    const LINUX: i64 = 8;
    const OSX: i64 = 16;
    match platform {
        Platform::Linux => POSIX | LINUX,
        Platform::Macos => POSIX | OSX,
        Platform::Windows => WINDOWS,
    }
}

/// 16 random bytes as a version 4 UUID.
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Random bytes for this process's instance id. They are about Tend itself,
/// so they come from this host (the kernel's generator), never a recording.
fn random_bytes() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut b = [0u8; 16];
    let from_kernel = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if from_kernel.is_err() {
        // No /dev/urandom (Windows): std seeds each RandomState from the OS generator.
        for half in b.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b
}

fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid_v4(random_bytes()))
}

/// When this process started, in Unix seconds.
fn start_time() -> i64 {
    static START: OnceLock<i64> = OnceLock::new();
    *START.get_or_init(|| {
        process_start().unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
    })
}

/// This process's start: boot time plus field 22 of `/proc/self/stat`.
#[cfg(target_os = "linux")]
fn process_start() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: i64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| btime + ticks / hz as i64)
}

#[cfg(not(target_os = "linux"))]
fn process_start() -> Option<i64> {
    None
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("pid", i64::from(std::process::id()))
        .set(
            "uuid",
            host_uuid(ctx.machine.fs.as_ref()).unwrap_or_default(),
        )
        .set("instance_id", instance_id())
        .set("version", env!("CARGO_PKG_VERSION"))
        .set("config_hash", "")
        .set("config_valid", 1)
        .set("extensions", "inactive")
        .set("build_platform", BUILD_PLATFORM)
        .set("build_distro", "tend")
        .set("start_time", start_time())
        .set("watcher", -1)
        .set("platform_mask", platform_mask(ctx.platform()));
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn uuid_v4_sets_version_and_variant() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn masks() {
        assert_eq!(platform_mask(Platform::Linux), 9);
        assert_eq!(platform_mask(Platform::Macos), 17);
        assert_eq!(platform_mask(Platform::Windows), 2);
    }

    #[test]
    fn describes_this_process_and_the_recorded_machine() {
        let engine = crate::sql::Engine::new(fixture("system_info")).unwrap();
        let res = engine.query("SELECT * FROM osquery_info").unwrap();
        let get = |c: &str| res.get(0, c).cloned();
        assert_eq!(
            get("pid"),
            Some(Value::Integer(i64::from(std::process::id())))
        );
        assert_eq!(
            get("uuid"),
            Some(Value::Text("b5e2f8c4-2a3d-11b2-a85c-d7e3a1c9f0b1".into()))
        );
        assert_eq!(
            get("version"),
            Some(Value::Text(env!("CARGO_PKG_VERSION").into()))
        );
        assert_eq!(get("config_hash"), Some(Value::Text(String::new())));
        assert_eq!(get("config_valid"), Some(Value::Integer(1)));
        assert_eq!(get("extensions"), Some(Value::Text("inactive".into())));
        assert_eq!(get("build_distro"), Some(Value::Text("tend".into())));
        assert_eq!(get("watcher"), Some(Value::Integer(-1)));
        assert_eq!(get("platform_mask"), Some(Value::Integer(9)));
        let Some(Value::Text(id)) = get("instance_id") else {
            panic!("no instance_id")
        };
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        // The same id for the whole process.
        let again = engine
            .query("SELECT instance_id FROM osquery_info")
            .unwrap();
        assert_eq!(again.get(0, "instance_id"), Some(&Value::Text(id)));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            matches!(get("start_time"), Some(Value::Integer(t)) if t > 1_600_000_000 && t <= now)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        let res = engine
            .query("SELECT build_platform FROM osquery_info")
            .unwrap();
        assert_eq!(
            res.get(0, "build_platform"),
            Some(&Value::Text(BUILD_PLATFORM.into()))
        );
    }
}
