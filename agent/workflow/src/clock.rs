//! Time, behind a trait: the real clock, and a virtual one for tests and
//! demos on which waits and retry intervals cost nothing.
//!
//! Times are milliseconds since the Unix epoch (`u64`), so they serialize
//! into an execution's state and mean the same after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;

pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Completes once `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'_, ()>;
}

/// The system clock (tokio timers).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'_, ()> {
        let now = self.now_ms();
        Box::pin(tokio::time::sleep(Duration::from_millis(
            deadline_ms.saturating_sub(now),
        )))
    }
}

/// A clock that only moves when told to. In *auto* mode (the default) a sleep
/// moves it straight to the deadline, so a 24-hour wait or a retry back-off
/// passes at once and the recorded times are what the real clock would show.
/// In *manual* mode sleepers wait until [`VirtualClock::advance`] passes
/// their deadline (for tests of event timeouts racing events).
#[derive(Debug, Clone)]
pub struct VirtualClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    now: AtomicU64,
    auto: bool,
    tick: tokio::sync::watch::Sender<u64>,
}

impl VirtualClock {
    /// Auto-advancing, starting at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self::with_mode(start_ms, true)
    }

    /// Moves only on [`advance`](Self::advance).
    pub fn manual(start_ms: u64) -> Self {
        Self::with_mode(start_ms, false)
    }

    fn with_mode(start_ms: u64, auto: bool) -> Self {
        let (tick, _) = tokio::sync::watch::channel(start_ms);
        VirtualClock {
            inner: Arc::new(Inner {
                now: AtomicU64::new(start_ms),
                auto,
                tick,
            }),
        }
    }

    pub fn advance(&self, by: Duration) {
        let now = self
            .inner
            .now
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst)
            + by.as_millis() as u64;
        self.inner.tick.send_replace(now);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.inner.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.inner.auto {
                self.inner.now.fetch_max(deadline_ms, Ordering::SeqCst);
                self.inner.tick.send_replace(self.now_ms());
                tokio::task::yield_now().await;
                return;
            }
            let mut rx = self.inner.tick.subscribe();
            while self.now_ms() < deadline_ms {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

/// RFC 3339 text for a time in milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_auto_and_manual() {
        let c = VirtualClock::new(1000);
        c.sleep_until(86_401_000).await;
        assert_eq!(c.now_ms(), 86_401_000);
        let m = VirtualClock::manual(0);
        let m2 = m.clone();
        let h = tokio::spawn(async move { m2.sleep_until(5000).await });
        tokio::task::yield_now().await;
        assert!(!h.is_finished());
        m.advance(Duration::from_secs(5));
        h.await.unwrap();
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
