//! In-process pieces for the tests of the resources that reach a user:
//! [`Executions`], the running executions as the resources see them (what
//! the daemon does for real), and a workflow engine on a virtual clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tend::resources::Interactions;
use tend_workflow::{Execution, Registry};

/// The token every execution of these tests has.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Running executions by id, each with [`TOKEN`].
#[derive(Default)]
pub struct Executions {
    running: Mutex<HashMap<String, Arc<Execution>>>,
    /// Every event delivered: (execution, event).
    pub delivered: Mutex<Vec<(String, String)>>,
}

impl Executions {
    pub fn add(&self, e: &Arc<Execution>) {
        self.running.lock().unwrap().insert(e.id(), e.clone());
    }
}

impl Interactions for Executions {
    fn token(&self, execution: &str) -> Option<String> {
        self.running
            .lock()
            .unwrap()
            .contains_key(execution)
            .then(|| TOKEN.to_string())
    }

    fn deliver(&self, execution: &str, event: &str, data: Value) -> Result<Option<Value>, String> {
        let e = self
            .running
            .lock()
            .unwrap()
            .get(execution)
            .cloned()
            .ok_or_else(|| format!("no execution {execution}"))?;
        self.delivered
            .lock()
            .unwrap()
            .push((execution.to_string(), event.to_string()));
        e.send_event(event, data).map_err(|e| e.to_string())
    }
}

/// A registry with the seed's agent resources as test doubles: the rule
/// (with its remediation), the asset's owner, and a re-check whose answer
/// the test sets.
pub fn seed_doubles(registry: &mut Registry, owner_email: &str, recheck_passes: Arc<Mutex<bool>>) {
    registry.func(
        "zrn:zercurity:api:compliance:frameworks:get",
        |_call| async move {
            Ok(serde_json::json!({
                "rule": "Firewall enabled",
                "remediation": "Open *Settings → Network → Firewall* and switch it on."
            }))
        },
    );
    let email = owner_email.to_string();
    registry.func("zrn:agent:asset:get", move |_call| {
        let email = email.clone();
        async move { Ok(serde_json::json!({"name": "Ann", "email": email})) }
    });
    registry.func("zrn:agent:check:run", move |_call| {
        let passes = *recheck_passes.lock().unwrap();
        async move { Ok(serde_json::json!({"passed": passes})) }
    });
}
