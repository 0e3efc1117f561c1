//! The executor.
//!
//! An execution is a set of *threads*: the top level (key `""`), each
//! Parallel branch and each Map iteration (key `"<parent>/<index>"`). Each
//! thread's whole position is a [`ThreadState`] — the state it is in, that
//! state's raw input, and a [`Phase`] saying how far the state got (entered,
//! waiting until a time, waiting for a retry, waiting for an event, running
//! branches). Every transition is an explicit step that rewrites the thread's
//! row in [`ExecutionState::threads`] and appends to the history, and then
//! calls the [`Journal`] with both. That is the durability contract: the
//! daemon's store commits the thread row and the new history entries in one
//! SQLite transaction per `Journal::record` call; after a crash it loads the
//! rows back into an `ExecutionState` and calls [`Engine::resume`], which
//! continues each thread from its phase (a Wait sleeps only what is left of
//! its deadline; a task that was running is invoked again: at-least-once).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Clock, rfc3339};
use crate::error::{self as e, ErrorInfo};
use crate::model::*;
use crate::path::merge_into;
use crate::resource::{Registry, TaskCall};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    Aborted,
    TimedOut,
}

/// Where one thread is. Serializable: this is what the daemon stores.
#[derive(Debug, Serialize, Deserialize)]
pub struct ThreadState {
    /// The model's own name (shared, see [`Name`]).
    pub state: Name,
    /// The state's raw input. Shared (an `Arc`) with the history and with
    /// the state's output when the state hands its input on unchanged, so a
    /// step copies no document (it serializes as the plain value).
    pub input: Arc<Value>,
    pub entered_ms: u64,
    pub phase: Phase,
    /// Retries used so far, per retrier of the current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<u32>,
    /// For a Map iteration: its index and item (`$$.Map.Item`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_item: Option<(usize, Value)>,
}

// By hand for `clone_from`: the executor copies a thread's row into the
// execution state at every step, and reusing the row's buffers (the retry
// counts, the phase) saves allocations per transition.
impl Clone for ThreadState {
    fn clone(&self) -> Self {
        ThreadState {
            state: self.state.clone(),
            input: self.input.clone(),
            entered_ms: self.entered_ms,
            phase: self.phase.clone(),
            retries: self.retries.clone(),
            map_item: self.map_item.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.state = source.state.clone();
        self.input = source.input.clone();
        self.entered_ms = source.entered_ms;
        // Most steps copy `Run` over `Run`: nothing to drop or copy.
        if !matches!(
            (&self.phase, &source.phase),
            (Phase::Run, Phase::Run) | (Phase::Enter, Phase::Enter)
        ) {
            self.phase.clone_from(&source.phase);
        }
        self.retries.clone_from(&source.retries);
        self.map_item.clone_from(&source.map_item);
    }
}

impl ThreadState {
    pub fn enter(state: impl Into<Name>, input: impl Into<Arc<Value>>) -> Self {
        ThreadState {
            state: state.into(),
            input: input.into(),
            entered_ms: 0,
            phase: Phase::Enter,
            retries: Vec::new(),
            map_item: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// About to enter the state.
    Enter,
    /// Entered; doing (or redoing) the state's work.
    Run,
    /// A Wait state, until this time.
    Waiting { until_ms: u64 },
    /// A failed attempt; the next starts at this time.
    RetryWait { until_ms: u64 },
    /// A task with events finished with `output`; waiting for an event.
    AwaitEvent {
        output: Value,
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    /// A Parallel or Map is running its children (rows `<key>/<i>`);
    /// `outputs[i]` is filled as each finishes.
    Branches {
        inputs: Vec<Value>,
        outputs: Vec<Option<Value>>,
    },
}

/// The whole, serializable state of an execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionState {
    pub id: String,
    pub workflow: String,
    pub input: Value,
    pub started_ms: u64,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Live threads by key (`""` is the top level).
    pub threads: BTreeMap<String, ThreadState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub seq: u64,
    pub at_ms: u64,
    /// The thread key (`""`, `"/0"`, `"/1/3"`), shared by the thread's events.
    pub thread: Arc<str>,
    #[serde(flatten)]
    pub kind: HistoryKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum HistoryKind {
    ExecutionStarted {
        input: Value,
    },
    StateEntered {
        state: Name,
        input: Arc<Value>,
    },
    StateExited {
        state: Name,
        output: Arc<Value>,
    },
    TaskScheduled {
        state: Name,
        resource: String,
        parameters: Value,
        attempt: u32,
    },
    TaskSucceeded {
        state: Name,
        resource: String,
        result: Value,
    },
    TaskFailed {
        state: Name,
        resource: String,
        error: ErrorInfo,
    },
    RetryScheduled {
        state: Name,
        error: ErrorInfo,
        retry: u32,
        delay_ms: u64,
    },
    ErrorCaught {
        state: Name,
        error: ErrorInfo,
        next: String,
    },
    WaitStarted {
        state: Name,
        until_ms: u64,
    },
    EventAwaited {
        state: Name,
        names: Vec<String>,
    },
    EventReceived {
        state: Name,
        name: String,
        data: Value,
    },
    EventTimedOut {
        state: Name,
    },
    ExecutionSucceeded {
        output: Value,
    },
    ExecutionFailed {
        error: ErrorInfo,
    },
    ExecutionAborted,
}

/// One committed step, handed to the [`Journal`].
#[derive(Debug)]
pub struct Step<'a> {
    pub execution_id: &'a str,
    pub thread: &'a str,
    /// The thread's new row; `None` when the thread finished (delete it).
    pub thread_state: Option<&'a ThreadState>,
    /// History entries since the last step.
    pub history: &'a [HistoryEvent],
    pub status: Status,
    /// Set on the last step of a finished execution.
    pub output: Option<&'a Value>,
    pub error: Option<&'a ErrorInfo>,
}

/// Why a journal could not make a step durable (a full disk, a broken
/// database). The engine then *suspends* the execution: it stops driving
/// it, takes no further step, and leaves it `RUNNING`, so the journal's
/// last committed state is what a restart resumes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the journal could not commit a step: {0}")]
pub struct JournalError(pub String);

/// Where steps go to become durable. Called synchronously at each step,
/// before the step's effects (the next task call, the next sleep) happen;
/// an error suspends the execution (see [`JournalError`]).
pub trait Journal: Send + Sync {
    fn record(&self, step: &Step<'_>) -> Result<(), JournalError>;
}

/// What a finished execution came to.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    pub history: Vec<HistoryEvent>,
}

/// A thread waiting for one of some named events.
#[derive(Debug, Clone, Serialize)]
pub struct Awaiting {
    pub thread: String,
    pub state: String,
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("no state of this execution is waiting for the event {0:?}")]
    NotAwaited(String),
}

/// Runs workflows with one set of resources, one clock and one bound on
/// concurrent branches.
#[derive(Clone)]
pub struct Engine {
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    max_concurrency: usize,
    journal: Option<Arc<dyn Journal>>,
    record_history: bool,
}

impl Engine {
    pub fn new(registry: Registry, clock: Arc<dyn Clock>) -> Self {
        Engine {
            registry: Arc::new(registry),
            clock,
            max_concurrency: 16,
            journal: None,
            record_history: true,
        }
    }

