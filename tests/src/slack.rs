//! A Slack-compatible Web API server on loopback, for the Slack resources'
//! tests. It speaks Slack's wire format for the methods Tend uses
//! (`users.lookupByEmail`, `conversations.open`, `chat.postMessage`,
//! `chat.update`): `POST /api/<method>` with a JSON or form body and
//! `Authorization: Bearer <token>`, answered `{"ok": true, ...}` or
//! `{"ok": false, "error": "..."}`, and `429` with `Retry-After` when told.
//! It records every call as Slack would receive it.
//!
//! HTTP/1.1 with keep-alive (as reqwest uses it). The server runs on its own
//! thread and runtime and stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::loopback::Loopback;

/// One call as the server received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    pub content_type: String,
    pub authorization: String,
    /// The body: JSON as sent, or a form as an object of strings.
    pub body: Value,
}

/// What to do with the next call of a method instead of answering it.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: secs`.
    RateLimit { retry_after: u64 },
    /// `{"ok": false, "error": ...}`.
    Error(String),
    /// Close the connection without answering.
    Drop,
    /// An HTTP status with an empty body.
    Status(u16),
}

#[derive(Default)]
struct State {
    token: String,
    users: HashMap<String, String>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Every call of the method gets this fault (a storm).
    always: HashMap<String, Fault>,
    calls: Vec<Call>,
    channels: HashMap<String, String>,
    messages: HashMap<(String, String), Value>,
    next_ts: u64,
}

/// The server.
pub struct SlackServer {
    server: Loopback,
    state: Arc<Mutex<State>>,
}

impl SlackServer {
    /// Starts a server that accepts the bot token `token`.
    pub fn start(token: &str) -> SlackServer {
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            ..State::default()
        }));
        let st = state.clone();
        let server = Loopback::start(move |tcp| serve(tcp, st.clone()));
        SlackServer { server, state }
    }

    /// The API base URL, `http://127.0.0.1:PORT/api/`.
    pub fn api_base(&self) -> String {
        format!("http://{}/api/", self.server.addr())
    }

    /// A workspace member: `email` is user `id`.
    pub fn add_user(&self, email: &str, id: &str) {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(email.to_string(), id.to_string());
    }

    /// The next call of `method` meets `fault` (queued in order).
    pub fn fault(&self, method: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(method.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Every call of `method` meets `fault` (until [`SlackServer::calm`]).
    pub fn always(&self, method: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(method.to_string(), fault);
    }

    pub fn calm(&self) {
        self.state.lock().unwrap().always.clear();
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// A posted message as it stands now (after updates).
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .messages
            .get(&(channel.to_string(), ts.to_string()))
            .cloned()
    }
}

struct Http {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request; `None` at the end of the connection.
async fn read_request(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<Http> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_string();
            let path = first.next()?.to_string();
            let headers: HashMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 16384];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(Http {
                method,
                path,
                headers,
                body,
            });
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn form(body: &[u8]) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut m = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(decode(k), Value::String(decode(v)));
    }
    Value::Object(m)
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(mut s: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut s, &mut buf).await {
        let (status, extra, body) = answer(&req, &state);
        if status == 0 {
            return; // Fault::Drop: hang up without a word.
        }
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let text = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        if s.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Status (0: hang up), extra header lines, body.
fn answer(req: &Http, state: &Mutex<State>) -> (u16, String, String) {
    let method = req.path.trim_start_matches("/api/").to_string();
    let content_type = req.headers.get("content-type").cloned().unwrap_or_default();
    let body = if content_type.starts_with("application/json") {
        serde_json::from_slice(&req.body).unwrap_or(Value::Null)
    } else {
        form(&req.body)
    };
    let mut st = state.lock().unwrap();
    st.calls.push(Call {
        method: method.clone(),
        content_type: content_type.clone(),
        authorization: req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default(),
        body: body.clone(),
    });
    let fault = st
        .faults
        .get_mut(&method)
        .and_then(VecDeque::pop_front)
        .or_else(|| st.always.get(&method).cloned());
    match fault {
        Some(Fault::RateLimit { retry_after }) => {
            return (
                429,
                format!("Retry-After: {retry_after}\r\n"),
                String::new(),
            );
        }
        Some(Fault::Error(e)) => {
            return (
                200,
                String::new(),
                json!({"ok": false, "error": e}).to_string(),
            );
        }
        Some(Fault::Drop) => return (0, String::new(), String::new()),
        Some(Fault::Status(s)) => return (s, String::new(), String::new()),
        None => {}
    }
    let ok = |v: Value| {
        let mut v = v;
        v["ok"] = json!(true);
        (200, String::new(), v.to_string())
    };
    let err = |e: &str| {
        (
            200,
            String::new(),
            json!({"ok": false, "error": e}).to_string(),
        )
    };
    if req.method != "POST" {
        return err("invalid_request");
    }
    let bearer = format!("Bearer {}", st.token);
    if req.headers.get("authorization") != Some(&bearer) {
        return err(if req.headers.contains_key("authorization") {
            "invalid_auth"
        } else {
            "not_authed"
        });
    }
    match method.as_str() {
        "users.lookupByEmail" => {
            // Slack reads this method's arguments from a form (or the query), not JSON.
            let email = body["email"].as_str().unwrap_or_default();
            match st.users.get(email) {
                Some(id) => ok(json!({"user": {"id": id, "profile": {"email": email}}})),
                None => err("users_not_found"),
            }
        }
        "conversations.open" => {
            let Some(user) = body["users"].as_str() else {
                return err("invalid_arguments");
            };
            if !st.users.values().any(|u| u == user) {
                return err("user_not_found");
            }
            let channel = format!("D{}", user.trim_start_matches('U'));
            st.channels.insert(channel.clone(), user.to_string());
            ok(json!({"channel": {"id": channel}}))
        }
        "chat.postMessage" => {
            if !content_type.starts_with("application/json") {
                return err("invalid_arguments");
            }
            let Some(channel) = body["channel"].as_str().map(str::to_string) else {
                return err("channel_not_found");
            };
            if !st.channels.contains_key(&channel) {
                return err("channel_not_found");
            }
            st.next_ts += 1;
            let ts = format!("1700000000.{:06}", st.next_ts);
            st.messages
                .insert((channel.clone(), ts.clone()), body.clone());
            ok(json!({"channel": channel, "ts": ts, "message": body}))
        }
        "chat.update" => {
            let channel = body["channel"].as_str().unwrap_or_default().to_string();
            let ts = body["ts"].as_str().unwrap_or_default().to_string();
            let key = (channel.clone(), ts.clone());
            if !st.messages.contains_key(&key) {
                return err("message_not_found");
            }
            st.messages.insert(key, body.clone());
            ok(json!({"channel": channel, "ts": ts}))
        }
        _ => err("unknown_method"),
    }
}
