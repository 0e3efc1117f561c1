//! Running `tend run` as a real process for the daemon tests: start it,
//! wait until its local API answers, talk to the API over the socket, kill
//! it (SIGKILL) or stop it (SIGTERM), start it again.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tend_bin;

/// A `tend run` process.
pub struct Daemon {
    /// The `tend` binary run (default: this build's).
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: usize,
}

/// Sends one request line to the socket and returns the response.
pub fn request(socket: &Path, line: &str) -> std::io::Result<serde_json::Value> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\n")?;
    let mut r = BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out)?;
    serde_json::from_str(&out).map_err(|e| std::io::Error::other(format!("{e}: {out:?}")))
}

impl Daemon {
    /// Starts `tend run ARGS --socket SOCKET`, its stderr appended to `log`,
    /// and waits until it answers `status`.
    pub fn start(args: &[&str], socket: &Path, log: &Path) -> Daemon {
        Daemon::start_with_env(args, &[], socket, log)
    }

    /// As [`Daemon::start`], with extra environment variables.
    pub fn start_with_env(
        args: &[&str],
        env: &[(&str, &str)],
        socket: &Path,
        log: &Path,
    ) -> Daemon {
        Daemon::start_exe(&tend_bin(), args, env, socket, log)
    }

    /// As [`Daemon::start_with_env`], running the binary `bin` (a copy
    /// that may replace itself, for the self-update test).
    pub fn start_exe(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        socket: &Path,
        log: &Path,
    ) -> Daemon {
        let mut d = Daemon {
            bin: bin.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            socket: socket.to_path_buf(),
            log: log.to_path_buf(),
            child: None,
            starts: 0,
        };
        d.spawn();
        d.wait_ready(Duration::from_secs(30));
        d
    }

    /// Starts the process without waiting for it.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon log");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .args(&self.args)
            .arg("--socket")
            .arg(&self.socket)
            .env("TEND_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
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
        self.child = Some(cmd.spawn().expect("tend run starts"));
        self.starts += 1;
    }

    /// Waits until the API answers `status`.
    pub fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(v) = request(&self.socket, r#"{"v":1,"id":1,"op":"status"}"#)
                && v["ok"] == true
            {
                return;
            }
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("tend run exited ({status}); log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "tend run did not answer within {limit:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for it to exit; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// One API request.
    pub fn request(&self, line: &str) -> serde_json::Value {
        request(&self.socket, line).unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log_text()))
    }

    /// `status`'s result.
    pub fn status(&self) -> serde_json::Value {
        let v = self.request(r#"{"v":1,"id":1,"op":"status"}"#);
        assert_eq!(v["ok"], true, "{v}");
        v["result"].clone()
    }

    /// A check's status (`passed`, `failed`, ..., `pending`).
    pub fn check_status(&self, id: &str) -> String {
        let s = self.status();
        s["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id))
            .and_then(|c| c["status"].as_str())
            .unwrap_or("missing")
            .to_string()
    }

    /// Waits until check `id` has `status`; returns how long it took.
    pub fn wait_for(&self, id: &str, status: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.check_status(id) == status {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "{id} did not become {status} within {limit:?} (it is {}); log:\n{}",
                self.check_status(id),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
/// One local API request (`op` and its fields); the answer line as JSON.
pub fn api(d: &Daemon, op: serde_json::Value) -> serde_json::Value {
    let mut req = op;
    req["v"] = serde_json::json!(1);
    req["id"] = serde_json::json!(1);
    d.request(&req.to_string())
}

/// The workflow executions the daemon knows, newest first.
pub fn executions(d: &Daemon) -> Vec<serde_json::Value> {
    let v = api(
        d,
        serde_json::json!({"op": "workflow_executions", "limit": 1000}),
    );
    assert_eq!(v["ok"], true, "{v}");
    v["result"]["executions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// One execution's summary (`Null` when unknown).
pub fn execution(d: &Daemon, id: &str) -> serde_json::Value {
    executions(d)
        .into_iter()
        .find(|e| e["id"] == id)
        .unwrap_or(serde_json::Value::Null)
}

/// One execution's history events.
pub fn history(d: &Daemon, id: &str) -> Vec<serde_json::Value> {
    let v = api(
        d,
        serde_json::json!({"op": "workflow_history", "execution": id}),
    );
    assert_eq!(v["ok"], true, "{v}");
    v["result"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The states an execution entered, in order.
pub fn entered(d: &Daemon, id: &str) -> Vec<String> {
    history(d, id)
        .iter()
        .filter(|h| h["type"] == "StateEntered")
        .map(|h| h["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Writes a file that only its owner may write (configs are refused otherwise).
pub fn write_config(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write the config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// JSON lines of a file (missing file: none). A last line without a
/// newline is left out (it is being written).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}
