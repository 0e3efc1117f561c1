//! Benchmarks: the default policy in-process, opening an engine, and a full
//! scan of every table Tend implements on Linux.
//!
//! `cargo bench -p tend --bench engine`. Whole-process timings of `tend check`
//! are taken with hyperfine (see the issue notes for the commands).

use std::path::PathBuf;

use tend::checks;
use tend::os::Machine;
use tend::policy::default_policy;
use tend::sql::Engine;

fn main() {
    divan::main();
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

/// The built-in policy on this machine, engine already open (what the daemon does per cycle).
#[divan::bench]
fn default_policy_live(bencher: divan::Bencher) {
    let engine = Engine::new(Machine::real()).unwrap();
    let policy = default_policy();
    bencher.bench_local(|| checks::evaluate_all(&engine, &policy));
}

/// The built-in policy on the recorded compliant laptop.
#[divan::bench]
fn default_policy_recorded(bencher: divan::Bencher) {
    let machine = Machine::snapshot(&fixture("machines/linux-compliant")).unwrap();
    let engine = Engine::new(machine).unwrap();
    let policy = default_policy();
    bencher.bench_local(|| checks::evaluate_all(&engine, &policy));
}

/// Opening an engine: one connection, every osquery table registered.
#[divan::bench]
fn engine_open() -> Engine {
    Engine::new(Machine::real()).unwrap()
}

/// The query that scans a whole table (with the constraint a required column needs).
fn scan_sql(table: &str) -> String {
    let pid = std::process::id();
    match table {
        "file" | "extended_attributes" => {
            "SELECT * FROM file WHERE directory = '/etc'".replace("file", table)
        }
        "hash" => "SELECT * FROM hash WHERE directory = '/etc/apt'".into(),
        "file_lines" => "SELECT * FROM file_lines WHERE path = '/etc/passwd'".into(),
        "magic" => "SELECT * FROM magic WHERE path = '/bin/sh'".into(),
        "plist" => format!(
            "SELECT * FROM plist WHERE path = '{}'",
            fixture("tables/plist/root/Library/Preferences/com.apple.SoftwareUpdate.plist")
                .display()
        ),
        "process_memory_map" => format!("SELECT * FROM process_memory_map WHERE pid = {pid}"),
        "augeas" => "SELECT * FROM augeas WHERE path = '/etc/hosts'".into(),
        other => format!("SELECT * FROM {other}"),
    }
}

fn linux_tables() -> Vec<&'static str> {
    tend::tables::all()
        .iter()
        .filter(|t| t.platforms.contains(tend::sql::table::Platform::Linux))
        .map(|t| t.name)
        .collect()
}

/// A full scan of each table on this machine.
#[divan::bench(args = linux_tables())]
fn scan(bencher: divan::Bencher, table: &str) {
    let engine = Engine::new(Machine::real()).unwrap();
    let sql = scan_sql(table);
    bencher.bench_local(|| engine.query(&sql));
}
