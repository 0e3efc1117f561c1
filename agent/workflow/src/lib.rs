//! Tend's workflow engine, a library that stands alone: it depends on
//! nothing else in the agent, which plugs in through [`Resource`] (task
//! resources), [`Clock`] and [`Journal`] (durability).
//!
//! One model ([`model`]), two readers: the seed dialect (`entry`, `states`,
//! `type: "TASK"`, `mapping`, `events`) and Amazon States Language
//! (`StartAt`, `States`, `Type: "Task"`, `ResultPath`, intrinsic functions),
//! with ASL's semantics and error names where ASL defines them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tend_workflow::{Engine, Registry, RealClock, Workflow};
//! let wf = Arc::new(Workflow::parse(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#, None)?);
//! let engine = Engine::new(Registry::new(), Arc::new(RealClock));
//! let outcome = engine.run(wf, serde_json::json!({"x": 1})).await;
//! # Ok(()) }
//! ```

pub mod choice;
pub mod clock;
pub mod error;
pub mod exec;
pub mod fuzzing;
pub mod graph;
pub mod intrinsics;
pub mod model;
pub mod path;
pub mod reader;
pub mod resource;
pub mod validate;

pub use clock::{Clock, RealClock, VirtualClock};
pub use error::{ErrorInfo, Invalid, Problem};
pub use exec::{
    Awaiting, Engine, EventError, Execution, ExecutionState, HistoryEvent, HistoryKind, Journal,
    JournalError, Outcome, Status, Step, ThreadState,
};
pub use model::{Dialect, Workflow};
pub use resource::{FnResource, Registry, Resource, TaskCall};

impl Workflow {
    /// Reads a workflow (either dialect) and validates it; with a registry,
    /// every task resource must be known to it.
    pub fn parse(text: &str, registry: Option<&Registry>) -> Result<Workflow, Invalid> {
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| Invalid {
            problems: vec![Problem {
                path: String::new(),
                message: format!("not JSON: {e}"),
            }],
        })?;
        Self::from_value(&doc, registry)
    }

    pub fn from_value(
        doc: &serde_json::Value,
        registry: Option<&Registry>,
    ) -> Result<Workflow, Invalid> {
        let wf = reader::read(doc)?;
        let problems = validate::validate(&wf, registry);
        if problems.is_empty() {
            Ok(wf)
        } else {
            Err(Invalid { problems })
        }
    }
}

#[cfg(test)]
mod tests;
