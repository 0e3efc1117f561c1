//! `tend check` on recorded Macs: the default policy's darwin queries against
//! `machines/macos14-compliant` (a MacBook Air with Apple silicon) and
//! `machines/macos14-noncompliant` (an Intel iMac without a T2 chip).

use tend_e2e::{check_fixture as check_json, fixture, pairs, statuses, stderr, stdout, tend};

#[test]
fn compliant_mac_passes_everything() {
    let (code, doc) = check_json("machines/macos14-compliant");
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
    assert_eq!(doc["platform"], "darwin");
}

#[test]
fn noncompliant_mac_fails_with_fixes() {
    let (code, doc) = check_json("machines/macos14-noncompliant");
    assert_eq!(
        statuses(&doc),
        pairs(&[
            // FileVault off on a Mac without a T2 chip: not encrypted.
            ("disk_encryption", "failed"),
            // com.apple.alf.plist's globalstate is 0.
            ("firewall", "failed"),
            // AutomaticCheckEnabled is false.
            ("automatic_updates", "failed"),
            // Gatekeeper disabled and XProtect's definitions 162 days old.
            ("antivirus", "failed"),
        ]),
        "{doc:#}"
    );
    assert_eq!(code, Some(1));
    assert_eq!(doc["platform"], "darwin");
    for c in doc["checks"].as_array().unwrap() {
        assert!(
            c["remediation"].as_str().is_some_and(|r| !r.is_empty()),
            "{c}"
        );
    }
    let dir = fixture("machines/macos14-noncompliant");
    let o = tend(&["check", "--snapshot", dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("Turn on FileVault"), "{out}");
    assert!(
        out.contains("0 passed, 4 failed, 0 error, 0 not applicable"),
        "{out}"
    );
}

#[test]
fn each_antivirus_condition_fails_on_its_own() {
    // The compliant Mac with its XProtect definitions made old: only the
    // freshness half of the antivirus check fails.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mac");
    copy_tree(&fixture("machines/macos14-compliant"), &copy);
    let snap = copy.join("snapshot.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    let path = "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist";
    let old = doc["now"].as_i64().unwrap() - 46 * 86400;
    for map in ["stat", "lstat"] {
        doc[map][path]["mtime"] = old.into();
    }
    std::fs::write(&snap, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let o = tend(&[
        "check",
        "--snapshot",
        copy.to_str().unwrap(),
        "--check",
        "antivirus",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    assert_eq!(statuses(&doc), pairs(&[("antivirus", "failed")]), "{doc:#}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// On T2 and Apple-silicon Macs the Data volume is encrypted at rest even with
/// FileVault off (osquery reports `encrypted = 1`), so the seed's query alone
/// would pass them; the default policy also requires `filevault_status = 'on'`.
#[test]
fn apple_silicon_with_filevault_off_fails_disk_encryption() {
    let dir = tend_e2e::fixture("tables/disk_encryption_macos");
    let seed = "SELECT COUNT(*) AS passed FROM disk_encryption WHERE name IN (SELECT device FROM mounts WHERE path = '/') AND encrypted = 1;";
    let o = tend_e2e::tend(&[
        "query",
        seed,
        "--snapshot",
        dir.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(
        tend_e2e::stdout(&o),
        "passed\n1\n",
        "{}",
        tend_e2e::stderr(&o)
    );
    let o = tend_e2e::tend(&[
        "check",
        "--check",
        "disk_encryption",
        "--snapshot",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["checks"][0]["status"], "failed", "{doc}");
}
