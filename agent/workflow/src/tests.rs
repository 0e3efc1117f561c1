//! Whole-workflow tests: the seed workflow verbatim, and ASL semantics
//! written from the specification.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::*;

const SEED: &str = include_str!("../../../tests/fixtures/seed-workflow.json");
const T0: u64 = 1_700_000_000_000;

fn clock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::new(T0))
}

/// Resources for the seed: rule metadata, the asset's owner, Slack (records
/// what it was sent), and the re-check (answers from a queue).
fn seed_registry(sent: Arc<Mutex<Vec<Value>>>, rechecks: Arc<Mutex<Vec<bool>>>) -> Registry {
    let mut r = Registry::new();
    r.func("zrn:zercurity:api:compliance:frameworks:get", |c: TaskCall| async move {
        Ok(json!({"rule": format!("Rule {}", c.input["uuid"].as_str().unwrap_or("?")), "remediation": "Turn the firewall on."}))
    });
    r.func("zrn:agent:asset:get", |c: TaskCall| async move {
        Ok(json!({"uuid": c.input["uuid"], "name": "Ann", "email": "ann@example.com"}))
    });
    r.prefix(
        "zrn:integration:slack:",
        FnResource(move |c: TaskCall| {
            let sent = sent.clone();
            async move {
                assert_eq!(c.resource, "zrn:integration:slack:chat:postMessage");
                sent.lock().unwrap().push(c.input);
                Ok(json!({"ok": true, "ts": "1.2"}))
            }
        }),
    );
    r.func("zrn:agent:check:run", move |_c: TaskCall| {
        let passed = rechecks.lock().unwrap().remove(0);
        async move { Ok(json!({"passed": passed})) }
    });
    r
}

fn event(passed: bool) -> Value {
    json!({
        "uuid": "6f1c", "timestamp": "2024-05-01T10:00:00Z", "level": "warning", "meta": {},
        "changes": {"passed": {"last": !passed, "latest": passed}},
        "item": {"id": "firewall", "name": "Firewall enabled"},
        "company": {"uuid": "c1", "name": "Acme"}, "user": null,
        "team": {"uuid": "t1", "name": "IT"}, "asset": {"uuid": "a1", "name": "laptop-1"}
    })
}

