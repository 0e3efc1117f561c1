//! Re-checking a failing check as soon as a file it read changes.
//!
//! Each evaluation comes back with the paths it read ([`super::evaluator`]).
//! While a check is failing (or in error), the daemon watches those paths
//! with the `notify` crate (inotify on Linux, FSEvents on macOS,
//! `ReadDirectoryChangesW` on Windows) and re-checks it when one changes,
//! so a fix is seen within seconds instead of at the next interval. A
//! path's parent directory is watched rather than the file, because
//! editors and package managers replace files by renaming over them, which
//! a watch on the old file would miss; for a path that does not exist yet
//! the nearest existing ancestor is watched, so creating it counts.
//! Pseudo-filesystems (`/proc`, `/sys`, `/dev`, `/run`) are not watched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;

/// At most this many paths are watched for one check.
pub const MAX_PATHS_PER_CHECK: usize = 64;

/// Watches the paths of failing checks.
pub struct Watcher {
    inner: Option<notify::RecommendedWatcher>,
    /// Check → the host paths it read.
    interest: HashMap<String, Vec<PathBuf>>,
    /// Check → the directories watched for it.
    dirs_of: HashMap<String, Vec<PathBuf>>,
    /// Directory → how many checks need it.
    watched: HashMap<PathBuf, usize>,
}

/// The directory to watch for `path`: its parent, or the nearest ancestor
/// that exists.
fn watch_dir(path: &Path) -> Option<PathBuf> {
    let mut dir = path.parent()?;
    loop {
        if dir.is_dir() {
            return Some(dir.to_path_buf());
        }
        dir = dir.parent()?;
    }
}

/// Whether a change at `changed` may change what was read at `read`: the
/// same path, an ancestor of it (a directory created, removed or renamed),
/// or an entry of it (a directory that was listed).
pub fn affects(changed: &Path, read: &Path) -> bool {
    changed == read || read.starts_with(changed) || changed.parent() == Some(read)
}

impl Watcher {
    /// A watcher sending the paths that changed to `tx`. Without a working
    /// OS facility the daemon still runs; it just re-checks on the interval.
    pub fn new(tx: UnboundedSender<Vec<PathBuf>>) -> Watcher {
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                if !matches!(ev.kind, EventKind::Access(_)) && !ev.paths.is_empty() {
                    let _ = tx.send(ev.paths);
                }
            }
            Err(e) => tracing::debug!("file watch: {e}"),
        };
        let inner = match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    "cannot watch files ({e}); failing checks are re-checked on their interval only"
                );
                None
            }
        };
        Watcher {
            inner,
            interest: HashMap::new(),
            dirs_of: HashMap::new(),
            watched: HashMap::new(),
        }
    }

    /// Watches `paths` (host paths) for `check`, replacing what was watched for it.
    pub fn set(&mut self, check: &str, paths: &[PathBuf]) {
        let mut paths: Vec<PathBuf> = paths.to_vec();
        paths.sort();
        paths.dedup();
        paths.truncate(MAX_PATHS_PER_CHECK);
        let mut dirs: Vec<PathBuf> = paths.iter().filter_map(|p| watch_dir(p)).collect();
        dirs.extend(paths.iter().filter(|p| p.is_dir()).cloned());
        dirs.sort();
        dirs.dedup();
        // The same paths may need other directories now (one was created).
        if self.interest.get(check) == Some(&paths) && self.dirs_of.get(check) == Some(&dirs) {
            return;
        }
        self.clear(check);
        for d in &dirs {
            let n = self.watched.entry(d.clone()).or_insert(0);
            if *n == 0
                && let Some(w) = &mut self.inner
                && let Err(e) = w.watch(d, RecursiveMode::NonRecursive)
            {
                tracing::debug!("cannot watch {}: {e}", d.display());
            }
            *n += 1;
        }
        tracing::debug!(check, paths = paths.len(), dirs = dirs.len(), "watching");
        self.dirs_of.insert(check.to_string(), dirs);
        self.interest.insert(check.to_string(), paths);
    }

    /// Stops watching for `check`.
    pub fn clear(&mut self, check: &str) {
        self.interest.remove(check);
        for d in self.dirs_of.remove(check).unwrap_or_default() {
            if let Some(n) = self.watched.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    self.watched.remove(&d);
                    if let Some(w) = &mut self.inner {
                        let _ = w.unwatch(&d);
                    }
                }
            }
        }
    }

    /// Stops watching checks not in `keep`.
    pub fn retain(&mut self, keep: &[String]) {
        let gone: Vec<String> = self
            .interest
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for k in gone {
            self.clear(&k);
        }
    }

    /// The checks a change to `changed` may affect.
    pub fn affected(&self, changed: &[PathBuf]) -> Vec<String> {
        let mut out: Vec<String> = self
            .interest
            .iter()
            .filter(|(_, reads)| reads.iter().any(|r| changed.iter().any(|c| affects(c, r))))
            .map(|(id, _)| id.clone())
            .collect();
        out.sort();
        out
    }

    /// How many directories are watched.
    pub fn watched(&self) -> usize {
        self.watched.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_changes_matter() {
        let read = Path::new("/r/etc/ufw/ufw.conf");
        assert!(affects(read, read));
        assert!(affects(Path::new("/r/etc/ufw"), read));
        assert!(!affects(Path::new("/r/etc/ufw/user.rules"), read));
        assert!(affects(
            Path::new("/r/etc/apt/apt.conf.d/x"),
            Path::new("/r/etc/apt/apt.conf.d")
        ));
        assert!(!affects(
            Path::new("/r/etc/apt/apt.conf.d/x/y"),
            Path::new("/r/etc/apt/apt.conf.d")
        ));
    }

    // inotify; FSEvents and ReadDirectoryChangesW (and Wine's) report later or differently.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_change_to_a_watched_file_is_reported() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("etc/ufw/ufw.conf");
        let missing = dir.path().join("etc/apt/apt.conf.d/50unattended-upgrades");
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, "ENABLED=no\n").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = Watcher::new(tx);
        w.set("firewall", std::slice::from_ref(&conf));
        w.set("updates", std::slice::from_ref(&missing));
        assert_eq!(
            w.watched(),
            2,
            "etc/ufw and etc (the nearest ancestor of the missing file)"
        );

        let wait = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<PathBuf>>,
                    w: &Watcher,
                    want: &str| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(paths) = rx.try_recv() {
                    if w.affected(&paths).contains(&want.to_string()) {
                        return;
                    }
                    continue;
                }
                assert!(std::time::Instant::now() < deadline, "no event for {want}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        // Replaced by a rename, as editors do.
        let tmp = dir.path().join("etc/ufw/.ufw.conf.tmp");
        std::fs::write(&tmp, "ENABLED=yes\n").unwrap();
        std::fs::rename(&tmp, &conf).unwrap();
        wait(&mut rx, &w, "firewall");
        // A missing file's directory created.
        std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
        wait(&mut rx, &w, "updates");

        w.clear("firewall");
        w.clear("updates");
        assert_eq!(w.watched(), 0);
    }
}