    /// At most this many Parallel branches or Map iterations of one state
    /// run at once (a Map's own MaxConcurrency may lower it).
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Without history (for benchmarks); the journal still gets every step.
    pub fn without_history(mut self) -> Self {
        self.record_history = false;
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts an execution on the current tokio runtime.
    pub fn start(&self, wf: Arc<Workflow>, input: Value) -> Execution {
        self.start_with_id(wf, uuid::Uuid::new_v4().to_string(), input)
    }

    /// Starts an execution under an id the caller chose (a durable caller
    /// stores the execution's row under that id before it starts).
    pub fn start_with_id(&self, wf: Arc<Workflow>, id: String, input: Value) -> Execution {
        let now = self.clock.now_ms();
        let mut threads = BTreeMap::new();
        threads.insert(
            String::new(),
            ThreadState::enter(wf.machine.start.clone(), input.clone()),
        );
        let state = ExecutionState {
            id,
            workflow: wf.name.clone(),
            input: input.clone(),
            started_ms: now,
            status: Status::Running,
            output: None,
            error: None,
            threads,
        };
        self.spawn(wf, state, true)
    }

    /// Continues an execution from its stored state.
    pub fn resume(&self, wf: Arc<Workflow>, state: ExecutionState) -> Execution {
        self.spawn(wf, state, false)
    }

    /// Runs to the end (no events can be sent: use [`Engine::start`] for that).
    pub async fn run(&self, wf: Arc<Workflow>, input: Value) -> Outcome {
        let execution = self.start(wf, input);
        let mut outcome = execution.wait_without_history().await;
        // Nobody else holds this execution: its history moves out rather
        // than being copied.
        outcome.history = std::mem::take(&mut lock(&execution.shared.history).events);
        outcome
    }

    fn spawn(&self, wf: Arc<Workflow>, state: ExecutionState, fresh: bool) -> Execution {
        let (cancel, _) = tokio::sync::watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let execution = context_execution(&wf, &state);
        let shared = Arc::new(Shared {
            engine: self.clone(),
            wf,
            state: Mutex::new(state),
            history: Mutex::new(History::default()),
            cancel,
            aborting: std::sync::atomic::AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
            waiting: tokio::sync::Notify::new(),
            execution,
            suspended: std::sync::atomic::AtomicBool::new(false),
        });
        let sh = shared.clone();
        tokio::spawn(async move {
            sh.drive(fresh).await;
            let _ = done_tx.send(true);
            sh.waiting.notify_waiters();
        });
        Execution {
            shared,
            done: done_rx,
        }
    }
}

fn context_execution(wf: &Workflow, st: &ExecutionState) -> Value {
    json!({
        "Id": st.id,
        "Input": st.input,
        "Name": st.id,
        "StartTime": rfc3339(st.started_ms),
        "StateMachine": {"Id": wf.name, "Name": wf.name},
    })
}

#[derive(Default)]
struct History {
    events: Vec<HistoryEvent>,
    journaled: usize,
}

struct Waiter {
    thread: String,
    state: String,
    names: Vec<String>,
    tx: tokio::sync::oneshot::Sender<(String, Value)>,
}

struct Shared {
    engine: Engine,
    wf: Arc<Workflow>,
    state: Mutex<ExecutionState>,
    history: Mutex<History>,
    cancel: tokio::sync::watch::Sender<bool>,
    /// Mirrors `cancel` for the check at every step (a load rather than
    /// the channel's lock); set through [`Shared::abort`].
    aborting: std::sync::atomic::AtomicBool,
    waiters: Mutex<Vec<Waiter>>,
    waiting: tokio::sync::Notify,
    execution: Value,
    /// The journal failed: take no further step.
    suspended: std::sync::atomic::AtomicBool,
}

/// Locks, recovering the data from a poisoned lock (a panicking resource
/// cannot leave these structures half-written: each write is one insert).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running (or finished) execution.
#[derive(Clone)]
pub struct Execution {
    shared: Arc<Shared>,
    done: tokio::sync::watch::Receiver<bool>,
}

impl Execution {
    pub fn id(&self) -> String {
        lock(&self.shared.state).id.clone()
    }

