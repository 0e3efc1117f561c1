//! The default nudge in `tend run`, end to end on Linux: the daemon runs
//! `policies/workflows/nudge.json` (its snooze set to two seconds, as a
//! policy may), `tend session` shows its toasts on a private D-Bus bus
//! (`tend_e2e::dbus`), and its Slack fallback talks to the Slack server on
//! loopback (`tend_e2e::slack`).
//!
//! 1. The firewall goes off → the toast arrives with both buttons → "I've
//!    fixed it" re-runs the check (still failing: asked again) → fixed and
//!    "I've fixed it" again → the toast says so, the execution ends.
//! 2. With no session connected the firewall goes off again → the Slack
//!    server receives the DM with the seed's blocks → a forged `tend://`
//!    link is refused (logged, the execution waits on) → the real "Remind me
//!    later" link snoozes → fixed meanwhile, the Slack message is updated
//!    and the execution ends.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tend_e2e::daemon::{Daemon, api, entered, execution, executions, history, write_config};
use tend_e2e::dbus::{NotificationServer, PrivateBus};
use tend_e2e::device::Device;
use tend_e2e::slack::SlackServer;
use tend_e2e::{stderr, tend_bin};

const UFW_QUERY: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes';";
const REMEDIATION: &str = "Run `sudo ufw enable`.";
const BOT: &str = "xoxb-e2e-token";
const LIMIT: Duration = Duration::from_secs(30);

fn nudge_with_short_snoozes() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/workflows/nudge.json");
    let mut wf: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    for (name, state) in wf["states"].as_object_mut().unwrap() {
        if name.contains("snooze") && state["type"] == "WAIT" {
            state["seconds"] = json!(2);
        }
    }
    wf
}

fn wait_until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    tend_e2e::wait_until(LIMIT, what, f)
}

/// Waits until execution `id` sits in `state` waiting for events.
fn wait_in(d: &Daemon, id: &str, state: &str) {
    wait_until(&format!("{id} to wait in {state}"), || {
        let h = history(d, id);
        let last = h.iter().rev().find(|e| e["type"] == "StateEntered")?;
        (last["state"] == state && h.last()?["type"] == "EventAwaited").then_some(())
    });
}

fn the_running_execution(d: &Daemon, not: &[String]) -> String {
    wait_until("a running execution", || {
        executions(d)
            .into_iter()
            .find(|e| {
                e["status"] == "RUNNING" && !not.contains(&e["id"].as_str().unwrap().to_string())
            })
            .map(|e| e["id"].as_str().unwrap().to_string())
    })
}

fn recheck(d: &Daemon) {
    let v = api(d, json!({"op": "recheck", "check": "firewall"}));
    assert_eq!(v["ok"], true, "{v}");
}

