//! Recording what an evaluation read, so the daemon can watch it.
//!
//! [`TrackingFs`] wraps a machine's [`Fs`] and remembers every path a table
//! asked about (read, listed, stat'ed, resolved); [`TrackingRegistry`] does
//! the same for the registry keys a table opened. The daemon wraps the
//! machine it evaluates with both ([`track`]), and while a check is failing
//! it watches those paths (on the host, through [`Fs::host_path`]) and, on
//! Windows, those keys, to re-check as soon as one changes: a fix is seen
//! within seconds, not at the next interval.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::windows::{RecordedKey, Registry};
use super::{DirEntry, FileMeta, Fs, Machine};

/// What [`track`] hands back: the trackers of a wrapped machine.
pub struct Trackers {
    pub fs: Arc<TrackingFs>,
    pub registry: Arc<TrackingRegistry>,
}

/// Wraps `machine`'s filesystem and registry; returns the machine to
/// evaluate and the trackers.
pub fn track(machine: Machine) -> (Machine, Trackers) {
    let (machine, fs) = TrackingFs::wrap(machine);
    let registry = Arc::new(TrackingRegistry::new(machine.registry.clone()));
    let tracked = Machine {
        registry: registry.clone(),
        ..machine
    };
    (tracked, Trackers { fs, registry })
}

/// A [`Registry`] that records the keys it is asked about.
pub struct TrackingRegistry {
    inner: Arc<dyn Registry>,
    seen: Mutex<BTreeSet<String>>,
}

impl TrackingRegistry {
    pub fn new(inner: Arc<dyn Registry>) -> TrackingRegistry {
        TrackingRegistry {
            inner,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The keys asked about since the last call, in order, and starts afresh.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }
}

impl Registry for TrackingRegistry {
    fn key(&self, path: &str) -> io::Result<RecordedKey> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_string());
        self.inner.key(path)
    }

    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
}

/// An [`Fs`] that records the paths it is asked about.
pub struct TrackingFs {
    inner: Arc<dyn Fs>,
    seen: Mutex<BTreeSet<PathBuf>>,
}

impl TrackingFs {
    pub fn new(inner: Arc<dyn Fs>) -> TrackingFs {
        TrackingFs {
            inner,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// Wraps `machine`'s filesystem; returns the machine to evaluate and the tracker.
    pub fn wrap(machine: Machine) -> (Machine, Arc<TrackingFs>) {
        let tracker = Arc::new(TrackingFs::new(machine.fs.clone()));
        let tracked = Machine {
            fs: tracker.clone(),
            ..machine
        };
        (tracked, tracker)
    }

    fn note(&self, path: &Path) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf());
    }

    /// The paths recorded since the last call, in order, and starts afresh.
    pub fn take(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }

    /// Where a recorded path is on the host (for a recording: under its `root/`).
    pub fn host_path(&self, path: &Path) -> Option<PathBuf> {
        self.inner.host_path(path)
    }
}

impl Fs for TrackingFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.note(path);
        self.inner.read(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.note(path);
        self.inner.read_dir(path)
    }

    fn metadata(&self, path: &Path, follow: bool) -> io::Result<FileMeta> {
        self.note(path);
        self.inner.metadata(path, follow)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.note(path);
        self.inner.read_link(path)
    }

    fn host_path(&self, path: &Path) -> Option<PathBuf> {
        self.note(path);
        self.inner.host_path(path)
    }

    fn read_string(&self, path: &Path) -> io::Result<String> {
        self.note(path);
        self.inner.read_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.note(path);
        self.inner.exists(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.note(path);
        self.inner.canonicalize(path)
    }
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn records_the_registry_keys_a_query_opened() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/machines/windows11-compliant"
        );
        let machine = Machine::snapshot(Path::new(dir)).unwrap();
        let (machine, trackers) = track(machine);
        assert!(!trackers.registry.is_live(), "a recording is not watched");
        let engine = crate::sql::Engine::new(machine).unwrap();
        let key = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile";
        engine
            .query(&format!(
                "SELECT data FROM registry WHERE key = '{key}' AND name = 'EnableFirewall'"
            ))
            .unwrap();
        let keys = trackers.registry.take();
        assert!(keys.iter().any(|k| k == key), "{keys:?}");
        assert!(trackers.registry.take().is_empty());
    }
}

// The augeas table needs libaugeas: a Linux (and macOS) host.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn records_what_a_query_read() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/machines/linux-compliant"
        );
        let machine = Machine::snapshot(Path::new(dir)).unwrap();
        let (machine, tracker) = TrackingFs::wrap(machine);
        let engine = crate::sql::Engine::new(machine).unwrap();
        let r = engine
            .query("SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' AND label = 'ENABLED' AND value = 'yes'")
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        let read = tracker.take();
        assert!(
            read.iter().any(|p| p == Path::new("/etc/ufw/ufw.conf")),
            "{read:?}"
        );
        assert!(tracker.take().is_empty());
        let host = tracker.host_path(Path::new("/etc/ufw/ufw.conf")).unwrap();
        assert!(host.ends_with("linux-compliant/root/etc/ufw/ufw.conf"));
    }
}
