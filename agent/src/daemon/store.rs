//! The daemon's state: SQLite in WAL mode in the state directory
//! (`state.db` beside the policy cache).
//!
//! - `check_state`: each check's current result, its evidence, the last
//!   definite answer, when it last ran and since when it has had its status,
//!   and the paths its evaluation read.
//! - `history`: a bounded history of results ([`HISTORY_PER_CHECK`] per check).
//! - `outbox`: every event, with a stable `uuid`, written in the same
//!   transaction as the state change that caused it. `seq` is
//!   `AUTOINCREMENT`, so it never goes back, even after old rows are pruned.
//! - `subscribers`: one row per consumer of the outbox (a log file, an HTTP
//!   sink, later the workflow engine) with the last `seq` it has taken.
//!   Delivery is at least once: a consumer delivers, then acknowledges; a
//!   crash in between delivers the same event (same `uuid`) again.
//!
//! - `wf_execution`, `wf_thread`, `wf_history`: workflow executions, the
//!   serialized position of each of their threads, and their history
//!   (written by [`super::workflows::journal`]). A trigger's event uuid is
//!   unique per workflow, so a redelivered event never starts a second
//!   execution.
//!
//! Commits use `synchronous = FULL`: an event acknowledged to nobody yet
//! survives a power cut, not only a crash. The schema is versioned
//! (`PRAGMA user_version`) and migrated forward on open; a database from a
//! newer Tend is refused rather than damaged.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::events::{self, Identity, Previous};
use crate::checks::{Outcome, Status};

/// Results kept per check.
pub const HISTORY_PER_CHECK: i64 = 100;
/// Events kept after every subscriber has them (for `tend status` and debugging).
pub const OUTBOX_KEEP: i64 = 1000;

/// Schema migrations, in order; `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: state, history, outbox, subscribers.
    "CREATE TABLE check_state (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        passed INTEGER,
        error TEXT,
        evidence TEXT,
        last_run_ms INTEGER NOT NULL,
        since_ms INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        reads TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        check_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX history_by_check ON history(check_id, seq);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        check_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE subscribers (
        name TEXT PRIMARY KEY,
        delivered INTEGER NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0
    );",
    // 2: workflow executions, their threads, their history
    // (daemon::workflows::journal writes them).
    "CREATE TABLE wf_execution (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        policy_serial INTEGER NOT NULL,
        status TEXT NOT NULL,
        input TEXT NOT NULL,
        output TEXT,
        error TEXT,
        trigger TEXT NOT NULL,
        trigger_uuid TEXT,
        token TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER
    );
    CREATE UNIQUE INDEX wf_execution_by_trigger ON wf_execution(workflow, trigger_uuid);
    CREATE INDEX wf_execution_by_status ON wf_execution(status, ended_ms);
    CREATE TABLE wf_thread (
        execution TEXT NOT NULL REFERENCES wf_execution(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (execution, key)
    );
    CREATE TABLE wf_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        execution TEXT NOT NULL REFERENCES wf_execution(id) ON DELETE CASCADE,
        event TEXT NOT NULL
    );
    CREATE INDEX wf_history_by_execution ON wf_history(execution, seq);",
];

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {path}: schema version {found} is newer than this build knows ({known}); refusing to use it"
    )]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A check's state as stored.
#[derive(Clone, Debug, Serialize)]
pub struct CheckState {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// The last definite answer.
    pub passed: Option<bool>,
    pub error: Option<String>,
    pub evidence: Option<serde_json::Value>,
    pub last_run_ms: i64,
    pub since_ms: i64,
    pub duration_ms: f64,
    /// Paths the last evaluation read (on the machine evaluated).
    pub reads: Vec<String>,
}

/// A check's status changed (see [`Store::changes`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusChange {
    pub at_ms: i64,
    pub check: String,
    /// The check's name, while the policy still has it.
    pub name: Option<String>,
    /// `None` for a check's first result.
    pub from: Option<Status>,
    pub to: Status,
    pub error: Option<String>,
}

