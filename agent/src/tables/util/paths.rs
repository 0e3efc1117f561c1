//! Paths of the machine being read, and osquery's path patterns for `file`,
//! `hash` and friends.
//!
//! `path = '/etc/passwd'` names one file; `directory = '/etc'` names its
//! entries; `path LIKE '/etc/%.conf'` expands one level per `%` segment and
//! `path LIKE '/var/%%'` walks the whole tree below, as osquery's globbing
//! does.
//!
//! The machine being read need not be this host: IT replays a Linux or macOS
//! user's recording on a Windows laptop, and a test may replay a Windows
//! recording on Linux. `Path::join` and `Path::parent` follow the host's
//! rules (on Windows, `join` inserts `\`), so a table that prints a path it
//! built, or compares it with a constraint, builds it with [`join`],
//! [`parent`] and [`file_name`] here, which follow the recorded machine's
//! rules: a path with a drive (`C:`) or `\\server` prefix is a Windows
//! path, anything else a Unix path, `/`-separated. Where the path's style is
//! the host's they are exactly `Path`'s methods.

use std::path::{Path, PathBuf};

use super::sql_like;
use crate::os::{FileKind, Fs};
use crate::sql::table::{Constraints, ScanContext, TableError};

/// How the machine a path belongs to spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Unix,
    Windows,
}

