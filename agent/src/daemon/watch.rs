//! Re-checking a failing check as soon as a file it read changes.
//!
//! Each evaluation comes back with the paths it read ([`super::evaluator`]).
//! While a check is failing (or in error), the daemon watches those paths
//! (inotify on Linux through the `inotify` crate; the `notify` crate's
//! FSEvents on macOS and `ReadDirectoryChangesW` on Windows) and re-checks
//! it when one changes,
//! so a fix is seen within seconds instead of at the next interval. A
//! path's parent directory is watched rather than the file, because
//! editors and package managers replace files by renaming over them, which
//! a watch on the old file would miss; for a path that does not exist yet
//! the nearest existing ancestor is watched, so creating it counts.
//! Pseudo-filesystems (`/proc`, `/sys`, `/dev`, `/run`) are not watched.
//!
//! On Windows the registry keys a check read are watched too
//! ([`super::regwatch`]: `RegNotifyChangeKeyValue`), and a change arrives
//! on the same channel as a file's, as the key's path.
//!
//! On Linux the watch asks for changes only: `notify` also subscribes to
//! `IN_OPEN`, and a watch on `/etc` (the nearest ancestor of a missing
//! `/etc/ufw/ufw.conf`) would then wake the daemon every time any program
//! starts (the loader opens `/etc/ld.so.cache`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;

/// The OS facility: directory watches whose changes go to a channel.
#[cfg(target_os = "linux")]
mod backend {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
    use tokio::sync::mpsc::UnboundedSender;

    type Dirs = Arc<Mutex<HashMap<WatchDescriptor, PathBuf>>>;

    pub struct Backend {
        watches: Watches,
        dirs: Dirs,
        by_dir: HashMap<PathBuf, WatchDescriptor>,
    }

    /// Changes, not reads or opens.
    fn mask() -> WatchMask {
        WatchMask::ATTRIB
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::CLOSE_WRITE
            | WatchMask::MODIFY
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
    }