    /// Waits for the end.
    pub async fn wait(&self) -> Outcome {
        let mut outcome = self.wait_without_history().await;
        outcome.history = self.history();
        outcome
    }

    async fn wait_without_history(&self) -> Outcome {
        let mut done = self.done.clone();
        while !*done.borrow() {
            if done.changed().await.is_err() {
                break;
            }
        }
        let st = lock(&self.shared.state).clone();
        Outcome {
            id: st.id,
            status: st.status,
            output: st.output,
            error: st.error,
            history: Vec::new(),
        }
    }

    pub fn is_finished(&self) -> bool {
        *self.done.borrow()
    }

    /// Whether the journal failed and the engine stopped driving this
    /// execution (it stays `RUNNING`; resume it from the journal).
    pub fn is_suspended(&self) -> bool {
        self.shared
            .suspended
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the execution: waits and task calls are dropped, the status
    /// becomes ABORTED.
    pub fn cancel(&self) {
        self.shared.abort();
    }

    /// The serializable state, as the journal last saw it.
    pub fn snapshot(&self) -> ExecutionState {
        lock(&self.shared.state).clone()
    }

    pub fn history(&self) -> Vec<HistoryEvent> {
        lock(&self.shared.history).events.clone()
    }

    /// The threads waiting for events now.
    pub fn awaiting_now(&self) -> Vec<Awaiting> {
        lock(&self.shared.waiters)
            .iter()
            .map(|w| Awaiting {
                thread: w.thread.clone(),
                state: w.state.clone(),
                names: w.names.clone(),
            })
            .collect()
    }

    /// Waits until some thread waits for an event (or the execution ends:
    /// then the list is empty).
    pub async fn awaiting(&self) -> Vec<Awaiting> {
        loop {
            let notified = self.shared.waiting.notified();
            let now = self.awaiting_now();
            if !now.is_empty() || self.is_finished() {
                return now;
            }
            notified.await;
        }
    }

    /// Delivers an interaction event (a button press) to the first thread
    /// waiting for that name. Returns the event's `response`, for the sender
    /// to show (e.g. the new text of the message whose button was pressed).
    pub fn send_event(&self, name: &str, data: Value) -> Result<Option<Value>, EventError> {
        let mut ws = lock(&self.shared.waiters);
        let Some(i) = ws.iter().position(|w| w.names.iter().any(|n| n == name)) else {
            return Err(EventError::NotAwaited(name.to_string()));
        };
        let w = ws.remove(i);
        drop(ws);
        let response = self.response_of(&w.state, name);
        w.tx.send((name.to_string(), data))
            .map_err(|_| EventError::NotAwaited(name.to_string()))?;
        Ok(response)
    }

    fn response_of(&self, state: &str, name: &str) -> Option<Value> {
        fn find<'a>(m: &'a StateMachine, state: &str) -> Option<&'a State> {
            m.get(state)
                .or_else(|| m.children().find_map(|c| find(c, state)))
        }
        match &find(&self.shared.wf.machine, state)?.kind {
            StateKind::Task(t) => t.events.iter().find(|e| e.name == name)?.response.clone(),
            _ => None,
        }
    }
}

/// What a state's work came to.
enum Flow {
    Next(Name, Arc<Value>),
    End(Arc<Value>),
}

type Res<T> = Result<T, ErrorInfo>;

fn aborted() -> ErrorInfo {
    ErrorInfo::new(e::ABORTED, "the execution was cancelled")
}

impl Shared {
    fn now(&self) -> u64 {
        self.engine.clock.now_ms()
    }

    /// Whether history events are kept (for the caller or the journal):
    /// when not, the executor does not even build them.
    fn recording(&self) -> bool {
        self.engine.record_history || self.engine.journal.is_some()
    }

    /// Records that `thread` left `state` with `output` (the output is
    /// shared, not copied).
    fn exited(&self, thread: &Name, state: &State, output: &Arc<Value>) {
        if self.recording() {
            self.push(
                thread,
                HistoryKind::StateExited {
                    state: state.name.clone(),
                    output: output.clone(),
                },
            );
        }
    }

    fn push(&self, thread: &Name, kind: HistoryKind) {
        if !self.recording() {
            return;
        }
        let at_ms = self.now();
        let mut h = lock(&self.history);
        let seq = h.events.len() as u64 + 1;
        h.events.push(HistoryEvent {
            seq,
            at_ms,
            thread: thread.clone(),
            kind,
        });
    }

    /// Cancels: every wait and task call of the execution is dropped.
    fn abort(&self) {
        self.aborting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.cancel.send_replace(true);
    }

    fn is_cancelled(&self) -> bool {
        self.aborting.load(std::sync::atomic::Ordering::Acquire)
    }