impl Style {
    /// Windows paths start with a drive (`C:`) or `\\`; anything else is a Unix path.
    fn of(text: &str) -> Style {
        let b = text.as_bytes();
        if (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || text.starts_with("\\\\")
        {
            Style::Windows
        } else {
            Style::Unix
        }
    }

    /// Whether this host's `Path` follows the same rules.
    fn is_native(self) -> bool {
        (self == Style::Windows) == cfg!(windows)
    }

    fn separator(self) -> char {
        match self {
            Style::Unix => '/',
            Style::Windows => '\\',
        }
    }

    /// Whether `c` separates components. Windows takes both; a Unix path
    /// read on a Windows host may hold `\` too, where the host's `Path`
    /// put one (the recording's keys treat it as `/`, see `os::snapshot`).
    fn is_separator(self, c: char) -> bool {
        c == '/' || (c == '\\' && (self == Style::Windows || cfg!(windows)))
    }

    /// The length of the root: `/`, `C:\`, `C:` or `\\server\share\`
    /// (0 for a relative path).
    fn root_len(self, text: &str) -> usize {
        match self {
            Style::Unix => usize::from(text.starts_with('/')),
            Style::Windows => {
                if let Some(unc) = text.strip_prefix("\\\\") {
                    // The server, the share and the separator after it.
                    let mut seps = unc.match_indices(|c| self.is_separator(c));
                    match (seps.next(), seps.next()) {
                        (Some(_), Some((share_end, _))) => 2 + share_end + 1,
                        _ => text.len(),
                    }
                } else {
                    let b = text.as_bytes();
                    if b.len() > 2 && self.is_separator(char::from(b[2])) {
                        3
                    } else {
                        2
                    }
                }
            }
        }
    }
}

/// `dir` joined with `name` (a file name, or a relative path with `/`), as
/// `dir`'s machine joins paths: `Path::join` where that is this host's rule.
/// An absolute `name` replaces `dir`, as with `Path::join`.
pub fn join(dir: &Path, name: impl AsRef<Path>) -> PathBuf {
    let name = name.as_ref();
    let dir_text = dir.to_string_lossy();
    let style = Style::of(&dir_text);
    if style.is_native() {
        return dir.join(name);
    }
    let sep = style.separator();
    let name: String = name
        .to_string_lossy()
        .chars()
        .map(|c| if style.is_separator(c) { sep } else { c })
        .collect();
    match style {
        Style::Unix if name.starts_with('/') => return PathBuf::from(name),
        Style::Windows if Style::of(&name) == Style::Windows => return PathBuf::from(name),
        // `\Windows` on `C:\Users`: `C:\Windows`.
        Style::Windows if name.starts_with(sep) => {
            let drive = style.root_len(&dir_text).min(2);
            return PathBuf::from(format!("{}{name}", &dir_text[..drive]));
        }
        _ => {}
    }
    if dir_text.is_empty() || dir_text.ends_with(|c| style.is_separator(c)) {
        PathBuf::from(format!("{dir_text}{name}"))
    } else {
        PathBuf::from(format!("{dir_text}{sep}{name}"))
    }
}

/// The text of `path` without its root and trailing separators, and the root's length.
fn trimmed(text: &str, style: Style) -> (usize, &str) {
    let root = style.root_len(text);
    (
        root,
        text[root..].trim_end_matches(|c| style.is_separator(c)),
    )
}

/// The folder holding `path`, as `Path::parent` gives it on `path`'s machine:
/// `None` for a root or an empty path.
pub fn parent(path: &Path) -> Option<PathBuf> {
    let text = path.to_string_lossy();
    let style = Style::of(&text);
    if style.is_native() {
        return path.parent().map(Path::to_path_buf);
    }
    let (root, rest) = trimmed(&text, style);
    if rest.is_empty() {
        return None;
    }
    let above = rest.rfind(|c| style.is_separator(c)).map_or("", |i| {
        rest[..i].trim_end_matches(|c| style.is_separator(c))
    });
    Some(PathBuf::from(format!("{}{above}", &text[..root])))
}

/// The last component of `path`, as `Path::file_name` gives it on `path`'s
/// machine: `None` for a root, an empty path or one ending in `..`.
pub fn file_name(path: &Path) -> Option<String> {
    let text = path.to_string_lossy();
    let style = Style::of(&text);
    if style.is_native() {
        return path.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    let (_, rest) = trimmed(&text, style);
    let name = rest.rsplit(|c| style.is_separator(c)).next().unwrap_or("");
    (!name.is_empty() && name != "..").then(|| name.to_string())
}

/// The most paths one pattern may expand to.
pub const MAX_EXPANSION: usize = 100_000;

/// Expands an osquery LIKE path pattern against the filesystem. The pattern
/// is a path of the machine being read: `/`-separated from `/` on Unix,
/// from the drive (`C:\`) on Windows, where `\` and `/` both separate.
pub fn expand_like(ctx: &ScanContext<'_>, pattern: &str) -> Result<Vec<PathBuf>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let recursive = pattern.ends_with("%%");
    let base_pattern = if recursive {
        &pattern[..pattern.len() - 2]
    } else {
        pattern
    };
    let style = Style::of(base_pattern);
    let root_len = style.root_len(base_pattern);
    let root = match style {
        Style::Unix => "/".to_string(),
        Style::Windows => {
            let root = &base_pattern[..root_len];
            if root.ends_with(|c| style.is_separator(c)) {
                root.to_string()
            } else {
                format!("{root}\\")
            }
        }
    };
    let segments: Vec<&str> = base_pattern[root_len..]
        .split(|c| style.is_separator(c))
        .filter(|s| !s.is_empty())
        .collect();
    let mut current = vec![PathBuf::from(root)];
    let last = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let is_last = i + 1 == last;
        let mut next = Vec::new();
        for dir in &current {
            if seg.contains('%') || seg.contains('_') {
                let Ok(entries) = fs.read_dir(dir) else {
                    continue;
                };
                for e in entries {
                    if !sql_like(seg, &e.name) {
                        continue;
                    }
                    let p = join(dir, &e.name);
                    if is_last || is_dir(fs, &p) {
                        next.push(p);
                    }
                }
            } else {
                next.push(join(dir, seg));
            }
        }
        current = next;
        ctx.check_deadline()?;
    }
    if !recursive {
        current.retain(|p| fs.exists(p));
        return Ok(current);
    }
    // `prefix%%`: everything below each match of `prefix%` (osquery's recursive glob).
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = if base_pattern.ends_with(|c| style.is_separator(c)) {
        // "/etc/%%": everything below /etc.
        current
    } else {
        // "/var/lo%%": entries of the parent whose names start with the last segment.
        let mut starts = Vec::new();
        for p in current {
            let (Some(parent), Some(name)) = (parent(&p), file_name(&p)) else {
                continue;
            };
            let prefix = format!("{name}%");
            if let Ok(entries) = fs.read_dir(&parent) {
                for e in entries.into_iter().filter(|e| sql_like(&prefix, &e.name)) {
                    starts.push(join(&parent, e.name));
                }
            }
        }
        out.extend(starts.iter().cloned());
        starts
    };
    while let Some(dir) = stack.pop() {
        ctx.check_deadline()?;
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = join(&dir, &e.name);
            if e.kind == FileKind::Dir {
                stack.push(p.clone());
            }
            out.push(p);
            if out.len() > MAX_EXPANSION {
                return Err(TableError::other(
                    "file",
                    format!("{pattern} matches more than {MAX_EXPANSION} paths"),
                ));
            }
        }
    }
    Ok(out)
}

