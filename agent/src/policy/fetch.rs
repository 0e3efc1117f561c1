//! Fetching the policy and its signature over HTTPS.
//!
//! reqwest with rustls (the `ring` provider): certificates are verified
//! against the OS trust store through `rustls-platform-verifier`, or, when
//! the config pins a CA, against that CA alone. Only `https://` URLs are
//! fetched (also after a redirect); plain `http://` is allowed for a loopback
//! host when the config says so, for tests. Requests are conditional
//! (`If-None-Match` with the last ETag, `If-Modified-Since` with the last
//! `Last-Modified`), so an unchanged policy behind a CDN costs one small
//! 304. Bodies are capped ([`super::MAX_POLICY_BYTES`], and
//! [`super::signature::MAX_SIGNATURE_BYTES`] for the signature), connecting
//! and the whole transfer have time limits, and proxies come from the
//! environment (`HTTPS_PROXY`, `NO_PROXY`).

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::{Deserialize, Serialize};

use super::signature::MAX_SIGNATURE_BYTES;
use crate::config::AgentConfig;

/// What the fetcher needs to know, from the agent's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSettings {
    pub url: String,
    /// Default: `url` with `.minisig` appended to its path.
    pub signature_url: Option<String>,
    pub pinned_ca: Option<PathBuf>,
    pub allow_http_loopback: bool,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_bytes: usize,
}

impl FetchSettings {
    /// The settings of a config that names a policy URL.
    pub fn from_config(cfg: &AgentConfig) -> Option<FetchSettings> {
        Some(FetchSettings {
            url: cfg.policy_url.clone()?,
            signature_url: cfg.signature_url.clone(),
            pinned_ca: cfg.pinned_ca.clone(),
            allow_http_loopback: cfg.allow_http_loopback,
            connect_timeout: cfg.connect_timeout.0,
            total_timeout: cfg.fetch_timeout.0,
            max_bytes: super::MAX_POLICY_BYTES,
        })
    }
}

/// What the server said about the version it served, for the next conditional request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// The result of one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the policy is the one already held.
    NotModified,
    New {
        policy: Vec<u8>,
        /// `None` when the server has no signature (404 or 410).
        signature: Option<Vec<u8>>,
        validators: Validators,
    },
}

/// Why a fetch failed. Every variant names the URL or file involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url:?} is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "{url}: refusing plain HTTP (use https://; http:// is allowed only for a loopback host with allow_http_loopback = true)"
    )]
    Insecure { url: String },
    #[error("pinned CA {path}: {reason}")]
    PinnedCa { path: String, reason: String },
    #[error("setting up TLS: {reason}")]
    Tls { reason: String },
    #[error("{url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: no complete answer within {seconds}s (the limit on a whole transfer)")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the response is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: {reason}")]
    Transfer { url: String, reason: String },
}

/// Fetches one policy URL and its signature.
pub struct Fetcher {
    client: reqwest::Client,
    url: Url,
    signature_url: Url,
    max_bytes: usize,
    total_timeout: Duration,
    allow_http_loopback: bool,
}

impl Fetcher {
    pub fn new(s: &FetchSettings) -> Result<Fetcher, FetchError> {
        let url = checked_url(&s.url, s.allow_http_loopback)?;
        let signature_url = match &s.signature_url {
            Some(u) => checked_url(u, s.allow_http_loopback)?,
            None => {
                let mut u = url.clone();
                u.set_path(&format!("{}.minisig", url.path()));
                u
            }
        };
        let tls = tls_config(s.pinned_ca.as_deref())?;
        let allow_http = s.allow_http_loopback;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if let Err(e) = checked_url(attempt.url().as_str(), allow_http) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(s.connect_timeout)
            .timeout(s.total_timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| FetchError::Tls { reason: chain(&e) })?;
        Ok(Fetcher {
            client,
            url,
            signature_url,
            max_bytes: s.max_bytes,
            total_timeout: s.total_timeout,
            allow_http_loopback: allow_http,
        })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    pub fn signature_url(&self) -> &str {
        self.signature_url.as_str()
    }

    /// GETs the policy (conditionally, when `validators` are given) and, when
    /// it changed, its signature.
    pub async fn fetch(&self, validators: Option<&Validators>) -> Result<Fetched, FetchError> {
        let mut req = self.client.get(self.url.clone());
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        let resp = req.send().await.map_err(|e| self.error(&self.url, &e))?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: self.url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let header_text = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header_text(header::ETAG),
            last_modified: header_text(header::LAST_MODIFIED),
        };
        let policy = self.body(&self.url, resp, self.max_bytes).await?;

        let resp = self
            .client
            .get(self.signature_url.clone())
            .send()
            .await
            .map_err(|e| self.error(&self.signature_url, &e))?;
        let signature = match resp.status() {
            StatusCode::OK => Some(
                self.body(&self.signature_url, resp, MAX_SIGNATURE_BYTES)
                    .await?,
            ),
            StatusCode::NOT_FOUND | StatusCode::GONE => None,
            s => {
                return Err(FetchError::Status {
                    url: self.signature_url.to_string(),
                    status: s.as_u16(),
                });
            }
        };
        Ok(Fetched::New {
            policy,
            signature,
            validators,
        })
    }

