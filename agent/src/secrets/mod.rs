//! Secrets the agent sends (the HTTP sink's token, a Slack bot token),
//! kept where each OS keeps a service's secrets, never in the config.
//!
//! - macOS and Windows: the system keychain / Credential Manager, through
//!   the `keyring` crate ([`keychain`]), service `Tend`, account = the
//!   secret's name. The store is the one of the account that runs
//!   `tend secret set`: for the service (root under launchd, LocalSystem
//!   under the service manager) set it as that account, which is how MDM
//!   scripts run.
//! - Linux: a headless root daemon has no Secret Service (that is a D-Bus
//!   service of a desktop session, unlocked by the user's login) and the
//!   kernel keyring does not outlive a reboot. So [`file::FileStore`]: one
//!   file per secret in a root-only directory of the state directory
//!   (`/var/lib/tend/secrets`, mode 0700, files 0600, replaced atomically),
//!   and, taking precedence, systemd credentials (`LoadCredential=` /
//!   `LoadCredentialEncrypted=`, which systemd can seal to the TPM) read
//!   from `$CREDENTIALS_DIRECTORY`.
//!
//! Everything goes through [`SecretStore`]; [`MemoryStore`] is the fixture
//! tests use. A secret's value is never logged and never taken from the
//! command line (where `ps` shows it): `tend secret set` reads standard input.

#[cfg(unix)]
pub mod file;
#[cfg(any(target_os = "macos", windows))]
pub mod keychain;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The largest secret value stored or read.
pub const MAX_SECRET_BYTES: usize = 16 << 10;

/// Why a secret could not be read, stored or removed. Each names the
/// secret and the store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name:?} is not set in {store} (set it with `tend secret set {name}`)")]
    Missing { name: String, store: String },
    #[error(
        "{name:?} is not a secret name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadName { name: String },
    #[error("secret {name:?}: {reason}")]
    BadValue { name: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: mode {mode:o}, owner uid {uid}: it must be 0600 and owned by root (or the agent's user)"
    )]
    Insecure { path: PathBuf, mode: u32, uid: u32 },
    #[error("secret {name:?} in {store}: {reason}")]
    Store {
        name: String,
        store: String,
        reason: String,
    },
}

impl SecretError {
    #[cfg(unix)]
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SecretError {
        SecretError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where secrets are kept.
pub trait SecretStore: Send + Sync {
    /// The secret's value.
    fn get(&self, name: &str) -> Result<String, SecretError>;
    /// Stores `value` under `name`, replacing what was there.
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError>;
    /// Removes the secret; `Missing` when there was none.
    fn delete(&self, name: &str) -> Result<(), SecretError>;
    /// Where the secrets are, for messages.
    fn describe(&self) -> String;
}

/// Checks a secret's name: it becomes a file name or a keychain account,
/// so no separators, no dot files, nothing long.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName {
            name: name.to_string(),
        })
    }
}

/// Checks a value before it is stored: not empty, not huge, one line of
/// text (tokens are sent in headers, where a line break would end them).
pub fn check_value(name: &str, value: &str) -> Result<(), SecretError> {
    let bad = |reason: &str| SecretError::BadValue {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if value.is_empty() {
        return Err(bad("the value is empty"));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(bad(&format!(
            "the value is longer than {MAX_SECRET_BYTES} bytes"
        )));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(bad("the value has a line break or NUL in it"));
    }
    Ok(())
}

/// This OS's store (see the module documentation); `state_dir` is the
/// agent's state directory (Linux keeps its secrets under it).
pub fn system(state_dir: &Path) -> Box<dyn SecretStore> {
    #[cfg(any(target_os = "macos", windows))]
    {
        let _ = state_dir;
        Box::new(keychain::Keychain::new())
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        Box::new(file::FileStore::new(
            state_dir.join("secrets"),
            std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        ))
    }
}

/// Secrets in memory: the fixture for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    values: Mutex<BTreeMap<String, String>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<String, SecretError> {
        check_name(name)?;
        self.values()
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::Missing {
                name: name.to_string(),
                store: self.describe(),
            })
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        check_value(name, value)?;
        self.values().insert(name.to_string(), value.to_string());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        match self.values().remove(name) {
            Some(_) => Ok(()),
            None => Err(SecretError::Missing {
                name: name.to_string(),
                store: self.describe(),
            }),
        }
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_or_hide_are_refused() {
        for bad in [
            "",
            "../x",
            "a/b",
            r"a\b",
            ".hidden",
            "-x",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["slack-bot-token", "sink.token", "A_1"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn values_are_one_line_and_bounded() {
        assert!(check_value("t", "").is_err());
        assert!(check_value("t", "a\nb").is_err());
        assert!(check_value("t", &"x".repeat(MAX_SECRET_BYTES + 1)).is_err());
        check_value("t", "xoxb-123").unwrap();
    }

    #[test]
    fn the_fixture_behaves_as_a_store() {
        let s = MemoryStore::new();
        s.set("b", "2").unwrap();
        s.set("a", "1").unwrap();
        assert_eq!(s.get("a").unwrap(), "1");
        assert_eq!(s.get("b").unwrap(), "2");
        s.delete("a").unwrap();
        let e = s.get("a").unwrap_err().to_string();
        assert!(e.contains("tend secret set a"), "{e}");
        assert!(matches!(s.delete("a"), Err(SecretError::Missing { .. })));
    }
}
