//! Workflows in `tend run`, end to end: the seed workflow (verbatim) runs in
//! the daemon through both branches and both events, its Slack resources
//! served by an HTTPS endpoint on loopback that records each call; it
//! survives SIGKILL while it waits for an event and while it is in its 24 h
//! WAIT (the restarted daemon runs under libfaketime, its wall clock 25 h
//! ahead: no test hook in the product); and a SIGKILL loop during
//! transitions loses no execution and starts none twice.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tend_e2e::collector::Collector;
use tend_e2e::daemon::{
    Daemon, api, entered, execution, executions, history, json_lines, write_config,
};
use tend_e2e::device::Device;
use tend_e2e::https::Pki;
use tend_e2e::{fixture, tend_bin, wait_until};

const UFW_QUERY: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes';";
const REMEDIATION: &str = "Run `sudo ufw enable`.";

/// Writes the policy and the agent config; returns `tend run`'s args.
fn setup(dev: &Device, workflows: Vec<Value>, slack: &str, ca: &std::path::Path) -> Vec<String> {
    let policy = json!({
        "version": 1,
        "serial": 1,
        "name": "workflow test",
        "checks": [
            { "id": "firewall", "name": "Firewall enabled", "severity": "high",
              "interval": "1h", "query": { "linux": UFW_QUERY },
              "remediation": { "linux": REMEDIATION } }
        ],
        "workflows": workflows,
        "settings": { "resource_endpoints": { "zrn:integration:slack:*": slack } }
    });
    let policy_file = dev.path("policy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!(
            "state_dir = \"{}\"\npinned_ca = \"{}\"\n\n[asset]\nowner_email = \"ada.lovelace@example.com\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dev.path("state").display(),
            ca.display(),
            dev.path("events.jsonl").display(),
        ),
    );
    [
        "--config",
        cfg.to_str().unwrap(),
        "--policy",
        policy_file.to_str().unwrap(),
        "--snapshot",
        dev.path("machine").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Waits until execution `id` waits for the events yes and no.
fn wait_awaiting(d: &Daemon, id: &str, what: &str) {
    wait_until(Duration::from_secs(30), what, || {
        let e = execution(d, id);
        (e["awaiting"] == json!(["yes", "no"])).then_some(())
    });
}

fn slack_calls(c: &Collector) -> Vec<Value> {
    c.posts()
        .into_iter()
        .filter(|p| p.path == "/slack")
        .flat_map(|p| p.events)
        .collect()
}

fn recheck(d: &Daemon) {
    let v = api(d, json!({"op": "recheck", "check": "firewall"}));
    assert_eq!(v["ok"], true, "{v}");
}

/// libfaketime's preload library (Debian's `faketime` package).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is installed (scripts/deps.sh test)")
}

fn cli(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tend_bin())
        .args(["workflow"])
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap()
}

