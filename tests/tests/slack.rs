//! The Slack resources against a Slack-compatible server on loopback
//! (`tend_e2e::slack`): the seed workflow's blocks arrive as Slack would
//! receive them, its buttons as `tend://` links that reach the execution,
//! and every failure — a Slack error, a 429 storm, a lost connection, an
//! unknown email, a missing token — ends as a named workflow error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tend::notify::link::Link;
use tend::resources::slack::{SecretToken, SlackApi, SlackResource, SlackSettings, TokenSource};
use tend::secrets::{MemoryStore, SecretStore};
use tend_e2e::reach::{Executions, TOKEN, seed_doubles};
use tend_e2e::slack::{Fault, SlackServer};
use tend_workflow::{Engine, Registry, Resource, Status, TaskCall, VirtualClock, Workflow};

const BOT: &str = "xoxb-test-token";
const LIMIT: Duration = Duration::from_secs(30);

struct Token(Result<String, String>);

impl TokenSource for Token {
    fn bot_token(&self) -> Result<String, String> {
        self.0.clone()
    }
}

fn api(server: &SlackServer, token: &str) -> SlackApi {
    SlackApi::new(
        SlackSettings {
            api_base: server.api_base(),
            backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            ..SlackSettings::default()
        },
        Arc::new(Token(Ok(token.to_string()))),
    )
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn seed() -> String {
    std::fs::read_to_string(tend_e2e::fixture("seed-workflow.json")).unwrap()
}

fn failing_event() -> Value {
    json!({
        "type": "ASSET_COMPLIANCE",
        "changes": {"passed": {"previous": true, "latest": false}},
        "item": {"id": "firewall"},
        "asset": {"uuid": "asset-1"}
    })
}

#[test]
fn the_seed_workflow_posts_its_blocks_and_its_links_reach_the_execution() {
    let server = SlackServer::start(BOT);
    server.add_user("ann@example.com", "U0ANN");
    let executions = Arc::new(Executions::default());
    let passes = Arc::new(Mutex::new(false));
    let mut registry = Registry::new();
    seed_doubles(&mut registry, "ann@example.com", passes.clone());
    SlackResource::new(api(&server, BOT), Some(executions.clone())).register(&mut registry);
    let text = seed();
    let wf = Arc::new(Workflow::parse(&text, Some(&registry)).expect("the seed is valid"));
    let engine = Engine::new(registry, Arc::new(VirtualClock::new(1_700_000_000_000)));

    runtime().block_on(async {
        let exec = Arc::new(engine.start(wf, failing_event()));
        executions.add(&exec);
        let waiting = tokio::time::timeout(LIMIT, exec.awaiting()).await.unwrap();
        assert_eq!(waiting[0].state, "slack_message_user", "{:?}", exec.history());

        // The owner by email (a form, as Slack reads this method), the DM, the post.
        let calls = server.calls();
        let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(
            methods,
            ["users.lookupByEmail", "conversations.open", "chat.postMessage"]
        );
        assert!(calls.iter().all(|c| c.authorization == format!("Bearer {BOT}")));
        assert_eq!(calls[0].content_type, "application/x-www-form-urlencoded");
        assert_eq!(calls[0].body, json!({"email": "ann@example.com"}));
        assert_eq!(calls[1].body, json!({"users": "U0ANN"}));
        assert!(calls[2].content_type.starts_with("application/json"));

        // The seed's blocks, templates filled and paths replaced, buttons linked.
        let seed: Value = serde_json::from_str(&text).unwrap();
        let mut expected = seed["states"]["slack_message_user"]["parameters"]["blocks"].clone();
        expected[0]["text"]["text"] = json!(
            "Hi Ann, The compliance rule Firewall enabled is *failing*. Please follow these steps to resolve the issue."
        );
        expected[1]["text"]["text"] =
            json!("Open *Settings → Network → Firewall* and switch it on.");
        for (i, event) in ["yes", "no"].iter().enumerate() {
            expected[2]["elements"][i]["url"] = json!(format!(
                "tend://interaction?execution={}&event={event}&token={TOKEN}",
                exec.id()
            ));
        }
        let posted = &calls[2].body;
        assert_eq!(posted["channel"], "D0ANN");
        assert_eq!(posted["blocks"], expected);

        // "Remind me later" opened on the device: the link's fields are the
        // execution's event; the WAIT (a day, on the virtual clock) then asks again.
        let url = posted["blocks"][2]["elements"][1]["url"].as_str().unwrap();
        let link = Link::parse(url).unwrap();
        assert_eq!(link.token, TOKEN);
        let response = tend::resources::Interactions::deliver(
            executions.as_ref(),
            &link.execution,
            &link.event,
            json!({"source": "link"}),
        )
        .unwrap();
        assert_eq!(response.unwrap()["text"], "Ok, I'll check back in tomorrow.");
        tokio::time::timeout(LIMIT, async {
            while server.calls_of("chat.postMessage").len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("asked again after the wait");
        tokio::time::timeout(LIMIT, exec.awaiting()).await.unwrap();

        // "I've fixed it", and the re-check passes: the execution ends.
        *passes.lock().unwrap() = true;
        exec.send_event("yes", json!({})).unwrap();
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.unwrap();
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
    });
}

#[test]
fn an_unknown_owner_fails_the_execution_with_a_named_error() {
    let server = SlackServer::start(BOT);
    let executions = Arc::new(Executions::default());
    let mut registry = Registry::new();
    seed_doubles(
        &mut registry,
        "nobody@example.com",
        Arc::new(Mutex::new(false)),
    );
    SlackResource::new(api(&server, BOT), Some(executions.clone())).register(&mut registry);
    let wf = Arc::new(Workflow::parse(&seed(), Some(&registry)).unwrap());
    let engine = Engine::new(registry, Arc::new(VirtualClock::new(0)));
    runtime().block_on(async {
        let exec = Arc::new(engine.start(wf, failing_event()));
        executions.add(&exec);
        let out = tokio::time::timeout(LIMIT, exec.wait()).await.unwrap();
        assert_eq!(out.status, Status::Failed);
        let e = out.error.unwrap();
        assert_eq!(e.error, "Slack.users_not_found");
        assert!(e.cause.contains("users.lookupByEmail"), "{}", e.cause);
    });
}

fn call(resource: &str, input: Value) -> TaskCall {
    TaskCall {
        resource: format!("zrn:integration:slack:{resource}"),
        input,
        execution_id: "exec-1".into(),
        state: "slack".into(),
        attempt: 0,
    }
}

/// Calls a resource; the error's name and cause, or the result.
fn run(r: &SlackResource, c: TaskCall) -> Result<Value, (String, String)> {
    runtime()
        .block_on(r.call(c))
        .map_err(|e| (e.error, e.cause))
}

#[test]
fn slack_failures_are_named_and_retried_where_it_helps() {
    let server = SlackServer::start(BOT);
    server.add_user("ann@example.com", "U0ANN");
    let slack = SlackResource::new(api(&server, BOT), None);
    let post = |channel: &str| {
        call(
            "chat:postMessage",
            json!({"channel": channel, "text": "The firewall is off"}),
        )
    };

    // It works, and `update` changes the message.
    let posted = run(&slack, post("ann@example.com")).unwrap();
    assert_eq!(posted["channel"], "D0ANN");
    assert_eq!(posted["user"], "U0ANN");
    let ts = posted["ts"].as_str().unwrap().to_string();
    let updated = run(
        &slack,
        call(
            "chat:update",
            json!({"channel": "D0ANN", "ts": ts, "text": "Fixed, thank you"}),
        ),
    )
    .unwrap();
    assert_eq!(updated["ts"], ts.as_str());
    assert_eq!(
        server.message("D0ANN", &ts).unwrap()["text"],
        "Fixed, thank you"
    );

    // Slack's `ok: false`: named after Slack's error, not retried.
    let before = server.calls_of("chat.postMessage").len();
    let e = run(&slack, post("C0NOPE")).unwrap_err();
    assert_eq!(e.0, "Slack.channel_not_found");
    assert_eq!(server.calls_of("chat.postMessage").len(), before + 1);
    let e = run(
        &slack,
        call(
            "chat:update",
            json!({"channel": "D0ANN", "ts": "1.2", "text": "x"}),
        ),
    )
    .unwrap_err();
    assert_eq!(e.0, "Slack.message_not_found");
    let e = run(
        &slack,
        call("users:lookupByEmail", json!({"email": "who@example.com"})),
    )
    .unwrap_err();
    assert_eq!(e.0, "Slack.users_not_found");

    // One 429: honoured (its Retry-After waited), then posted.
    server.fault("chat.postMessage", Fault::RateLimit { retry_after: 1 });
    let start = Instant::now();
    run(&slack, post("D0ANN")).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "Retry-After was not waited"
    );

    // A 429 storm: five tries, then Slack.ratelimited.
    let before = server.calls_of("chat.postMessage").len();
    server.always("chat.postMessage", Fault::RateLimit { retry_after: 0 });
    let e = run(&slack, post("D0ANN")).unwrap_err();
    server.calm();
    assert_eq!(e.0, "Slack.ratelimited");
    assert!(e.1.contains("429"), "{}", e.1);
    assert_eq!(server.calls_of("chat.postMessage").len(), before + 5);

    // A lost connection and a 503: tried again.
    server.fault("chat.postMessage", Fault::Drop);
    server.fault("chat.postMessage", Fault::Status(503));
    run(&slack, post("D0ANN")).unwrap();
    // Lost every time: Slack.unreachable, with the reason.
    server.always("chat.postMessage", Fault::Drop);
    let e = run(&slack, post("D0ANN")).unwrap_err();
    server.calm();
    assert_eq!(e.0, "Slack.unreachable");
    assert!(e.1.contains("5 tries"), "{}", e.1);

    // A wrong token; the token from the secret store; none there.
    let wrong = SlackResource::new(api(&server, "xoxb-wrong"), None);
    assert_eq!(
        run(&wrong, post("D0ANN")).unwrap_err().0,
        "Slack.invalid_auth"
    );
    let store = Arc::new(MemoryStore::new());
    let stored = SlackResource::new(
        SlackApi::new(
            SlackSettings {
                api_base: server.api_base(),
                ..SlackSettings::default()
            },
            Arc::new(SecretToken(store.clone())),
        )
        .unwrap(),
        None,
    );
    let e = run(&stored, post("D0ANN")).unwrap_err();
    assert_eq!(e.0, "Slack.not_authed");
    assert!(e.1.contains("tend secret set slack-bot-token"), "{}", e.1);
    store.set("slack-bot-token", BOT).unwrap();
    run(&stored, post("D0ANN")).unwrap();

    // Bad parameters say which.
    let e = run(&slack, call("chat:postMessage", json!({"text": "x"}))).unwrap_err();
    assert_eq!(e.0, "Slack.invalid_arguments");
    assert!(e.1.contains("`channel`"), "{}", e.1);
}
