//! Recorded machines: replay ([`Snapshot`]) and recording ([`Recorder`]).
//!
//! A recording is a directory:
//!
//! ```text
//! DIR/snapshot.json   what is not a file's content: platform, clock, uname,
//!                     stat results, directory listings, symlinks, command
//!                     output, statfs, interfaces, extended attributes
//! DIR/root/...        file contents, at their path on the recorded machine
//! ```
//!
//! Every map in `snapshot.json` is optional: a hand-written fixture can be a
//! `root/` tree and a two-line JSON file, and then metadata and listings come
//! from the files under `root/` themselves. The full format is described in
//! `tests/fixtures/README.md`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::real::RealMachine;
use super::windows::{RecordedKey, Registry, Wmi};
use super::{
    CommandOutput, Commands, DirEntry, FileKind, FileMeta, Fs, Host, InterfaceAddress, StatFs,
    Uname,
};
use crate::sql::table::Platform;

/// The format version this build writes and reads.
pub const FORMAT: u32 = 1;

/// Why a recording could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: unknown platform {platform:?} (expected linux, darwin or windows)")]
    Platform { path: PathBuf, platform: String },
    #[error("{path}: format {found} is newer than this build reads ({FORMAT})")]
    Format { path: PathBuf, found: u32 },
}

/// One recorded command run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedCommand {
    pub argv: Vec<String>,
    /// The output, or `None` when the program could not be started.
    pub output: Option<CommandOutput>,
}

/// The contents of `snapshot.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotData {
    #[serde(default = "default_format")]
    pub format: u32,
    /// `linux`, `darwin` (or `macos`), `windows`.
    pub platform: String,
    /// Free text: where and why it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The machine's clock when recorded, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<i64>,
    /// Local time's offset from UTC in seconds, and the zone's abbreviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<(i64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname: Option<Uname>,
    /// `stat` results (symlinks followed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stat: BTreeMap<String, FileMeta>,
    /// `lstat` results.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lstat: BTreeMap<String, FileMeta>,
    /// Symlink targets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    /// Directory listings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dirs: BTreeMap<String, Vec<DirEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<RecordedCommand>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub statfs: BTreeMap<String, StatFs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<InterfaceAddress>>,
    /// Extended attributes: name and base64 value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, Vec<(String, String)>>,
    /// Registry keys by full path (`HKEY_LOCAL_MACHINE\\SOFTWARE\\...`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registry: BTreeMap<String, RecordedKey>,
    /// WMI results: namespace → WQL query → rows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wmi: BTreeMap<String, BTreeMap<String, Vec<serde_json::Map<String, serde_json::Value>>>>,
}

fn default_format() -> u32 {
    FORMAT
}

/// The key of a path in `snapshot.json`. A path of a Unix machine is keyed with
/// `/` even when the recording is replayed on Windows, where `Path::join`
/// inserts `\\`.
fn key(path: &Path) -> String {
    let s = path.to_string_lossy();
    if s.starts_with('/') && s.contains('\\') {
        s.replace('\\', "/")
    } else {
        s.into_owned()
    }
}

/// `/etc/x` under `root`, refusing `..` that would leave it.
fn under(root: &Path, path: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(s) => {
                out.push(s);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => {}
        }
    }
    out
}

fn not_found(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} is not in the recording ({what})", path.display()),
    )
}

/// A recorded machine, read back.
pub struct Snapshot {
    root: PathBuf,
    data: SnapshotData,
    platform: Platform,
}

