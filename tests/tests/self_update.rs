//! Self-update end to end: a release (manifest, archive, minisign
//! signature) served over HTTPS on loopback, and a copy of `tend` that
//! must refuse a tampered archive, a key it does not trust and an older
//! version without touching itself, and, running as the service, replace
//! itself with the newer build and come back as it.
//!
//! The newer build is a second `tend` compiled with a higher
//! `TEND_RELEASE_VERSION`; `scripts/test.sh` builds it and names it in
//! `TEND_NEXT_BINARY` (building it here would rebuild the binary the other
//! tests are running).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tend_e2e::daemon::{Daemon, write_config};
use tend_e2e::https::{Pki, Reply, Server};
use tend_e2e::signing::Signer;
use tend_e2e::{fixture, stderr, stdout, tend_bin};

fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// `tend-VERSION.tar.gz` holding `tend`.
fn archive(binary: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(binary.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, "tend", binary).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// The release server: `manifest.json`, `tend.tar.gz`, `tend.tar.gz.minisig`.
struct Release {
    server: Server,
    pki: Pki,
}

impl Release {
    fn new() -> Release {
        let pki = Pki::new("release");
        Release {
            server: Server::https(&pki),
            pki,
        }
    }

    /// Serves `archive` (signed with `signature`) as version `manifest_version`.
    fn publish(&self, manifest_version: &str, archive: &[u8], signature: &[u8]) {
        let manifest = format!(
            r#"{{"version":"{manifest_version}","archives":{{"{}":"tend.tar.gz"}}}}"#,
            platform()
        );
        self.server
            .set("/manifest.json", Reply::ok(manifest, "\"m\""));
        self.server
            .set("/tend.tar.gz", Reply::ok(archive.to_vec(), "\"a\""));
        self.server.set(
            "/tend.tar.gz.minisig",
            Reply::ok(signature.to_vec(), "\"s\""),
        );
    }
}

/// A device: a directory with a copy of `tend` that may replace itself.
struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new(release: &Release, key: &str, interval: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::copy(tend_bin(), dir.path().join("bin/tend")).unwrap();
        release.pki.write_ca(&dir.path().join("ca.pem"));
        let config = format!(
            "update_url = \"{}\"\nupdate_keys = [\"{key}\"]\nupdate_interval = \"{interval}\"\npinned_ca = \"{}\"\nstate_dir = \"{}\"\n",
            release.server.url("/manifest.json"),
            dir.path().join("ca.pem").display(),
            dir.path().join("state").display()
        );
        write_config(&dir.path().join("agent.toml"), &config);
        Device { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn exe(&self) -> PathBuf {
        self.path("bin/tend")
    }

    /// Runs the device's own `tend` with its config.
    fn tend(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(self.exe());
        cmd.args(args)
            .arg("--config")
            .arg(self.path("agent.toml"))
            .env_remove("TEND_LOG");
        for v in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env_remove(v);
        }
        cmd.output().expect("tend runs")
    }
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    stdout(&out).trim().trim_start_matches("tend ").to_string()
}

/// The newer build, or `None` (with a note) when the test command did not make one.
fn next_binary() -> Option<Vec<u8>> {
    let Some(path) = std::env::var_os("TEND_NEXT_BINARY") else {
        eprintln!(
            "self_update: TEND_NEXT_BINARY is not set; scripts/test.sh builds the newer tend it names"
        );
        return None;
    };
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display())))
}

