//! `rpm_packages`: RPM packages, from `rpm -qa` (osquery's `rpm_packages`).
//!
//! osquery reads the rpm database through librpm; Tend asks the `rpm` tool
//! for the same header tags with a query format (one tab-separated line per
//! package) instead of linking librpm. A tag the header lacks prints as
//! `(none)` and becomes empty, as librpm's missing tags are in osquery (so a
//! missing `epoch` is NULL). Where `rpm` is not installed there are no rows.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "rpm_packages",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name").index().optimized(),
    col::text("version").index(),
    col::text("release").index(),
    col::text("source"),
    col::bigint("size"),
    col::text("sha1"),
    col::text("arch").index(),
    col::integer("epoch").index(),
    col::integer("install_time"),
    col::text("vendor"),
    col::text("package_group"),
    col::integer("pid_with_namespace")
        .hidden()
        .additional()
        .on(Platforms::LINUX),
    col::text("mount_namespace_id")
        .hidden()
        .on(Platforms::LINUX),
];

const TABLE_NAME: &str = "rpm_packages";

/// The columns, in query-format order, with the rpm tag that fills each.
const TAGS: &[(&str, &str)] = &[
    ("name", "NAME"),
    ("version", "VERSION"),
    ("release", "RELEASE"),
    ("source", "SOURCERPM"),
    ("size", "SIZE"),
    ("sha1", "SHA1HEADER"),
    ("arch", "ARCH"),
    ("epoch", "EPOCH"),
    ("install_time", "INSTALLTIME"),
    ("vendor", "VENDOR"),
    ("package_group", "GROUP"),
];

/// `%{NAME}\t%{VERSION}\t...\n`, the `--queryformat` argument.
pub fn query_format() -> String {
    let tags: Vec<String> = TAGS.iter().map(|(_, tag)| format!("%{{{tag}}}")).collect();
    format!("{}\\n", tags.join("\\t"))
}

/// Parses `rpm -qa --qf` output into one value list per package, in `TAGS` order.
pub fn parse_output(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let fields: Vec<String> = line
                .split('\t')
                .map(|f| {
                    if f == "(none)" {
                        String::new()
                    } else {
                        f.to_string()
                    }
                })
                .collect();
            (fields.len() == TAGS.len()).then_some(fields)
        })
        .collect()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let qf = query_format();
    let out = match ctx.machine.commands.run("rpm", &["-qa", "--qf", &qf]) {
        Ok(out) => out,
        // No rpm on this machine: no rpm database to list.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TableError::io(TABLE_NAME, "running rpm -qa", e)),
    };
    if out.status != 0 {
        return Err(TableError::other(
            TABLE_NAME,
            format!(
                "rpm -qa exited with status {}: {}",
                out.status,
                out.stderr.trim()
            ),
        ));
    }
    Ok(parse_output(&out.stdout)
        .into_iter()
        .map(|fields| {
            let mut r = RowBuilder::new(COLUMNS);
            for ((column, _), value) in TAGS.iter().zip(fields) {
                r.set(column, value);
            }
            r.set("pid_with_namespace", 0);
            r.build()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::Value;
    use crate::tables::util::testing::fixture;

    #[test]
    fn the_query_format_names_every_tag() {
        assert_eq!(
            query_format(),
            "%{NAME}\\t%{VERSION}\\t%{RELEASE}\\t%{SOURCERPM}\\t%{SIZE}\\t%{SHA1HEADER}\\t%{ARCH}\\t%{EPOCH}\\t%{INSTALLTIME}\\t%{VENDOR}\\t%{GROUP}\\n"
        );
    }

    #[test]
    fn reads_a_recorded_rocky() {
        let engine = crate::sql::Engine::new(fixture("rpm_packages")).unwrap();
        let res = engine.query("SELECT * FROM rpm_packages").unwrap();
        assert_eq!(res.rows.len(), 3);
        let ssl = engine
            .query("SELECT * FROM rpm_packages WHERE name = 'openssl'")
            .unwrap();
        let get = |c: &str| ssl.get(0, c).cloned();
        assert_eq!(get("version"), Some(Value::Text("3.0.7".into())));
        assert_eq!(get("release"), Some(Value::Text("25.el9_3".into())));
        assert_eq!(
            get("source"),
            Some(Value::Text("openssl-3.0.7-25.el9_3.src.rpm".into()))
        );
        assert_eq!(get("size"), Some(Value::Integer(1_820_117)));
        assert_eq!(
            get("sha1"),
            Some(Value::Text(
                "6a1c3d1e7b0f5c2d9e8a4b3c2d1e0f9a8b7c6d5e".into()
            ))
        );
        assert_eq!(get("arch"), Some(Value::Text("x86_64".into())));
        assert_eq!(get("epoch"), Some(Value::Integer(1)));
        assert_eq!(get("install_time"), Some(Value::Integer(1_701_857_112)));
        assert_eq!(
            get("vendor"),
            Some(Value::Text("Rocky Enterprise Software Foundation".into()))
        );
        assert_eq!(
            get("package_group"),
            Some(Value::Text("Unspecified".into()))
        );
        let bash = engine
            .query("SELECT epoch FROM rpm_packages WHERE name = 'bash'")
            .unwrap();
        assert_eq!(bash.get(0, "epoch"), Some(&Value::Null));
        let key = engine
            .query("SELECT source, arch FROM rpm_packages WHERE name = 'gpg-pubkey'")
            .unwrap();
        assert_eq!(key.get(0, "source"), Some(&Value::Text(String::new())));
        assert_eq!(key.get(0, "arch"), Some(&Value::Text(String::new())));
    }

    #[test]
    fn no_rpm_means_no_rows() {
        // The recording of a Debian machine without rpm has no such command.
        let engine = crate::sql::Engine::new(fixture("uptime")).unwrap();
        assert!(
            engine
                .query("SELECT * FROM rpm_packages")
                .unwrap()
                .rows
                .is_empty()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_on_this_machine() {
        let engine = crate::sql::Engine::new(crate::os::Machine::real()).unwrap();
        // This Debian machine has no rpm database; the query must still succeed.
        engine.query("SELECT name FROM rpm_packages").unwrap();
    }
}
