//! Every table Tend implements has osquery's exact name, columns, types and
//! flags, as osquery's spec gives them (`agent/data/osquery-schema.json`, a
//! compact copy of `shared/osquery/tables.json`).

use tend::sql::schema::{SpecColumn, same_column, spec};
use tend::tables;

/// Tables that are not osquery's (Fleet's extension tables).
const NOT_OSQUERY: &[&str] = &["file_lines"];

#[test]
fn every_table_matches_osquery_spec() {
    let spec = spec();
    assert!(
        spec.len() > 280,
        "the embedded spec has every osquery table"
    );
    let mut problems = Vec::new();
    for t in tables::all() {
        let Some(s) = spec.get(t.name) else {
            if !NOT_OSQUERY.contains(&t.name) {
                problems.push(format!("{}: not an osquery table", t.name));
            }
            continue;
        };
        let ours: Vec<SpecColumn> = t.columns.iter().map(SpecColumn::from).collect();
        if ours.len() != s.columns.len() {
            problems.push(format!(
                "{}: {} columns, osquery has {}",
                t.name,
                ours.len(),
                s.columns.len()
            ));
        }
        for (i, (a, b)) in t.columns.iter().zip(&s.columns).enumerate() {
            if !same_column(a, b) {
                problems.push(format!("{}: column {i}: ours {a:?}, osquery {b:?}", t.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn table_names_are_unique() {
    let mut names: Vec<&str> = tables::all().iter().map(|t| t.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

#[test]
fn every_osquery_table_is_declared_on_every_platform() {
    use tend::os::Machine;
    use tend::sql::Engine;
    use tend::sql::table::Platform;
    for platform in Platform::ALL {
        let mut machine = Machine::real();
        machine.platform = platform;
        let engine = Engine::new(machine).unwrap();
        for name in spec().keys() {
            engine
                .prepare(&format!("SELECT * FROM \"{name}\""))
                .unwrap_or_else(|e| panic!("{name} on {platform}: {e}"));
        }
    }
}
