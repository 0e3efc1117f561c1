//! `tend check`, `tend policy lint`, `tend snapshot` and `tend shell` as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

use tend_e2e::{check_json, fixture, pairs, statuses, stderr, stdout, tend, tend_bin};

#[test]
fn compliant_linux_laptop_passes_everything() {
    let dir = fixture("machines/linux-compliant");
    let (code, doc) = check_json(&["--snapshot", dir.to_str().unwrap()]);
    assert_eq!(
        statuses(&doc),
        pairs(&[
            ("disk_encryption", "passed"),
            ("firewall", "passed"),
            ("automatic_updates", "passed"),
            ("antivirus", "passed"),
        ]),
        "{doc:#}"
    );
    assert_eq!(code, Some(0));
    assert_eq!(doc["platform"], "linux");
}

#[test]
fn noncompliant_linux_desktop_fails_with_fixes() {
    let dir = fixture("machines/linux-noncompliant");
    let (code, doc) = check_json(&["--snapshot", dir.to_str().unwrap()]);
    assert_eq!(
        statuses(&doc),
        pairs(&[
            ("disk_encryption", "failed"),
            ("firewall", "failed"),
            ("automatic_updates", "failed"),
            ("antivirus", "failed"),
        ]),
        "{doc:#}"
    );
    assert_eq!(code, Some(1));
    for c in doc["checks"].as_array().unwrap() {
        assert!(
            c["remediation"].as_str().is_some_and(|r| !r.is_empty()),
            "{c}"
        );
    }
    // The table report shows each fix under its check.
    let o = tend(&["check", "--snapshot", dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("sudo ufw enable"), "{out}");
    assert!(
        out.contains("0 passed, 4 failed, 0 error, 0 not applicable"),
        "{out}"
    );
}

#[test]
fn a_recording_replays_the_live_answer() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let o = tend(&[
        "snapshot",
        "create",
        rec.to_str().unwrap(),
        "--description",
        "e2e",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(rec.join("snapshot.json").exists());
    let (live_code, live) = check_json(&[]);
    let (replay_code, replay) = check_json(&["--snapshot", rec.to_str().unwrap()]);
    assert_eq!(statuses(&live), statuses(&replay));
    assert_eq!(live_code, replay_code);
}

#[test]
fn unknown_check_and_bad_policy_are_clear_errors() {
    let o = tend(&["check", "--check", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no check \"nope\""), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(
        &p,
        "{\n  \"version\": 1,\n  \"serial\": \"seven\",\n  \"checks\": []\n}\n",
    )
    .unwrap();
    let o = tend(&["check", "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("bad.json:3:"), "{e}");
    assert!(e.contains("$.serial"), "{e}");
}

#[test]
fn lint_reports_each_problem_with_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.json");
    std::fs::write(
        &p,
        r#"{
  "version": 1,
  "serial": 2,
  "checks": [
    { "id": "fw", "name": "Firewall", "severity": "high",
      "query": { "linux": "SELECT COUNT(*) AS passed FROM augeas WHERE pth = 'x'" },
      "remediation": { "linux": "enable it" } },
    { "id": "fw", "name": "Again", "severity": "high",
      "query": { "windows": "SELECT 1 FROM registry WHERE key = 'HKEY_LOCAL_MACHINE\\X'" } }
  ]
}
"#,
    )
    .unwrap();
    let o = tend(&["policy", "lint", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(":6:")
            && out.contains("$.checks[0].query.linux")
            && out.contains("no such column: pth"),
        "{out}"
    );
    assert!(
        out.contains(":8:") && out.contains("$.checks[1].id") && out.contains("duplicate id"),
        "{out}"
    );
    assert!(
        out.contains("warning") && out.contains("no remediation"),
        "{out}"
    );

    let o = tend(&["policy", "lint", "-"]);
    assert_eq!(o.status.code(), Some(1), "empty stdin is not a policy");

    let default = tend(&["policy", "default"]);
    let p2 = dir.path().join("default.json");
    std::fs::write(&p2, &default.stdout).unwrap();
    let o = tend(&["policy", "lint", p2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn shell_runs_sql_and_dot_commands() {
    let mut child = Command::new(tend_bin())
        .arg("shell")
        .env("XDG_STATE_HOME", tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b".tables mount\nSELECT 1 AS x,\n 2 AS y;\n.mode json\nSELECT 'a' AS z;\n.schema time\nSELECT * FROM nope;\n.quit\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("=> mounts"), "{out}");
    assert!(out.contains("| x | y |"), "{out}");
    assert!(out.contains("{\"z\":\"a\"}"), "{out}");
    assert!(out.contains("CREATE TABLE time(`weekday` TEXT"), "{out}");
    assert!(stderr(&o).contains("no such table: nope"));
}

#[test]
fn schema_describes_tables() {
    let o = tend(&["schema", "disk_encryption", "--format", "json"]);
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc[0]["osquery_platforms"],
        serde_json::json!(["linux", "macos"])
    );
    assert_eq!(doc[0]["columns"][0]["name"], "name");
    let o = tend(&["schema"]);
    let out = stdout(&o);
    assert!(
        out.contains("bitlocker_info") && out.contains("windows"),
        "{out}"
    );
    let o = tend(&["schema", "no_such"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `tend secret set NAME` as an admin runs it on Linux: the value from
/// standard input (never the command line) into a root-only file under the
/// state directory; `delete` removes it; a missing one is a clear error.
#[cfg(target_os = "linux")]
#[test]
fn secrets_are_set_from_stdin_into_root_only_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("state_dir = {:?}\n", state.display().to_string()),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = config.to_str().unwrap().to_string();

    let set = |value: &str| {
        let mut child = Command::new(tend_bin())
            .args(["--config", &config, "secret", "set", "sink-token"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = set("s3cret-token\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stored secret \"sink-token\""),
        "{}",
        stderr(&out)
    );
    let file = state.join("secrets/sink-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "s3cret-token");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&state.join("secrets")), 0o700);

    let out = set("");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));

    let del = || tend(&["--config", &config, "secret", "delete", "sink-token"]);
    assert!(del().status.success());
    assert!(!file.exists());
    let out = del();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not set"), "{}", stderr(&out));
}