#[test]
fn the_seed_workflow_runs_in_the_daemon_and_survives_crashes_and_a_day() {
    let dev = Device::linux_compliant();
    let pki = Pki::new("workflows");
    let slack = Collector::https(&pki);
    let ca = dev.path("ca.pem");
    pki.write_ca(&ca);
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("seed-workflow.json")).unwrap())
            .unwrap();
    let name = seed["name"].as_str().unwrap().to_string();
    let args = setup(&dev, vec![seed], &slack.url("/slack"), &ca);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let socket = dev.path("tend.sock");
    let log = dev.path("daemon.log");

    // The policy's workflows lint clean.
    let lint = std::process::Command::new(tend_bin())
        .args(["policy", "lint"])
        .arg(dev.path("policy.json"))
        .output()
        .unwrap();
    let lint_out = String::from_utf8_lossy(&lint.stdout);
    assert!(!lint_out.contains("workflows"), "{lint_out}");

    let mut d = Daemon::start(&args, &socket, &log);

    // The check's first answer (passed) is an event: the passing branch.
    let passing = wait_until(Duration::from_secs(30), "the first execution", || {
        executions(&d)
            .into_iter()
            .find(|e| e["status"] == "SUCCEEDED")
    });
    assert_eq!(passing["workflow"], name.as_str());
    assert_eq!(passing["trigger"], "event");
    let id = passing["id"].as_str().unwrap();
    assert_eq!(entered(&d, id), ["check_rule", "passing_rule", "end"]);
    assert!(slack_calls(&slack).is_empty());

    // The firewall goes off: the failing branch messages the owner on Slack
    // and waits for a button.
    dev.set_firewall(false);
    recheck(&d);
    let failing = wait_until(Duration::from_secs(30), "the failing execution", || {
        executions(&d)
            .into_iter()
            .find(|e| e["status"] == "RUNNING")
    });
    let id = failing["id"].as_str().unwrap().to_string();
    wait_awaiting(&d, &id, "the wait for a button");
    let calls = slack_calls(&slack);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["resource"], "zrn:integration:slack:chat:postMessage");
    assert_eq!(call["parameters"]["channel"], "ada.lovelace@example.com");
    let blocks = &call["parameters"]["blocks"];
    let hello = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        hello.starts_with("Hi Ada, The compliance rule Firewall enabled is *failing*"),
        "{hello}"
    );
    assert_eq!(blocks[1]["text"]["text"], REMEDIATION);

    // SIGKILL while it waits for the event: after the restart it waits
    // again, and the message is not sent twice.
    d.kill();
    d.spawn();
    d.wait_ready(Duration::from_secs(30));
    wait_awaiting(&d, &id, "the wait for a button after a crash");
    assert_eq!(
        slack_calls(&slack).len(),
        1,
        "the message is not sent again"
    );

    // A wrong token is refused; "Remind me later" is answered with its
    // response and starts the 24 h WAIT.
    let v = api(
        &d,
        json!({"op": "interaction", "execution": id, "event": "no", "token": "0".repeat(64)}),
    );
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    let out = cli(&socket, &["event", &id, "no"]);
    assert!(out.status.success(), "{out:?}");
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["text"], "Ok, I'll check back in tomorrow.");
    wait_until(Duration::from_secs(30), "the 24 h wait", || {
        history(&d, &id)
            .iter()
            .any(|h| h["type"] == "WaitStarted" && h["state"] == "slack_no")
            .then_some(())
    });

    // SIGKILL in the WAIT; restarted on today's clock it still waits.
    d.kill();
    d.spawn();
    d.wait_ready(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(execution(&d, &id)["status"], "RUNNING");
    assert_eq!(slack_calls(&slack).len(), 1, "the day has not passed");

    // SIGKILL again; restarted with the wall clock 25 h ahead (libfaketime),
    // the WAIT is over: the owner is reminded and the buttons wait again.
    d.kill();
    let lib = libfaketime();
    let mut d = Daemon::start_with_env(
        &args,
        &[("LD_PRELOAD", lib.to_str().unwrap()), ("FAKETIME", "+25h")],
        &socket,
        &log,
    );
    wait_until(Duration::from_secs(30), "the reminder", || {
        (slack_calls(&slack).len() == 2).then_some(())
    });
    wait_awaiting(&d, &id, "the wait for a button after the reminder");
    let wait = history(&d, &id)
        .into_iter()
        .find(|h| h["type"] == "WaitStarted")
        .unwrap();
    let exited = history(&d, &id)
        .into_iter()
        .rev()
        .find(|h| h["type"] == "StateExited" && h["state"] == "slack_no")
        .unwrap();
    assert!(
        exited["at_ms"].as_u64().unwrap() >= wait["until_ms"].as_u64().unwrap(),
        "the WAIT ended at its deadline on the wall clock"
    );

    // The owner fixes it and presses "Yes": the check runs again, passes,
    // and the execution ends. (The fix is also an event: a new execution
    // takes the passing branch.)
    dev.set_firewall(true);
    let v = api(
        &d,
        json!({"op": "interaction", "execution": id, "event": "yes"}),
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"]["response"]["text"], "I've fixed it");
    let done = wait_until(Duration::from_secs(30), "the end", || {
        let e = execution(&d, &id);
        (e["status"] != "RUNNING").then_some(e)
    });
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["recheck"]["passed"], true);
    assert_eq!(
        entered(&d, &id),
        [
            "check_rule",
            "failing_rule",
            "get_compliance_rule",
            "get_asset_owner",
            "slack_message_user",
            "slack_no",
            "slack_message_user",
            "slack_yes",
            "still_failing",
            "end"
        ]
    );
    wait_until(
        Duration::from_secs(30),
        "the passing execution of the fix",
        || {
            (executions(&d)
                .iter()
                .filter(|e| e["status"] == "SUCCEEDED")
                .count()
                == 3)
                .then_some(())
        },
    );

    // The CLI lists them and prints a history.
    let out = cli(&socket, &["executions", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let out = cli(&socket, &["history", &id]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("EventReceived") && text.contains("slack_yes"),
        "{text}"
    );
    d.stop();
}

#[test]
fn sigkill_during_transitions_loses_no_execution_and_starts_none_twice() {
    let dev = Device::linux_compliant();
    let pki = Pki::new("workflows-crash");
    let slack = Collector::https(&pki);
    let ca = dev.path("ca.pem");
    pki.write_ca(&ca);
    let wf = json!({
        "name": "count",
        "trigger": {"event": "ASSET_COMPLIANCE"},
        "entry": "query",
        "states": {
            "query": {"type": "TASK", "resource": "zrn:agent:query",
                      "parameters": {"sql": "SELECT 1 AS one"},
                      "mapping": {"result": "$.q"}, "next": "pause"},
            "pause": {"type": "WAIT", "seconds": 1, "next": "owner"},
            "owner": {"type": "TASK", "resource": "zrn:agent:asset:get",
                      "parameters": {"uuid": "$.asset.uuid"},
                      "mapping": {"result": "$.owner"}, "next": "rule"},
            "rule": {"type": "TASK", "resource": "zrn:agent:compliance:rule:get",
                     "parameters": {"uuid": "$.item.id"},
                     "mapping": {"result": "$.rule"}, "next": "done"},
            "done": {"type": "SUCCESS"}
        }
    });
    let args = setup(&dev, vec![wf], &slack.url("/slack"), &ca);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let socket = dev.path("tend.sock");
    let mut d = Daemon::start(&args, &socket, &dev.path("daemon.log"));

    let mut rand = tend_e2e::clock_seeded_rand("workflow crash test");
    let mut on = true;
    for _ in 0..40 {
        on = !on;
        dev.set_firewall(on);
        let _ = tend_e2e::daemon::request(
            &socket,
            r#"{"v":1,"id":1,"op":"recheck","check":"firewall"}"#,
        );
        std::thread::sleep(Duration::from_millis(rand(1500)));
        d.kill();
        d.spawn();
        d.wait_ready(Duration::from_secs(30));
    }

    // Every compliance event started exactly one execution, and every
    // execution ran to its end.
    let settled = wait_until(Duration::from_secs(120), "every execution to end", || {
        let events: BTreeSet<String> = json_lines(&dev.path("events.jsonl"))
            .iter()
            .filter(|e| e["type"] == "ASSET_COMPLIANCE")
            .map(|e| e["uuid"].as_str().unwrap().to_string())
            .collect();
        let list = executions(&d);
        let done = list.iter().all(|e| e["status"] != "RUNNING");
        let started: BTreeSet<String> = list
            .iter()
            .map(|e| e["trigger_uuid"].as_str().unwrap().to_string())
            .collect();
        (done && started == events).then_some((events, list))
    });
    let (events, list) = settled;
    assert!(events.len() >= 10, "only {} events", events.len());
    assert_eq!(list.len(), events.len(), "one execution per event");
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for e in &list {
        *by_status
            .entry(e["status"].as_str().unwrap().to_string())
            .or_default() += 1;
        let id = e["id"].as_str().unwrap();
        let h = history(&d, id);
        let starts = h.iter().filter(|x| x["type"] == "ExecutionStarted").count();
        assert_eq!(starts, 1, "execution {id}: {h:?}");
    }
    assert_eq!(
        by_status.get("SUCCEEDED"),
        Some(&list.len()),
        "{by_status:?}"
    );
    for e in &list {
        assert_eq!(e["output"]["q"]["rows"][0]["one"], 1, "{e}");
        assert_eq!(e["output"]["rule"]["remediation"], REMEDIATION);
    }
    let resumed = d.log_text().matches("resuming").count();
    eprintln!(
        "{} executions, {} restarts, {resumed} executions resumed mid-way",
        list.len(),
        d.starts
    );
    assert!(resumed > 0, "no kill landed during an execution");
    d.stop();
}
