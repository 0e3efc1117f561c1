//! Showing a notification to the person at this computer, with buttons,
//! and hearing which one they pressed.
//!
//! The daemon runs as root (or LocalSystem) and cannot reach a desktop, so
//! this module runs in the user's session: in `tend session` and in the
//! tray. One [`Desk`] per session shows [`Request`]s through a
//! [`Notifier`] (the OS seam: [`desktop::Desktop`] on notify-rust —
//! freedesktop D-Bus on Linux, toasts on Windows, the notification centre
//! on macOS) and reports each [`Answer`] (a button, a dismissal, a timeout)
//! on a channel.
//!
//! A check that flaps must not bury the user in toasts: every request
//! carries the check it is about (its `key`); the [`gate`] drops a repeat
//! of what is already on screen and caps how often one check may pop up,
//! and a new toast for a check replaces the previous one in place. A
//! suppressed request still takes over the routing of the toast on screen,
//! so the button pressed there answers the newest request.

pub mod desktop;
pub mod gate;
pub mod link;
pub mod session;
pub mod text;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use gate::{Gate, GatePolicy, Suppressed};

/// The most buttons a notification may carry (Windows toasts show five).
pub const MAX_ACTIONS: usize = 4;
/// Limits on the text, in characters: a toast is not a document.
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 2000;
pub const MAX_LABEL: usize = 64;
pub const MAX_ID: usize = 128;

/// How insistent a notification is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    Critical,
}

/// A button: `id` comes back when it is pressed, `label` is shown.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub id: String,
    pub label: String,
}

/// One notification to show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Unique per request: the answer names it.
    pub id: String,
    /// What it is about (a check id): one toast per key on screen.
    pub key: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub urgency: Urgency,
    /// How long the toast stays before it expires (the server's default
    /// when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// Why a request is not a notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notification field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the desktop refused the notification: {0}")]
    Desktop(String),
}

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl Request {
    /// Checks the sizes and the ids (ASCII letters, digits, `-_.:`), so a
    /// request fits in one local-API message and an id is safe in a log.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let bad = |field, reason: String| Err(NotifyError::Invalid { field, reason });
        if !id_ok(&self.id) {
            return bad("id", format!("{:?} is not a short ASCII id", self.id));
        }
        if !id_ok(&self.key) {
            return bad("key", format!("{:?} is not a short ASCII id", self.key));
        }
        if self.title.trim().is_empty() || self.title.chars().count() > MAX_TITLE {
            return bad("title", format!("must be 1 to {MAX_TITLE} characters"));
        }
        if self.body.chars().count() > MAX_BODY {
            return bad("body", format!("is over {MAX_BODY} characters"));
        }
        if self.actions.len() > MAX_ACTIONS {
            return bad("actions", format!("at most {MAX_ACTIONS} buttons"));
        }
        for (i, a) in self.actions.iter().enumerate() {
            if !id_ok(&a.id) {
                return bad(
                    "actions",
                    format!("[{i}].id {:?} is not a short ASCII id", a.id),
                );
            }
            if a.label.trim().is_empty() || a.label.chars().count() > MAX_LABEL {
                return bad(
                    "actions",
                    format!("[{i}].label must be 1 to {MAX_LABEL} characters"),
                );
            }
        }
        Ok(())
    }

    /// What makes two requests the same toast (for the duplicate rule).
    fn fingerprint(&self) -> String {
        let mut s = format!("{}\u{1f}{}\u{1f}{:?}", self.title, self.body, self.urgency);
        for a in &self.actions {
            s.push('\u{1f}');
            s.push_str(&a.id);
            s.push('\u{1e}');
            s.push_str(&a.label);
        }
        s
    }
}

/// How a notification ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "action", rename_all = "lowercase")]
pub enum Outcome {
    /// A button (its id), or `default` for a click on the toast itself.
    Action(String),
    /// The user closed it.
    Dismissed,
    /// It timed out, or the desktop closed it.
    Expired,
}

/// What became of the toast the user answered: for request `request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub request: String,
    pub key: String,
    pub outcome: Outcome,
}

/// What [`Desk::show`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// On screen, with the desktop's id for it.
    Shown { desktop_id: u32 },
    /// Not shown (see [`Suppressed`]); the answer to the toast on screen
    /// for this key, if any, goes to this request.
    Suppressed(Suppressed),
}

/// A toast on screen: the OS seam's answer to [`Notifier::show`].
pub struct Shown {
    /// The desktop's id (what a replacement names).
    pub desktop_id: u32,
    /// Blocks until the toast ends, then says how.
    pub wait: Box<dyn FnOnce() -> Outcome + Send>,
}

/// The OS seam: puts one toast on screen, replacing `replaces` (the
/// desktop id of an earlier toast) where the desktop can.
pub trait Notifier: Send + Sync {
    fn show(&self, request: &Request, replaces: Option<u32>) -> Result<Shown, NotifyError>;
}

/// What is on screen for one key.
struct OnScreen {
    desktop_id: u32,
    /// Bumped on each show: a waiter of a replaced toast stays silent.
    generation: u64,
    /// Whose answer it is now.
    request: String,
}

/// Shows requests, one toast per key, and reports answers.
pub struct Desk {
    notifier: Arc<dyn Notifier>,
    gate: Mutex<Gate>,
    screen: Arc<Mutex<HashMap<String, OnScreen>>>,
    answers: mpsc::UnboundedSender<Answer>,
    generation: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Desk {
    /// A desk and the channel its answers arrive on.
    pub fn new(
        notifier: Arc<dyn Notifier>,
        policy: GatePolicy,
    ) -> (Desk, mpsc::UnboundedReceiver<Answer>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Desk {
                notifier,
                gate: Mutex::new(Gate::new(policy)),
                screen: Arc::default(),
                answers: tx,
                generation: Default::default(),
            },
            rx,
        )
    }