fn entered(h: &[HistoryEvent]) -> Vec<String> {
    h.iter()
        .filter_map(|e| match &e.kind {
            HistoryKind::StateEntered { state, .. } => Some(state.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn seed_validates_verbatim() {
    let wf = Workflow::parse(SEED, None).unwrap();
    assert_eq!(wf.dialect, Dialect::Seed);
    assert_eq!(&*wf.machine.start, "check_rule");
    assert_eq!(wf.machine.states.len(), 8);
    let reg = seed_registry(Default::default(), Default::default());
    Workflow::parse(SEED, Some(&reg)).unwrap();
    let err = Workflow::parse(SEED, Some(&Registry::new())).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.path == "states.slack_yes.resource"),
        "{err}"
    );
}

#[tokio::test]
async fn seed_passing_rule_goes_straight_to_end() {
    let wf = Arc::new(Workflow::parse(SEED, None).unwrap());
    let engine = Engine::new(
        seed_registry(Default::default(), Default::default()),
        clock(),
    );
    let out = engine.run(wf, event(true)).await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    assert_eq!(entered(&out.history), ["check_rule", "passing_rule", "end"]);
    assert_eq!(out.output.unwrap(), event(true));
}

#[tokio::test]
async fn seed_failing_rule_yes_then_no_then_yes() {
    let wf = Arc::new(Workflow::parse(SEED, None).unwrap());
    let sent = Arc::new(Mutex::new(Vec::new()));
    // First re-check still fails, the second passes.
    let rechecks = Arc::new(Mutex::new(vec![false, true]));
    let c = clock();
    let engine = Engine::new(seed_registry(sent.clone(), rechecks), c.clone());
    let exec = engine.start(wf, event(false));

    // The message went out, with the template and the path filled in.
    let waiting = exec.awaiting().await;
    assert_eq!(waiting[0].state, "slack_message_user");
    assert_eq!(waiting[0].names, ["yes", "no"]);
    {
        let msg = &sent.lock().unwrap()[0];
        assert_eq!(msg["channel"], "ann@example.com");
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "Hi Ann, The compliance rule Rule firewall is *failing*. Please follow these steps to resolve the issue."
        );
        assert_eq!(msg["blocks"][1]["text"]["text"], "Turn the firewall on.");
        assert_eq!(msg["blocks"][2]["elements"][0]["value"], "yes");
    }
    // "Yes, I've fixed it": the re-check still fails, so the message goes again.
    let resp = exec.send_event("yes", json!({"user": "U1"})).unwrap();
    assert_eq!(resp.unwrap()["text"], "I've fixed it");
    exec.awaiting().await;
    assert_eq!(sent.lock().unwrap().len(), 2);
    // Snapshot while waiting: serializable, names the waiting state.
    let snap = serde_json::to_value(exec.snapshot()).unwrap();
    assert_eq!(snap["threads"][""]["state"], "slack_message_user");
    assert_eq!(snap["threads"][""]["phase"]["phase"], "await_event");
    // "Remind me later": a day's wait on the virtual clock, then again.
    let before = c.now_ms();
    let resp = exec.send_event("no", json!({})).unwrap();
    assert_eq!(resp.unwrap()["text"], "Ok, I'll check back in tomorrow.");
    exec.awaiting().await;
    assert_eq!(c.now_ms() - before, 86_400_000);
    assert_eq!(sent.lock().unwrap().len(), 3);
    assert_eq!(
        exec.send_event("maybe", json!({})),
        Err(EventError::NotAwaited("maybe".into()))
    );
    exec.send_event("yes", json!({})).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    let names: Vec<String> = entered(&out.history)
        .into_iter()
        .filter(|s| s != "get_compliance_rule" && s != "get_asset_owner")
        .collect();
    assert_eq!(
        names,
        [
            "check_rule",
            "failing_rule",
            "slack_message_user",
            "slack_yes",
            "still_failing",
            "slack_message_user",
            "slack_no",
            "slack_message_user",
            "slack_yes",
            "still_failing",
            "end"
        ]
    );
    let names = entered(&out.history);
    assert_eq!(
        names.iter().filter(|s| *s == "slack_message_user").count(),
        3
    );
    assert!(
        names.contains(&"get_compliance_rule".to_string())
            && names.contains(&"get_asset_owner".to_string())
    );
    assert_eq!(names.last().unwrap(), "end");
    let output = out.output.unwrap();
    // PARALLEL merged both branches' mappings into the input; mapping kept the re-check.
    assert_eq!(output["owner"]["email"], "ann@example.com");
    assert_eq!(output["compliance"]["rule"], "Rule firewall");
    assert_eq!(output["recheck"]["passed"], true);
    assert_eq!(output["item"]["id"], "firewall");
}

#[tokio::test]
async fn seed_resume_from_snapshot_while_waiting() {
    let wf = Arc::new(Workflow::parse(SEED, None).unwrap());
    let sent = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::new(
        seed_registry(sent.clone(), Arc::new(Mutex::new(vec![true]))),
        clock(),
    );
    let exec = engine.start(wf.clone(), event(false));
    exec.awaiting().await;
    let stored = serde_json::to_string(&exec.snapshot()).unwrap();
    exec.cancel();
    assert_eq!(exec.wait().await.status, Status::Aborted);
    // "After a restart": a new engine continues from the stored state.
    let state: ExecutionState = serde_json::from_str(&stored).unwrap();
    let exec = engine.resume(wf, state);
    assert_eq!(exec.awaiting().await[0].state, "slack_message_user");
    exec.send_event("yes", json!({})).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    assert_eq!(
        sent.lock().unwrap().len(),
        1,
        "the message is not sent twice"
    );
    assert_eq!(out.output.unwrap()["recheck"]["passed"], true);
}

#[tokio::test]
async fn journal_sees_every_step() {
    #[derive(Default)]
    struct Rec(Mutex<Vec<(String, Option<String>, usize)>>);
    impl Journal for Rec {
        fn record(&self, s: &Step<'_>) -> Result<(), JournalError> {
            self.0.lock().unwrap().push((
                s.thread.to_string(),
                s.thread_state.map(|t| t.state.to_string()),
                s.history.len(),
            ));
            Ok(())
        }
    }
    let rec = Arc::new(Rec::default());
    let wf = Arc::new(Workflow::parse(SEED, None).unwrap());
    let engine = Engine::new(
        seed_registry(Default::default(), Default::default()),
        clock(),
    )
    .with_journal(rec.clone());
    let out = engine.run(wf, event(true)).await;
    let steps = rec.0.lock().unwrap();
    let total: usize = steps.iter().map(|s| s.2).sum();
    assert_eq!(
        total,
        out.history.len(),
        "every history entry is journaled once"
    );
    assert_eq!(steps.last().unwrap().1, None);
}

#[tokio::test]
async fn a_failing_journal_suspends_the_execution_before_its_effects() {
    /// Commits the first `ok` steps, then fails every one.
    struct Flaky {
        ok: Mutex<usize>,
        last: Mutex<Option<String>>,
    }
    impl Journal for Flaky {
        fn record(&self, s: &Step<'_>) -> Result<(), JournalError> {
            let mut ok = self.ok.lock().unwrap();
            if *ok == 0 {
                return Err(JournalError("disk full".into()));
            }
            *ok -= 1;
            *self.last.lock().unwrap() = s.thread_state.map(|t| t.state.to_string());
            Ok(())
        }
    }
    let sent = Arc::new(Mutex::new(Vec::new()));
    let wf = Arc::new(Workflow::parse(SEED, None).unwrap());
    // Commit check_rule's entry, failing_rule's entry and its branches
    // row, the two branch entries; fail before the message is sent.
    let journal = Arc::new(Flaky {
        ok: Mutex::new(5),
        last: Mutex::new(None),
    });
    let engine = Engine::new(seed_registry(sent.clone(), Default::default()), clock())
        .with_journal(journal.clone());
    let ex = engine.start(wf, event(false));
    let out = ex.wait().await;
    assert!(ex.is_suspended());
    assert_eq!(
        out.status,
        Status::Running,
        "a suspended execution is not ended"
    );
    assert!(
        sent.lock().unwrap().is_empty(),
        "no effect after a failed commit"
    );
}

// ---- ASL semantics ----

fn asl(doc: Value) -> Arc<Workflow> {
    Arc::new(Workflow::from_value(&doc, None).unwrap_or_else(|e| panic!("{e}")))
}

async fn run_asl(doc: Value, input: Value, reg: Registry) -> Outcome {
    Engine::new(reg, clock()).run(asl(doc), input).await
}

#[tokio::test]
async fn pass_parameters_resultpath_outputpath() {
    let out = run_asl(
        json!({"StartAt": "P", "States": {"P": {
            "Type": "Pass", "InputPath": "$.in",
            "Parameters": {"v.$": "$.a", "lit": "x", "ctx.$": "$$.State.Name", "f.$": "States.Format('{}-{}', $.a, $.b)"},
            "ResultPath": "$.res", "OutputPath": "$.res", "End": true}}}),
        json!({"in": {"a": 1, "b": "two"}}),
        Registry::new(),
    )
    .await;
    assert_eq!(
        out.output.unwrap(),
        json!({"v": 1, "lit": "x", "ctx": "P", "f": "1-two"})
    );

    let out = run_asl(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.x.y", "Next": "Q"},
            "Q": {"Type": "Pass", "ResultPath": null, "Result": 5, "End": true}}}),
        json!({"k": 0}),
        Registry::new(),
    )
    .await;
    assert_eq!(out.output.unwrap(), json!({"k": 0, "x": {"y": {"r": 1}}}));
    // Defaults: Result replaces the input.
    let out = run_asl(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": [1], "End": true}}}),
        json!({}),
        Registry::new(),
    )
    .await;
    assert_eq!(out.output.unwrap(), json!([1]));
    // InputPath null gives {}.
    let out = run_asl(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": null, "End": true}}}),
        json!({"a": 1}),
        Registry::new(),
    )
    .await;
    assert_eq!(out.output.unwrap(), json!({}));
}