impl Snapshot {
    pub fn open(dir: &Path) -> Result<Snapshot, SnapshotError> {
        let path = dir.join("snapshot.json");
        let text = std::fs::read_to_string(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let data: SnapshotData = serde_json::from_str(&text).map_err(|e| SnapshotError::Json {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if data.format > FORMAT {
            return Err(SnapshotError::Format {
                path,
                found: data.format,
            });
        }
        let platform = Platform::parse(&data.platform).ok_or_else(|| SnapshotError::Platform {
            path: path.clone(),
            platform: data.platform.clone(),
        })?;
        Ok(Snapshot {
            root: dir.join("root"),
            data,
            platform,
        })
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    pub fn data(&self) -> &SnapshotData {
        &self.data
    }

    fn file(&self, path: &Path) -> PathBuf {
        under(&self.root, path)
    }
}

impl Fs for Snapshot {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match std::fs::read(self.file(path)) {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && self.data.links.contains_key(&key(path)) =>
            {
                let target = self.canonicalize(path)?;
                std::fs::read(self.file(&target))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(path, "file")),
            other => other,
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        if let Some(entries) = self.data.dirs.get(&key(path)) {
            return Ok(entries.clone());
        }
        RealMachine
            .read_dir(&self.file(path))
            .map_err(|_| not_found(path, "directory"))
    }

    fn metadata(&self, path: &Path, follow: bool) -> io::Result<FileMeta> {
        let k = key(path);
        let recorded = if follow {
            self.data.stat.get(&k)
        } else {
            self.data.lstat.get(&k)
        };
        if let Some(m) = recorded {
            return Ok(m.clone());
        }
        if let Some(target) = self.data.links.get(&k) {
            if !follow {
                return Ok(FileMeta {
                    kind: FileKind::Symlink,
                    size: target.len() as u64,
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    inode: 0,
                    device: 0,
                    nlink: 1,
                    block_size: 4096,
                    atime: 0,
                    mtime: 0,
                    ctime: 0,
                    btime: 0,
                });
            }
            let resolved = self.canonicalize(path)?;
            return self.metadata(&resolved, true);
        }
        if follow {
            // A listing may name an entry whose stat was recorded as lstat only.
            if let Some(m) = self
                .data
                .lstat
                .get(&k)
                .filter(|m| m.kind != FileKind::Symlink)
            {
                return Ok(m.clone());
            }
        }
        RealMachine
            .metadata(&self.file(path), follow)
            .map_err(|_| not_found(path, "stat"))
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        if let Some(t) = self.data.links.get(&key(path)) {
            return Ok(PathBuf::from(t));
        }
        std::fs::read_link(self.file(path)).map_err(|_| not_found(path, "symlink"))
    }

    fn host_path(&self, path: &Path) -> Option<PathBuf> {
        Some(self.file(path))
    }

    /// Resolves symlinks through the recording, spelling the result as the
    /// recorded machine does whatever the host: `/`-separated from `/` on a
    /// Unix machine (where a Windows host's `Path` would put `\` and take
    /// `/usr/lib` for a relative path), `\`-separated from the drive on
    /// Windows.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let windows = self.platform == Platform::Windows;
        let sep = if windows { '\\' } else { '/' };
        let is_sep = |c: char| c == '/' || (c == '\\' && (windows || cfg!(windows)));
        // The root (`/`, `C:\`; empty for `\` without a drive) and the components.
        let split = |text: &str| -> (Option<String>, Vec<String>) {
            let (root, rest) = if windows {
                let b = text.as_bytes();
                if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
                    (Some(format!("{}{sep}", &text[..2])), &text[2..])
                } else if text.starts_with(is_sep) {
                    (Some(String::new()), text)
                } else {
                    (None, text)
                }
            } else if text.starts_with('/') {
                (Some("/".to_string()), text)
            } else {
                (None, text)
            };
            let parts = rest
                .split(is_sep)
                .filter(|c| !c.is_empty() && *c != ".")
                .map(String::from)
                .collect();
            (root, parts)
        };
        let text = path.to_string_lossy();
        let (root, parts) = split(&text);
        // A Windows path without a drive is on the system drive.
        let mut root = match root {
            Some(r) if r.is_empty() => format!("C:{sep}"),
            Some(r) => r,
            None if windows => format!("C:{sep}"),
            None => "/".to_string(),
        };
        let mut out = root.clone();
        let mut pending: Vec<String> = parts.into_iter().rev().collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                // Up one, never above the root.
                let cut = out[root.len()..]
                    .rfind(sep)
                    .map_or(root.len(), |i| root.len() + i);
                out.truncate(cut);
                continue;
            }
            let candidate = if out.ends_with(sep) {
                format!("{out}{part}")
            } else {
                format!("{out}{sep}{part}")
            };
            let meta = self.metadata(Path::new(&candidate), false)?;
            if meta.kind != FileKind::Symlink {
                out = candidate;
                continue;
            }
            hops += 1;
            if hops > 40 {
                return Err(io::Error::other("too many levels of symbolic links"));
            }
            let target = self.read_link(Path::new(&candidate))?;
            let (target_root, target_parts) = split(&target.to_string_lossy());
            if let Some(r) = target_root {
                if !r.is_empty() {
                    root = r;
                }
                out = root.clone();
            }
            pending.extend(target_parts.into_iter().rev());
        }
        Ok(PathBuf::from(out))
    }
}

