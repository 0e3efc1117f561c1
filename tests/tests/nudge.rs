//! The default nudge (`policies/workflows/nudge.json`) and the Slack-only
//! variant (`slack-nudge.json`), run in process with the real notification
//! and Slack resources: a scripted user session on the session registry
//! (the real `tend session` on D-Bus is `tests/notify.rs`), the Slack
//! server on loopback, and the seed's agent resources as doubles. A manual
//! virtual clock makes the snoozes (a day each) instant.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tend::ipc::peer::Peer;
use tend::ipc::proto::{NotifiedOutcome, Push};
use tend::ipc::sessions::Sessions;
use tend::notify::Request;
use tend::notify::link::Link;
use tend::resources::Interactions;
use tend::resources::notify::{NotifyResource, NotifySettings};
use tend::resources::slack::{SlackApi, SlackResource, SlackSettings, TokenSource};
use tend_e2e::reach::{Executions, seed_doubles};
use tend_e2e::slack::SlackServer;
use tend_workflow::{Engine, Execution, Registry, Status, VirtualClock, Workflow};
use tokio::sync::mpsc;

const BOT: &str = "xoxb-nudge";
const LIMIT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(86_400);

struct Token;
impl TokenSource for Token {
    fn bot_token(&self) -> Result<String, String> {
        Ok(BOT.into())
    }
}

fn workflow(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../policies/workflows")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct World {
    server: SlackServer,
    sessions: Arc<Sessions>,
    executions: Arc<Executions>,
    passes: Arc<Mutex<bool>>,
    clock: VirtualClock,
    engine: Engine,
    wf: Arc<Workflow>,
}

fn world(file: &str) -> World {
    let server = SlackServer::start(BOT);
    server.add_user("ann@example.com", "U0ANN");
    let sessions = Arc::new(Sessions::default());
    let executions = Arc::new(Executions::default());
    let passes = Arc::new(Mutex::new(false));
    let mut registry = Registry::new();
    seed_doubles(&mut registry, "ann@example.com", passes.clone());
    registry.exact(
        "zrn:agent:notify",
        NotifyResource::new(
            sessions.clone(),
            executions.clone(),
            NotifySettings {
                session_wait: Duration::from_millis(200),
                ack_wait: Duration::from_secs(10),
            },
        ),
    );
    let api = SlackApi::new(
        SlackSettings {
            api_base: server.api_base(),
            ..SlackSettings::default()
        },
        Arc::new(Token),
    )
    .unwrap();
    SlackResource::new(api, Some(executions.clone())).register(&mut registry);
    let wf = Arc::new(
        Workflow::parse(&workflow(file), Some(&registry))
            .unwrap_or_else(|e| panic!("{file} is not a valid workflow: {e}")),
    );
    let clock = VirtualClock::manual(1_700_000_000_000);
    let engine = Engine::new(registry, Arc::new(clock.clone()));
    World {
        server,
        sessions,
        executions,
        passes,
        clock,
        engine,
        wf,
    }
}

fn failing() -> Value {
    json!({
        "changes": {"passed": {"previous": true, "latest": false}},
        "item": {"id": "firewall"},
        "asset": {"uuid": "asset-1"}
    })
}

/// A user session that shows everything it is sent (and says so).
struct ScriptedSession {
    peer: Peer,
    shown: mpsc::UnboundedReceiver<Request>,
    _registration: tend::ipc::sessions::Registration,
}

fn session(sessions: &Arc<Sessions>) -> ScriptedSession {
    let peer = Peer {
        uid: Some(1000),
        pid: None,
        session: None,
        admin: false,
        console: true,
    };
    let (tx, mut rx) = mpsc::channel::<String>(16);
    let registration = sessions.register(&peer, Some("ann".into()), tx);
    let (shown_tx, shown) = mpsc::unbounded_channel();
    let hub = sessions.clone();
    let p = peer.clone();
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let push: Push = serde_json::from_str(&line).unwrap();
            let r: Request = serde_json::from_value(push.data).unwrap();
            hub.notified(&p, &r.id, NotifiedOutcome::Shown, None, None)
                .unwrap();
            let _ = shown_tx.send(r);
        }
    });
    ScriptedSession {
        peer,
        shown,
        _registration: registration,
    }
}

impl ScriptedSession {
    async fn next(&mut self) -> Request {
        tokio::time::timeout(LIMIT, self.shown.recv())
            .await
            .expect("a notification in time")
            .unwrap()
    }

    fn click(&self, sessions: &Sessions, r: &Request, action: &str) {
        sessions
            .notified(
                &self.peer,
                &r.id,
                NotifiedOutcome::Action,
                Some(action.into()),
                None,
            )
            .unwrap();
    }
}

