//! The real [`Notifier`]: notify-rust. On Linux and the BSDs it speaks
//! org.freedesktop.Notifications on the session bus (`DBUS_SESSION_BUS_ADDRESS`),
//! where a replacement reuses the desktop's id and buttons come back as
//! `ActionInvoked`; on Windows it raises a toast with buttons; on macOS it
//! posts to the notification centre (which reports the pressed button by
//! its label: mapped back to the id here).
//!
//! Showing and waiting happen on one thread of their own, so nothing here
//! needs the platform's handle to cross threads.

use std::sync::atomic::AtomicU32;
#[cfg(not(all(unix, not(target_os = "macos"))))]
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use notify_rust::{CloseReason, Notification, NotificationResponse};

use super::{Notifier, NotifyError, Outcome, Request, SHOW_TIMEOUT, Shown};

/// notify-rust, under an application name.
pub struct Desktop {
    app_name: String,
    /// Ids for desktops that do not give one (Windows, macOS).
    #[cfg_attr(all(unix, not(target_os = "macos")), allow(dead_code))]
    next_id: AtomicU32,
}

impl Desktop {
    pub fn new(app_name: impl Into<String>) -> Desktop {
        Desktop {
            app_name: app_name.into(),
            next_id: AtomicU32::new(1),
        }
    }

    fn build(&self, r: &Request, replaces: Option<u32>) -> Notification {
        let mut n = Notification::new();
        n.appname(&self.app_name).summary(&r.title).body(&r.body);
        for a in &r.actions {
            n.action(&a.id, &a.label);
        }
        #[cfg(not(target_os = "macos"))]
        n.urgency(match r.urgency {
            super::Urgency::Low => notify_rust::Urgency::Low,
            super::Urgency::Normal => notify_rust::Urgency::Normal,
            super::Urgency::Critical => notify_rust::Urgency::Critical,
        });
        if let Some(s) = r.timeout_secs {
            n.timeout(notify_rust::Timeout::Milliseconds(s.saturating_mul(1000)));
        }
        if let Some(id) = replaces {
            n.id(id);
        }
        n
    }
}

/// The answer in this module's terms; `actions` maps a label back to its id.
fn outcome(r: &NotificationResponse, actions: &[super::Action]) -> Outcome {
    match r {
        NotificationResponse::Action(key) => Outcome::Action(
            actions
                .iter()
                .find(|a| &a.id == key || &a.label == key)
                .map_or_else(|| key.clone(), |a| a.id.clone()),
        ),
        NotificationResponse::Default | NotificationResponse::Reply(_) => {
            Outcome::Action("default".into())
        }
        NotificationResponse::Closed(CloseReason::Expired) => Outcome::Expired,
        NotificationResponse::Closed(_) => Outcome::Dismissed,
    }
}

impl Notifier for Desktop {
    fn show(&self, request: &Request, replaces: Option<u32>) -> Result<Shown, NotifyError> {
        let notification = self.build(request, replaces);
        let actions = request.actions.clone();
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        let fallback_id = replaces.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        let (shown_tx, shown_rx) = mpsc::sync_channel::<Result<u32, String>>(1);
        let (done_tx, done_rx) = mpsc::sync_channel::<Outcome>(1);
        std::thread::Builder::new()
            .name("tend-notify".into())
            .spawn(move || {
                let handle = match notification.show() {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = shown_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                #[cfg(all(unix, not(target_os = "macos")))]
                let id = handle.id();
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                let id = fallback_id;
                let _ = shown_tx.send(Ok(id));
                let mut got = Outcome::Expired;
                let waited = handle.wait_for_response(|r: &NotificationResponse| {
                    got = outcome(r, &actions);
                });
                if let Err(e) = waited {
                    tracing::warn!("notification {id}: waiting for the answer: {e}");
                }
                let _ = done_tx.send(got);
            })
            .map_err(|e| NotifyError::Desktop(format!("cannot start a thread: {e}")))?;
        let desktop_id = match shown_rx.recv_timeout(SHOW_TIMEOUT) {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => return Err(NotifyError::Desktop(e)),
            Err(_) => {
                return Err(NotifyError::Desktop(format!(
                    "the notification service did not answer within {SHOW_TIMEOUT:?}"
                )));
            }
        };
        Ok(Shown {
            desktop_id,
            wait: Box::new(move || done_rx.recv().unwrap_or(Outcome::Expired)),
        })
    }
}