#[tokio::test]
async fn choice_operators_and_no_match() {
    let doc = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.n", "NumericGreaterThan": 10}, {"Not": {"Variable": "$.s", "StringEquals": "no"}}], "Next": "Big"},
            {"Or": [{"Variable": "$.s", "StringMatches": "sm*"}, {"Variable": "$.n", "NumericLessThanPath": "$.limit"}], "Next": "Small"},
            {"Variable": "$.t", "TimestampGreaterThan": "2020-01-01T00:00:00Z", "Next": "Late"}
        ]},
        "Big": {"Type": "Pass", "Result": "big", "End": true},
        "Small": {"Type": "Pass", "Result": "small", "End": true},
        "Late": {"Type": "Pass", "Result": "late", "End": true}
    }});
    let run = |i: Value| run_asl(doc.clone(), i, Registry::new());
    assert_eq!(
        run(json!({"n": 11, "s": "yes"})).await.output.unwrap(),
        "big"
    );
    assert_eq!(
        run(json!({"n": 1, "s": "small"})).await.output.unwrap(),
        "small"
    );
    assert_eq!(
        run(json!({"n": 11, "s": "no", "limit": 20}))
            .await
            .output
            .unwrap(),
        "small"
    );
    assert_eq!(
        run(json!({"n": 3, "limit": 4})).await.output.unwrap(),
        "small"
    );
    assert_eq!(
        run(json!({"n": 5, "t": "2024-01-01T00:00:00Z"}))
            .await
            .output
            .unwrap(),
        "late"
    );
    let out = run(json!({"n": 5})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.unwrap().error, "States.NoChoiceMatched");
}

fn flaky(fails: u32, name: &'static str) -> (Registry, Arc<Mutex<u32>>) {
    let calls = Arc::new(Mutex::new(0u32));
    let c2 = calls.clone();
    let mut r = Registry::new();
    r.func("flaky", move |_c: TaskCall| {
        let mut n = c2.lock().unwrap();
        *n += 1;
        let res = if *n <= fails {
            Err(ErrorInfo::new(name, format!("attempt {n}")))
        } else {
            Ok(json!({"ok": *n}))
        };
        async move { res }
    });
    (r, calls)
}

#[tokio::test]
async fn retry_backoff_on_virtual_clock() {
    let (reg, calls) = flaky(3, "Boom");
    let c = clock();
    let wf = asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky",
        "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 9}, {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 3}],
        "End": true}}}),
    );
    let out = Engine::new(reg, c.clone()).run(wf, json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    assert_eq!(*calls.lock().unwrap(), 4);
    let delays: Vec<u64> = out
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::RetryScheduled { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [2000, 6000, 18000]);
    assert_eq!(c.now_ms() - T0, 26_000);

    // MaxDelaySeconds caps; exhausted retries fail with the task's error.
    let (reg, calls) = flaky(10, "Boom");
    let wf = asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky",
        "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 5, "MaxAttempts": 3, "MaxDelaySeconds": 8}], "End": true}}}),
    );
    let out = Engine::new(reg, clock()).run(wf, json!({})).await;
    assert_eq!(*calls.lock().unwrap(), 4);
    let delays: Vec<u64> = out
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::RetryScheduled { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [5000, 8000, 8000]);
    assert_eq!(out.error.unwrap(), ErrorInfo::new("Boom", "attempt 4"));

    // Full jitter stays within the interval.
    let (reg, _) = flaky(1, "Boom");
    let wf = asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky",
        "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 10, "JitterStrategy": "FULL"}], "End": true}}}),
    );
    let out = Engine::new(reg, clock()).run(wf, json!({})).await;
    let d = out
        .history
        .iter()
        .find_map(|h| match &h.kind {
            HistoryKind::RetryScheduled { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .unwrap();
    assert!(d <= 10_000);
}

#[tokio::test]
async fn catch_with_error_object() {
    let (reg, _) = flaky(99, "Agent.NoUserSession");
    let out = run_asl(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "flaky", "Catch": [
            {"ErrorEquals": ["Other"], "Next": "Wrong"},
            {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Fallback"}], "End": true},
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Fallback": {"Type": "Pass", "End": true}}}), json!({"a": 1}), reg).await;
    assert_eq!(out.status, Status::Succeeded);
    assert_eq!(
        out.output.unwrap(),
        json!({"a": 1, "err": {"Error": "Agent.NoUserSession", "Cause": "attempt 1"}})
    );
}

#[tokio::test]
async fn task_timeout_is_states_timeout() {
    let mut reg = Registry::new();
    reg.func("slow", |_c: TaskCall| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(json!(1))
    });
    let out = run_asl(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "slow", "TimeoutSeconds": 5,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "F"}], "End": true},
        "F": {"Type": "Fail", "Error": "TooSlow", "Cause": "timed out"}}}), json!({}), reg).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.unwrap(), ErrorInfo::new("TooSlow", "timed out"));
}

