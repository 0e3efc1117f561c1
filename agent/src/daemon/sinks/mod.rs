//! Event sinks: each one a subscriber of the outbox.
//!
//! A sink's task takes the events its subscriber has not had
//! ([`Store::pending`]), delivers them, and only then acknowledges them
//! ([`Store::ack`]): delivery is at least once, and a repeated event
//! carries the same `uuid`. A failed delivery is retried with exponential
//! backoff (1 s doubling to 5 min, ±10% jitter); meanwhile events wait in
//! the outbox, at most `max_backlog` of them per sink (the oldest beyond
//! that are dropped and counted, so an unreachable server cannot fill the
//! disk).
//!
//! - [`file`]: JSON lines, rotated by size.
//! - [`http`]: batched JSON (gzip) POSTs to an HTTPS URL.

pub mod file;
pub mod http;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::store::Store;
use crate::config::{AgentConfig, SinkConfig};

/// The default number of events kept for an unreachable sink.
pub const DEFAULT_MAX_BACKLOG: u64 = 10_000;
/// The first retry delay; doubled after each failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One configured sink.
pub enum SinkKind {
    File(file::FileSink),
    Http(http::HttpSettings),
}

pub struct Sink {
    /// The outbox subscriber's name (`file:PATH`, `http:URL`).
    pub name: String,
    pub kind: SinkKind,
    pub max_backlog: u64,
}

/// The sinks of a config. (A sink that cannot be set up, e.g. for a
/// missing token, keeps retrying in its task and logs why.)
pub fn from_config(cfg: &AgentConfig) -> Vec<Sink> {
    let mut sinks = Vec::new();
    for s in &cfg.sinks {
        match s {
            SinkConfig::File {
                path,
                max_bytes,
                keep,
            } => sinks.push(Sink {
                name: format!("file:{}", path.display()),
                kind: SinkKind::File(file::FileSink::new(path.clone(), *max_bytes, *keep)),
                max_backlog: DEFAULT_MAX_BACKLOG,
            }),
            SinkConfig::Http {
                url,
                batch_size,
                headers,
                token_file,
                token_credential,
                token_secret,
                token_header,
                token_prefix,
                pinned_ca,
                gzip,
                max_backlog,
            } => {
                let token = match (token_secret, token_file, token_credential) {
                    (Some(s), _, _) => Some(http::TokenSource::Secret(s.clone())),
                    (None, Some(f), _) => Some(http::TokenSource::File(f.clone())),
                    (None, None, Some(c)) => Some(http::TokenSource::Credential(c.clone())),
                    (None, None, None) => None,
                };
                sinks.push(Sink {
                    name: format!("http:{url}"),
                    kind: SinkKind::Http(http::HttpSettings {
                        url: url.clone(),
                        batch_size: batch_size.map_or(http::DEFAULT_BATCH, |b| b as usize),
                        headers: headers.clone(),
                        token,
                        state_dir: cfg.state_dir(),
                        token_header: token_header
                            .clone()
                            .unwrap_or_else(|| "Authorization".into()),
                        token_prefix: token_prefix.clone().unwrap_or_else(|| "Bearer ".into()),
                        pinned_ca: pinned_ca.clone(),
                        gzip: gzip.unwrap_or(true),
                        allow_http_loopback: cfg.allow_http_loopback,
                        timeout: cfg.fetch_timeout.0,
                    }),
                    max_backlog: max_backlog.unwrap_or(DEFAULT_MAX_BACKLOG),
                });
            }
        }
    }
    sinks
}

/// The delay before retry number `failures`.
pub fn backoff(failures: u32) -> Duration {
    let d = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    crate::policy::manager::jitter(d, 0.1)
}

/// Debug builds only: `TEND_TEST_ACK_DELAY_MS` holds a delivered batch
/// this long before it is acknowledged, so the crash test's kills land in
/// that window (delivered, not yet acknowledged) often enough to show that
/// a repeated event keeps its uuid.
#[cfg(debug_assertions)]
fn test_ack_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("TEND_TEST_ACK_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("a blocking task failed: {e}"))
}

