//! The policy in force, and pulling a newer one.
//!
//! [`PolicyManager`] ties the pieces together: at start it loads the cache
//! and re-verifies it with today's trusted keys ([`super::store`]);
//! [`PolicyManager::pull_once`] fetches ([`super::fetch`]), checks
//! ([`super::accept`]) and, for a newer good policy, replaces the cache. A
//! policy that fails anything is refused with the reason logged and recorded,
//! and the last good policy stays in force. The daemon calls `pull_once` on
//! [`PolicyManager::next_delay`]: the poll interval with ±10% jitter, or
//! after failures an exponential backoff (30 s, 1 min, 2 min, ... up to the
//! poll interval). The built-in policy is used only when no policy URL is
//! configured, or when none was ever accepted and the config allows it.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::accept::{Refusal, Trust, accept};
use super::fetch::{FetchError, FetchSettings, Fetched, Fetcher};
use super::signature::{KeyId, TrustedKey};
use super::store::{CachedPolicy, RefusalRecord, Status, Store, StoreError, sha256_hex};
use super::{Policy, default_policy};
use crate::config::AgentConfig;

/// The first retry after a failure; doubled after each further one.
pub const BACKOFF_START: Duration = Duration::from_secs(30);

/// Why a pull changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("no policy_url is configured")]
    NotConfigured,
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{url}: the server answered 304 Not Modified to a request that was not conditional")]
    UnexpectedNotModified { url: String },
    #[error("saving the policy: {0}")]
    Store(#[from] StoreError),
}

/// What one pull did.
#[derive(Debug)]
pub enum PullOutcome {
    /// A newer good policy is now in force (and cached).
    Updated { serial: u64, key_id: Option<KeyId> },
    /// The policy in force is still the newest.
    Unchanged { serial: u64 },
    /// Nothing changed; the last good policy (if any) stays in force.
    Refused { reason: PullError },
}

/// Where the policy in force came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// The last good policy fetched from `source`.
    Cached {
        source: String,
        serial: u64,
        key_id: Option<String>,
        fetched_at: i64,
    },
    /// The policy compiled into the binary.
    BuiltIn,
}

impl std::fmt::Display for PolicyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyOrigin::Cached { source, .. } => write!(f, "{source} (cached)"),
            PolicyOrigin::BuiltIn => f.write_str("built-in default policy"),
        }
    }
}

/// There is no policy to use, and why.
#[derive(Debug, thiserror::Error)]
#[error("no policy to use: {reason}")]
pub struct NoPolicy {
    pub reason: String,
}

struct Current {
    cached: CachedPolicy,
    policy: Policy,
}

/// The policy in force and the means to replace it.
pub struct PolicyManager {
    /// The fetch settings, when a policy URL is configured.
    settings: Option<FetchSettings>,
    /// Built on the first pull (`tend check` never needs one), and again
    /// after it failed to build.
    fetcher: Option<Result<Fetcher, FetchError>>,
    trust: Trust,
    store: Store,
    status: Status,
    allow_default: bool,
    poll_interval: Duration,
    current: Option<Current>,
    /// Why the cache was not used at start, if it was there.
    cache_problem: Option<String>,
    /// Trusted keys in the config that are not keys (ignored).
    key_problems: Vec<String>,
    failures: u32,
}