impl Commands for Snapshot {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CommandOutput> {
        let found = self.data.commands.iter().find(|c| {
            c.argv.first().map(String::as_str) == Some(program)
                && c.argv.len() == args.len() + 1
                && c.argv[1..].iter().zip(args).all(|(a, b)| a == b)
        });
        match found {
            Some(RecordedCommand {
                output: Some(o), ..
            }) => Ok(o.clone()),
            Some(RecordedCommand { output: None, .. }) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{program} could not be started on the recorded machine"),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{program} {}` is not in the recording", args.join(" ")),
            )),
        }
    }
}

impl Host for Snapshot {
    fn now(&self) -> SystemTime {
        let secs = self.data.now.unwrap_or(0).max(0) as u64;
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn local_offset(&self) -> (i64, String) {
        self.data.timezone.clone().unwrap_or((0, "UTC".into()))
    }

    fn statfs(&self, path: &Path) -> io::Result<StatFs> {
        self.data
            .statfs
            .get(&key(path))
            .cloned()
            .ok_or_else(|| not_found(path, "statfs"))
    }

    fn interfaces(&self) -> io::Result<Vec<InterfaceAddress>> {
        self.data
            .interfaces
            .clone()
            .ok_or_else(|| not_found(Path::new("interfaces"), "getifaddrs"))
    }

    fn uname(&self) -> io::Result<Uname> {
        self.data
            .uname
            .clone()
            .ok_or_else(|| not_found(Path::new("uname"), "uname"))
    }

    fn xattrs(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let list = self
            .data
            .xattrs
            .get(&key(path))
            .ok_or_else(|| not_found(path, "xattrs"))?;
        Ok(list
            .iter()
            .map(|(n, v)| (n.clone(), b64.decode(v).unwrap_or_default()))
            .collect())
    }
}

/// Registry paths compare without regard to case, as Windows compares them.
fn registry_lookup<'a>(
    map: &'a BTreeMap<String, RecordedKey>,
    path: &str,
) -> Option<&'a RecordedKey> {
    map.get(path).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(path))
            .map(|(_, v)| v)
    })
}

impl Registry for Snapshot {
    fn key(&self, path: &str) -> io::Result<RecordedKey> {
        registry_lookup(&self.data.registry, path)
            .cloned()
            .ok_or_else(|| not_found(Path::new(path), "registry key"))
    }
}

impl Wmi for Snapshot {
    fn query(
        &self,
        namespace: &str,
        wql: &str,
    ) -> io::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        self.data
            .wmi
            .iter()
            .find(|(ns, _)| ns.eq_ignore_ascii_case(namespace))
            .and_then(|(_, queries)| queries.get(wql))
            .cloned()
            .ok_or_else(|| not_found(Path::new(wql), "WMI query"))
    }
}

/// Wraps this machine and records everything the tables read, to be written
/// as a snapshot directory by [`Recorder::finish`].
pub struct Recorder {
    dir: PathBuf,
    /// This machine's registry and WMI (present on Windows only).
    registry: std::sync::Arc<dyn Registry>,
    wmi: std::sync::Arc<dyn Wmi>,
    data: Mutex<SnapshotData>,
    copy_errors: Mutex<Vec<String>>,
}

