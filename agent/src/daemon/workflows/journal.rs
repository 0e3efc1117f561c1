//! Workflow executions in the state store, and the [`Journal`] that makes
//! each transition durable.
//!
//! The engine calls [`StoreJournal::record`] at every step, before the
//! step's effects (the next task call, the next sleep) happen; each call is
//! one SQLite transaction (`synchronous = FULL`) that rewrites the thread's
//! row, appends the new history and, on the last step, writes the status,
//! output and error. A failed commit suspends the execution (the engine
//! stops it without a further step), so what is stored is always a state
//! the execution really passed through, and [`Store::wf_running`] rebuilds
//! it for [`tend_workflow::Engine::resume`] at the next start.

use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use tend_workflow::{
    ErrorInfo, ExecutionState, HistoryEvent, Journal, JournalError, Status, Step, ThreadState,
};

use crate::daemon::store::{Store, StoreError};

/// Finished executions kept (with their history); older ones are removed.
pub const KEEP_FINISHED: i64 = 500;

/// A new execution's row, written before it starts.
#[derive(Clone, Debug)]
pub struct NewExecution {
    pub id: String,
    pub workflow: String,
    pub policy_serial: u64,
    pub input: Value,
    /// `event`, `cron` or `manual`.
    pub trigger: String,
    /// What started it: the event's uuid, the cron slot; unique per
    /// workflow, so a redelivery cannot start it twice.
    pub trigger_uuid: Option<String>,
    /// The per-execution secret for `tend://` links.
    pub token: String,
    pub started_ms: u64,
}

/// An execution as `tend workflow executions` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionRow {
    pub id: String,
    pub workflow: String,
    pub policy_serial: u64,
    pub status: String,
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_uuid: Option<String>,
    pub started_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// A 256-bit secret (two v4 UUIDs: 244 random bits from the OS), hex.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub fn status_text(s: Status) -> &'static str {
    match s {
        Status::Running => "RUNNING",
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::Aborted => "ABORTED",
        Status::TimedOut => "TIMED_OUT",
    }
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Sql(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{what}: {e}").into(),
        ))
    })
}

