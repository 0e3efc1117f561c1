//! The seed's Linux queries on this machine, as it changes.
//!
//! Flipping `/etc/ufw/ufw.conf` and `/etc/apt/apt.conf.d/50unattended-upgrades`
//! changes the machine, so this runs only when `TEND_TEST_MUTATE_HOST=1`
//! (the test command sets it as root in CI); the files are restored after,
//! even when an assertion fails.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

use tend_e2e::{stderr, stdout, tend};

/// Puts a file back as it was when dropped.
struct Restore {
    path: PathBuf,
    before: Option<Vec<u8>>,
    created_dir: Option<PathBuf>,
}

impl Restore {
    fn new(path: &str) -> Restore {
        let path = PathBuf::from(path);
        let dir = path.parent().expect("an absolute file path");
        let created_dir = (!dir.exists()).then(|| dir.to_path_buf());
        std::fs::create_dir_all(dir).expect("can create the directory");
        Restore {
            before: std::fs::read(&path).ok(),
            path,
            created_dir,
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        match &self.before {
            Some(b) => {
                let _ = std::fs::write(&self.path, b);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        if let Some(d) = &self.created_dir {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn passed(sql: &str) -> String {
    let o = tend(&["query", sql, "--format", "csv"]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    stdout(&o).lines().nth(1).unwrap_or("").to_string()
}

const UFW: &str = "SELECT COUNT(*) AS passed FROM augeas\nWHERE path = '/etc/ufw/ufw.conf'\nAND label = 'ENABLED'\nAND value = 'yes';";
const UNATTENDED: &str = "SELECT COUNT(*) AS passed FROM file\nWHERE path = '/etc/apt/apt.conf.d/50unattended-upgrades';";

#[test]
fn seed_queries_follow_the_machine() {
    if std::env::var_os("TEND_TEST_MUTATE_HOST").is_none() {
        eprintln!(
            "skipped: set TEND_TEST_MUTATE_HOST=1 (as root) to let this test flip files under /etc"
        );
        return;
    }
    let _ufw = Restore::new("/etc/ufw/ufw.conf");
    let conf =
        "# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot.\nENABLED=yes\n\nLOGLEVEL=low\n";
    std::fs::write("/etc/ufw/ufw.conf", conf).unwrap();
    assert_eq!(passed(UFW), "1");
    std::fs::write(
        "/etc/ufw/ufw.conf",
        conf.replace("ENABLED=yes", "ENABLED=no"),
    )
    .unwrap();
    assert_eq!(passed(UFW), "0");

    let _unattended = Restore::new("/etc/apt/apt.conf.d/50unattended-upgrades");
    let path = Path::new("/etc/apt/apt.conf.d/50unattended-upgrades");
    std::fs::write(path, "Unattended-Upgrade::Allowed-Origins {\n\t\"${distro_id}:${distro_codename}-security\";\n};\n").unwrap();
    assert_eq!(passed(UNATTENDED), "1");
    std::fs::remove_file(path).unwrap();
    assert_eq!(passed(UNATTENDED), "0");

    // The whole default policy follows too.
    std::fs::write("/etc/ufw/ufw.conf", conf).unwrap();
    let o = tend(&["check", "--check", "firewall", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["checks"][0]["status"], "passed", "{doc}");
}

#[test]
fn tend_check_reports_every_default_check() {
    let o = tend(&["check"]);
    let out = stdout(&o);
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "{out}{}",
        stderr(&o)
    );
    for name in [
        "Disk encryption enabled",
        "Firewall enabled",
        "Automatic updates enabled",
        "Anti-virus running with fresh definitions",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(out.contains("passed,") && out.contains("failed,"), "{out}");
}
