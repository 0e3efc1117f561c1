//! Task resources the agent's workflows call (`tend_workflow::Resource`).
//!
//! - [`notify`]: `zrn:agent:notify`, a native notification shown by the
//!   console user's session; its buttons come back as interaction events.
//! - [`slack`]: `zrn:integration:slack:...`, the Slack Web API (a DM with
//!   the seed's Block Kit blocks, its update, a user by email).
//!
//! Both hand a user's answer to the workflow through [`Interactions`], which
//! the daemon implements over its running executions.

pub mod notify;
pub mod slack;

use serde_json::Value;

/// The daemon's running executions, as the resources that reach a user
/// see them.
pub trait Interactions: Send + Sync {
    /// The execution's unguessable token (it goes into `tend://` links;
    /// the daemon checks it when the link is opened). `None`: no such
    /// execution.
    fn token(&self, execution: &str) -> Option<String>;
    /// Delivers `event` to the execution, as the local API's
    /// `interaction` does. Returns the event's `response` (seed dialect).
    fn deliver(&self, execution: &str, event: &str, data: Value) -> Result<Option<Value>, String>;
}
