//! `tend run` end to end: the real daemon against a recorded machine whose
//! files the tests flip, a signed policy served over HTTPS on loopback, a
//! JSON-lines sink and an HTTPS sink; crashes at random moments; hostile
//! local API clients.
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tend_e2e::collector::Collector;
use tend_e2e::daemon::{Daemon, json_lines, write_config};
use tend_e2e::device::Device;
use tend_e2e::https::{Pki, Reply, Server};
use tend_e2e::signing::Signer;
use tend_e2e::{tend, tend_bin};

const UFW_QUERY: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes';";
const UPDATES_QUERY: &str =
    "SELECT COUNT(*) AS passed FROM file WHERE path = '/etc/apt/apt.conf.d/20auto-upgrades';";

/// A policy with the seed's firewall query (checked every `fw_interval`)
/// and an automatic-updates check on `20auto-upgrades` (hourly: only a file
/// change re-checks it sooner).
fn policy(serial: u64, fw_interval: &str) -> String {
    serde_json::json!({
        "version": 1,
        "serial": serial,
        "name": "daemon test",
        "checks": [
            { "id": "firewall", "name": "Firewall enabled", "severity": "high",
              "interval": fw_interval, "query": { "linux": UFW_QUERY },
              "remediation": { "linux": "Run `sudo ufw enable`." } },
            { "id": "updates", "name": "Automatic updates enabled", "severity": "high",
              "interval": "1h", "query": { "linux": UPDATES_QUERY },
              "remediation": { "linux": "Install unattended-upgrades." } }
        ]
    })
    .to_string()
}

/// The compliant Linux recording, with an automatic-updates file that is
/// not in the recording's `stat` map, so its metadata comes from the file
/// itself and removing it is seen.
fn device() -> Device {
    let dev = Device::linux_compliant();
    std::fs::write(
        updates(&dev),
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n",
    )
    .unwrap();
    dev
}

fn updates(dev: &Device) -> PathBuf {
    dev.path("machine/root/etc/apt/apt.conf.d/20auto-upgrades")
}

fn compliance(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "ASSET_COMPLIANCE")
        .collect()
}

/// (item, last, latest) per event, in order, duplicates (same uuid) removed;
/// asserts every duplicate is identical to its first copy.
fn deduplicated(events: &[Value]) -> (Vec<(String, Value, bool)>, usize) {
    let mut seen: HashMap<String, &Value> = HashMap::new();
    let mut out = Vec::new();
    let mut dups = 0;
    for e in events {
        let uuid = e["uuid"]
            .as_str()
            .expect("every event has a uuid")
            .to_string();
        if let Some(first) = seen.get(&uuid) {
            assert_eq!(*first, e, "a duplicate differs from its first copy");
            dups += 1;
            continue;
        }
        seen.insert(uuid, e);
        out.push((
            e["item"]["id"].as_str().unwrap().to_string(),
            e["changes"]["passed"]["last"].clone(),
            e["changes"]["passed"]["latest"].as_bool().unwrap(),
        ));
    }
    (out, dups)
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    tend_e2e::wait_until(limit, what, || f().then_some(()))
}

