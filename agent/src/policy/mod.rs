//! The policy: which checks run, how often, and how to fix them.
//!
//! A policy is one JSON document (DESIGN.md, "The policy file"). This module
//! owns its model ([`Policy`], [`Check`]), parsing with an error that names
//! the JSON path, line and column of the problem ([`Policy::parse`]), the
//! authoring check `tend policy lint` runs ([`lint`]), and the default policy
//! compiled into the binary ([`default_policy`]).
//!
//! Distribution (DESIGN.md, "Security"): [`fetch`] gets the policy and its
//! minisign signature over HTTPS, [`signature`] verifies it against the
//! trusted keys, [`accept`] decides whether it may replace the policy in
//! force (signature, schema, serial), [`store`] keeps the last good one on
//! disk, and [`manager`] ties them together for the CLI and the daemon.

pub mod accept;
pub mod fetch;
pub mod fuzzing;
pub mod lint;
mod locate;
pub mod manager;
pub mod signature;
pub mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sql::table::Platform;

/// The policy format this build reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest policy accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 4 << 20;

static DEFAULT_POLICY: &str = include_str!("../../../policies/default.json");

/// How much a failing check matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// A duration written as `30s`, `15m`, `1h`, `1d` (or a sum: `1h30m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl Interval {
    pub fn parse(s: &str) -> Result<Interval, String> {
        let mut total = 0u64;
        let mut num = String::new();
        if s.trim().is_empty() {
            return Err("an interval cannot be empty".into());
        }
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(format!("{s:?}: unknown unit {c:?} (use s, m, h or d)")),
            };
            let n: u64 = num
                .parse()
                .map_err(|_| format!("{s:?}: a number must come before {c:?}"))?;
            total = total.saturating_add(n.saturating_mul(unit));
            num.clear();
        }
        if !num.is_empty() {
            return Err(format!(
                "{s:?}: the number {num} has no unit (use s, m, h or d)"
            ));
        }
        if total == 0 {
            return Err(format!("{s:?}: an interval must be longer than zero"));
        }
        Ok(Interval(Duration::from_secs(total)))
    }
}

impl Default for Interval {
    fn default() -> Interval {
        Interval(Duration::from_secs(3600))
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Interval, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let secs = self.0.as_secs();
        let text = if secs.is_multiple_of(86_400) {
            format!("{}d", secs / 86_400)
        } else if secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        };
        s.serialize_str(&text)
    }
}

/// Text per operating system, keyed `darwin`, `linux`, `windows`.
pub type PerOs = BTreeMap<String, String>;

/// One compliance check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Stable identifier: events and workflows refer to it.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub severity: Severity,
    /// Control references, e.g. `CIS Ubuntu 22.04 3.5.1.3`, `Cyber Essentials: firewalls`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<String>,
    #[serde(default)]
    pub interval: Interval,
    /// The osquery SQL per OS. A check with no query for an OS is not applicable there.
    pub query: PerOs,
    /// How to fix a failure, in Markdown, per OS.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remediation: PerOs,
}

impl Check {
    pub fn query_for(&self, platform: Platform) -> Option<&str> {
        self.query.get(platform.policy_key()).map(String::as_str)
    }

    pub fn remediation_for(&self, platform: Platform) -> Option<&str> {
        self.remediation
            .get(platform.policy_key())
            .map(String::as_str)
    }
}

