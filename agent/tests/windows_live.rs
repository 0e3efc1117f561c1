//! The registry table on a real Windows registry (run under Wine in the test
//! command): values written with `reg.exe` are read back, and the seed's two
//! registry queries follow the machine as it changes — in-process and through
//! `tend.exe query`.

#![cfg(windows)]

use std::process::Command;

use tend::os::Machine;
use tend::sql::{Engine, Value};

fn reg(args: &[&str]) {
    let out = Command::new("reg")
        .args(args)
        .output()
        .expect("reg.exe runs");
    assert!(
        out.status.success(),
        "reg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_dword(key: &str, name: &str, value: u32) {
    reg(&[
        "add",
        key,
        "/v",
        name,
        "/t",
        "REG_DWORD",
        "/d",
        &value.to_string(),
        "/f",
    ]);
}

fn passed(engine: &Engine, sql: &str) -> i64 {
    match engine.query(sql).unwrap().get(0, "passed") {
        Some(Value::Integer(n)) => *n,
        other => panic!("{sql}: {other:?}"),
    }
}

const FIREWALL: &str = "SELECT COUNT(*) AS passed FROM registry\nWHERE key = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\StandardProfile'\nAND name = 'EnableFirewall'\nAND data = '1';";
const UPDATES: &str = "SELECT COUNT(*) AS passed FROM registry\nWHERE key = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU'\nAND name = 'NoAutoUpdate' AND data = '0';";

#[test]
fn written_values_read_back() {
    let key = "HKCU\\Software\\TendTest";
    reg(&[
        "add", key, "/v", "Greeting", "/t", "REG_SZ", "/d", "hello", "/f",
    ]);
    set_dword(key, "Answer", 42);
    let engine = Engine::new(Machine::real()).unwrap();
    let r = engine
        .query("SELECT name, type, data FROM registry WHERE key = 'HKEY_CURRENT_USER\\Software\\TendTest' ORDER BY name")
        .unwrap();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Text(s) => s.clone(),
                    Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect();
    assert!(
        rows.contains(&vec!["Answer".into(), "REG_DWORD".into(), "42".into()]),
        "{rows:?}"
    );
    assert!(
        rows.contains(&vec!["Greeting".into(), "REG_SZ".into(), "hello".into()]),
        "{rows:?}"
    );
    reg(&["delete", key, "/f"]);
}

#[test]
fn seed_registry_queries_follow_the_machine() {
    let fw = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\StandardProfile";
    let au = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU";
    let engine = Engine::new(Machine::real()).unwrap();
    set_dword(fw, "EnableFirewall", 1);
    assert_eq!(passed(&engine, FIREWALL), 1);
    set_dword(fw, "EnableFirewall", 0);
    assert_eq!(passed(&engine, FIREWALL), 0);
    set_dword(au, "NoAutoUpdate", 0);
    assert_eq!(passed(&engine, UPDATES), 1);
    set_dword(au, "NoAutoUpdate", 1);
    assert_eq!(passed(&engine, UPDATES), 0);

    // The same through the Windows `tend.exe`, as a process.
    set_dword(fw, "EnableFirewall", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
        .args(["query", FIREWALL, "--format", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        "passed\n1\n"
    );
}
