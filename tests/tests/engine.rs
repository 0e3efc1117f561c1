//! The SQL engine as a user meets it through `tend query`: hostile and broken
//! queries get clear errors, osquery's output formats hold, the seed's
//! queries prepare on every platform.

use tend_e2e::{seed_queries, stderr, stdout, tend};

fn error_of(sql: &str) -> String {
    let o = tend(&["query", sql]);
    assert_eq!(o.status.code(), Some(2), "{sql}: {}", stdout(&o));
    stderr(&o)
}

#[test]
fn bad_sql_is_a_clear_error() {
    assert!(error_of("SELEC 1").contains("syntax error"));
}

#[test]
fn unknown_table_is_named() {
    assert!(error_of("SELECT * FROM no_such_table").contains("no such table: no_such_table"));
}

#[test]
fn missing_required_constraint_names_the_columns() {
    let e = error_of("SELECT * FROM file");
    assert!(e.contains("required column"), "{e}");
    assert!(e.contains("path or directory"), "{e}");
}

#[test]
fn writes_and_attach_are_refused() {
    assert!(error_of("DELETE FROM mounts").contains("may not be modified"));
    assert!(error_of("ATTACH DATABASE '/tmp/x.db' AS x").contains("ATTACH is not allowed"));
    assert!(error_of("CREATE TEMP TABLE t(x)").contains("TEMP"));
    assert!(
        error_of("PRAGMA writable_schema = 1").contains("PRAGMA writable_schema is not allowed")
    );
    assert!(error_of("SELECT load_extension('/tmp/evil.so')").contains("load_extension"));
}

#[test]
fn several_statements_are_refused() {
    assert!(error_of("SELECT 1; SELECT 2").contains("one SQL statement"));
}

#[test]
fn a_table_of_another_platform_says_where_it_exists() {
    let e = error_of("SELECT * FROM bitlocker_info");
    assert!(e.contains("bitlocker_info"), "{e}");
    assert!(e.contains("windows"), "{e}");
}

#[test]
fn json_output_matches_osqueryi() {
    let o = tend(&[
        "query",
        "SELECT 1 AS a, 'x' AS b, NULL AS c",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "[\n  {\"a\":\"1\",\"b\":\"x\",\"c\":\"\"}\n]\n");
}

#[test]
fn every_seed_query_prepares() {
    // `tend policy lint` prepares per platform; here each seed query is
    // checked on a policy of its own so a failure names the query.
    let queries = seed_queries();
    assert_eq!(queries.len(), 8, "the seed has eight queries");
    for (title, sql) in queries {
        let os = if title.contains("Windows") {
            "windows"
        } else if title.contains("macOS and Linux") {
            "linux"
        } else if title.contains("macOS") {
            "darwin"
        } else {
            "linux"
        };
        let policy = serde_json::json!({
            "version": 1, "serial": 1,
            "checks": [{"id": "c", "name": title, "severity": "low",
                        "query": {os: sql}, "remediation": {os: "fix"}}]
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        let o = tend(&["policy", "lint", path.to_str().unwrap(), "--format", "json"]);
        let findings: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let errors: Vec<_> = findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["level"] == "error")
            .collect();
        assert!(errors.is_empty(), "{title}: {errors:?}");
    }
}
