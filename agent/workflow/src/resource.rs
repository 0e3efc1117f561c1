//! Task resources: one trait, registered by exact name or by prefix. A
//! resource receives the full resource string, so one type can serve a
//! family (`zrn:integration:slack:` serving `...chat:postMessage`,
//! `...chat:update`).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::error::ErrorInfo;

/// One task invocation.
#[derive(Debug, Clone)]
pub struct TaskCall {
    /// The resource string as the workflow wrote it.
    pub resource: String,
    /// The effective parameters (after InputPath and Parameters).
    pub input: Value,
    pub execution_id: String,
    pub state: String,
    /// 0 on the first attempt, then the retry number.
    pub attempt: u32,
}

/// A task resource. Errors are ASL errors: a name a Retry or Catch can
/// match (`Agent.NoUserSession`), and a cause. A resource that has no better
/// name uses `States.TaskFailed`.
pub trait Resource: Send + Sync {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>>;
}

/// A resource from an async closure.
pub struct FnResource<F>(pub F);

impl<F, Fut> Resource for FnResource<F>
where
    F: Fn(TaskCall) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Value, ErrorInfo>> + Send + 'static,
{
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin((self.0)(call))
    }
}

/// Which resource serves which name.
#[derive(Default, Clone)]
pub struct Registry {
    exact: HashMap<String, Arc<dyn Resource>>,
    /// Longest prefix first.
    prefixes: Vec<(String, Arc<dyn Resource>)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field(
                "prefixes",
                &self.prefixes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn exact(&mut self, name: impl Into<String>, r: impl Resource + 'static) -> &mut Self {
        self.exact.insert(name.into(), Arc::new(r));
        self
    }

    pub fn prefix(&mut self, prefix: impl Into<String>, r: impl Resource + 'static) -> &mut Self {
        self.prefixes.push((prefix.into(), Arc::new(r)));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        self
    }

    /// Registers a closure by exact name.
    pub fn func<F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(TaskCall) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, ErrorInfo>> + Send + 'static,
    {
        self.exact(name, FnResource(f))
    }

    pub fn find(&self, name: &str) -> Option<Arc<dyn Resource>> {
        self.exact.get(name).cloned().or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, r)| r.clone())
        })
    }
}