    fn is_suspended(&self) -> bool {
        self.suspended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Commits one step: the thread's row and the history since the last.
    /// When the journal fails, the execution is suspended: cancelled
    /// without a further step, so nothing after the last commit happens.
    fn save(&self, key: &str, t: Option<&ThreadState>) -> Res<()> {
        if self.is_suspended() {
            return Err(aborted());
        }
        let journal = {
            let mut st = lock(&self.state);
            match t {
                Some(t) => match st.threads.get_mut(key) {
                    Some(row) => row.clone_from(t),
                    None => {
                        st.threads.insert(key.to_string(), t.clone());
                    }
                },
                None => {
                    st.threads.remove(key);
                }
            }
            // What the journal needs of the execution (nothing without one).
            self.engine
                .journal
                .as_ref()
                .map(|j| (j, st.status, st.output.clone(), st.error.clone()))
        };
        if let Some((j, status, output, error)) = journal {
            let mut h = lock(&self.history);
            let from = h.journaled;
            let r = j.record(&Step {
                execution_id: self.execution["Id"].as_str().unwrap_or_default(),
                thread: key,
                thread_state: t,
                history: &h.events[from..],
                status,
                output: output.as_ref(),
                error: error.as_ref(),
            });
            if r.is_err() {
                self.suspended
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                self.abort();
                return Err(aborted());
            }
            h.journaled = h.events.len();
            if !self.engine.record_history {
                h.events.clear();
                h.journaled = 0;
            }
        }
        Ok(())
    }

    async fn cancelled(&self) {
        let mut rx = self.cancel.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    async fn sleep_until(&self, until_ms: u64) -> Res<()> {
        tokio::select! {
            _ = self.engine.clock.sleep_until(until_ms) => Ok(()),
            _ = self.cancelled() => Err(aborted()),
        }
    }

    async fn drive(&self, fresh: bool) {
        let (root, input) = {
            let st = lock(&self.state);
            (st.threads.get("").cloned(), st.input.clone())
        };
        let top = Name::from("");
        if fresh {
            self.push(
                &top,
                HistoryKind::ExecutionStarted {
                    input: input.clone(),
                },
            );
        }
        let wf = self.wf.clone();
        let Some(root) = root else {
            return;
        };
        let run = self
            .thread(&wf.machine, top.clone(), root)
            .map(|r| r.map(Arc::unwrap_or_clone));
        let result = match wf.timeout {
            Some(limit) => {
                let started = lock(&self.state).started_ms;
                let deadline = started + limit.as_millis() as u64;
                tokio::select! {
                    r = run => r,
                    _ = self.engine.clock.sleep_until(deadline) => Err(ErrorInfo::new(e::TIMEOUT, "the execution ran past its TimeoutSeconds")),
                }
            }
            None => run.await,
        };
        if self.is_suspended() {
            lock(&self.waiters).clear();
            return;
        }
        let (status, kind) = match &result {
            Ok(out) => (
                Status::Succeeded,
                HistoryKind::ExecutionSucceeded {
                    output: out.clone(),
                },
            ),
            Err(err) if err.error == e::ABORTED => (Status::Aborted, HistoryKind::ExecutionAborted),
            Err(err) if err.error == e::TIMEOUT && wf.timeout.is_some() => (
                Status::TimedOut,
                HistoryKind::ExecutionFailed { error: err.clone() },
            ),
            Err(err) => (
                Status::Failed,
                HistoryKind::ExecutionFailed { error: err.clone() },
            ),
        };
        self.push(&top, kind);
        {
            let mut st = lock(&self.state);
            st.status = status;
            match result {
                Ok(v) => st.output = Some(v),
                Err(err) => st.error = Some(err),
            }
            st.threads.clear();
        }
        lock(&self.waiters).clear();
        // A failure here suspends the execution like any other; the
        // journal still holds the last thread rows, which a restart resumes.
        let _ = self.save("", None);
    }

    /// Runs one thread to its end.
    fn thread<'a>(
        &'a self,
        m: &'a StateMachine,
        key: Name,
        mut t: ThreadState,
    ) -> BoxFuture<'a, Res<Arc<Value>>> {
        async move {
            // The index of `t.state` when the last transition already told.
            let mut at: Option<usize> = None;
            loop {
                if self.is_cancelled() {
                    return Err(aborted());
                }
                let Some(i) = at.take().or_else(|| m.position(&t.state)) else {
                    return Err(ErrorInfo::runtime(format!("no state named {:?}", t.state)));
                };
                let state = &m.states[i];
                if matches!(t.phase, Phase::Enter) {
                    t.entered_ms = self.now();
                    t.retries.clear();
                    t.retries
                        .resize(state.recovery().map_or(0, |r| r.retry.len()), 0);
                    t.phase = Phase::Run;
                    if self.recording() {
                        self.push(
                            &key,
                            HistoryKind::StateEntered {
                                state: state.name.clone(),
                                input: t.input.clone(),
                            },
                        );
                    }
                    self.save(&key, Some(&t))?;
                }
                let flow = match self.instant(state, &t) {
                    Some(r) => r?,
                    None => self.state(m, state, &key, &mut t).await?,
                };
                match flow {
                    Flow::Next(next, output) => {
                        self.exited(&key, state, &output);
                        // The next state takes over this thread's row
                        // (as ThreadState::enter would make it, keeping
                        // the Map item), reusing its buffers.
                        at = m.follow(i, &next);
                        t.state = next;
                        t.input = output;
                        t.entered_ms = 0;
                        t.phase = Phase::Enter;
                        t.retries.clear();
                    }
                    Flow::End(output) => {
                        self.exited(&key, state, &output);
                        return Ok(output);
                    }
                }
            }
        }
        .boxed()
    }

