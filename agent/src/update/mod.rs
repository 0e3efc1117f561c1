//! Self-update: `tend update check|apply`, and the daemon's schedule.
//!
//! A release is three files on any HTTPS server, beside each other:
//!
//! - `manifest.json`: `{"version": "0.2.0", "archives": {"linux-x86_64": "tend-0.2.0-linux-x86_64.tar.gz", ...}}`
//!   (archive names are resolved against the manifest's URL);
//! - the archive, a gzipped tar holding the one file `tend` (`tend.exe`);
//! - its minisign signature (`<archive>.minisig`), whose *trusted comment* is
//!   `tend <version> <platform>` (`minisign -S -t "tend 0.2.0 linux-x86_64"`).
//!
//! The manifest only says where to look: what is trusted is the signature,
//! made by a key in `update_keys` (or the key pinned in the build with
//! `TEND_UPDATE_KEY`), and the version and platform it signs. So, in this
//! order and before anything on disk changes: the archive's signature must
//! verify ([`crate::policy::signature`]), the signed version must be this
//! platform's and strictly newer than the running one, and the binary inside
//! must run and say it is that version. Only then is it swapped in
//! ([`install`]): written beside the running binary, the running one kept as
//! `tend.previous`, an atomic rename, and a marker that the next start is a
//! trial. The new version confirms itself once its local API reports it
//! healthy; a version that starts twice without doing so is rolled back.
//!
//! Installs a package manager owns (the .deb, .rpm, .msi and .pkg ship a
//! `packaged-by` file, [`managed_by`]) are updated through it, never here.
//!
//! Why not the `self_update` crate: its backends are GitHub/GitLab/S3/Gitea
//! release APIs rather than a plain signed manifest on any server, its
//! signature check is zipsign rather than the minisign keys the project's
//! admins already use for policies, it brings its own HTTP client (ours pins
//! a CA and uses the OS trust store), and it neither keeps the previous
//! binary nor rolls back. The part of it we would use (an atomic rename) is
//! a few lines here.

pub mod archive;
pub mod install;
pub mod manifest;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::AgentConfig;
use crate::policy::fetch::{FetchError, FetchSettings, Fetcher};
use crate::policy::signature::{self, SignatureError, TrustedKey};

pub use manifest::{Manifest, Version};

/// This build's platform as releases name it: `linux-x86_64`, `macos-aarch64`, `windows-x86_64`.
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The file the archive holds.
pub const ARCHIVE_ENTRY: &str = if cfg!(windows) { "tend.exe" } else { "tend" };
/// The largest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// The largest archive (and binary inside it) accepted, in bytes.
pub const MAX_ARCHIVE_BYTES: usize = 256 * 1024 * 1024;
/// The key pinned at build time (`TEND_UPDATE_KEY`), trusted when the config names none.
pub const PINNED_KEY: Option<&str> = option_env!("TEND_UPDATE_KEY");

/// What updating needs from the agent's config.
#[derive(Clone, Debug)]
pub struct UpdateSettings {
    pub manifest_url: Option<String>,
    pub keys: Vec<String>,
    pub auto: bool,
    pub interval: Duration,
    pub pinned_ca: Option<PathBuf>,
    pub allow_http_loopback: bool,
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub state_dir: PathBuf,
}

impl UpdateSettings {
    pub fn from_config(cfg: &AgentConfig) -> UpdateSettings {
        let keys = if cfg.update_keys.is_empty() {
            PINNED_KEY.map(|k| vec![k.to_string()]).unwrap_or_default()
        } else {
            cfg.update_keys.clone()
        };
        UpdateSettings {
            manifest_url: cfg.update_url.clone(),
            keys,
            auto: cfg.auto_update,
            interval: cfg.update_interval.0,
            pinned_ca: cfg.pinned_ca.clone(),
            allow_http_loopback: cfg.allow_http_loopback,
            connect_timeout: cfg.connect_timeout.0,
            fetch_timeout: cfg.fetch_timeout.0,
            state_dir: cfg.state_dir(),
        }
    }
}

/// Why an update was not installed. Every variant names what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("this install is managed by a package manager; {how}")]
    Managed { how: String },
    #[error("no release manifest is configured (set `update_url`)")]
    NoUrl,
    #[error("no update key is configured (set `update_keys`)")]
    NoKeys,
    #[error("update key: {0}")]
    Key(SignatureError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {reason}")]
    Manifest { url: String, reason: String },
    #[error("{url}: no archive for this platform ({platform})")]
    NoArchive { url: String, platform: String },
    #[error("{url}: {source}")]
    Signature {
        url: String,
        #[source]
        source: SignatureError,
    },
    #[error("{url}: the signed comment {comment:?} {reason}")]
    Comment {
        url: String,
        comment: String,
        reason: String,
    },
    #[error(
        "{url}: version {offered} is not newer than the running {current}; versions only go up"
    )]
    NotNewer {
        url: String,
        offered: Version,
        current: Version,
    },
    #[error("{url}: {reason}")]
    Archive { url: String, reason: String },
    #[error(transparent)]
    Install(#[from] install::InstallError),
}

/// What a release manifest offers this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The manifest's version is not newer than the running one.
    UpToDate { current: Version, latest: Version },
    /// A newer version is offered (not yet verified: that needs the archive).
    Available {
        current: Version,
        latest: Version,
        archive_url: String,
    },
}

/// What `apply` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    UpToDate { current: Version },
    Installed(install::Installed),
}

