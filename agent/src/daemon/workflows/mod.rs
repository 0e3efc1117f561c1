//! The workflow runner: the policy's workflows, executed durably by the
//! `tend-workflow` engine inside the daemon.
//!
//! ```text
//! outbox (ASSET_COMPLIANCE, ...) ──▶ subscriber "workflows" ─┐  de-duplicated by
//! cron (croner, wall clock) ─────────────────────────────────┼─▶ (workflow, trigger uuid)
//! local API: workflow_start (admin) ─────────────────────────┘        │
//!                                                                     ▼
//!        Engine (agent resources, RealClock, StoreJournal) ── every step committed
//!                                                                     │
//! local API: interaction (console user, or the execution's token) ────┘ send_event
//! ```
//!
//! - [`journal`]: the store's workflow tables and the `Journal`.
//! - [`triggers`]: event, cron and manual triggers.
//! - [`agent`]: what the agent resources ask of the daemon.
//!
//! The runner is an outbox subscriber like the sinks: it starts the
//! executions an event triggers, and only then acknowledges the event; a
//! redelivered event finds its execution already stored (the trigger uuid
//! is unique per workflow) and starts nothing. At start-up every execution
//! still `RUNNING` is resumed from its stored threads: a Wait sleeps until
//! its absolute wall-clock deadline, a wait for an event waits again, a
//! task in flight at the crash is called again.

pub mod agent;
pub mod journal;
pub mod triggers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tend_workflow::{Engine, ErrorInfo, Execution, RealClock, Status, Workflow};
use tokio::sync::Notify;

use super::store::Store;
use crate::policy::Policy;
use crate::resources::{self, Agent};
use journal::{KEEP_FINISHED, NewExecution, StoreJournal};
use triggers::Trigger;

/// The runner's name among the outbox's subscribers.
pub const SUBSCRIBER: &str = "workflows";
/// Events taken from the outbox at a time.
const BATCH: usize = 100;
/// After a store error the outbox is looked at again this much later.
/// Otherwise the runner sleeps until the core loop wakes it (a new event),
/// so an idle daemon has no timer of the runner's.
const RETRY: Duration = Duration::from_secs(5);
/// A cron sleep is cut into steps this long, so a wall-clock jump (a
/// resume from sleep, a clock set) is noticed.
const CRON_STEP: Duration = Duration::from_secs(30);

/// One workflow of the policy, ready to run.
struct Def {
    workflow: Arc<Workflow>,
    trigger: Trigger,
}

/// Why a workflow could not be started or an event delivered.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the policy in force has no workflow {0:?}")]
    NoWorkflow(String),
    #[error("no running execution {0:?}")]
    NoExecution(String),
    #[error("the token does not match execution {0:?}")]
    BadToken(String),
    #[error("{0}")]
    NotAwaited(String),
    #[error("state store: {0}")]
    Store(String),
}

impl RunError {
    pub fn code(&self) -> &'static str {
        match self {
            RunError::NoWorkflow(_) | RunError::NoExecution(_) => "not_found",
            RunError::BadToken(_) => "forbidden",
            RunError::NotAwaited(_) => "not_awaited",
            RunError::Store(_) => "store",
        }
    }
}

/// A problem at a JSON path of the policy: (path, message).
pub type PathProblem = (String, String);

