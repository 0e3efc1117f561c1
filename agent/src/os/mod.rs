//! OS access, behind small traits.
//!
//! Every table reads the machine through a [`Machine`]: a filesystem ([`Fs`]),
//! a command runner ([`Commands`]) and the few facts that are neither files nor
//! commands ([`Host`]: the clock, `statfs`, network interfaces, `uname`,
//! extended attributes), and on Windows the registry and WMI
//! ([`windows::Registry`], [`windows::Wmi`]). Each trait has two implementations:
//!
//! - [`real`]: this machine, through std and libc.
//! - [`snapshot`]: a recording of a machine, a directory tree plus
//!   `snapshot.json` (the format is documented in `tests/fixtures/README.md`).
//!   [`snapshot::Recorder`] wraps the real machine and writes such a recording
//!   of exactly what the tables read, so IT can replay a user's failing check
//!   elsewhere, and tests replay machines this one is not (a LUKS root, a
//!   Windows or macOS machine).

pub mod real;
#[cfg(windows)]
mod real_windows;
pub mod snapshot;
pub mod tracking;
pub mod windows;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::sql::table::Platform;

/// What kind of filesystem object a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Block,
    Char,
    Fifo,
    Socket,
    Unknown,
}

impl FileKind {
    /// osquery's name for the type in the `file` table.
    pub fn osquery_name(self) -> &'static str {
        match self {
            FileKind::File => "regular",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symbolic",
            FileKind::Block => "block",
            FileKind::Char => "character",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::Unknown => "unknown",
        }
    }
}

/// File metadata, as `stat(2)` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub inode: u64,
    pub device: u64,
    pub nlink: u64,
    pub block_size: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub btime: i64,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
}

/// A filesystem, rooted at `/` of the machine being read.
pub trait Fs: Send + Sync {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// `stat` (`follow = true`) or `lstat`.
    fn metadata(&self, path: &Path, follow: bool) -> io::Result<FileMeta>;
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Where this machine's path is on the host, for libraries that must open
    /// files themselves (libaugeas, libmagic). `None` when it is not a file there.
    fn host_path(&self, path: &Path) -> Option<PathBuf>;

    fn read_string(&self, path: &Path) -> io::Result<String> {
        let bytes = self.read(path)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn exists(&self, path: &Path) -> bool {
        self.metadata(path, false).is_ok()
    }

    /// Resolves symlinks in `path` through this filesystem (not the host's).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut out = PathBuf::from("/");
        let mut pending: Vec<std::ffi::OsString> = path
            .components()
            .rev()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_os_string()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                out.pop();
                continue;
            }
            let candidate = out.join(&part);
            let meta = self.metadata(&candidate, false)?;
            if meta.kind == FileKind::Symlink {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = self.read_link(&candidate)?;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(s) => pending.push(s.to_os_string()),
                        std::path::Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            } else {
                out = candidate;
            }
        }
        Ok(out)
    }
}

/// What a command printed and how it exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

/// Runs programs. Tables use it only where the OS offers no file or API
/// (e.g. `iptables-save`, `dmsetup table`).
pub trait Commands: Send + Sync {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CommandOutput>;
}

/// `statfs(2)` figures for one mount point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFs {
    pub blocks_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// One address of one network interface, as `getifaddrs(3)` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    pub interface: String,
    pub address: String,
    pub mask: String,
    #[serde(default)]
    pub broadcast: String,
    #[serde(default)]
    pub point_to_point: String,
    /// osquery's `type`: `dhcp`, `manual`, `auto`, `unknown`.
    #[serde(default)]
    pub kind: String,
}

/// `uname(2)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

/// Facts that are neither files nor commands.
pub trait Host: Send + Sync {
    fn now(&self) -> SystemTime;
    /// The offset of local time from UTC at `now`, in seconds, and the zone's abbreviation.
    fn local_offset(&self) -> (i64, String);
    fn statfs(&self, path: &Path) -> io::Result<StatFs>;
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddress>>;
    fn uname(&self) -> io::Result<Uname>;
    /// Extended attributes of a file, name and raw value.
    fn xattrs(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>>;
}

/// The machine a query reads: this one, or a recording of another.
#[derive(Clone)]
pub struct Machine {
    pub platform: Platform,
    pub fs: Arc<dyn Fs>,
    pub commands: Arc<dyn Commands>,
    pub host: Arc<dyn Host>,
    pub registry: Arc<dyn windows::Registry>,
    pub wmi: Arc<dyn windows::Wmi>,
}

impl Machine {
    /// This machine.
    pub fn real() -> Machine {
        let real = Arc::new(real::RealMachine);
        #[cfg(windows)]
        let (registry, wmi): (Arc<dyn windows::Registry>, Arc<dyn windows::Wmi>) = (
            Arc::new(real_windows::RealRegistry),
            Arc::new(real_windows::RealWmi::default()),
        );
        #[cfg(not(windows))]
        let (registry, wmi): (Arc<dyn windows::Registry>, Arc<dyn windows::Wmi>) =
            (Arc::new(windows::NoWindows), Arc::new(windows::NoWindows));
        Machine {
            platform: Platform::current(),
            fs: real.clone(),
            commands: real.clone(),
            host: real,
            registry,
            wmi,
        }
    }

    /// A recorded machine (see [`snapshot`]).
    pub fn snapshot(dir: &Path) -> Result<Machine, snapshot::SnapshotError> {
        let snap = Arc::new(snapshot::Snapshot::open(dir)?);
        Ok(Machine {
            platform: snap.platform(),
            fs: snap.clone(),
            commands: snap.clone(),
            host: snap.clone(),
            registry: snap.clone(),
            wmi: snap,
        })
    }
}
