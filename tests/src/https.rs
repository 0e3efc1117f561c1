//! A small HTTPS server on loopback for the policy-fetch tests: a CA and a
//! server certificate made by rcgen, rustls through tokio-rustls, and
//! programmable answers per path (200 with an ETag and 304 for a matching
//! `If-None-Match`, any status, a stall, an oversize body).
//!
//! It speaks just enough HTTP/1.1 for one GET per connection
//! (`Connection: close`). Each server runs on its own thread and runtime and
//! stops when dropped; a stalled answer lasts at most the time it was given.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::loopback::Loopback;

/// A test CA and a certificate it issued for `localhost` and `127.0.0.1`.
pub struct Pki {
    /// The CA certificate, PEM: what a config pins with `pinned_ca`.
    pub ca_pem: String,
    config: Arc<ServerConfig>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");

        let key = KeyPair::generate().expect("server key");
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &issuer).expect("server certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), issuer.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server TLS config");
        Pki {
            ca_pem: issuer.pem(),
            config: Arc::new(config),
        }
    }

    /// Writes the CA certificate where a config can pin it.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).expect("write the CA");
    }

    /// The server side's TLS config (for other test servers on this CA).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

/// How the server answers a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body and validators; 304 when the request's
    /// `If-None-Match` is the ETag (or, without one, its `If-Modified-Since`
    /// is the Last-Modified).
    Ok {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// This status with an empty body.
    Status(u16),
    /// Headers promising a body, a few bytes of it, then silence for this long.
    Stall(Duration),
    /// A body of `len` bytes; with `declared`, a Content-Length says so first.
    Large { len: usize, declared: bool },
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>, etag: &str) -> Reply {
        Reply::Ok {
            body: body.into(),
            etag: Some(etag.to_string()),
            last_modified: Some("Sun, 29 Nov 2026 10:00:00 GMT".into()),
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    requests: Vec<Request>,
}

/// A running server on 127.0.0.1.
pub struct Server {
    server: Loopback,
    tls: bool,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// HTTPS with `pki`'s server certificate.
    pub fn https(pki: &Pki) -> Server {
        Server::start(Some(pki.config.clone()))
    }

    /// Plain HTTP (for the loopback exception).
    pub fn http() -> Server {
        Server::start(None)
    }

    fn start(tls: Option<Arc<ServerConfig>>) -> Server {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let server = Loopback::start(move |tcp| {
            let state = shared.clone();
            let acceptor = acceptor.clone();
            async move {
                match acceptor {
                    Some(a) => {
                        // A client that refuses our certificate ends here.
                        if let Ok(s) = a.accept(tcp).await {
                            serve(s, state).await;
                        }
                    }
                    None => serve(tcp, state).await,
                }
            }
        });
        Server {
            server,
            tls: is_tls,
            state,
        }
    }

    /// The URL of `path` on this server, by IP address.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.server.addr().port())
    }

    /// Sets how `path` is answered (a path never set answers 404).
    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .expect("state")
            .routes
            .insert(path.to_string(), reply);
    }

    /// Makes `path` answer 404.
    pub fn remove(&self, path: &str) {
        self.state.lock().expect("state").routes.remove(path);
    }

    /// The requests served so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().expect("state").requests.clear();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, state: Arc<Mutex<State>>) {
    let Some(req) = read_request(&mut s).await else {
        return;
    };
    let reply = {
        let mut st = state.lock().expect("state");
        st.requests.push(req.clone());
        st.routes.get(&req.path).cloned()
    };
    let _ = answer(&mut s, &req, reply).await;
    let _ = s.shutdown().await;
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 16 << 10 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Some(Request { path, headers })
}

async fn answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    req: &Request,
    reply: Option<Reply>,
) -> std::io::Result<()> {
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n").into_bytes()
    };
    match reply {
        None => {
            s.write_all(&head("404 Not Found", "Content-Length: 0\r\n"))
                .await
        }
        Some(Reply::Status(code)) => {
            s.write_all(&head(&format!("{code} Status"), "Content-Length: 0\r\n"))
                .await
        }
        Some(Reply::Ok {
            body,
            etag,
            last_modified,
        }) => {
            let not_modified = match (req.header("if-none-match"), &etag) {
                (Some(sent), Some(e)) => sent == e,
                (None, _) => {
                    req.header("if-modified-since").is_some()
                        && req.header("if-modified-since") == last_modified.as_deref()
                }
                _ => false,
            };
            let mut extra = String::new();
            if let Some(e) = &etag {
                extra.push_str(&format!("ETag: {e}\r\n"));
            }
            if let Some(lm) = &last_modified {
                extra.push_str(&format!("Last-Modified: {lm}\r\n"));
            }
            if not_modified {
                return s.write_all(&head("304 Not Modified", &extra)).await;
            }
            extra.push_str(&format!("Content-Length: {}\r\n", body.len()));
            s.write_all(&head("200 OK", &extra)).await?;
            s.write_all(&body).await
        }
        Some(Reply::Stall(d)) => {
            s.write_all(&head("200 OK", "Content-Length: 100000\r\n"))
                .await?;
            s.write_all(b"{\"version\": 1,").await?;
            s.flush().await?;
            tokio::time::sleep(d).await;
            Ok(())
        }
        Some(Reply::Large { len, declared }) => {
            let extra = if declared {
                format!("Content-Length: {len}\r\n")
            } else {
                String::new()
            };
            s.write_all(&head("200 OK", &extra)).await?;
            let block = vec![b' '; 64 << 10];
            let mut sent = 0;
            while sent < len {
                let n = block.len().min(len - sent);
                s.write_all(&block[..n]).await?;
                sent += n;
            }
            Ok(())
        }
    }
}
