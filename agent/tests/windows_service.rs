//! `tend.exe run --service` as a real Windows service (run under Wine in the
//! test command): registered with `sc create`, started with `sc start`,
//! asked for its checks over the named pipe by `tend.exe status`, re-checking
//! a failing check when the registry value it read changes, and stopped and
//! removed with `sc stop` / `sc delete`; then, with a policy that does not
//! parse, stopping with a service-specific error.
//!
//! The config comes from where Group Policy puts it
//! (`HKLM\SOFTWARE\Policies\Tend`), the policy from a file: nothing needs
//! the network.

#![cfg(windows)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The service's name: the one the MSI registers.
const SERVICE: &str = "tend";
const CONFIG_KEY: &str = r"HKLM\SOFTWARE\Policies\Tend";
const FIREWALL_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile";

/// Turns the standard profile's firewall on or off in the registry.
fn set_firewall(on: bool) {
    let value = if on { "1" } else { "0" };
    ok(
        "reg",
        &[
            "add",
            FIREWALL_KEY,
            "/v",
            "EnableFirewall",
            "/t",
            "REG_DWORD",
            "/d",
            value,
            "/f",
        ],
    );
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The service's state as `sc query` prints it (`RUNNING`, `STOPPED`, ...).
fn sc_state() -> Option<String> {
    let out = run("sc", &["query", SERVICE]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.trim_start().starts_with("STATE"))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_string)
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Windows path for `p` (the test binary may know tend.exe by its Unix
/// path, which the service manager would not resolve).
fn windows_path(p: &Path) -> String {
    let full = std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let s = full.display().to_string();
    s.strip_prefix(r"\\?\").unwrap_or(&s).to_string()
}

fn policy() -> String {
    serde_json::json!({
        "version": 1,
        "serial": 1,
        "name": "service test",
        "checks": [{
            "id": "firewall",
            "name": "Firewall enabled",
            "severity": "high",
            "interval": "1h",
            "query": { "windows": format!(
                "SELECT COUNT(*) AS passed FROM registry WHERE key = 'HKEY_LOCAL_MACHINE\\{}' AND name = 'EnableFirewall' AND data = '1';",
                &FIREWALL_KEY[5..]
            ) },
            "remediation": { "windows": "Turn the firewall on." }
        }]
    })
    .to_string()
}

/// Removes the service and the config key even when the test fails.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        if sc_state().is_some_and(|s| s != "STOPPED") {
            let _ = run("sc", &["stop", SERVICE]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while sc_state().is_some_and(|s| s != "STOPPED") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let _ = run("sc", &["delete", SERVICE]);
        let _ = run("reg", &["delete", CONFIG_KEY, "/f"]);
    }
}

fn status(pipe: &str) -> Value {
    let out = run(
        env!("CARGO_BIN_EXE_tend"),
        &["status", "--socket", pipe, "--format", "json"],
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tend status: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn firewall(v: &Value) -> String {
    v["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "firewall"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_service_starts_serves_rechecks_and_stops() {
    // A service left over by an interrupted run.
    drop(Cleanup);
    let _cleanup = Cleanup;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let policy_file: PathBuf = dir.path().join("policy.json");
    std::fs::write(&policy_file, policy()).unwrap();
    let pipe = format!(r"\\.\pipe\tend-service-test-{}", std::process::id());

    // The config as Group Policy writes it.
    ok(
        "reg",
        &[
            "add",
            CONFIG_KEY,
            "/v",
            "state_dir",
            "/t",
            "REG_SZ",
            "/d",
            &format!(r"{}\state", windows_path(dir.path())),
            "/f",
        ],
    );
    set_firewall(false);

    let bin = format!(
        "\"{}\" run --service --policy \"{}\" --socket {pipe}",
        windows_path(Path::new(env!("CARGO_BIN_EXE_tend"))),
        windows_path(&policy_file)
    );
    ok(
        "sc",
        &["create", SERVICE, "binPath=", &bin, "start=", "demand"],
    );
    ok("sc", &["start", SERVICE]);
    wait_until(Duration::from_secs(60), "RUNNING", || {
        sc_state().as_deref() == Some("RUNNING")
    });

    // Over the named pipe: the check ran and failed.
    let mut last = Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the firewall check to fail",
        || {
            last = status(&pipe);
            firewall(&last) == "failed"
        },
    );
    assert_eq!(last["policy"]["name"], "service test", "{last}");
    assert!(
        state.is_dir(),
        "the state directory from the registry config: {state:?}"
    );

    // Fixed in the registry: seen without waiting for the hour's interval.
    set_firewall(true);
    wait_until(Duration::from_secs(20), "the fix to be seen", || {
        last = status(&pipe);
        firewall(&last) == "passed"
    });

    ok("sc", &["stop", SERVICE]);
    wait_until(Duration::from_secs(30), "STOPPED", || {
        sc_state().as_deref() == Some("STOPPED")
    });
    ok("sc", &["delete", SERVICE]);
    assert_eq!(sc_state(), None, "the service is gone");

    // A policy that does not parse: the service stops with a
    // service-specific error (the reason goes to the event log) rather
    // than timing out its start.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"version": 1}"#).unwrap();
    let bin = format!(
        "\"{}\" run --service --policy \"{}\" --socket {pipe}",
        windows_path(Path::new(env!("CARGO_BIN_EXE_tend"))),
        windows_path(&bad)
    );
    ok(
        "sc",
        &["create", SERVICE, "binPath=", &bin, "start=", "demand"],
    );
    let _ = run("sc", &["start", SERVICE]);
    wait_until(
        Duration::from_secs(60),
        "STOPPED after the bad policy",
        || sc_state().as_deref() == Some("STOPPED"),
    );
    let query = ok("sc", &["query", SERVICE]);
    assert!(
        query.contains("1066") && query.contains("SERVICE_EXIT_CODE  : 1"),
        "ERROR_SERVICE_SPECIFIC_ERROR, code 1: {query}"
    );
    ok("sc", &["delete", SERVICE]);
}