#[tokio::test]
async fn map_and_parallel_outputs() {
    let mut reg = Registry::new();
    reg.func("double", |c: TaskCall| async move {
        Ok(json!(c.input["v"].as_i64().unwrap() * 2))
    });
    let out = run_asl(json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 2,
              "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
              "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "double", "End": true}}},
              "ResultPath": "$.doubled", "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "InputPath": "$.doubled", "End": true}}}
        ], "ResultPath": "$.par", "End": true}}}), json!({"xs": [1, 2, 3]}), reg).await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    let o = out.output.unwrap();
    assert_eq!(o["doubled"], json!([2, 4, 6]));
    assert_eq!(o["par"], json!(["a", [2, 4, 6]]));

    // A failing branch fails the Parallel with its error, which Catch sees.
    let out = run_asl(json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "BranchBroke", "Cause": "b"}}}
        ], "Catch": [{"ErrorEquals": ["BranchBroke"], "Next": "Ok"}], "End": true},
        "Ok": {"Type": "Succeed"}}}), json!({}), Registry::new()).await;
    assert_eq!(out.status, Status::Succeeded);
    assert_eq!(
        out.output.unwrap(),
        json!({"Error": "BranchBroke", "Cause": "b"})
    );
}

#[tokio::test]
async fn wait_forms() {
    let c = clock();
    let wf = asl(json!({"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 10, "Next": "W2"},
        "W2": {"Type": "Wait", "SecondsPath": "$.s", "Next": "W3"},
        "W3": {"Type": "Wait", "TimestampPath": "$.ts", "Next": "W4"},
        "W4": {"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z", "End": true}}}));
    let out = Engine::new(Registry::new(), c.clone())
        .run(wf, json!({"s": 20, "ts": "2023-11-14T23:00:00Z"}))
        .await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    // 1_700_000_000 s is 2023-11-14T22:13:20Z; +30 s, then until 23:00:00, then a past time.
    assert_eq!(c.now_ms(), 1_700_002_800_000);
}

#[tokio::test]
async fn fail_with_error_and_cause_paths() {
    let out = run_asl(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}}),
        json!({"e": "Custom.Err", "c": "because"}), Registry::new()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.unwrap(), ErrorInfo::new("Custom.Err", "because"));
}

#[tokio::test]
async fn result_selector_and_runtime_errors() {
    let mut reg = Registry::new();
    reg.func("api", |_c: TaskCall| async move {
        Ok(json!({"body": {"id": 7}, "headers": {}}))
    });
    let out = run_asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "api",
        "ResultSelector": {"id.$": "$.body.id"}, "ResultPath": "$.r", "End": true}}}),
        json!({"k": 1}),
        reg,
    )
    .await;
    assert_eq!(out.output.unwrap(), json!({"k": 1, "r": {"id": 7}}));
    // A missing InputPath is States.Runtime: not caught by States.ALL.
    let out = run_asl(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.nope", "End": true}}}), json!({}), Registry::new()).await;
    assert_eq!(out.error.unwrap().error, "States.Runtime");
    // A bad parameter path is States.ParameterPathFailure, catchable.
    let out = run_asl(
        json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"x.$": "$.nope"}, "End": true}}}),
        json!({}),
        Registry::new(),
    )
    .await;
    assert_eq!(out.error.unwrap().error, "States.ParameterPathFailure");
}

#[tokio::test]
async fn event_timeout_default_and_cancel() {
    let doc = json!({"name": "t", "entry": "ask", "states": {
        "ask": {"type": "TASK", "resource": "r", "events": [{"name": "ok", "next": "done"}],
                "eventsTimeoutSeconds": 60, "eventsDefault": "late"},
        "done": {"type": "SUCCESS"}, "late": {"type": "PASS", "result": "late", "end": true}}});
    let mut reg = Registry::new();
    reg.func("r", |_c: TaskCall| async move { Ok(json!({})) });
    let c = Arc::new(VirtualClock::manual(T0));
    let engine = Engine::new(reg, c.clone());
    let wf = Arc::new(Workflow::from_value(&doc, None).unwrap());
    let exec = engine.start(wf.clone(), json!({}));
    exec.awaiting().await;
    c.advance(Duration::from_secs(61));
    let out = exec.wait().await;
    assert_eq!(out.output.unwrap(), "late");
    let exec = engine.start(wf, json!({}));
    exec.awaiting().await;
    exec.cancel();
    assert_eq!(exec.wait().await.status, Status::Aborted);
}

#[test]
fn validation_errors_name_their_paths() {
    let bad = json!({"StartAt": "A", "States": {
        "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": "one", "Next": "B"}], "Default": "Nowhere"},
        "B": {"Type": "Task", "Resource": "r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}, {"ErrorEquals": ["X"], "Next": "A"}], "Next": "Gone"},
        "C": {"Type": "Pass", "End": true},
        "D": {"Type": "Choice", "Choices": []},
        "E": {"Type": "Bogus"}
    }});
    let err = match reader::read(&bad) {
        Err(e) => e,
        Ok(wf) => Invalid {
            problems: validate::validate(&wf, None),
        },
    };
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(
        paths.contains(&"States.A.Choices[0].NumericEquals"),
        "{err}"
    );
    assert!(paths.contains(&"States.D.Choices"), "{err}");
    assert!(paths.contains(&"States.E.Type"), "{err}");
    let wf = reader::read(&json!({"StartAt": "A", "States": {
        "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "B"}], "Default": "Nowhere"},
        "B": {"Type": "Task", "Resource": "r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}, {"ErrorEquals": ["X"], "Next": "A"}], "Next": "Gone"},
        "C": {"Type": "Pass", "End": true}
    }})).unwrap();
    let probs = validate::validate(&wf, Some(&Registry::new()));
    let paths: Vec<&str> = probs.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"States.A.Default"), "{probs:?}");
    assert!(paths.contains(&"States.B.Next"), "{probs:?}");
    assert!(
        paths.contains(&"States.B.Catch[0].ErrorEquals"),
        "{probs:?}"
    );
    assert!(paths.contains(&"States.C"), "unreachable: {probs:?}");
    assert!(paths.contains(&"States.B.Resource"), "{probs:?}");
    // Seed spelling in paths.
    let err = Workflow::from_value(
        &json!({"entry": "a", "states": {"a": {"type": "PASS", "next": "zz"}}}),
        None,
    )
    .unwrap_err();
    assert_eq!(err.problems[0].path, "states.a.next");
}