    /// Shows `request` (or suppresses it, see the module docs). Blocks
    /// while the desktop takes it: call from a blocking context.
    pub fn show(&self, request: &Request) -> Result<Delivery, NotifyError> {
        request.validate()?;
        let fingerprint = request.fingerprint();
        let replaces = {
            let mut screen = lock(&self.screen);
            let on_screen = screen.get(&request.key).is_some();
            if let Err(why) =
                lock(&self.gate).admit(&request.key, &fingerprint, on_screen, Instant::now())
            {
                if let Some(s) = screen.get_mut(&request.key) {
                    s.request = request.id.clone();
                }
                tracing::info!(
                    "notification {} for {}: not shown ({why})",
                    request.id,
                    request.key
                );
                return Ok(Delivery::Suppressed(why));
            }
            screen.get(&request.key).map(|s| s.desktop_id)
        };
        let shown = self.notifier.show(request, replaces)?;
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        lock(&self.screen).insert(
            request.key.clone(),
            OnScreen {
                desktop_id: shown.desktop_id,
                generation,
                request: request.id.clone(),
            },
        );
        let screen = self.screen.clone();
        let answers = self.answers.clone();
        let key = request.key.clone();
        let wait = shown.wait;
        let spawned = std::thread::Builder::new()
            .name("tend-notify-wait".into())
            .spawn(move || {
                let outcome = wait();
                let mut screen = lock(&screen);
                let Some(s) = screen.get(&key) else { return };
                if s.generation != generation {
                    // Replaced: the newer toast's waiter answers.
                    return;
                }
                let request = s.request.clone();
                screen.remove(&key);
                drop(screen);
                let _ = answers.send(Answer {
                    request,
                    key,
                    outcome,
                });
            });
        if let Err(e) = spawned {
            return Err(NotifyError::Desktop(format!(
                "cannot start a thread to wait for the answer: {e}"
            )));
        }
        tracing::info!(
            "notification {} for {} shown (desktop id {})",
            request.id,
            request.key,
            shown.desktop_id
        );
        Ok(Delivery::Shown {
            desktop_id: shown.desktop_id,
        })
    }
}

/// How long [`Desk`] callers should wait for the desktop to take a toast.
pub const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as smpsc;

    /// A notifier whose toasts end when the test says.
    struct Fake {
        shown: Mutex<Vec<(Request, Option<u32>)>>,
        enders: Mutex<Vec<smpsc::Sender<Outcome>>>,
    }

    impl Notifier for Fake {
        fn show(&self, r: &Request, replaces: Option<u32>) -> Result<Shown, NotifyError> {
            let mut shown = lock(&self.shown);
            shown.push((r.clone(), replaces));
            let (tx, rx) = smpsc::channel();
            lock(&self.enders).push(tx);
            Ok(Shown {
                desktop_id: replaces.unwrap_or(shown.len() as u32),
                wait: Box::new(move || rx.recv().unwrap_or(Outcome::Expired)),
            })
        }
    }

    fn req(id: &str, key: &str, body: &str) -> Request {
        Request {
            id: id.into(),
            key: key.into(),
            title: "Firewall is off".into(),
            body: body.into(),
            actions: vec![
                Action {
                    id: "yes".into(),
                    label: "I've fixed it".into(),
                },
                Action {
                    id: "no".into(),
                    label: "Remind me later".into(),
                },
            ],
            urgency: Urgency::Normal,
            timeout_secs: None,
        }
    }

    #[test]
    fn replaces_per_key_dedups_and_routes_the_answer_to_the_newest_request() {
        let fake = Arc::new(Fake {
            shown: Mutex::default(),
            enders: Mutex::default(),
        });
        let (desk, mut answers) = Desk::new(fake.clone(), GatePolicy::default());
        assert_eq!(
            desk.show(&req("r1", "fw", "a")).unwrap(),
            Delivery::Shown { desktop_id: 1 }
        );
        // The same toast again: not shown, but r2 now owns the answer.
        assert_eq!(
            desk.show(&req("r2", "fw", "a")).unwrap(),
            Delivery::Suppressed(Suppressed::Duplicate)
        );
        // Different text: shown in place of the first.
        assert_eq!(
            desk.show(&req("r3", "fw", "b")).unwrap(),
            Delivery::Shown { desktop_id: 1 }
        );
        assert_eq!(lock(&fake.shown)[1].1, Some(1));
        // The replaced toast's waiter ends silently; the current one answers.
        lock(&fake.enders)[0].send(Outcome::Dismissed).unwrap();
        lock(&fake.enders)[1]
            .send(Outcome::Action("yes".into()))
            .unwrap();
        let a = answers.blocking_recv().unwrap();
        assert_eq!(
            a,
            Answer {
                request: "r3".into(),
                key: "fw".into(),
                outcome: Outcome::Action("yes".into())
            }
        );
        assert!(answers.try_recv().is_err());

        let mut bad = req("r 4", "fw", "x");
        assert!(matches!(
            desk.show(&bad),
            Err(NotifyError::Invalid { field: "id", .. })
        ));
        bad.id = "r4".into();
        bad.actions[1].label = String::new();
        let e = desk.show(&bad).unwrap_err().to_string();
        assert!(e.contains("actions") && e.contains("[1].label"), "{e}");
    }
}
