//! Native notifications on Linux, for real: a private D-Bus session bus with
//! a notification server on it (`tend_e2e::dbus`).
//!
//! 1. The notify module shows a toast with title, body, buttons, urgency
//!    and timeout; a click comes back as the button's id; a second toast
//!    for the same check replaces the first; a repeat is suppressed.
//! 2. The whole path in the agent: a workflow's `zrn:agent:notify` task →
//!    the local API → a `tend session` process → the desktop; the click →
//!    `notified` → the workflow's event. With no session connected the
//!    task fails with `Agent.NoUserSession`, which the workflow catches.
//!
//! Everything runs in one test function: the bus address is process-wide
//! (`DBUS_SESSION_BUS_ADDRESS`, which notify-rust reads).
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tend::ipc::peer::Peer;
use tend::ipc::proto::{Op, Push};
use tend::ipc::server::{ApiError, Service};
use tend::ipc::sessions::Sessions;
use tend::notify::desktop::Desktop;
use tend::notify::{Action, Delivery, Desk, GatePolicy, Outcome, Request, Suppressed, Urgency};
use tend::resources::notify::{NotifyResource, NotifySettings};
use tend_e2e::dbus::{NotificationServer, PrivateBus};
use tend_e2e::reach::Executions;
use tend_workflow::{Engine, RealClock, Registry, Status, Workflow};
use tokio::sync::broadcast;

const LIMIT: Duration = Duration::from_secs(20);

fn request(id: &str, body: &str) -> Request {
    Request {
        id: id.into(),
        key: "firewall".into(),
        title: "The firewall is off".into(),
        body: body.into(),
        actions: vec![
            Action {
                id: "yes".into(),
                label: "I've fixed it".into(),
            },
            Action {
                id: "no".into(),
                label: "Remind me later".into(),
            },
        ],
        urgency: Urgency::Critical,
        timeout_secs: Some(30),
    }
}

/// The local API as far as sessions go: `session` and `notified`.
struct SessionApi {
    sessions: Arc<Sessions>,
    pushes: broadcast::Sender<Push>,
}

impl Service for SessionApi {
    async fn call(&self, peer: &Peer, op: Op) -> Result<Value, ApiError> {
        match op {
            Op::Session { .. } => Ok(json!({"registered": true})),
            Op::Notified {
                notification,
                outcome,
                action,
                reason,
            } => {
                self.sessions
                    .notified(peer, &notification, outcome, action, reason)?;
                Ok(json!({"accepted": true}))
            }
            other => Ok(json!({"op": other.name()})),
        }
    }
    fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.pushes.subscribe()
    }
    fn sessions(&self) -> Option<Arc<Sessions>> {
        Some(self.sessions.clone())
    }
}

const TOAST_WORKFLOW: &str = r#"{
  "name": "toast",
  "entry": "toast",
  "states": {
    "toast": {
      "type": "TASK",
      "resource": "zrn:agent:notify",
      "parameters": {
        "check": "$.item.id",
        "title": "The firewall is off",
        "body": "Your computer accepts connections from anyone on the network.",
        "fix": "$.fix",
        "actions": [
          {"id": "yes", "label": "I've fixed it"},
          {"id": "no", "label": "Remind me later"}
        ]
      },
      "catch": [{"errorEquals": ["Agent.NoUserSession"], "next": "no_session"}],
      "events": [
        {"name": "yes", "next": "fixed"},
        {"name": "no", "next": "later"}
      ]
    },
    "fixed": {"type": "SUCCEED"},
    "later": {"type": "SUCCEED"},
    "no_session": {"type": "SUCCEED"}
  }
}"#;