fn session(
    socket: &std::path::Path,
    bus: &PrivateBus,
    log: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(tend_bin())
        .args(["session", "--socket", socket.to_str().unwrap()])
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env("TEND_LOG", "info")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn the_default_nudge_reaches_the_user_by_toast_and_by_slack() {
    let bus = PrivateBus::start();
    let toasts = NotificationServer::start(&bus);
    let slack = SlackServer::start(BOT);
    slack.add_user("ada.lovelace@example.com", "U0ADA");

    let dev = Device::linux_compliant();
    let policy = json!({
        "version": 1, "serial": 1, "name": "nudge test",
        "checks": [{ "id": "firewall", "name": "Firewall enabled", "severity": "high",
                     "interval": "1h", "query": { "linux": UFW_QUERY },
                     "remediation": { "linux": REMEDIATION } }],
        "workflows": [nudge_with_short_snoozes()]
    });
    std::fs::write(dev.path("policy.json"), policy.to_string()).unwrap();
    let secrets = dev.path("state/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let token = secrets.join("slack-bot-token");
    std::fs::write(&token, format!("{BOT}\n")).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    write_config(
        &dev.path("agent.toml"),
        &format!(
            "state_dir = \"{}\"\nnotify_session_wait = \"2s\"\n\n[asset]\nowner_email = \"ada.lovelace@example.com\"\n\n[slack]\napi_url = \"{}\"\n",
            dev.path("state").display(),
            slack.api_base(),
        ),
    );
    let lint = std::process::Command::new(tend_bin())
        .args(["policy", "lint"])
        .arg(dev.path("policy.json"))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&lint.stdout).contains("workflows"),
        "{lint:?}"
    );

    let socket = dev.path("tend.sock");
    let log = dev.path("daemon.log");
    let args = [
        "--config",
        dev.path("agent.toml").to_str().unwrap(),
        "--policy",
        dev.path("policy.json").to_str().unwrap(),
        "--snapshot",
        dev.path("machine").to_str().unwrap(),
    ]
    .map(str::to_string);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start(&args, &socket, &log);
    let session_log = dev.path("session.log");
    let mut user = session(&socket, &bus, &session_log);
    wait_until("tend session to register", || {
        d.log_text()
            .contains("user session registered")
            .then_some(())
    });

    // 1. The firewall goes off: the toast, with the fix and both buttons.
    dev.set_firewall(false);
    recheck(&d);
    let first = the_running_execution(&d, &[]);
    wait_in(&d, &first, "toast_1");
    let calls = toasts.wait_for_calls(1, LIMIT);
    // The status names the execution waiting for an answer about the
    // check, so the tray can offer the same buttons.
    let status = api(&d, json!({"op": "status"}));
    let check = status["result"]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "firewall"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(check["awaiting"]["execution"], first.as_str(), "{check}");
    assert_eq!(check["awaiting"]["events"][0], "yes", "{check}");
    assert!(check["awaiting"].get("token").is_none(), "{check}");
    let toast = calls.last().unwrap().clone();
    assert_eq!(toast.summary, "Firewall enabled is failing");
    // The fix as the notification shows it: markdown made plain text.
    assert!(
        toast.body.ends_with("\n\nRun sudo ufw enable."),
        "{}",
        toast.body
    );
    assert_eq!(
        toast.actions,
        [("yes", "I've fixed it"), ("no", "Remind me later")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // "I've fixed it" while it still fails: the check runs again, the toast comes back.
    toasts.invoke(toast.id, "yes");
    wait_until("the toast again", || {
        (toasts.calls().len() >= 2).then_some(())
    });
    wait_in(&d, &first, "toast_1");
    let h = history(&d, &first);
    assert!(
        h.iter().any(|e| e["type"] == "TaskSucceeded"
            && e["state"] == "recheck_1"
            && e["result"]["passed"] == false),
        "{h:#?}"
    );

    // Fixed, and "I've fixed it": the toast says so and the execution ends.
    dev.set_firewall(true);
    let again = toasts.calls().last().unwrap().clone();
    toasts.invoke(again.id, "yes");
    let done = wait_until("the end of the first nudge", || {
        let e = execution(&d, &first);
        (e["status"] != "RUNNING").then_some(e)
    });
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert!(entered(&d, &first).ends_with(&["toast_fixed".to_string(), "end".to_string()]));
    let fixed = wait_until("the fixed toast", || {
        toasts
            .calls()
            .into_iter()
            .find(|c| c.summary.starts_with("Fixed"))
    });
    assert!(fixed.actions.is_empty());
    assert!(slack.calls().is_empty(), "no Slack while the toast works");

    // 2. Nobody logged in: Slack.
    let _ = user.kill();
    let _ = user.wait();
    dev.set_firewall(false);
    recheck(&d);
    let second = the_running_execution(&d, std::slice::from_ref(&first));
    wait_in(&d, &second, "slack_watch");
    let h = history(&d, &second);
    assert!(
        h.iter()
            .any(|e| e["type"] == "ErrorCaught" && e["error"]["Error"] == "Agent.NoUserSession"),
        "{h:#?}"
    );
    let posts = slack.calls_of("chat.postMessage");
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.authorization, format!("Bearer {BOT}"));
    assert_eq!(post.body["channel"], "D0ADA");
    let blocks = &post.body["blocks"];
    assert_eq!(
        blocks[0]["text"]["text"],
        "Hi Ada, The compliance rule Firewall enabled is *failing*. Please follow these steps to resolve the issue."
    );
    assert_eq!(blocks[1]["text"]["text"], REMEDIATION);
    let later = blocks[2]["elements"][1]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        later.starts_with(&format!(
            "tend://interaction?execution={second}&event=no&token="
        )),
        "{later}"
    );

    // A forged link (another token) is refused, with the reason logged; the
    // execution waits on.
    let forged = format!(
        "tend://interaction?execution={second}&event=no&token={}",
        "A".repeat(43)
    );
    let out = std::process::Command::new(tend_bin())
        .args(["open-url", &forged, "--socket", socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("refused the link") && err.contains("token does not match"),
        "{err}"
    );
    let logged = format!("for execution \"{second}\" from");
    assert!(
        d.log_text()
            .lines()
            .any(|l| l.contains(&logged) && l.contains("refused: the token does not match")),
        "the daemon logs the refusal: {}",
        d.log_text()
    );
    assert_eq!(execution(&d, &second)["status"], "RUNNING");
    wait_in(&d, &second, "slack_watch");

    // The real "Remind me later": a snooze; fixed meanwhile, the message says so.
    let out = std::process::Command::new(tend_bin())
        .args(["open-url", &later, "--socket", socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("the snooze", || {
        history(&d, &second)
            .iter()
            .any(|e| e["type"] == "WaitStarted" && e["state"] == "slack_snooze")
            .then_some(())
    });
    dev.set_firewall(true);
    let done = wait_until("the end of the Slack nudge", || {
        let e = execution(&d, &second);
        (e["status"] != "RUNNING").then_some(e)
    });
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let updates = slack.calls_of("chat.update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].body["text"], "Fixed, thank you");
    let ts = updates[0].body["ts"].as_str().unwrap();
    assert_eq!(
        slack.message("D0ADA", ts).unwrap()["text"],
        "Fixed, thank you"
    );
}
