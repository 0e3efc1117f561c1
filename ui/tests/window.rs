//! The tray app's window end to end: the real `tend-tray` under Xvfb,
//! driven through tauri-driver and WebKitWebDriver, against a real
//! `tend run` on a recorded Linux machine whose files the test changes.
//!
//! One test walks the whole story, since each start of the desktop, the
//! daemon and the app costs seconds: the window lists the checks with their
//! statuses and the fix; a fix the daemon sees by itself (a watched file)
//! turns green in the window; "I've fixed it" re-checks a check whose file
//! the daemon does not watch, which then passes; stopping the daemon shows
//! "cannot reach the Tend service"; starting it again reconnects.
#![cfg(target_os = "linux")]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::desktop::{self, Proc};
use support::webdriver::Session;
use tend_e2e::daemon::{Daemon, copy_tree, write_config};
use tend_e2e::dbus::PrivateBus;
use tend_e2e::fixture;

const UFW_QUERY: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes';";

fn policy() -> String {
    json!({
        "version": 1,
        "serial": 7,
        "name": "Acme laptops",
        "checks": [
            { "id": "firewall", "name": "Firewall enabled", "severity": "high", "interval": "1h",
              "description": "The firewall blocks connections nobody asked for.",
              "query": { "linux": UFW_QUERY },
              "remediation": { "linux": "The firewall (ufw) is off.\n\n1. Open a terminal.\n2. Run `sudo ufw enable`.\n\n**Why:** on café Wi-Fi, anyone nearby can reach this laptop's open ports." } },
            { "id": "vpn", "name": "VPN client running", "severity": "medium", "interval": "1h",
              "query": { "linux": "SELECT COUNT(*) AS passed FROM file WHERE path = '/run/acme-vpn/vpn.pid';" },
              "remediation": { "linux": "Start the VPN client: `systemctl --user start acme-vpn`." } },
            { "id": "updates", "name": "Automatic updates enabled", "severity": "high", "interval": "1h",
              "query": { "linux": "SELECT COUNT(*) AS passed FROM file WHERE path = '/etc/apt/apt.conf.d/20auto-upgrades';" },
              "remediation": { "linux": "Install `unattended-upgrades`." } },
            { "id": "filevault", "name": "FileVault on", "severity": "high", "interval": "1h",
              "query": { "darwin": "SELECT 1 AS passed;" },
              "remediation": { "darwin": "Turn on FileVault in System Settings." } }
        ]
    })
    .to_string()
}

/// The checks the window lists, as `id=status`, sorted.
const STATUSES: &str = "return Array.from(document.querySelectorAll('li.check')).map(e => e.dataset.id + '=' + e.dataset.status).sort().join(' ')";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn set_firewall(&self, on: bool) {
        let ufw = self.path("machine/root/etc/ufw/ufw.conf");
        let tmp = ufw.with_extension("tmp");
        let text = format!("ENABLED={}\nLOGLEVEL=low\n", if on { "yes" } else { "no" });
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &ufw).unwrap();
    }
}

fn save_screenshot(s: &Session, name: &str) -> Result<(), String> {
    let png = s.screenshot()?;
    if !png.starts_with(b"\x89PNG") {
        return Err(format!("{name}: not a PNG"));
    }
    desktop::save_screenshot(name, &png);
    Ok(())
}

