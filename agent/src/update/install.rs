//! Swapping the binary, keeping the previous one, and the trial that
//! decides whether the new one stays.
//!
//! On disk, beside the running binary `tend`:
//!
//! 1. the new binary is written to `.tend.update` (mode 0755, synced) and
//!    run with `--version`, which must print the signed version;
//! 2. `tend` is hard-linked (or copied) to `tend.previous`;
//! 3. `.tend.update` is renamed over `tend` (atomic: a start at any moment
//!    runs either the old or the new binary, never a partial one);
//! 4. `<state_dir>/update/pending.json` records the trial.
//!
//! Every start of `tend run` calls [`on_start`]: the new version's first
//! start is its trial; once its local API reports it healthy it calls
//! [`confirm`]. A new version that starts again without having confirmed
//! (it crashed, hung until the watchdog killed it, or never became healthy)
//! is rolled back: `tend.previous` is renamed over `tend` and the caller
//! restarts into it. `last.json` keeps the outcome for `tend update check`.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Version;

/// Starts of the new version allowed without a confirmation.
pub const TRIAL_STARTS: u32 = 1;
/// How long the candidate binary may take to print its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// Why installing failed. Nothing was replaced unless the error says so.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: the new binary does not run as version {expected}: {reason} (nothing was replaced)"
    )]
    Candidate {
        path: String,
        expected: Version,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The trial in progress, written before the restart into the new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub from: Version,
    pub to: Version,
    pub exe: PathBuf,
    pub previous: PathBuf,
    /// Starts of `to` so far.
    pub starts: u32,
    /// Unix seconds.
    pub applied_at: u64,
}

/// What [`install`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub from: Version,
    pub to: Version,
    pub exe: PathBuf,
    pub previous: PathBuf,
}

/// The last update's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub from: Version,
    pub to: Version,
    /// `confirmed` or `rolled back`.
    pub result: String,
    /// Unix seconds.
    pub at: u64,
}

/// `tend.previous` (`tend.previous.exe`) beside `exe`.
pub fn previous_path(exe: &Path) -> PathBuf {
    let suffix = std::env::consts::EXE_SUFFIX;
    exe.with_file_name(format!("tend.previous{suffix}"))
}

fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("update")
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename in `dir` durable (best effort: not every OS can).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("{}: {e}; ignoring it", path.display());
            None
        }
    }
}

/// The trial in progress, if any.
pub fn pending(state_dir: &Path) -> Option<Pending> {
    read_json(&dir_of(state_dir).join("pending.json"))
}

/// The last update's outcome, if any.
pub fn last_outcome(state_dir: &Path) -> Option<Outcome> {
    read_json(&dir_of(state_dir).join("last.json"))
}

/// Runs `path --version` (bounded in time) and checks it prints `tend VERSION`.
fn check_candidate(path: &Path, expected: &Version) -> Result<(), InstallError> {
    let fail = |reason: String| InstallError::Candidate {
        path: path.display().to_string(),
        expected: expected.clone(),
        reason,
    };
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start it: {e}")))?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {VERSION_TIMEOUT:?}")));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(fail(format!("`--version` exited with {status}")));
    }
    let want = format!("tend {expected}");
    if out.trim() != want {
        return Err(fail(format!("it printed {:?}, not {want:?}", out.trim())));
    }
    Ok(())
}