/// Runs one sink until its task is aborted: deliver what is pending, wait
/// for `wake` when there is nothing, back off after a failure.
pub async fn run(sink: Sink, store: Arc<Mutex<Store>>, wake: Arc<Notify>) {
    let name = sink.name.clone();
    let max_backlog = sink.max_backlog.min(i64::MAX as u64) as i64;
    let mut failures = 0u32;
    let mut file_sink = None;
    let mut http_sink = None;
    let mut batch_size = 100usize;
    match sink.kind {
        SinkKind::File(f) => file_sink = Some(Arc::new(Mutex::new(f))),
        SinkKind::Http(settings) => loop {
            match http::HttpSink::new(&settings) {
                Ok(s) => {
                    batch_size = s.batch_size;
                    http_sink = Some(s);
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!("{e}; retrying");
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        },
    }
    failures = 0;
    let mut warned_drop = 0i64;
    loop {
        let n = name.clone();
        let st = store.clone();
        let dropped = blocking(move || {
            st.lock()
                .unwrap_or_else(|p| p.into_inner())
                .trim_backlog(&n, max_backlog)
        })
        .await;
        if let Ok(Ok(d)) = dropped
            && d > 0
        {
            warned_drop += d;
            tracing::warn!(sink = %name, dropped = d, total = warned_drop, "backlog full: dropped the oldest events");
        }
        let n = name.clone();
        let st = store.clone();
        let limit = batch_size;
        let batch = match blocking(move || {
            st.lock()
                .unwrap_or_else(|p| p.into_inner())
                .pending(&n, limit)
        })
        .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(sink = %name, "reading the outbox: {e}");
                tokio::time::sleep(backoff(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(sink = %name, "{e}");
                tokio::time::sleep(backoff(1)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            wake.notified().await;
            continue;
        };
        let count = batch.len();
        let result: Result<(), String> = if let Some(f) = &file_sink {
            let f = f.clone();
            match blocking(move || f.lock().unwrap_or_else(|p| p.into_inner()).deliver(&batch))
                .await
            {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        } else if let Some(h) = &http_sink {
            match h.deliver(&batch).await {
                Err(http::HttpSinkError::Status { status: 413, .. }) if batch_size > 1 => {
                    batch_size /= 2;
                    tracing::warn!(sink = %name, batch_size, "the server refused the batch as too large; sending smaller batches");
                    continue;
                }
                r => r.map_err(|e| e.to_string()),
            }
        } else {
            Err("sink not set up".into())
        };
        match result {
            Ok(()) => {
                #[cfg(debug_assertions)]
                if let Some(d) = test_ack_delay() {
                    tokio::time::sleep(d).await;
                }
                if failures > 0 {
                    tracing::info!(sink = %name, "delivering again after {failures} failures");
                }
                failures = 0;
                let n = name.clone();
                let st = store.clone();
                let acked =
                    blocking(move || st.lock().unwrap_or_else(|p| p.into_inner()).ack(&n, last))
                        .await;
                match acked {
                    Ok(Ok(())) => tracing::debug!(sink = %name, count, "delivered"),
                    Ok(Err(e)) => tracing::error!(sink = %name, "acknowledging: {e}"),
                    Err(e) => tracing::error!(sink = %name, "{e}"),
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures);
                tracing::warn!(sink = %name, "delivery failed: {e}; retrying in {:.1}s", delay.as_secs_f64());
                // A new event does not cut a backoff short.
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let within = |d: Duration, s: f64| {
            let x = d.as_secs_f64();
            x >= s * 0.89 && x <= s * 1.11
        };
        assert!(within(backoff(1), 1.0));
        assert!(within(backoff(2), 2.0));
        assert!(within(backoff(5), 16.0));
        assert!(within(backoff(30), 300.0));
    }

    #[test]
    fn sinks_come_from_the_config() {
        let cfg: AgentConfig = toml::from_str(
            r#"
[[sinks]]
type = "file"
path = "/var/log/tend/events.jsonl"
max_bytes = 1000

[[sinks]]
type = "http"
url = "https://logs.example.com/in"
headers = { "X-Source" = "tend" }
token_credential = "sink-token"
max_backlog = 50
"#,
        )
        .unwrap();
        let sinks = from_config(&cfg);
        assert_eq!(sinks[0].name, "file:/var/log/tend/events.jsonl");
        assert_eq!(sinks[1].name, "http:https://logs.example.com/in");
        assert_eq!(sinks[1].max_backlog, 50);
        let SinkKind::Http(h) = &sinks[1].kind else {
            panic!()
        };
        assert_eq!(
            h.token,
            Some(http::TokenSource::Credential("sink-token".into()))
        );
        assert!(h.gzip);
        assert_eq!(h.headers["X-Source"], "tend");
    }

    #[test]
    fn a_stored_secret_is_the_token_before_a_file() {
        let cfg: AgentConfig = toml::from_str(
            r#"
state_dir = "/srv/tend"

[[sinks]]
type = "http"
url = "https://logs.example.com/in"
token_secret = "sink-token"
token_file = "/etc/tend/sink.token"
"#,
        )
        .unwrap();
        let sinks = from_config(&cfg);
        let SinkKind::Http(h) = &sinks[0].kind else {
            panic!()
        };
        assert_eq!(
            h.token,
            Some(http::TokenSource::Secret("sink-token".into()))
        );
        assert_eq!(h.state_dir, std::path::Path::new("/srv/tend"));
    }
}
