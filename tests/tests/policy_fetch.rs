//! Policy distribution end to end: the real `tend` binary pulls a signed
//! policy from a real HTTPS server on loopback (rustls, a CA made by rcgen
//! in the test), caches it, uses it, and refuses every bad input while the
//! last good policy stays in force.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tend_e2e::https::{Pki, Reply, Server};
use tend_e2e::signing::Signer;
use tend_e2e::{stderr, stdout, tend_bin};

/// A policy with one check that passes on every OS.
fn policy(serial: u64) -> String {
    format!(
        r#"{{
  "version": 1,
  "serial": {serial},
  "name": "fleet policy {serial}",
  "checks": [
    {{ "id": "probe_{serial}", "name": "Probe {serial}", "severity": "low",
      "query": {{ "linux": "SELECT 1 AS passed;", "darwin": "SELECT 1 AS passed;", "windows": "SELECT 1 AS passed;" }} }}
  ]
}}
"#
    )
}

/// Runs `tend` with no proxy settings inherited (the server is on loopback).
fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(tend_bin());
    cmd.args(args).env_remove("TEND_LOG");
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.output().expect("tend runs")
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// A device: a temp dir with a config, a state dir and a pinned CA.
struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        Device {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn cache(&self) -> PathBuf {
        self.state().join("policy").join("last-good.json")
    }

    fn status_file(&self) -> PathBuf {
        self.state().join("policy").join("status.json")
    }

    /// Writes a config named `name`: the URL, the keys, the pinned CA (if
    /// any), short time limits, and `extra` TOML lines.
    fn config(
        &self,
        name: &str,
        url: &str,
        keys: &[&Signer],
        ca: Option<&Pki>,
        extra: &str,
    ) -> PathBuf {
        let keys: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", k.public_key()))
            .collect();
        let mut text = format!(
            "policy_url = \"{url}\"\ntrusted_keys = [{}]\nstate_dir = \"{}\"\nconnect_timeout = \"2s\"\nfetch_timeout = \"2s\"\n",
            keys.join(", "),
            self.state().display()
        );
        if let Some(pki) = ca {
            let ca_path = self.path(&format!("{name}.ca.pem"));
            pki.write_ca(&ca_path);
            text.push_str(&format!("pinned_ca = \"{}\"\n", ca_path.display()));
        }
        text.push_str(extra);
        let p = self.path(name);
        write_private(&p, &text);
        p
    }
}

fn pull(config: &Path) -> Output {
    run(&[
        "policy",
        "pull",
        "--once",
        "--config",
        config.to_str().unwrap(),
    ])
}