#[test]
fn graphs_highlight_a_path() {
    let wf = Workflow::parse(SEED, None).unwrap();
    let trace = graph::Trace {
        states: ["check_rule", "passing_rule", "end"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        edges: [
            ("check_rule".into(), "passing_rule".into()),
            ("passing_rule".into(), "end".into()),
        ]
        .into_iter()
        .collect(),
        failed: None,
    };
    let m = graph::mermaid(&wf, Some(&trace));
    assert!(m.starts_with("flowchart TD"));
    assert!(m.contains("s_check_rule{"));
    assert!(m.contains("class s_passing_rule visited"));
    assert!(m.contains("linkStyle"));
    assert!(m.contains("event yes"));
    let d = graph::dot(&wf, Some(&trace));
    assert!(d.starts_with("digraph workflow {"));
    assert!(d.contains("subgraph cluster_1"));
    assert!(d.contains("s_check_rule -> s_passing_rule [label=\"$.changes.passed.latest == true\", color=\"#2a8a2a\""));
}

// ---------------------------------------------------------------------------
// The examples of AWS's Step Functions documentation (input and output
// processing, intrinsic functions, Choice, Retry/Catch, Map), with the
// outputs the documentation gives.

/// Runs a one-state machine built from `state` (a Pass unless it says
/// otherwise) on `input`.
async fn one(state: Value, input: Value) -> Outcome {
    let mut state = state;
    if state.get("Type").is_none() {
        state["Type"] = json!("Pass");
    }
    state["End"] = json!(true);
    run_asl(
        json!({"StartAt": "S", "States": {"S": state}}),
        input,
        Registry::new(),
    )
    .await
}

async fn one_ok(state: Value, input: Value) -> Value {
    let out = one(state, input).await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
    out.output.unwrap()
}

fn doc_input() -> Value {
    json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"})
}

#[tokio::test]
async fn docs_result_path_forms() {
    let hello = json!("Hello, Step Functions!");
    // Default and "$": the result replaces the input.
    assert_eq!(one_ok(json!({"Result": hello}), doc_input()).await, hello);
    assert_eq!(
        one_ok(json!({"Result": hello, "ResultPath": "$"}), doc_input()).await,
        hello
    );
    // null: the input passes through, the result is discarded.
    assert_eq!(
        one_ok(json!({"Result": hello, "ResultPath": null}), doc_input()).await,
        doc_input()
    );
    // A path: the result is added to the input.
    let mut want = doc_input();
    want["taskresult"] = hello.clone();
    assert_eq!(
        one_ok(
            json!({"Result": hello, "ResultPath": "$.taskresult"}),
            doc_input()
        )
        .await,
        want
    );
    // A path that exists: the node is replaced.
    let mut want = doc_input();
    want["who"] = hello.clone();
    assert_eq!(
        one_ok(json!({"Result": hello, "ResultPath": "$.who"}), doc_input()).await,
        want
    );
    // A nested path creates the objects on the way.
    let mut want = doc_input();
    want["strings"] = json!({"lambdaresult": hello});
    assert_eq!(
        one_ok(
            json!({"Result": hello, "ResultPath": "$.strings.lambdaresult"}),
            doc_input()
        )
        .await,
        want
    );
    // A path through a value that is not an object fails with
    // States.ResultPathMatchFailure.
    let out = one(
        json!({"Result": 1, "ResultPath": "$.who.name"}),
        doc_input(),
    )
    .await;
    assert_eq!(out.error.unwrap().error, "States.ResultPathMatchFailure");
}

#[tokio::test]
async fn docs_input_path_parameters_output_path() {
    // InputPath selects part of the input.
    let input = json!({"comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"}});
    assert_eq!(
        one_ok(json!({"InputPath": "$.dataset2"}), input.clone()).await,
        json!({"val1": "a", "val2": "b", "val3": "c"})
    );
    // An InputPath may select an array item.
    assert_eq!(
        one_ok(json!({"InputPath": "$.a[1]"}), json!({"a": [1, 2, 3]})).await,
        json!(2)
    );
    // Parameters: static values and `.$` paths, nested.
    let input = json!({"comment": "Example for Parameters.",
        "product": {"details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock", "sku": "2317", "cost": "$23"}});
    assert_eq!(
        one_ok(
            json!({"Parameters": {"comment": "Selecting what I care about.",
            "MyDetails": {"size.$": "$.product.details.size",
                "exists.$": "$.product.availability", "StaticValue": "foo"}}}),
            input
        )
        .await,
        json!({"comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}})
    );
    // A `.$` path that selects with a wildcard gives an array.
    assert_eq!(
        one_ok(
            json!({"Parameters": {"all.$": "$.items[*].id"}}),
            json!({"items": [{"id": 1}, {"id": 2}]})
        )
        .await,
        json!({"all": [1, 2]})
    );
    // OutputPath selects part of the output; InputPath, ResultPath and
    // OutputPath compose in that order.
    assert_eq!(
        one_ok(
            json!({"InputPath": "$.lambda", "Result": {"k": 1}, "ResultPath": "$.data.r",
                "OutputPath": "$.data"}),
            json!({"lambda": {"who": "AWS"}, "data": {"x": 1}})
        )
        .await,
        json!({"x": 1, "r": {"k": 1}})
    );
    // ResultPath writes into the state's raw input, not the InputPath
    // selection.
    assert_eq!(
        one_ok(
            json!({"InputPath": "$.a", "Result": 2, "ResultPath": "$.b"}),
            json!({"a": {"x": 1}})
        )
        .await,
        json!({"a": {"x": 1}, "b": 2})
    );
    // OutputPath null gives {}.
    assert_eq!(
        one_ok(json!({"OutputPath": null}), json!({"a": 1})).await,
        json!({})
    );
    // An OutputPath that selects nothing is States.Runtime.
    let out = one(json!({"OutputPath": "$.nope"}), json!({"a": 1})).await;
    assert_eq!(out.error.unwrap().error, "States.Runtime");
}

#[tokio::test]
async fn docs_result_selector_on_a_task() {
    let mut reg = Registry::new();
    reg.func("createCluster", |_c: TaskCall| async move {
        Ok(
            json!({"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
            "output": {"SdkHttpMetadata": {"HttpStatusCode": 200},
                "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}),
        )
    });
    let out = run_asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "createCluster",
            "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
            "ResultPath": "$.EMROutput", "End": true}}}),
        json!({"cluster": "my"}),
        reg,
    )
    .await;
    assert_eq!(
        out.output.unwrap(),
        json!({"cluster": "my", "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE",
            "ResourceType": "elasticmapreduce"}})
    );
}

