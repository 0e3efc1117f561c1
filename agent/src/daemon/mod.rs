//! `tend run`: the service that keeps every check current, notices every
//! change, and never loses one.
//!
//! ```text
//! policy task (PolicyManager: pull, verify, keep the last good) ──▶ policy
//!                                                                    │
//! schedule (wall clock) ─┐                                           ▼
//! file watch (failing) ──┼──▶ queue ──▶ evaluator thread (Engine, TrackingFs, limits)
//! local API (recheck) ───┘                   │ Outcome + paths read
//!                                            ▼
//!                      store.record: state + history + events, one transaction
//!                                            │ outbox (durable)
//!                         ┌──────────────────┼──────────────────┐
//!                         ▼                  ▼                  ▼
//!                 JSON-lines sink       HTTP sink      local API subscribers
//! ```
//!
//! One async task (the core loop, below) owns the schedule, the queue and
//! the watcher; it runs on a single-threaded tokio runtime with the local
//! API and the sinks. The SQL engine runs on its own thread
//! ([`evaluator`]), one check at a time, and the state store (SQLite) is
//! used from blocking tasks. Modules:
//!
//! - [`schedule`]: due times on the wall clock; [`timer`]: sleeping
//!   through suspend; [`watch`]: re-checks on file changes.
//! - [`store`]: SQLite (WAL) with migrations: state, history, outbox.
//! - [`events`]: transitions → `ASSET_COMPLIANCE` / `ASSET_CHECK_ERROR`.
//! - [`sinks`]: outbox subscribers (JSON lines, HTTPS).
//! - [`identity`]: the event's asset, user, company, team.
//! - [`service`]: systemd, the Windows service, logging.
//! - [`workflows`]: the policy's workflows, run durably (an outbox
//!   subscriber, cron, manual starts, interaction events).
//!
//! Checks run at start, when due, after a policy change, when a user
//! session registers, after a watched file changes (debounced
//! [`DEBOUNCE`]), and on demand. A check that runs past its budget (the
//! engine's time limit plus [`GRACE`]) is recorded as `error` and its
//! evaluator replaced; the other checks go on.

pub mod evaluator;
pub mod events;
pub mod identity;
#[cfg(windows)]
pub mod regwatch;
pub mod schedule;
pub mod service;
pub mod sinks;
pub mod store;
pub mod timer;
pub mod watch;
pub mod workflows;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::checks::{Outcome, Status};
use crate::config::LoadedConfig;
use crate::ipc::peer::Peer;
use crate::ipc::proto::{self, Op, Push};
use crate::ipc::server::{ApiError, Service};
use crate::ipc::sessions::Sessions;
use crate::os::Machine;
use crate::policy::Policy;
use crate::policy::manager::{PolicyManager, PullOutcome};
use crate::sql::Limits;
use crate::sql::table::Platform;
use evaluator::{Done, Evaluator, Job};
use events::Identity;
use store::{CheckState, Store, StoreError};

/// Changes to watched files are gathered this long before a re-check.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// Time past the engine's limit before an evaluation is abandoned.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long a `recheck` request waits for its results.
pub const RECHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// A jump this large between the wall and monotonic clocks is a wake from sleep.
pub const JUMP: Duration = Duration::from_secs(30);
/// Idle this long after the last evaluation, the daemon trims its memory
/// ([`service::trim_memory`]).
pub const TRIM_AFTER: Duration = Duration::from_secs(2);

/// How to run the daemon.
pub struct Options {
    pub config: LoadedConfig,
    /// Reads the config again (SIGHUP, `reload`).
    pub reload_config: Box<dyn Fn() -> Result<LoadedConfig, String> + Send + Sync>,
    /// The machine to evaluate: this one, or a recording (`--snapshot`).
    pub machine: Machine,
    /// A fixed policy (`--policy FILE`) instead of the one pulled, with its name.
    pub policy_file: Option<(Policy, String)>,
    /// The local API's socket path or pipe name.
    pub endpoint: String,
    /// Per-evaluation budget.
    pub limits: Limits,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("local API {endpoint}: {source}")]
    Endpoint {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Start(String),
}

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

enum Command {
    Recheck {
        ids: Vec<String>,
        done: oneshot::Sender<()>,
    },
    RunAll {
        reason: &'static str,
    },
    Pull {
        reply: oneshot::Sender<Result<String, String>>,
    },
    Reload {
        reply: Option<oneshot::Sender<Result<String, String>>>,
    },
    /// One read-only query on the evaluator (a workflow's `zrn:agent:query`).
    Query {
        sql: String,
        reply: oneshot::Sender<Result<crate::sql::QueryResult, String>>,
    },
}

/// What the local API reads without asking the core loop.
struct View {
    policy: Arc<Policy>,
    origin: String,
    problem: Option<String>,
    identity: Identity,
    due: HashMap<String, i64>,
    watching: HashSet<String>,
}

struct Shared {
    pid: u32,
    started_ms: i64,
    platform: Platform,
    endpoint: String,
    store: Arc<Mutex<Store>>,
    view: RwLock<View>,
    cmd: mpsc::Sender<Command>,
    pushes: broadcast::Sender<Push>,
    /// The user sessions connected, to show notifications.
    sessions: Arc<Sessions>,
    /// Set once at start (the runner's resources need `Shared` too).
    workflows: std::sync::OnceLock<Arc<workflows::Runner>>,
}

