//! `zrn:agent:notify`: shows a notification in the console user's session
//! and turns the user's answer into the workflow's interaction event.
//!
//! The daemon runs without a desktop, so the request travels over the local
//! API to a `tend session` (or the tray), which shows it with the
//! [`crate::notify`] module. The task ends when the session says the toast
//! is on screen (or was suppressed as a repeat of the one there); the
//! state's `events` then wait for the answer: a button's id is the event
//! name, a dismissal is `dismissed`, a timeout `timeout`. With no session
//! connected within [`NotifySettings::session_wait`] the task fails with
//! `Agent.NoUserSession`, for a `catch` to fall back (to Slack).
//!
//! Parameters: `check` (what the toast is about: one per check on screen),
//! `title`, `body`, `fix` (the remediation as plain text, shortened), `actions`
//! (`[{"id": "yes", "label": "I've fixed it"}]`), `urgency` (`low`,
//! `normal`, `critical`), `timeout` (seconds on screen).
//! Result: `{"notification": ID, "shown": true|false, "reason": ...,
//! "session": ...}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tend_workflow::{ErrorInfo, Resource, TaskCall};

use super::Interactions;
use crate::ipc::proto::NotifiedOutcome;
use crate::ipc::sessions::{SessionAnswer, Sessions, ShowError};
use crate::notify::{Action, MAX_BODY, Request, Urgency};

/// The resource name.
pub const RESOURCE: &str = "zrn:agent:notify";
/// The error when no user session is there to show it.
pub const NO_USER_SESSION: &str = "Agent.NoUserSession";
/// The error when the session could not show it.
pub const NOTIFICATION_FAILED: &str = "Agent.NotificationFailed";
/// The error for parameters that do not make a notification.
pub const BAD_NOTIFICATION: &str = "Agent.InvalidNotification";
/// The most characters of the fix a toast shows.
pub const FIX_CHARS: usize = 300;
/// How many notifications' routes are kept (answers for older ones are dropped, logged).
const ROUTES: usize = 1024;

/// How long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// For a user session to connect (`notify_session_wait` in agent.toml).
    pub session_wait: Duration,
    /// For the session to say it showed it.
    pub ack_wait: Duration,
}

impl NotifySettings {
    /// From the agent config (`notify_session_wait`).
    pub fn from_config(cfg: &crate::config::AgentConfig) -> NotifySettings {
        NotifySettings {
            session_wait: cfg.notify_session_wait.0,
            ..NotifySettings::default()
        }
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            session_wait: Duration::from_secs(60),
            ack_wait: Duration::from_secs(15),
        }
    }
}

struct Route {
    execution: String,
    check: String,
    seq: u64,
}

/// The resource.
pub struct NotifyResource {
    sessions: Arc<Sessions>,
    interactions: Arc<dyn Interactions>,
    settings: NotifySettings,
    routes: Arc<Mutex<(u64, HashMap<String, Route>)>>,
    pumping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NotifyResource {
    pub fn new(
        sessions: Arc<Sessions>,
        interactions: Arc<dyn Interactions>,
        settings: NotifySettings,
    ) -> NotifyResource {
        NotifyResource {
            sessions,
            interactions,
            settings,
            routes: Arc::default(),
            pumping: AtomicBool::new(false),
        }
    }

    /// Starts (once, on the caller's runtime) the task that turns answers
    /// into events.
    fn pump(&self) {
        if self.pumping.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut answers = self.sessions.answers();
        let routes = self.routes.clone();
        let interactions = self.interactions.clone();
        tokio::spawn(async move {
            loop {
                let a = match answers.recv().await {
                    Ok(a) => a,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} notification answers were lost (too many at once)");
                        continue;
                    }
                    Err(_) => break,
                };
                deliver(&routes, interactions.as_ref(), a);
            }
        });
    }
}

/// The event an answer is.
fn event_of(a: &SessionAnswer) -> Option<String> {
    match a.outcome {
        NotifiedOutcome::Action => a.action.clone(),
        NotifiedOutcome::Dismissed => Some("dismissed".into()),
        NotifiedOutcome::Expired => Some("timeout".into()),
        _ => None,
    }
}

fn deliver(
    routes: &Mutex<(u64, HashMap<String, Route>)>,
    interactions: &dyn Interactions,
    a: SessionAnswer,
) {
    let Some(route) = lock(routes).1.remove(&a.notification) else {
        tracing::warn!(
            "an answer to notification {} that no execution waits for (answered twice, or sent before a restart)",
            a.notification
        );
        return;
    };
    let Some(event) = event_of(&a) else { return };
    let data =
        json!({"source": "notification", "notification": a.notification, "check": route.check});
    match interactions.deliver(&route.execution, &event, data) {
        Ok(_) => tracing::info!(
            "notification {}: {event:?} delivered to execution {}",
            a.notification,
            route.execution
        ),
        Err(e) => tracing::warn!(
            "notification {}: {event:?} not delivered to execution {}: {e}",
            a.notification,
            route.execution
        ),
    }
}

