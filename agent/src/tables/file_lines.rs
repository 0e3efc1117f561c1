//! `file_lines`: a text file, one row per line. This is Fleet's table, not
//! osquery's: the macadmins osquery extension (`macadmins/osquery-extension`,
//! `tables/fileline`) that Fleet bundles with its osquery packages provides
//! it, so Fleet policies use it.
//!
//! The file is named by `path = ...` or `path LIKE ...` (the extension turns
//! `%` into a glob `*`; Tend expands the pattern as `file` does, one level per
//! `%`). Lines are split as Go's `bufio.ScanLines` splits them: on `\n`, with
//! a trailing `\r` dropped and no row for the empty text after a final
//! newline. A missing file, a directory or an unreadable file has no rows.
//!
//! The extension declares its columns `line, path`; Fleet's schema documents
//! `path` as required, which Tend enforces as it does for osquery's tables.

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::constrained_paths;

pub static TABLE: TableDef = TableDef {
    name: "file_lines",
    columns: COLUMNS,
    platforms: Platforms::ALL,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[col::text("line"), col::text("path").required().index()];

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut rows = Vec::new();
    for path in constrained_paths(ctx, constraints, "path", None)? {
        ctx.check_deadline()?;
        if fs
            .metadata(&path, true)
            .map_or(true, |m| m.kind == FileKind::Dir)
        {
            continue;
        }
        let Ok(bytes) = fs.read(&path) else { continue };
        let text = path.to_string_lossy().into_owned();
        let mut r = RowBuilder::new(COLUMNS);
        for line in split_lines(&bytes) {
            r.set("line", String::from_utf8_lossy(line).into_owned())
                .set("path", text.as_str());
            rows.push(r.take());
        }
    }
    Ok(rows)
}

/// Splits like Go's `bufio.ScanLines`: on `\n`, dropping one `\r` before it;
/// a last line without a newline counts, the empty rest after one does not.
pub fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        out.push(line.strip_suffix(b"\r").unwrap_or(line));
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn splits_like_go_scan_lines() {
        let lines = split_lines(b"a\r\nb\n\nc");
        assert_eq!(lines, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(split_lines(b"x\n"), [&b"x"[..]]);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn one_row_per_line() {
        let engine = Engine::new(fixture("file_lines")).unwrap();
        let r = engine
            .query("SELECT line FROM file_lines WHERE path = '/etc/hosts'")
            .unwrap();
        let lines: Vec<&Value> = r.rows.iter().map(|row| &row[0]).collect();
        assert_eq!(
            lines,
            [
                &Value::Text("127.0.0.1\tlocalhost".into()),
                &Value::Text("127.0.1.1\ttend-laptop".into()),
                &Value::Text("".into()),
                &Value::Text("::1\tlocalhost ip6-localhost ip6-loopback".into()),
            ]
        );
    }

    #[test]
    fn like_and_where_on_line() {
        let engine = Engine::new(fixture("file_lines")).unwrap();
        let r = engine
            .query(
                "SELECT COUNT(*) FROM file_lines WHERE path LIKE '/etc/ssh/sshd_config.d/%.conf' \
                 AND line = 'PasswordAuthentication no'",
            )
            .unwrap();
        assert_eq!(r.rows[0][0], Value::Integer(1));
    }

    #[test]
    fn missing_files_and_directories_have_no_rows() {
        let engine = Engine::new(fixture("file_lines")).unwrap();
        let r = engine
            .query("SELECT * FROM file_lines WHERE path IN ('/etc/nope', '/etc/ssh')")
            .unwrap();
        assert!(r.rows.is_empty());
    }

    #[test]
    fn requires_a_path() {
        let engine = Engine::new(fixture("file_lines")).unwrap();
        assert!(engine.query("SELECT * FROM file_lines").is_err());
    }

    #[test]
    fn reads_this_machine() {
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query(
                "SELECT COUNT(*) FROM file_lines WHERE path = '/etc/passwd' AND line LIKE 'root:%'",
            )
            .unwrap();
        assert_eq!(r.rows[0][0], Value::Integer(1));
    }
}