/// The policy's workflows, read with the agent's resources. Each bad
/// workflow is one problem with its JSON path (`$.workflows[2].states.x`).
pub fn read_policy_workflows(
    policy: &Policy,
    registry: &tend_workflow::Registry,
) -> (Vec<(Arc<Workflow>, Trigger)>, Vec<PathProblem>) {
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    let mut names = HashMap::new();
    for (i, doc) in policy.workflows.iter().enumerate() {
        let at = format!("$.workflows[{i}]");
        match Workflow::from_value(doc, Some(registry)) {
            Ok(wf) => {
                let trigger = match Trigger::parse(wf.trigger.as_ref()) {
                    Ok(t) => t,
                    Err((p, m)) => {
                        problems.push((format!("{at}.trigger{p}"), m));
                        continue;
                    }
                };
                if wf.name.is_empty() {
                    problems.push((at.clone(), "a workflow in a policy needs a \"name\"".into()));
                    continue;
                }
                if let Some(first) = names.insert(wf.name.clone(), i) {
                    problems.push((
                        format!("{at}.name"),
                        format!("workflow {:?} is also $.workflows[{first}]", wf.name),
                    ));
                    continue;
                }
                ok.push((Arc::new(wf), trigger));
            }
            Err(invalid) => {
                for p in invalid.problems {
                    let path = p.path.trim_start_matches('$').trim_start_matches('.');
                    let path = match path.chars().next() {
                        None => at.clone(),
                        Some('[') => format!("{at}{path}"),
                        Some(_) => format!("{at}.{path}"),
                    };
                    problems.push((path, p.message));
                }
            }
        }
    }
    (ok, problems)
}

/// The problems of a policy's workflows, each with its JSON path, as
/// `tend policy lint` reports them (the registry is the daemon's, over
/// [`resources::Offline`]: lint needs the resource names, never a call).
pub fn policy_problems(policy: &Policy) -> Vec<PathProblem> {
    let agent = Arc::new(resources::Offline(crate::sql::table::Platform::current()));
    match resources::registry(agent, policy, None, &resources::Reach::offline()) {
        Ok(registry) => read_policy_workflows(policy, &registry).1,
        Err(resources::endpoint::EndpointError::Bad { name, reason }) => {
            vec![(format!("$.settings.resource_endpoints[{name:?}]"), reason)]
        }
    }
}

/// The runner, shared by the core loop, the local API and its own tasks.
pub struct Runner {
    store: Arc<Mutex<Store>>,
    agent: Arc<dyn Agent>,
    pinned_ca: Option<std::path::PathBuf>,
    /// What the notification and Slack resources need.
    reach: resources::Reach,
    state: RwLock<Policyed>,
    live: Mutex<HashMap<String, Execution>>,
    /// Woken when the outbox has new events.
    pub wake: Arc<Notify>,
    /// Woken when the cron schedules change.
    cron_changed: Notify,
    /// Set once the first real policy is in force (and the stored
    /// executions resumed): until then no event is taken from the outbox,
    /// so none is acknowledged before its workflows are known.
    ready: tokio::sync::watch::Sender<bool>,
}

