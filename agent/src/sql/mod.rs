//! The SQL engine: SQLite with osquery's tables and functions, read-only.
//!
//! An [`Engine`] is one SQLite connection bound to one [`Machine`]. It is
//! opened read-only and in memory; every osquery table is registered as an
//! eponymous virtual table through [one adapter](vtab); osquery's SQL
//! functions are added ([`functions`]). A query from a policy is untrusted
//! input, so the connection is hardened ([`guard`]): an authorizer allows
//! reading and nothing else (no writes, TEMP objects, ATTACH, PRAGMA writes or
//! extension loading), `SQLITE_LIMIT_ATTACHED` is 0, and every query runs under
//! a time limit (a progress handler) and a row limit. A hostile or runaway
//! query gets an error; the process goes on.

pub mod functions;
mod guard;
pub mod schema;
pub mod table;
mod vtab;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

pub use table::Value;

use crate::os::Machine;
use table::Platforms;

/// Limits on one query.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time a query may take, tables' work included.
    pub time: Duration,
    /// Rows a query may return.
    pub rows: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            time: Duration::from_secs(10),
            rows: 100_000,
        }
    }
}

/// What the hooks of a connection share with the engine.
#[derive(Default)]
pub(crate) struct Runtime {
    deadline: Mutex<Option<Instant>>,
    denied: Mutex<Option<String>>,
    /// While `Some`, the authorizer records the tables a statement reads.
    reads: Mutex<Option<Vec<String>>>,
}

impl Runtime {
    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set_deadline(&self, d: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }
    fn take_denied(&self) -> Option<String> {
        self.denied.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
    pub(crate) fn record_read(&self, table: &str) {
        if let Some(list) = self
            .reads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            && !list.iter().any(|t| t == table)
        {
            list.push(table.to_string());
        }
    }
    /// Keeps the first denial of a statement: it names what the user wrote
    /// (`CREATE TEMP TABLE`), not SQLite's follow-on steps.
    fn set_denied(&self, what: String) {
        let mut denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        if denied.is_none() {
            *denied = Some(what);
        }
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sql(String),
    #[error("query refused: {0} (queries may only read)")]
    Denied(String),
    #[error("query stopped: it ran past its time limit of {0:?}")]
    TimeLimit(Duration),
    #[error("query stopped: it returned more than {0} rows")]
    RowLimit(usize),
    #[error("only one SQL statement may be given")]
    MultipleStatements,
    #[error("could not open the SQL engine: {0}")]
    Open(String),
}

/// The rows of one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl QueryResult {
    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(i)
    }
}

/// One hardened SQLite connection with every osquery table, bound to a machine.
pub struct Engine {
    conn: Connection,
    runtime: Arc<Runtime>,
    limits: Limits,
    machine: Machine,
}

impl Engine {
    /// Opens an engine on `machine` with the default limits.
    pub fn new(machine: Machine) -> Result<Engine, SqlError> {
        Engine::with_limits(machine, Limits::default())
    }

