//! A small W3C WebDriver client over plain HTTP/1.1 on loopback: enough to
//! start a session against tauri-driver, find elements, click, run a
//! script and take a screenshot. Every socket operation has a timeout, so
//! a driver that hangs fails the test instead of blocking it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The error of a connection closed before any answer.
const NO_ANSWER: &str = "closed without an answer";

/// One HTTP request; returns the status and the JSON body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to :{port}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    if status_line.is_empty() {
        return Err(format!("{method} {path}: {NO_ANSWER}"));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line {status_line:?}"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
    }
    let mut data = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| format!("chunk size {size:?}: {e}"))?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            data.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        data.resize(n, 0);
        r.read_exact(&mut data).map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut data).map_err(|e| e.to_string())?;
    }
    let v = if data.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&data)
            .map_err(|e| format!("{method} {path}: {e}: {}", String::from_utf8_lossy(&data)))?
    };
    Ok((status, v))
}

/// A WebDriver session.
pub struct Session {
    port: u16,
    id: String,
}

impl Session {
    /// Starts a session for the Tauri app `application` with `args`.
    pub fn start(port: u16, application: &str, args: &[&str]) -> Result<Session, String> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "tauri:options": { "application": application, "args": args },
                    "timeouts": { "script": 30000, "pageLoad": 30000, "implicit": 0 }
                }
            }
        });
        // tauri-driver answers before WebKitWebDriver behind it listens; a
        // request it could not pass on is answered by a closed connection.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (status, v) = loop {
            match http(
                port,
                "POST",
                "/session",
                Some(&caps),
                Duration::from_secs(90),
            ) {
                Err(e) if e.contains(NO_ANSWER) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => break other?,
            }
        };
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("new session ({status}): {v}"))?;
        Ok(Session {
            port,
            id: id.to_string(),
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let full = format!("/session/{}{path}", self.id);
        // tauri-driver reuses a pooled connection to WebKitWebDriver, which
        // may have closed it: the request then fails before it is sent, and
        // tauri-driver closes ours without an answer. Such a request did
        // not happen, so it is sent again.
        let mut tries = 0;
        let (status, v) = loop {
            match http(
                self.port,
                method,
                &full,
                body.as_ref(),
                Duration::from_secs(60),
            ) {
                Err(e) if e.contains(NO_ANSWER) && tries < 3 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        if status >= 400 {
            return Err(format!("{method} {path} ({status}): {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    /// Runs `script` (a function body) in the page with `args`.
    pub fn script(&self, script: &str, args: Value) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<String, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        )?;
        v[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element id in {v}"))
    }

    pub fn click(&self, element: &str) -> Result<(), String> {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .map(|_| ())
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd("GET", "/screenshot", None)?;
        decode_base64(v.as_str().ok_or("the screenshot is not a string")?)
    }

    /// Polls `script` until it returns something truthy-equal to `want`.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        want: &Value,
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            match self.script(script, json!([])) {
                Ok(v) if &v == want => return Ok(()),
                Ok(v) => last = v,
                Err(e) => last = Value::String(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{what}: not {want} within {limit:?}; last {last}"))
    }

    /// Ends the session (the driver closes the app).
    pub fn end(self) -> Result<(), String> {
        http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
            Duration::from_secs(30),
        )
        .map(|_| ())
    }
}

fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [255u8; 256];
    for (i, c) in ABC.iter().enumerate() {
        table[*c as usize] = i as u8;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = table[c as usize];
        if v == 255 {
            return Err(format!("not base64: {c:?}"));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Waits until the driver on `port` answers `GET /status`.
pub fn wait_ready(port: u16, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http(port, "GET", "/status", None, Duration::from_secs(5)) {
            Ok((200, v)) if v["value"]["ready"] == true => return Ok(()),
            Ok((status, v)) => last = format!("{status} {v}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the driver on 127.0.0.1:{port} is not ready after {limit:?}: {last}"
    ))
}
