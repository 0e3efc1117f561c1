//! osquery's path patterns for `file`, `hash` and friends.
//!
//! `path = '/etc/passwd'` names one file; `directory = '/etc'` names its
//! entries; `path LIKE '/etc/%.conf'` expands one level per `%` segment and
//! `path LIKE '/var/%%'` walks the whole tree below, as osquery's globbing
//! does.

use std::path::{Path, PathBuf};

use super::sql_like;
use crate::os::{FileKind, Fs};
use crate::sql::table::{Constraints, ScanContext, TableError};

/// The most paths one pattern may expand to.
pub const MAX_EXPANSION: usize = 100_000;

/// Expands an osquery LIKE path pattern against the filesystem.
pub fn expand_like(ctx: &ScanContext<'_>, pattern: &str) -> Result<Vec<PathBuf>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let recursive = pattern.ends_with("%%");
    let base_pattern = if recursive {
        &pattern[..pattern.len() - 2]
    } else {
        pattern
    };
    let segments: Vec<&str> = base_pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut current = vec![PathBuf::from("/")];
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
                    if sql_like(seg, &e.name) && (is_last || is_dir(fs, &dir.join(&e.name))) {
                        next.push(dir.join(&e.name));
                    }
                }
            } else {
                next.push(dir.join(seg));
            }
        }
        current = next;
        ctx.check_deadline()?;
    }
    if base_pattern.ends_with('/') || (recursive && segments.is_empty()) {
        // "/etc/%%" splits as ["etc"] with the trailing slash: walk below it.
    }
    if !recursive {
        current.retain(|p| fs.exists(p));
        return Ok(current);
    }
    // `prefix%%`: everything below each match of `prefix%` (osquery's recursive glob).
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = if base_pattern.ends_with('/') {
        current
    } else {
        // "/var/lo%%": entries of the parent whose names start with the last segment.
        let mut starts = Vec::new();
        for p in current {
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
                continue;
            };
            let prefix = format!("{}%", name.to_string_lossy());
            if let Ok(entries) = fs.read_dir(parent) {
                for e in entries.into_iter().filter(|e| sql_like(&prefix, &e.name)) {
                    starts.push(parent.join(e.name));
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
            let p = dir.join(&e.name);
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
                out.extend(entries.into_iter().map(|e| d.join(e.name)));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
