//! The user sessions connected to the daemon (`tend session`, the tray),
//! and the notifications the daemon asks them to show.
//!
//! A connection becomes a session when it sends `session`; from then on
//! the server may push it `notify` messages on the same connection. The
//! daemon's notification resource calls [`Sessions::show`]: it waits (a
//! bounded time) for a session of the console user, pushes the request,
//! and waits for the session's first `notified` (shown, suppressed or
//! failed). What the user later does with the toast (`action`,
//! `dismissed`, `expired`) is broadcast to [`Sessions::answers`]
//! subscribers. A session may only answer for notifications that were
//! pushed to its own user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use super::peer::Peer;
use super::proto::{NotifiedOutcome, PUSH_NOTIFY, Push, VERSION};
use super::server::ApiError;

/// How many notifications the hub remembers, to accept answers for them.
const REMEMBERED: usize = 1024;

/// A user's answer to a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionAnswer {
    pub notification: String,
    pub outcome: NotifiedOutcome,
    pub action: Option<String>,
}

/// The session's first word on a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub outcome: NotifiedOutcome,
    pub reason: Option<String>,
    /// Who showed it: `uid 1000 (pid 42)`.
    pub session: String,
}

/// Why a notification was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShowError {
    #[error("no user session connected within {0:?}")]
    NoSession(Duration),
    #[error("the session ({session}) did not answer within {within:?}")]
    NoAck { session: String, within: Duration },
    #[error("the session ({session}) went away before it answered")]
    Gone { session: String },
}

struct Entry {
    conn: u64,
    peer: Peer,
    user: Option<String>,
    tx: mpsc::Sender<String>,
}

struct Sent {
    uid: Option<u32>,
    at: Instant,
    ack: Option<oneshot::Sender<Ack>>,
}

#[derive(Default)]
struct Inner {
    next_conn: u64,
    sessions: Vec<Entry>,
    sent: HashMap<String, Sent>,
}

/// The registry of sessions. Shared by the server (which registers
/// connections) and the daemon (which shows notifications).
pub struct Sessions {
    inner: Mutex<Inner>,
    arrived: Notify,
    answers: broadcast::Sender<SessionAnswer>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: Mutex::default(),
            arrived: Notify::new(),
            answers: broadcast::channel(256).0,
        }
    }
}

/// A connection's place in the registry; leaving it (dropping) ends the session.
pub struct Registration {
    hub: Arc<Sessions>,
    conn: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut g = self.hub.lock();
        g.sessions.retain(|e| e.conn != self.conn);
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the connection writing to `tx` a session of `peer`.
    pub fn register(
        self: &Arc<Self>,
        peer: &Peer,
        user: Option<String>,
        tx: mpsc::Sender<String>,
    ) -> Registration {
        let mut g = self.lock();
        g.next_conn += 1;
        let conn = g.next_conn;
        g.sessions.push(Entry {
            conn,
            peer: peer.clone(),
            user,
            tx,
        });
        drop(g);
        self.arrived.notify_waiters();
        Registration {
            hub: self.clone(),
            conn,
        }
    }

    /// How many sessions are connected.
    pub fn count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The answers users give, as they come.
    pub fn answers(&self) -> broadcast::Receiver<SessionAnswer> {
        self.answers.subscribe()
    }

    /// The session to show to: the newest of the console user's, else the
    /// newest of an administrator's (a daemon run as a normal user for a
    /// trial has no other).
    fn pick(&self) -> Option<(mpsc::Sender<String>, Peer, Option<String>)> {
        let g = self.lock();
        let newest = |f: &dyn Fn(&Peer) -> bool| {
            g.sessions
                .iter()
                .rev()
                .find(|e| f(&e.peer) && !e.tx.is_closed())
                .map(|e| (e.tx.clone(), e.peer.clone(), e.user.clone()))
        };
        newest(&|p| p.console).or_else(|| newest(&|p| p.admin))
    }