fn show(config: &Path) -> Value {
    let o = run(&[
        "policy",
        "show",
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn check(config: &Path) -> (Option<i32>, Value) {
    let o = run(&[
        "check",
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let doc = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), doc)
}

/// Publishes `text` signed by `signer` at /policy.json and /policy.json.minisig.
/// Returns the signature served.
fn publish(server: &Server, text: &str, signer: &Signer, etag: &str) -> Vec<u8> {
    let sig = signer.sign(text.as_bytes());
    server.set("/policy.json", Reply::ok(text, etag));
    server.set(
        "/policy.json.minisig",
        Reply::ok(sig.clone(), &format!("{etag}-sig")),
    );
    sig
}

fn assert_pulled(o: &Output, expect: &str) {
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(o), stderr(o));
    assert!(stdout(o).contains(expect), "{}{}", stdout(o), stderr(o));
}

#[test]
fn a_good_policy_is_fetched_verified_cached_and_used() {
    let pki = Pki::new("good");
    let server = Server::https(&pki);
    let key = Signer::new();
    let dev = Device::new();
    let cfg = dev.config(
        "agent.toml",
        &server.url("/policy.json"),
        &[&key],
        Some(&pki),
        "",
    );
    let sig = publish(&server, &policy(5), &key, "\"v5\"");

    let o = pull(&cfg);
    assert_pulled(&o, "updated: policy serial 5 is in force");
    assert!(stdout(&o).contains(&key.key_id()), "{}", stdout(&o));

    // Cached: the exact text and signature, and what is known about them.
    let cached: Value = serde_json::from_slice(&std::fs::read(dev.cache()).unwrap()).unwrap();
    assert_eq!(cached["policy"], policy(5));
    assert_eq!(cached["signature"].as_str().unwrap().as_bytes(), sig);
    assert_eq!(cached["key_id"], key.key_id());
    assert_eq!(cached["validators"]["etag"], "\"v5\"");
    assert_eq!(cached["serial"], 5);

    let s = show(&cfg);
    assert_eq!(s["in_force"]["serial"], 5);
    assert_eq!(s["in_force"]["origin"], "cache");
    assert_eq!(s["in_force"]["source"], server.url("/policy.json"));
    assert_eq!(s["in_force"]["key_id"], key.key_id());
    assert!(s["in_force"]["fetched_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["highest_serial"], 5);

    // `tend check` evaluates the fetched policy, not the built-in one.
    let (code, doc) = check(&cfg);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["policy"]["serial"], 5);
    assert_eq!(doc["checks"][0]["id"], "probe_5");
    assert_eq!(doc["checks"][0]["status"], "passed");
    assert!(
        doc["policy"]["source"]
            .as_str()
            .unwrap()
            .contains("(cached)"),
        "{doc:#}"
    );

    // The signature was fetched from beside the policy.
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/policy.json", "/policy.json.minisig"]);
}

#[test]
fn not_modified_makes_no_write() {
    let pki = Pki::new("etag");
    let server = Server::https(&pki);
    let key = Signer::new();
    let dev = Device::new();
    let cfg = dev.config(
        "agent.toml",
        &server.url("/policy.json"),
        &[&key],
        Some(&pki),
        "",
    );
    publish(&server, &policy(3), &key, "\"abc\"");
    assert_pulled(&pull(&cfg), "serial 3");
    let meta = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.modified().unwrap(), m.len(), std::fs::read(p).unwrap())
    };
    let (cache_before, status_before) = (meta(&dev.cache()), meta(&dev.status_file()));
    std::thread::sleep(Duration::from_millis(20));
    server.clear_requests();

    let o = pull(&cfg);
    assert_pulled(&o, "unchanged: policy serial 3 is the newest");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "only the policy is asked for: {reqs:?}");
    assert_eq!(reqs[0].header("if-none-match"), Some("\"abc\""));
    assert_eq!(
        reqs[0].header("if-modified-since"),
        Some("Sun, 29 Nov 2026 10:00:00 GMT")
    );
    assert_eq!(meta(&dev.cache()), cache_before, "the cache was rewritten");
    assert_eq!(
        meta(&dev.status_file()),
        status_before,
        "the status was rewritten"
    );
}

/// Runs one bad input: the pull is refused with `reason` on stderr (the
/// log) and in the recorded status, and the last good policy, serial 5
/// signed by `good`, stays in force, byte for byte.
struct BadInputs<'a> {
    dev: &'a Device,
    main: PathBuf,
    good: &'a Signer,
    cache: Vec<u8>,
    tried: Vec<&'static str>,
}

impl BadInputs<'_> {
    fn refused(&mut self, name: &'static str, config: &Path, reason: &str) {
        let o = pull(config);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{name}: {out}{err}");
        assert!(out.starts_with("refused: "), "{name}: {out}");
        assert!(
            err.contains("WARN") && err.contains("policy refused:") && err.contains(reason),
            "{name}: the log should say {reason:?}:\n{err}"
        );
        assert!(err.contains("keeping serial 5 in force"), "{name}: {err}");
        assert_eq!(
            std::fs::read(self.dev.cache()).unwrap(),
            self.cache,
            "{name}: the cache changed"
        );
        let s = show(&self.main);
        assert_eq!(s["in_force"]["serial"], 5, "{name}: {s:#}");
        assert_eq!(s["in_force"]["key_id"], self.good.key_id(), "{name}");
        let recorded = s["last_refusal"]["reason"].as_str().unwrap_or_default();
        assert!(recorded.contains(reason), "{name}: recorded {recorded:?}");
        eprintln!("refused ({name}): {recorded}");
        self.tried.push(name);
    }
}

