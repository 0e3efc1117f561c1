//! An HTTPS event collector on loopback for the daemon tests: it takes the
//! HTTP sink's POSTs (a JSON array, gzip) and endpoint resources' calls (one
//! JSON object), keeps every event and the
//! headers of every request, and can be told to fail the next requests.
//!
//! One request per connection (`Connection: close`); it runs on its own
//! thread and runtime and stops when dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::https::Pki;
use crate::loopback::Loopback;

/// One POST as received.
#[derive(Clone, Debug)]
pub struct Post {
    pub path: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The events of the batch.
    pub events: Vec<serde_json::Value>,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    posts: Vec<Post>,
    fail_next: usize,
    failed: usize,
}

pub struct Collector {
    server: Loopback,
    state: Arc<Mutex<State>>,
}

impl Collector {
    pub fn https(pki: &Pki) -> Collector {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let server = Loopback::start(move |tcp| {
            let acceptor = acceptor.clone();
            let state = shared.clone();
            async move {
                if let Ok(s) = acceptor.accept(tcp).await {
                    serve(s, state).await;
                }
            }
        });
        Collector { server, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.addr().port())
    }

    /// Answers the next `n` requests with 503 (their events are not kept).
    pub fn fail_next(&self, n: usize) {
        self.state.lock().expect("state").fail_next = n;
    }

    /// How many requests were failed on purpose.
    pub fn failed(&self) -> usize {
        self.state.lock().expect("state").failed
    }

    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().expect("state").posts.clone()
    }

    /// Every event received, in order (duplicates included).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.posts().into_iter().flat_map(|p| p.events).collect()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 << 10 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        body.extend_from_slice(&chunk[..n]);
    }
    let gzip = headers
        .iter()
        .any(|(n, v)| n == "content-encoding" && v == "gzip");
    let text = if gzip {
        let mut out = String::new();
        if std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .is_err()
        {
            let _ = s
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return;
        }
        out
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    let fail = {
        let mut st = state.lock().expect("state");
        if st.fail_next > 0 {
            st.fail_next -= 1;
            st.failed += 1;
            true
        } else {
            false
        }
    };
    if fail {
        let _ = s
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = s.shutdown().await;
        return;
    }
    let events = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(a)) => a,
        // One object (a workflow task's call to an endpoint resource).
        Ok(v @ serde_json::Value::Object(_)) => vec![v],
        _ => {
            let _ = s
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return;
        }
    };
    state.lock().expect("state").posts.push(Post {
        path,
        headers,
        events,
    });
    let _ = s
        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        .await;
    let _ = s.shutdown().await;
}
