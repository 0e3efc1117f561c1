//! When each check runs: by the wall clock, not by uptime.
//!
//! osquery schedules by uptime, so a laptop that sleeps through a check's
//! interval skips it (osquery issues #7988, #7989). Here a check is due when
//! its interval has passed on the wall clock since it last ran, and the last
//! run is stored, so neither sleep nor a restart resets it. The daemon sleeps
//! until the earliest due time on a clock that counts suspended time
//! ([`super::timer`]), so after a wake every check whose interval passed
//! during the sleep runs at once.
//!
//! Jitter spreads the load: each run adds a random delay of up to a tenth
//! of the interval (at most a minute), so the checks of one device, and the
//! devices of a fleet, do not run in step. Checks due within
//! [`COALESCE`] of each other run together, so there is one wake-up, not
//! several.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Checks due within this much of the earliest run in the same wake-up.
pub const COALESCE: Duration = Duration::from_secs(2);
/// The largest jitter added to a run.
pub const MAX_JITTER: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    interval_ms: i64,
    due_ms: i64,
}

/// Every check's next due time (Unix ms, wall clock).
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    entries: BTreeMap<String, Entry>,
}

/// The jitter for one run of a check with `interval`, from `unit` in [0, 1).
pub fn jitter_ms(interval: Duration, unit: f64) -> i64 {
    let max = (interval / 10).min(MAX_JITTER);
    (max.as_secs_f64() * 1e3 * unit.clamp(0.0, 1.0)) as i64
}

/// A random number in [0, 1).
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (r >> 11) as f64 / (1u64 << 53) as f64
}

impl Schedule {
    /// Sets the checks to schedule (id, interval), keeping what is known of
    /// checks still there. A check seen for the first time is due at its
    /// last run plus its interval when it ran before (`last_runs`), or now.
    pub fn set_checks(
        &mut self,
        checks: &[(String, Duration)],
        last_runs: &HashMap<String, i64>,
        now_ms: i64,
    ) {
        let mut next = BTreeMap::new();
        for (id, interval) in checks {
            let interval_ms = interval.as_millis().min(i64::MAX as u128) as i64;
            let due_ms = match (self.entries.get(id), last_runs.get(id)) {
                (Some(e), _) => e.due_ms.min(now_ms.saturating_add(interval_ms)),
                (None, Some(last)) => last.saturating_add(interval_ms),
                (None, None) => now_ms,
            };
            next.insert(
                id.clone(),
                Entry {
                    interval_ms,
                    due_ms,
                },
            );
        }
        self.entries = next;
    }

    /// The earliest due time, if any check is scheduled.
    pub fn next_due(&self) -> Option<i64> {
        self.entries.values().map(|e| e.due_ms).min()
    }

    /// The checks due at `now_ms` (or within [`COALESCE`] of it). A check
    /// whose last run is in the future (the clock was set back) is due too.
    pub fn due(&self, now_ms: i64) -> Vec<String> {
        let horizon = now_ms + COALESCE.as_millis() as i64;
        self.entries
            .iter()
            .filter(|(_, e)| e.due_ms <= horizon || e.due_ms > now_ms + e.interval_ms + 60_000)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Records that `id` ran at `at_ms`; it is next due after its interval
    /// plus `jitter_ms`.
    pub fn ran(&mut self, id: &str, at_ms: i64, jitter_ms: i64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.due_ms = at_ms
                .saturating_add(e.interval_ms)
                .saturating_add(jitter_ms);
        }
    }

