//! What the tray knows about the device: the daemon's last answers
//! (including its history of changes), whether it can be reached; and what
//! follows from that (the icon's level, the tooltip, the failing checks, the
//! page's data). Pure: the connection ([`crate::daemon`]) fills it, the tray
//! and the window read it.

use serde::Serialize;
use serde_json::Value;

use crate::markdown;

/// The device's state at a glance: the tray icon's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Every check passes (or does not apply here).
    Passing,
    /// At least one check fails.
    Failing,
    /// No check fails, but some could not run or have not run yet.
    Unknown,
    /// The Tend service cannot be reached.
    Unreachable,
}

/// Everything the tray knows.
#[derive(Debug, Default)]
pub struct Model {
    /// `status`'s result, while connected.
    pub status: Option<Value>,
    /// `checks`'s result (descriptions and remediation), while connected.
    pub checks: Option<Value>,
    /// Why the service cannot be reached, when it cannot.
    pub unreachable: Option<String>,
    /// The daemon's answer to `hello`.
    pub hello: Option<Value>,
    /// `history`'s changes, newest first; kept while the service is
    /// unreachable.
    pub history: Value,
}

/// A failing check, for the tray menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failing {
    pub id: String,
    pub name: String,
}

impl Model {
    /// The service answered.
    pub fn connected(&mut self, hello: Value, status: Value, checks: Value, history: Value) {
        self.hello = Some(hello);
        self.status = Some(status);
        self.checks = Some(checks);
        self.history = history;
        self.unreachable = None;
    }

    /// The service cannot be reached (or went away).
    pub fn lost(&mut self, why: String) {
        self.status = None;
        self.checks = None;
        self.hello = None;
        self.unreachable = Some(why);
    }

    fn status_checks(&self) -> &[Value] {
        self.status
            .as_ref()
            .and_then(|s| s["checks"].as_array())
            .map_or(&[], Vec::as_slice)
    }

    pub fn level(&self) -> Level {
        if self.status.is_none() {
            return Level::Unreachable;
        }
        let statuses: Vec<&str> = self
            .status_checks()
            .iter()
            .map(|c| c["status"].as_str().unwrap_or("pending"))
            .collect();
        if statuses.contains(&"failed") {
            Level::Failing
        } else if statuses
            .iter()
            .all(|s| *s == "passed" || *s == "not_applicable")
        {
            Level::Passing
        } else {
            Level::Unknown
        }
    }

    pub fn failing(&self) -> Vec<Failing> {
        self.status_checks()
            .iter()
            .filter(|c| c["status"] == "failed")
            .filter_map(|c| {
                let id = c["id"].as_str()?.to_string();
                let name = c["name"].as_str().unwrap_or(&id).to_string();
                Some(Failing { id, name })
            })
            .collect()
    }

    /// One line: the state in words (the tray's tooltip and first menu line).
    pub fn headline(&self) -> String {
        let count = |s: &str| {
            self.status_checks()
                .iter()
                .filter(|c| c["status"] == s)
                .count()
        };
        match self.level() {
            Level::Unreachable => "Cannot reach the Tend service".into(),
            Level::Passing => match count("passed") {
                0 => "No checks apply to this device".into(),
                1 => "The check passes".into(),
                n => format!("All {n} checks pass"),
            },
            Level::Failing => match self.failing().as_slice() {
                [one] => format!("Needs attention: {}", one.name),
                many => format!("{} checks need attention", many.len()),
            },
            Level::Unknown => match count("error") {
                0 => "Checking this device…".into(),
                1 => "1 check could not run".into(),
                n => format!("{n} checks could not run"),
            },
        }
    }

    /// The daemon's version, when connected.
    pub fn daemon_version(&self) -> Option<String> {
        self.hello
            .as_ref()
            .and_then(|h| h["version"].as_str())
            .map(str::to_string)
    }