    impl Backend {
        pub fn new(tx: UnboundedSender<Vec<PathBuf>>) -> std::io::Result<Backend> {
            let mut inotify = Inotify::init()?;
            let watches = inotify.watches();
            let dirs: Dirs = Arc::default();
            let map = dirs.clone();
            std::thread::Builder::new()
                .name("tend-watch".into())
                .spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        let events = match inotify.read_events_blocking(&mut buf) {
                            Ok(e) => e,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                tracing::warn!("file watch stopped: {e}");
                                return;
                            }
                        };
                        let mut paths = Vec::new();
                        {
                            let m = map.lock().unwrap_or_else(|p| p.into_inner());
                            for ev in events {
                                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                                    // Too many to tell: any watched directory may have changed.
                                    paths.extend(m.values().cloned());
                                } else if let Some(dir) = m.get(&ev.wd) {
                                    paths.push(match ev.name {
                                        Some(n) => dir.join(n),
                                        None => dir.clone(),
                                    });
                                }
                            }
                        }
                        if !paths.is_empty() && tx.send(paths).is_err() {
                            return;
                        }
                    }
                })?;
            Ok(Backend {
                watches,
                dirs,
                by_dir: HashMap::new(),
            })
        }

        pub fn watch(&mut self, dir: &Path) -> std::io::Result<()> {
            let wd = self.watches.add(dir, mask())?;
            self.dirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(wd.clone(), dir.to_path_buf());
            self.by_dir.insert(dir.to_path_buf(), wd);
            Ok(())
        }

        pub fn unwatch(&mut self, dir: &Path) {
            if let Some(wd) = self.by_dir.remove(dir) {
                self.dirs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&wd);
                let _ = self.watches.remove(wd);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod backend {
    use std::path::{Path, PathBuf};

    use notify::{EventKind, RecursiveMode, Watcher as _};
    use tokio::sync::mpsc::UnboundedSender;

    pub struct Backend(notify::RecommendedWatcher);

    impl Backend {
        pub fn new(tx: UnboundedSender<Vec<PathBuf>>) -> notify::Result<Backend> {
            let handler = move |res: notify::Result<notify::Event>| match res {
                Ok(ev) => {
                    if !matches!(ev.kind, EventKind::Access(_)) && !ev.paths.is_empty() {
                        let _ = tx.send(ev.paths);
                    }
                }
                Err(e) => tracing::debug!("file watch: {e}"),
            };
            Ok(Backend(notify::recommended_watcher(handler)?))
        }

        pub fn watch(&mut self, dir: &Path) -> notify::Result<()> {
            self.0.watch(dir, RecursiveMode::NonRecursive)
        }

        pub fn unwatch(&mut self, dir: &Path) {
            let _ = self.0.unwatch(dir);
        }
    }
}

/// At most this many paths are watched for one check.
pub const MAX_PATHS_PER_CHECK: usize = 64;

/// Watches the paths of failing checks.
pub struct Watcher {
    inner: Option<backend::Backend>,
    /// Check → the host paths it read.
    interest: HashMap<String, Vec<PathBuf>>,
    /// Check → the directories watched for it.
    dirs_of: HashMap<String, Vec<PathBuf>>,
    /// Directory → how many checks need it.
    watched: HashMap<PathBuf, usize>,
    /// Check → the live registry keys it read.
    keys_of: HashMap<String, Vec<String>>,
    #[cfg(windows)]
    registry: Option<super::regwatch::KeyWatch>,
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
        #[cfg(windows)]
        let registry = match super::regwatch::KeyWatch::new(tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    "cannot watch registry keys ({e}); failing checks are re-checked on their interval only"
                );
                None
            }
        };
        let inner = match backend::Backend::new(tx) {
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
            keys_of: HashMap::new(),
            #[cfg(windows)]
            registry,
        }
    }

    /// Watches `paths` (host paths) and `keys` (registry keys of this
    /// host) for `check`, replacing what was watched for it.
    pub fn set(&mut self, check: &str, paths: &[PathBuf], keys: &[String]) {
        let mut keys: Vec<String> = keys.to_vec();
        keys.sort();
        keys.dedup();
        keys.truncate(MAX_PATHS_PER_CHECK);
        let mut paths: Vec<PathBuf> = paths.to_vec();
        paths.sort();
        paths.dedup();
        paths.truncate(MAX_PATHS_PER_CHECK);
        // A key's change arrives as its path: matched like a file's.
        paths.extend(keys.iter().map(PathBuf::from));
        let mut dirs: Vec<PathBuf> = paths.iter().filter_map(|p| watch_dir(p)).collect();
        dirs.extend(paths.iter().filter(|p| p.is_dir()).cloned());
        dirs.sort();
        dirs.dedup();
        // The same paths may need other directories now (one was created).
        if self.interest.get(check) == Some(&paths) && self.dirs_of.get(check) == Some(&dirs) {
            return;
        }
        self.clear(check);
        if !keys.is_empty() {
            self.keys_of.insert(check.to_string(), keys);
            self.sync_keys();
        }
        for d in &dirs {
            let n = self.watched.entry(d.clone()).or_insert(0);
            if *n == 0
                && let Some(w) = &mut self.inner
                && let Err(e) = w.watch(d)
            {
                tracing::debug!("cannot watch {}: {e}", d.display());
            }
            *n += 1;
        }
        tracing::debug!(check, paths = paths.len(), dirs = dirs.len(), "watching");
        self.dirs_of.insert(check.to_string(), dirs);
        self.interest.insert(check.to_string(), paths);
    }

    /// Hands the keys every check needs to the registry watch.
    fn sync_keys(&mut self) {
        #[cfg(windows)]
        if let Some(w) = &self.registry {
            let mut all: Vec<String> = self.keys_of.values().flatten().cloned().collect();
            all.sort();
            all.dedup();
            w.set(all);
        }
    }

    /// Stops watching for `check`.
    pub fn clear(&mut self, check: &str) {
        self.interest.remove(check);
        if self.keys_of.remove(check).is_some() {
            self.sync_keys();
        }
        for d in self.dirs_of.remove(check).unwrap_or_default() {
            if let Some(n) = self.watched.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    self.watched.remove(&d);
                    if let Some(w) = &mut self.inner {
                        w.unwatch(&d);
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
        w.set("firewall", std::slice::from_ref(&conf), &[]);
        w.set("updates", std::slice::from_ref(&missing), &[]);
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
        // Reading (opening) a file in a watched directory is not a change.
        std::fs::read(&conf).unwrap();
        std::fs::read_dir(conf.parent().unwrap())
            .unwrap()
            .for_each(drop);
        std::thread::sleep(Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "a read woke the watcher");
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