/// What depends on the policy in force.
struct Policyed {
    serial: u64,
    engine: Option<Engine>,
    defs: HashMap<String, Def>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runner {
    pub fn new(
        store: Arc<Mutex<Store>>,
        agent: Arc<dyn Agent>,
        pinned_ca: Option<std::path::PathBuf>,
        reach: resources::Reach,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            agent,
            pinned_ca,
            reach,
            state: RwLock::new(Policyed {
                serial: 0,
                engine: None,
                defs: HashMap::new(),
            }),
            live: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            cron_changed: Notify::new(),
            ready: tokio::sync::watch::channel(false).0,
        })
    }

    /// Takes the workflows of a new policy. Running executions keep the
    /// definition they started with. On the first real policy, the
    /// executions stored as running are resumed.
    pub fn set_policy(self: &Arc<Self>, policy: &Policy, real: bool) {
        let registry = match resources::registry(
            self.agent.clone(),
            policy,
            self.pinned_ca.as_deref(),
            &self.reach,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("workflows: {e}; no workflow of this policy runs");
                tend_workflow::Registry::new()
            }
        };
        let (ok, problems) = read_policy_workflows(policy, &registry);
        for (path, message) in &problems {
            tracing::error!("policy workflow {path}: {message}; the workflow does not run");
        }
        let journal = Arc::new(StoreJournal {
            store: self.store.clone(),
        });
        let engine = Engine::new(registry, Arc::new(RealClock)).with_journal(journal);
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.serial = policy.serial;
            st.engine = Some(engine);
            st.defs = ok
                .into_iter()
                .map(|(wf, trigger)| {
                    (
                        wf.name.clone(),
                        Def {
                            workflow: wf,
                            trigger,
                        },
                    )
                })
                .collect();
            tracing::info!(workflows = st.defs.len(), "workflows in force");
        }
        self.cron_changed.notify_one();
        if real && !*self.ready.borrow() {
            self.resume_all();
            self.ready.send_replace(true);
        }
    }

    /// Resumes every execution the store has as running.
    fn resume_all(self: &Arc<Self>) {
        let running = match lock(&self.store).wf_running() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("workflows: reading the running executions: {e}");
                return;
            }
        };
        for (_serial, state) in running {
            let id = state.id.clone();
            let (wf, engine) = {
                let st = self.state.read().unwrap_or_else(|p| p.into_inner());
                (
                    st.defs.get(&state.workflow).map(|d| d.workflow.clone()),
                    st.engine.clone(),
                )
            };
            let (Some(wf), Some(engine)) = (wf, engine) else {
                let why = ErrorInfo::new(
                    "Agent.WorkflowGone",
                    format!("the policy in force has no workflow {:?}", state.workflow),
                );
                tracing::warn!(execution = %id, "{}; the execution is aborted", why.cause);
                if let Err(e) = lock(&self.store).wf_end(&id, Status::Aborted, &why) {
                    tracing::error!(execution = %id, "{e}");
                }
                continue;
            };
            tracing::info!(execution = %id, workflow = %state.workflow, "resuming");
            let ex = engine.resume(wf, state);
            self.watch(id, ex);
        }
    }

    /// Keeps a live execution for events, and forgets it when it ends.
    fn watch(self: &Arc<Self>, id: String, ex: Execution) {
        let runner = self.clone();
        let done = ex.clone();
        lock(&self.live).insert(id.clone(), ex);
        tokio::spawn(async move {
            let out = done.wait().await;
            lock(&runner.live).remove(&id);
            if done.is_suspended() {
                tracing::error!(execution = %id, "suspended: a step could not be committed; it resumes at the next start");
                return;
            }
            tracing::info!(execution = %id, status = ?out.status, "execution ended");
            let store = runner.store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = lock(&store).wf_prune(KEEP_FINISHED) {
                    tracing::error!("pruning finished executions: {e}");
                }
            })
            .await;
        });
    }

    /// Starts `name` with `input`. `trigger_uuid` de-duplicates: `Ok(None)`
    /// when that trigger already started an execution of this workflow.
    pub fn start(
        self: &Arc<Self>,
        name: &str,
        input: Value,
        trigger: &str,
        trigger_uuid: Option<String>,
    ) -> Result<Option<String>, RunError> {
        let (wf, engine, serial) = {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            let def = st
                .defs
                .get(name)
                .ok_or_else(|| RunError::NoWorkflow(name.to_string()))?;
            let engine = st
                .engine
                .clone()
                .ok_or_else(|| RunError::NoWorkflow(name.to_string()))?;
            (def.workflow.clone(), engine, st.serial)
        };
        let id = uuid::Uuid::new_v4().to_string();
        let row = NewExecution {
            id: id.clone(),
            workflow: name.to_string(),
            policy_serial: serial,
            input: input.clone(),
            trigger: trigger.to_string(),
            trigger_uuid,
            token: journal::new_token(),
            started_ms: super::now_ms() as u64,
        };
        let fresh = lock(&self.store)
            .wf_insert(&row)
            .map_err(|e| RunError::Store(e.to_string()))?;
        if !fresh {
            return Ok(None);
        }
        tracing::info!(execution = %id, workflow = %name, trigger, "execution started");
        let ex = engine.start_with_id(wf, id.clone(), input);
        self.watch(id.clone(), ex);
        Ok(Some(id))
    }

    /// Delivers an interaction event; answers with the event's `response`.
    /// With a token, it must be the execution's.
    pub fn send_event(
        &self,
        execution: &str,
        event: &str,
        token: Option<&str>,
    ) -> Result<Value, RunError> {
        if let Some(token) = token {
            let stored = lock(&self.store)
                .wf_token(execution)
                .map_err(|e| RunError::Store(e.to_string()))?;
            // Compared in full whatever the mismatch, so timing tells nothing.
            let same = stored.is_some_and(|s| {
                s.len() == token.len()
                    && s.bytes()
                        .zip(token.bytes())
                        .fold(0u8, |a, (x, y)| a | (x ^ y))
                        == 0
            });
            if !same {
                return Err(RunError::BadToken(execution.to_string()));
            }
        }
        let live = lock(&self.live);
        let ex = live
            .get(execution)
            .ok_or_else(|| RunError::NoExecution(execution.to_string()))?;
        let response = ex
            .send_event(event, json!({"name": event}))
            .map_err(|e| RunError::NotAwaited(e.to_string()))?;
        Ok(response.unwrap_or(Value::Null))
    }

    /// What each live execution waits for (for `tend workflow executions`).
    pub fn awaiting(&self) -> HashMap<String, Vec<String>> {
        lock(&self.live)
            .iter()
            .map(|(id, ex)| {
                (
                    id.clone(),
                    ex.awaiting_now()
                        .into_iter()
                        .flat_map(|a| a.names)
                        .collect(),
                )
            })
            .collect()
    }

    /// The live executions waiting for a person's answer about a check, by
    /// the check id their triggering event names (`item.id`): what the tray
    /// shows its buttons for. The execution started last wins.
    pub fn awaiting_by_check(&self) -> HashMap<String, Value> {
        let mut by_check: HashMap<String, (u64, Value)> = HashMap::new();
        for ex in lock(&self.live).values() {
            let names: Vec<String> = ex
                .awaiting_now()
                .into_iter()
                .flat_map(|a| a.names)
                .collect();
            if names.is_empty() {
                continue;
            }
            let state = ex.snapshot();
            let Some(check) = state.input["item"]["id"].as_str() else {
                continue;
            };
            let entry = json!({"execution": state.id, "workflow": state.workflow, "events": names});
            match by_check.get(check) {
                Some((started, _)) if *started > state.started_ms => {}
                _ => {
                    by_check.insert(check.to_string(), (state.started_ms, entry));
                }
            }
        }
        by_check.into_iter().map(|(k, (_, v))| (k, v)).collect()
    }

    /// The outbox subscriber: starts what each event triggers, then
    /// acknowledges it.
    pub async fn consume(self: Arc<Self>) {
        let mut ready = self.ready.subscribe();
        if ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        loop {
            let store = self.store.clone();
            let pending =
                tokio::task::spawn_blocking(move || lock(&store).pending(SUBSCRIBER, BATCH))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            let mut retry = false;
            let pending = match pending {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("workflows: reading the outbox: {e}");
                    retry = true;
                    Vec::new()
                }
            };
            let mut last = None;
            for ev in &pending {
                let body: Value = serde_json::from_str(&ev.body).unwrap_or(Value::Null);
                let kind = body["type"].as_str().unwrap_or_default().to_string();
                let names: Vec<String> = {
                    let st = self.state.read().unwrap_or_else(|p| p.into_inner());
                    st.defs
                        .iter()
                        .filter(|(_, d)| d.trigger.matches_event(&kind, &body))
                        .map(|(n, _)| n.clone())
                        .collect()
                };
                let mut failed = false;
                for name in names {
                    match self.start(&name, body.clone(), "event", Some(ev.uuid.clone())) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            tracing::info!(workflow = %name, event = %ev.uuid, "already started by this event")
                        }
                        Err(RunError::Store(e)) => {
                            tracing::error!(workflow = %name, event = %ev.uuid, "starting: {e}; retrying");
                            failed = true;
                        }
                        Err(e) => tracing::warn!(workflow = %name, "{e}"),
                    }
                }
                if failed {
                    retry = true;
                    break;
                }
                last = Some(ev.seq);
            }
            if let Some(seq) = last {
                let store = self.store.clone();
                let r =
                    tokio::task::spawn_blocking(move || lock(&store).ack(SUBSCRIBER, seq)).await;
                if !matches!(r, Ok(Ok(()))) {
                    tracing::error!(
                        "workflows: acknowledging events failed; they will be seen again"
                    );
                    retry = true;
                }
            }
            if retry {
                let _ = tokio::time::timeout(RETRY, self.wake.notified()).await;
            } else if pending.len() < BATCH {
                self.wake.notified().await;
            }
        }
    }

    /// The cron triggers: sleeps to the next slot on the wall clock and
    /// starts what is due. A slot's time is its trigger uuid, so a slot is
    /// started once even across a restart.
    pub async fn cron(self: Arc<Self>) {
        let mut after = super::now_ms();
        loop {
            let now = super::now_ms();
            let next: Vec<(String, i64)> = {
                let st = self.state.read().unwrap_or_else(|p| p.into_inner());
                st.defs
                    .iter()
                    .filter_map(|(n, d)| d.trigger.next_after(after).map(|t| (n.clone(), t)))
                    .collect()
            };
            let soonest = next.iter().map(|(_, t)| *t).min();
            match soonest {
                Some(t) if t <= now => {
                    for (name, slot) in next.iter().filter(|(_, s)| *s <= now) {
                        let input =
                            json!({"scheduled": tend_workflow::clock::rfc3339(*slot as u64)});
                        if let Err(e) =
                            self.start(name, input, "cron", Some(format!("cron:{slot}")))
                        {
                            tracing::error!(workflow = %name, "cron start: {e}");
                        }
                    }
                    after = now;
                }
                Some(t) => {
                    let wait = Duration::from_millis((t - now) as u64).min(CRON_STEP);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.cron_changed.notified() => {}
                    }
                }
                None => self.cron_changed.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_workflow_problems_carry_their_json_paths() {
        let seed: Value = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/seed-workflow.json"
        ))
        .unwrap();
        let mut policy = crate::policy::default_policy();
        policy.workflows = vec![
            seed.clone(),
            json!({"name": "bad", "entry": "a", "states": {
                "a": {"type": "TASK", "resource": "zrn:nobody:knows", "next": "nowhere"}}}),
            json!({"name": "when", "trigger": {"cron": "every day"}, "entry": "a",
                   "states": {"a": {"type": "SUCCESS"}}}),
            seed,
        ];
        let problems = policy_problems(&policy);
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert!(
            !paths.iter().any(|p| p.starts_with("$.workflows[0].")),
            "the seed's resources (Slack included) are all known: {problems:?}"
        );
        assert!(
            paths.contains(&"$.workflows[1].states.a.next"),
            "{problems:?}"
        );
        assert!(
            paths.contains(&"$.workflows[1].states.a.resource"),
            "{problems:?}"
        );
        assert!(
            paths.contains(&"$.workflows[2].trigger.cron"),
            "{problems:?}"
        );
        // With Slack routed to an endpoint, the seed is clean; the copy is a duplicate.
        policy.settings.insert(
            "resource_endpoints".into(),
            json!({"zrn:integration:slack:*": "https://hooks.example.com/slack"}),
        );
        policy.workflows.remove(1);
        policy.workflows.remove(1);
        let problems = policy_problems(&policy);
        assert_eq!(
            problems,
            vec![(
                "$.workflows[1].name".to_string(),
                format!(
                    "workflow {:?} is also $.workflows[0]",
                    policy.workflows[0]["name"].as_str().unwrap()
                )
            )]
        );
    }
}
