//! `tend check` on recorded Windows 11 machines: the default policy's windows
//! queries (BitLocker, the firewall and Windows Update policy registry
//! values, Security Center's anti-virus products) against
//! `machines/windows11-compliant` (a domain-joined Dell laptop) and
//! `machines/windows11-noncompliant` (an HP mini PC nobody manages); and
//! the other Windows tables on the same recordings, as `tend query` shows them.

use tend_e2e::{check_fixture as check_json, fixture, pairs, statuses, stderr, stdout, tend};

/// `tend query --format json` on a recorded machine: rows of column → text.
fn query(dir: &str, sql: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let dir = fixture(dir);
    let o = tend(&[
        "query",
        "--snapshot",
        dir.to_str().unwrap(),
        "--format",
        "json",
        sql,
    ]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    rows.into_iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

#[test]
fn compliant_windows_laptop_passes_everything() {
    let (code, doc) = check_json("machines/windows11-compliant");
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
    assert_eq!(doc["platform"], "windows");
}

#[test]
fn noncompliant_windows_pc_fails_with_fixes() {
    let (code, doc) = check_json("machines/windows11-noncompliant");
    assert_eq!(
        statuses(&doc),
        pairs(&[
            // BitLocker off on C: (ProtectionStatus 0, ConversionStatus 0).
            ("disk_encryption", "failed"),
            // StandardProfile's EnableFirewall is 0.
            ("firewall", "failed"),
            // The AU policy's NoAutoUpdate is 1.
            ("automatic_updates", "failed"),
            // Defender is on, but its productState says signatures are out of date.
            ("antivirus", "failed"),
        ]),
        "{doc:#}"
    );
    assert_eq!(code, Some(1));
    assert_eq!(doc["platform"], "windows");
    for c in doc["checks"].as_array().unwrap() {
        assert!(
            c["remediation"].as_str().is_some_and(|r| !r.is_empty()),
            "{c}"
        );
    }
    let o = tend(&[
        "check",
        "--snapshot",
        fixture("machines/windows11-noncompliant").to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(out.contains("Turn on BitLocker"), "{out}");
}

#[test]
fn the_other_windows_tables_answer_from_the_recordings() {
    let m = "machines/windows11-compliant";
    let os = query(m, "SELECT name, version, build, revision FROM os_version");
    assert_eq!(os[0]["name"], "Microsoft Windows 11 Pro");
    assert_eq!(os[0]["version"], "10.0.22631");
    assert_eq!(os[0]["revision"], "3007");
    let sys = query(m, "SELECT hostname, hardware_model FROM system_info");
    assert_eq!(sys[0]["hostname"], "WS-042.corp.example.com");
    assert_eq!(sys[0]["hardware_model"], "Latitude 7440");
    let bl = query(
        m,
        "SELECT protector_types, percentage_encrypted FROM bitlocker_info WHERE drive_letter = 'C:'",
    );
    assert_eq!(bl[0]["protector_types"], "TPM,NUMERIC_PASSWORD");
    assert_eq!(bl[0]["percentage_encrypted"], "100");
    let wsc = query(
        m,
        "SELECT firewall, antivirus, autoupdate FROM windows_security_center",
    );
    assert_eq!(wsc[0]["firewall"], "Good");
    assert_eq!(wsc[0]["antivirus"], "Good");
    let users = query(m, "SELECT user, tty FROM logged_in_users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user"], "alice");
    let svc = query(
        m,
        "SELECT status, start_type FROM services WHERE name = 'WinDefend'",
    );
    assert_eq!(svc[0]["status"], "RUNNING");
    assert_eq!(svc[0]["start_type"], "AUTO_START");
    let tpm = query(m, "SELECT activated, owned FROM tpm_info");
    assert_eq!(
        (&tpm[0]["activated"], &tpm[0]["owned"]),
        (&"1".into(), &"1".into())
    );
    let sb = query(m, "SELECT secure_boot FROM secureboot");
    assert_eq!(sb[0]["secure_boot"], "1");
    let kb = query(
        m,
        "SELECT hotfix_id FROM patches WHERE hotfix_id = 'KB5034123'",
    );
    assert_eq!(kb.len(), 1);
    let wu = query(
        m,
        "SELECT result_code FROM windows_update_history WHERE title LIKE '%KB5034123%'",
    );
    assert_eq!(wu[0]["result_code"], "Succeeded");
    let progs = query(
        m,
        "SELECT name FROM programs WHERE publisher = 'Igor Pavlov'",
    );
    assert_eq!(progs[0]["name"], "7-Zip 23.01 (x64)");

    let n = "machines/windows11-noncompliant";
    let wsc = query(
        n,
        "SELECT firewall, antivirus, autoupdate FROM windows_security_center",
    );
    assert_eq!(wsc[0]["firewall"], "Poor");
    assert_eq!(wsc[0]["antivirus"], "Poor");
    assert_eq!(wsc[0]["autoupdate"], "Poor");
    let sb = query(n, "SELECT secure_boot FROM secureboot");
    assert_eq!(sb[0]["secure_boot"], "0");
}