#[test]
fn window_shows_checks_rechecks_and_survives_the_service() {
    let w = World {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_tree(&fixture("machines/linux-compliant"), &w.path("machine"));
    std::fs::write(
        w.path("machine/root/etc/apt/apt.conf.d/20auto-upgrades"),
        "APT::Periodic::Unattended-Upgrade \"1\";\n",
    )
    .unwrap();
    std::fs::create_dir_all(w.path("machine/root/run/acme-vpn")).unwrap();
    w.set_firewall(false);
    std::fs::write(w.path("policy.json"), policy()).unwrap();
    write_config(
        &w.path("agent.toml"),
        &format!("state_dir = \"{}\"\n", w.path("state").display()),
    );
    let socket = w.path("tend.sock");
    let daemon_log = w.path("daemon.log");
    let mut d = Daemon::start(
        &[
            "--config",
            w.path("agent.toml").to_str().unwrap(),
            "--policy",
            w.path("policy.json").to_str().unwrap(),
            "--snapshot",
            w.path("machine").to_str().unwrap(),
        ],
        &socket,
        &daemon_log,
    );
    d.wait_for("firewall", "failed", Duration::from_secs(20));
    d.wait_for("vpn", "failed", Duration::from_secs(20));

    // The desktop.
    // Kept after a failure, for reading.
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tray-window-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let (_x, display) = desktop::xvfb(&logs.join("xvfb.log"));
    let bus = PrivateBus::start();
    let home = w.path("home");
    let runtime = w.path("xdg-runtime");
    for dir in [&home, &runtime] {
        std::fs::create_dir_all(dir).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let env: Vec<(String, String)> = [
        ("DISPLAY", display.clone()),
        ("DBUS_SESSION_BUS_ADDRESS", bus.address().to_string()),
        ("TEND_SOCKET", socket.display().to_string()),
        ("TEND_LOG", "info".into()),
        ("HOME", home.display().to_string()),
        (
            "XDG_DATA_HOME",
            home.join(".local/share").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME",
            home.join(".config").display().to_string(),
        ),
        ("XDG_CACHE_HOME", home.join(".cache").display().to_string()),
        ("XDG_RUNTIME_DIR", runtime.display().to_string()),
        ("NO_AT_BRIDGE", "1".into()),
        ("GTK_A11Y", "none".into()),
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1".into()),
        ("LIBGL_ALWAYS_SOFTWARE", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let port = desktop::free_port();
    let driver_log = logs.join("tauri-driver.log");
    let driver: Proc = desktop::tauri_driver(port, &env, &driver_log);
    let logs_text = || {
        format!(
            "--- tauri-driver and app:\n{}\n--- daemon:\n{}",
            std::fs::read_to_string(&driver_log).unwrap_or_default(),
            std::fs::read_to_string(&daemon_log).unwrap_or_default()
        )
    };

    let app = env!("CARGO_BIN_EXE_tend-tray-window");
    let s = Session::start(port, app, &[]).unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));
    // The window keeps the size the app gives it: resizing it through
    // WebDriver makes WebKitGTK's screenshots hang under Xvfb.
    let wait = |what: &str, script: &str, want: Value, secs: u64| {
        s.wait_for(what, script, &want, Duration::from_secs(secs))
            .unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));
    };

    // Every check with its status, the fix rendered from markdown, the
    // policy's source and serial.
    wait(
        "the checks",
        STATUSES,
        json!("filevault=not_applicable firewall=failed updates=passed vpn=failed"),
        30,
    );
    let fix = s
        .script(
            "const f = document.querySelector('#check-firewall .fix-body'); return [f.querySelector('ol li:nth-child(2) code').textContent, f.querySelectorAll('script, img').length]",
            json!([]),
        )
        .unwrap();
    assert_eq!(fix, json!(["sudo ufw enable", 0]));
    let about = s
        .script(
            "return document.getElementById('about').textContent",
            json!([]),
        )
        .unwrap();
    let about = about.as_str().unwrap();
    assert!(about.contains("Policy serial7"), "{about}");
    assert!(
        about.contains(w.path("policy.json").to_str().unwrap()),
        "{about}"
    );
    let headline = s
        .script(
            "return document.getElementById('headline').textContent",
            json!([]),
        )
        .unwrap();
    assert_eq!(headline, "2 checks need attention");
    save_screenshot(&s, "window-failing.png").unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));

    // A fix the daemon sees by itself (it watches the file a failing check
    // read) reaches the window through the daemon's push.
    w.set_firewall(true);
    wait(
        "the firewall fixed",
        STATUSES,
        json!("filevault=not_applicable firewall=passed updates=passed vpn=failed"),
        30,
    );
    let history = s
        .script(
            "return Array.from(document.querySelectorAll('#history li')).map(l => l.textContent)",
            json!([]),
        )
        .unwrap();
    assert!(
        history.as_array().unwrap().iter().any(|h| h
            .as_str()
            .unwrap()
            .contains("Firewall enabled: Failing → Passing")),
        "{history}"
    );

    // The VPN's pid file is under /run, which the daemon does not watch:
    // only the button makes it look again.
    std::fs::write(w.path("machine/root/run/acme-vpn/vpn.pid"), "4242\n").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        s.script(STATUSES, json!([])).unwrap(),
        json!("filevault=not_applicable firewall=passed updates=passed vpn=failed")
    );
    let button = s.find("#check-vpn button.fixed").unwrap();
    s.click(&button).unwrap();
    wait(
        "the VPN re-checked",
        STATUSES,
        json!("filevault=not_applicable firewall=passed updates=passed vpn=passed"),
        30,
    );
    assert!(
        d.log_text().contains("re-check of vpn asked by"),
        "the daemon did not log the re-check:\n{}",
        d.log_text()
    );
    wait(
        "the headline",
        "return document.getElementById('headline').textContent",
        json!("All 3 checks pass"),
        10,
    );
    save_screenshot(&s, "window-passing.png").unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));

    // The service stops: the window says so; it comes back: it reconnects.
    d.stop();
    wait(
        "the unreachable notice",
        "return [document.body.dataset.connected, document.getElementById('unreachable').hidden]",
        json!(["false", false]),
        20,
    );
    save_screenshot(&s, "window-unreachable.png")
        .unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));
    d.spawn();
    d.wait_ready(Duration::from_secs(30));
    wait(
        "the reconnection",
        "return [document.body.dataset.connected, document.getElementById('unreachable').hidden]",
        json!(["true", true]),
        30,
    );
    wait(
        "the checks after the restart",
        STATUSES,
        json!("filevault=not_applicable firewall=passed updates=passed vpn=passed"),
        30,
    );

    s.end().unwrap_or_else(|e| panic!("{e}\n{}", logs_text()));
    drop(driver);
}