/// A whole policy document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The format version; this build reads [`FORMAT_VERSION`].
    pub version: u32,
    /// Grows with every published policy: an agent refuses a lower one.
    pub serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub checks: Vec<Check>,
    /// Workflow definitions (validated by the workflow engine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<serde_json::Value>,
    /// Notification, Slack and event-sink settings.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Why a policy document was refused. Every variant says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{source_name}: the policy is {size} bytes; the limit is {MAX_POLICY_BYTES}")]
    TooLarge { source_name: String, size: usize },
    #[error("{source_name}:{line}:{column}: {path}: {message}")]
    Invalid {
        source_name: String,
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Policy {
    /// Parses and validates a policy. `source_name` names it in errors (a file
    /// path or URL). Validation here is structural (types, required fields,
    /// ids, platforms, intervals); [`lint`] also prepares every query.
    pub fn parse(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                source_name: source_name.into(),
                size: text.len(),
            });
        }
        let policy = Policy::parse_syntax(text, source_name)?;
        let problems = policy.structural_problems();
        if let Some((path, message)) = problems.into_iter().next() {
            let (line, column) = locate::locate(text, &path).unwrap_or((0, 0));
            return Err(PolicyError::Invalid {
                source_name: source_name.into(),
                path,
                line,
                column,
                message,
            });
        }
        Ok(policy)
    }

    /// Parses the JSON into the model: syntax, types and required fields only.
    pub(crate) fn parse_syntax(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                source_name: source_name.into(),
                size: text.len(),
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let policy: Policy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = json_path(&e.path().to_string());
            let inner = e.into_inner();
            PolicyError::Invalid {
                source_name: source_name.into(),
                path,
                line: inner.line(),
                column: inner.column(),
                message: strip_position(&inner.to_string()),
            }
        })?;
        de.end().map_err(|e| PolicyError::Invalid {
            source_name: source_name.into(),
            path: "$".into(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Ok(policy)
    }

    /// Rules serde cannot express: the format version, unique well-formed ids,
    /// known platform keys, a query for at least one OS.
    pub fn structural_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.version != FORMAT_VERSION {
            out.push((
                "$.version".into(),
                format!(
                    "version {} is not supported (this agent reads {FORMAT_VERSION})",
                    self.version
                ),
            ));
        }
        let mut seen = BTreeMap::new();
        for (i, c) in self.checks.iter().enumerate() {
            let at = format!("$.checks[{i}]");
            if c.id.is_empty()
                || !c
                    .id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
            {
                out.push((
                    format!("{at}.id"),
                    format!(
                        "{:?} is not a valid id (letters, digits, '_', '-', '.')",
                        c.id
                    ),
                ));
            }
            if let Some(first) = seen.insert(c.id.clone(), i) {
                out.push((
                    format!("{at}.id"),
                    format!("duplicate id {:?} (also $.checks[{first}])", c.id),
                ));
            }
            if c.query.is_empty() {
                out.push((
                    format!("{at}.query"),
                    "a check needs a query for at least one OS".into(),
                ));
            }
            for (field, map) in [("query", &c.query), ("remediation", &c.remediation)] {
                for key in map.keys() {
                    if !matches!(key.as_str(), "darwin" | "linux" | "windows") {
                        out.push((
                            format!("{at}.{field}.{key}"),
                            format!("unknown OS {key:?} (use darwin, linux or windows)"),
                        ));
                    }
                }
            }
        }
        out
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// The policy compiled into the binary (`policies/default.json`).
pub fn default_policy() -> Policy {
    // The default policy is checked by the test `default_policy_parses` and by
    // `tend policy lint` in CI; a broken one cannot ship.
    match Policy::parse(DEFAULT_POLICY, "built-in default policy") {
        Ok(p) => p,
        Err(e) => panic!("the built-in default policy is invalid: {e}"),
    }
}

/// The text of the built-in default policy.
pub fn default_policy_text() -> &'static str {
    DEFAULT_POLICY
}

/// serde_path_to_error writes `checks[2].query`; we write `$.checks[2].query`.
fn json_path(p: &str) -> String {
    if p == "." || p.is_empty() {
        "$".into()
    } else {
        format!("$.{p}")
    }
}

/// serde_json appends " at line L column C"; the error carries those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses() {
        let p = default_policy();
        assert!(p.checks.len() >= 4);
    }

    #[test]
    fn intervals() {
        assert_eq!(Interval::parse("15m").unwrap().0, Duration::from_secs(900));
        assert_eq!(
            Interval::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert!(Interval::parse("15").is_err());
        assert!(Interval::parse("0s").is_err());
        assert!(Interval::parse("5w").is_err());
    }

    #[test]
    fn errors_name_path_and_line() {
        let text = "{\n  \"version\": 1,\n  \"serial\": 3,\n  \"checks\": [\n    {\"id\": \"a\", \"name\": \"A\", \"severity\": \"urgent\", \"query\": {}}\n  ]\n}";
        let e = Policy::parse(text, "p.json").unwrap_err().to_string();
        assert!(e.starts_with("p.json:5:"), "{e}");
        assert!(e.contains("$.checks[0].severity"), "{e}");
        assert!(e.contains("urgent"), "{e}");
    }

    #[test]
    fn structural_errors_are_located() {
        let text = "{\"version\": 1, \"serial\": 1, \"checks\": [\n{\"id\": \"a\", \"name\": \"A\", \"severity\": \"low\", \"query\": {\"linux\": \"SELECT 1\"}},\n{\"id\": \"a\", \"name\": \"B\", \"severity\": \"low\", \"query\": {\"beos\": \"SELECT 1\"}}]}";
        let e = Policy::parse(text, "p.json").unwrap_err().to_string();
        assert!(e.contains("$.checks[1].id"), "{e}");
        assert!(e.contains("duplicate"), "{e}");
        assert!(e.starts_with("p.json:3:"), "{e}");
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let e = Policy::parse("{\"version\":1,\"serial\":1,\"checks\":[]} x", "p").unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }
}