#[tokio::test]
async fn docs_intrinsic_functions() {
    let f = |expr: &str| json!({"Parameters": {"r.$": expr}});
    let cases: Vec<(&str, Value, Value)> = vec![
        ("States.Array($.Id)", json!({"Id": 123456}), json!([123456])),
        (
            "States.ArrayPartition($.inputArray, 4)",
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        ),
        (
            "States.ArrayContains($.inputArray, $.lookingFor)",
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}),
            json!(true),
        ),
        (
            "States.ArrayRange(1, 9, 2)",
            json!({}),
            json!([1, 3, 5, 7, 9]),
        ),
        ("States.ArrayRange(5, 1, -2)", json!({}), json!([5, 3, 1])),
        (
            // At the end of i64's range the sequence stops instead of overflowing.
            "States.ArrayRange(9223372036854775806, 9223372036854775807, 5)",
            json!({}),
            json!([9223372036854775806i64]),
        ),
        (
            "States.ArrayGetItem($.inputArray, $.index)",
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}),
            json!(6),
        ),
        (
            "States.ArrayLength($.inputArray)",
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            json!(9),
        ),
        (
            "States.ArrayUnique($.inputArray)",
            json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}),
            json!([1, 2, 3, 4]),
        ),
        (
            "States.Base64Encode($.input)",
            json!({"input": "Data to encode"}),
            json!("RGF0YSB0byBlbmNvZGU="),
        ),
        (
            "States.Base64Decode($.base64)",
            json!({"base64": "RGF0YSB0byBlbmNvZGU="}),
            json!("Data to encode"),
        ),
        (
            "States.Hash($.Data, $.Algorithm)",
            json!({"Data": "input data", "Algorithm": "SHA-1"}),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ),
        (
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
                "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}),
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        ),
        (
            "States.StringToJson($.escapedJsonString)",
            json!({"escapedJsonString": "{\"foo\": \"bar\"}"}),
            json!({"foo": "bar"}),
        ),
        (
            "States.JsonToString($.unescapedJson)",
            json!({"unescapedJson": {"foo": "bar"}}),
            json!("{\"foo\":\"bar\"}"),
        ),
        (
            "States.MathAdd($.value1, $.step)",
            json!({"value1": 111, "step": -1}),
            json!(110),
        ),
        (
            "States.StringSplit($.inputString, $.splitter)",
            json!({"inputString": "1,2,3,4,5", "splitter": ","}),
            json!(["1", "2", "3", "4", "5"]),
        ),
        (
            "States.StringSplit($.inputString, $.splitter)",
            json!({"inputString": "This.is+a,test=string", "splitter": ".+,="}),
            json!(["This", "is", "a", "test", "string"]),
        ),
        (
            "States.Format('Hello, my name is {}.', $.name)",
            json!({"name": "Arnav"}),
            json!("Hello, my name is Arnav."),
        ),
        (
            "States.Format('{} {} \\{\\} \\'q\\'', $.n, $.b)",
            json!({"n": 1.5, "b": true}),
            json!("1.5 true {} 'q'"),
        ),
        (
            // Nine nested calls, as in the documentation's ARN example.
            "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), States.ArrayLength(States.Array(1, 2)))",
            json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/r/1.2.3"}}),
            json!("1.2.2"),
        ),
    ];
    for (expr, input, want) in cases {
        assert_eq!(one_ok(f(expr), input).await, json!({"r": want}), "{expr}");
    }
    // MathRandom: within [start, end); a seed repeats.
    let r = one_ok(f("States.MathRandom(1, 999)"), json!({})).await["r"]
        .as_i64()
        .unwrap();
    assert!((1..999).contains(&r));
    let a = one_ok(f("States.MathRandom(1, 999, 42)"), json!({})).await;
    let b = one_ok(f("States.MathRandom(1, 999, 42)"), json!({})).await;
    assert_eq!(a, b);
    // UUID: a version 4 UUID.
    let u = one_ok(f("States.UUID()"), json!({})).await;
    let u = u["r"].as_str().unwrap();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4");
    // Failures are States.IntrinsicFailure (and catchable).
    for (expr, input) in [
        ("States.ArrayGetItem($.a, 5)", json!({"a": [1]})),
        ("States.StringToJson($.s)", json!({"s": "{not json"})),
        ("States.Base64Decode($.s)", json!({"s": "***"})),
        ("States.Hash($.s, 'SHA-3')", json!({"s": "x"})),
        ("States.ArrayRange(1, 2000, 1)", json!({})),
        ("States.ArrayRange(1, 3, 0)", json!({})),
        ("States.MathAdd(9223372036854775807, 1)", json!({})),
        ("States.Format('{} {}', $.a)", json!({"a": 1})),
    ] {
        let out = one(f(expr), input).await;
        assert_eq!(out.status, Status::Failed, "{expr}");
        assert_eq!(
            out.error.unwrap().error,
            "States.IntrinsicFailure",
            "{expr}"
        );
    }
}