/// Waits until the execution sits in `state` (a WAIT, or awaiting events).
async fn until_in(exec: &Execution, state: &str) {
    tokio::time::timeout(LIMIT, async {
        loop {
            let h = exec.history();
            let last = h.iter().rev().find_map(|e| {
                let v = serde_json::to_value(e).ok()?;
                matches!(v["type"].as_str(), Some("WaitStarted" | "EventAwaited"))
                    .then(|| v["state"].as_str().map(str::to_string))
                    .flatten()
            });
            let entered_after = h
                .iter()
                .rev()
                .take_while(|e| {
                    let v = serde_json::to_value(e).unwrap();
                    !matches!(v["type"].as_str(), Some("WaitStarted" | "EventAwaited"))
                })
                .count();
            if last.as_deref() == Some(state) && entered_after == 0 {
                return;
            }
            assert!(!exec.is_finished(), "finished before {state}: {h:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never reached {state}: {:#?}", exec.history()));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn toast_twice_then_slack_then_fixed() {
    let w = world("nudge.json");
    runtime().block_on(async {
        let mut user = session(&w.sessions);
        let exec = Arc::new(w.engine.start(w.wf.clone(), failing()));
        w.executions.add(&exec);

        // The toast, with the fix and both buttons.
        let t1 = user.next().await;
        assert_eq!(t1.key, "firewall");
        assert_eq!(t1.title, "Firewall enabled is failing");
        // The fix's markdown (`*Settings → ...*`) shown as plain text.
        assert!(
            t1.body
                .ends_with("\n\nOpen Settings → Network → Firewall and switch it on."),
            "{}",
            t1.body
        );
        let labels: Vec<&str> = t1.actions.iter().map(|a| a.label.as_str()).collect();
        assert_eq!(labels, ["I've fixed it", "Remind me later"]);

        // "I've fixed it" while it still fails: re-checked, asked again.
        until_in(&exec, "toast_1").await;
        user.click(&w.sessions, &t1, "yes");
        let again = user.next().await;
        assert_eq!(again.title, t1.title);

        // Two snoozes (a day each) spend the budget.
        until_in(&exec, "toast_1").await;
        user.click(&w.sessions, &again, "no");
        until_in(&exec, "snooze_1").await;
        w.clock.advance(DAY);
        let t2 = user.next().await;
        until_in(&exec, "toast_2").await;
        user.click(&w.sessions, &t2, "no");
        until_in(&exec, "snooze_2").await;
        assert!(
            w.server.calls_of("chat.postMessage").is_empty(),
            "Slack before the budget was spent"
        );
        w.clock.advance(DAY);

        // Then Slack: the DM with the seed's blocks and link buttons.
        until_in(&exec, "slack_watch").await;
        let posts = w.server.calls_of("chat.postMessage");
        assert_eq!(posts.len(), 1);
        let post = &posts[0].body;
        assert_eq!(post["channel"], "D0ANN");
        let later = post["blocks"][2]["elements"][1]["url"].as_str().unwrap();
        let link = Link::parse(later).unwrap();
        assert_eq!(
            (link.execution.as_str(), link.event.as_str()),
            (exec.id().as_str(), "no")
        );

        // "Remind me later" from the Slack message; meanwhile it gets fixed.
        w.executions
            .deliver(&link.execution, &link.event, json!({}))
            .unwrap();
        until_in(&exec, "slack_snooze").await;
        *w.passes.lock().unwrap() = true;
        w.clock.advance(DAY);

        // The message and the toast say so, and the execution ends.
        let fixed = user.next().await;
        assert!(fixed.title.starts_with("Fixed"), "{fixed:?}");
        assert!(fixed.actions.is_empty());
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.unwrap();
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
        let ts = w.server.calls_of("chat.postMessage")[0].body.clone();
        let _ = ts;
        let update = w.server.calls_of("chat.update");
        assert_eq!(update.len(), 1);
        assert_eq!(update[0].body["text"], "Fixed, thank you");
        let channel = update[0].body["channel"].as_str().unwrap();
        let ts = update[0].body["ts"].as_str().unwrap();
        assert_eq!(
            w.server.message(channel, ts).unwrap()["text"],
            "Fixed, thank you"
        );
    });
}

#[test]
fn no_session_goes_to_slack_at_once() {
    let w = world("nudge.json");
    runtime().block_on(async {
        let exec = Arc::new(w.engine.start(w.wf.clone(), failing()));
        w.executions.add(&exec);
        until_in(&exec, "slack_watch").await;
        let h = serde_json::to_string(&exec.history()).unwrap();
        assert!(h.contains("Agent.NoUserSession"), "{h}");
        assert_eq!(w.server.calls_of("chat.postMessage").len(), 1);
        // "I've fixed it" from Slack, and it is: updated, ended.
        *w.passes.lock().unwrap() = true;
        w.executions.deliver(&exec.id(), "yes", json!({})).unwrap();
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.unwrap();
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
        assert_eq!(
            w.server.calls_of("chat.update")[0].body["text"],
            "Fixed, thank you"
        );
    });
}

#[test]
fn the_slack_only_variant_notices_a_fix_made_elsewhere() {
    let w = world("slack-nudge.json");
    runtime().block_on(async {
        let exec = Arc::new(w.engine.start(w.wf.clone(), failing()));
        w.executions.add(&exec);
        until_in(&exec, "slack_watch").await;
        // The user fixes it and clicks on their phone (no agent hears it):
        // the hourly re-check notices.
        *w.passes.lock().unwrap() = true;
        w.clock.advance(Duration::from_secs(3600));
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.unwrap();
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
        assert_eq!(
            w.server.calls_of("chat.update")[0].body["text"],
            "Fixed, thank you"
        );
    });
}