/// The version this build reports: `TEND_RELEASE_VERSION` when the release
/// was stamped with one, else the crate's version.
pub fn current_version() -> Version {
    // Both are set at build time; a build whose version does not parse is a
    // build error caught by the unit test `the_running_version_parses`.
    Version::parse(crate::VERSION).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// The package manager that owns the install at `exe`, from the
/// `packaged-by` file the packages ship (its text says how to update).
pub fn managed_by(exe: &Path) -> Option<String> {
    let dir = exe.parent()?;
    [
        dir.join("../share/tend/packaged-by"),
        dir.join("packaged-by"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
}

/// One update client: the HTTPS fetcher and the trusted keys.
pub struct Updater {
    fetcher: Fetcher,
    url: String,
    keys: Vec<TrustedKey>,
}

impl Updater {
    pub fn new(s: &UpdateSettings) -> Result<Updater, UpdateError> {
        let url = s.manifest_url.clone().ok_or(UpdateError::NoUrl)?;
        if s.keys.is_empty() {
            return Err(UpdateError::NoKeys);
        }
        let keys = TrustedKey::parse_all(&s.keys).map_err(UpdateError::Key)?;
        let fetcher = Fetcher::new(&FetchSettings {
            url: url.clone(),
            signature_url: None,
            pinned_ca: s.pinned_ca.clone(),
            allow_http_loopback: s.allow_http_loopback,
            connect_timeout: s.connect_timeout,
            total_timeout: s.fetch_timeout,
            max_bytes: MAX_MANIFEST_BYTES,
        })?;
        Ok(Updater { fetcher, url, keys })
    }

    /// Reads the manifest and compares its version with the running one.
    pub async fn check(&self) -> Result<Check, UpdateError> {
        let body = self.fetcher.get(&self.url, MAX_MANIFEST_BYTES).await?;
        let m = Manifest::parse(&body).map_err(|reason| UpdateError::Manifest {
            url: self.url.clone(),
            reason,
        })?;
        let current = current_version();
        if m.version <= current {
            return Ok(Check::UpToDate {
                current,
                latest: m.version,
            });
        }
        let platform = platform();
        let archive = m.archives.get(&platform).ok_or(UpdateError::NoArchive {
            url: self.url.clone(),
            platform,
        })?;
        let archive_url =
            manifest::resolve(&self.url, archive).map_err(|reason| UpdateError::Manifest {
                url: self.url.clone(),
                reason,
            })?;
        Ok(Check::Available {
            current,
            latest: m.version,
            archive_url,
        })
    }

    /// Downloads, verifies and installs the newer version over `exe`.
    /// Nothing on disk changes unless every check passes.
    pub async fn apply(&self, exe: &Path, state_dir: &Path) -> Result<Applied, UpdateError> {
        if let Some(how) = managed_by(exe) {
            return Err(UpdateError::Managed { how });
        }
        let (current, archive_url) = match self.check().await? {
            Check::UpToDate { current, .. } => return Ok(Applied::UpToDate { current }),
            Check::Available {
                current,
                archive_url,
                ..
            } => (current, archive_url),
        };
        let data = self.fetcher.get(&archive_url, MAX_ARCHIVE_BYTES).await?;
        let sig_url = format!("{archive_url}.minisig");
        let sig = self
            .fetcher
            .get(&sig_url, signature::MAX_SIGNATURE_BYTES)
            .await?;
        let verified = signature::verify(&data, &sig, &self.keys).map_err(|source| {
            UpdateError::Signature {
                url: archive_url.clone(),
                source,
            }
        })?;
        let version =
            signed_version(&verified.trusted_comment).map_err(|reason| UpdateError::Comment {
                url: sig_url.clone(),
                comment: verified.trusted_comment.clone(),
                reason,
            })?;
        if version <= current {
            return Err(UpdateError::NotNewer {
                url: archive_url,
                offered: version,
                current,
            });
        }
        tracing::info!(
            "update {version}: signature by key {} verified ({archive_url})",
            verified.key_id
        );
        let binary =
            archive::extract(&data, ARCHIVE_ENTRY, MAX_ARCHIVE_BYTES).map_err(|reason| {
                UpdateError::Archive {
                    url: archive_url.clone(),
                    reason,
                }
            })?;
        // Writing, running and renaming files blocks: off the async thread
        // (the service's loop shares it).
        let (exe, state_dir) = (exe.to_path_buf(), state_dir.to_path_buf());
        let installed = tokio::task::spawn_blocking(move || {
            install::install(&exe, &binary, &current, &version, &state_dir)
        })
        .await
        .map_err(|e| UpdateError::Archive {
            url: archive_url,
            reason: format!("the install step stopped: {e}"),
        })??;
        Ok(Applied::Installed(installed))
    }
}

/// The version a signature's trusted comment vouches for: the comment must
/// be `tend <version> <platform>` and name this platform.
pub fn signed_version(comment: &str) -> Result<Version, String> {
    let words: Vec<&str> = comment.split_whitespace().collect();
    let [name, version, plat, ..] = words.as_slice() else {
        return Err("is not `tend <version> <platform>`".into());
    };
    if *name != "tend" {
        return Err("does not name tend".into());
    }
    if *plat != platform() {
        return Err(format!("is for {plat}, not this platform ({})", platform()));
    }
    Version::parse(version).map_err(|e| format!("has no valid version: {e}"))
}

#[cfg(test)]
mod tests;
