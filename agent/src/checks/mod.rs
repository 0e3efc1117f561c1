//! Evaluating a check: its query on this machine → passed, failed, error or
//! not applicable, with the evidence.
//!
//! The pass rule is Fleet's, extended (DESIGN.md, "A check"): when the result
//! has a column `passed`, the check passes when that column is truthy (1,
//! "1", true) in the first row; otherwise it passes when the query returns at
//! least one row. A query that errors is `error`, and a check with no query
//! for this OS is `not applicable` — never `passed`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::policy::{Check, Policy};
use crate::sql::{Engine, QueryResult, Value};

/// The outcome of one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Error,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::NotApplicable => "not applicable",
        }
    }
}

/// A check's result with what it was based on.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// The first row of the result, column → value (for passed and failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Map<String, serde_json::Value>>,
    /// Why the check could not be evaluated (for error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How to fix it on this OS (for failed and error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Whether a value counts as true: a non-zero number, or text that reads as one
/// or as `true`/`yes`.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Integer(i) => *i != 0,
        Value::Real(f) => *f != 0.0,
        Value::Text(s) => {
            let s = s.trim();
            s.eq_ignore_ascii_case("true")
                || s.eq_ignore_ascii_case("yes")
                || s.parse::<f64>().is_ok_and(|f| f != 0.0)
        }
        Value::Null | Value::Blob(_) => false,
    }
}

/// Applies the pass rule to a query's result.
pub fn passes(result: &QueryResult) -> bool {
    match result.columns.iter().position(|c| c == "passed") {
        Some(i) => result.rows.first().is_some_and(|r| truthy(&r[i])),
        None => !result.rows.is_empty(),
    }
}

/// A value as JSON, as evidence.
pub fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(s) => s.clone().into(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned().into(),
    }
}

/// Evaluates one check on the engine's machine.
pub fn evaluate(engine: &Engine, check: &Check) -> Outcome {
    let platform = engine.machine().platform;
    let started = Instant::now();
    let mut out = Outcome {
        id: check.id.clone(),
        name: check.name.clone(),
        status: Status::NotApplicable,
        evidence: None,
        error: None,
        remediation: None,
        duration: Duration::ZERO,
    };
    let Some(sql) = check.query_for(platform) else {
        return out;
    };
    match engine.query(sql) {
        Ok(result) => {
            out.status = if passes(&result) {
                Status::Passed
            } else {
                Status::Failed
            };
            out.evidence = result.rows.first().map(|row| {
                result
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.clone(), json_value(v)))
                    .collect()
            });
        }
        Err(e) => {
            out.status = Status::Error;
            out.error = Some(e.to_string());
        }
    }
    if out.status != Status::Passed {
        out.remediation = check.remediation_for(platform).map(str::to_string);
    }
    out.duration = started.elapsed();
    tracing::debug!(check = %check.id, status = out.status.as_str(), ms = out.duration.as_secs_f64() * 1e3, "evaluated");
    out
}

/// Evaluates every check of a policy, in order.
pub fn evaluate_all(engine: &Engine, policy: &Policy) -> Vec<Outcome> {
    policy.checks.iter().map(|c| evaluate(engine, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> QueryResult {
        QueryResult {
            columns: columns.iter().map(|s| s.to_string()).collect(),
            rows,
        }
    }

    #[test]
    fn pass_rule() {
        assert!(passes(&result(&["passed"], vec![vec![Value::Integer(1)]])));
        assert!(!passes(&result(&["passed"], vec![vec![Value::Integer(0)]])));
        assert!(passes(&result(
            &["passed"],
            vec![vec![Value::Text("true".into())]]
        )));
        assert!(passes(&result(
            &["passed"],
            vec![vec![Value::Text("1".into())]]
        )));
        assert!(!passes(&result(
            &["passed"],
            vec![vec![Value::Text("false".into())]]
        )));
        assert!(!passes(&result(&["passed"], vec![vec![Value::Null]])));
        assert!(!passes(&result(&["passed"], vec![])));
        // Fleet's rule: no `passed` column, any row passes.
        assert!(passes(&result(&["x"], vec![vec![Value::Integer(0)]])));
        assert!(!passes(&result(&["x"], vec![])));
    }
}