    fn context(&self, state: &State, t: &ThreadState) -> Value {
        if !self.wf.uses_context {
            return Value::Null;
        }
        let mut c = json!({
            "Execution": self.execution,
            "StateMachine": self.execution["StateMachine"],
            "State": {
                "Name": state.name,
                "EnteredTime": rfc3339(t.entered_ms),
                "RetryCount": t.retries.iter().sum::<u32>(),
            },
        });
        if let Some((i, v)) = &t.map_item {
            c["Map"] = json!({"Item": {"Index": i, "Value": v}});
        }
        c
    }

    fn flow(&self, state: &State, output: Arc<Value>) -> Flow {
        match &state.transition {
            Transition::Next(n) => Flow::Next(n.clone(), output),
            Transition::End => Flow::End(output),
        }
    }

    /// The work of a state that never waits (Pass, Succeed, Fail, Choice),
    /// done in place: without building [`Shared::state`]'s future, which is
    /// as large as the largest state's work. `None` for the others.
    fn instant(&self, state: &State, t: &ThreadState) -> Option<Res<Flow>> {
        match state.kind {
            StateKind::Pass { .. }
            | StateKind::Succeed
            | StateKind::Fail { .. }
            | StateKind::Choice { .. } => Some(self.instant_work(state, t)),
            _ => None,
        }
    }

    fn instant_work(&self, state: &State, t: &ThreadState) -> Res<Flow> {
        let ctx = self.context(state, t);
        let io = &state.io;
        let effective = input_path(io, &t.input, &ctx)?;
        match &state.kind {
            StateKind::Pass { result } => {
                let params = match &io.parameters {
                    Some(p) => Arc::new(p.eval(&effective, &ctx)?),
                    None => effective,
                };
                let res = match result {
                    Some(r) => Arc::new(r.clone()),
                    None => params,
                };
                let out = finish(io, &t.input, res, &ctx)?;
                Ok(self.flow(state, out))
            }
            StateKind::Succeed => Ok(Flow::End(output_path(io, effective, &ctx)?)),
            StateKind::Fail { error, cause } => {
                let text = |x: &Option<ErrText>| match x {
                    None => String::new(),
                    Some(ErrText::Literal(s)) => s.clone(),
                    Some(ErrText::Path(p)) => match p.select(&t.input, &ctx) {
                        Some(Value::String(s)) => s,
                        Some(v) => v.to_string(),
                        None => String::new(),
                    },
                };
                Err(ErrorInfo::new(text(error), text(cause)))
            }
            StateKind::Choice { choices, default } => {
                let next = choices
                    .iter()
                    .find(|c| c.rule.eval(&effective, &ctx))
                    .map(|c| c.next.clone())
                    .or_else(|| default.clone())
                    .ok_or_else(|| {
                        ErrorInfo::new(
                            e::NO_CHOICE_MATCHED,
                            format!(
                                "no choice rule of {:?} matched and it has no default",
                                state.name
                            ),
                        )
                    })?;
                Ok(Flow::Next(next, output_path(io, effective, &ctx)?))
            }
            _ => Err(ErrorInfo::runtime(format!(
                "the state {:?} is not one that completes in place",
                state.name
            ))),
        }
    }