impl Shared {
    fn view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|p| p.into_inner())
    }
    fn view_mut(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }
    fn workflows(&self) -> Option<&Arc<workflows::Runner>> {
        self.workflows.get()
    }
    fn push(&self, kind: &str, data: Value) {
        let _ = self.pushes.send(Push {
            v: proto::VERSION,
            push: kind.to_string(),
            data,
        });
    }
}

async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .map_err(|e| format!("state store task: {e}"))?
        .map_err(|e| e.to_string())
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Error => "error",
        Status::NotApplicable => "not_applicable",
    }
}

/// One check as the API shows it.
fn check_json(
    check: &crate::policy::Check,
    state: Option<&CheckState>,
    view: &View,
    platform: Platform,
) -> Value {
    let status = state.map_or("pending", |s| status_name(s.status));
    let remediation = match state.map(|s| s.status) {
        Some(Status::Passed) | Some(Status::NotApplicable) => None,
        _ => check.remediation_for(platform),
    };
    json!({
        "id": check.id,
        "name": check.name,
        "severity": check.severity.to_string(),
        "status": status,
        "passed": state.and_then(|s| s.passed),
        "since": state.map(|s| events::rfc3339(s.since_ms)),
        "last_run": state.map(|s| events::rfc3339(s.last_run_ms)),
        "next_run": view.due.get(&check.id).map(|d| events::rfc3339(*d)),
        "duration_ms": state.map(|s| (s.duration_ms * 1000.0).round() / 1000.0),
        "error": state.and_then(|s| s.error.clone()),
        "evidence": state.and_then(|s| s.evidence.clone()),
        "remediation": remediation,
        "watching": view.watching.contains(&check.id),
    })
}

/// The local API's side of the daemon.
struct Api(Arc<Shared>);

impl Api {
    async fn status(&self) -> Result<Value, ApiError> {
        let (states, subs) = with_store(&self.0.store, |s| Ok((s.checks()?, s.subscribers()?)))
            .await
            .map_err(|e| ApiError::new("internal", e))?;
        let by_id: HashMap<&str, &CheckState> = states.iter().map(|s| (s.id.as_str(), s)).collect();
        let v = self.0.view();
        // A workflow waiting for the user's answer about a check: the tray
        // shows its buttons. Only the execution's id: the interaction op
        // admits the console user's session without the link token, and any
        // local user may read status.
        let awaiting = self
            .0
            .workflows()
            .map(|w| w.awaiting_by_check())
            .unwrap_or_default();
        let checks: Vec<Value> = v
            .policy
            .checks
            .iter()
            .map(|c| {
                let mut j = check_json(c, by_id.get(c.id.as_str()).copied(), &v, self.0.platform);
                if let Some(a) = awaiting.get(&c.id) {
                    j["awaiting"] = a.clone();
                }
                j
            })
            .collect();
        let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
        Ok(json!({
            "daemon": {
                "version": crate::VERSION,
                "pid": self.0.pid,
                "started": events::rfc3339(self.0.started_ms),
                "platform": self.0.platform.policy_key(),
                "endpoint": self.0.endpoint,
            },
            "asset": v.identity,
            "policy": {
                "name": v.policy.name,
                "serial": v.policy.serial,
                "origin": v.origin,
                "problem": v.problem,
            },
            "summary": {
                "passed": count("passed"),
                "failed": count("failed"),
                "error": count("error"),
                "not_applicable": count("not_applicable"),
                "pending": count("pending"),
            },
            "checks": checks,
            "sinks": subs.iter().map(|(name, delivered, dropped, waiting)| json!({
                "name": name, "delivered_seq": delivered, "dropped": dropped, "waiting": waiting,
            })).collect::<Vec<_>>(),
        }))
    }

    async fn checks(&self) -> Result<Value, ApiError> {
        let states = with_store(&self.0.store, |s| s.checks())
            .await
            .map_err(|e| ApiError::new("internal", e))?;
        let v = self.0.view();
        let p = self.0.platform;
        let list: Vec<Value> = v
            .policy
            .checks
            .iter()
            .map(|c| {
                let mut j = check_json(c, states.iter().find(|s| s.id == c.id), &v, p);
                j["description"] = json!(c.description);
                j["frameworks"] = json!(c.frameworks);
                j["interval"] = json!(c.interval);
                j["query"] = json!(c.query_for(p));
                j["remediation"] = json!(c.remediation_for(p));
                j
            })
            .collect();
        Ok(json!({ "platform": p.policy_key(), "checks": list }))
    }

    fn runner(&self) -> Result<&Arc<workflows::Runner>, ApiError> {
        self.0
            .workflows()
            .ok_or_else(|| ApiError::new("starting", "the workflow runner is not running yet"))
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.0
            .cmd
            .send(make(tx))
            .await
            .map_err(|_| ApiError::new("shutting_down", "the service is stopping"))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ApiError::new("shutting_down", "the service is stopping")),
            Err(_) => Err(ApiError::new(
                "timeout",
                format!("no result within {timeout:?}"),
            )),
        }
    }
}

