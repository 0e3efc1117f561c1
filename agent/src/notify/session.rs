//! The user-session role: the process in the user's desktop session (the
//! tray app, or `tend session` where no tray is installed) that shows the
//! daemon's notifications and answers for them.
//!
//! A root / LocalSystem daemon cannot reach a user's desktop, so the session
//! registers with the daemon over the local API, shows each `notify` push
//! through [`Desk`], and answers `notified` (shown, suppressed, failed; then
//! the user's action, dismissal or expiry). When the daemon goes away (a
//! restart, an upgrade) it reconnects, backing off to 30 s; answers given
//! while it was away are kept (a bounded few) and sent after reconnecting.
//! One module for both callers, so the tray and `tend session` behave alike.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::ipc::client::{Client, ClientError};
use crate::ipc::proto::{NotifiedOutcome, Op, PUSH_NOTIFY, Push};
use crate::notify::desktop::Desktop;
use crate::notify::{Answer, Delivery, Desk, GatePolicy, Outcome, Request};

const CALL_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BACKLOG: usize = 64;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Serves the user-session role against the daemon at `endpoint` for as
/// long as the caller's runtime runs: registers, shows, answers, reconnects.
/// `app_name` is the name notifications carry.
pub async fn run(endpoint: String, app_name: String) {
    let (desk, mut answers) = Desk::new(Arc::new(Desktop::new(app_name)), GatePolicy::default());
    let desk = Arc::new(desk);
    let mut backlog = VecDeque::new();
    let mut backoff = Duration::from_secs(1);
    loop {
        match serve(&endpoint, &desk, &mut answers, &mut backlog, &mut backoff).await {
            Ok(()) => tracing::warn!("the Tend service closed the session; reconnecting"),
            Err(e) => tracing::warn!("session: {e}; retrying in {backoff:?}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn answer_op(a: &Answer) -> Op {
    let (outcome, action) = match &a.outcome {
        Outcome::Action(id) => (NotifiedOutcome::Action, Some(id.clone())),
        Outcome::Dismissed => (NotifiedOutcome::Dismissed, None),
        Outcome::Expired => (NotifiedOutcome::Expired, None),
    };
    Op::Notified {
        notification: a.request.clone(),
        outcome,
        action,
        reason: None,
    }
}

/// One connection's life: register, then show and answer until it ends.
async fn serve(
    endpoint: &str,
    desk: &Arc<Desk>,
    answers: &mut tokio::sync::mpsc::UnboundedReceiver<Answer>,
    backlog: &mut VecDeque<Op>,
    backoff: &mut Duration,
) -> Result<(), ClientError> {
    let mut client = Client::connect(endpoint).await?;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok();
    let display = std::env::var("WAYLAND_DISPLAY")
        .or_else(|_| std::env::var("DISPLAY"))
        .ok();
    client
        .call(&Op::Session { user, display }, CALL_TIMEOUT)
        .await?;
    tracing::info!("session registered with the Tend service at {endpoint}");
    *backoff = Duration::from_secs(1);
    while let Some(op) = backlog.front() {
        match client.call(op, CALL_TIMEOUT).await {
            Ok(_) | Err(ClientError::Refused { .. }) => {
                backlog.pop_front();
            }
            Err(e) => return Err(e),
        }
    }
    loop {
        tokio::select! {
            push = client.next_push() => {
                let push = push?;
                if let Some(op) = show(desk, push).await {
                    send(&mut client, op).await?;
                }
            }
            Some(answer) = answers.recv() => {
                tracing::info!("notification {}: {:?}", answer.request, answer.outcome);
                let op = answer_op(&answer);
                if let Err(e) = send(&mut client, op.clone()).await {
                    if backlog.len() >= MAX_BACKLOG {
                        backlog.pop_front();
                    }
                    backlog.push_back(op);
                    return Err(e);
                }
            }
        }
    }
}

/// Sends a `notified`; a refusal is logged (the daemon forgot the
/// notification, e.g. after a restart), not fatal.
async fn send(client: &mut Client, op: Op) -> Result<(), ClientError> {
    match client.call(&op, CALL_TIMEOUT).await {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { code, message }) => {
            tracing::warn!("the Tend service refused the answer: {message} ({code})");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Shows a `notify` push; the answer to send (none for other pushes).
async fn show(desk: &Arc<Desk>, push: Push) -> Option<Op> {
    if push.push != PUSH_NOTIFY {
        return None;
    }
    let id = push.data["id"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect::<String>();
    let request: Request = match serde_json::from_value(push.data) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("a notification request that is not one: {e}");
            return (!id.is_empty())
                .then(|| failed(&id, format!("not a notification request: {e}")));
        }
    };
    let desk = desk.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let r = desk.show(&request);
        (request.id, r)
    })
    .await;
    let (id, result) = match shown {
        Ok(x) => x,
        Err(e) => return Some(failed(&id, format!("showing it failed: {e}"))),
    };
    Some(match result {
        Ok(Delivery::Shown { .. }) => Op::Notified {
            notification: id,
            outcome: NotifiedOutcome::Shown,
            action: None,
            reason: None,
        },
        Ok(Delivery::Suppressed(why)) => Op::Notified {
            notification: id,
            outcome: NotifiedOutcome::Suppressed,
            action: None,
            reason: Some(why.as_str().into()),
        },
        Err(e) => {
            tracing::warn!("notification {id}: {e}");
            failed(&id, e.to_string())
        }
    })
}

fn failed(id: &str, reason: String) -> Op {
    Op::Notified {
        notification: id.to_string(),
        outcome: NotifiedOutcome::Failed,
        action: None,
        reason: Some(reason),
    }
}
