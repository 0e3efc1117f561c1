//! `mdfind`: files Spotlight finds for a query (osquery's `mdfind`).
//!
//! osquery runs each `query = ...` value as a Spotlight query (`MDQuery`) and
//! returns each match's path. Tend runs `mdfind <query>` for each value,
//! which asks Spotlight the same query, and returns one row per line it
//! prints. `query` is required. A query Spotlight rejects, or an `mdfind`
//! that fails, gives no rows. Unlike `MDQuery`, `mdfind` also accepts a bare
//! word, which it searches for as text.

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::darwin;

pub static TABLE: TableDef = TableDef {
    name: "mdfind",
    columns: COLUMNS,
    platforms: Platforms::MACOS,
    generate,
};

pub(crate) static COLUMNS: &[Column] =
    &[col::text("path"), col::text("query").required().optimized()];

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut queries = constraints.eq("query");
    queries.sort();
    queries.dedup();
    let mut rows = Vec::new();
    for query in queries {
        ctx.check_deadline()?;
        let Some(out) = darwin::run(ctx, "/usr/bin/mdfind", &[&query]) else {
            continue;
        };
        if out.status != 0 {
            continue;
        }
        for path in out.stdout.lines().filter(|l| !l.is_empty()) {
            let mut r = RowBuilder::new(COLUMNS);
            r.set("path", path).set("query", query.as_str());
            rows.push(r.build());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    #[test]
    fn spotlight_matches() {
        let engine = Engine::new(fixture("mdfind")).unwrap();
        let r = engine
            .query("SELECT path FROM mdfind WHERE query = 'kMDItemCFBundleIdentifier == \"com.google.Chrome\"'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("/Applications/Google Chrome.app")]]);
        let r = engine
            .query("SELECT COUNT(*) FROM mdfind WHERE query IN ('kMDItemCFBundleIdentifier == \"com.google.Chrome\"', 'kMDItemDisplayName == \"rook.stl\"')")
            .unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(3)]]);
    }

    #[test]
    fn query_is_required() {
        let engine = Engine::new(fixture("mdfind")).unwrap();
        assert!(engine.query("SELECT * FROM mdfind").is_err());
    }
}