    pub fn with_limits(machine: Machine, limits: Limits) -> Result<Engine, SqlError> {
        let open = |e: rusqlite::Error| SqlError::Open(e.to_string());
        let conn = Connection::open_with_flags(
            ":memory:",
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open)?;
        let runtime = Arc::new(Runtime::default());
        functions::register(&conn).map_err(open)?;
        let spec = schema::spec();
        let ours = crate::tables::all();
        for t in ours {
            let osquery = spec.get(t.name).map_or(Platforms::NONE, |s| s.platforms);
            let binding = vtab::TableBinding::new(
                t.name,
                t.columns.iter().map(schema::SpecColumn::from),
                Some(t),
                osquery,
                machine.clone(),
                runtime.clone(),
            );
            vtab::register(&conn, binding).map_err(open)?;
        }
        for (name, s) in spec {
            let target = s.alias_of.as_deref().unwrap_or(name);
            let implementation = ours.iter().copied().find(|t| t.name == target);
            if ours.iter().any(|t| t.name == name) {
                continue;
            }
            let binding = match implementation {
                Some(t) => vtab::TableBinding::new(
                    name,
                    t.columns.iter().map(schema::SpecColumn::from),
                    Some(t),
                    s.platforms,
                    machine.clone(),
                    runtime.clone(),
                ),
                None => vtab::TableBinding::new(
                    name,
                    s.columns.iter().cloned(),
                    None,
                    s.platforms,
                    machine.clone(),
                    runtime.clone(),
                ),
            };
            vtab::register(&conn, binding).map_err(open)?;
        }
        guard::harden(&conn, runtime.clone(), limits).map_err(open)?;
        Ok(Engine {
            conn,
            runtime,
            limits,
            machine,
        })
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one read-only statement and returns all its rows.
    pub fn query(&self, sql: &str) -> Result<QueryResult, SqlError> {
        self.runtime
            .set_deadline(Some(Instant::now() + self.limits.time));
        let result = self.run(sql);
        self.runtime.set_deadline(None);
        result
    }

    /// Prepares a statement without running it: checks syntax, tables, columns
    /// and the authorizer. `tend policy lint` uses this.
    pub fn prepare(&self, sql: &str) -> Result<(), SqlError> {
        self.conn
            .prepare(sql)
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Prepares a statement and returns the tables it reads, in first-use order.
    pub fn tables_read(&self, sql: &str) -> Result<Vec<String>, SqlError> {
        *self.runtime.reads.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let prepared = self.prepare(sql);
        let tables = self
            .runtime
            .reads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        prepared.map(|()| tables)
    }

    fn run(&self, sql: &str) -> Result<QueryResult, SqlError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.error(e))?;
        let columns: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let n = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next().map_err(|e| self.error(e))? {
            if rows.len() >= self.limits.rows {
                return Err(SqlError::RowLimit(self.limits.rows));
            }
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(row.get::<_, Value>(i).map_err(|e| self.error(e))?);
            }
            rows.push(values);
        }
        Ok(QueryResult { columns, rows })
    }

    fn error(&self, e: rusqlite::Error) -> SqlError {
        if let Some(what) = self.runtime.take_denied() {
            return SqlError::Denied(what);
        }
        match e {
            rusqlite::Error::MultipleStatement => SqlError::MultipleStatements,
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                SqlError::TimeLimit(self.limits.time)
            }
            rusqlite::Error::SqliteFailure(_, Some(msg)) => {
                if msg.contains("ran past its time limit") {
                    SqlError::TimeLimit(self.limits.time)
                } else {
                    SqlError::Sql(msg)
                }
            }
            other => SqlError::Sql(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(limits: Limits) -> Engine {
        Engine::with_limits(Machine::real(), limits).unwrap()
    }

    #[test]
    fn a_runaway_query_stops_at_its_time_limit_and_the_engine_goes_on() {
        let e = engine(Limits {
            time: Duration::from_millis(100),
            rows: 10,
        });
        let started = Instant::now();
        let err = e
            .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            .unwrap_err();
        assert!(matches!(err, SqlError::TimeLimit(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e.query("SELECT 1 AS one").unwrap().rows.len(), 1);
    }

    #[test]
    fn the_row_limit_holds() {
        let e = engine(Limits {
            time: Duration::from_secs(5),
            rows: 10,
        });
        let err = e
            .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 11) SELECT x FROM c")
            .unwrap_err();
        assert!(matches!(err, SqlError::RowLimit(10)), "{err}");
        assert_eq!(
            e.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) SELECT x FROM c")
                .unwrap()
                .rows
                .len(),
            10
        );
    }

    #[test]
    fn denials_name_what_was_refused() {
        let e = engine(Limits::default());
        let cases = [
            (
                "INSERT INTO mounts(path) VALUES ('x')",
                "INSERT into mounts is not allowed",
            ),
            ("ATTACH DATABASE ':memory:' AS x", "ATTACH is not allowed"),
            ("CREATE TEMP VIEW v AS SELECT 1", "TEMP"),
            (
                "PRAGMA journal_mode = WAL",
                "PRAGMA journal_mode is not allowed",
            ),
            ("SELECT load_extension('x')", "load_extension"),
            ("BEGIN", "transactions are not allowed"),
        ];
        for (sql, want) in cases {
            let err = e.query(sql).unwrap_err().to_string();
            assert!(err.contains(want), "{sql}: {err}");
        }
        // Reading the schema is fine.
        assert!(
            !e.query("PRAGMA table_info('mounts')")
                .unwrap()
                .rows
                .is_empty()
        );
    }

    // The live machine's `/proc`.
    #[cfg(target_os = "linux")]
    #[test]
    fn pushed_down_constraints_reach_the_table() {
        let e = engine(Limits::default());
        let r = e
            .query("SELECT path, type FROM file WHERE path IN ('/', '/proc') ORDER BY path")
            .unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.get(0, "type"), Some(&Value::Text("directory".into())));
        let like = e
            .query("SELECT count(*) AS n FROM file WHERE path LIKE '/proc/self/%'")
            .unwrap();
        assert!(matches!(like.get(0, "n"), Some(Value::Integer(n)) if *n > 5));
    }

    /// Tables skip columns a statement does not read (SQLite's colUsed), but a
    /// column named only in WHERE or ORDER BY is still filled.
    #[cfg(target_os = "linux")]
    #[test]
    fn columns_read_only_in_where_are_still_filled() {
        let e = engine(Limits::default());
        let pid = std::process::id();
        let r = e
            .query(&format!(
                "SELECT pid FROM processes WHERE pid = {pid} AND cmdline <> '' AND cwd <> ''"
            ))
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        let r = e
            .query(&format!(
                "SELECT name, cmdline FROM processes WHERE pid = {pid}"
            ))
            .unwrap();
        assert!(matches!(r.get(0, "cmdline"), Some(Value::Text(c)) if !c.is_empty()));
    }
}