impl PolicyManager {
    /// Sets up from the config and loads the cache, re-verifying it.
    pub fn new(cfg: &AgentConfig) -> PolicyManager {
        let mut keys = Vec::new();
        let mut key_problems = Vec::new();
        for (i, text) in cfg.trusted_keys.iter().enumerate() {
            match TrustedKey::parse(text) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    let msg = format!("trusted_keys[{i}]: {e} (ignored)");
                    tracing::warn!("{msg}");
                    key_problems.push(msg);
                }
            }
        }
        let trust = Trust {
            keys,
            allow_unsigned: cfg.allow_unsigned,
        };
        let store = Store::new(&cfg.state_dir());
        let status = store.status();
        let settings = FetchSettings::from_config(cfg);
        let mut m = PolicyManager {
            settings,
            fetcher: None,
            trust,
            store,
            status,
            allow_default: cfg.allow_default_policy(),
            poll_interval: cfg.poll_interval.0,
            current: None,
            cache_problem: None,
            key_problems,
            failures: 0,
        };
        if m.settings.is_some() {
            m.load_cache();
        }
        m
    }

    fn load_cache(&mut self) {
        let path = self.store.cache_path();
        let name = format!("cached policy {}", path.display());
        let cached = match self.store.load() {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("not using the cached policy: {e}");
                self.cache_problem = Some(e.to_string());
                return;
            }
        };
        let sig = cached.signature.as_deref().map(str::as_bytes);
        match accept(cached.policy.as_bytes(), sig, &self.trust, None, &name) {
            Ok(a) if a.policy.serial == cached.serial => {
                self.current = Some(Current {
                    policy: a.policy,
                    cached,
                });
            }
            Ok(a) => {
                let msg = format!(
                    "{name}: the record says serial {} but the policy has {}",
                    cached.serial, a.policy.serial
                );
                tracing::warn!("not using the cached policy: {msg}");
                self.cache_problem = Some(msg);
            }
            Err(e) => {
                tracing::warn!("not using the cached policy: {e}");
                self.cache_problem = Some(e.to_string());
            }
        }
    }

    /// The policy to evaluate now.
    pub fn active(&self) -> Result<(Policy, PolicyOrigin), NoPolicy> {
        if let Some(c) = &self.current {
            return Ok((
                c.policy.clone(),
                PolicyOrigin::Cached {
                    source: c.cached.source.clone(),
                    serial: c.cached.serial,
                    key_id: c.cached.key_id.clone(),
                    fetched_at: c.cached.fetched_at,
                },
            ));
        }
        let never_accepted = self.settings.is_none() || self.status.highest_serial.is_none();
        if self.allow_default && never_accepted {
            return Ok((default_policy(), PolicyOrigin::BuiltIn));
        }
        let reason = match (&self.settings, &self.cache_problem) {
            (None, _) => "no policy_url is configured and allow_default_policy is false".into(),
            (Some(_), Some(p)) => format!("the cached policy is not usable: {p}"),
            (Some(_), None) if !never_accepted => format!(
                "the cached policy is missing (serial {} was accepted before); run `tend policy pull`",
                self.status.highest_serial.unwrap_or(0)
            ),
            (Some(_), None) => "no policy has been fetched yet (run `tend policy pull`; set allow_default_policy = true to use the built-in policy until then)".into(),
        };
        Err(NoPolicy { reason })
    }

    /// The cache as loaded, when it passed re-verification.
    pub fn cached(&self) -> Option<&CachedPolicy> {
        self.current.as_ref().map(|c| &c.cached)
    }

    /// Why the cache was not used, when it was there but not good.
    pub fn cache_problem(&self) -> Option<&str> {
        self.cache_problem.as_deref()
    }

    pub fn key_problems(&self) -> &[String] {
        &self.key_problems
    }

    pub fn trusted_keys(&self) -> &[TrustedKey] {
        &self.trust.keys
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured policy URL.
    pub fn url(&self) -> Option<&str> {
        self.settings.as_ref().map(|s| s.url.as_str())
    }

    /// Fetches, verifies and, when newer, installs the policy. Never
    /// replaces the policy in force with one that failed a check.
    pub async fn pull_once(&mut self) -> PullOutcome {
        match self.try_pull().await {
            Ok(outcome) => {
                self.failures = 0;
                outcome
            }
            Err(reason) => {
                self.failures = self.failures.saturating_add(1);
                match &self.current {
                    Some(c) => tracing::warn!(
                        "policy refused: {reason}; keeping serial {} in force",
                        c.cached.serial
                    ),
                    None => tracing::warn!("policy refused: {reason}"),
                }
                self.status.last_refusal = Some(RefusalRecord {
                    at: now(),
                    reason: reason.to_string(),
                });
                self.status.consecutive_failures = self.failures;
                if let Err(e) = self.store.save_status(&self.status) {
                    tracing::warn!("recording the refusal: {e}");
                }
                PullOutcome::Refused { reason }
            }
        }
    }

    async fn try_pull(&mut self) -> Result<PullOutcome, PullError> {
        let Some(settings) = &self.settings else {
            return Err(PullError::NotConfigured);
        };
        // Built again after a failure: the pinned CA file may have been fixed.
        if !matches!(self.fetcher, Some(Ok(_))) {
            self.fetcher = Some(Fetcher::new(settings));
        }
        let fetcher = match &self.fetcher {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(e.clone().into()),
            None => return Err(PullError::NotConfigured),
        };
        let validators = self.current.as_ref().map(|c| &c.cached.validators);
        let (text, signature, validators) = match fetcher.fetch(validators).await? {
            Fetched::NotModified => {
                return match &self.current {
                    Some(c) => {
                        tracing::debug!("{}: not modified", fetcher.url());
                        Ok(PullOutcome::Unchanged {
                            serial: c.cached.serial,
                        })
                    }
                    None => Err(PullError::UnexpectedNotModified {
                        url: fetcher.url().to_string(),
                    }),
                };
            }
            Fetched::New {
                policy,
                signature,
                validators,
            } => (policy, signature, validators),
        };
        let floor = self
            .current
            .as_ref()
            .map(|c| c.cached.serial)
            .max(self.status.highest_serial);
        let url = fetcher.url().to_string();
        let accepted = accept(&text, signature.as_deref(), &self.trust, floor, &url)?;
        let serial = accepted.policy.serial;
        let sha = sha256_hex(&text);
        if let Some(c) = &mut self.current
            && c.cached.serial == serial
        {
            if c.cached.sha256 != sha {
                tracing::warn!(
                    "{url}: serial {serial} is the one in force but its content differs; keeping the policy in force (publish changes with a higher serial)"
                );
            } else if c.cached.validators != validators {
                c.cached.validators = validators;
                self.store.save(&c.cached)?;
            }
            return Ok(PullOutcome::Unchanged { serial });
        }
        let key_id = accepted.signer.as_ref().map(|s| s.key_id);
        // `accept` checked the text is UTF-8 and the signature's size; both
        // conversions are lossless here.
        let cached = CachedPolicy::new(
            &url,
            serial,
            key_id.map(|k| k.to_string()),
            now(),
            validators,
            String::from_utf8_lossy(&text).into_owned(),
            signature.map(|s| String::from_utf8_lossy(&s).into_owned()),
        );
        self.store.save(&cached)?;
        self.status.highest_serial = Some(serial.max(self.status.highest_serial.unwrap_or(0)));
        self.status.last_success_at = Some(cached.fetched_at);
        self.status.consecutive_failures = 0;
        if let Err(e) = self.store.save_status(&self.status) {
            tracing::warn!("recording the update: {e}");
        }
        match key_id {
            Some(k) => tracing::info!("{url}: policy serial {serial} accepted (signed by key {k})"),
            None => {
                tracing::warn!("{url}: unsigned policy serial {serial} accepted (allow_unsigned)")
            }
        }
        self.current = Some(Current {
            policy: accepted.policy,
            cached,
        });
        self.cache_problem = None;
        Ok(PullOutcome::Updated { serial, key_id })
    }

    /// How long to wait before the next pull: the poll interval, or after
    /// failures an exponential backoff capped at it; ±10% jitter either way.
    pub fn next_delay(&self) -> Duration {
        jitter(backoff(self.poll_interval, self.failures), 0.1)
    }
}