impl Service for Api {
    async fn call(&self, peer: &Peer, op: Op) -> Result<Value, ApiError> {
        match op {
            Op::Hello => Ok(json!({
                "version": crate::VERSION,
                "protocol": proto::VERSION,
                "pid": self.0.pid,
                "access": format!("{:?}", peer.access()).to_lowercase(),
            })),
            Op::Status => self.status().await,
            Op::Checks => self.checks().await,
            Op::Subscribe => Ok(json!({"subscribed": true})),
            Op::History { check, limit } => {
                let limit = i64::from(limit.unwrap_or(100).min(10_000));
                let rows = with_store(&self.0.store, move |s| s.changes(check.as_deref(), limit))
                    .await
                    .map_err(|e| ApiError::new("internal", e))?;
                let changes: Vec<Value> = rows
                    .into_iter()
                    .map(|c| {
                        json!({
                            "at": events::rfc3339(c.at_ms),
                            "id": c.check,
                            "name": c.name,
                            "from": c.from.map(status_name),
                            "to": status_name(c.to),
                            "error": c.error,
                        })
                    })
                    .collect();
                Ok(json!({ "changes": changes }))
            }
            Op::Recheck { check } => {
                let ids: Vec<String> = {
                    let v = self.0.view();
                    match &check {
                        Some(id) if v.policy.check(id).is_none() => {
                            return Err(ApiError::new(
                                "not_found",
                                format!("the policy in force has no check {id:?}"),
                            ));
                        }
                        Some(id) => vec![id.clone()],
                        None => v.policy.checks.iter().map(|c| c.id.clone()).collect(),
                    }
                };
                tracing::info!(
                    "re-check of {} asked by {}",
                    check.as_deref().unwrap_or("every check"),
                    peer.describe()
                );
                let wanted = ids.clone();
                self.command(|done| Command::Recheck { ids, done }, RECHECK_TIMEOUT)
                    .await?;
                let status = self.status().await?;
                let checks: Vec<Value> = status["checks"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|c| wanted.iter().any(|w| c["id"] == w.as_str()))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(json!({ "checks": checks }))
            }
            Op::Session { user, display } => {
                let who = format!(
                    "user session registered by {} (user {user:?}, display {display:?})",
                    peer.describe()
                );
                tracing::info!("{who}");
                let _ = self
                    .0
                    .cmd
                    .send(Command::RunAll {
                        reason: "a user session connected",
                    })
                    .await;
                self.0.push(
                    "session",
                    json!({"user": user, "display": display, "uid": peer.uid, "session": peer.session}),
                );
                Ok(json!({"registered": true}))
            }
            Op::Interaction {
                execution,
                event,
                token,
            } => {
                tracing::info!(
                    "interaction {event:?} for execution {execution:?} from {}",
                    peer.describe()
                );
                let runner = self.runner()?;
                let response = runner
                    .send_event(&execution, &event, token.as_deref())
                    .map_err(|e| {
                        tracing::warn!(
                            "interaction {event:?} for execution {execution:?} from {} refused: {e}",
                            peer.describe()
                        );
                        ApiError::new(e.code(), e.to_string())
                    })?;
                self.0.push(
                    "interaction",
                    json!({"execution": execution, "event": event, "uid": peer.uid}),
                );
                Ok(json!({"accepted": true, "response": response}))
            }
            Op::WorkflowStart { name, input } => {
                tracing::info!("workflow {name:?} started by {}", peer.describe());
                let runner = self.runner()?;
                let id = runner
                    .start(&name, input.unwrap_or_else(|| json!({})), "manual", None)
                    .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
                Ok(json!({ "execution": id }))
            }
            Op::WorkflowExecutions { limit } => {
                let limit = i64::from(limit.unwrap_or(100).min(10_000));
                let rows = with_store(&self.0.store, move |s| s.wf_executions(limit))
                    .await
                    .map_err(|e| ApiError::new("internal", e))?;
                let awaiting = self.runner()?.awaiting();
                let list: Vec<Value> = rows
                    .into_iter()
                    .map(|r| {
                        let mut v = json!(r);
                        if let Some(a) = awaiting.get(&r.id).filter(|a| !a.is_empty()) {
                            v["awaiting"] = json!(a);
                        }
                        v
                    })
                    .collect();
                Ok(json!({ "executions": list }))
            }
            Op::WorkflowHistory { execution } => {
                let id = execution.clone();
                let h = with_store(&self.0.store, move |s| s.wf_history(&id))
                    .await
                    .map_err(|e| ApiError::new("internal", e))?
                    .ok_or_else(|| {
                        ApiError::new("not_found", format!("no execution {execution:?}"))
                    })?;
                Ok(json!({ "execution": execution, "history": h }))
            }
            Op::Notified {
                notification,
                outcome,
                action,
                reason,
            } => {
                tracing::info!(
                    "notification {notification:?}: {outcome:?} {} from {}",
                    action.as_deref().or(reason.as_deref()).unwrap_or(""),
                    peer.describe()
                );
                self.0
                    .sessions
                    .notified(peer, &notification, outcome, action, reason)?;
                Ok(json!({"accepted": true}))
            }
            Op::Pull => self
                .command(|reply| Command::Pull { reply }, Duration::from_secs(300))
                .await?
                .map(|m| json!({"result": m}))
                .map_err(|e| ApiError::new("pull_failed", e)),
            Op::Reload => self
                .command(
                    |reply| Command::Reload { reply: Some(reply) },
                    Duration::from_secs(300),
                )
                .await?
                .map(|m| json!({"result": m}))
                .map_err(|e| ApiError::new("reload_failed", e)),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.0.pushes.subscribe()
    }

    fn sessions(&self) -> Option<Arc<Sessions>> {
        Some(self.0.sessions.clone())
    }
}

/// Where the policy comes from.
enum PolicySource {
    Fixed,
    Managed {
        task: tokio::task::JoinHandle<()>,
        pull: mpsc::Sender<oneshot::Sender<Result<String, String>>>,
    },
}

/// A new policy from the policy task.
struct PolicyUpdate {
    policy: Policy,
    origin: String,
    problem: Option<String>,
}

/// Describes a pull's outcome.
fn describe_pull(o: &PullOutcome) -> Result<String, String> {
    match o {
        PullOutcome::Updated { serial, key_id } => Ok(match key_id {
            Some(k) => format!("updated: policy serial {serial} (signed by key {k}) is in force"),
            None => format!("updated: unsigned policy serial {serial} is in force"),
        }),
        PullOutcome::Unchanged { serial } => {
            Ok(format!("unchanged: policy serial {serial} is in force"))
        }
        PullOutcome::Refused { reason } => Err(format!("refused: {reason}")),
    }
}

/// The policy task: pulls at start and on the poll interval (or when
/// asked), and sends every newly accepted policy to the core loop.
fn spawn_policy_task(
    mut manager: PolicyManager,
    updates: mpsc::UnboundedSender<PolicyUpdate>,
) -> PolicySource {
    let (pull_tx, mut pull_rx) = mpsc::channel::<oneshot::Sender<Result<String, String>>>(8);
    let task = tokio::spawn(async move {
        let mut reply: Option<oneshot::Sender<Result<String, String>>> = None;
        loop {
            let outcome = manager.pull_once().await;
            let text = describe_pull(&outcome);
            if let PullOutcome::Updated { .. } = outcome {
                match manager.active() {
                    Ok((policy, origin)) => {
                        let _ = updates.send(PolicyUpdate {
                            policy,
                            origin: origin.to_string(),
                            problem: None,
                        });
                    }
                    Err(e) => tracing::error!("{e}"),
                }
            }
            if let Some(r) = reply.take() {
                let _ = r.send(text);
            }
            let delay = manager.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                asked = pull_rx.recv() => match asked {
                    Some(r) => reply = Some(r),
                    None => return,
                },
            }
        }
    });
    PolicySource::Managed {
        task,
        pull: pull_tx,
    }
}