#[test]
fn bad_releases_are_refused_and_the_binary_is_untouched() {
    let release = Release::new();
    let signer = Signer::new();
    let device = Device::new(&release, &signer.public_key(), "6h");
    let original = std::fs::read(device.exe()).unwrap();
    let current = version_of(&device.exe());
    // Any bytes do for the refusals: none gets as far as running them.
    let payload = archive(b"#!/bin/sh\necho tend 99.0.0\n");
    let comment = |v: &str| format!("tend {v} {}", platform());
    let untouched = |what: &str| {
        assert_eq!(
            std::fs::read(device.exe()).unwrap(),
            original,
            "{what}: the binary changed"
        );
        assert!(
            !device.path("bin/tend.previous").exists(),
            "{what}: a previous binary was set aside"
        );
        assert!(
            !device.path("state/update/pending.json").exists(),
            "{what}: a trial was recorded"
        );
    };

    // A tampered archive: the signature no longer matches.
    let sig = signer.sign_with_comment(&payload, &comment("99.0.0"));
    let mut tampered = payload.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    release.publish("99.0.0", &tampered, &sig);
    let out = device.tend(&["update", "apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    untouched("tampered");

    // Signed by a key the device does not trust.
    let other = Signer::new();
    release.publish(
        "99.0.0",
        &payload,
        &other.sign_with_comment(&payload, &comment("99.0.0")),
    );
    let out = device.tend(&["update", "apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not trusted"), "{}", stderr(&out));
    untouched("wrong key");

    // An older version signed as such, behind a manifest claiming a newer one.
    release.publish(
        "99.0.0",
        &payload,
        &signer.sign_with_comment(&payload, &comment("0.0.1")),
    );
    let out = device.tend(&["update", "apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not newer") && stderr(&out).contains("versions only go up"),
        "{}",
        stderr(&out)
    );
    untouched("older signed");

    // A signed version that names another platform.
    release.publish(
        "99.0.0",
        &payload,
        &signer.sign_with_comment(&payload, "tend 99.0.0 plan9-mips"),
    );
    let out = device.tend(&["update", "apply"]);
    assert!(stderr(&out).contains("plan9-mips"), "{}", stderr(&out));
    untouched("other platform");

    // An older manifest: nothing to do.
    release.publish("0.0.1", &payload, &sig);
    let out = device.tend(&["update", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
    let out = device.tend(&["update", "apply"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("tend {current} is up to date")),
        "{}",
        stdout(&out)
    );
    untouched("older manifest");

    // A package-managed install defers to its package manager.
    std::fs::create_dir_all(device.path("share/tend")).unwrap();
    std::fs::write(device.path("share/tend/packaged-by"), "deb: use apt\n").unwrap();
    let out = device.tend(&["update", "apply"]);
    assert!(
        stderr(&out).contains("managed by a package manager; deb: use apt"),
        "{}",
        stderr(&out)
    );
    untouched("package-managed");
}

#[test]
fn the_service_replaces_itself_with_a_newer_signed_build_and_comes_back() {
    let Some(next) = next_binary() else { return };
    let release = Release::new();
    let signer = Signer::new();
    let device = Device::new(&release, &signer.public_key(), "1s");
    let original = std::fs::read(device.exe()).unwrap();
    let current = version_of(&device.exe());
    let next_path = device.path("next");
    std::fs::write(&next_path, &next).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&next_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let next_version = version_of(&next_path);
    assert_ne!(
        next_version, current,
        "TEND_NEXT_BINARY must be a newer build"
    );

    let payload = archive(&next);
    release.publish(
        &next_version,
        &payload,
        &signer.sign_with_comment(&payload, &format!("tend {next_version} {}", platform())),
    );

    let out = device.tend(&["update", "check"]);
    assert!(
        stdout(&out).contains(&format!("{next_version} is available")),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let socket = device.path("tend.sock");
    let snapshot = fixture("machines/linux-compliant");
    let config = device.path("agent.toml");
    let d = Daemon::start_exe(
        &device.exe(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
        ],
        &[],
        &socket,
        &device.path("daemon.log"),
    );
    let pid = d.pid();
    assert_eq!(d.status()["daemon"]["version"], current.as_str());

    // Within a few seconds it checks, verifies, swaps and restarts in place
    // (the same process, now the new binary), then confirms the trial.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = tend_e2e::daemon::request(&socket, r#"{"v":1,"id":1,"op":"status"}"#);
        if let Ok(v) = answer
            && v["result"]["daemon"]["version"] == next_version.as_str()
        {
            assert_eq!(v["result"]["daemon"]["pid"], pid, "restarted in place");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not come back as {next_version}; log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read(device.exe()).unwrap(), next);
    assert_eq!(
        std::fs::read(device.path("bin/tend.previous")).unwrap(),
        original
    );
    let last = device.path("state/update/last.json");
    while !last.exists() {
        assert!(
            Instant::now() < deadline,
            "the update was not confirmed; log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&last).unwrap()).unwrap();
    assert_eq!(outcome["result"], "confirmed", "{outcome}");
    assert_eq!(outcome["to"], next_version.as_str());
    assert!(!device.path("state/update/pending.json").exists());
}
