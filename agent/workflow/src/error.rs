//! Error names (ASL's, exactly) and the errors of reading and validating.

use serde::{Deserialize, Serialize};

pub const ALL: &str = "States.ALL";
pub const TIMEOUT: &str = "States.Timeout";
pub const TASK_FAILED: &str = "States.TaskFailed";
pub const RUNTIME: &str = "States.Runtime";
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
pub const BRANCH_FAILED: &str = "States.BranchFailed";
pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
pub const PERMISSIONS: &str = "States.Permissions";
/// Not an ASL name: how a cancelled execution ends. Nothing catches it.
pub const ABORTED: &str = "States.Aborted";

/// An error as ASL carries it: a name and a human cause. Serialized the way a
/// Catch's ResultPath receives it: `{"Error": ..., "Cause": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause")]
    pub cause: String,
}

impl ErrorInfo {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        ErrorInfo {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        ErrorInfo::new(RUNTIME, cause)
    }

    /// Whether a Retry or Catch naming `names` covers this error. ASL:
    /// `States.ALL` matches every error but `States.Runtime`;
    /// `States.TaskFailed` matches every task error but `States.Timeout`.
    pub fn matches(&self, names: &[String]) -> bool {
        if self.error == RUNTIME || self.error == ABORTED {
            return false;
        }
        names.iter().any(|n| {
            n == &self.error
                || n == ALL
                || (n == TASK_FAILED
                    && self.error != TIMEOUT
                    && !self.error.starts_with("States.Runtime"))
        })
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cause.is_empty() {
            f.write_str(&self.error)
        } else {
            write!(f, "{}: {}", self.error, self.cause)
        }
    }
}

impl std::error::Error for ErrorInfo {}

/// One problem in a workflow document, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON-ish path in the source: `states.check_rule.choices[0].next`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Reading or validation failed; every problem found is listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in the workflow:\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Invalid {
    pub problems: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        let e = |n: &str| ErrorInfo::new(n, "");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(e("Custom").matches(&names(&["States.ALL"])));
        assert!(!e("States.Runtime").matches(&names(&["States.ALL"])));
        assert!(e("Custom").matches(&names(&["States.TaskFailed"])));
        assert!(!e("States.Timeout").matches(&names(&["States.TaskFailed"])));
        assert!(e("States.Timeout").matches(&names(&["States.Timeout"])));
        assert!(!e("A").matches(&names(&["B"])));
    }
}