#[test]
fn flips_become_one_event_each_in_both_sinks_and_in_status() {
    let dev = device();
    let pki = Pki::new("daemon");
    let server = Server::https(&pki);
    let collector = Collector::https(&pki);
    let key = Signer::new();
    let text = policy(3, "1s");
    server.set("/policy.json", Reply::ok(text.clone(), "\"p3\""));
    server.set(
        "/policy.json.minisig",
        Reply::ok(key.sign(text.as_bytes()), "\"p3s\""),
    );
    let ca = dev.path("ca.pem");
    pki.write_ca(&ca);
    let token = dev.path("sink.token");
    std::fs::write(&token, "t0ken-123\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let events_file = dev.path("log/events.jsonl");
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!(
            r#"policy_url = "{url}"
trusted_keys = ["{key}"]
pinned_ca = "{ca}"
state_dir = "{state}"
connect_timeout = "2s"
fetch_timeout = "5s"

[asset]
owner_email = "ada.lovelace@example.com"
org_name = "Example Ltd"
org_uuid = "f50dfca1-c8b0-40ca-80cd-984d2d6dce10"
team_name = "Platform"

[[sinks]]
type = "file"
path = "{events}"

[[sinks]]
type = "http"
url = "{sink}"
pinned_ca = "{ca}"
token_file = "{token}"
headers = {{ "X-Tend-Test" = "yes" }}
batch_size = 10
"#,
            url = server.url("/policy.json"),
            key = key.public_key(),
            ca = ca.display(),
            state = dev.path("state").display(),
            events = events_file.display(),
            sink = collector.url("/ingest"),
            token = token.display(),
        ),
    );
    let socket = dev.path("tend.sock");
    let d = Daemon::start(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--snapshot",
            dev.machine().to_str().unwrap(),
        ],
        &socket,
        &dev.path("daemon.log"),
    );

    // The policy comes from the HTTPS server; both checks pass at start.
    wait_until(Duration::from_secs(20), "the pulled policy", || {
        d.status()["policy"]["serial"] == 3
    });
    d.wait_for("firewall", "passed", Duration::from_secs(10));
    d.wait_for("updates", "passed", Duration::from_secs(10));
    let s = d.status();
    assert!(
        s["policy"]["origin"]
            .as_str()
            .unwrap()
            .contains(&server.url("/policy.json")),
        "{s}"
    );

    // Three round trips off and on: off is seen on the 1 s interval, on by
    // the file watch.
    let mut expected: Vec<(String, Value, bool)> = vec![
        ("firewall".into(), Value::Null, true),
        ("updates".into(), Value::Null, true),
    ];
    for _ in 0..3 {
        dev.set_firewall(false);
        d.wait_for("firewall", "failed", Duration::from_secs(10));
        expected.push(("firewall".into(), Value::Bool(true), false));
        dev.set_firewall(true);
        d.wait_for("firewall", "passed", Duration::from_secs(10));
        expected.push(("firewall".into(), Value::Bool(false), true));
    }

    // A failing hourly check whose file is fixed passes within 5 s.
    let saved = std::fs::read(updates(&dev)).unwrap();
    std::fs::remove_file(updates(&dev)).unwrap();
    let r = d.request(r#"{"v":1,"id":9,"op":"recheck","check":"updates"}"#);
    assert_eq!(r["result"]["checks"][0]["status"], "failed", "{r}");
    assert_eq!(
        r["result"]["checks"][0]["remediation"],
        "Install unattended-upgrades."
    );
    expected.push(("updates".into(), Value::Bool(true), false));
    std::fs::write(updates(&dev), &saved).unwrap();
    let took = d.wait_for("updates", "passed", Duration::from_secs(5));
    eprintln!("the fixed file was seen passing after {took:?} (interval 1h)");
    expected.push(("updates".into(), Value::Bool(false), true));

    // Both sinks: exactly one ASSET_COMPLIANCE event per flip.
    let n = expected.len();
    wait_until(
        Duration::from_secs(15),
        "events in the JSON-lines file",
        || compliance(&json_lines(&events_file)).len() >= n,
    );
    wait_until(Duration::from_secs(30), "events at the HTTPS sink", || {
        deduplicated(&collector.events()).0.len() >= n
    });
    std::thread::sleep(Duration::from_millis(300));
    let file_events = json_lines(&events_file);
    let (from_file, file_dups) = deduplicated(&file_events);
    assert_eq!(from_file, expected, "JSON-lines sink");
    assert_eq!(file_dups, 0);
    let http_events = collector.events();
    let (from_http, _) = deduplicated(&http_events);
    assert_eq!(from_http, expected, "HTTPS sink");

    // The service's history of changes tells the same story (the tray's
    // window and `tend history` show it).
    let status = |v: &Value| match v {
        Value::Bool(true) => json!("passed"),
        Value::Bool(false) => json!("failed"),
        _ => Value::Null,
    };
    let want: Vec<Value> = expected
        .iter()
        .map(|(id, last, latest)| json!([id, status(last), status(&Value::Bool(*latest))]))
        .collect();
    let r = d.request(r#"{"v":1,"id":10,"op":"history","limit":1000}"#);
    let mut told: Vec<Value> = r["result"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "firewall" || c["id"] == "updates")
        .map(|c| json!([c["id"], c["from"], c["to"]]))
        .collect();
    told.reverse();
    assert_eq!(told, want, "{r}");
    let o = tend(&["history", "firewall", "--socket", socket.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("Firewall enabled  failed -> passed"),
        "{out}"
    );
    let uuids = |ev: &[Value]| -> Vec<String> {
        ev.iter()
            .map(|e| e["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        uuids(&file_events),
        uuids(&http_events)[..file_events.len()]
    );

    // The seed's shape, with who this is from the config.
    let e = &file_events[2];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "type",
        "uuid",
        "timestamp",
        "level",
        "meta",
        "changes",
        "item",
        "company",
        "user",
        "team",
        "asset",
    ] {
        assert!(keys.contains(&k), "{k} missing in {e}");
    }
    assert_eq!(e["level"], "WARNING");
    assert_eq!(e["item"]["name"], "Firewall enabled");
    assert_eq!(e["company"]["name"], "Example Ltd");
    assert_eq!(e["company"]["uuid"], "f50dfca1-c8b0-40ca-80cd-984d2d6dce10");
    assert_eq!(e["team"]["name"], "Platform");
    assert_eq!(e["user"]["email"], "ada.lovelace@example.com");
    assert_eq!(e["asset"]["name"], "Ada (tend-laptop)");
    assert!(e["timestamp"].as_str().unwrap().ends_with("+00:00"));

    // The HTTPS sink's requests: gzip, the token from its file, the header.
    let post = &collector.posts()[0];
    assert_eq!(post.path, "/ingest");
    assert_eq!(post.header("content-encoding"), Some("gzip"));
    assert_eq!(post.header("authorization"), Some("Bearer t0ken-123"));
    assert_eq!(post.header("x-tend-test"), Some("yes"));

    // `tend status` shows the new state.
    let o = std::process::Command::new(tend_bin())
        .args(["status", "--format", "json", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["summary"]["passed"], 2);
    let o = std::process::Command::new(tend_bin())
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("✔ passed") && table.contains("Firewall enabled"),
        "{table}"
    );

    // A new policy serial: pulled on request, and every check runs again.
    let text = policy(4, "1s");
    server.set("/policy.json", Reply::ok(text.clone(), "\"p4\""));
    server.set(
        "/policy.json.minisig",
        Reply::ok(key.sign(text.as_bytes()), "\"p4s\""),
    );
    let r = d.request(r#"{"v":1,"id":10,"op":"pull"}"#);
    assert!(
        r["result"]["result"]
            .as_str()
            .unwrap_or("")
            .contains("serial 4"),
        "{r}"
    );
    wait_until(Duration::from_secs(10), "serial 4 in status", || {
        d.status()["policy"]["serial"] == 4
    });
    // A policy change is not a compliance change: no new events.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(deduplicated(&json_lines(&events_file)).0.len(), n);
}

#[test]
fn a_crashed_daemon_loses_no_transition() {
    let dev = device();
    let pki = Pki::new("crash");
    let collector = Collector::https(&pki);
    let ca = dev.path("ca.pem");
    pki.write_ca(&ca);
    let policy_file = dev.path("policy.json");
    std::fs::write(&policy_file, policy(1, "1s")).unwrap();
    let events_file = dev.path("events.jsonl");
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!(
            "state_dir = \"{}\"\n\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n\n[[sinks]]\ntype = \"http\"\nurl = \"{}\"\npinned_ca = \"{}\"\n",
            dev.path("state").display(),
            events_file.display(),
            collector.url("/in"),
            ca.display()
        ),
    );
    let socket = dev.path("tend.sock");
    // Debug builds hold each delivered batch 50 ms before acknowledging it,
    // so some kills land between delivery and acknowledgement.
    let mut d = Daemon::start_with_env(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--policy",
            policy_file.to_str().unwrap(),
            "--snapshot",
            dev.machine().to_str().unwrap(),
        ],
        &[("TEND_TEST_ACK_DELAY_MS", "50")],
        &socket,
        &dev.path("daemon.log"),
    );
    d.wait_for("firewall", "passed", Duration::from_secs(10));

    let mut rand = tend_e2e::clock_seeded_rand("crash test");

    let started = Instant::now();
    let mut written = vec![true];
    let mut kills = 0;
    let mut cycles = 0;
    while kills < 150 {
        cycles += 1;
        let on = !written.last().unwrap();
        dev.set_firewall(on);
        written.push(on);
        // Kill it at a random moment while it notices the flip (the 1 s
        // interval, or the file watch), records it, and delivers the event.
        std::thread::sleep(Duration::from_millis(rand(1300)));
        d.kill();
        kills += 1;
        // And up to three times more while it starts again: evaluating at
        // start, committing, delivering to the sinks (40-140 ms after exec
        // in a debug build).
        for _ in 0..rand(4) {
            d.spawn();
            std::thread::sleep(Duration::from_millis(40 + rand(100)));
            d.kill();
            kills += 1;
        }
        d.spawn();
        d.wait_ready(Duration::from_secs(30));
        // The flip must be seen before the next one, so each is a transition.
        d.wait_for(
            "firewall",
            if on { "passed" } else { "failed" },
            Duration::from_secs(10),
        );
        assert!(
            started.elapsed() < Duration::from_secs(170),
            "the crash test ran too long"
        );
    }
    let flips = written.len() - 1;

    // Every transition's event arrives (after the last restart), once per
    // uuid; duplicates are identical to the first copy.
    let expected: Vec<(String, Value, bool)> = written
        .iter()
        .enumerate()
        .map(|(i, on)| {
            let last = if i == 0 {
                Value::Null
            } else {
                Value::Bool(written[i - 1])
            };
            ("firewall".to_string(), last, *on)
        })
        .collect();
    let firewall_only = |ev: Vec<Value>| -> Vec<Value> {
        ev.into_iter()
            .filter(|e| e["type"] == "ASSET_COMPLIANCE" && e["item"]["id"] == "firewall")
            .collect()
    };
    wait_until(Duration::from_secs(30), "every event in the file", || {
        deduplicated(&firewall_only(json_lines(&events_file)))
            .0
            .len()
            >= expected.len()
    });
    wait_until(
        Duration::from_secs(60),
        "every event at the HTTPS sink",
        || deduplicated(&firewall_only(collector.events())).0.len() >= expected.len(),
    );
    let file_events = firewall_only(json_lines(&events_file));
    let (seq, file_dups) = deduplicated(&file_events);
    assert_eq!(
        seq, expected,
        "the JSON-lines sink lost or reordered a transition"
    );
    let http_events = firewall_only(collector.events());
    let (http_seq, http_dups) = deduplicated(&http_events);
    assert_eq!(
        http_seq, expected,
        "the HTTPS sink lost or reordered a transition"
    );
    // The two sinks saw the same events (same uuids).
    let ids = |ev: &[Value]| -> std::collections::BTreeSet<String> {
        ev.iter()
            .map(|e| e["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&file_events), ids(&http_events));
    let mut per_uuid: BTreeMap<String, usize> = BTreeMap::new();
    for e in &file_events {
        *per_uuid
            .entry(e["uuid"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!(
        "crash test: {kills} SIGKILLs over {cycles} cycles ({} starts) in {:.1}s; {flips} flips, {} transitions; \
         JSON-lines sink: {} lines, {} distinct events, {file_dups} duplicates (max {} copies of one uuid); \
         HTTPS sink: {} events received, {} distinct, {http_dups} duplicates",
        d.starts,
        started.elapsed().as_secs_f64(),
        expected.len(),
        file_events.len(),
        seq.len(),
        per_uuid.values().max().copied().unwrap_or(0),
        http_events.len(),
        http_seq.len(),
    );
    assert!(kills >= 100);
    assert_eq!(d.stop(), Some(0), "a clean stop after the crashes");
}

/// A `tend` that another user can run: the build's own may sit in a
/// directory only its owner can enter (a target dir under root's home). One
/// fixed place in the temp dir, replaced on each run, so runs leave no copies
/// behind; a hard link costs nothing where the temp dir shares the file system.
fn tend_bin_for_anyone() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = std::env::temp_dir().join("tend-e2e-anyone");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let staged = dir.join(format!("tend.{}", std::process::id()));
        let _ = std::fs::remove_file(&staged);
        if std::fs::hard_link(tend_bin(), &staged).is_err() {
            std::fs::copy(tend_bin(), &staged).unwrap();
        }
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("tend");
        std::fs::rename(&staged, &bin).unwrap();
        bin
    })
    .clone()
}

/// Runs `tend` as another user (nobody).
fn as_nobody(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(tend_bin_for_anyone())
        .args(args)
        .uid(65534)
        .gid(65534)
        .env_remove("TEND_LOG")
        .output()
        .unwrap()
}

fn raw(socket: &Path, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn hostile_and_unauthorised_clients_do_not_disturb_the_service() {
    let dev = device();
    let policy_file = dev.path("policy.json");
    std::fs::write(&policy_file, policy(1, "1h")).unwrap();
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!("state_dir = \"{}\"\n", dev.path("state").display()),
    );
    // Other users must reach the socket: the temp dir is 0700.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dev.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let socket = dev.path("tend.sock");
    let mut d = Daemon::start(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--policy",
            policy_file.to_str().unwrap(),
            "--snapshot",
            dev.machine().to_str().unwrap(),
        ],
        &socket,
        &dev.path("daemon.log"),
    );
    d.wait_for("firewall", "passed", Duration::from_secs(10));

    // A subscriber stays connected throughout and must keep being served.
    let mut sub = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    {
        use std::io::Write;
        sub.write_all(b"{\"v\":1,\"id\":1,\"op\":\"subscribe\"}\n")
            .unwrap();
    }
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sub_reader = std::io::BufReader::new(sub.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut sub_reader, &mut line).unwrap();
    assert!(line.contains("\"subscribed\":true"), "{line}");

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"\x00\xff\xfe not json at all\n{\"v\":1,\"op\":\"status\"}\n".to_vec(),
            "malformed",
        ),
        ("not an object", b"[1,2,3]\n".to_vec(), "malformed"),
        ("no version", b"{\"op\":\"status\"}\n".to_vec(), "malformed"),
        (
            "a future version",
            b"{\"v\":99,\"op\":\"status\"}\n".to_vec(),
            "version",
        ),
        (
            "bad fields",
            b"{\"v\":1,\"op\":\"recheck\",\"check\":{\"$ne\":1}}\n".to_vec(),
            "bad_fields",
        ),
        (
            "unknown fields",
            b"{\"v\":1,\"op\":\"status\",\"sudo\":true}\n".to_vec(),
            "bad_fields",
        ),
        (
            "deep nesting",
            {
                let mut v = b"{\"v\":1,\"op\":\"status\",\"x\":".to_vec();
                v.extend(std::iter::repeat_n(b'[', 10_000));
                v.push(b'\n');
                v
            },
            "malformed",
        ),
        (
            "oversized",
            {
                let mut v = b"{\"v\":1,\"op\":\"status\",\"x\":\"".to_vec();
                v.extend(std::iter::repeat_n(b'A', 4 << 20));
                v.extend_from_slice(b"\"}\n");
                v
            },
            "too_large",
        ),
    ];
    for (what, bytes, code) in &cases {
        let out = raw(&socket, bytes);
        let first: Value = serde_json::from_str(out.lines().next().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("{what}: {e}: {out:?}"));
        assert_eq!(first["ok"], false, "{what}: {out}");
        assert_eq!(first["error"]["code"], *code, "{what}: {out}");
        // The connection was closed after the refusal: nothing else was answered.
        assert_eq!(out.lines().count(), 1, "{what}: {out}");
        // And the service still serves everyone else.
        assert_eq!(d.status()["summary"]["passed"], 2, "after {what}");
    }
    // An unknown op is answered and the connection stays usable.
    let out = raw(
        &socket,
        b"{\"v\":1,\"id\":1,\"op\":\"format_disk\"}\n{\"v\":1,\"id\":2,\"op\":\"hello\"}\n",
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["error"]["code"], "unknown_op");
    assert_eq!(lines[1]["result"]["protocol"], 1);

    // A flood of connections from one user, each half-open, does not stop others.
    let flood: Vec<_> = (0..40)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    assert_eq!(d.status()["summary"]["passed"], 2);
    drop(flood);

    // Another local user (nobody) may read, but not re-check, pull or reload
    // (when the tests run as root and can be somebody else).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let o = as_nobody(&[
            "status",
            "--format",
            "json",
            "--socket",
            socket.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(s["summary"]["passed"], 2);
        let o = as_nobody(&["recheck", "firewall", "--socket", socket.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("forbidden") && err.contains("console user"),
            "{err}"
        );
        let hello = as_nobody_raw(
            &socket,
            "{\"v\":1,\"id\":1,\"op\":\"reload\"}\n{\"v\":1,\"id\":2,\"op\":\"pull\"}\n{\"v\":1,\"id\":3,\"op\":\"interaction\",\"execution\":\"e\",\"event\":\"yes\"}\n{\"v\":1,\"id\":4,\"op\":\"hello\"}\n",
        );
        let lines: Vec<Value> = hello
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{hello}");
        for l in &lines[..3] {
            assert_eq!(l["error"]["code"], "forbidden", "{l}");
        }
        assert_eq!(lines[3]["result"]["access"], "read");
    } else {
        eprintln!("not root: the other-user part of this test is skipped");
    }

    // The administrator (root, or the daemon's own user) may.
    let o = std::process::Command::new(tend_bin())
        .args(["recheck", "--format", "json", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["checks"].as_array().unwrap().len(), 2);

    // The subscriber saw nothing it should not have, and is still served:
    // a flip is pushed to it.
    dev.set_firewall(false);
    d.request(r#"{"v":1,"id":5,"op":"recheck","check":"firewall"}"#);
    line.clear();
    loop {
        line.clear();
        std::io::BufRead::read_line(&mut sub_reader, &mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["push"] == "check" && v["data"]["id"] == "firewall" {
            assert_eq!(v["data"]["status"], "failed");
            break;
        }
    }
    assert!(d.alive());
    assert_eq!(d.stop(), Some(0));
}

/// Sends request lines to the socket as another user (nobody) and returns
/// what the service answered: a forked child drops to uid 65534, connects,
/// sends, and relays the answer back through a socket pair.
fn as_nobody_raw(socket: &Path, lines: &str) -> String {
    // Fork a child that switches to nobody, connects, sends and relays back.
    let (mut parent_end, child_end) = std::os::unix::net::UnixStream::pair().unwrap();
    // SAFETY: fork in a test process; the child only makes async-signal-safe
    // calls (setgid, setuid, socket, connect, read, write, _exit).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain syscalls in the forked child.
        unsafe {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                libc::_exit(3);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let p = socket.as_os_str().as_encoded_bytes();
            for (i, b) in p.iter().enumerate().take(addr.sun_path.len() - 1) {
                addr.sun_path[i] = *b as libc::c_char;
            }
            if libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            ) != 0
            {
                libc::_exit(4);
            }
            let bytes = lines.as_bytes();
            libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::shutdown(fd, libc::SHUT_WR);
            let relay = std::os::fd::AsRawFd::as_raw_fd(&child_end);
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    break;
                }
                libc::write(relay, buf.as_ptr().cast(), n as usize);
            }
            libc::_exit(0);
        }
    }
    drop(child_end);
    let mut out = String::new();
    parent_end
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = std::io::Read::read_to_string(&mut parent_end, &mut out);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
    out
}

#[test]
fn a_check_over_budget_is_an_error_and_the_others_go_on() {
    let dev = device();
    let policy_file = dev.path("policy.json");
    let text = serde_json::json!({
        "version": 1, "serial": 1,
        "checks": [
            { "id": "runaway", "name": "Runaway query", "severity": "low", "interval": "1h",
              "query": { "linux": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS passed FROM c" } },
            { "id": "firewall", "name": "Firewall enabled", "severity": "high", "interval": "1h",
              "query": { "linux": UFW_QUERY } }
        ]
    });
    std::fs::write(&policy_file, text.to_string()).unwrap();
    let events_file = dev.path("events.jsonl");
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!(
            "state_dir = \"{}\"\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
            dev.path("state").display(),
            events_file.display()
        ),
    );
    let d = Daemon::start(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--policy",
            policy_file.to_str().unwrap(),
            "--snapshot",
            dev.machine().to_str().unwrap(),
            "--check-timeout",
            "1s",
        ],
        &dev.path("tend.sock"),
        &dev.path("daemon.log"),
    );
    d.wait_for("runaway", "error", Duration::from_secs(15));
    d.wait_for("firewall", "passed", Duration::from_secs(15));
    let s = d.status();
    let runaway = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "runaway")
        .unwrap()
        .clone();
    assert!(
        runaway["error"].as_str().unwrap().contains("time limit"),
        "{runaway}"
    );
    // Entering error is its own event, not a compliance change.
    wait_until(Duration::from_secs(10), "the error event", || {
        json_lines(&events_file)
            .iter()
            .any(|e| e["type"] == "ASSET_CHECK_ERROR" && e["item"]["id"] == "runaway")
    });
    let ev = json_lines(&events_file);
    assert!(
        !ev.iter()
            .any(|e| e["type"] == "ASSET_COMPLIANCE" && e["item"]["id"] == "runaway")
    );
    let err = ev
        .iter()
        .find(|e| e["type"] == "ASSET_CHECK_ERROR")
        .unwrap();
    assert_eq!(err["level"], "ERROR");
    assert!(
        err["changes"]["error"]["latest"]
            .as_str()
            .unwrap()
            .contains("time limit")
    );
}

