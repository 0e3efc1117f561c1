//! The tray's connection to the Tend service, through the library's local
//! API client: one connection subscribed to pushes, one for requests.
//!
//! The loop connects, says `hello`, reads `status` (and, for the window,
//! `checks` and `history`: the changes of status the service keeps), then
//! waits for pushes and reads them again after each burst. When the service
//! goes away (a restart, an upgrade) the model says so and the loop
//! reconnects with a short backoff; nothing runs on a timer while
//! connected, so an idle tray uses no CPU.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tend::ipc::client::{Client, ClientError};
use tend::ipc::proto::{Op, Push};

use crate::model::Model;

/// How long one request may take (a re-check runs the query first).
const CALL: Duration = Duration::from_secs(10);
const RECHECK: Duration = Duration::from_secs(120);
/// Pushes closer together than this are read as one change.
const SETTLE: Duration = Duration::from_millis(150);
/// How many changes the window's history shows.
const HISTORY: u32 = 100;
/// Reconnection backoff.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// The shared model, and how to tell the tray and window it changed.
#[derive(Clone)]
pub struct Link {
    pub endpoint: String,
    pub model: Arc<Mutex<Model>>,
    pub changed: Arc<dyn Fn() + Send + Sync>,
    /// Also read what only the window shows: `checks` (descriptions and
    /// fixes) and `history`. The icon needs `status` alone.
    pub page: bool,
}

impl Link {
    /// The model as the service last described it. Its updates are plain
    /// field assignments, which cannot stop halfway, so a lock poisoned by
    /// a panic elsewhere still guards a whole model and is taken as it is.
    pub fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Model)) {
        f(&mut self.model());
        (self.changed)();
    }

    /// Runs forever: connect, follow, reconnect.
    pub async fn run(self) {
        let mut retry = FIRST_RETRY;
        loop {
            let mut followed = false;
            let err = self.follow(&mut followed).await;
            tracing::info!(
                "the Tend service at {} is unreachable: {err}",
                self.endpoint
            );
            self.update(|m| m.lost(err.to_string()));
            if followed {
                retry = FIRST_RETRY;
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// One connection's life; returns why it ended.
    async fn follow(&self, followed: &mut bool) -> ClientError {
        let mut subscription = match Client::connect(&self.endpoint).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut rpc = match Client::connect(&self.endpoint).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let hello = match rpc.call(&Op::Hello, CALL).await {
            Ok(h) => h,
            Err(e) => return e,
        };
        if let Err(e) = subscription.call(&Op::Subscribe, CALL).await {
            return e;
        }
        // Registering as the user's session (and showing notifications) is
        // the job of `tend::notify::session`, which main.rs runs beside this.
        *followed = true;
        tracing::info!(
            "connected to the Tend service {} at {}",
            hello["version"],
            self.endpoint
        );

        // Pushes are read on their own task: reading a line is not
        // cancel-safe, a channel is.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Push, ClientError>>(64);
        let reader = tokio::spawn(async move {
            loop {
                let next = subscription.next_push().await;
                let end = next.is_err();
                if tx.send(next).await.is_err() || end {
                    return;
                }
            }
        });
        let result = async {
            self.refresh(&mut rpc, &hello).await?;
            loop {
                let Some(first) = rx.recv().await else {
                    return Err(ClientError::Closed);
                };
                first?;
                // Let a burst (a run of every check) settle.
                while let Ok(Some(more)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                    more?;
                }
                self.refresh(&mut rpc, &hello).await?;
            }
        }
        .await;
        reader.abort();
        match result {
            Ok(()) => ClientError::Closed,
            Err(e) => e,
        }
    }

    async fn refresh(&self, rpc: &mut Client, hello: &Value) -> Result<(), ClientError> {
        let status = rpc.call(&Op::Status, CALL).await?;
        let (checks, history) = if self.page {
            (rpc.call(&Op::Checks, CALL).await?, self.history(rpc).await?)
        } else {
            (Value::Null, Value::Null)
        };
        self.update(|m| m.connected(hello.clone(), status, checks, history));
        Ok(())
    }

    async fn history(&self, rpc: &mut Client) -> Result<Value, ClientError> {
        let op = Op::History {
            check: None,
            limit: Some(HISTORY),
        };
        match rpc.call(&op, CALL).await {
            Ok(h) => Ok(h),
            // A service older than this tray (mid-upgrade) has no history.
            Err(ClientError::Refused { code, .. }) if code == "unknown_op" => Ok(Value::Null),
            Err(e) => Err(e),
        }
    }
}

/// One request on a connection of its own (the window's buttons).
pub async fn call(endpoint: &str, op: Op) -> Result<Value, ClientError> {
    let timeout = if matches!(op, Op::Recheck { .. }) {
        RECHECK
    } else {
        CALL
    };
    Client::connect(endpoint).await?.call(&op, timeout).await
}