fn bad(cause: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(BAD_NOTIFICATION, cause)
}

fn text(input: &Value, field: &str) -> Result<Option<String>, ErrorInfo> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!(
            "parameter `{field}` must be a string, not {other}"
        ))),
    }
}

/// The notification request the parameters describe.
pub fn request_of(input: &Value, id: &str) -> Result<Request, ErrorInfo> {
    if !input.is_object() {
        return Err(bad("the parameters must be an object"));
    }
    let check = text(input, "check")?.ok_or_else(|| bad("parameter `check` is missing"))?;
    let title = text(input, "title")?.ok_or_else(|| bad("parameter `title` is missing"))?;
    let mut body = text(input, "body")?.unwrap_or_default();
    if let Some(fix) = text(input, "fix")? {
        // The policy writes fixes in markdown; a notification shows text.
        let fix = crate::notify::text::plain_text(&fix);
        let fix = fix.trim();
        let mut short: String = fix.chars().take(FIX_CHARS).collect();
        if short.len() < fix.len() {
            short.push('…');
        }
        if !short.is_empty() {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&short);
        }
    }
    if body.chars().count() > MAX_BODY {
        body = body.chars().take(MAX_BODY - 1).collect();
        body.push('…');
    }
    let actions: Vec<Action> = match input.get("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            bad(format!(
                "parameter `actions` must be a list of {{\"id\", \"label\"}}: {e}"
            ))
        })?,
    };
    let urgency: Urgency = match input.get("urgency") {
        None | Some(Value::Null) => Urgency::Normal,
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            bad(format!(
                "parameter `urgency` must be \"low\", \"normal\" or \"critical\", not {v}"
            ))
        })?,
    };
    let timeout_secs = match input.get("timeout") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(format!("parameter `timeout` must be seconds, not {v}")))?,
        ),
    };
    let r = Request {
        id: id.to_string(),
        key: check,
        title,
        body,
        actions,
        urgency,
        timeout_secs,
    };
    r.validate().map_err(|e| bad(e.to_string()))?;
    Ok(r)
}

impl Resource for NotifyResource {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            self.pump();
            let id = uuid::Uuid::new_v4().simple().to_string();
            let request = request_of(&call.input, &id)?;
            let data = serde_json::to_value(&request).unwrap_or_default();
            {
                let mut g = lock(&self.routes);
                g.0 += 1;
                let seq = g.0;
                if g.1.len() >= ROUTES
                    && let Some(oldest) =
                        g.1.iter()
                            .min_by_key(|(_, r)| r.seq)
                            .map(|(k, _)| k.clone())
                {
                    g.1.remove(&oldest);
                }
                g.1.insert(
                    id.clone(),
                    Route {
                        execution: call.execution_id.clone(),
                        check: request.key.clone(),
                        seq,
                    },
                );
            }
            let shown = self
                .sessions
                .show(
                    &id,
                    data,
                    self.settings.session_wait,
                    self.settings.ack_wait,
                )
                .await;
            let ack = match shown {
                Ok(a) => a,
                Err(e) => {
                    lock(&self.routes).1.remove(&id);
                    let name = match e {
                        ShowError::NoSession(_) => NO_USER_SESSION,
                        _ => NOTIFICATION_FAILED,
                    };
                    tracing::warn!(
                        "execution {}, state {}: notification for {} not shown: {e}",
                        call.execution_id,
                        call.state,
                        request.key
                    );
                    return Err(ErrorInfo::new(name, e.to_string()));
                }
            };
            match ack.outcome {
                NotifiedOutcome::Shown => Ok(json!({
                    "notification": id, "shown": true, "session": ack.session,
                })),
                NotifiedOutcome::Suppressed => Ok(json!({
                    "notification": id, "shown": false,
                    "reason": ack.reason.unwrap_or_default(), "session": ack.session,
                })),
                _ => {
                    lock(&self.routes).1.remove(&id);
                    let why = ack.reason.unwrap_or_else(|| "no reason given".into());
                    tracing::warn!(
                        "execution {}: the session ({}) could not show the notification: {why}",
                        call.execution_id,
                        ack.session
                    );
                    Err(ErrorInfo::new(
                        NOTIFICATION_FAILED,
                        format!("the session ({}) could not show it: {why}", ack.session),
                    ))
                }
            }
        })
    }
}