impl Recorder {
    /// Starts a recording into `dir` (created if missing; files in it are overwritten).
    pub fn new(dir: &Path, platform: Platform) -> Result<Recorder, SnapshotError> {
        std::fs::create_dir_all(dir.join("root")).map_err(|source| SnapshotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let real = RealMachine;
        let data = SnapshotData {
            format: FORMAT,
            platform: platform.policy_key().into(),
            now: real
                .now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() as i64),
            timezone: Some(real.local_offset()),
            ..SnapshotData::default()
        };
        let this = super::Machine::real();
        Ok(Recorder {
            dir: dir.to_path_buf(),
            registry: this.registry,
            wmi: this.wmi,
            data: Mutex::new(data),
            copy_errors: Mutex::new(Vec::new()),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut SnapshotData) -> R) -> R {
        let mut guard = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Writes `snapshot.json`. Returns the paths that could not be copied.
    pub fn finish(&self, description: Option<String>) -> Result<Vec<String>, SnapshotError> {
        let path = self.dir.join("snapshot.json");
        let json = self.with(|d| {
            d.description = description;
            serde_json::to_string_pretty(d)
        });
        let json = json.map_err(|e| SnapshotError::Json {
            path: path.clone(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
        std::fs::write(&path, json + "\n").map_err(|source| SnapshotError::Io { path, source })?;
        Ok(std::mem::take(
            &mut *self.copy_errors.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

impl Fs for Recorder {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let bytes = RealMachine.read(path)?;
        let dest = under(&self.dir.join("root"), path);
        let copied = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&dest, &bytes));
        if let Err(e) = copied {
            self.copy_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{}: {e}", path.display()));
        }
        Ok(bytes)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let entries = RealMachine.read_dir(path)?;
        self.with(|d| d.dirs.insert(key(path), entries.clone()));
        Ok(entries)
    }

    fn metadata(&self, path: &Path, follow: bool) -> io::Result<FileMeta> {
        let m = RealMachine.metadata(path, follow)?;
        self.with(|d| {
            let map = if follow { &mut d.stat } else { &mut d.lstat };
            map.insert(key(path), m.clone())
        });
        Ok(m)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let t = RealMachine.read_link(path)?;
        self.with(|d| d.links.insert(key(path), key(&t)));
        Ok(t)
    }

    fn host_path(&self, path: &Path) -> Option<PathBuf> {
        Some(path.to_path_buf())
    }
}

impl Commands for Recorder {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CommandOutput> {
        let result = RealMachine.run(program, args);
        let argv = std::iter::once(program)
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let output = result.as_ref().ok().cloned();
        self.with(|d| d.commands.push(RecordedCommand { argv, output }));
        result
    }
}

impl Host for Recorder {
    fn now(&self) -> SystemTime {
        let secs = self.with(|d| d.now).unwrap_or(0).max(0) as u64;
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn local_offset(&self) -> (i64, String) {
        self.with(|d| d.timezone.clone())
            .unwrap_or((0, "UTC".into()))
    }

    fn statfs(&self, path: &Path) -> io::Result<StatFs> {
        let s = RealMachine.statfs(path)?;
        self.with(|d| d.statfs.insert(key(path), s.clone()));
        Ok(s)
    }

    fn interfaces(&self) -> io::Result<Vec<InterfaceAddress>> {
        let list = RealMachine.interfaces()?;
        self.with(|d| d.interfaces = Some(list.clone()));
        Ok(list)
    }

    fn uname(&self) -> io::Result<Uname> {
        let u = RealMachine.uname()?;
        self.with(|d| d.uname = Some(u.clone()));
        Ok(u)
    }

    fn xattrs(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let list = RealMachine.xattrs(path)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let enc = list
            .iter()
            .map(|(n, v)| (n.clone(), b64.encode(v)))
            .collect();
        self.with(|d| d.xattrs.insert(key(path), enc));
        Ok(list)
    }
}

impl Registry for Recorder {
    fn key(&self, path: &str) -> io::Result<RecordedKey> {
        let key = self.registry.key(path)?;
        self.with(|d| d.registry.insert(path.to_string(), key.clone()));
        Ok(key)
    }
}

impl Wmi for Recorder {
    fn query(
        &self,
        namespace: &str,
        wql: &str,
    ) -> io::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        let rows = self.wmi.query(namespace, wql)?;
        self.with(|d| {
            d.wmi
                .entry(namespace.to_string())
                .or_default()
                .insert(wql.to_string(), rows.clone())
        });
        Ok(rows)
    }
}
