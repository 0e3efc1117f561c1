//! The tray icon and its menu end to end, as a desktop panel sees them:
//! the real `tend-tray` on a private session bus where the test plays the
//! panel (a StatusNotifierWatcher, [`support::watcher`]), reading the
//! item's menu over dbusmenu and clicking it, against a real `tend run` on
//! a recorded Linux machine.
#![cfg(target_os = "linux")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::desktop::{self, Proc};
use support::watcher::{Entry, Panel};
use tend_e2e::daemon::{Daemon, copy_tree, write_config};
use tend_e2e::dbus::PrivateBus;
use tend_e2e::fixture;

const UFW_QUERY: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes';";

/// Two checks, and the default nudge (policies/workflows/nudge.json): a
/// failing check reaches the user as a native notification.
fn policy() -> String {
    let nudge = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/workflows/nudge.json");
    let nudge: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(nudge).unwrap()).unwrap();
    json!({
        "version": 1, "serial": 3, "name": "Acme laptops",
        "checks": [
            { "id": "firewall", "name": "Firewall enabled", "severity": "high", "interval": "1h",
              "query": { "linux": UFW_QUERY }, "remediation": { "linux": "Run `sudo ufw enable`." } },
            { "id": "updates", "name": "Automatic updates enabled", "severity": "high", "interval": "1h",
              "query": { "linux": "SELECT COUNT(*) AS passed FROM file WHERE path = '/etc/apt/apt.conf.d/20auto-upgrades';" } }
        ],
        "workflows": [nudge]
    })
    .to_string()
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> Result<bool, String>) {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match f() {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {limit:?} ({last})");
}

fn labels(menu: &[Entry]) -> Vec<String> {
    menu.iter().map(|e| e.label.clone()).collect()
}

#[test]
fn tray_menu_follows_the_state_and_its_items_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = |rel: &str| -> PathBuf { dir.path().join(rel) };
    copy_tree(&fixture("machines/linux-compliant"), &path("machine"));
    std::fs::write(
        path("machine/root/etc/apt/apt.conf.d/20auto-upgrades"),
        "APT::Periodic::Unattended-Upgrade \"1\";\n",
    )
    .unwrap();
    let ufw = path("machine/root/etc/ufw/ufw.conf");
    std::fs::write(&ufw, "ENABLED=no\n").unwrap();
    std::fs::write(path("policy.json"), policy()).unwrap();
    write_config(
        &path("agent.toml"),
        &format!("state_dir = \"{}\"\n", path("state").display()),
    );
    let socket = path("tend.sock");
    let mut d = Daemon::start(
        &[
            "--config",
            path("agent.toml").to_str().unwrap(),
            "--policy",
            path("policy.json").to_str().unwrap(),
            "--snapshot",
            path("machine").to_str().unwrap(),
        ],
        &socket,
        &path("daemon.log"),
    );
    d.wait_for("firewall", "failed", Duration::from_secs(20));

    let (_x, display) = desktop::xvfb(&path("xvfb.log"));
    let private_bus = PrivateBus::start();
    let bus = private_bus.address();
    let panel = Panel::start(bus);
    std::fs::create_dir_all(path("dunst")).unwrap();
    let _toasts = desktop::dunst(&display, bus, &path("dunst"), &path("dunst.log"));
    std::fs::create_dir_all(path("home")).unwrap();
    let app_log = path("tray.log");
    // `tend-tray ARGS` in this test's desktop session.
    let tray = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tend-tray"));
        c.args(args)
            .args(["--socket", socket.to_str().unwrap()])
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .env("HOME", path("home"))
            .env("XDG_DATA_HOME", path("home/.local/share"))
            .env("XDG_RUNTIME_DIR", path("home"))
            .env("NO_AT_BRIDGE", "1")
            .env("GTK_A11Y", "none")
            .env("TEND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    };
    let child = tray(&[])
        .stderr(std::fs::File::create(&app_log).unwrap())
        .spawn()
        .expect("tend-tray starts");
    let app = Proc::new("tend-tray", child);
    let log = || std::fs::read_to_string(&app_log).unwrap_or_default();

    let item = panel
        .item(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the tray never registered its icon; log:\n{}", log()));

    // The menu: the state line, the failing check, the actions, the version.
    let mut menu = Vec::new();
    wait_until(Duration::from_secs(20), "the failing menu", || {
        menu = panel.menu(&item).map_err(|e| e.to_string())?;
        Ok(labels(&menu).contains(&"Needs attention: Firewall enabled".to_string()))
    });
    let version = format!("Tend {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        labels(&menu),
        [
            "Needs attention: Firewall enabled",
            "✗ Firewall enabled",
            "Check again now",
            "Open Tend",
            version.as_str(),
        ],
        "{menu:?}"
    );
    assert!(
        !menu[0].enabled && !menu[4].enabled && menu[2].enabled,
        "{menu:?}"
    );
    let failing_icon = panel.string(&item, "IconName");

    // A panel exists here: the window must not open by itself.
    assert!(log().contains("status_notifier: true"), "{}", log());
    assert!(!log().contains("opening the window"), "{}", log());

    // The failing check's nudge reaches the user through the tray, which is
    // the user's session: a native notification, drawn here by dunst.
    wait_until(
        Duration::from_secs(60),
        "the nudge's notification shown",
        || Ok(d.log_text().contains(": Shown")),
    );
    let mut png = Vec::new();
    wait_until(
        Duration::from_secs(10),
        "the notification on screen",
        || {
            png = desktop::window_png(&display, "Dunst")?;
            Ok(true)
        },
    );
    desktop::save_screenshot("notification.png", &png);
    // Drawn text (the check's name and its fix), not an empty frame.
    let colours = desktop::colours(&png).unwrap();
    assert!(colours > 10, "{colours} colours");

    // "Check again now" asks the daemon to re-check everything.
    panel.click(&item, "Check again now").unwrap();
    wait_until(Duration::from_secs(20), "the re-check", || {
        Ok(d.log_text().contains("re-check of every check asked by"))
    });

    // A `tend://` link (the desktop starts `tend-tray --show LINK`) is
    // handed to the running icon, which forwards it; the second start
    // exits as soon as the first took it.
    let second = tray(&["--show", "tend://recheck/updates"])
        .stderr(std::fs::File::create(path("second.log")).unwrap())
        .status()
        .unwrap();
    let second_log = std::fs::read_to_string(path("second.log")).unwrap();
    assert!(second.success(), "{second}: {second_log}");
    assert!(second_log.is_empty(), "{second_log}");
    wait_until(Duration::from_secs(20), "the link's re-check", || {
        Ok(d.log_text().contains("re-check of updates asked by"))
    });

    // The fix: the menu and the icon follow.
    std::fs::write(ufw.with_extension("tmp"), "ENABLED=yes\n").unwrap();
    std::fs::rename(ufw.with_extension("tmp"), &ufw).unwrap();
    wait_until(Duration::from_secs(20), "the passing menu", || {
        menu = panel.menu(&item).map_err(|e| e.to_string())?;
        Ok(labels(&menu).first().map(String::as_str) == Some("All 2 checks pass"))
    });
    assert_eq!(
        labels(&menu),
        [
            "All 2 checks pass",
            "Check again now",
            "Open Tend",
            version.as_str()
        ]
    );
    assert_ne!(panel.string(&item, "IconName"), failing_icon);

    // "Open Tend" starts the window program with its webview (WebKit's web
    // and network processes); closing it (Escape) ends them all: the icon
    // itself never holds a webview.
    let processes = || desktop::descendants(app.pid());
    assert!(processes().is_empty(), "{:?}", processes());
    panel.click(&item, "Open Tend").unwrap();
    wait_until(Duration::from_secs(30), "the window's web process", || {
        let p = processes();
        // `comm` keeps 15 bytes of the name.
        Ok(p.iter().any(|c| c == "tend-tray-windo")
            && p.iter().any(|c| c.starts_with("WebKitWebProces")))
    });
    wait_until(
        Duration::from_secs(30),
        "the window closed with Escape",
        || {
            desktop::key_to_window(&display, "Tend", "Escape")?;
            std::thread::sleep(Duration::from_millis(500));
            Ok(processes().is_empty())
        },
    );

    // The service stops: the menu says so.
    d.stop();
    wait_until(Duration::from_secs(20), "the unreachable menu", || {
        menu = panel.menu(&item).map_err(|e| e.to_string())?;
        Ok(labels(&menu).first().map(String::as_str) == Some("Cannot reach the Tend service"))
    });
}
