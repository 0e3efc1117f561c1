//! The Slack Web API client: `POST {api_base}{method}` with
//! `Authorization: Bearer <bot token>`, a JSON body (or a form body for the
//! methods that read form fields only, like `users.lookupByEmail`), and
//! Slack's answer `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.
//!
//! - `429 Too Many Requests`: waits `Retry-After` seconds (capped) and
//!   tries again, up to [`SlackSettings::max_attempts`]; then
//!   `Slack.ratelimited` (Slack's own name for it).
//! - A lost connection, a timeout or a 5xx: tried again with a growing
//!   pause; then `Slack.unreachable` (or `Slack.http_<status>`).
//! - `ok: false`: `Slack.<error>` at once (a retry would not change it).
//!
//! The token comes from a [`TokenSource`] (the daemon's secret store); it
//! is never in the policy and never logged. The base URL is configurable
//! (GovSlack, tests); plain HTTP is accepted only on loopback.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::policy::fetch::{checked_url, tls_config};

/// The name of the bot token in the secret store.
pub const TOKEN_SECRET: &str = "slack-bot-token";

/// Where the bot token comes from.
pub trait TokenSource: Send + Sync {
    /// The token, or why there is none.
    fn bot_token(&self) -> Result<String, String>;
}

/// The token from the agent's secret store (`tend secret set slack-bot-token`),
/// read at each call so a new token needs no restart.
pub struct SecretToken(pub Arc<dyn crate::secrets::SecretStore>);

impl TokenSource for SecretToken {
    fn bot_token(&self) -> Result<String, String> {
        self.0.get(TOKEN_SECRET).map_err(|e| e.to_string())
    }
}

/// How the client talks to Slack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackSettings {
    /// `https://slack.com/api/` by default; GovSlack's elsewhere.
    pub api_base: String,
    /// Tries per call, the first included.
    pub max_attempts: u32,
    /// The longest `Retry-After` honoured; longer is cut to this.
    pub max_retry_after: Duration,
    /// The first pause after a transient failure (doubled each time, to 30 s).
    pub backoff: Duration,
    /// One request's time limit.
    pub timeout: Duration,
}

impl SlackSettings {
    /// From the agent config (`[slack] api_url`).
    pub fn from_config(cfg: &crate::config::AgentConfig) -> SlackSettings {
        let mut s = SlackSettings::default();
        if let Some(url) = &cfg.slack.api_url {
            s.api_base = url.clone();
        }
        s
    }
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            api_base: "https://slack.com/api/".into(),
            max_attempts: 5,
            max_retry_after: Duration::from_secs(120),
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    #[error("Slack {method}: {error}")]
    Slack { method: String, error: String },
    #[error("Slack {method}: still rate-limited (429) after {attempts} tries")]
    RateLimited { method: String, attempts: u32 },
    #[error("Slack {method}: no answer after {attempts} tries: {reason}")]
    Unreachable {
        method: String,
        attempts: u32,
        reason: String,
    },
    #[error("Slack {method}: HTTP {status}")]
    Http { method: String, status: u16 },
    #[error("Slack {method}: the answer is not Slack's: {reason}")]
    Invalid { method: String, reason: String },
    #[error(
        "the Slack bot token is not available: {0} (store it with `tend secret set {TOKEN_SECRET}`)"
    )]
    NoToken(String),
    #[error("Slack base URL: {0}")]
    Config(String),
    #[error("{reason}")]
    Input { reason: String },
}

impl SlackError {
    pub(crate) fn invalid(method: &str, reason: &str) -> SlackError {
        SlackError::Invalid {
            method: method.into(),
            reason: reason.into(),
        }
    }

    /// The workflow error name: `Slack.<error>`.
    pub fn error_name(&self) -> String {
        let tail = match self {
            SlackError::Slack { error, .. } => error.as_str(),
            SlackError::RateLimited { .. } => "ratelimited",
            SlackError::Unreachable { .. } => "unreachable",
            SlackError::Http { status, .. } => return format!("Slack.http_{status}"),
            SlackError::Invalid { .. } => "invalid_response",
            SlackError::NoToken(_) => "not_authed",
            SlackError::Config(_) => "bad_config",
            SlackError::Input { .. } => "invalid_arguments",
        };
        format!("Slack.{tail}")
    }
}

enum Body<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// A Slack Web API client.
#[derive(Clone)]
pub struct SlackApi {
    client: reqwest::Client,
    base: Url,
    token: Arc<dyn TokenSource>,
    settings: SlackSettings,
}