#[tokio::test]
async fn docs_choice_rules() {
    let doc = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"Variable": "$.value", "IsPresent": false, "Next": "Missing"},
            {"Variable": "$.value", "IsNull": true, "Next": "Null"},
            {"Variable": "$.value", "IsNumeric": false, "Next": "NotNumber"},
            {"Variable": "$.value", "NumericEquals": 0, "Next": "Zero"},
            {"And": [{"Variable": "$.value", "NumericGreaterThanEquals": 20},
                     {"Variable": "$.value", "NumericLessThan": 30}], "Next": "Twenties"},
            {"Variable": "$.value", "NumericLessThanEqualsPath": "$.limit", "Next": "UnderLimit"}
        ], "Default": "Other"},
        "Public": {"Type": "Pass", "Result": "Public", "End": true},
        "Missing": {"Type": "Pass", "Result": "Missing", "End": true},
        "Null": {"Type": "Pass", "Result": "Null", "End": true},
        "NotNumber": {"Type": "Pass", "Result": "NotNumber", "End": true},
        "Zero": {"Type": "Pass", "Result": "Zero", "End": true},
        "Twenties": {"Type": "Pass", "Result": "Twenties", "End": true},
        "UnderLimit": {"Type": "Pass", "Result": "UnderLimit", "End": true},
        "Other": {"Type": "Pass", "Result": "Other", "End": true}}});
    let cases = [
        (json!({"type": "Public"}), "Public"),
        (json!({"type": "Private"}), "Missing"),
        (json!({"type": "Private", "value": null}), "Null"),
        (json!({"type": "Private", "value": "7"}), "NotNumber"),
        (json!({"type": "Private", "value": 0}), "Zero"),
        (json!({"type": "Private", "value": 0.0}), "Zero"),
        (json!({"type": "Private", "value": 25}), "Twenties"),
        (
            json!({"type": "Private", "value": 30, "limit": 30}),
            "UnderLimit",
        ),
        (
            json!({"type": "Private", "value": 31, "limit": 30}),
            "Other",
        ),
        // A ...Path operand that selects nothing makes the rule false.
        (json!({"type": "Private", "value": 31}), "Other"),
    ];
    for (input, want) in cases {
        let out = run_asl(doc.clone(), input.clone(), Registry::new()).await;
        assert_eq!(out.output.unwrap(), json!(want), "{input}");
    }
    // String and timestamp families, StringMatches with escapes.
    let doc = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.s", "StringMatches": "log-*.txt", "Next": "Log"},
            {"Variable": "$.s", "StringMatches": "a\\*b", "Next": "Star"},
            {"Variable": "$.s", "StringGreaterThanEqualsPath": "$.min", "Next": "Late"},
            {"Variable": "$.t", "TimestampEqualsPath": "$.u", "Next": "Same"},
            {"Variable": "$.t", "IsTimestamp": true, "Next": "Stamp"},
            {"Variable": "$.b", "BooleanEqualsPath": "$.c", "Next": "Bools"}
        ], "Default": "Other"},
        "Log": {"Type": "Pass", "Result": "Log", "End": true},
        "Star": {"Type": "Pass", "Result": "Star", "End": true},
        "Late": {"Type": "Pass", "Result": "Late", "End": true},
        "Same": {"Type": "Pass", "Result": "Same", "End": true},
        "Stamp": {"Type": "Pass", "Result": "Stamp", "End": true},
        "Bools": {"Type": "Pass", "Result": "Bools", "End": true},
        "Other": {"Type": "Pass", "Result": "Other", "End": true}}});
    let cases = [
        (json!({"s": "log-2024-01-01.txt"}), "Log"),
        (json!({"s": "a*b"}), "Star"),
        (json!({"s": "axb"}), "Other"),
        (json!({"s": "m", "min": "l"}), "Late"),
        (
            json!({"t": "2016-03-14T01:59:00Z", "u": "2016-03-14T02:59:00+01:00"}),
            "Same",
        ),
        (json!({"t": "2016-03-14T01:59:00Z"}), "Stamp"),
        (json!({"t": "2016-03-14 01:59:00"}), "Other"),
        (json!({"b": false, "c": false}), "Bools"),
        (json!({"b": false, "c": "false"}), "Other"),
    ];
    for (input, want) in cases {
        let out = run_asl(doc.clone(), input.clone(), Registry::new()).await;
        assert_eq!(out.output.unwrap(), json!(want), "{input}");
    }
}

