//! `logged_in_users` on Windows: the users with an interactive session
//! (osquery's `logged_in_users`).
//!
//! osquery enumerates Terminal Services sessions (`WTSEnumerateSessionsEx`),
//! keeping the active ones other than session 0. That API has no WMI or
//! registry form. WMI's `Win32_LogonSession`/`Win32_LoggedOnUser` are not a
//! good stand-in: they list every logon token (an administrator has two per
//! logon, and tokens outlive their session) and know no session names. Tend
//! reads what Windows writes for each interactive session instead: at logon
//! the user's hive is loaded under `HKEY_USERS\<SID>` and gets a volatile key
//! `Volatile Environment` (`USERNAME`, `USERDOMAIN`, ...) with one subkey per
//! session, named by the session ID, holding `SESSIONNAME` (`Console`,
//! `RDP-Tcp#3`) and, for remote sessions, `CLIENTNAME`. Windows removes them
//! at logoff. So, for each user hive (a SID, not a `_Classes` hive) with
//! such session subkeys (other than session 0), one row:
//!
//! - `type` `active`, `user` `USERNAME`, `tty` `SESSIONNAME`, `pid` -1,
//!   `sid` the hive's SID and `registry_hive` `HKEY_USERS\<SID>` — as osquery.
//! - `time`: when the session's key was written, i.e. logon (osquery gives
//!   the session's last connect time, the same unless it was reconnected).
//! - `host`: `CLIENTNAME`, the remote client's computer name (osquery gives
//!   its IP address, which the registry does not hold); NULL at the console.
//!
//! Unlike osquery, a session that is disconnected but not logged off (a
//! locked-out fast-user-switching session, a dropped RDP connection) is
//! still listed: nothing in the registry tells the two apart.

use super::registry::{self, RegRow};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "logged_in_users",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("type"),
    col::text("user"),
    col::text("tty"),
    col::text("host"),
    col::bigint("time"),
    col::integer("pid"),
    col::text("sid").on(Platforms::WINDOWS),
    col::text("registry_hive").on(Platforms::WINDOWS),
];

/// Whether a `HKEY_USERS` subkey is a user's own hive.
pub fn is_user_hive(name: &str) -> bool {
    name.starts_with("S-1-") && !name.ends_with("_Classes")
}

fn session_row(sid: &str, user: &str, id_key: &[RegRow], mtime: i64) -> Row {
    let mut r = RowBuilder::new(COLUMNS);
    r.set("type", "active")
        .set("user", user)
        .set("tty", registry::value(id_key, "SESSIONNAME").unwrap_or(""))
        .set_opt(
            "host",
            registry::value(id_key, "CLIENTNAME").filter(|c| !c.is_empty()),
        )
        .set("time", mtime)
        .set("pid", -1)
        .set("sid", sid)
        .set("registry_hive", format!("HKEY_USERS\\{sid}"));
    r.build()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let Ok(hives) = reg.key("HKEY_USERS") else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for sid in hives.subkeys.iter().filter(|s| is_user_hive(s)) {
        let env_path = format!("HKEY_USERS\\{sid}\\Volatile Environment");
        let Ok(env) = registry::query_key(reg, &env_path, false) else {
            continue;
        };
        let user = registry::value(&env, "USERNAME").unwrap_or("").to_string();
        let mut sessions: Vec<(u32, &RegRow)> = env
            .iter()
            .filter(|r| r.is_subkey())
            .filter_map(|r| Some((r.name.parse::<u32>().ok()?, r)))
            .filter(|(id, _)| *id != 0)
            .collect();
        sessions.sort_by_key(|(id, _)| *id);
        for (_, s) in sessions {
            let Ok(key) = registry::read_key(reg, &s.path) else {
                continue;
            };
            let values = registry::query_key(reg, &s.path, false).unwrap_or_default();
            rows.push(session_row(sid, &user, &values, key.mtime));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn user_hives() {
        assert!(is_user_hive(
            "S-1-5-21-1004336348-1177238915-682003330-1001"
        ));
        assert!(is_user_hive(
            "S-1-12-1-3456789012-1234567890-987654321-123456789"
        ));
        assert!(!is_user_hive(
            "S-1-5-21-1004336348-1177238915-682003330-1001_Classes"
        ));
        assert!(!is_user_hive(".DEFAULT"));
    }

    #[test]
    fn reads_recorded_sessions() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/logged_in_users"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query(
                "SELECT type, user, tty, host, time, pid, sid, registry_hive FROM logged_in_users",
            )
            .unwrap();
        assert_eq!(res.rows.len(), 2, "{:?}", res.rows);
        let t = |i: usize, c: &str| res.get(i, c).cloned().unwrap();
        let text = |s: &str| Value::Text(s.to_string());
        assert_eq!(t(0, "type"), text("active"));
        assert_eq!(t(0, "user"), text("alice"));
        assert_eq!(t(0, "tty"), text("Console"));
        assert_eq!(t(0, "host"), Value::Null);
        assert_eq!(t(0, "time"), Value::Integer(1_705_303_380));
        assert_eq!(t(0, "pid"), Value::Integer(-1));
        assert_eq!(
            t(0, "sid"),
            text("S-1-5-21-1004336348-1177238915-682003330-1001")
        );
        assert_eq!(
            t(0, "registry_hive"),
            text("HKEY_USERS\\S-1-5-21-1004336348-1177238915-682003330-1001")
        );
        assert_eq!(t(1, "user"), text("bob"));
        assert_eq!(t(1, "tty"), text("RDP-Tcp#2"));
        assert_eq!(t(1, "host"), text("BOB-LAPTOP"));
    }
}