    /// Pushes `request` (a notification request, JSON) with id
    /// `notification` to the console user's session, waiting up to
    /// `wait_session` for one to connect and `wait_ack` for its answer.
    pub async fn show(
        &self,
        notification: &str,
        request: serde_json::Value,
        wait_session: Duration,
        wait_ack: Duration,
    ) -> Result<Ack, ShowError> {
        let deadline = tokio::time::Instant::now() + wait_session;
        let (tx, peer, user) = loop {
            let arrived = self.arrived.notified();
            if let Some(found) = self.pick() {
                break found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(ShowError::NoSession(wait_session));
            }
        };
        let session = match &user {
            Some(u) => format!("{} ({u})", peer.describe()),
            None => peer.describe(),
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        {
            let mut g = self.lock();
            if g.sent.len() >= REMEMBERED
                && let Some(oldest) = g
                    .sent
                    .iter()
                    .min_by_key(|(_, s)| s.at)
                    .map(|(k, _)| k.clone())
            {
                g.sent.remove(&oldest);
            }
            g.sent.insert(
                notification.to_string(),
                Sent {
                    uid: peer.uid,
                    at: Instant::now(),
                    ack: Some(ack_tx),
                },
            );
        }
        let push = Push {
            v: VERSION,
            push: PUSH_NOTIFY.into(),
            data: request,
        };
        let mut line = serde_json::to_string(&push).unwrap_or_default();
        line.push('\n');
        if tx.send(line).await.is_err() {
            return Err(ShowError::Gone { session });
        }
        match tokio::time::timeout(wait_ack, ack_rx).await {
            Ok(Ok(mut ack)) => {
                ack.session = session;
                Ok(ack)
            }
            Ok(Err(_)) => Err(ShowError::Gone { session }),
            Err(_) => Err(ShowError::NoAck {
                session,
                within: wait_ack,
            }),
        }
    }

    /// A session's `notified`: the first answer completes [`Sessions::show`],
    /// the user's answers go to [`Sessions::answers`].
    pub fn notified(
        &self,
        peer: &Peer,
        notification: &str,
        outcome: NotifiedOutcome,
        action: Option<String>,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let mut g = self.lock();
        let Some(sent) = g.sent.get_mut(notification) else {
            return Err(ApiError::new(
                "not_found",
                format!("no notification {notification:?} is waiting for an answer"),
            ));
        };
        if !peer.admin && sent.uid != peer.uid {
            return Err(ApiError::new(
                "forbidden",
                format!("notification {notification:?} was sent to another user's session"),
            ));
        }
        match outcome {
            NotifiedOutcome::Shown | NotifiedOutcome::Suppressed | NotifiedOutcome::Failed => {
                if let Some(ack) = sent.ack.take() {
                    let _ = ack.send(Ack {
                        outcome,
                        reason,
                        session: String::new(),
                    });
                }
                Ok(())
            }
            NotifiedOutcome::Action | NotifiedOutcome::Dismissed | NotifiedOutcome::Expired => {
                if outcome == NotifiedOutcome::Action && action.is_none() {
                    return Err(ApiError::new(
                        "bad_fields",
                        "an `action` outcome names the button in `action`",
                    ));
                }
                g.sent.remove(notification);
                drop(g);
                let _ = self.answers.send(SessionAnswer {
                    notification: notification.to_string(),
                    outcome,
                    action,
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, console: bool) -> Peer {
        Peer {
            uid: Some(uid),
            pid: None,
            session: None,
            admin: false,
            console,
        }
    }

    #[test]
    fn shows_to_the_console_session_and_routes_its_answers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let hub = Arc::new(Sessions::default());
            let short = Duration::from_millis(50);
            assert_eq!(
                hub.show("n0", serde_json::json!({}), short, short).await,
                Err(ShowError::NoSession(short))
            );
            let (other_tx, mut other_rx) = mpsc::channel(4);
            let _other = hub.register(&peer(1001, false), None, other_tx);
            let (tx, mut rx) = mpsc::channel(4);
            let reg = hub.register(&peer(1000, true), Some("ann".into()), tx);
            let mut answers = hub.answers();
            let h2 = hub.clone();
            let shower = tokio::spawn(async move {
                h2.show(
                    "n1",
                    serde_json::json!({"id": "n1"}),
                    short,
                    Duration::from_secs(5),
                )
                .await
            });
            let line = rx.recv().await.unwrap();
            let push: Push = serde_json::from_str(&line).unwrap();
            assert_eq!(
                (push.push.as_str(), &push.data["id"]),
                ("notify", &serde_json::json!("n1"))
            );
            assert!(
                other_rx.try_recv().is_err(),
                "not the console user's session"
            );
            // Another user cannot answer for it.
            let e = hub
                .notified(&peer(1001, false), "n1", NotifiedOutcome::Shown, None, None)
                .unwrap_err();
            assert_eq!(e.code, "forbidden");
            hub.notified(&peer(1000, true), "n1", NotifiedOutcome::Shown, None, None)
                .unwrap();
            let ack = shower.await.unwrap().unwrap();
            assert_eq!(ack.outcome, NotifiedOutcome::Shown);
            assert!(ack.session.contains("uid 1000") && ack.session.contains("ann"));
            hub.notified(
                &peer(1000, true),
                "n1",
                NotifiedOutcome::Action,
                Some("yes".into()),
                None,
            )
            .unwrap();
            let a = answers.recv().await.unwrap();
            assert_eq!(
                (a.notification.as_str(), a.action.as_deref()),
                ("n1", Some("yes"))
            );
            // Answered once: a replay is refused.
            let e = hub
                .notified(
                    &peer(1000, true),
                    "n1",
                    NotifiedOutcome::Dismissed,
                    None,
                    None,
                )
                .unwrap_err();
            assert_eq!(e.code, "not_found");
            // The session leaves: nobody to show to.
            drop(reg);
            drop(_other);
            assert_eq!(hub.count(), 0);
        });
    }
}