    /// What the window shows.
    pub fn page(&self, focus: Option<&str>, no_tray: bool) -> Value {
        let details = |id: &str| -> Option<&Value> {
            self.checks
                .as_ref()
                .and_then(|c| c["checks"].as_array())
                .and_then(|a| a.iter().find(|c| c["id"] == id))
        };
        let checks: Vec<Value> = self
            .status_checks()
            .iter()
            .map(|c| {
                let id = c["id"].as_str().unwrap_or_default();
                let more = details(id);
                let fix = c["remediation"]
                    .as_str()
                    .or_else(|| more.and_then(|m| m["remediation"].as_str()));
                serde_json::json!({
                    "id": id,
                    "name": c["name"],
                    "severity": c["severity"],
                    "status": c["status"],
                    "since": c["since"],
                    "last_run": c["last_run"],
                    "error": c["error"],
                    "evidence": c["evidence"],
                    "description": more.map(|m| m["description"].clone()),
                    "fix_html": fix.map(markdown::render),
                    "waiting": waiting(c),
                })
            })
            .collect();
        serde_json::json!({
            "level": self.level(),
            "headline": self.headline(),
            "unreachable": self.unreachable,
            "tray_version": env!("CARGO_PKG_VERSION"),
            "daemon": self.status.as_ref().map(|s| s["daemon"].clone()),
            "policy": self.status.as_ref().map(|s| s["policy"].clone()),
            "asset": self.status.as_ref().map(|s| s["asset"].clone()),
            "platform": self.checks.as_ref().map(|c| c["platform"].clone()),
            "checks": checks,
            "history": self.history["changes"].as_array().map_or(&[][..], Vec::as_slice),
            "focus": focus,
            "no_tray": no_tray,
        })
    }

    /// The workflow execution waiting for the user's answer about check `id`.
    pub fn waiting_for(&self, id: &str) -> Option<Waiting> {
        self.status_checks()
            .iter()
            .find(|c| c["id"] == id)
            .and_then(waiting)
    }
}

/// A workflow execution waiting for a button about a check: the daemon
/// names it in the check's `awaiting` field (`execution`, the `events` it
/// waits for; a `token` where the caller is not the console user's session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub execution: String,
    pub token: Option<String>,
    pub events: Vec<String>,
}

impl Waiting {
    /// Whether the execution waits for the event `name` (the seed's and the
    /// default nudge's buttons are `yes` and `no`).
    pub fn takes(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }
}

fn waiting(check: &Value) -> Option<Waiting> {
    let a = &check["awaiting"];
    Some(Waiting {
        execution: a["execution"].as_str()?.to_string(),
        token: a["token"].as_str().map(str::to_string),
        events: a["events"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(statuses: &[(&str, &str)]) -> Model {
        let checks: Vec<Value> = statuses
            .iter()
            .map(|(id, s)| json!({"id": id, "name": format!("{id} on"), "status": s, "remediation": "Run `fix`."}))
            .collect();
        let mut m = Model::default();
        m.connected(
            json!({"version": "0.1.0"}),
            json!({"checks": checks, "policy": {"serial": 3}}),
            json!({"platform": "linux", "checks": []}),
            json!({"changes": []}),
        );
        m
    }

    #[test]
    fn level_and_headline_follow_the_checks() {
        let m = model(&[
            ("fw", "passed"),
            ("upd", "not_applicable"),
            ("disk", "passed"),
        ]);
        assert_eq!(m.level(), Level::Passing);
        assert_eq!(m.headline(), "All 2 checks pass");
        let m = model(&[("fw", "failed"), ("disk", "passed")]);
        assert_eq!(m.level(), Level::Failing);
        assert_eq!(m.headline(), "Needs attention: fw on");
        assert_eq!(
            m.failing(),
            vec![Failing {
                id: "fw".into(),
                name: "fw on".into()
            }]
        );
        let m = model(&[("fw", "failed"), ("disk", "failed"), ("x", "error")]);
        assert_eq!(m.headline(), "2 checks need attention");
        let m = model(&[("fw", "error"), ("disk", "passed")]);
        assert_eq!(m.level(), Level::Unknown);
        assert_eq!(m.headline(), "1 check could not run");
        let m = model(&[("fw", "pending")]);
        assert_eq!(m.headline(), "Checking this device…");
    }

    #[test]
    fn unreachable_forgets_the_state_and_keeps_history() {
        let mut m = model(&[("fw", "failed")]);
        m.history = json!({"changes": [
            {"at": "2026-01-01T00:00:00Z", "id": "fw", "name": "Firewall", "from": "passed", "to": "failed"}
        ]});
        m.lost("connection refused".into());
        assert_eq!(m.level(), Level::Unreachable);
        assert_eq!(m.headline(), "Cannot reach the Tend service");
        assert!(m.failing().is_empty());
        let page = m.page(None, false);
        assert_eq!(page["unreachable"], "connection refused");
        assert_eq!(page["history"][0]["from"], "passed");
        assert_eq!(page["checks"], json!([]));
    }

    #[test]
    fn page_renders_the_fix() {
        let page = model(&[("fw", "failed")]).page(Some("fw"), true);
        assert_eq!(
            page["checks"][0]["fix_html"],
            "<p>Run <code>fix</code>.</p>\n"
        );
        assert_eq!(page["focus"], "fw");
        assert_eq!(page["no_tray"], true);
    }
}