/// The policy in force at start (or reload): the cache, the built-in
/// policy, or none (with the reason).
fn initial_policy(manager: &PolicyManager) -> PolicyUpdate {
    match manager.active() {
        Ok((policy, origin)) => PolicyUpdate {
            policy,
            origin: origin.to_string(),
            problem: None,
        },
        Err(e) => {
            tracing::error!("{e}; no checks run until a policy is accepted");
            PolicyUpdate {
                policy: initial_policy_placeholder(),
                origin: "none".into(),
                problem: Some(e.to_string()),
            }
        }
    }
}

struct Running {
    id: String,
    run: u64,
    started_ms: i64,
    deadline: Instant,
}

struct Group {
    remaining: HashSet<String>,
    after: u64,
    done: Option<oneshot::Sender<()>>,
}

/// The core loop's state.
struct Core {
    shared: Arc<Shared>,
    config: LoadedConfig,
    reload_config: Box<dyn Fn() -> Result<LoadedConfig, String> + Send + Sync>,
    machine: Machine,
    limits: Limits,
    evaluator: Evaluator,
    done_tx: mpsc::UnboundedSender<Done>,
    policy: Arc<Policy>,
    fixed_policy: bool,
    policy_source: PolicySource,
    policy_tx: mpsc::UnboundedSender<PolicyUpdate>,
    schedule: schedule::Schedule,
    queue: VecDeque<String>,
    running: Option<Running>,
    runs: u64,
    groups: Vec<Group>,
    watcher: watch::Watcher,
    debounce: HashMap<String, Instant>,
    sinks: Vec<(tokio::task::JoinHandle<()>, Arc<Notify>)>,
    facts: identity::MachineFacts,
    /// When to trim memory, once idle.
    trim_at: Option<Instant>,
}

impl Core {
    fn enqueue(&mut self, id: &str) {
        if self.schedule.contains(id) && !self.queue.iter().any(|q| q == id) {
            self.queue.push_back(id.to_string());
        }
    }

    fn enqueue_all(&mut self, reason: &str) {
        tracing::info!("running every check: {reason}");
        for id in self.schedule.ids() {
            self.enqueue(&id);
        }
    }

    fn publish_due(&self) {
        let due: HashMap<String, i64> = self
            .schedule
            .ids()
            .into_iter()
            .filter_map(|id| self.schedule.due_at(&id).map(|d| (id, d)))
            .collect();
        self.shared.view_mut().due = due;
    }

    fn respawn_evaluator(&mut self) {
        let generation = self.evaluator.generation + 1;
        match Evaluator::spawn(
            self.machine.clone(),
            self.limits,
            generation,
            self.done_tx.clone(),
        ) {
            Ok(e) => self.evaluator = e,
            Err(e) => tracing::error!("cannot start a new evaluator thread: {e}"),
        }
    }

