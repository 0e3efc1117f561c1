//! The HTTP sink: events POSTed in batches, as a JSON array compressed
//! with gzip, to an HTTPS URL (a webhook, Splunk HEC, Elastic, Loki's push
//! gateway behind a small adapter).
//!
//! reqwest with rustls, as for the policy: the OS trust store or a pinned
//! CA, HTTPS only (plain HTTP only to loopback with `allow_http_loopback`).
//! Headers come from the config; the token, a secret, does not: it is read
//! from a root-only file or a systemd credential when the sink starts. A
//! 2xx answer delivers the batch; anything else is retried with backoff by
//! the sink's task (a 413 halves the batch first).

use std::collections::BTreeMap;
use std::error::Error as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::daemon::store::Pending;
use crate::secrets::SecretStore;

/// The default batch size.
pub const DEFAULT_BATCH: usize = 100;
/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 16 << 10;

/// Where the sink's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// A root-only file.
    File(PathBuf),
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/NAME`).
    Credential(String),
    /// A secret in the agent's store (`tend secret set NAME`).
    Secret(String),
}

/// Everything the HTTP sink needs.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub url: String,
    pub batch_size: usize,
    pub headers: BTreeMap<String, String>,
    pub token: Option<TokenSource>,
    /// The state directory, where Linux keeps the secret store.
    pub state_dir: PathBuf,
    pub token_header: String,
    pub token_prefix: String,
    pub pinned_ca: Option<PathBuf>,
    pub gzip: bool,
    pub allow_http_loopback: bool,
    pub timeout: Duration,
}

pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    gzip: bool,
    pub batch_size: usize,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpSinkError {
    #[error("{0}")]
    Setup(String),
    #[error("{url}: {reason}")]
    Transfer { url: String, reason: String },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
}

/// Reads the token: from `secrets`, or a file that only its owner may read.
pub fn read_token(source: &TokenSource, secrets: &dyn SecretStore) -> Result<String, String> {
    let path = match source {
        TokenSource::Secret(name) => return secrets.get(name).map_err(|e| e.to_string()),
        TokenSource::File(p) => p.clone(),
        TokenSource::Credential(name) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                format!("token credential {name:?}: CREDENTIALS_DIRECTORY is not set (not started by systemd with LoadCredential=)")
            })?;
            if name.contains(['/', '\\']) || name == ".." {
                return Err(format!("token credential {name:?}: not a credential name"));
            }
            Path::new(&dir).join(name)
        }
    };
    let name = path.display().to_string();
    let meta = std::fs::metadata(&path).map_err(|e| format!("token file {name}: {e}"))?;
    if meta.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "token file {name}: larger than {MAX_TOKEN_BYTES} bytes"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && matches!(source, TokenSource::File(_)) {
            return Err(format!(
                "token file {name}: readable by other users (mode {mode:o}); make it 0600"
            ));
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("token file {name}: {e}"))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(format!("token file {name}: empty"));
    }
    Ok(token)
}

fn chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

impl HttpSink {
    pub fn new(s: &HttpSettings) -> Result<HttpSink, HttpSinkError> {
        let setup = |m: String| HttpSinkError::Setup(format!("sink {}: {m}", s.url));
        let url = crate::policy::fetch::checked_url(&s.url, s.allow_http_loopback)
            .map_err(|e| HttpSinkError::Setup(e.to_string()))?;
        let tls = crate::policy::fetch::tls_config(s.pinned_ca.as_deref())
            .map_err(|e| setup(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &s.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| setup(format!("header {k:?}: {e}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| setup(format!("header {k:?}: {e}")))?;
            headers.insert(name, value);
        }
        if let Some(source) = &s.token {
            let token =
                read_token(source, crate::secrets::system(&s.state_dir).as_ref()).map_err(setup)?;
            let name = HeaderName::from_bytes(s.token_header.as_bytes())
                .map_err(|e| setup(format!("token header {:?}: {e}", s.token_header)))?;
            let mut value = HeaderValue::from_str(&format!("{}{token}", s.token_prefix))
                .map_err(|_| setup("the token is not valid in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if s.gzip {
            headers.insert(
                reqwest::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        let allow_http = s.allow_http_loopback;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(s.timeout.min(Duration::from_secs(10)))
            .timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::custom(move |a| {
                if a.previous().len() >= 5 {
                    a.error("more than 5 redirects")
                } else if let Err(e) =
                    crate::policy::fetch::checked_url(a.url().as_str(), allow_http)
                {
                    a.error(e)
                } else {
                    a.follow()
                }
            }))
            .build()
            .map_err(|e| setup(chain(&e)))?;
        Ok(HttpSink {
            client,
            url,
            headers,
            gzip: s.gzip,
            batch_size: s.batch_size.max(1),
        })
    }

    /// The body of a batch: a JSON array of the events, gzipped when configured.
    pub fn encode(batch: &[Pending], gzip: bool) -> Vec<u8> {
        let mut json = String::from("[");
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&e.body);
        }
        json.push(']');
        if !gzip {
            return json.into_bytes();
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(json.as_bytes());
        enc.finish().unwrap_or_default()
    }

    /// POSTs one batch.
    pub async fn deliver(&self, batch: &[Pending]) -> Result<(), HttpSinkError> {
        let body = HttpSink::encode(batch, self.gzip);
        let resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| HttpSinkError::Transfer {
                url: self.url.to_string(),
                reason: chain(&e),
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(HttpSinkError::Status {
                url: self.url.to_string(),
                status: status.as_u16(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;
    use std::io::Read as _;

    #[test]
    fn a_batch_is_a_gzipped_json_array() {
        let batch = vec![
            Pending {
                seq: 1,
                uuid: "a".into(),
                body: "{\"uuid\":\"a\"}".into(),
            },
            Pending {
                seq: 2,
                uuid: "b".into(),
                body: "{\"uuid\":\"b\"}".into(),
            },
        ];
        let gz = HttpSink::encode(&batch, true);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[1]["uuid"], "b");
        assert_eq!(HttpSink::encode(&batch[..1], false), b"[{\"uuid\":\"a\"}]");
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let none = MemoryStore::new();
        let e = read_token(&TokenSource::File(p.clone()), &none).unwrap_err();
        assert!(e.contains("readable by other users"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&TokenSource::File(p), &none).unwrap(), "s3cret");
        assert!(read_token(&TokenSource::Credential("../x".into()), &none).is_err());
    }

    #[test]
    fn a_token_comes_from_the_secret_store() {
        let store = MemoryStore::new();
        let source = TokenSource::Secret("sink-token".into());
        let e = read_token(&source, &store).unwrap_err();
        assert!(e.contains("tend secret set sink-token"), "{e}");
        store.set("sink-token", "s3cret").unwrap();
        assert_eq!(read_token(&source, &store).unwrap(), "s3cret");
    }

    #[test]
    fn plain_http_is_refused() {
        let s = HttpSettings {
            url: "http://logs.example.com/in".into(),
            batch_size: 10,
            headers: BTreeMap::new(),
            token: None,
            state_dir: PathBuf::from("state"),
            token_header: "Authorization".into(),
            token_prefix: "Bearer ".into(),
            pinned_ca: None,
            gzip: true,
            allow_http_loopback: false,
            timeout: Duration::from_secs(5),
        };
        let e = HttpSink::new(&s).err().unwrap().to_string();
        assert!(e.contains("refusing plain HTTP"), "{e}");
    }
}