fn is_dir(fs: &dyn Fs, p: &Path) -> bool {
    fs.metadata(p, true).is_ok_and(|m| m.kind == FileKind::Dir)
}

/// The paths a scan of a path-keyed table should visit, from `path`
/// (`=` and `LIKE`) and `directory` (`=` and `LIKE`) constraints.
pub fn constrained_paths(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
    path_column: &str,
    directory_column: Option<&str>,
) -> Result<Vec<PathBuf>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let (eq, like) = constraints.eq_or_like(path_column);
    let mut out: Vec<PathBuf> = eq.iter().map(PathBuf::from).collect();
    for pattern in like {
        out.extend(expand_like(ctx, &pattern)?);
    }
    if let Some(dcol) = directory_column {
        let (deq, dlike) = constraints.eq_or_like(dcol);
        let mut dirs: Vec<PathBuf> = deq.iter().map(PathBuf::from).collect();
        for pattern in dlike {
            dirs.extend(
                expand_like(ctx, &pattern)?
                    .into_iter()
                    .filter(|p| is_dir(fs, p)),
            );
        }
        for d in dirs {
            if let Ok(entries) = fs.read_dir(&d) {
                out.extend(entries.into_iter().map(|e| join(&d, e.name)));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: impl AsRef<Path>) -> String {
        p.as_ref().to_string_lossy().into_owned()
    }

    // The same answers on every host: these are the recorded machine's paths.
    #[test]
    fn joins_unix_paths_with_slashes() {
        assert_eq!(s(join(Path::new("/etc"), "passwd")), "/etc/passwd");
        assert_eq!(s(join(Path::new("/srv/app/"), "x")), "/srv/app/x");
        assert_eq!(s(join(Path::new("/"), "etc")), "/etc");
        assert_eq!(
            s(join(Path::new("/Users/alice"), "Library/LaunchAgents")),
            "/Users/alice/Library/LaunchAgents"
        );
        assert_eq!(s(join(Path::new("/home/a/Extensions"), "/opt/x")), "/opt/x");
        assert_eq!(s(join(Path::new(""), "a")), "a");
    }

    #[test]
    fn joins_windows_paths_with_backslashes() {
        assert_eq!(s(join(Path::new("C:\\Users"), "alice")), "C:\\Users\\alice");
        assert_eq!(s(join(Path::new("C:\\"), "Windows")), "C:\\Windows");
        assert_eq!(s(join(Path::new("C:\\Users"), "D:\\x")), "D:\\x");
    }

    #[test]
    fn splits_unix_paths() {
        let parent = |p: &str| parent(Path::new(p)).map(s);
        assert_eq!(parent("/etc/passwd").as_deref(), Some("/etc"));
        assert_eq!(parent("/etc/ssh/").as_deref(), Some("/etc"));
        assert_eq!(parent("/etc").as_deref(), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(parent(""), None);
        let name = |p: &str| file_name(Path::new(p));
        assert_eq!(name("/etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(name("/etc/ssh/").as_deref(), Some("ssh"));
        assert_eq!(name("/"), None);
        assert_eq!(name("/etc/.."), None);
    }

    #[test]
    fn splits_windows_paths() {
        let parent = |p: &str| parent(Path::new(p)).map(s);
        assert_eq!(parent("C:\\Users\\alice").as_deref(), Some("C:\\Users"));
        assert_eq!(parent("C:\\Users").as_deref(), Some("C:\\"));
        assert_eq!(parent("C:\\"), None);
        assert_eq!(
            file_name(Path::new("C:\\Users\\alice")).as_deref(),
            Some("alice")
        );
        assert_eq!(file_name(Path::new("C:\\")), None);
    }
}