    /// Starts the next queued check when none is running.
    fn dispatch(&mut self) {
        while self.running.is_none() {
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            let Some(check) = self.policy.check(&id).cloned() else {
                continue;
            };
            self.runs += 1;
            let run = self.runs;
            let job = || Job::Evaluate {
                run,
                check: Box::new(check.clone()),
            };
            if !self.evaluator.submit(job()) {
                tracing::warn!("the evaluator thread is gone; starting a new one");
                self.respawn_evaluator();
                if !self.evaluator.submit(job()) {
                    return;
                }
            }
            self.running = Some(Running {
                id,
                run,
                started_ms: now_ms(),
                deadline: Instant::now() + self.limits.time + GRACE,
            });
        }
    }

    /// Records a finished evaluation and acts on it.
    async fn finish(
        &mut self,
        run: u64,
        started_ms: i64,
        outcome: Outcome,
        reads: Vec<evaluator::Read>,
    ) {
        let id = outcome.id.clone();
        let identity = self.shared.view().identity.clone();
        let paths: Vec<String> = reads.iter().map(|r| r.path.clone()).collect();
        let keys: Vec<String> = reads.iter().filter_map(|r| r.key.clone()).collect();
        let hosts: Vec<PathBuf> = reads.into_iter().filter_map(|r| r.host).collect();
        let status = outcome.status;
        let o = outcome.clone();
        let recorded = with_store(&self.shared.store, move |s| {
            s.record(&o, started_ms, &paths, &identity)
        })
        .await;
        let jitter = schedule::jitter_ms(
            self.policy
                .check(&id)
                .map_or(Duration::from_secs(3600), |c| c.interval.0),
            schedule::random_unit(),
        );
        self.schedule.ran(&id, started_ms, jitter);
        match status {
            Status::Failed | Status::Error => self.watcher.set(&id, &hosts, &keys),
            _ => self.watcher.clear(&id),
        }
        {
            let mut v = self.shared.view_mut();
            if matches!(status, Status::Failed | Status::Error)
                && !(hosts.is_empty() && keys.is_empty())
            {
                v.watching.insert(id.clone());
            } else {
                v.watching.remove(&id);
            }
        }
        match recorded {
            Ok(r) => {
                if !r.events.is_empty() {
                    for (_, wake) in &self.sinks {
                        wake.notify_one();
                    }
                    if let Some(w) = self.shared.workflows() {
                        w.wake.notify_one();
                    }
                }
                if r.status_changed {
                    self.shared.push(
                        "check",
                        json!({
                            "id": id,
                            "name": outcome.name,
                            "status": status_name(status),
                            "previous": r.previous.map(status_name),
                            "error": outcome.error,
                            "events": r.events.iter().map(|(k, u)| json!({"type": k, "uuid": u})).collect::<Vec<_>>(),
                        }),
                    );
                }
            }
            Err(e) => tracing::error!(check = %id, "recording the result: {e}"),
        }
        for g in &mut self.groups {
            if run > g.after {
                g.remaining.remove(&id);
            }
        }
        self.settle_groups();
        self.publish_due();
        self.trim_at = Some(Instant::now() + TRIM_AFTER);
    }

    fn settle_groups(&mut self) {
        self.groups.retain_mut(|g| {
            if g.remaining.is_empty() {
                if let Some(d) = g.done.take() {
                    let _ = d.send(());
                }
                false
            } else {
                true
            }
        });
    }

    /// Gives up on an evaluation past its budget.
    async fn abandon(&mut self) {
        let Some(r) = self.running.take() else { return };
        let budget = self.limits.time + GRACE;
        tracing::error!(check = %r.id, "evaluation ran past its budget of {budget:?}; abandoning it and starting a new evaluator");
        let name = self
            .policy
            .check(&r.id)
            .map_or(r.id.clone(), |c| c.name.clone());
        let outcome = Outcome {
            id: r.id.clone(),
            name,
            status: Status::Error,
            evidence: None,
            error: Some(format!(
                "the evaluation ran past its budget of {}s and was abandoned",
                budget.as_secs()
            )),
            remediation: None,
            duration: budget,
        };
        self.respawn_evaluator();
        self.finish(r.run, r.started_ms, outcome, Vec::new()).await;
    }

    async fn apply_policy(&mut self, update: PolicyUpdate, reason: &'static str) {
        let policy = Arc::new(update.policy);
        let ids: Vec<String> = policy.checks.iter().map(|c| c.id.clone()).collect();
        tracing::info!(
            serial = policy.serial,
            checks = ids.len(),
            origin = %update.origin,
            "policy in force"
        );
        let keep = ids.clone();
        let last_runs = with_store(&self.shared.store, move |s| {
            s.retain_checks(&keep)?;
            s.last_runs()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("reading the state store: {e}");
            HashMap::new()
        });
        let intervals: Vec<(String, Duration)> = policy
            .checks
            .iter()
            .map(|c| (c.id.clone(), c.interval.0))
            .collect();
        self.schedule.set_checks(&intervals, &last_runs, now_ms());
        self.watcher.retain(&ids);
        self.queue.retain(|q| ids.contains(q));
        for g in &mut self.groups {
            g.remaining.retain(|r| ids.contains(r));
        }
        self.settle_groups();
        {
            let mut v = self.shared.view_mut();
            v.policy = policy.clone();
            v.origin = update.origin.clone();
            v.problem = update.problem.clone();
            v.watching.retain(|w| ids.contains(w));
        }
        if let Some(w) = self.shared.workflows() {
            w.set_policy(&policy, update.origin != "none");
        }
        self.policy = policy;
        self.enqueue_all(reason);
        self.publish_due();
        self.shared.push(
            "policy",
            json!({"serial": self.policy.serial, "origin": update.origin}),
        );
    }

