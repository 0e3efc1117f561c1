//! `zrn:agent:check:run`: runs a check again now, through the daemon's
//! evaluator (the same queue, limits and state store as a scheduled run,
//! so a flip still becomes an event), and answers with its new state.
//!
//! Parameters: `{"id": CHECK_ID}` (or `uuid`). Result: the check as
//! `tend status` shows it, with `passed` (true, false, or null when the
//! check could not be evaluated). Running a check twice is harmless:
//! idempotent.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tend_workflow::{ErrorInfo, Resource, TaskCall};

use super::{AGENT_ERROR, Agent, string_param};

pub const NAME: &str = "zrn:agent:check:run";

pub struct CheckRun(pub Arc<dyn Agent>);

impl Resource for CheckRun {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let id = string_param(&call.input, &["id", "uuid"])?;
            if self.0.policy().check(&id).is_none() {
                return Err(ErrorInfo::new(
                    super::rule::NOT_FOUND,
                    format!("the policy in force has no check {id:?}"),
                ));
            }
            self.0
                .run_check(id)
                .await
                .map_err(|e| ErrorInfo::new(AGENT_ERROR, e))
        })
    }
}