#[test]
fn systemd_hears_ready_watchdog_reload_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dev = device();
    let policy_file = dev.path("policy.json");
    std::fs::write(&policy_file, policy(1, "1h")).unwrap();
    let cfg = dev.path("agent.toml");
    write_config(
        &cfg,
        &format!("state_dir = \"{}\"\n", dev.path("state").display()),
    );
    let notify_path = dev.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut d = Daemon::start_with_env(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--policy",
            policy_file.to_str().unwrap(),
            "--snapshot",
            dev.machine().to_str().unwrap(),
        ],
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        &dev.path("tend.sock"),
        &dev.path("daemon.log"),
    );
    let mut heard: Vec<String> = Vec::new();
    let mut listen = |until: &str, limit: Duration| {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < limit {
            if let Ok(n) = notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.contains(until);
                heard.push(msg);
                if done {
                    return;
                }
            }
        }
        panic!("no {until} within {limit:?}; heard {heard:?}");
    };
    listen("READY=1", Duration::from_secs(10));
    // WatchdogSec=0.4s: pinged every 0.2 s.
    listen("WATCHDOG=1", Duration::from_secs(2));
    listen("WATCHDOG=1", Duration::from_secs(2));
    d.signal(libc::SIGHUP);
    listen("RELOADING=1", Duration::from_secs(5));
    listen("READY=1", Duration::from_secs(5));
    d.wait_for("firewall", "passed", Duration::from_secs(10));
    let pid = d.pid();
    d.signal(libc::SIGTERM);
    listen("STOPPING=1", Duration::from_secs(5));
    assert_eq!(d.stop(), Some(0), "pid {pid}");
    assert!(
        !dev.path("tend.sock").exists(),
        "the socket is removed on stop"
    );
}
