//! The daemon's side of [`crate::resources::Agent`]: what the agent's task
//! resources ask of the running service, answered from the local API's
//! view (policy, identity) and through the core loop's queue (re-checks
//! and queries run on the evaluator thread, one at a time, with the
//! engine's limits).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::daemon::{Command, RECHECK_TIMEOUT, Shared, status_name, with_store};
use crate::policy::Policy;
use crate::resources::Agent;
use crate::sql::table::Platform;

/// How long a workflow's query may wait for the evaluator.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

pub(in crate::daemon) struct DaemonAgent(pub(in crate::daemon) Arc<Shared>);

impl DaemonAgent {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
        timeout: Duration,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .cmd
            .send(make(tx))
            .await
            .map_err(|_| "the service is stopping".to_string())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err("the service is stopping".into()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

impl Agent for DaemonAgent {
    fn platform(&self) -> Platform {
        self.0.platform
    }

    fn policy(&self) -> Arc<Policy> {
        self.0.view().policy.clone()
    }

    fn asset(&self) -> Value {
        let id = self.0.view().identity.clone();
        let mut v = serde_json::to_value(&id).unwrap_or(Value::Null);
        if let Some(u) = &id.user {
            v["user"]["name"] = json!(crate::daemon::identity::owner_first_name(&u.email));
        }
        v
    }

    fn run_check(&self, id: String) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let ids = vec![id.clone()];
            self.ask(|done| Command::Recheck { ids, done }, RECHECK_TIMEOUT)
                .await?;
            let wanted = id.clone();
            let state = with_store(&self.0.store, move |s| {
                Ok(s.checks()?.into_iter().find(|c| c.id == wanted))
            })
            .await?;
            let Some(s) = state else {
                return Err(format!("check {id:?} has no result yet"));
            };
            let passed = match s.status {
                crate::checks::Status::Passed => json!(true),
                crate::checks::Status::Failed => json!(false),
                _ => Value::Null,
            };
            Ok(json!({
                "id": s.id,
                "name": s.name,
                "status": status_name(s.status),
                "passed": passed,
                "error": s.error,
                "evidence": s.evidence,
            }))
        })
    }

    fn execution_token(&self, execution: &str) -> Option<String> {
        let store = self.0.store.lock().unwrap_or_else(|p| p.into_inner());
        store.wf_token(execution).ok().flatten()
    }

    fn query(&self, sql: String) -> BoxFuture<'_, Result<Vec<Value>, String>> {
        Box::pin(async move {
            let result = self
                .ask(|reply| Command::Query { sql, reply }, QUERY_TIMEOUT)
                .await??;
            Ok(result
                .rows
                .iter()
                .map(|row| {
                    Value::Object(
                        result
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| (c.clone(), crate::checks::json_value(v)))
                            .collect(),
                    )
                })
                .collect())
        })
    }
}