fn visited(history: &[tend_workflow::HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|h| serde_json::to_value(h).ok())
        .filter_map(|v| {
            v.pointer("/kind/state")
                .or_else(|| v.get("state"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn notifications_on_a_private_bus() {
    let bus = PrivateBus::start();
    let server = NotificationServer::start(&bus);
    // SAFETY: set before anything in this process reads the environment on
    // another thread; this file's only test sets it once.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", bus.address()) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The module.
    let (desk, mut answers) = Desk::new(Arc::new(Desktop::new("Tend")), GatePolicy::default());
    let shown = desk.show(&request("r1", "Turn it on.")).unwrap();
    let calls = server.wait_for_calls(1, LIMIT);
    let first = &calls[0];
    assert_eq!(
        shown,
        Delivery::Shown {
            desktop_id: first.id
        }
    );
    assert_eq!(first.app_name, "Tend");
    assert_eq!(first.summary, "The firewall is off");
    assert_eq!(first.body, "Turn it on.");
    assert_eq!(
        first.actions,
        vec![
            ("yes".to_string(), "I've fixed it".to_string()),
            ("no".to_string(), "Remind me later".to_string())
        ]
    );
    assert_eq!(first.urgency, Some(2));
    assert_eq!(first.expire_timeout, 30_000);
    assert_eq!(first.replaces_id, 0);

    // The same toast again while it is on screen: not shown again.
    assert_eq!(
        desk.show(&request("r2", "Turn it on.")).unwrap(),
        Delivery::Suppressed(Suppressed::Duplicate)
    );
    // New text for the same check: replaces the first in place.
    desk.show(&request("r3", "Turn it on, please.")).unwrap();
    let calls = server.wait_for_calls(2, LIMIT);
    assert_eq!(
        calls.len(),
        2,
        "the duplicate reached the desktop: {calls:?}"
    );
    assert_eq!(calls[1].replaces_id, first.id);

    server.invoke(first.id, "yes");
    let answer = rt
        .block_on(async { tokio::time::timeout(LIMIT, answers.recv()).await })
        .expect("an answer in time")
        .expect("the desk is alive");
    assert_eq!(answer.request, "r3");
    assert_eq!(answer.outcome, Outcome::Action("yes".into()));

    // A dismissal is its own outcome.
    desk.show(&Request {
        key: "disk".into(),
        ..request("r4", "Encrypt the disk.")
    })
    .unwrap();
    let calls = server.wait_for_calls(3, LIMIT);
    server.close(calls[2].id, 2);
    let answer = rt
        .block_on(async { tokio::time::timeout(LIMIT, answers.recv()).await })
        .unwrap()
        .unwrap();
    assert_eq!(
        (answer.request.as_str(), answer.outcome),
        ("r4", Outcome::Dismissed)
    );
    drop(desk);

    // 2. Workflow → local API → `tend session` → desktop, and back.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tend.sock");
    let sessions = Arc::new(Sessions::default());
    let api = Arc::new(SessionApi {
        sessions: sessions.clone(),
        pushes: broadcast::channel(4).0,
    });
    let executions = Arc::new(Executions::default());
    let mut registry = Registry::new();
    registry.exact(
        "zrn:agent:notify",
        NotifyResource::new(
            sessions.clone(),
            executions.clone(),
            NotifySettings {
                session_wait: Duration::from_millis(300),
                ack_wait: Duration::from_secs(10),
            },
        ),
    );
    let wf =
        Arc::new(Workflow::parse(TOAST_WORKFLOW, Some(&registry)).expect("the workflow is valid"));
    let engine = Engine::new(registry, Arc::new(RealClock));
    let input = json!({"item": {"id": "firewall"}, "fix": "Open Settings, Network, Firewall: on."});

    rt.block_on(async {
        let listener = tend::ipc::bind_unix(&socket).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(tend::ipc::server::serve_unix(listener, api.clone(), async {
            let _ = stop_rx.await;
        }));

        // No session yet: the workflow catches Agent.NoUserSession.
        let exec = Arc::new(engine.start(wf.clone(), input.clone()));
        executions.add(&exec);
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.expect("it ends");
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
        assert!(visited(&out.history).iter().any(|s| s == "no_session"), "{:?}", out.history);

        // Start the session process.
        let log = dir.path().join("session.log");
        let mut session = std::process::Command::new(tend_e2e::tend_bin())
            .args(["session", "--socket", socket.to_str().unwrap()])
            .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
            .env("TEND_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let start = tokio::time::Instant::now();
        while sessions.count() == 0 {
            assert!(
                start.elapsed() < LIMIT,
                "tend session did not register: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let exec = Arc::new(engine.start(wf.clone(), input.clone()));
        executions.add(&exec);
        let waiting = tokio::time::timeout(LIMIT, exec.awaiting()).await.expect("it waits");
        assert_eq!(waiting[0].names, vec!["yes".to_string(), "no".to_string()]);
        let calls = server.wait_for_calls(4, LIMIT);
        let toast = &calls[3];
        assert_eq!(toast.summary, "The firewall is off");
        assert_eq!(
            toast.body,
            "Your computer accepts connections from anyone on the network.\n\nOpen Settings, Network, Firewall: on."
        );
        assert_eq!(toast.actions.len(), 2);
        server.invoke(toast.id, "no");
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.expect("the click ends it");
        assert_eq!(out.status, Status::Succeeded);
        assert!(visited(&out.history).iter().any(|s| s == "later"), "{:?}", out.history);
        assert_eq!(
            executions.delivered.lock().unwrap().last().unwrap(),
            &(exec.id(), "no".to_string())
        );

        let _ = session.kill();
        let _ = session.wait();
        let _ = stop_tx.send(());
        let _ = serving.await;
    });
}