/// One event waiting for a subscriber.
#[derive(Clone, Debug)]
pub struct Pending {
    pub seq: i64,
    pub uuid: String,
    pub body: String,
}

/// What recording a result changed.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub previous: Option<Status>,
    pub status_changed: bool,
    /// The events written: type and uuid.
    pub events: Vec<(&'static str, String)>,
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Error => "error",
        Status::NotApplicable => "not_applicable",
    }
}

fn parse_status(s: &str) -> Status {
    match s {
        "passed" => Status::Passed,
        "failed" => Status::Failed,
        "not_applicable" => Status::NotApplicable,
        _ => Status::Error,
    }
}

/// The state database.
pub struct Store {
    pub(super) conn: Connection,
}

impl Store {
    /// Opens (creating and migrating) `dir/state.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("state.db");
        let name = path.display().to_string();
        let open_err = |source| StoreError::Open {
            path: name.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut store = Store { conn };
        store.migrate(&name)?;
        Ok(store)
    }

    fn migrate(&mut self, name: &str) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew {
                path: name.to_string(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!("{name}: migrated the schema to version {}", i + 1);
        }
        Ok(())
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Records one evaluation: the new state, a history row and, for a
    /// transition, its events, all in one transaction.
    pub fn record(
        &mut self,
        outcome: &Outcome,
        at_ms: i64,
        reads: &[String],
        who: &Identity,
    ) -> Result<Recorded, StoreError> {
        let tx = self.conn.transaction()?;
        let prev: Option<(Previous, i64)> = tx
            .query_row(
                "SELECT status, passed, error, since_ms FROM check_state WHERE id = ?1",
                [&outcome.id],
                |r| {
                    Ok((
                        Previous {
                            status: parse_status(&r.get::<_, String>(0)?),
                            passed: r.get::<_, Option<bool>>(1)?,
                            error: r.get(2)?,
                        },
                        r.get(3)?,
                    ))
                },
            )
            .optional()?;
        let changes = events::transitions(
            prev.as_ref().map(|(p, _)| p),
            outcome.status,
            outcome.error.as_deref(),
        );
        let passed = match outcome.status {
            Status::Passed => Some(true),
            Status::Failed => Some(false),
            _ => prev.as_ref().and_then(|(p, _)| p.passed),
        };
        let status_changed = prev
            .as_ref()
            .is_none_or(|(p, _)| p.status != outcome.status);
        let since = match &prev {
            Some((_, since)) if !status_changed => *since,
            _ => at_ms,
        };
        let evidence = outcome
            .evidence
            .as_ref()
            .map(|e| serde_json::Value::Object(e.clone()).to_string());
        let duration_ms = outcome.duration.as_secs_f64() * 1e3;
        let reads_json = serde_json::to_string(reads).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO check_state (id, name, status, passed, error, evidence, last_run_ms, since_ms, duration_ms, reads)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET name = ?2, status = ?3, passed = ?4, error = ?5,
               evidence = ?6, last_run_ms = ?7, since_ms = ?8, duration_ms = ?9, reads = ?10",
            params![
                outcome.id,
                outcome.name,
                status_text(outcome.status),
                passed,
                outcome.error,
                evidence,
                at_ms,
                since,
                duration_ms,
                reads_json
            ],
        )?;
        tx.execute(
            "INSERT INTO history (check_id, at_ms, status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![outcome.id, at_ms, status_text(outcome.status), outcome.error, duration_ms],
        )?;
        tx.execute(
            "DELETE FROM history WHERE check_id = ?1 AND seq <= (
                SELECT seq FROM history WHERE check_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            params![outcome.id, HISTORY_PER_CHECK],
        )?;
        let mut written = Vec::new();
        for change in &changes {
            let uuid = uuid::Uuid::new_v4().to_string();
            let text = events::body(change, &uuid, at_ms, &outcome.id, &outcome.name, who);
            tx.execute(
                "INSERT INTO outbox (uuid, type, check_id, created_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![uuid, change.kind(), outcome.id, at_ms, text],
            )?;
            written.push((change.kind(), uuid));
        }
        tx.commit()?;
        if !written.is_empty() {
            tracing::info!(
                check = %outcome.id,
                status = outcome.status.as_str(),
                events = written.len(),
                "transition"
            );
        }
        Ok(Recorded {
            previous: prev.map(|(p, _)| p.status),
            status_changed,
            events: written,
        })
    }