    /// GETs any other file under the same rules (HTTPS only, the pinned CA,
    /// time limits) and at most `limit` bytes: the self-update's manifest,
    /// archive and signature.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        let url = checked_url(url, self.allow_http_loopback)?;
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.error(&url, &e))?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        self.body(&url, resp, limit).await
    }

    /// Reads a body, refusing one past `limit` as soon as it shows.
    async fn body(
        &self,
        url: &Url,
        mut resp: reqwest::Response,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.error(url, &e))? {
            if out.len() + chunk.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    fn error(&self, url: &Url, e: &reqwest::Error) -> FetchError {
        let url = url.to_string();
        if e.is_timeout() {
            FetchError::Timeout {
                url,
                seconds: self.total_timeout.as_secs(),
            }
        } else if e.is_connect() {
            FetchError::Connect {
                url,
                reason: chain(e),
            }
        } else {
            FetchError::Transfer {
                url,
                reason: chain(e),
            }
        }
    }
}

/// An error and its causes, `a: b: c`, without reqwest's repeated URL.
fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let top = e.to_string();
    let top = match top.find(" for url (") {
        Some(i) => top[..i].to_string(),
        None => top,
    };
    parts.push(top);
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// Parses a URL and applies the HTTPS-only rule.
pub fn checked_url(url: &str, allow_http_loopback: bool) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|e| FetchError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http_loopback && is_loopback(&parsed) => Ok(parsed),
        "http" => Err(FetchError::Insecure {
            url: url.to_string(),
        }),
        other => Err(FetchError::BadUrl {
            url: url.to_string(),
            reason: format!("the scheme {other:?} is not supported (use https://)"),
        }),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// rustls with the `ring` provider: the platform verifier, or only the pinned CA.
pub(crate) fn tls_config(pinned_ca: Option<&Path>) -> Result<rustls::ClientConfig, FetchError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;

    let tls_error = |e: rustls::Error| FetchError::Tls {
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let Some(path) = pinned_ca else {
        return Ok(builder
            .with_platform_verifier()
            .map_err(tls_error)?
            .with_no_client_auth());
    };
    let pinned = |reason: String| FetchError::PinnedCa {
        path: path.display().to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| pinned(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| pinned(e.to_string()))?;
        roots.add(cert).map_err(|e| pinned(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(pinned("no certificate in the file".into()));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_unless_loopback_is_allowed() {
        assert!(checked_url("https://policies.example.com/p.json", false).is_ok());
        assert!(matches!(
            checked_url("http://policies.example.com/p.json", false),
            Err(FetchError::Insecure { .. })
        ));
        assert!(matches!(
            checked_url("http://policies.example.com/p.json", true),
            Err(FetchError::Insecure { .. })
        ));
        assert!(checked_url("http://127.0.0.1:8080/p.json", true).is_ok());
        assert!(checked_url("http://[::1]:8080/p.json", true).is_ok());
        assert!(checked_url("http://localhost/p.json", true).is_ok());
        assert!(matches!(
            checked_url("http://127.0.0.1/p.json", false),
            Err(FetchError::Insecure { .. })
        ));
        assert!(matches!(
            checked_url("ftp://x/p.json", true),
            Err(FetchError::BadUrl { .. })
        ));
        assert!(matches!(
            checked_url("not a url", true),
            Err(FetchError::BadUrl { .. })
        ));
    }

    #[test]
    fn signature_url_defaults_beside_the_policy() {
        let f = Fetcher::new(&FetchSettings {
            url: "https://cdn.example.com/tend/policy.json?v=1".into(),
            signature_url: None,
            pinned_ca: None,
            allow_http_loopback: false,
            connect_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(1),
            max_bytes: 10,
        })
        .unwrap();
        assert_eq!(
            f.signature_url(),
            "https://cdn.example.com/tend/policy.json.minisig?v=1"
        );
    }

    #[test]
    fn a_pinned_ca_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        let e = tls_config(Some(&pem)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = tls_config(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(matches!(e, FetchError::PinnedCa { .. }), "{e}");
    }
}