impl Store {
    /// Writes a new execution's row. `Ok(false)`: its trigger already
    /// started one (a redelivered event), so nothing was written.
    pub fn wf_insert(&mut self, e: &NewExecution) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO wf_execution
               (id, workflow, policy_serial, status, input, trigger, trigger_uuid, token, started_ms)
             VALUES (?1, ?2, ?3, 'RUNNING', ?4, ?5, ?6, ?7, ?8)",
            params![
                e.id,
                e.workflow,
                e.policy_serial as i64,
                e.input.to_string(),
                e.trigger,
                e.trigger_uuid,
                e.token,
                e.started_ms as i64
            ],
        )?;
        Ok(n == 1)
    }

    /// Commits one step, in one transaction.
    pub fn wf_step(&mut self, step: &Step<'_>) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        match step.thread_state {
            Some(t) => {
                let row = serde_json::to_string(t).unwrap_or_default();
                tx.execute(
                    "INSERT INTO wf_thread (execution, key, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (execution, key) DO UPDATE SET state = excluded.state",
                    params![step.execution_id, step.thread, row],
                )?;
            }
            None => {
                tx.execute(
                    "DELETE FROM wf_thread WHERE execution = ?1 AND (key = ?2 OR key LIKE ?2 || '/%')",
                    params![step.execution_id, step.thread],
                )?;
            }
        }
        {
            let mut ins =
                tx.prepare_cached("INSERT INTO wf_history (execution, event) VALUES (?1, ?2)")?;
            for h in step.history {
                ins.execute(params![
                    step.execution_id,
                    serde_json::to_string(h).unwrap_or_default()
                ])?;
            }
        }
        if step.status != Status::Running {
            tx.execute(
                "UPDATE wf_execution SET status = ?2, output = ?3, error = ?4, ended_ms = ?5 WHERE id = ?1",
                params![
                    step.execution_id,
                    status_text(step.status),
                    step.output.map(Value::to_string),
                    step.error
                        .map(|e| serde_json::to_string(e).unwrap_or_default()),
                    crate::daemon::now_ms()
                ],
            )?;
            tx.execute(
                "DELETE FROM wf_thread WHERE execution = ?1",
                params![step.execution_id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ends an execution the engine cannot continue (its workflow left the
    /// policy, or no longer reads): status and error, no more threads.
    pub fn wf_end(
        &mut self,
        id: &str,
        status: Status,
        error: &ErrorInfo,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE wf_execution SET status = ?2, error = ?3, ended_ms = ?4 WHERE id = ?1",
            params![
                id,
                status_text(status),
                serde_json::to_string(error).unwrap_or_default(),
                crate::daemon::now_ms()
            ],
        )?;
        tx.execute("DELETE FROM wf_thread WHERE execution = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    }

    /// Every running execution, as the engine resumes it: its workflow's
    /// name, its policy serial, and its state.
    pub fn wf_running(&self) -> Result<Vec<(u64, ExecutionState)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, workflow, policy_serial, input, started_ms FROM wf_execution
             WHERE status = 'RUNNING' ORDER BY started_ms",
        )?;
        let rows: Vec<(String, String, i64, String, i64)> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut threads_of = self
            .conn
            .prepare("SELECT key, state FROM wf_thread WHERE execution = ?1")?;
        let mut out = Vec::new();
        for (id, workflow, serial, input, started) in rows {
            let threads = threads_of
                .query_map([&id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|(k, s)| Ok((k, from_json::<ThreadState>(&s, "a workflow thread")?)))
                .collect::<Result<_, StoreError>>()?;
            out.push((
                serial as u64,
                ExecutionState {
                    input: from_json(&input, "an execution's input")?,
                    id,
                    workflow,
                    started_ms: started as u64,
                    status: Status::Running,
                    output: None,
                    error: None,
                    threads,
                },
            ));
        }
        Ok(out)
    }

    /// The newest executions first.
    pub fn wf_executions(&self, limit: i64) -> Result<Vec<ExecutionRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, workflow, policy_serial, status, trigger, trigger_uuid, started_ms,
                    ended_ms, output, error
             FROM wf_execution ORDER BY started_ms DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                let json = |i: usize| -> rusqlite::Result<Option<Value>> {
                    Ok(r.get::<_, Option<String>>(i)?
                        .and_then(|s| serde_json::from_str(&s).ok()))
                };
                Ok(ExecutionRow {
                    id: r.get(0)?,
                    workflow: r.get(1)?,
                    policy_serial: r.get::<_, i64>(2)? as u64,
                    status: r.get(3)?,
                    trigger: r.get(4)?,
                    trigger_uuid: r.get(5)?,
                    started_ms: r.get::<_, i64>(6)? as u64,
                    ended_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                    output: json(8)?,
                    error: json(9)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// One execution's history, oldest first (`None`: no such execution).
    pub fn wf_history(&self, id: &str) -> Result<Option<Vec<HistoryEvent>>, StoreError> {
        let exists: Option<String> = self
            .conn
            .query_row("SELECT id FROM wf_execution WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT event FROM wf_history WHERE execution = ?1 ORDER BY seq")?;
        let texts: Vec<String> = stmt
            .query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        texts
            .iter()
            .map(|t| from_json(t, "a history event"))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An execution's token (for verifying a `tend://` link).
    pub fn wf_token(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT token FROM wf_execution WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Removes the oldest finished executions beyond `keep`, with their
    /// history. Returns how many were removed.
    pub fn wf_prune(&mut self, keep: i64) -> Result<usize, StoreError> {
        // Threads and history go with them (ON DELETE CASCADE).
        Ok(self.conn.execute(
            "DELETE FROM wf_execution WHERE id IN (
                SELECT id FROM wf_execution WHERE status != 'RUNNING'
                ORDER BY ended_ms DESC, rowid DESC LIMIT -1 OFFSET ?1)",
            [keep],
        )?)
    }
}

/// The daemon's journal: every step committed to the state store.
pub struct StoreJournal {
    pub store: Arc<Mutex<Store>>,
}

impl Journal for StoreJournal {
    fn record(&self, step: &Step<'_>) -> Result<(), JournalError> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        store.wf_step(step).map_err(|e| {
            tracing::error!(
                execution = step.execution_id,
                "committing a workflow step: {e}; the execution is suspended until the next start"
            );
            JournalError(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;
    use tend_workflow::{Engine, Registry, VirtualClock, Workflow};

    fn new(id: &str, trigger_uuid: Option<&str>) -> NewExecution {
        NewExecution {
            id: id.into(),
            workflow: "w".into(),
            policy_serial: 1,
            input: json!({"x": 1}),
            trigger: "event".into(),
            trigger_uuid: trigger_uuid.map(str::to_string),
            token: new_token(),
            started_ms: 1,
        }
    }

    #[test]
    fn a_trigger_starts_one_execution_and_tokens_are_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert!(s.wf_insert(&new("a", Some("ev-1"))).unwrap());
        assert!(!s.wf_insert(&new("b", Some("ev-1"))).unwrap(), "redelivery");
        assert!(s.wf_insert(&new("c", None)).unwrap());
        assert!(
            s.wf_insert(&new("d", None)).unwrap(),
            "manual starts are not de-duplicated"
        );
        assert_eq!(s.wf_token("a").unwrap().unwrap().len(), 64);
        assert_eq!(s.wf_executions(10).unwrap().len(), 3);
    }

    /// Runs a workflow through the store journal up to a Wait, "crashes"
    /// (drops the runtime), reloads the state and resumes it to the end.
    #[test]
    fn steps_are_stored_and_resume_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::open(dir.path()).unwrap()));
        let wf = Arc::new(
            Workflow::parse(
                r#"{"name": "w", "entry": "P", "states": {
                    "P": {"type": "PASS", "result": 1, "resultPath": "$.p", "next": "W"},
                    "W": {"type": "WAIT", "seconds": 86400, "next": "Q"},
                    "Q": {"type": "PASS", "end": true}}}"#,
                None,
            )
            .unwrap(),
        );
        store.lock().unwrap().wf_insert(&new("e1", None)).unwrap();
        let clock = VirtualClock::manual(1_000);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let engine = Engine::new(Registry::new(), Arc::new(clock.clone())).with_journal(
                Arc::new(StoreJournal {
                    store: store.clone(),
                }),
            );
            let _ex = engine.start_with_id(wf.clone(), "e1".into(), json!({"x": 1}));
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        drop(rt);
        let running = store.lock().unwrap().wf_running().unwrap();
        assert_eq!(running.len(), 1);
        let state = running[0].1.clone();
        let t = &state.threads[""];
        assert_eq!(&*t.state, "W");
        assert_eq!(t.input["p"], 1);
        // After the wall clock passes the deadline, the resumed execution ends.
        let later = VirtualClock::new(1_000 + 86_400_000 + 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let engine = Engine::new(Registry::new(), Arc::new(later)).with_journal(Arc::new(
                StoreJournal {
                    store: store.clone(),
                },
            ));
            engine.resume(wf, state).wait().await
        });
        assert_eq!(out.status, Status::Succeeded);
        let s = store.lock().unwrap();
        assert!(s.wf_running().unwrap().is_empty());
        let rows = s.wf_executions(10).unwrap();
        assert_eq!(rows[0].status, "SUCCEEDED");
        assert_eq!(rows[0].output.as_ref().unwrap()["p"], 1);
        let types: Vec<String> = s
            .wf_history("e1")
            .unwrap()
            .unwrap()
            .iter()
            .map(|h| {
                serde_json::to_value(h).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(types.first().map(String::as_str), Some("ExecutionStarted"));
        assert_eq!(types.last().map(String::as_str), Some("ExecutionSucceeded"));
        assert!(types.iter().any(|t| t == "WaitStarted"));
    }

    #[test]
    fn finished_executions_are_pruned_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for i in 0..5 {
            let id = format!("e{i}");
            s.wf_insert(&new(&id, None)).unwrap();
            s.wf_end(&id, Status::Succeeded, &ErrorInfo::new("x", "y"))
                .unwrap();
        }
        s.wf_insert(&new("running", None)).unwrap();
        assert_eq!(s.wf_prune(2).unwrap(), 3);
        let left: Vec<String> = s
            .wf_executions(10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left.len(), 3);
        assert!(left.contains(&"running".to_string()));
    }
}
