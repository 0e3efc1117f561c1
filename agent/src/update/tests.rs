use super::*;
use crate::policy::signature::tests::TestKey;

#[test]
fn the_running_version_parses() {
    assert_eq!(current_version().to_string(), crate::VERSION);
}

#[test]
fn manifests_say_where_the_mistake_is() {
    let m =
        Manifest::parse(br#"{"version":"1.2.3","archives":{"linux-x86_64":"a.tar.gz"}}"#).unwrap();
    assert_eq!(m.version, Version::new(1, 2, 3));
    let e = Manifest::parse(b"{\"version\":\"1.2\",\n\"archives\":{}}").unwrap_err();
    assert!(e.contains("version") && e.contains("line 1"), "{e}");
    let e = Manifest::parse(b"{\"version\":\"1.2.0\",\n\"archive\":{}}").unwrap_err();
    assert!(e.contains("archive") && e.contains("line 2"), "{e}");
    assert_eq!(
        manifest::resolve("https://cdn.example.com/tend/manifest.json", "tend.tar.gz").unwrap(),
        "https://cdn.example.com/tend/tend.tar.gz"
    );
    assert_eq!(
        manifest::resolve("https://a.example/m.json", "https://b.example/x.tar.gz").unwrap(),
        "https://b.example/x.tar.gz"
    );
}

#[test]
fn the_signed_comment_names_version_and_platform() {
    let p = platform();
    assert_eq!(
        signed_version(&format!("tend 0.3.0 {p}")).unwrap(),
        Version::new(0, 3, 0)
    );
    assert!(signed_version("timestamp:1 file:tend.tar.gz").is_err());
    assert!(signed_version(&format!("other 0.3.0 {p}")).is_err());
    let e = signed_version("tend 0.3.0 plan9-mips").unwrap_err();
    assert!(e.contains("plan9-mips"), "{e}");
    assert!(signed_version(&format!("tend 0.3 {p}")).is_err());
}

fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn the_archive_gives_only_its_binary() {
    let a = tar_gz(&[("README", b"hi"), ("tend", b"binary")]);
    assert_eq!(archive::extract(&a, "tend", 100).unwrap(), b"binary");
    let e = archive::extract(&a, "tend", 3).unwrap_err();
    assert!(e.contains("limit"), "{e}");
    let e = archive::extract(&tar_gz(&[("x", b"")]), "tend", 100).unwrap_err();
    assert!(e.contains("no file named tend"), "{e}");
    assert!(archive::extract(b"garbage", "tend", 100).is_err());
}

/// A stand-in binary: a shell script answering `--version`.
#[cfg(unix)]
fn script(version: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho 'tend {version}'\n").into_bytes()
}

#[cfg(unix)]
#[test]
fn install_swaps_keeps_the_previous_and_a_failed_trial_rolls_back() {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::install::{self, Start};
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tend");
    let state = dir.path().join("state");
    let mut f = std::fs::File::create(&exe).unwrap();
    f.write_all(&script("1.0.0")).unwrap();
    drop(f);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (v1, v2) = (Version::new(1, 0, 0), Version::new(2, 0, 0));

    // A candidate that is not the signed version is refused, nothing changes.
    let e = install::install(&exe, &script("1.5.0"), &v1, &v2, &state).unwrap_err();
    assert!(e.to_string().contains("nothing was replaced"), "{e}");
    assert_eq!(std::fs::read(&exe).unwrap(), script("1.0.0"));
    assert!(install::pending(&state).is_none());

    let i = install::install(&exe, &script("2.0.0"), &v1, &v2, &state).unwrap();
    assert_eq!(std::fs::read(&exe).unwrap(), script("2.0.0"));
    assert_eq!(std::fs::read(&i.previous).unwrap(), script("1.0.0"));
    assert_eq!(install::pending(&state).unwrap().to, v2);

    // First start of 2.0.0: its trial. A second start without a
    // confirmation: rolled back to 1.0.0.
    assert!(matches!(
        install::on_start(&state, &v2).unwrap(),
        Start::Trial(_)
    ));
    assert!(matches!(
        install::on_start(&state, &v2).unwrap(),
        Start::RolledBack(_)
    ));
    assert_eq!(std::fs::read(&exe).unwrap(), script("1.0.0"));
    assert_eq!(install::last_outcome(&state).unwrap().result, "rolled back");
    assert!(install::pending(&state).is_none());
    assert_eq!(install::on_start(&state, &v1).unwrap(), Start::Normal);

    // Installed again and confirmed: it stays.
    install::install(&exe, &script("2.0.0"), &v1, &v2, &state).unwrap();
    let Start::Trial(p) = install::on_start(&state, &v2).unwrap() else {
        panic!("a trial")
    };
    install::confirm(&state, &p).unwrap();
    assert_eq!(install::on_start(&state, &v2).unwrap(), Start::Normal);
    assert_eq!(std::fs::read(&exe).unwrap(), script("2.0.0"));
    assert_eq!(install::last_outcome(&state).unwrap().result, "confirmed");
}

#[test]
fn package_managed_installs_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("tend");
    assert_eq!(managed_by(&exe), None);
    std::fs::create_dir_all(dir.path().join("share/tend")).unwrap();
    std::fs::write(dir.path().join("share/tend/packaged-by"), "deb: use apt\n").unwrap();
    assert_eq!(managed_by(&exe).as_deref(), Some("deb: use apt"));
}

#[test]
fn settings_need_a_url_and_a_key() {
    let mut cfg = crate::config::AgentConfig::default();
    let s = UpdateSettings::from_config(&cfg);
    assert!(s.auto, "on by default");
    if PINNED_KEY.is_none() {
        cfg.update_url = Some("https://cdn.example.com/tend/manifest.json".into());
        let e = Updater::new(&UpdateSettings::from_config(&cfg))
            .err()
            .unwrap();
        assert!(matches!(e, UpdateError::NoKeys), "{e}");
    }
    cfg.update_url = None;
    cfg.update_keys = vec![TestKey::new().public()];
    let e = Updater::new(&UpdateSettings::from_config(&cfg))
        .err()
        .unwrap();
    assert!(matches!(e, UpdateError::NoUrl), "{e}");
}
