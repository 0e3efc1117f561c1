//! `hash`: MD5, SHA-1 and SHA-256 of regular files (osquery's `hash`).
//!
//! Files are named as in `file`: `path = ...`, `path LIKE ...` (one level per
//! `%`, a tree with `%%`) or `directory = ...` / `LIKE` (the regular files in
//! that directory). Directories and other non-regular paths have no row.
//!
//! As in osquery, `directory` is the constraint's text for files found through
//! it and the parent for files named by `path`, and a file larger than
//! osquery's `read_max` (50 MiB) or one that cannot be read still has a row,
//! with empty digests. The file is read through the machine seam and fed to
//! the three digests in chunks, checking the query's deadline between them.

use std::path::{Path, PathBuf};

use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::{self, constrained_paths, expand_like};

pub static TABLE: TableDef = TableDef {
    name: "hash",
    columns: COLUMNS,
    platforms: Platforms::ALL,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").required().index().optimized(),
    col::text("directory").required().optimized(),
    col::text("md5"),
    col::text("sha1"),
    col::text("sha256"),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::text("mount_namespace_id")
        .hidden()
        .on(Platforms::LINUX),
];

/// osquery's `read_max` default: larger files are not hashed.
pub const READ_MAX: u64 = 50 * 1024 * 1024;

/// How much is hashed between two deadline checks.
const CHUNK: usize = 1 << 20;

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut rows = Vec::new();
    for path in constrained_paths(ctx, constraints, "path", None)? {
        ctx.check_deadline()?;
        if is_regular(ctx, &path) {
            let directory = paths::parent(&path)
                .map_or_else(|| "/".to_string(), |p| p.to_string_lossy().into_owned());
            rows.push(hash_row(ctx, &path, directory)?);
        }
    }
    // Directories, listed one level deep; each row keeps the directory as given.
    let (eq, like) = constraints.eq_or_like("directory");
    let mut dirs: Vec<(PathBuf, String)> = eq.into_iter().map(|d| (PathBuf::from(&d), d)).collect();
    for pattern in like {
        for d in expand_like(ctx, &pattern)? {
            let text = d.to_string_lossy().into_owned();
            dirs.push((d, text));
        }
    }
    for (dir, text) in dirs {
        if !fs
            .metadata(&dir, true)
            .is_ok_and(|m| m.kind == FileKind::Dir)
        {
            continue;
        }
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            ctx.check_deadline()?;
            let path = paths::join(&dir, &e.name);
            if is_regular(ctx, &path) {
                rows.push(hash_row(ctx, &path, text.clone())?);
            }
        }
    }
    Ok(rows)
}

/// Whether `path` is a regular file, symlinks followed (boost's `is_regular_file`).
fn is_regular(ctx: &ScanContext<'_>, path: &Path) -> bool {
    ctx.machine
        .fs
        .metadata(path, true)
        .is_ok_and(|m| m.kind == FileKind::File)
}

fn hash_row(ctx: &ScanContext<'_>, path: &Path, directory: String) -> Result<Row, TableError> {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("path", path.to_string_lossy().into_owned())
        .set("directory", directory);
    let size = ctx.machine.fs.metadata(path, true).map_or(0, |m| m.size);
    let digests = if size > READ_MAX {
        None
    } else {
        match ctx.machine.fs.read(path) {
            Ok(bytes) => Some(Digests::of(ctx, &bytes)?),
            Err(_) => None,
        }
    };
    let d = digests.unwrap_or_default();
    r.set("md5", d.md5)
        .set("sha1", d.sha1)
        .set("sha256", d.sha256);
    Ok(r.build())
}

/// The three digests as lowercase hex; empty when the file was not hashed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

impl Digests {
    /// Hashes `bytes` chunk by chunk, stopping when the query's time is up.
    fn of(ctx: &ScanContext<'_>, bytes: &[u8]) -> Result<Digests, TableError> {
        let mut md5 = Md5::new();
        let mut sha1 = Sha1::new();
        let mut sha256 = Sha256::new();
        for chunk in bytes.chunks(CHUNK) {
            ctx.check_deadline()?;
            md5.update(chunk);
            sha1.update(chunk);
            sha256.update(chunk);
        }
        Ok(Digests {
            md5: hex(&md5.finalize()),
            sha1: hex(&sha1.finalize()),
            sha256: hex(&sha256.finalize()),
        })
    }
}

/// Lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    fn text(v: Option<&Value>) -> String {
        match v {
            Some(Value::Text(s)) => s.clone(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn hex_is_lowercase_two_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
    }

    #[test]
    fn hashes_a_file_by_path() {
        let engine = Engine::new(fixture("hash")).unwrap();
        let r = engine
            .query("SELECT * FROM hash WHERE path = '/etc/hostname'")
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(text(r.get(0, "directory")), "/etc");
        // `printf 'tend-laptop\n' | md5sum` and friends.
        assert_eq!(text(r.get(0, "md5")), "d1851260194c42ef4625806739b60d0c");
        assert_eq!(
            text(r.get(0, "sha1")),
            "40c361532cd1dfca7db9eb7b8b628060bf741aff"
        );
        assert_eq!(
            text(r.get(0, "sha256")),
            "0726cbcff275c29da13c00d49725143b5b568b0fc99a7051f3381f420a4cac80"
        );
    }

    #[test]
    fn lists_regular_files_of_a_directory() {
        let engine = Engine::new(fixture("hash")).unwrap();
        let r = engine
            .query(
                "SELECT path, directory, md5 FROM hash WHERE directory = '/srv/app/' ORDER BY path",
            )
            .unwrap();
        let paths: Vec<String> = (0..r.rows.len()).map(|i| text(r.get(i, "path"))).collect();
        // `sub` is a directory: no row.
        assert_eq!(paths, ["/srv/app/config.txt", "/srv/app/empty"]);
        // The directory is kept as the query gave it, trailing slash and all.
        assert_eq!(text(r.get(0, "directory")), "/srv/app/");
        assert_eq!(text(r.get(1, "md5")), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn directories_and_missing_files_have_no_row() {
        let engine = Engine::new(fixture("hash")).unwrap();
        let r = engine
            .query("SELECT * FROM hash WHERE path IN ('/srv/app/sub', '/no/such/file')")
            .unwrap();
        assert!(r.rows.is_empty());
    }

    #[test]
    fn like_expands_one_level() {
        let engine = Engine::new(fixture("hash")).unwrap();
        let r = engine
            .query("SELECT path FROM hash WHERE path LIKE '/srv/app/%.txt'")
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(text(r.get(0, "path")), "/srv/app/config.txt");
    }

    #[test]
    fn agrees_with_sha256sum_on_this_machine() {
        let Ok(out) = std::process::Command::new("sha256sum")
            .arg("/etc/passwd")
            .output()
        else {
            return;
        };
        let expected = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT sha256 FROM hash WHERE path = '/etc/passwd'")
            .unwrap();
        assert_eq!(text(r.get(0, "sha256")), expected);
    }
}