    /// Does the work of one state, from wherever `t.phase` says it got to.
    async fn state(
        &self,
        m: &StateMachine,
        state: &State,
        key: &Name,
        t: &mut ThreadState,
    ) -> Res<Flow> {
        let ctx = self.context(state, t);
        let io = &state.io;
        let effective = input_path(io, &t.input, &ctx)?;
        match &state.kind {
            StateKind::Pass { .. }
            | StateKind::Succeed
            | StateKind::Fail { .. }
            | StateKind::Choice { .. } => self.instant_work(state, t),
            StateKind::Wait(w) => {
                let until_ms = match &t.phase {
                    Phase::Waiting { until_ms } => *until_ms,
                    _ => {
                        let until_ms = wait_until(w, &effective, &ctx, t.entered_ms)?;
                        t.phase = Phase::Waiting { until_ms };
                        self.push(
                            key,
                            HistoryKind::WaitStarted {
                                state: state.name.clone(),
                                until_ms,
                            },
                        );
                        self.save(key, Some(t))?;
                        until_ms
                    }
                };
                self.sleep_until(until_ms).await?;
                Ok(self.flow(state, output_path(io, effective, &ctx)?))
            }
            StateKind::Task(task) => {
                if let Phase::AwaitEvent { output, .. } = &t.phase {
                    let output = output.clone();
                    return self.await_event(m, state, task, key, t, output).await;
                }
                loop {
                    if let Phase::RetryWait { until_ms } = t.phase {
                        self.sleep_until(until_ms).await?;
                        t.phase = Phase::Run;
                    }
                    let attempt = t.retries.iter().sum::<u32>();
                    let r = self
                        .task_attempt(state, task, &effective, &ctx, attempt, key)
                        .await;
                    let r = r.and_then(|res| result(io, &t.input, res, &ctx));
                    match r {
                        Ok(output) if !task.events.is_empty() => {
                            let output = Arc::unwrap_or_clone(output);
                            return self.await_event(m, state, task, key, t, output).await;
                        }
                        Ok(output) => return Ok(self.flow(state, output)),
                        Err(err) => {
                            if let Some(f) = self.recover(state, &task.recovery, key, t, err)? {
                                return Ok(f);
                            }
                        }
                    }
                }
            }
            StateKind::Parallel(p) => loop {
                if let Phase::RetryWait { until_ms } = t.phase {
                    self.sleep_until(until_ms).await?;
                    t.phase = Phase::Run;
                }
                let params = match &io.parameters {
                    Some(p) => p.eval(&effective, &ctx)?,
                    None => Value::clone(&effective),
                };
                let inputs = vec![params.clone(); p.branches.len()];
                let machines: Vec<&StateMachine> = p.branches.iter().collect();
                let r = self
                    .branches(key, t, &machines, inputs, None, self.engine.max_concurrency)
                    .await;
                let r = r.and_then(|outs| {
                    if p.merge {
                        let mut merged = Value::clone(&t.input);
                        for o in outs {
                            merge_into(&mut merged, o);
                        }
                        output_path(io, Arc::new(merged), &ctx)
                    } else {
                        result(io, &t.input, Value::Array(outs), &ctx)
                    }
                });
                match r {
                    Ok(out) => return Ok(self.flow(state, out)),
                    Err(err) => {
                        if let Some(f) = self.recover(state, &p.recovery, key, t, err)? {
                            return Ok(f);
                        }
                    }
                }
            },
            StateKind::Map(mp) => loop {
                if let Phase::RetryWait { until_ms } = t.phase {
                    self.sleep_until(until_ms).await?;
                    t.phase = Phase::Run;
                }
                let r = async {
                    let items = match mp.items_path.select(&effective, &ctx) {
                        Some(Value::Array(a)) => a,
                        Some(other) => {
                            return Err(ErrorInfo::runtime(format!(
                                "ItemsPath {:?} selects {other}, not an array",
                                mp.items_path.text
                            )));
                        }
                        None => {
                            return Err(ErrorInfo::runtime(format!(
                                "ItemsPath {:?} selects nothing",
                                mp.items_path.text
                            )));
                        }
                    };
                    let selector = mp.item_selector.as_ref().or(io.parameters.as_ref());
                    let mut inputs = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        inputs.push(match selector {
                            Some(sel) => {
                                let mut c = ctx.clone();
                                if c.is_null() {
                                    c = json!({});
                                }
                                c["Map"] = json!({"Item": {"Index": i, "Value": item}});
                                sel.eval(&effective, &c)?
                            }
                            None => item.clone(),
                        });
                    }
                    let bound = match mp.max_concurrency {
                        0 => self.engine.max_concurrency,
                        n => n.min(self.engine.max_concurrency),
                    };
                    let machines = vec![&mp.iterator; inputs.len()];
                    let outs = self
                        .branches(key, t, &machines, inputs, Some(items), bound)
                        .await?;
                    result(io, &t.input, Value::Array(outs), &ctx)
                }
                .await;
                match r {
                    Ok(out) => return Ok(self.flow(state, out)),
                    Err(err) => {
                        if let Some(f) = self.recover(state, &mp.recovery, key, t, err)? {
                            return Ok(f);
                        }
                    }
                }
            },
        }
    }