    /// Makes every check due now.
    pub fn all_due(&mut self, now_ms: i64) {
        for e in self.entries.values_mut() {
            e.due_ms = e.due_ms.min(now_ms);
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    pub fn due_at(&self, id: &str) -> Option<i64> {
        self.entries.get(id).map(|e| e.due_ms)
    }
}

/// Notices a jump between the wall clock and the monotonic clock: a wake
/// from sleep (the monotonic clock stops while suspended on Linux and macOS)
/// or the clock being set.
#[derive(Clone, Copy, Debug)]
pub struct JumpDetector {
    wall_ms: i64,
    mono: std::time::Instant,
}

impl JumpDetector {
    pub fn new(wall_ms: i64, mono: std::time::Instant) -> JumpDetector {
        JumpDetector { wall_ms, mono }
    }

    /// How far the wall clock moved beyond the monotonic clock since the
    /// last call, when more than `threshold`; then starts afresh.
    pub fn check(
        &mut self,
        wall_ms: i64,
        mono: std::time::Instant,
        threshold: Duration,
    ) -> Option<i64> {
        let wall = wall_ms - self.wall_ms;
        let elapsed = mono.duration_since(self.mono).as_millis() as i64;
        self.wall_ms = wall_ms;
        self.mono = mono;
        let drift = wall - elapsed;
        (drift.abs() > threshold.as_millis() as i64).then_some(drift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn checks() -> Vec<(String, Duration)> {
        vec![
            ("fw".into(), Duration::from_secs(15 * 60)),
            ("disk".into(), Duration::from_secs(3600)),
        ]
    }

    #[test]
    fn a_check_is_due_when_its_interval_passed_on_the_wall_clock() {
        let mut s = Schedule::default();
        let now = 1_000 * MIN;
        // fw ran 20 minutes ago (before a restart, or a sleep): due now.
        // disk ran 10 minutes ago: due in 50 minutes.
        let last = HashMap::from([
            ("fw".to_string(), now - 20 * MIN),
            ("disk".into(), now - 10 * MIN),
        ]);
        s.set_checks(&checks(), &last, now);
        assert_eq!(s.due(now), vec!["fw".to_string()]);
        s.ran("fw", now, 0);
        assert_eq!(s.next_due(), Some(now + 15 * MIN));
        assert!(s.due(now + 14 * MIN).is_empty());
        // A laptop asleep for three hours: both due at the first look after waking.
        assert_eq!(s.due(now + 180 * MIN).len(), 2);
        // A check never run is due at once.
        let mut fresh = Schedule::default();
        fresh.set_checks(&checks(), &HashMap::new(), now);
        assert_eq!(fresh.due(now).len(), 2);
    }

    #[test]
    fn coalesces_and_survives_the_clock_going_back() {
        let mut s = Schedule::default();
        let now = 1_000 * MIN;
        let last = HashMap::from([
            ("fw".to_string(), now - 15 * MIN + 1_000),
            ("disk".into(), now - 59 * MIN),
        ]);
        s.set_checks(&checks(), &last, now);
        // fw is due in one second: taken with this wake-up.
        assert_eq!(s.due(now), vec!["fw".to_string()]);
        // The clock set back a day: the last run is "in the future"; due anyway.
        s.ran("fw", now, 0);
        s.ran("disk", now, 0);
        assert_eq!(s.due(now - 1440 * MIN).len(), 2);
    }

    #[test]
    fn policy_changes_keep_known_checks() {
        let mut s = Schedule::default();
        let now = 1_000 * MIN;
        s.set_checks(&checks(), &HashMap::new(), now);
        s.ran("fw", now, 0);
        s.ran("disk", now, 0);
        s.set_checks(
            &[
                ("fw".into(), Duration::from_secs(15 * 60)),
                ("av".into(), Duration::from_secs(60)),
            ],
            &HashMap::new(),
            now + MIN,
        );
        assert_eq!(s.ids(), vec!["av".to_string(), "fw".to_string()]);
        assert_eq!(s.due_at("fw"), Some(now + 15 * MIN));
        assert_eq!(s.due_at("av"), Some(now + MIN));
        s.all_due(now + 2 * MIN);
        assert_eq!(s.due(now + 2 * MIN).len(), 2);
    }

    #[test]
    fn jitter_is_bounded() {
        assert_eq!(jitter_ms(Duration::from_secs(15 * 60), 0.0), 0);
        assert_eq!(jitter_ms(Duration::from_secs(15 * 60), 0.999_999), 59_999);
        assert_eq!(jitter_ms(Duration::from_secs(10), 0.5), 500);
        for _ in 0..100 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn a_jump_between_the_clocks_is_noticed() {
        let t0 = std::time::Instant::now();
        let mut d = JumpDetector::new(0, t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(d.check(10_000, t1, Duration::from_secs(5)), None);
        // Asleep for an hour: the wall clock moved an hour more than the monotonic one.
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(
            d.check(10_000 + 3_601_000, t2, Duration::from_secs(5)),
            Some(3_600_000)
        );
    }
}
