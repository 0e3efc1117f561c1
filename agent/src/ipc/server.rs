//! The server side: accept connections, identify the peer, read bounded
//! messages, check access, and hand each request to the [`Service`].
//!
//! Each connection is its own task; whatever one client sends (garbage, a
//! message of a megabyte, a line that never ends) ends that connection
//! only. Connections are capped ([`MAX_CONNECTIONS`] in all,
//! [`MAX_PER_PEER`] per user, administrators exempt), and a message begun
//! must be finished within [`MESSAGE_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc};

use super::peer::{Peer, required};
use super::proto::{self, MAX_MESSAGE, Op, ProtoError, Push, Response};
use super::sessions::{Registration, Sessions};

pub const MAX_CONNECTIONS: usize = 128;
pub const MAX_PER_PEER: usize = 16;
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A refusal from the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// What the daemon offers over the socket. Access is checked before `call`.
pub trait Service: Send + Sync + 'static {
    fn call(
        &self,
        peer: &Peer,
        op: Op,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send;
    /// The pushes a subscriber receives.
    fn subscribe(&self) -> broadcast::Receiver<Push>;
    /// Where a connection that sends `session` is registered, so the
    /// daemon can push it notifications. `None`: sessions get no pushes.
    fn sessions(&self) -> Option<Arc<Sessions>> {
        None
    }
}

/// Counts open connections, in all and per peer.
#[derive(Clone, Default)]
pub struct Limiter {
    inner: Arc<Mutex<(usize, HashMap<u32, usize>)>>,
}

/// A connection slot, released when dropped.
pub struct Slot {
    limiter: Limiter,
    uid: Option<u32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.limiter.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(u) = self.uid
            && let Some(n) = g.1.get_mut(&u)
        {
            *n = n.saturating_sub(1);
        }
    }
}

impl Limiter {
    /// A slot for `peer`, or `None` when it is over a limit.
    pub fn admit(&self, peer: &Peer) -> Option<Slot> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !peer.admin {
            if g.0 >= MAX_CONNECTIONS {
                return None;
            }
            if let Some(u) = peer.uid
                && g.1.get(&u).copied().unwrap_or(0) >= MAX_PER_PEER
            {
                return None;
            }
        }
        g.0 += 1;
        if let Some(u) = peer.uid {
            *g.1.entry(u).or_insert(0) += 1;
        }
        Some(Slot {
            limiter: self.clone(),
            uid: peer.uid,
        })
    }
}

/// How reading one message ended.
enum Read {
    Line(Vec<u8>),
    Eof,
    TooLarge,
    Timeout,
}

/// Reads up to a newline, refusing more than [`MAX_MESSAGE`] bytes, and
/// giving up when a message begun is not finished in time.
async fn read_message<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Read> {
    let mut line = Vec::new();
    loop {
        let fill = r.fill_buf();
        let buf = if line.is_empty() {
            fill.await?
        } else {
            match tokio::time::timeout(MESSAGE_TIMEOUT, fill).await {
                Ok(b) => b?,
                Err(_) => return Ok(Read::Timeout),
            }
        };
        if buf.is_empty() {
            return Ok(Read::Eof);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let end = if done { take - 1 } else { take };
        line.extend_from_slice(&buf[..end]);
        r.consume(take);
        if line.len() > MAX_MESSAGE {
            return Ok(Read::TooLarge);
        }
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Read::Line(line));
        }
    }
}

fn encode<T: serde::Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push('\n');
    s
}