#[tokio::test]
async fn docs_retry_intervals_backoff_and_max_delay() {
    // IntervalSeconds 3, BackoffRate 1.5, MaxAttempts 3: waits 3, 4.5, 6.75 s;
    // MaxDelaySeconds caps each wait.
    for (max_delay, waited_ms) in [
        (None, 3_000 + 4_500 + 6_750),
        (Some(4), 3_000 + 4_000 + 4_000),
    ] {
        let (reg, _calls) = flaky(3, "flaky");
        let c = clock();
        let mut retrier = json!({"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3,
            "BackoffRate": 1.5, "MaxAttempts": 3});
        if let Some(m) = max_delay {
            retrier["MaxDelaySeconds"] = json!(m);
        }
        let wf = asl(json!({"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "flaky", "Retry": [retrier], "End": true}}}));
        let start = c.now_ms();
        let out = Engine::new(reg, c.clone()).run(wf, json!({})).await;
        assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
        assert_eq!(c.now_ms() - start, waited_ms);
    }
    // MaxAttempts 0: never retried; the first matching retrier decides.
    let (reg, calls) = flaky(1, "flaky");
    let out = run_asl(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky",
            "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 0},
                      {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}], "End": true}}}),
        json!({}),
        reg,
    )
    .await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn docs_catch_error_output_and_fallbacks() {
    // The error output lands at the catcher's ResultPath; without one it
    // replaces the input.
    let doc = |rp: Value| {
        let mut catcher = json!({"ErrorEquals": ["States.ALL"], "Next": "Recovered"});
        if !rp.is_null() {
            catcher["ResultPath"] = rp;
        }
        json!({"StartAt": "F", "States": {
            "F": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
                "X": {"Type": "Fail", "Error": "CustomError", "Cause": "This is a custom error!"}}}],
                "Catch": [catcher], "End": true},
            "Recovered": {"Type": "Pass", "End": true}}})
    };
    let out = run_asl(
        doc(json!("$.error-info")),
        json!({"foo": "bar"}),
        Registry::new(),
    )
    .await;
    assert_eq!(
        out.output.unwrap(),
        json!({"foo": "bar", "error-info": {"Error": "CustomError", "Cause": "This is a custom error!"}})
    );
    let out = run_asl(doc(Value::Null), json!({"foo": "bar"}), Registry::new()).await;
    assert_eq!(
        out.output.unwrap(),
        json!({"Error": "CustomError", "Cause": "This is a custom error!"})
    );
    // Catchers are tried in order; States.ALL catches what the named ones
    // do not; a catcher that does not match lets the error through.
    let run = |error: &'static str| {
        run_asl(
            json!({"StartAt": "F", "States": {
                "F": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
                    "X": {"Type": "Fail", "Error": error}}}],
                    "Catch": [{"ErrorEquals": ["A", "B"], "Next": "AB"},
                              {"ErrorEquals": ["States.ALL"], "Next": "All"}], "End": true},
                "AB": {"Type": "Pass", "Result": "AB", "End": true},
                "All": {"Type": "Pass", "Result": "All", "End": true}}}),
            json!({}),
            Registry::new(),
        )
    };
    assert_eq!(run("B").await.output.unwrap(), json!("AB"));
    assert_eq!(run("C").await.output.unwrap(), json!("All"));
    let out = run_asl(
        json!({"StartAt": "F", "States": {
            "F": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
                "X": {"Type": "Fail", "Error": "C"}}}],
                "Catch": [{"ErrorEquals": ["A"], "Next": "AB"}], "End": true},
            "AB": {"Type": "Succeed"}}}),
        json!({}),
        Registry::new(),
    )
    .await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.unwrap().error, "C");
}

#[tokio::test]
async fn docs_map_item_selector_context_and_result() {
    // The documentation's ItemSelector example: each item with its index
    // and a value from the Map's input.
    let out = one_ok(
        json!({"Type": "Map", "ItemsPath": "$.detail.shipped",
            "ItemSelector": {"ContextIndex.$": "$$.Map.Item.Index",
                "ContextValue.$": "$$.Map.Item.Value", "delivery-partner.$": "$.delivery-partner"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "ResultPath": "$.detail.shipped"}),
        json!({"delivery-partner": "UQS", "detail": {"shipped": [
            {"prod": "R31", "dest-code": 9511, "quantity": 1344},
            {"prod": "S39", "dest-code": 9511, "quantity": 40}]}}),
    )
    .await;
    assert_eq!(
        out,
        json!({"delivery-partner": "UQS", "detail": {"shipped": [
            {"ContextIndex": 0, "ContextValue": {"prod": "R31", "dest-code": 9511, "quantity": 1344}, "delivery-partner": "UQS"},
            {"ContextIndex": 1, "ContextValue": {"prod": "S39", "dest-code": 9511, "quantity": 40}, "delivery-partner": "UQS"}]}})
    );
    // An empty array maps to an empty array; ItemsPath on a non-array is
    // States.Runtime.
    let map = json!({"Type": "Map", "ItemsPath": "$.xs",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
    assert_eq!(one_ok(map.clone(), json!({"xs": []})).await, json!([]));
    let out = one(map, json!({"xs": 5})).await;
    assert_eq!(out.error.unwrap().error, "States.Runtime");
    // The legacy Iterator and Parameters spellings work the same.
    assert_eq!(
        one_ok(
            json!({"Type": "Map", "ItemsPath": "$.xs",
                "Parameters": {"v.$": "$$.Map.Item.Value"},
                "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "OutputPath": "$.v", "End": true}}}}),
            json!({"xs": [3, 4]})
        )
        .await,
        json!([3, 4])
    );
}

#[tokio::test]
async fn docs_context_object_fields() {
    let out = one_ok(
        json!({"Parameters": {"state.$": "$$.State.Name", "retry.$": "$$.State.RetryCount",
            "input.$": "$$.Execution.Input", "sm.$": "$$.StateMachine.Name",
            "id.$": "$$.Execution.Id", "entered.$": "$$.State.EnteredTime"}}),
        json!({"k": 1}),
    )
    .await;
    assert_eq!(out["state"], "S");
    assert_eq!(out["retry"], 0);
    assert_eq!(out["input"], json!({"k": 1}));
    assert!(out["sm"].is_string());
    assert!(out["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        out["entered"]
            .as_str()
            .and_then(crate::choice::parse_timestamp)
            .is_some()
    );
}
