//! The policy cache: the last good policy and its signature, on disk.
//!
//! `<state_dir>/policy/last-good.json` holds the exact policy text, its
//! signature, and what is known about them (URL, serial, signing key, when
//! fetched, the ETag and Last-Modified for conditional requests). Policy and
//! signature sit in one file so they are replaced together: written to a
//! temporary file, fsynced, renamed over the old one, and the directory
//! fsynced, so a crash leaves the old cache or the new one, never a mix.
//! The cache is not trusted for what it says: whoever loads it re-verifies
//! the signature and the schema ([`super::manager`]).
//!
//! `status.json` beside it records the highest serial ever accepted (the
//! anti-rollback floor, kept even if the cache is lost or refused) and the
//! last refusal with its reason.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fetch::Validators;

pub const CACHE_FILE: &str = "last-good.json";
pub const STATUS_FILE: &str = "status.json";
const CACHE_FORMAT: u32 = 1;
/// A cache file is the policy plus a little: refuse anything much larger.
const MAX_CACHE_BYTES: u64 = (super::MAX_POLICY_BYTES as u64) * 2 + (64 << 10);

/// The last good policy, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    pub format: u32,
    /// Where it was fetched from.
    pub source: String,
    pub serial: u64,
    /// The id of the key that signed it (`None`: unsigned, as the config allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Unix seconds.
    pub fetched_at: i64,
    /// SHA-256 of the policy text, hex.
    pub sha256: String,
    #[serde(default)]
    pub validators: Validators,
    /// The policy exactly as fetched and signed.
    pub policy: String,
    /// The `.minisig` file exactly as fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl CachedPolicy {
    pub fn new(
        source: &str,
        serial: u64,
        key_id: Option<String>,
        fetched_at: i64,
        validators: Validators,
        policy: String,
        signature: Option<String>,
    ) -> CachedPolicy {
        CachedPolicy {
            format: CACHE_FORMAT,
            source: source.to_string(),
            serial,
            key_id,
            fetched_at,
            sha256: sha256_hex(policy.as_bytes()),
            validators,
            policy,
            signature,
        }
    }
}

/// A refusal, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// Unix seconds.
    pub at: i64,
    pub reason: String,
}

/// What the agent remembers about its pulls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The highest serial ever accepted: no policy below it is accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<RefusalRecord>,
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the cache is damaged: {reason}")]
    Corrupt { path: String, reason: String },
}

/// The cache directory, `<state_dir>/policy`.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.join("policy"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cache_path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join(STATUS_FILE)
    }

    /// The cached policy as stored (not yet re-verified), if there is one.
    pub fn load(&self) -> Result<Option<CachedPolicy>, StoreError> {
        let path = self.cache_path();
        let Some(bytes) = read_capped(&path)? else {
            return Ok(None);
        };
        let cached: CachedPolicy =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if cached.format != CACHE_FORMAT {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("unknown cache format {}", cached.format),
            });
        }
        Ok(Some(cached))
    }

    /// Replaces the cache atomically.
    pub fn save(&self, cached: &CachedPolicy) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(cached).map_err(|e| StoreError::Corrupt {
            path: self.cache_path().display().to_string(),
            reason: e.to_string(),
        })?;
        self.write(&self.cache_path(), &bytes)
    }

    /// The pull status; a missing or unreadable one is empty (logged).
    pub fn status(&self) -> Status {
        let path = self.status_path();
        match read_capped(&path) {
            Ok(None) => Status::default(),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{}: ignoring a damaged status file: {e}", path.display());
                Status::default()
            }),
            Err(e) => {
                tracing::warn!("{e}");
                Status::default()
            }
        }
    }

    pub fn save_status(&self, status: &Status) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(status).map_err(|e| StoreError::Corrupt {
            path: self.status_path().display().to_string(),
            reason: e.to_string(),
        })?;
        self.write(&self.status_path(), &bytes)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        create_private_dir(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.display().to_string(),
            source,
        })?;
        write_atomic(path, bytes).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_CACHE_BYTES => {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("{} bytes is too large", m.len()),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    }
    std::fs::read(path).map(Some).map_err(io_err)
}

/// Creates the directory (and its parents), readable by its owner only.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Writes `bytes` to `path` so that a reader sees the old or the new
/// content, never a part: a temporary file beside it, fsync, rename, and on
/// Unix an fsync of the directory so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SHA-256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(serial: u64) -> CachedPolicy {
        CachedPolicy::new(
            "https://example.com/policy.json",
            serial,
            Some("0123456789ABCDEF".into()),
            1_800_000_000,
            Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            "{\"version\": 1}".into(),
            Some("sig".into()),
        )
    }

    #[test]
    fn round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert_eq!(store.load().unwrap(), None);
        store.save(&sample(1)).unwrap();
        store.save(&sample(2)).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample(2)));
        // Nothing but the cache is left behind: no temporary files.
        let names: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![CACHE_FILE.to_string()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.dir()), 0o700);
            assert_eq!(mode(&store.cache_path()), 0o600);
        }
    }

    #[test]
    fn damage_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.cache_path(), "{\"format\": 1, \"serial\": ").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        std::fs::write(store.status_path(), "nonsense").unwrap();
        assert_eq!(store.status(), Status::default());
    }

    #[test]
    fn status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let s = Status {
            highest_serial: Some(9),
            last_success_at: Some(5),
            last_refusal: Some(RefusalRecord {
                at: 6,
                reason: "bad".into(),
            }),
            consecutive_failures: 1,
        };
        store.save_status(&s).unwrap();
        assert_eq!(store.status(), s);
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
