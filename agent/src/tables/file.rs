//! `file`: stat(2) of files named by `path` or `directory` (osquery's `file`).
//!
//! `path = ...` stats one file, `path LIKE '/etc/%.conf'` expands one level,
//! `'/var/%%'` walks a tree, and `directory = ...` lists a directory's entries.

use std::path::Path;

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::{self, constrained_paths};

pub static TABLE: TableDef = TableDef {
    name: "file",
    columns: COLUMNS,
    platforms: Platforms::POSIX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").required().index().optimized(),
    col::text("directory").required().optimized(),
    col::text("filename"),
    col::bigint("inode"),
    col::bigint("uid"),
    col::bigint("gid"),
    col::text("mode"),
    col::bigint("device"),
    col::bigint("size"),
    col::integer("block_size"),
    col::bigint("atime"),
    col::bigint("mtime"),
    col::bigint("ctime"),
    col::bigint("btime"),
    col::integer("hard_links"),
    col::integer("symlink"),
    col::text("type"),
    col::text("symlink_target_path"),
    col::text("attributes").on(Platforms::WINDOWS),
    col::text("volume_serial").on(Platforms::WINDOWS),
    col::text("file_id").on(Platforms::WINDOWS),
    col::text("file_version").on(Platforms::WINDOWS),
    col::text("product_version").on(Platforms::WINDOWS),
    col::text("original_filename").on(Platforms::WINDOWS),
    col::text("shortcut_target_path").on(Platforms::WINDOWS),
    col::text("shortcut_target_type").on(Platforms::WINDOWS),
    col::text("shortcut_target_location").on(Platforms::WINDOWS),
    col::text("shortcut_start_in").on(Platforms::WINDOWS),
    col::text("shortcut_run").on(Platforms::WINDOWS),
    col::text("shortcut_comment").on(Platforms::WINDOWS),
    col::text("bsd_flags").on(Platforms::MACOS),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::text("mount_namespace_id")
        .hidden()
        .on(Platforms::LINUX),
];

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for path in constrained_paths(ctx, constraints, "path", Some("directory"))? {
        ctx.check_deadline()?;
        if let Some(row) = stat_row(ctx, &path) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// osquery's `mode`: the permission bits as four octal digits.
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn stat_row(ctx: &ScanContext<'_>, path: &Path) -> Option<Row> {
    let fs = ctx.machine.fs.as_ref();
    let link = fs.metadata(path, false).ok()?;
    let is_link = link.kind == FileKind::Symlink;
    // A dangling symlink still has a row, described by lstat.
    let meta = if is_link {
        fs.metadata(path, true).unwrap_or(link.clone())
    } else {
        link
    };
    let mut r = RowBuilder::new(COLUMNS);
    let text = path.to_string_lossy();
    r.set("path", text.as_ref());
    let directory =
        paths::parent(path).map_or_else(|| "/".to_string(), |p| p.to_string_lossy().into_owned());
    r.set("directory", directory);
    r.set(
        "filename",
        paths::file_name(path).unwrap_or_else(|| text.to_string()),
    );
    r.set("inode", meta.inode as i64);
    r.set("uid", i64::from(meta.uid));
    r.set("gid", i64::from(meta.gid));
    r.set("mode", mode_string(meta.mode));
    r.set("device", meta.device as i64);
    r.set("size", meta.size as i64);
    r.set("block_size", meta.block_size as i64);
    r.set("atime", meta.atime);
    r.set("mtime", meta.mtime);
    r.set("ctime", meta.ctime);
    r.set("btime", meta.btime);
    r.set("hard_links", meta.nlink as i64);
    r.set("symlink", i64::from(is_link));
    r.set("type", meta.kind.osquery_name());
    if is_link && let Ok(target) = fs.canonicalize(path) {
        r.set("symlink_target_path", target.to_string_lossy().into_owned());
    }
    Some(r.build())
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::tables::util::testing::{fixture, text};

    // The `hash` recording (a Linux machine): /srv/app holds config.txt, empty
    // and sub/inner.txt. Its paths print `/`-separated on any host.
    #[test]
    fn paths_of_a_recording_keep_its_spelling() {
        let engine = Engine::new(fixture("hash")).unwrap();
        let r = engine
            .query(
                "SELECT path, directory, filename, type FROM file \
                 WHERE path LIKE '/srv/app/%%' ORDER BY path",
            )
            .unwrap();
        let row = |p: &str, d: &str, f: &str, t: &str| vec![text(p), text(d), text(f), text(t)];
        assert_eq!(
            r.rows,
            vec![
                row("/srv/app/config.txt", "/srv/app", "config.txt", "regular"),
                row("/srv/app/empty", "/srv/app", "empty", "regular"),
                row("/srv/app/sub", "/srv/app", "sub", "directory"),
                row(
                    "/srv/app/sub/inner.txt",
                    "/srv/app/sub",
                    "inner.txt",
                    "regular"
                ),
            ]
        );
        let like = engine
            .query("SELECT path FROM file WHERE path LIKE '/s%/%/%.txt'")
            .unwrap();
        assert_eq!(like.rows, vec![vec![text("/srv/app/config.txt")]]);
        let listed = engine
            .query("SELECT filename FROM file WHERE directory = '/srv/app/sub'")
            .unwrap();
        assert_eq!(listed.rows, vec![vec![text("inner.txt")]]);
        let root = engine
            .query("SELECT path, directory, filename FROM file WHERE path = '/'")
            .unwrap();
        assert_eq!(root.rows, vec![vec![text("/"), text("/"), text("/")]]);
    }
}
