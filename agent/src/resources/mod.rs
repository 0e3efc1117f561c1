//! The agent's workflow task resources (DESIGN.md, "Workflows"): each one
//! type implementing [`tend_workflow::Resource`], in a file of its own.
//!
//! - [`rule`]: `zrn:agent:compliance:rule:get` (alias
//!   `zrn:zercurity:api:compliance:frameworks:get`), a check's metadata and
//!   remediation for this OS.
//! - [`check`]: `zrn:agent:check:run`, re-runs a check now.
//! - [`asset`]: `zrn:agent:asset:get`, this device and its owner.
//! - [`query`]: `zrn:agent:query`, one read-only SQL query.
//! - [`endpoint`]: a resource (or a family, by prefix) served by an HTTPS
//!   endpoint the policy names in `settings.resource_endpoints`.
//!
//! The resources reach the running agent only through the [`Agent`] trait,
//! which the daemon implements; `tend policy lint` builds the same registry
//! over [`Offline`] to learn which resource names exist.

pub mod asset;
pub mod check;
pub mod endpoint;
pub mod query;
pub mod rule;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tend_workflow::{ErrorInfo, Registry};

use crate::policy::Policy;
use crate::sql::table::Platform;

/// What the resources may ask of the running agent.
pub trait Agent: Send + Sync {
    /// The OS whose remediation and queries apply.
    fn platform(&self) -> Platform;
    /// The policy in force.
    fn policy(&self) -> Arc<Policy>;
    /// This device and its owner, as the events describe them.
    fn asset(&self) -> Value;
    /// Runs a check now and answers with its new state.
    fn run_check(&self, id: String) -> BoxFuture<'_, Result<Value, String>>;
    /// Runs one read-only query through the engine (with its limits):
    /// rows as objects.
    fn query(&self, sql: String) -> BoxFuture<'_, Result<Vec<Value>, String>>;
    /// The execution's secret token, for the `tend://` links a resource
    /// puts in a message (the daemon checks it when the link comes back).
    fn execution_token(&self, execution: &str) -> Option<String>;
}

/// The agent when no daemon is running (`tend policy lint`): the registry
/// exists to name the resources; calling one is an error.
pub struct Offline(pub Platform);

impl Agent for Offline {
    fn platform(&self) -> Platform {
        self.0
    }
    fn policy(&self) -> Arc<Policy> {
        Arc::new(Policy {
            version: crate::policy::FORMAT_VERSION,
            serial: 0,
            name: None,
            checks: Vec::new(),
            workflows: Vec::new(),
            settings: serde_json::Map::new(),
        })
    }
    fn asset(&self) -> Value {
        Value::Null
    }
    fn run_check(&self, _: String) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async { Err("the service is not running".to_string()) })
    }
    fn query(&self, _: String) -> BoxFuture<'_, Result<Vec<Value>, String>> {
        Box::pin(async { Err("the service is not running".to_string()) })
    }
    fn execution_token(&self, _: &str) -> Option<String> {
        None
    }
}

/// The error name of a task that the agent could not do.
pub const AGENT_ERROR: &str = "Agent.Error";
/// The error name of a task given parameters it cannot use.
pub const BAD_PARAMETERS: &str = "Agent.BadParameters";

/// Reads a string parameter, or names what is missing.
pub(crate) fn string_param(input: &Value, names: &[&str]) -> Result<String, ErrorInfo> {
    names
        .iter()
        .find_map(|n| input.get(*n).and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            ErrorInfo::new(
                BAD_PARAMETERS,
                format!("the parameters need a string {:?}", names[0]),
            )
        })
}

/// The registry of every agent resource, for the policy in force
/// (`settings.resource_endpoints` adds resources served over HTTPS).
pub fn registry(
    agent: Arc<dyn Agent>,
    policy: &Policy,
    pinned_ca: Option<&std::path::Path>,
) -> Result<Registry, endpoint::EndpointError> {
    let mut r = Registry::new();
    for name in rule::NAMES {
        r.exact(*name, rule::RuleGet(agent.clone()));
    }
    r.exact(check::NAME, check::CheckRun(agent.clone()));
    r.exact(asset::NAME, asset::AssetGet(agent.clone()));
    r.exact(query::NAME, query::Query(agent.clone()));
    for (name, ep) in endpoint::from_settings(&policy.settings, pinned_ca)? {
        match name.strip_suffix('*') {
            Some(prefix) => r.prefix(prefix, ep),
            None => r.exact(name, ep),
        };
    }
    Ok(r)
}