#[test]
fn bad_inputs_are_refused_and_the_last_good_policy_stays() {
    let pki = Pki::new("main");
    let server = Server::https(&pki);
    let (good, stranger) = (Signer::new(), Signer::new());
    let dev = Device::new();
    let url = server.url("/policy.json");
    let main = dev.config("agent.toml", &url, &[&good], Some(&pki), "");
    publish(&server, &policy(5), &good, "\"v5\"");
    assert_pulled(&pull(&main), "serial 5");
    let mut t = BadInputs {
        dev: &dev,
        main: main.clone(),
        good: &good,
        cache: std::fs::read(dev.cache()).unwrap(),
        tried: Vec::new(),
    };
    let newer = policy(6);
    let sig_path = "/policy.json.minisig";

    // Signatures.
    server.set("/policy.json", Reply::ok(newer.clone(), "\"b1\""));
    server.set(
        sig_path,
        Reply::ok(good.sign(policy(7).as_bytes()), "\"s1\""),
    );
    t.refused(
        "signature of another document",
        &main,
        "does not match the policy",
    );

    let tampered = newer.replace("SELECT 1 AS passed;", "SELECT 0 AS passed;");
    server.set("/policy.json", Reply::ok(tampered, "\"b2\""));
    server.set(sig_path, Reply::ok(good.sign(newer.as_bytes()), "\"s2\""));
    t.refused(
        "policy modified after signing",
        &main,
        "does not match the policy",
    );

    let sig = String::from_utf8(good.sign(newer.as_bytes())).unwrap();
    let forged_comment = sig.replace("timestamp:1800000000", "timestamp:1900000000");
    server.set("/policy.json", Reply::ok(newer.clone(), "\"b3\""));
    server.set(sig_path, Reply::ok(forged_comment, "\"s3\""));
    t.refused(
        "trusted comment modified",
        &main,
        "does not match the policy",
    );

    publish(&server, &newer, &stranger, "\"b4\"");
    t.refused(
        "signed by an unknown key",
        &main,
        &format!("signed by key {}, which is not trusted", stranger.key_id()),
    );

    server.set("/policy.json", Reply::ok(newer.clone(), "\"b5\""));
    server.remove(sig_path);
    t.refused("missing signature", &main, "the policy has no signature");

    server.set(
        sig_path,
        Reply::ok("untrusted comment: hello\nnot base64!\n", "\"s6\""),
    );
    t.refused("malformed signature", &main, "not a minisign signature");

    server.set(
        sig_path,
        Reply::Large {
            len: 10_000,
            declared: true,
        },
    );
    t.refused(
        "oversize signature",
        &main,
        "larger than the limit of 4096 bytes",
    );

    server.set(sig_path, Reply::Status(500));
    t.refused("HTTP 500 on the signature", &main, "answered HTTP 500");

    // The document.
    publish(&server, &policy(4), &good, "\"b9\"");
    t.refused(
        "older serial",
        &main,
        "serial 4 is older than the accepted serial 5; refusing to roll back",
    );

    publish(
        &server,
        "{\"version\": 1, \"serial\": 9, \"checks\": [",
        &good,
        "\"b10\"",
    );
    t.refused("invalid JSON", &main, "EOF while parsing");

    let schema = newer.replace("\"low\"", "\"urgent\"");
    publish(&server, &schema, &good, "\"b11\"");
    t.refused("schema error", &main, &format!("{url}:6:"));
    let s = show(&main);
    assert!(
        s["last_refusal"]["reason"]
            .as_str()
            .unwrap()
            .contains("$.checks[0].severity: unknown variant `urgent`"),
        "{s:#}"
    );

    publish(
        &server,
        &newer.replace("\"version\": 1", "\"version\": 2"),
        &good,
        "\"b12\"",
    );
    t.refused(
        "unsupported format version",
        &main,
        "$.version: version 2 is not supported",
    );

    let latin1 = b"{\"version\": 1, \"serial\": 9, \"name\": \"caf\xe9\", \"checks\": []}".to_vec();
    server.set("/policy.json", Reply::ok(latin1.clone(), "\"b13\""));
    server.set(sig_path, Reply::ok(good.sign(&latin1), "\"s13\""));
    t.refused("not UTF-8", &main, "not UTF-8 text");

    // The transfer.
    publish(&server, &newer, &good, "\"b14\"");
    server.set(
        "/policy.json",
        Reply::Large {
            len: 5 << 20,
            declared: true,
        },
    );
    t.refused(
        "oversize body (Content-Length)",
        &main,
        "larger than the limit of 4194304 bytes",
    );
    server.set(
        "/policy.json",
        Reply::Large {
            len: 5 << 20,
            declared: false,
        },
    );
    t.refused(
        "oversize body (streamed)",
        &main,
        "larger than the limit of 4194304 bytes",
    );

    server.set("/policy.json", Reply::Stall(Duration::from_secs(20)));
    t.refused(
        "a server that stalls",
        &main,
        "no complete answer within 2s",
    );

    server.set("/policy.json", Reply::Status(500));
    t.refused("HTTP 500", &main, "answered HTTP 500");

    server.set("/policy.json", Reply::Status(404));
    t.refused("HTTP 404", &main, "answered HTTP 404");

    // TLS and transport: each server below serves a good serial 6 signed by
    // the trusted key, so only the connection can be what is refused.
    let other_pki = Pki::new("other");
    let impostor = Server::https(&other_pki);
    publish(&impostor, &newer, &good, "\"i1\"");
    let wrong_ca = dev.config(
        "wrong-ca.toml",
        &impostor.url("/policy.json"),
        &[&good],
        Some(&pki),
        "",
    );
    t.refused(
        "TLS certificate from another CA",
        &wrong_ca,
        "invalid peer certificate",
    );

    publish(&server, &newer, &good, "\"b20\"");
    let os_store = dev.config("os-store.toml", &url, &[&good], None, "");
    t.refused(
        "a test CA the OS trust store does not hold",
        &os_store,
        "invalid peer certificate",
    );

    let plain = Server::http();
    publish(&plain, &newer, &good, "\"p1\"");
    let http = dev.config("http.toml", &plain.url("/policy.json"), &[&good], None, "");
    t.refused("plain HTTP", &http, "refusing plain HTTP");

    let gone = {
        let s = Server::https(&pki);
        s.url("/policy.json")
    };
    let down = dev.config("down.toml", &gone, &[&good], Some(&pki), "");
    t.refused("server down", &down, "cannot connect");

    let n = t.tried.len();
    eprintln!(
        "{n} bad inputs tried, none replaced the last good policy (serial 5): {}",
        t.tried.join("; ")
    );
    assert!(n >= 20, "{n}");

    // Still in force for `tend check`, and the pipeline still takes a good policy.
    let (code, doc) = check(&main);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["policy"]["serial"], 5);
    publish(&server, &newer, &good, "\"b-final\"");
    assert_pulled(&pull(&main), "updated: policy serial 6 is in force");
    assert_eq!(show(&main)["in_force"]["serial"], 6);
}

