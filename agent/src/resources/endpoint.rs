//! Task resources served by an HTTPS endpoint the policy names, so an admin
//! can plug a service Tend has no resource for into a workflow:
//!
//! ```json
//! "settings": {"resource_endpoints": {
//!     "zrn:acme:ticket:create": "https://hooks.example.com/ticket",
//!     "zrn:acme:chat:*": {"url": "https://hooks.example.com/chat"}
//! }}
//! ```
//!
//! A name ending in `*` is a prefix (the resource receives its full name).
//! Each call POSTs `{"resource", "execution", "state", "attempt",
//! "parameters"}` as JSON; a 2xx answer's JSON body (or `{}` when empty) is
//! the task's result; any other answer is the error `Agent.EndpointFailed`
//! (a Retry can retry it). HTTPS only, through the OS trust store or the
//! agent's pinned CA, no redirects. The endpoint sees a call at least once
//! (a task in flight at a crash is called again; `execution`, `state` and
//! `attempt` let it de-duplicate).

use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use tend_workflow::{ErrorInfo, Resource, TaskCall};

/// The error of a failed call.
pub const FAILED: &str = "Agent.EndpointFailed";
/// How long one call may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read.
pub const MAX_ANSWER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("$.settings.resource_endpoints[{name:?}]: {reason}")]
    Bad { name: String, reason: String },
}

pub struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
}

/// The endpoints of a policy's settings, by resource name (or `prefix*`).
pub fn from_settings(
    settings: &Map<String, Value>,
    pinned_ca: Option<&Path>,
) -> Result<Vec<(String, Endpoint)>, EndpointError> {
    let Some(map) = settings.get("resource_endpoints") else {
        return Ok(Vec::new());
    };
    let bad = |name: &str, reason: String| EndpointError::Bad {
        name: name.to_string(),
        reason,
    };
    let Some(map) = map.as_object() else {
        return Err(bad("", "must be an object of resource name → URL".into()));
    };
    let mut out = Vec::new();
    for (name, v) in map {
        let url = match v {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(name, "an endpoint object needs a string \"url\"".into()))?,
            _ => return Err(bad(name, "must be a URL or {\"url\": URL}".into())),
        };
        let url =
            crate::policy::fetch::checked_url(url, false).map_err(|e| bad(name, e.to_string()))?;
        let tls =
            crate::policy::fetch::tls_config(pinned_ca).map_err(|e| bad(name, e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad(name, e.to_string()))?;
        out.push((name.clone(), Endpoint { client, url }));
    }
    Ok(out)
}

impl Resource for Endpoint {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let fail = |m: String| ErrorInfo::new(FAILED, format!("{}: {m}", self.url));
            let body = json!({
                "resource": call.resource,
                "execution": call.execution_id,
                "state": call.state,
                "attempt": call.attempt,
                "parameters": call.input,
            });
            let resp = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
            if !status.is_success() {
                return Err(fail(format!("HTTP {status}")));
            }
            if bytes.len() > MAX_ANSWER {
                return Err(fail(format!("the answer is over {MAX_ANSWER} bytes")));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("the answer is not JSON: {e}")))
        })
    }
}