    /// Every check's state, by id.
    pub fn checks(&self) -> Result<Vec<CheckState>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, status, passed, error, evidence, last_run_ms, since_ms, duration_ms, reads
             FROM check_state ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let evidence: Option<String> = r.get(5)?;
            let reads: String = r.get(9)?;
            Ok(CheckState {
                id: r.get(0)?,
                name: r.get(1)?,
                status: parse_status(&r.get::<_, String>(2)?),
                passed: r.get(3)?,
                error: r.get(4)?,
                evidence: evidence.and_then(|e| serde_json::from_str(&e).ok()),
                last_run_ms: r.get(6)?,
                since_ms: r.get(7)?,
                duration_ms: r.get(8)?,
                reads: serde_json::from_str(&reads).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When each check last ran (wall clock, Unix ms).
    pub fn last_runs(&self) -> Result<HashMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, last_run_ms FROM check_state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the state of checks no longer in the policy.
    pub fn retain_checks(&mut self, ids: &[String]) -> Result<usize, StoreError> {
        let keep = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        Ok(self.conn.execute(
            "DELETE FROM check_state WHERE id NOT IN (SELECT value FROM json_each(?1))",
            [keep],
        )?)
    }

    /// The last `n` results of a check, newest first: (at, status, error).
    pub fn history(
        &self,
        check: &str,
        n: i64,
    ) -> Result<Vec<(i64, Status, Option<String>)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at_ms, status, error FROM history WHERE check_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![check, n], |r| {
            Ok((r.get(0)?, parse_status(&r.get::<_, String>(1)?), r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `n` changes of status (of `check`, or of every check),
    /// newest first: the results in [`history`](Self::history) whose status
    /// differs from the result before. A check's first result is a change
    /// (from nothing) only while its history has not been trimmed, since
    /// after that the result before the oldest kept one is unknown.
    pub fn changes(&self, check: Option<&str>, n: i64) -> Result<Vec<StatusChange>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT h.at_ms, h.check_id, c.name, h.prev, h.status, h.error
             FROM (SELECT seq, check_id, at_ms, status, error,
                          LAG(status) OVER (PARTITION BY check_id ORDER BY seq) AS prev,
                          COUNT(*) OVER (PARTITION BY check_id) AS kept
                   FROM history WHERE ?1 IS NULL OR check_id = ?1) h
             LEFT JOIN check_state c ON c.id = h.check_id
             WHERE (h.prev IS NULL AND h.kept < ?2) OR h.prev != h.status
             ORDER BY h.seq DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![check, HISTORY_PER_CHECK, n], |r| {
            Ok(StatusChange {
                at_ms: r.get(0)?,
                check: r.get(1)?,
                name: r.get(2)?,
                from: r.get::<_, Option<String>>(3)?.map(|s| parse_status(&s)),
                to: parse_status(&r.get::<_, String>(4)?),
                error: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Registers a subscriber; a new one starts after the newest event.
    pub fn subscribe(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO subscribers (name, delivered)
             VALUES (?1, IFNULL((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))",
            [name],
        )?;
        Ok(())
    }

    /// Removes subscribers not in `names` (sinks taken out of the config),
    /// so they no longer hold events back.
    pub fn retain_subscribers(&mut self, names: &[String]) -> Result<(), StoreError> {
        let keep = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "DELETE FROM subscribers WHERE name NOT IN (SELECT value FROM json_each(?1))",
            [keep],
        )?;
        Ok(())
    }

    /// Up to `limit` events `subscriber` has not taken, oldest first.
    pub fn pending(&self, subscriber: &str, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, uuid, body FROM outbox
             WHERE seq > IFNULL((SELECT delivered FROM subscribers WHERE name = ?1), 0)
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![subscriber, limit as i64], |r| {
            Ok(Pending {
                seq: r.get(0)?,
                uuid: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many events wait for `subscriber`.
    pub fn backlog(&self, subscriber: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM outbox
             WHERE seq > IFNULL((SELECT delivered FROM subscribers WHERE name = ?1), 0)",
            [subscriber],
            |r| r.get(0),
        )?)
    }

    /// Marks events up to `seq` delivered to `subscriber`, then prunes what
    /// every subscriber has (keeping the newest [`OUTBOX_KEEP`]).
    pub fn ack(&mut self, subscriber: &str, seq: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE subscribers SET delivered = MAX(delivered, ?2) WHERE name = ?1",
            params![subscriber, seq],
        )?;
        tx.execute(
            "DELETE FROM outbox WHERE seq <= (SELECT IFNULL(MIN(delivered), 0) FROM subscribers)
               AND seq <= (SELECT IFNULL(MAX(seq), 0) FROM outbox) - ?1",
            [OUTBOX_KEEP],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps at most `max` events waiting for `subscriber`, dropping the
    /// oldest; returns how many were dropped.
    pub fn trim_backlog(&mut self, subscriber: &str, max: i64) -> Result<i64, StoreError> {
        let waiting = self.backlog(subscriber)?;
        if waiting <= max {
            return Ok(0);
        }
        let drop = waiting - max;
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE subscribers SET dropped = dropped + ?2, delivered = (
                SELECT seq FROM outbox WHERE seq > delivered ORDER BY seq LIMIT 1 OFFSET ?2 - 1)
             WHERE name = ?1",
            params![subscriber, drop],
        )?;
        tx.commit()?;
        Ok(drop)
    }

    /// Each subscriber: name, last seq taken, events dropped, events waiting.
    pub fn subscribers(&self) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, delivered, dropped,
                (SELECT COUNT(*) FROM outbox o WHERE o.seq > s.delivered)
             FROM subscribers s ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `n` events, newest first.
    pub fn recent_events(&self, n: i64) -> Result<Vec<Pending>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, uuid, body FROM outbox ORDER BY seq DESC LIMIT ?1")?;
        let rows = stmt.query_map([n], |r| {
            Ok(Pending {
                seq: r.get(0)?,
                uuid: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::events::Named;
    use std::time::Duration;

    fn who() -> Identity {
        Identity {
            asset: Named {
                uuid: Some("a".into()),
                name: Some("laptop".into()),
            },
            company: None,
            user: None,
            team: None,
        }
    }

    fn outcome(id: &str, status: Status) -> Outcome {
        Outcome {
            id: id.into(),
            name: format!("Check {id}"),
            status,
            evidence: None,
            error: (status == Status::Error).then(|| "boom".into()),
            remediation: None,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn transitions_write_events_with_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        s.subscribe("file").unwrap();
        let r = s
            .record(&outcome("fw", Status::Passed), 1000, &[], &who())
            .unwrap();
        assert_eq!(r.events.len(), 1);
        assert!(r.status_changed);
        let r = s
            .record(&outcome("fw", Status::Passed), 2000, &[], &who())
            .unwrap();
        assert!(r.events.is_empty() && !r.status_changed);
        s.record(
            &outcome("fw", Status::Failed),
            3000,
            &["/etc/x".into()],
            &who(),
        )
        .unwrap();
        s.record(&outcome("fw", Status::Error), 4000, &[], &who())
            .unwrap();
        s.record(&outcome("fw", Status::Passed), 5000, &[], &who())
            .unwrap();
        let p = s.pending("file", 100).unwrap();
        let kinds: Vec<String> = p
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.body).unwrap();
                format!("{} {}", v["type"], v["changes"])
            })
            .collect();
        assert_eq!(kinds.len(), 5, "{kinds:#?}");
        assert!(kinds[0].contains("\"last\":null,\"latest\":true"));
        assert!(kinds[1].contains("\"last\":true,\"latest\":false"));
        assert!(kinds[2].contains("ASSET_CHECK_ERROR"));
        assert!(kinds[3].contains("ASSET_CHECK_ERROR"));
        assert!(kinds[4].contains("\"last\":false,\"latest\":true"));
        let st = &s.checks().unwrap()[0];
        assert_eq!(st.status, Status::Passed);
        assert_eq!(st.since_ms, 5000);
        assert_eq!(st.last_run_ms, 5000);
        assert_eq!(s.history("fw", 10).unwrap().len(), 5);

        // Acknowledged events stay pending for nobody; a new subscriber
        // starts after the newest event.
        s.ack("file", p[2].seq).unwrap();
        assert_eq!(s.pending("file", 100).unwrap().len(), 2);
        s.subscribe("http").unwrap();
        assert!(s.pending("http", 100).unwrap().is_empty());
        // Reopening keeps everything.
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.pending("file", 100).unwrap().len(), 2);
        assert_eq!(s.last_runs().unwrap()["fw"], 5000);
    }

    #[test]
    fn the_backlog_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.subscribe("http").unwrap();
        for i in 0..10 {
            let st = if i % 2 == 0 {
                Status::Passed
            } else {
                Status::Failed
            };
            s.record(&outcome("fw", st), i, &[], &who()).unwrap();
        }
        assert_eq!(s.backlog("http").unwrap(), 10);
        assert_eq!(s.trim_backlog("http", 4).unwrap(), 6);
        let p = s.pending("http", 100).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].seq, 7);
        assert_eq!(s.subscribers().unwrap()[0].2, 6);
    }

    #[test]
    fn history_is_bounded_and_removed_checks_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for i in 0..(HISTORY_PER_CHECK + 20) {
            s.record(&outcome("a", Status::Passed), i, &[], &who())
                .unwrap();
        }
        s.record(&outcome("b", Status::Passed), 0, &[], &who())
            .unwrap();
        assert_eq!(
            s.history("a", 1000).unwrap().len() as i64,
            HISTORY_PER_CHECK
        );
        s.retain_checks(&["b".into()]).unwrap();
        let ids: Vec<String> = s.checks().unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec!["b".to_string()]);
    }

    #[test]
    fn changes_are_the_results_that_differ_from_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let runs = [
            ("a", Status::Passed),
            ("b", Status::Failed),
            ("a", Status::Passed),
            ("a", Status::Failed),
            ("b", Status::Failed),
            ("a", Status::Failed),
            ("a", Status::Passed),
        ];
        for (at, (id, status)) in runs.into_iter().enumerate() {
            s.record(&outcome(id, status), at as i64, &[], &who())
                .unwrap();
        }
        let seen: Vec<(i64, String, Option<Status>, Status)> = s
            .changes(None, 10)
            .unwrap()
            .into_iter()
            .map(|c| (c.at_ms, c.check, c.from, c.to))
            .collect();
        assert_eq!(
            seen,
            vec![
                (6, "a".into(), Some(Status::Failed), Status::Passed),
                (3, "a".into(), Some(Status::Passed), Status::Failed),
                (1, "b".into(), None, Status::Failed),
                (0, "a".into(), None, Status::Passed),
            ]
        );
        assert_eq!(s.changes(Some("b"), 10).unwrap().len(), 1);
        assert_eq!(s.changes(None, 2).unwrap().len(), 2);
        assert_eq!(
            s.changes(None, 1).unwrap()[0].name.as_deref(),
            Some("Check a")
        );
    }

    #[test]
    fn a_trimmed_history_has_no_first_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for i in 0..(HISTORY_PER_CHECK + 5) {
            s.record(&outcome("a", Status::Passed), i, &[], &who())
                .unwrap();
        }
        assert!(s.changes(None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("state.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("newer than this build"), "{e}");
    }
}
