//! `zrn:agent:compliance:rule:get` (the seed spells it
//! `zrn:zercurity:api:compliance:frameworks:get`): a check's metadata and
//! its remediation for this OS, from the policy in force.
//!
//! Parameters: `{"uuid": CHECK_ID}` (the seed passes `$.item.id`) or
//! `{"id": CHECK_ID}`. Result: `{"id", "rule" (its name), "description",
//! "severity", "frameworks", "remediation"}`. Reads only: idempotent.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tend_workflow::{ErrorInfo, Resource, TaskCall};

use super::{Agent, string_param};

pub const NAMES: &[&str] = &[
    "zrn:agent:compliance:rule:get",
    "zrn:zercurity:api:compliance:frameworks:get",
];

/// The error when the policy has no such check.
pub const NOT_FOUND: &str = "Agent.RuleNotFound";

pub struct RuleGet(pub Arc<dyn Agent>);

impl Resource for RuleGet {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let id = string_param(&call.input, &["uuid", "id"])?;
            let policy = self.0.policy();
            let check = policy.check(&id).ok_or_else(|| {
                ErrorInfo::new(
                    NOT_FOUND,
                    format!("the policy in force has no check {id:?}"),
                )
            })?;
            Ok(json!({
                "id": check.id,
                "rule": check.name,
                "description": check.description,
                "severity": check.severity,
                "frameworks": check.frameworks,
                "remediation": check.remediation_for(self.0.platform()),
            }))
        })
    }
}
