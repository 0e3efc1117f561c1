//! Helpers for Tend's end-to-end tests: find the `tend` binary that cargo
//! built for this test run, run it, and locate the recorded machines; and,
//! for the policy-fetch tests, an HTTPS server on loopback ([`https`]) and
//! minisign keys ([`signing`]); for the daemon tests, `tend run` as a
//! process ([`daemon`]) and an HTTPS event collector ([`collector`]); for
//! reaching the user, a private D-Bus bus with a notification server
//! ([`dbus`]) and a Slack-compatible Web API server ([`slack`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod collector;
#[cfg(unix)]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod dbus;
#[cfg(unix)]
pub mod device;
pub mod https;
pub mod loopback;
pub mod reach;
pub mod signing;
pub mod slack;

/// The `tend` binary of this build (`target/<profile>/tend`).
///
/// `cargo test --workspace` builds every package's binaries before running
/// any test, so it sits next to the directory holding this test executable.
pub fn tend_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let bin = profile_dir.join(format!("tend{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p tend`) or run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `tend` with arguments and returns its output.
pub fn tend(args: &[&str]) -> Output {
    Command::new(tend_bin())
        .args(args)
        .env_remove("TEND_LOG")
        .output()
        .expect("tend runs")
}

/// A fixture directory under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The seed's queries (`shared/reference/seed-queries.sql`, copied into the
/// repository so the clone tests without `../shared`), each with its comment.
pub fn seed_queries() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(fixture("seed-queries.sql")).expect("seed queries are in the repo");
    let mut out = Vec::new();
    let mut title = String::new();
    let mut sql = String::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("-- ") {
            if sql.is_empty() {
                title = c.to_string();
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
        if line.trim_end().ends_with(';') {
            out.push((title.clone(), std::mem::take(&mut sql)));
        }
    }
    out
}

/// `tend check --format json` with extra arguments: the exit code and the document.
pub fn check_json(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let o = tend(&all);
    let doc = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    (o.status.code(), doc)
}

/// `tend check --format json --snapshot tests/fixtures/<dir>`.
pub fn check_fixture(dir: &str) -> (Option<i32>, serde_json::Value) {
    let dir = fixture(dir);
    check_json(&["--snapshot", dir.to_str().expect("fixture paths are UTF-8")])
}

/// Each check's id and status, in policy order.
pub fn statuses(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .expect("a check document has checks")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Owned pairs, to compare with [`statuses`].
pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Polls `f` until it gives a value, failing the test after `limit` with
/// what it was waiting for.
pub fn wait_until<T>(
    limit: std::time::Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A small xorshift generator for the crash tests' timings: `rand(n)` is in
/// `0..n`. Seeded from the clock, and the seed is printed (as "`what` seed
/// N") so a failing run's timings can be read back.
pub fn clock_seeded_rand(what: &str) -> impl FnMut(u64) -> u64 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("{what} seed {seed}");
    move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}