impl SlackApi {
    pub fn new(
        settings: SlackSettings,
        token: Arc<dyn TokenSource>,
    ) -> Result<SlackApi, SlackError> {
        let mut base_text = settings.api_base.clone();
        if !base_text.ends_with('/') {
            base_text.push('/');
        }
        let base = checked_url(&base_text, true).map_err(|e| SlackError::Config(e.to_string()))?;
        let tls = tls_config(None).map_err(|e| SlackError::Config(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SlackError::Config(e.to_string()))?;
        Ok(SlackApi {
            client,
            base,
            token,
            settings,
        })
    }

    /// Calls `method` with a JSON body.
    pub async fn call_json(&self, method: &str, body: &Value) -> Result<Value, SlackError> {
        self.call(method, Body::Json(body)).await
    }

    /// Calls `method` with a form body.
    pub async fn call_form(
        &self,
        method: &str,
        fields: &[(&str, &str)],
    ) -> Result<Value, SlackError> {
        self.call(method, Body::Form(fields)).await
    }

    async fn call(&self, method: &str, body: Body<'_>) -> Result<Value, SlackError> {
        let url = self
            .base
            .join(method)
            .map_err(|e| SlackError::Config(format!("{}{method}: {e}", self.base)))?;
        let token = self.token.bot_token().map_err(SlackError::NoToken)?;
        let (content_type, bytes) = match body {
            Body::Json(v) => ("application/json; charset=utf-8", v.to_string()),
            Body::Form(fields) => {
                let mut u = Url::parse("x:/").map_err(|e| SlackError::Config(e.to_string()))?;
                u.query_pairs_mut().extend_pairs(fields.iter().copied());
                (
                    "application/x-www-form-urlencoded",
                    u.query().unwrap_or_default().to_string(),
                )
            }
        };
        let max = self.settings.max_attempts.max(1);
        let mut pause = self.settings.backoff;
        let mut last_transient = String::new();
        let mut rate_limited = false;
        for attempt in 1..=max {
            let sent = self
                .client
                .post(url.clone())
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.clone())
                .send()
                .await;
            let wait = match sent {
                Err(e) => {
                    last_transient = chain(&e);
                    rate_limited = false;
                    tracing::warn!("Slack {method}: try {attempt}/{max}: {last_transient}");
                    pause
                }
                Ok(r) if r.status().as_u16() == 429 => {
                    let after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map_or(Duration::from_secs(1), Duration::from_secs)
                        .min(self.settings.max_retry_after);
                    rate_limited = true;
                    tracing::warn!(
                        "Slack {method}: rate-limited (429), try {attempt}/{max}; retrying after {after:?}"
                    );
                    after
                }
                Ok(r) if r.status().is_server_error() => {
                    last_transient = format!("HTTP {}", r.status().as_u16());
                    rate_limited = false;
                    tracing::warn!("Slack {method}: try {attempt}/{max}: {last_transient}");
                    if attempt == max {
                        return Err(SlackError::Http {
                            method: method.into(),
                            status: r.status().as_u16(),
                        });
                    }
                    pause
                }
                Ok(r) if !r.status().is_success() => {
                    return Err(SlackError::Http {
                        method: method.into(),
                        status: r.status().as_u16(),
                    });
                }
                Ok(r) => match r.bytes().await {
                    Ok(b) => return answer(method, &b),
                    Err(e) => {
                        last_transient = format!("reading the answer: {}", chain(&e));
                        rate_limited = false;
                        tracing::warn!("Slack {method}: try {attempt}/{max}: {last_transient}");
                        pause
                    }
                },
            };
            if attempt < max {
                tokio::time::sleep(wait).await;
                if wait == pause {
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
        if rate_limited {
            Err(SlackError::RateLimited {
                method: method.into(),
                attempts: max,
            })
        } else {
            Err(SlackError::Unreachable {
                method: method.into(),
                attempts: max,
                reason: last_transient,
            })
        }
    }
}

/// Reads Slack's `{"ok": ...}`.
fn answer(method: &str, body: &[u8]) -> Result<Value, SlackError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| SlackError::invalid(method, &format!("not JSON: {e}")))?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(v),
        Some(false) => {
            let error = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error");
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            Err(SlackError::Slack {
                method: method.into(),
                error,
            })
        }
        None => Err(SlackError::invalid(method, "no `ok` field")),
    }
}

/// An error with its causes, for a log line.
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