/// Installs `binary` (version `to`) over `exe` (version `from`) and records the trial.
pub fn install(
    exe: &Path,
    binary: &[u8],
    from: &Version,
    to: &Version,
    state_dir: &Path,
) -> Result<Installed, InstallError> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidate = dir.join(format!(".tend.update{}", std::env::consts::EXE_SUFFIX));
    {
        let mut f = std::fs::File::create(&candidate).map_err(io_err(&candidate))?;
        f.write_all(binary).map_err(io_err(&candidate))?;
        f.sync_all().map_err(io_err(&candidate))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&candidate, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(&candidate))?;
    }
    if let Err(e) = check_candidate(&candidate, to) {
        let _ = std::fs::remove_file(&candidate);
        return Err(e);
    }
    let previous = previous_path(exe);
    let _ = std::fs::remove_file(&previous);
    if std::fs::hard_link(exe, &previous).is_err() {
        std::fs::copy(exe, &previous).map_err(io_err(&previous))?;
    }
    // The trial is recorded before the swap: a crash between the two leaves
    // a marker naming a version that is not running, which the next start
    // discards.
    let pending = Pending {
        from: from.clone(),
        to: to.clone(),
        exe: exe.to_path_buf(),
        previous: previous.clone(),
        starts: 0,
        applied_at: now(),
    };
    save_pending(state_dir, &pending)?;
    std::fs::rename(&candidate, exe).map_err(io_err(exe))?;
    sync_dir(dir);
    tracing::info!(
        "installed {to} over {from} at {} (previous kept as {})",
        exe.display(),
        previous.display()
    );
    Ok(Installed {
        from: from.clone(),
        to: to.clone(),
        exe: exe.to_path_buf(),
        previous,
    })
}

fn save_pending(state_dir: &Path, p: &Pending) -> Result<(), InstallError> {
    let text = serde_json::to_vec_pretty(p).unwrap_or_default();
    write_atomic(&dir_of(state_dir).join("pending.json"), &text)
}

fn finish(state_dir: &Path, p: &Pending, result: &str) -> Result<(), InstallError> {
    let outcome = Outcome {
        from: p.from.clone(),
        to: p.to.clone(),
        result: result.to_string(),
        at: now(),
    };
    let text = serde_json::to_vec_pretty(&outcome).unwrap_or_default();
    write_atomic(&dir_of(state_dir).join("last.json"), &text)?;
    let path = dir_of(state_dir).join("pending.json");
    std::fs::remove_file(&path).map_err(io_err(&path))
}

/// What a start of `tend run` must do about an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// No update in progress.
    Normal,
    /// This is the new version on trial: confirm once healthy.
    Trial(Pending),
    /// The new version failed its trial and the previous binary is back at
    /// `exe`: restart into it.
    RolledBack(Pending),
}

/// Decides, at the start of `tend run` (version `running`), whether this
/// is a trial, a rollback, or a normal start.
pub fn on_start(state_dir: &Path, running: &Version) -> Result<Start, InstallError> {
    let Some(mut p) = pending(state_dir) else {
        return Ok(Start::Normal);
    };
    if &p.to != running {
        // The swap never happened, or the previous binary runs again.
        tracing::warn!(
            "update to {} did not take: {} is running; discarding the trial",
            p.to,
            running
        );
        finish(state_dir, &p, "not installed")?;
        return Ok(Start::Normal);
    }
    if p.starts < TRIAL_STARTS {
        p.starts += 1;
        save_pending(state_dir, &p)?;
        return Ok(Start::Trial(p));
    }
    rollback(state_dir, &p)?;
    Ok(Start::RolledBack(p))
}

/// Puts the previous binary back over the new one.
pub fn rollback(state_dir: &Path, p: &Pending) -> Result<(), InstallError> {
    tracing::error!(
        "update to {} did not report healthy: rolling back to {}",
        p.to,
        p.from
    );
    // Keep the failed binary for inspection; `previous` moves back into place.
    let failed = p
        .exe
        .with_file_name(format!("tend.failed{}", std::env::consts::EXE_SUFFIX));
    let _ = std::fs::remove_file(&failed);
    let _ = std::fs::hard_link(&p.exe, &failed);
    std::fs::rename(&p.previous, &p.exe).map_err(io_err(&p.exe))?;
    if let Some(dir) = p.exe.parent() {
        sync_dir(dir);
    }
    finish(state_dir, p, "rolled back")
}

/// The new version reported healthy: it stays.
pub fn confirm(state_dir: &Path, p: &Pending) -> Result<(), InstallError> {
    tracing::info!("update to {} confirmed healthy", p.to);
    finish(state_dir, p, "confirmed")
}