    fn start_sinks(&mut self) -> Result<(), String> {
        for (task, _) in self.sinks.drain(..) {
            task.abort();
        }
        let sinks = sinks::from_config(&self.config.config);
        let mut names: Vec<String> = sinks.iter().map(|s| s.name.clone()).collect();
        names.push(workflows::SUBSCRIBER.to_string());
        {
            let mut st = self.shared.store.lock().unwrap_or_else(|p| p.into_inner());
            st.retain_subscribers(&names).map_err(|e| e.to_string())?;
            for n in &names {
                st.subscribe(n).map_err(|e| e.to_string())?;
            }
        }
        for s in sinks {
            tracing::info!(sink = %s.name, "event sink");
            let wake = Arc::new(Notify::new());
            let task = tokio::spawn(sinks::run(s, self.shared.store.clone(), wake.clone()));
            self.sinks.push((task, wake));
        }
        Ok(())
    }

    fn start_policy_source(&mut self) -> Option<PolicyUpdate> {
        if let PolicySource::Managed { task, .. } = &self.policy_source {
            task.abort();
        }
        if self.fixed_policy {
            return None;
        }
        let manager = PolicyManager::new(&self.config.config);
        let first = initial_policy(&manager);
        self.policy_source = if manager.url().is_some() {
            spawn_policy_task(manager, self.policy_tx.clone())
        } else {
            PolicySource::Fixed
        };
        Some(first)
    }

    async fn reload(&mut self) -> Result<String, String> {
        service::notify("RELOADING");
        let result = self.reload_inner().await;
        service::notify("READY");
        result
    }

    async fn reload_inner(&mut self) -> Result<String, String> {
        tracing::info!("reloading the config and policy");
        let loaded = (self.reload_config)().map_err(|e| {
            tracing::error!("reload: {e}; keeping the config in force");
            e
        })?;
        if loaded.config.state_dir() != self.config.config.state_dir() {
            tracing::warn!("reload: state_dir changed; it takes effect at the next start");
        }
        self.config = loaded;
        let identity = identity::resolve(
            &self.config.config.asset,
            &self.facts,
            &self.config.config.state_dir(),
        );
        self.shared.view_mut().identity = identity;
        self.start_sinks()?;
        if let Some(first) = self.start_policy_source() {
            self.apply_policy(first, "the config was reloaded").await;
        }
        Ok("reloaded".into())
    }