#[test]
fn a_restart_with_the_server_down_uses_the_cache() {
    let pki = Pki::new("restart");
    let key = Signer::new();
    let dev = Device::new();
    let server = Server::https(&pki);
    let cfg = dev.config(
        "agent.toml",
        &server.url("/policy.json"),
        &[&key],
        Some(&pki),
        "",
    );
    publish(&server, &policy(8), &key, "\"v8\"");
    assert_pulled(&pull(&cfg), "serial 8");
    drop(server);

    // A fresh process (a restart): the pull fails, the cache is used.
    let o = pull(&cfg);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("policy in force: serial 8"),
        "{}",
        stdout(&o)
    );
    let (code, doc) = check(&cfg);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["policy"]["serial"], 8);
    assert_eq!(doc["checks"][0]["id"], "probe_8");
    let s = show(&cfg);
    assert_eq!(s["in_force"]["serial"], 8);
    assert_eq!(s["consecutive_failures"], 1);

    // A cache tampered with on disk is not used, and the built-in policy
    // does not take its place.
    let mut cached: Value = serde_json::from_slice(&std::fs::read(dev.cache()).unwrap()).unwrap();
    cached["policy"] = policy(8).replace("Probe 8", "Probe eight").into();
    std::fs::write(dev.cache(), serde_json::to_vec(&cached).unwrap()).unwrap();
    let o = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the cached policy is not usable")
            && stderr(&o).contains("does not match the policy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn key_rotation() {
    let pki = Pki::new("rotation");
    let server = Server::https(&pki);
    let (old, new, next) = (Signer::new(), Signer::new(), Signer::new());
    let dev = Device::new();
    let url = server.url("/policy.json");

    // Both keys trusted during the rotation: old-signed, then new-signed.
    let both = dev.config("both.toml", &url, &[&old, &new], Some(&pki), "");
    publish(&server, &policy(1), &old, "\"r1\"");
    assert_pulled(
        &pull(&both),
        &format!("serial 1 is in force (signed by key {})", old.key_id()),
    );
    publish(&server, &policy(2), &new, "\"r2\"");
    assert_pulled(
        &pull(&both),
        &format!("serial 2 is in force (signed by key {})", new.key_id()),
    );

    // The old key retired: the cached policy (signed by the new key) stays
    // good, and a policy signed by the old key is refused.
    let new_only = dev.config("new-only.toml", &url, &[&new], Some(&pki), "");
    assert_eq!(show(&new_only)["in_force"]["serial"], 2);
    publish(&server, &policy(3), &old, "\"r3\"");
    let o = pull(&new_only);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "signed by key {}, which is not trusted",
            old.key_id()
        )),
        "{}",
        stderr(&o)
    );
    publish(&server, &policy(3), &new, "\"r3b\"");
    assert_pulled(&pull(&new_only), "serial 3");

    // Rotated again, straight to a third key, without a new serial: the
    // cache signed by `new` is no longer trusted, so the agent asks for the
    // policy unconditionally and takes the re-signed same serial.
    let next_only = dev.config("next-only.toml", &url, &[&next], Some(&pki), "");
    let s = show(&next_only);
    assert_eq!(s["in_force"], Value::Null, "{s:#}");
    assert!(
        s["cache_problem"]
            .as_str()
            .unwrap()
            .contains("which is not trusted"),
        "{s:#}"
    );
    server.set(
        "/policy.json.minisig",
        Reply::ok(next.sign(policy(3).as_bytes()), "\"r3c-sig\""),
    );
    server.clear_requests();
    assert_pulled(
        &pull(&next_only),
        &format!("serial 3 is in force (signed by key {})", next.key_id()),
    );
    assert_eq!(server.requests()[0].header("if-none-match"), None);
    assert_eq!(show(&next_only)["in_force"]["key_id"], next.key_id());
}

