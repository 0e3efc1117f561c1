//! `tend policy lint`: everything an admin should know before signing a policy.
//!
//! Beyond parsing ([`Policy::parse`]), lint prepares every check's query for
//! every OS it names, on an engine for that OS, so a typo in a table or
//! column name is found on the admin's machine rather than on a fleet. It
//! also warns where Tend does not implement a table on an OS the query
//! targets (the check would report `error` there) and where a failing check
//! would have no remediation to show.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Policy, PolicyError, locate};
use crate::os::Machine;
use crate::sql::Engine;
use crate::sql::table::Platform;

/// How bad a finding is: errors make the policy unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// One problem, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A finding at a JSON path of `text`, with its line and column (for
/// checks made outside this module, such as the policy's workflows).
pub fn finding(text: &str, level: Level, path: String, message: String) -> Finding {
    let (line, column) = locate::locate(text, &path).unwrap_or((0, 0));
    Finding {
        level,
        path,
        line,
        column,
        message,
    }
}

/// Lints a policy document. An empty result means the policy is clean.
pub fn lint(text: &str, source_name: &str) -> Vec<Finding> {
    let at = |level, path: String, message: String| {
        let (line, column) = locate::locate(text, &path).unwrap_or((0, 0));
        Finding {
            level,
            path,
            line,
            column,
            message,
        }
    };
    let policy = match Policy::parse_syntax(text, source_name) {
        Ok(p) => p,
        Err(PolicyError::Invalid {
            path,
            line,
            column,
            message,
            ..
        }) => {
            return vec![Finding {
                level: Level::Error,
                path,
                line,
                column,
                message,
            }];
        }
        Err(e @ PolicyError::TooLarge { .. }) => {
            return vec![Finding {
                level: Level::Error,
                path: "$".into(),
                line: 0,
                column: 0,
                message: e.to_string(),
            }];
        }
    };
    let mut out: Vec<Finding> = policy
        .structural_problems()
        .into_iter()
        .map(|(p, m)| at(Level::Error, p, m))
        .collect();

    let mut engines: BTreeMap<&'static str, Result<Engine, String>> = BTreeMap::new();
    for (i, check) in policy.checks.iter().enumerate() {
        for (os, sql) in &check.query {
            let Some(platform) = Platform::parse(os) else {
                continue;
            };
            let path = format!("$.checks[{i}].query.{os}");
            let engine = engines.entry(platform.policy_key()).or_insert_with(|| {
                let mut machine = Machine::real();
                machine.platform = platform;
                Engine::new(machine).map_err(|e| e.to_string())
            });
            let engine = match engine {
                Ok(e) => e,
                Err(e) => {
                    out.push(at(Level::Error, path, e.clone()));
                    continue;
                }
            };
            match engine.tables_read(sql) {
                Err(e) => out.push(at(Level::Error, path, e.to_string())),
                Ok(tables) => {
                    for t in tables {
                        let implemented = crate::tables::all()
                            .iter()
                            .any(|d| d.name == resolve_alias(&t) && d.platforms.contains(platform));
                        if !implemented {
                            out.push(at(
                                Level::Warning,
                                path.clone(),
                                format!(
                                    "table {t} is not implemented by Tend on {platform}: this check will report error there"
                                ),
                            ));
                        }
                    }
                }
            }
            if !check.remediation.contains_key(os) {
                out.push(at(
                    Level::Warning,
                    format!("$.checks[{i}]"),
                    format!(
                        "check {:?} has a query for {os} but no remediation for it",
                        check.id
                    ),
                ));
            }
        }
    }
    out
}

fn resolve_alias(table: &str) -> &str {
    crate::sql::schema::spec()
        .get(table)
        .and_then(|s| s.alias_of.as_deref())
        .unwrap_or(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<Finding> {
        lint(text, "t.json")
            .into_iter()
            .filter(|f| f.level == Level::Error)
            .collect()
    }

    #[test]
    fn bad_queries_are_found_with_their_path() {
        let text = r#"{"version": 1, "serial": 1, "checks": [
 {"id": "a", "name": "A", "severity": "low",
  "query": {"linux": "SELECT * FROM no_such_table", "windows": "SELECT nope FROM time"},
  "remediation": {"linux": "x", "windows": "y"}},
 {"id": "b", "name": "B", "severity": "low",
  "query": {"linux": "DELETE FROM mounts"}, "remediation": {"linux": "x"}}
]}"#;
        let e = errors(text);
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(e[0].path, "$.checks[0].query.linux");
        assert!(
            e[0].message.contains("no such table: no_such_table"),
            "{e:?}"
        );
        assert_eq!(e[0].line, 3);
        assert_eq!(e[1].path, "$.checks[0].query.windows");
        assert!(e[1].message.contains("no such column: nope"), "{e:?}");
        assert_eq!(e[2].path, "$.checks[1].query.linux");
        assert_eq!(e[2].line, 6);
    }

    #[test]
    fn the_default_policy_has_no_errors() {
        let e = errors(crate::policy::default_policy_text());
        assert!(e.is_empty(), "{e:#?}");
    }
}