/// The delay after `failures` failures in a row.
pub fn backoff(poll_interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return poll_interval;
    }
    let factor = 1u32 << (failures - 1).min(16);
    BACKOFF_START.saturating_mul(factor).min(poll_interval)
}

/// `d` scaled by a random factor in `[1 - spread, 1 + spread]`, so a fleet
/// does not poll in step.
pub fn jitter(d: Duration, spread: f64) -> Duration {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let unit = (r >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    d.mul_f64(1.0 - spread + 2.0 * spread * unit)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::signature::tests::TestKey;

    fn config(dir: &std::path::Path, keys: &[&TestKey]) -> AgentConfig {
        AgentConfig {
            policy_url: Some("https://127.0.0.1:9/policy.json".into()),
            trusted_keys: keys.iter().map(|k| k.public()).collect(),
            state_dir: Some(dir.to_path_buf()),
            ..AgentConfig::default()
        }
    }

    fn doc(serial: u64) -> String {
        format!(
            "{{\"version\": 1, \"serial\": {serial}, \"checks\": [{{\"id\": \"a\", \"name\": \"A\", \"severity\": \"low\", \"query\": {{\"linux\": \"SELECT 1\"}}}}]}}"
        )
    }

    fn cache(store: &Store, key: &TestKey, serial: u64) {
        let text = doc(serial);
        let sig = String::from_utf8(key.sign(text.as_bytes())).unwrap();
        store
            .save(&CachedPolicy::new(
                "https://x/p.json",
                serial,
                Some(key.trusted().id.to_string()),
                1,
                Default::default(),
                text,
                Some(sig),
            ))
            .unwrap();
    }

    /// The daemon drives `pull_once` on a multi-threaded runtime.
    #[allow(dead_code)]
    fn pull_once_is_send(m: &mut PolicyManager) {
        fn send<T: Send>(_: T) {}
        send(m.pull_once());
    }

    #[test]
    fn a_missing_pinned_ca_is_a_refusal_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let a = TestKey::new();
        cache(&Store::new(dir.path()), &a, 2);
        let mut cfg = config(dir.path(), &[&a]);
        cfg.pinned_ca = Some(dir.path().join("missing-ca.pem"));
        let mut m = PolicyManager::new(&cfg);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let PullOutcome::Refused { reason } = rt.block_on(m.pull_once()) else {
            panic!("expected a refusal")
        };
        assert!(reason.to_string().contains("missing-ca.pem"), "{reason}");
        assert_eq!(m.active().unwrap().0.serial, 2);
    }

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let poll = Duration::from_secs(900);
        assert_eq!(backoff(poll, 0), poll);
        assert_eq!(backoff(poll, 1), Duration::from_secs(30));
        assert_eq!(backoff(poll, 2), Duration::from_secs(60));
        assert_eq!(backoff(poll, 4), Duration::from_secs(240));
        assert_eq!(backoff(poll, 6), poll);
        assert_eq!(backoff(poll, 500), poll);
        for _ in 0..100 {
            let j = jitter(poll, 0.1);
            assert!(j >= Duration::from_secs(810) && j <= Duration::from_secs(990));
        }
    }

    #[test]
    fn the_cache_is_re_verified_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (TestKey::new(), TestKey::new());
        let store = Store::new(dir.path());
        cache(&store, &a, 4);
        let m = PolicyManager::new(&config(dir.path(), &[&a]));
        let (p, origin) = m.active().unwrap();
        assert_eq!(p.serial, 4);
        assert!(matches!(origin, PolicyOrigin::Cached { serial: 4, .. }));

        // Key A no longer trusted: the cache is refused, and the default is not
        // used in its place (a policy was accepted before).
        let m = PolicyManager::new(&config(dir.path(), &[&b]));
        let e = m.active().unwrap_err().to_string();
        assert!(e.contains("not trusted"), "{e}");

        // Tampered on disk: refused.
        let mut c = store.load().unwrap().unwrap();
        c.policy = c.policy.replace("SELECT 1", "SELECT 0");
        store.save(&c).unwrap();
        let m = PolicyManager::new(&config(dir.path(), &[&a]));
        let e = m.active().unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn the_default_policy_needs_permission() {
        let dir = tempfile::tempdir().unwrap();
        let a = TestKey::new();
        let mut cfg = config(dir.path(), &[&a]);
        let e = PolicyManager::new(&cfg).active().unwrap_err().to_string();
        assert!(e.contains("no policy has been fetched yet"), "{e}");
        cfg.allow_default_policy = Some(true);
        let (_, origin) = PolicyManager::new(&cfg).active().unwrap();
        assert_eq!(origin, PolicyOrigin::BuiltIn);
        // Once a policy was accepted, a lost cache does not bring the default back.
        Store::new(dir.path())
            .save_status(&Status {
                highest_serial: Some(3),
                ..Status::default()
            })
            .unwrap();
        let e = PolicyManager::new(&cfg).active().unwrap_err().to_string();
        assert!(e.contains("serial 3 was accepted before"), "{e}");
        // No URL: the built-in policy, whatever the cache holds.
        let cfg = AgentConfig {
            state_dir: Some(dir.path().to_path_buf()),
            ..AgentConfig::default()
        };
        assert_eq!(
            PolicyManager::new(&cfg).active().unwrap().1,
            PolicyOrigin::BuiltIn
        );
    }

    #[test]
    fn a_refused_pull_is_recorded_and_keeps_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let a = TestKey::new();
        let store = Store::new(dir.path());
        cache(&store, &a, 4);
        let before = std::fs::read(store.cache_path()).unwrap();
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let mut cfg = config(dir.path(), &[&a]);
        cfg.connect_timeout = crate::policy::Interval(Duration::from_secs(2));
        let mut m = PolicyManager::new(&cfg);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(m.pull_once());
        let PullOutcome::Refused { reason } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.to_string().contains("127.0.0.1:9"), "{reason}");
        assert_eq!(std::fs::read(store.cache_path()).unwrap(), before);
        assert_eq!(m.active().unwrap().0.serial, 4);
        let status = store.status();
        assert_eq!(status.consecutive_failures, 1);
        assert!(
            status
                .last_refusal
                .unwrap()
                .reason
                .contains("cannot connect")
        );
        let d = m.next_delay();
        assert!(
            d >= Duration::from_secs(27) && d <= Duration::from_secs(33),
            "{d:?}"
        );
    }
}