#[test]
fn plain_http_only_for_loopback_and_only_when_allowed() {
    let key = Signer::new();
    let dev = Device::new();
    let plain = Server::http();
    publish(&plain, &policy(2), &key, "\"h\"");
    let cfg = dev.config(
        "agent.toml",
        &plain.url("/policy.json"),
        &[&key],
        None,
        "allow_http_loopback = true\n",
    );
    assert_pulled(&pull(&cfg), "serial 2");
    // Not for a host that is not loopback, whatever the config says.
    let remote = dev.config(
        "remote.toml",
        "http://policies.example.com/policy.json",
        &[&key],
        None,
        "allow_http_loopback = true\n",
    );
    let o = pull(&remote);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("refusing plain HTTP"), "{}", stderr(&o));
}

#[test]
fn verify_command() {
    let (key, other) = (Signer::new(), Signer::new());
    let dev = Device::new();
    let file = dev.path("policy.json");
    std::fs::write(&file, policy(4)).unwrap();
    std::fs::write(
        dev.path("policy.json.minisig"),
        key.sign(policy(4).as_bytes()),
    )
    .unwrap();
    let pub_file = dev.path("minisign.pub");
    std::fs::write(&pub_file, key.public_key_file()).unwrap();
    let f = file.to_str().unwrap();

    let o = run(&["policy", "verify", f, "--key", &key.public_key()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("valid: serial 4"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&key.key_id()), "{}", stdout(&o));
    // A minisign.pub file, and one trusted key among several.
    let o = run(&[
        "policy",
        "verify",
        f,
        "--key",
        &other.public_key(),
        "--key",
        pub_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The config's keys when no --key is given.
    let cfg = dev.config("agent.toml", "https://x/p.json", &[&key], None, "");
    let o = run(&["policy", "verify", f, "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = run(&["policy", "verify", f, "--key", &other.public_key()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not trusted"), "{}", stderr(&o));

    std::fs::write(&file, policy(4).replace("Probe", "Probes")).unwrap();
    let o = run(&["policy", "verify", f, "--key", &key.public_key()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));

    let bad = dev.path("bad.json");
    let text = policy(4).replace("\"low\"", "\"urgent\"");
    std::fs::write(&bad, &text).unwrap();
    let sig = dev.path("bad.sig");
    std::fs::write(&sig, key.sign(text.as_bytes())).unwrap();
    let o = run(&[
        "policy",
        "verify",
        bad.to_str().unwrap(),
        "--sig",
        sig.to_str().unwrap(),
        "--key",
        &key.public_key(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("$.checks[0].severity"),
        "{}",
        stderr(&o)
    );

    let o = run(&[
        "policy",
        "verify",
        bad.to_str().unwrap(),
        "--key",
        &key.public_key(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no signature"), "{}", stderr(&o));
}

#[test]
fn the_built_in_policy_only_when_allowed() {
    let key = Signer::new();
    let dev = Device::new();
    // A URL, nothing fetched yet: no policy, unless the config allows the default.
    let cfg = dev.config(
        "agent.toml",
        "https://127.0.0.1:9/p.json",
        &[&key],
        None,
        "",
    );
    let o = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no policy has been fetched yet"),
        "{}",
        stderr(&o)
    );
    let allowed = dev.config(
        "allowed.toml",
        "https://127.0.0.1:9/p.json",
        &[&key],
        None,
        "allow_default_policy = true\n",
    );
    let (_, doc) = check(&allowed);
    assert_eq!(
        doc["policy"]["source"], "built-in default policy",
        "{doc:#}"
    );
    // No URL: the built-in policy.
    let none = dev.path("none.toml");
    write_private(&none, "[asset]\nowner_email = \"ada@example.com\"\n");
    let (_, doc) = check(&none);
    assert_eq!(
        doc["policy"]["source"], "built-in default policy",
        "{doc:#}"
    );
}

#[test]
fn config_show_says_where_each_value_came_from() {
    let dev = Device::new();
    let cfg = dev.path("agent.toml");
    write_private(
        &cfg,
        "policy_url = \"https://policies.example.com/p.json\"\n[asset]\nowner_email = \"ada@example.com\"\n",
    );
    let o = run(&["config", "show", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"))
            .to_string()
    };
    assert!(
        line("policy_url = \"https://policies.example.com/p.json\"")
            .ends_with(&format!("# {}", cfg.display()))
    );
    assert!(line("asset.owner_email = ").ends_with(&format!("# {}", cfg.display())));
    assert!(line("poll_interval = \"15m\"").ends_with("# default"));
    let o = run(&[
        "config",
        "show",
        "--format",
        "json",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["origins"]["policy_url"], cfg.display().to_string());
    assert_eq!(doc["effective"]["allow_default_policy"], false);
}

/// The admin's path from the README, with the stock `minisign` tool:
/// write, lint, sign, upload both files, set the URL and the public key.
#[test]
fn the_admins_path_with_the_stock_minisign_tool() {
    let minisign = |args: &[&str], dir: &Path| {
        let o = Command::new("minisign")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("minisign: {e} (scripts/deps.sh test installs Debian's minisign)")
            });
        assert!(o.status.success(), "minisign {args:?}: {}", stderr(&o));
    };
    let dev = Device::new();
    let admin = dev.path("admin");
    std::fs::create_dir(&admin).unwrap();
    std::fs::write(admin.join("policy.json"), policy(12)).unwrap();
    let o = run(&[
        "policy",
        "lint",
        admin.join("policy.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    minisign(&["-G", "-W", "-p", "tend.pub", "-s", "tend.key"], &admin);
    minisign(&["-Sm", "policy.json", "-s", "tend.key"], &admin);

    let pki = Pki::new("admin");
    let server = Server::https(&pki);
    let read = |name: &str| std::fs::read(admin.join(name)).unwrap();
    server.set(
        "/tend/policy.json",
        Reply::ok(read("policy.json"), "\"a1\""),
    );
    server.set(
        "/tend/policy.json.minisig",
        Reply::ok(read("policy.json.minisig"), "\"a1s\""),
    );
    let pub_file = String::from_utf8(read("tend.pub")).unwrap();
    // "untrusted comment: minisign public key 0123456789ABCDEF" then the key.
    let key_id = pub_file.lines().next().unwrap().rsplit(' ').next().unwrap();
    let key = pub_file.lines().nth(1).unwrap();
    let ca = dev.path("ca.pem");
    pki.write_ca(&ca);
    let cfg = dev.path("agent.toml");
    write_private(
        &cfg,
        &format!(
            "policy_url = \"{}\"\ntrusted_keys = [\"{key}\"]\npinned_ca = \"{}\"\nstate_dir = \"{}\"\n",
            server.url("/tend/policy.json"),
            ca.display(),
            dev.state().display()
        ),
    );
    let o = run(&[
        "policy",
        "verify",
        admin.join("policy.json").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_pulled(
        &pull(&cfg),
        &format!("serial 12 is in force (signed by key {key_id})"),
    );
    assert_eq!(check(&cfg).1["checks"][0]["id"], "probe_12");
}
