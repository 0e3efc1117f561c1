//! Hardening of a connection: read-only authorizer, limits, time limit.

use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

use super::{Limits, Runtime};

/// PRAGMAs that only read; their argument (a table name) sets nothing.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "function_list",
    "module_list",
];

/// Functions a query may never call.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "readfile", "writefile", "edit"];

fn decide(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Err(format!("the function {function_name}() is not allowed"))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma { pragma_name, .. }
            if READ_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Ok(())
        }
        AuthAction::Pragma { pragma_name, .. } => {
            Err(format!("PRAGMA {pragma_name} is not allowed"))
        }
        AuthAction::Attach { .. } => Err("ATTACH is not allowed".into()),
        AuthAction::Detach { .. } => Err("DETACH is not allowed".into()),
        // SQLite asks to write the schema table before it names the CREATE.
        AuthAction::Insert {
            table_name: "sqlite_temp_master" | "sqlite_temp_schema",
        } => Err("creating TEMP objects is not allowed".into()),
        AuthAction::Insert {
            table_name: "sqlite_master" | "sqlite_schema",
        } => Err("creating tables, views, indexes or triggers is not allowed".into()),
        AuthAction::Insert { table_name } => {
            Err(format!("INSERT into {table_name} is not allowed"))
        }
        AuthAction::Update { table_name, .. } => {
            Err(format!("UPDATE of {table_name} is not allowed"))
        }
        AuthAction::Delete { table_name } => {
            Err(format!("DELETE from {table_name} is not allowed"))
        }
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => Err("creating TEMP objects is not allowed".into()),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("transactions are not allowed".into())
        }
        other => Err(format!("{other:?} is not allowed")),
    }
}

/// Installs the authorizer, the limits and the progress handler.
pub(crate) fn harden(
    conn: &Connection,
    runtime: Arc<Runtime>,
    limits: Limits,
) -> rusqlite::Result<()> {
    let _ = limits;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 64 << 20)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 20)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        false,
    )?;
    let auth_runtime = runtime.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let AuthAction::Read { table_name, .. } = ctx.action {
            auth_runtime.record_read(table_name);
        }
        match decide(&ctx) {
            Ok(()) => Authorization::Allow,
            Err(why) => {
                auth_runtime.set_denied(why);
                Authorization::Deny
            }
        }
    }))?;
    conn.progress_handler(
        1_000,
        Some(move || runtime.deadline().is_some_and(|d| Instant::now() > d)),
    )?;
    Ok(())
}