    /// Asks the policy task to pull now; the answer goes to `reply` from a
    /// task of its own, so a slow server does not hold up the core loop.
    fn pull(&self, reply: oneshot::Sender<Result<String, String>>) {
        match &self.policy_source {
            PolicySource::Managed { pull, .. } => {
                let pull = pull.clone();
                tokio::spawn(async move {
                    let (tx, rx) = oneshot::channel();
                    let r = match pull.send(tx).await {
                        Err(_) => Err("the policy task is not running".to_string()),
                        Ok(()) => rx
                            .await
                            .unwrap_or_else(|_| Err("the policy task stopped".to_string())),
                    };
                    let _ = reply.send(r);
                });
            }
            PolicySource::Fixed if self.fixed_policy => {
                let _ = reply.send(Err(
                    "the service was started with --policy; there is nothing to pull".into(),
                ));
            }
            PolicySource::Fixed => {
                let _ = reply.send(Err("no policy_url is configured".into()));
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Recheck { ids, done } => {
                let after = self.runs;
                for id in &ids {
                    self.enqueue(id);
                }
                self.groups.push(Group {
                    remaining: ids
                        .into_iter()
                        .filter(|i| self.schedule.contains(i))
                        .collect(),
                    after,
                    done: Some(done),
                });
                self.settle_groups();
            }
            Command::RunAll { reason } => self.enqueue_all(reason),
            Command::Pull { reply } => self.pull(reply),
            Command::Reload { reply } => {
                let r = self.reload().await;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            Command::Query { sql, reply } => {
                if !self.evaluator.submit(Job::Query { sql, reply }) {
                    tracing::warn!("the evaluator thread is gone; starting a new one");
                    self.respawn_evaluator();
                }
            }
        }
    }
}

/// Reads what identifies this machine, through the evaluator (so a
/// recording answers for itself).
async fn machine_facts(ev: &Evaluator, machine: &Machine) -> identity::MachineFacts {
    let (tx, rx) = oneshot::channel();
    let mut facts = identity::MachineFacts::default();
    if ev.submit(Job::Query {
        sql: "SELECT uuid, hostname FROM system_info".into(),
        reply: tx,
    }) && let Ok(Ok(Ok(r))) = tokio::time::timeout(Duration::from_secs(30), rx).await
    {
        let text = |c: &str| match r.get(0, c) {
            Some(crate::sql::Value::Text(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        facts.hardware_uuid = text("uuid");
        facts.hostname = text("hostname");
    }
    if facts.hostname.is_none() {
        facts.hostname = machine
            .host
            .uname()
            .ok()
            .map(|u| u.nodename)
            .filter(|n| !n.is_empty());
    }
    if machine.platform == Platform::Linux {
        facts.machine_id = machine
            .fs
            .read_string(std::path::Path::new("/etc/machine-id"))
            .ok();
    }
    facts
}

/// Runs the daemon until `stop` resolves (or SIGTERM/SIGINT on Unix).
pub async fn run(opts: Options, stop: impl Future<Output = ()> + Send) -> Result<(), DaemonError> {
    let state_dir = opts.config.config.state_dir();
    let store = Arc::new(Mutex::new(Store::open(&state_dir)?));
    tracing::info!("state store {}", state_dir.join("state.db").display());

    #[cfg(unix)]
    let listener =
        crate::ipc::bind_unix(std::path::Path::new(&opts.endpoint)).map_err(|source| {
            DaemonError::Endpoint {
                endpoint: opts.endpoint.clone(),
                source,
            }
        })?;

    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let evaluator = Evaluator::spawn(opts.machine.clone(), opts.limits, 1, done_tx.clone())
        .map_err(|e| DaemonError::Start(format!("cannot start the evaluator thread: {e}")))?;
    let facts = machine_facts(&evaluator, &opts.machine).await;
    let identity = identity::resolve(&opts.config.config.asset, &facts, &state_dir);
    tracing::info!(
        asset = identity.asset.name.as_deref().unwrap_or("?"),
        uuid = identity.asset.uuid.as_deref().unwrap_or("?"),
        "this device"
    );

    let (cmd_tx, mut cmd_rx) = mpsc::channel(64);
    let (pushes, _) = broadcast::channel(256);
    let empty = Arc::new(initial_policy_placeholder());
    let shared = Arc::new(Shared {
        pid: std::process::id(),
        started_ms: now_ms(),
        platform: opts.machine.platform,
        endpoint: opts.endpoint.clone(),
        store: store.clone(),
        view: RwLock::new(View {
            policy: empty.clone(),
            origin: "none".into(),
            problem: None,
            identity,
            due: HashMap::new(),
            watching: HashSet::new(),
        }),
        cmd: cmd_tx.clone(),
        pushes,
        sessions: Arc::default(),
        workflows: std::sync::OnceLock::new(),
    });
    let agent = Arc::new(workflows::agent::DaemonAgent(shared.clone()));
    let reach = crate::resources::Reach {
        sessions: shared.sessions.clone(),
        interactions: agent.clone(),
        notify: crate::resources::notify::NotifySettings::from_config(&opts.config.config),
        slack: crate::resources::slack::SlackSettings::from_config(&opts.config.config),
        token: Arc::new(crate::resources::slack::SecretToken(Arc::from(
            crate::secrets::system(&opts.config.config.state_dir()),
        ))),
    };
    let runner = workflows::Runner::new(
        store.clone(),
        agent,
        opts.config.config.pinned_ca.clone(),
        reach,
    );
    let _ = shared.workflows.set(runner.clone());
    let workflow_tasks = [
        tokio::spawn(runner.clone().consume()),
        tokio::spawn(runner.cron()),
    ];

    let (watch_tx, mut watch_rx) = mpsc::unbounded_channel();
    let (policy_tx, mut policy_rx) = mpsc::unbounded_channel();
    let fixed = opts.policy_file.is_some();
    let mut core = Core {
        shared: shared.clone(),
        config: opts.config,
        reload_config: opts.reload_config,
        machine: opts.machine,
        limits: opts.limits,
        evaluator,
        done_tx,
        policy: empty,
        fixed_policy: fixed,
        policy_source: PolicySource::Fixed,
        policy_tx,
        schedule: schedule::Schedule::default(),
        queue: VecDeque::new(),
        running: None,
        runs: 0,
        groups: Vec::new(),
        watcher: watch::Watcher::new(watch_tx),
        debounce: HashMap::new(),
        sinks: Vec::new(),
        facts,
        trim_at: None,
    };
    core.start_sinks().map_err(DaemonError::Start)?;
    let first = match opts.policy_file {
        Some((policy, name)) => PolicyUpdate {
            policy,
            origin: name,
            problem: None,
        },
        None => core
            .start_policy_source()
            .unwrap_or_else(initial_policy_placeholder_update),
    };
    core.apply_policy(first, "the service started").await;

    // The local API.
    let (api_stop_tx, api_stop_rx) = oneshot::channel::<()>();
    let api = Arc::new(Api(shared.clone()));
    let api_stopped = async move {
        let _ = api_stop_rx.await;
    };
    #[cfg(unix)]
    let api_task = tokio::spawn(crate::ipc::server::serve_unix(listener, api, api_stopped));
    #[cfg(windows)]
    let api_task = {
        let endpoint = opts.endpoint.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::ipc::pipe::serve_pipe(&endpoint, api, api_stopped).await {
                tracing::error!("local API {endpoint}: {e}");
            }
        })
    };
    tracing::info!(endpoint = %opts.endpoint, "local API listening");

    service::notify("READY");
    let watchdog = service::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                service::notify("WATCHDOG");
            }
        })
    });

    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| DaemonError::Start(format!("SIGHUP handler: {e}")))?;
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| DaemonError::Start(format!("SIGTERM handler: {e}")))?;
    tokio::pin!(stop);

    let mut timer = timer::WallTimer::new()
        .map_err(|e| DaemonError::Start(format!("cannot create a timer: {e}")))?;
    let mut jump = schedule::JumpDetector::new(now_ms(), Instant::now());
    loop {
        core.dispatch();
        let now = now_ms();
        if let Some(drift) = jump.check(now, Instant::now(), JUMP) {
            tracing::info!(
                "the wall clock moved {:.0}s beyond the monotonic clock (resumed from sleep, or the clock was set); running due checks",
                drift as f64 / 1e3
            );
            for id in core.schedule.due(now) {
                core.enqueue(&id);
                core.schedule.ran(&id, now, 0);
            }
            core.dispatch();
        }
        let wall_delay = core
            .schedule
            .next_due()
            .map(|d| Duration::from_millis(d.saturating_sub(now).max(0) as u64));
        let debounce_at = core.debounce.values().min().copied();
        let deadline = core.running.as_ref().map(|r| r.deadline);
        let idle = core.running.is_none() && core.queue.is_empty() && core.debounce.is_empty();
        let trim_at = core.trim_at.filter(|_| idle);
        #[cfg(unix)]
        let signals = async {
            tokio::select! {
                _ = hup.recv() => "hup",
                _ = term.recv() => "term",
                _ = tokio::signal::ctrl_c() => "term",
            }
        };
        #[cfg(not(unix))]
        let signals = async {
            let _ = tokio::signal::ctrl_c().await;
            "term"
        };
        tokio::select! {
            Some(done) = done_rx.recv() => {
                let current = core.running.as_ref().is_some_and(|r| r.run == done.run)
                    && done.generation == core.evaluator.generation;
                if current {
                    let r = core.running.take();
                    let started = r.map_or_else(now_ms, |r| r.started_ms);
                    core.finish(done.run, started, done.outcome, done.reads).await;
                }
            }
            Some(cmd) = cmd_rx.recv() => core.command(cmd).await,
            Some(paths) = watch_rx.recv() => {
                let mut paths = paths;
                while let Ok(more) = watch_rx.try_recv() {
                    paths.extend(more);
                }
                let at = Instant::now() + DEBOUNCE;
                for id in core.watcher.affected(&paths) {
                    tracing::debug!(check = %id, "a file or registry key it read changed");
                    core.debounce.insert(id, at);
                }
            }
            Some(update) = policy_rx.recv() => core.apply_policy(update, "a new policy was accepted").await,
            _ = timer.sleep(wall_delay.unwrap_or(Duration::from_secs(3600))), if wall_delay.is_some() => {
                let now = now_ms();
                for id in core.schedule.due(now) {
                    core.enqueue(&id);
                    // Not due again until it has run.
                    core.schedule.ran(&id, now, 0);
                }
            }
            _ = tokio::time::sleep_until(debounce_at.map_or_else(tokio::time::Instant::now, Into::into)), if debounce_at.is_some() => {
                let now = Instant::now();
                let ready: Vec<String> = core.debounce.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for id in ready {
                    core.debounce.remove(&id);
                    tracing::info!(check = %id, "re-checking: a file or registry key it read changed");
                    core.enqueue(&id);
                }
            }
            _ = tokio::time::sleep_until(deadline.map_or_else(tokio::time::Instant::now, Into::into)), if deadline.is_some() => {
                core.abandon().await;
            }
            _ = tokio::time::sleep_until(trim_at.map_or_else(tokio::time::Instant::now, Into::into)), if trim_at.is_some() => {
                core.trim_at = None;
                // A read of /proc/self/maps and a few dozen madvise calls: quick.
                let n = service::trim_memory();
                tracing::debug!(mappings = n, "idle: memory trimmed");
            }
            sig = signals => {
                if sig == "hup" {
                    let _ = core.reload().await;
                } else {
                    tracing::info!("stopping (signal)");
                    break;
                }
            }
            _ = &mut stop => {
                tracing::info!("stopping (service stop)");
                break;
            }
        }
    }

    service::notify("STOPPING");
    let _ = api_stop_tx.send(());
    let _ = api_task.await;
    for (task, _) in core.sinks.drain(..) {
        task.abort();
    }
    for task in workflow_tasks {
        task.abort();
    }
    if let PolicySource::Managed { task, .. } = &core.policy_source {
        task.abort();
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    #[cfg(unix)]
    let _ = std::fs::remove_file(&shared.endpoint);
    tracing::info!("stopped");
    Ok(())
}

fn initial_policy_placeholder() -> Policy {
    Policy {
        version: crate::policy::FORMAT_VERSION,
        serial: 0,
        name: None,
        checks: Vec::new(),
        workflows: Vec::new(),
        settings: Default::default(),
    }
}

fn initial_policy_placeholder_update() -> PolicyUpdate {
    PolicyUpdate {
        policy: initial_policy_placeholder(),
        origin: "none".into(),
        problem: None,
    }
}