    async fn task_attempt(
        &self,
        state: &State,
        task: &Task,
        effective: &Value,
        ctx: &Value,
        attempt: u32,
        key: &Name,
    ) -> Res<Value> {
        let params = match &state.io.parameters {
            Some(p) => p.eval(effective, ctx)?,
            None => effective.clone(),
        };
        let Some(resource) = self.engine.registry.find(&task.resource) else {
            return Err(ErrorInfo::new(
                e::TASK_FAILED,
                format!("no resource serves {:?}", task.resource),
            ));
        };
        let timeout = match &task.timeout {
            None => None,
            Some(Timeout::Fixed(d)) => Some(*d),
            Some(Timeout::Path(p)) => match p.select(effective, ctx).and_then(|v| v.as_u64()) {
                Some(n) if n > 0 => Some(Duration::from_secs(n)),
                _ => {
                    return Err(ErrorInfo::runtime(format!(
                        "TimeoutSecondsPath {:?} does not select a positive integer",
                        p.text
                    )));
                }
            },
        };
        self.push(
            key,
            HistoryKind::TaskScheduled {
                state: state.name.clone(),
                resource: task.resource.clone(),
                parameters: params.clone(),
                attempt,
            },
        );
        let call = TaskCall {
            resource: task.resource.clone(),
            input: params,
            execution_id: self.execution["Id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            state: state.name.to_string(),
            attempt,
        };
        let work = resource.call(call);
        let r = match timeout {
            None => tokio::select! {
                r = work => r,
                _ = self.cancelled() => return Err(aborted()),
            },
            Some(d) => {
                let deadline = self.now() + d.as_millis() as u64;
                tokio::select! {
                    r = work => r,
                    _ = self.engine.clock.sleep_until(deadline) => Err(ErrorInfo::new(e::TIMEOUT, format!("the task ran past its {}s timeout", d.as_secs()))),
                    _ = self.cancelled() => return Err(aborted()),
                }
            }
        };
        match &r {
            Ok(v) => self.push(
                key,
                HistoryKind::TaskSucceeded {
                    state: state.name.clone(),
                    resource: task.resource.clone(),
                    result: v.clone(),
                },
            ),
            Err(err) => self.push(
                key,
                HistoryKind::TaskFailed {
                    state: state.name.clone(),
                    resource: task.resource.clone(),
                    error: err.clone(),
                },
            ),
        }
        r
    }

    /// Applies Retry (returns `Ok(None)`: try again) or Catch (`Ok(Some)`),
    /// or hands the error on.
    fn recover(
        &self,
        state: &State,
        rec: &Recovery,
        key: &Name,
        t: &mut ThreadState,
        err: ErrorInfo,
    ) -> Res<Option<Flow>> {
        if err.error == e::ABORTED || err.error == e::RUNTIME {
            return Err(err);
        }
        if let Some(i) = rec.retry.iter().position(|r| err.matches(&r.errors)) {
            let r = &rec.retry[i];
            if t.retries.len() < rec.retry.len() {
                t.retries.resize(rec.retry.len(), 0);
            }
            if t.retries[i] < r.max_attempts {
                t.retries[i] += 1;
                let mut delay = r.delay(t.retries[i]);
                if r.full_jitter {
                    delay = delay.mul_f64(fastrand::f64());
                }
                let delay_ms = delay.as_millis() as u64;
                self.push(
                    key,
                    HistoryKind::RetryScheduled {
                        state: state.name.clone(),
                        error: err,
                        retry: t.retries[i],
                        delay_ms,
                    },
                );
                t.phase = Phase::RetryWait {
                    until_ms: self.now() + delay_ms,
                };
                self.clear_children(key);
                self.save(key, Some(t))?;
                return Ok(None);
            }
        }
        if let Some(c) = rec.catch.iter().find(|c| err.matches(&c.errors)) {
            let obj = serde_json::to_value(&err).unwrap_or(Value::Null);
            let out = match &c.result_path {
                Some(rp) => Arc::new(rp.write(Value::clone(&t.input), obj)?),
                None => t.input.clone(),
            };
            self.push(
                key,
                HistoryKind::ErrorCaught {
                    state: state.name.clone(),
                    error: err,
                    next: c.next.clone(),
                },
            );
            self.clear_children(key);
            return Ok(Some(Flow::Next(c.next.as_str().into(), out)));
        }
        Err(err)
    }

    fn clear_children(&self, key: &str) {
        let prefix = format!("{key}/");
        lock(&self.state)
            .threads
            .retain(|k, _| !k.starts_with(&prefix));
    }

    async fn await_event(
        &self,
        m: &StateMachine,
        state: &State,
        task: &Task,
        key: &Name,
        t: &mut ThreadState,
        output: Value,
    ) -> Res<Flow> {
        let _ = m;
        let names: Vec<String> = task.events.iter().map(|e| e.name.clone()).collect();
        let deadline_ms = match &t.phase {
            Phase::AwaitEvent { deadline_ms, .. } => *deadline_ms,
            _ => task
                .events_timeout
                .map(|d| self.now() + d.as_millis() as u64),
        };
        t.phase = Phase::AwaitEvent {
            output: output.clone(),
            names: names.clone(),
            deadline_ms,
        };
        self.push(
            key,
            HistoryKind::EventAwaited {
                state: state.name.clone(),
                names: names.clone(),
            },
        );
        self.save(key, Some(t))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.waiters).push(Waiter {
            thread: key.to_string(),
            state: state.name.to_string(),
            names,
            tx,
        });
        self.waiting.notify_waiters();
        let timeout = async {
            match deadline_ms {
                Some(d) => self.engine.clock.sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let got = tokio::select! {
            r = rx => r.ok(),
            _ = timeout => None,
            _ = self.cancelled() => {
                lock(&self.waiters).retain(|w| *w.thread != **key);
                return Err(aborted());
            }
        };
        lock(&self.waiters).retain(|w| *w.thread != **key);
        match got {
            Some((name, data)) => {
                self.push(
                    key,
                    HistoryKind::EventReceived {
                        state: state.name.clone(),
                        name: name.clone(),
                        data,
                    },
                );
                let next = task
                    .events
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| Name::from(e.next.as_str()))
                    .unwrap_or_default();
                Ok(Flow::Next(next, Arc::new(output)))
            }
            None => {
                self.push(
                    key,
                    HistoryKind::EventTimedOut {
                        state: state.name.clone(),
                    },
                );
                if let Some(d) = &task.events_default {
                    return Ok(Flow::Next(d.as_str().into(), Arc::new(output)));
                }
                let err = ErrorInfo::new(e::TIMEOUT, "no event came in time");
                match self.recover(
                    state,
                    &Recovery {
                        retry: Vec::new(),
                        catch: task.recovery.catch.clone(),
                    },
                    key,
                    t,
                    err,
                )? {
                    Some(f) => Ok(f),
                    None => Err(ErrorInfo::new(e::TIMEOUT, "no event came in time")),
                }
            }
        }
    }

    /// Runs children concurrently (at most `bound` at once); outputs in order.
    async fn branches(
        &self,
        key: &Name,
        t: &mut ThreadState,
        machines: &[&StateMachine],
        inputs: Vec<Value>,
        items: Option<Vec<Value>>,
        bound: usize,
    ) -> Res<Vec<Value>> {
        let (inputs, mut outputs) = match &t.phase {
            Phase::Branches { inputs, outputs } if inputs.len() == machines.len() => {
                (inputs.clone(), outputs.clone())
            }
            _ => {
                let n = inputs.len();
                t.phase = Phase::Branches {
                    inputs: inputs.clone(),
                    outputs: vec![None; n],
                };
                self.save(key, Some(t))?;
                (inputs, vec![None; n])
            }
        };
        let existing = lock(&self.state).threads.clone();
        let todo: Vec<usize> = (0..machines.len())
            .filter(|&i| outputs[i].is_none())
            .collect();
        let mut stream = futures_util::stream::iter(todo.into_iter().map(|i| {
            let ck = format!("{key}/{i}");
            let child = existing.get(&ck).cloned().unwrap_or_else(|| {
                let mut c = ThreadState::enter(machines[i].start.clone(), inputs[i].clone());
                if let Some(items) = &items {
                    c.map_item = Some((i, items[i].clone()));
                }
                c
            });
            let m = machines[i];
            async move {
                let r = self
                    .thread(m, Name::from(ck.as_str()), child)
                    .await
                    .map(Arc::unwrap_or_clone);
                if let Ok(v) = &r {
                    let mut st = lock(&self.state);
                    if let Some(Phase::Branches { outputs, .. }) =
                        st.threads.get_mut(&**key).map(|p| &mut p.phase)
                    {
                        outputs[i] = Some(v.clone());
                    }
                    st.threads.remove(&ck);
                }
                (i, r)
            }
        }))
        .buffer_unordered(bound.max(1));
        let mut first_err = None;
        while let Some((i, r)) = stream.next().await {
            match r {
                Ok(v) => {
                    outputs[i] = Some(v);
                    self.save(
                        key,
                        Some(&{
                            let mut c = t.clone();
                            c.phase = Phase::Branches {
                                inputs: inputs.clone(),
                                outputs: outputs.clone(),
                            };
                            c
                        }),
                    )?;
                }
                Err(err) => {
                    first_err = Some(err);
                    break;
                }
            }
        }
        drop(stream);
        if let Some(err) = first_err {
            self.clear_children(key);
            return Err(err);
        }
        self.clear_children(key);
        t.phase = Phase::Run;
        Ok(outputs
            .into_iter()
            .map(|o| o.unwrap_or(Value::Null))
            .collect())
    }
}

// The Io pipeline works on shared values: a path that selects the whole
// document, and a ResultPath of `$` or none, hand the same `Arc` on.

fn input_path(io: &Io, raw: &Arc<Value>, ctx: &Value) -> Res<Arc<Value>> {
    match &io.input_path {
        None => Ok(Arc::new(json!({}))),
        Some(p) if p.is_root() => Ok(raw.clone()),
        Some(p) => p.select(raw, ctx).map(Arc::new).ok_or_else(|| {
            ErrorInfo::runtime(format!(
                "InputPath {:?} selects nothing in the input",
                p.text
            ))
        }),
    }
}

fn output_path(io: &Io, v: Arc<Value>, ctx: &Value) -> Res<Arc<Value>> {
    match &io.output_path {
        None => Ok(Arc::new(json!({}))),
        Some(p) if p.is_root() => Ok(v),
        Some(p) => p
            .select(&v, ctx)
            .map(Arc::new)
            .ok_or_else(|| ErrorInfo::runtime(format!("OutputPath {:?} selects nothing", p.text))),
    }
}

/// ResultPath then OutputPath.
fn finish(io: &Io, raw: &Arc<Value>, res: Arc<Value>, ctx: &Value) -> Res<Arc<Value>> {
    let combined = match &io.result_path {
        None => raw.clone(),
        Some(rp) if rp.segs.is_empty() => res,
        Some(rp) => Arc::new(rp.write(Value::clone(raw), Arc::unwrap_or_clone(res))?),
    };
    output_path(io, combined, ctx)
}

/// ResultSelector, ResultPath, OutputPath.
fn result(io: &Io, raw: &Arc<Value>, res: Value, ctx: &Value) -> Res<Arc<Value>> {
    let res = match &io.result_selector {
        Some(sel) => sel.eval(&res, ctx)?,
        None => res,
    };
    finish(io, raw, Arc::new(res), ctx)
}

fn wait_until(w: &WaitFor, input: &Value, ctx: &Value, entered_ms: u64) -> Res<u64> {
    let ts = |s: &str| {
        crate::choice::parse_timestamp(s)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
            .ok_or_else(|| ErrorInfo::runtime(format!("{s:?} is not an RFC 3339 timestamp")))
    };
    match w {
        WaitFor::Seconds(n) => Ok(entered_ms + n * 1000),
        WaitFor::SecondsPath(p) => match p.select(input, ctx).and_then(|v| v.as_u64()) {
            Some(n) => Ok(entered_ms + n * 1000),
            None => Err(ErrorInfo::runtime(format!(
                "SecondsPath {:?} does not select a non-negative integer",
                p.text
            ))),
        },
        WaitFor::Timestamp(s) => ts(s),
        WaitFor::TimestampPath(p) => match p.select(input, ctx) {
            Some(Value::String(s)) => ts(&s),
            _ => Err(ErrorInfo::runtime(format!(
                "TimestampPath {:?} does not select a timestamp",
                p.text
            ))),
        },
    }
}
