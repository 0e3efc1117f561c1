//! The rule that keeps a flapping check from flooding the screen: per key
//! (a check), drop a repeat of the toast already on screen, and allow at
//! most `max_per_window` toasts in any `window`.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How strict the gate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatePolicy {
    /// A request equal to the toast on screen within this time is a duplicate.
    pub dedup_window: Duration,
    pub window: Duration,
    pub max_per_window: usize,
}

impl Default for GatePolicy {
    /// Three toasts per check per hour; an identical one within ten minutes
    /// of the last, while it is still on screen, is a duplicate.
    fn default() -> Self {
        GatePolicy {
            dedup_window: Duration::from_secs(600),
            window: Duration::from_secs(3600),
            max_per_window: 3,
        }
    }
}

/// Why a request was not shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppressed {
    /// The same toast is on screen.
    Duplicate,
    /// This check has had its share of toasts for now.
    RateLimited,
}

impl Suppressed {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Duplicate => "duplicate",
            Suppressed::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Suppressed::Duplicate => "the same notification is on screen",
            Suppressed::RateLimited => "too many notifications for this check lately",
        })
    }
}

#[derive(Default)]
struct KeyState {
    shows: VecDeque<Instant>,
    last_fingerprint: String,
}

/// Remembers what was shown, per key.
pub struct Gate {
    policy: GatePolicy,
    keys: HashMap<String, KeyState>,
}

impl Gate {
    pub fn new(policy: GatePolicy) -> Gate {
        Gate {
            policy,
            keys: HashMap::new(),
        }
    }

    /// May a toast with `fingerprint` for `key` be shown at `now`?
    /// `on_screen`: whether one for `key` is still showing. An admitted
    /// request is counted.
    pub fn admit(
        &mut self,
        key: &str,
        fingerprint: &str,
        on_screen: bool,
        now: Instant,
    ) -> Result<(), Suppressed> {
        let p = self.policy;
        let k = self.keys.entry(key.to_string()).or_default();
        while k
            .shows
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= p.window)
        {
            k.shows.pop_front();
        }
        if on_screen
            && k.last_fingerprint == fingerprint
            && k.shows
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < p.dedup_window)
        {
            return Err(Suppressed::Duplicate);
        }
        if k.shows.len() >= p.max_per_window {
            return Err(Suppressed::RateLimited);
        }
        k.shows.push_back(now);
        k.last_fingerprint = fingerprint.to_string();
        // Forget keys that have been quiet a whole window (bounded memory).
        if self.keys.len() > 1024 {
            self.keys.retain(|_, k| {
                k.shows
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < p.window)
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flapping_check_gets_three_toasts_an_hour() {
        let mut g = Gate::new(GatePolicy::default());
        let t0 = Instant::now();
        let min = |m: u64| t0 + Duration::from_secs(60 * m);
        assert_eq!(g.admit("fw", "a", false, min(0)), Ok(()));
        assert_eq!(g.admit("fw", "a", true, min(1)), Err(Suppressed::Duplicate));
        // Closed meanwhile: the same text may show again.
        assert_eq!(g.admit("fw", "a", false, min(2)), Ok(()));
        assert_eq!(g.admit("fw", "b", true, min(3)), Ok(()));
        assert_eq!(
            g.admit("fw", "c", true, min(4)),
            Err(Suppressed::RateLimited)
        );
        // Another check is not affected.
        assert_eq!(g.admit("disk", "c", false, min(4)), Ok(()));
        // An hour after the first, one slot is free again.
        assert_eq!(g.admit("fw", "c", true, min(60)), Ok(()));
        assert_eq!(
            g.admit("fw", "d", true, min(61)),
            Err(Suppressed::RateLimited)
        );
    }
}