/// Serves one connection until it closes or misbehaves.
pub async fn handle<S, IO>(io: IO, peer: Peer, service: Arc<S>)
where
    S: Service,
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, mut w) = tokio::io::split(io);
    let mut reader = BufReader::with_capacity(16 << 10, r);
    let (out, mut out_rx) = mpsc::channel::<String>(256);
    let writer = tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            if w.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut forwarder: Option<tokio::task::JoinHandle<()>> = None;
    let mut registration: Option<Registration> = None;
    let who = peer.describe();
    loop {
        let line = match read_message(&mut reader).await {
            Ok(Read::Line(l)) => l,
            Ok(Read::Eof) | Err(_) => break,
            Ok(Read::TooLarge) => {
                tracing::warn!("local API: {who} sent a message over {MAX_MESSAGE} bytes; closing");
                let _ = out
                    .send(encode(&Response::error(
                        0,
                        "too_large",
                        ProtoError::TooLarge.to_string(),
                    )))
                    .await;
                break;
            }
            Ok(Read::Timeout) => {
                tracing::warn!("local API: {who} left a message unfinished; closing");
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request = match proto::parse_request(&line) {
            Ok(r) => r,
            Err((id, e)) => {
                let _ = out
                    .send(encode(&Response::error(
                        id.unwrap_or(0),
                        e.code(),
                        e.to_string(),
                    )))
                    .await;
                if e.closes() {
                    tracing::warn!("local API: {who}: {e}; closing");
                    break;
                }
                continue;
            }
        };
        let need = required(&request.op);
        if !peer.may(need) {
            tracing::warn!(
                "local API: {who} may not {} (allowed to {})",
                request.op.name(),
                need.describe()
            );
            let _ = out
                .send(encode(&Response::error(
                    request.id,
                    "forbidden",
                    format!(
                        "{} is allowed only to {}",
                        request.op.name(),
                        need.describe()
                    ),
                )))
                .await;
            continue;
        }
        if request.op == Op::Subscribe {
            if forwarder.is_none() {
                let mut rx = service.subscribe();
                let tx = out.clone();
                forwarder = Some(tokio::spawn(async move {
                    loop {
                        match rx.recv().await {
                            Ok(push) => {
                                // A client that does not read is dropped, not waited for.
                                if tx.try_send(encode(&push)).is_err() {
                                    break;
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        }
                    }
                }));
            }
            let _ = out
                .send(encode(&Response::ok(
                    request.id,
                    serde_json::json!({"subscribed": true}),
                )))
                .await;
            continue;
        }
        let session_user = match &request.op {
            Op::Session { user, .. } => Some(user.clone()),
            _ => None,
        };
        let response = match service.call(&peer, request.op).await {
            Ok(v) => {
                if let (Some(user), None, Some(hub)) =
                    (session_user, &registration, service.sessions())
                {
                    registration = Some(hub.register(&peer, user, out.clone()));
                }
                Response::ok(request.id, v)
            }
            Err(e) => Response::error(request.id, e.code, e.message),
        };
        if out.send(encode(&response)).await.is_err() {
            break;
        }
    }
    if let Some(f) = forwarder {
        f.abort();
    }
    drop(registration);
    drop(out);
    let _ = writer.await;
}

/// Accepts connections on a Unix socket until `shutdown` resolves.
#[cfg(unix)]
pub async fn serve_unix<S: Service>(
    listener: tokio::net::UnixListener,
    service: Arc<S>,
    shutdown: impl Future<Output = ()>,
) {
    let limiter = Limiter::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("local API: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let peer = super::peer::unix_peer(&stream);
                let Some(slot) = limiter.admit(&peer) else {
                    tracing::warn!("local API: too many connections; refusing {}", peer.describe());
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    handle(stream, peer, service).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(broadcast::Sender<Push>);

    impl Service for Echo {
        async fn call(&self, peer: &Peer, op: Op) -> Result<serde_json::Value, ApiError> {
            Ok(serde_json::json!({"op": op.name(), "admin": peer.admin}))
        }
        fn subscribe(&self) -> broadcast::Receiver<Push> {
            self.0.subscribe()
        }
    }

    fn peer(admin: bool) -> Peer {
        Peer {
            uid: Some(1000),
            pid: None,
            session: None,
            admin,
            console: false,
        }
    }

    async fn exchange(input: Vec<u8>, admin: bool) -> Vec<serde_json::Value> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (tx, _) = broadcast::channel(4);
        let svc = Arc::new(Echo(tx));
        let task = tokio::spawn(handle(server, peer(admin), svc));
        let (mut r, mut w) = tokio::io::split(client);
        w.write_all(&input).await.unwrap();
        w.shutdown().await.unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut out)
            .await
            .unwrap();
        task.await.unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn hostile_input_closes_only_that_connection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Good, unknown op (answered, stays open), good, garbage (closes), never read.
            let input = b"{\"v\":1,\"id\":1,\"op\":\"status\"}\n{\"v\":1,\"id\":2,\"op\":\"rm\"}\n{\"v\":1,\"id\":3,\"op\":\"hello\"}\n\x00\xff garbage\n{\"v\":1,\"id\":5,\"op\":\"status\"}\n".to_vec();
            let out = exchange(input, false).await;
            assert_eq!(out.len(), 4, "{out:?}");
            assert_eq!(out[0]["ok"], true);
            assert_eq!(out[1]["error"]["code"], "unknown_op");
            assert_eq!(out[2]["result"]["op"], "hello");
            assert_eq!(out[3]["error"]["code"], "malformed");

            // A non-admin may not reload; may read.
            let out = exchange(
                b"{\"v\":1,\"id\":1,\"op\":\"reload\"}\n{\"v\":1,\"id\":2,\"op\":\"recheck\"}\n{\"v\":1,\"id\":3,\"op\":\"status\"}\n".to_vec(),
                false,
            )
            .await;
            assert_eq!(out[0]["error"]["code"], "forbidden");
            assert_eq!(out[1]["error"]["code"], "forbidden");
            assert_eq!(out[2]["ok"], true);
            let out = exchange(b"{\"v\":1,\"id\":1,\"op\":\"reload\"}\n".to_vec(), true).await;
            assert_eq!(out[0]["ok"], true);

            // Oversized: refused and closed, without reading it all into memory first.
            let mut big = b"{\"v\":1,\"op\":\"status\",\"x\":\"".to_vec();
            big.extend(std::iter::repeat_n(b'a', MAX_MESSAGE * 4));
            big.extend_from_slice(b"\"}\n{\"v\":1,\"op\":\"status\"}\n");
            let out = exchange(big, false).await;
            assert_eq!(out.len(), 1);
            assert_eq!(out[0]["error"]["code"], "too_large");
        });
    }

    #[test]
    fn the_limiter_caps_connections_per_peer() {
        let l = Limiter::default();
        let p = peer(false);
        let slots: Vec<Slot> = (0..MAX_PER_PEER).map(|_| l.admit(&p).unwrap()).collect();
        assert!(l.admit(&p).is_none());
        assert!(l.admit(&peer(true)).is_some());
        drop(slots);
        assert!(l.admit(&p).is_some());
    }
}
