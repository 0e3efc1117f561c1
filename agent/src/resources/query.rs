//! `zrn:agent:query`: one read-only SQL query through the daemon's engine,
//! with the engine's limits (time, rows, memory) and its authorizer (reads
//! only). Idempotent.
//!
//! Parameters: `{"sql": "SELECT ..."}`. Result: `{"rows": [{column: value}]}`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tend_workflow::{ErrorInfo, Resource, TaskCall};

use super::{Agent, string_param};

pub const NAME: &str = "zrn:agent:query";
/// The error of a query the engine refused or could not run.
pub const QUERY_FAILED: &str = "Agent.QueryFailed";

pub struct Query(pub Arc<dyn Agent>);

impl Resource for Query {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let sql = string_param(&call.input, &["sql", "query"])?;
            let rows = self
                .0
                .query(sql)
                .await
                .map_err(|e| ErrorInfo::new(QUERY_FAILED, e))?;
            Ok(json!({ "rows": rows }))
        })
    }
}
