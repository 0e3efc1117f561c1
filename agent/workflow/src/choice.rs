//! Choice rules: ASL's comparison operators with its type rules. A
//! comparison whose variable is missing or of the wrong type is false, not an
//! error (`IsPresent` and the type tests excepted: they look at exactly that).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{Op, Operand, Rule};

/// RFC 3339 (ASL requires an uppercase T and Z or an offset).
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// ASL's `StringMatches`: `*` is any run of characters; `\*` and `\\` escape.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    // Tokens: Some(c) literal, None star.
    let mut toks: Vec<Option<char>> = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => toks.push(Some(it.next().unwrap_or('\\'))),
            '*' => toks.push(None),
            c => toks.push(Some(c)),
        }
    }
    let t: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking on the last star.
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < toks.len() && toks[pi] == Some(t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < toks.len() && toks[pi].is_none() {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < toks.len() && toks[pi].is_none() {
        pi += 1;
    }
    pi == toks.len()
}

impl Rule {
    pub fn eval(&self, input: &Value, context: &Value) -> bool {
        match self {
            Rule::And(rs) => rs.iter().all(|r| r.eval(input, context)),
            Rule::Or(rs) => rs.iter().any(|r| r.eval(input, context)),
            Rule::Not(r) => !r.eval(input, context),
            Rule::Compare {
                variable,
                op,
                operand,
            } => {
                let var = variable.select(input, context);
                let rhs = match operand {
                    Operand::Value(v) => Some(v.clone()),
                    Operand::Path(p) => p.select(input, context),
                };
                compare(*op, var.as_ref(), rhs.as_ref())
            }
        }
    }
}

fn compare(op: Op, var: Option<&Value>, rhs: Option<&Value>) -> bool {
    use std::cmp::Ordering::*;
    let want = rhs.and_then(Value::as_bool);
    match op {
        Op::IsPresent => return var.is_some() == want.unwrap_or(false),
        Op::IsNull => return var.is_some_and(Value::is_null) == want.unwrap_or(false),
        Op::IsNumeric => return var.is_some_and(Value::is_number) == want.unwrap_or(false),
        Op::IsString => return var.is_some_and(Value::is_string) == want.unwrap_or(false),
        Op::IsBoolean => return var.is_some_and(Value::is_boolean) == want.unwrap_or(false),
        Op::IsTimestamp => {
            let is = var
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .is_some();
            return is == want.unwrap_or(false);
        }
        _ => {}
    }
    let (Some(var), Some(rhs)) = (var, rhs) else {
        return false;
    };
    let ord = match op {
        Op::StringMatches => {
            return matches!((var.as_str(), rhs.as_str()), (Some(t), Some(p)) if string_matches(t, p));
        }
        Op::BooleanEquals => {
            return matches!((var.as_bool(), rhs.as_bool()), (Some(a), Some(b)) if a == b);
        }
        Op::StringEquals
        | Op::StringLessThan
        | Op::StringGreaterThan
        | Op::StringLessThanEquals
        | Op::StringGreaterThanEquals => match (var.as_str(), rhs.as_str()) {
            (Some(a), Some(b)) => a.cmp(b),
            _ => return false,
        },
        Op::NumericEquals
        | Op::NumericLessThan
        | Op::NumericGreaterThan
        | Op::NumericLessThanEquals
        | Op::NumericGreaterThanEquals => match (var.as_f64(), rhs.as_f64()) {
            (Some(a), Some(b)) => match a.partial_cmp(&b) {
                Some(o) => o,
                None => return false,
            },
            _ => return false,
        },
        _ => match (
            var.as_str().and_then(parse_timestamp),
            rhs.as_str().and_then(parse_timestamp),
        ) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => return false,
        },
    };
    match op {
        Op::StringEquals | Op::NumericEquals | Op::TimestampEquals => ord == Equal,
        Op::StringLessThan | Op::NumericLessThan | Op::TimestampLessThan => ord == Less,
        Op::StringGreaterThan | Op::NumericGreaterThan | Op::TimestampGreaterThan => ord == Greater,
        Op::StringLessThanEquals | Op::NumericLessThanEquals | Op::TimestampLessThanEquals => {
            ord != Greater
        }
        _ => ord != Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Path;
    use serde_json::json;

    fn cmp(var: &str, op: &str, operand: Value, input: Value) -> bool {
        let (op, is_path) = Op::parse(op).unwrap();
        let operand = if is_path {
            Operand::Path(Path::parse(operand.as_str().unwrap()).unwrap())
        } else {
            Operand::Value(operand)
        };
        Rule::Compare {
            variable: Path::parse(var).unwrap(),
            op,
            operand,
        }
        .eval(&input, &Value::Null)
    }

    #[test]
    fn operators() {
        let i = json!({"s": "abc", "n": 5, "b": true, "t": "2024-01-02T03:04:05Z", "z": null, "m": 5.0, "o": "abd"});
        assert!(cmp("$.s", "StringEquals", json!("abc"), i.clone()));
        assert!(cmp("$.s", "StringLessThan", json!("abd"), i.clone()));
        assert!(cmp(
            "$.s",
            "StringGreaterThanEquals",
            json!("abc"),
            i.clone()
        ));
        assert!(cmp("$.s", "StringLessThanPath", json!("$.o"), i.clone()));
        assert!(cmp("$.s", "StringMatches", json!("a*"), i.clone()));
        assert!(!cmp("$.s", "StringMatches", json!("b*"), i.clone()));
        assert!(cmp("$.n", "NumericEquals", json!(5), i.clone()));
        assert!(cmp("$.n", "NumericEqualsPath", json!("$.m"), i.clone()));
        assert!(cmp("$.n", "NumericGreaterThan", json!(4.5), i.clone()));
        assert!(cmp("$.n", "NumericLessThanEquals", json!(5), i.clone()));
        assert!(
            !cmp("$.s", "NumericEquals", json!(5), i.clone()),
            "wrong type is false"
        );
        assert!(cmp("$.b", "BooleanEquals", json!(true), i.clone()));
        assert!(cmp(
            "$.t",
            "TimestampLessThan",
            json!("2024-01-02T03:04:06Z"),
            i.clone()
        ));
        assert!(cmp(
            "$.t",
            "TimestampEquals",
            json!("2024-01-02T04:04:05+01:00"),
            i.clone()
        ));
        assert!(cmp("$.z", "IsNull", json!(true), i.clone()));
        assert!(cmp("$.nope", "IsPresent", json!(false), i.clone()));
        assert!(cmp("$.z", "IsPresent", json!(true), i.clone()));
        assert!(cmp("$.n", "IsNumeric", json!(true), i.clone()));
        assert!(cmp("$.s", "IsString", json!(true), i.clone()));
        assert!(cmp("$.b", "IsBoolean", json!(true), i.clone()));
        assert!(cmp("$.t", "IsTimestamp", json!(true), i.clone()));
        assert!(cmp("$.s", "IsTimestamp", json!(false), i.clone()));
        assert!(
            !cmp("$.nope", "StringEquals", json!("x"), i.clone()),
            "missing is false"
        );
    }

    #[test]
    fn wildcard() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("", "*"));
        assert!(string_matches("abcabc", "*abc"));
    }
}
