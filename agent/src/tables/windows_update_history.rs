//! `windows_update_history`: what Windows Update installed and removed
//! (osquery's `windows_update_history`).
//!
//! osquery asks the Windows Update Agent COM API
//! (`IUpdateSearcher::QueryHistory` over `GetTotalHistoryCount` entries).
//! That history lives in the agent's own database (`DataStore.edb`), with
//! no WMI class or registry copy. Tend asks the same API through PowerShell
//! (`Microsoft.Update.Session`, the API's scripting face) via the machine's
//! command seam, so recordings hold its answer; the script prints each
//! entry's properties as JSON. The columns are filled as osquery fills them:
//!
//! - `operation`: `Installation`, `Uninstallation` (else "");
//!   `result_code`: `NotStarted`, `InProgress`, `Succeeded`,
//!   `SucceededWithErrors`, `Failed`, `Aborted`; `server_selection`:
//!   `Default`, `ManagedServer`, `WindowsUpdate`, `Others`; `service_id`
//!   only for `Others` ("" otherwise).
//! - `date`: osquery converts the agent's UTC time as if it were local
//!   time (`LocalFileTimeToFileTime`), so its `date` is the UTC time minus
//!   the machine's current UTC offset; Tend gives the same number.
//!
//! If the agent cannot be asked (no PowerShell, the call fails or times
//! out), there are no rows, as in osquery.

use serde::Deserialize;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "windows_update_history",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("client_app_id"),
    col::bigint("date"),
    col::text("description"),
    col::bigint("hresult"),
    col::text("operation"),
    col::text("result_code"),
    col::text("server_selection"),
    col::text("service_id"),
    col::text("support_url"),
    col::text("title"),
    col::text("update_id"),
    col::bigint("update_revision"),
];

pub const POWERSHELL: &str = "powershell.exe";

/// The script: every history entry as JSON (`Date` as .NET ticks, which
/// keep the agent's value without a time zone conversion).
pub const SCRIPT: &str = "[Console]::OutputEncoding=[Text.Encoding]::UTF8; \
$s=(New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher(); \
$n=$s.GetTotalHistoryCount(); $h=@(if($n -gt 0){$s.QueryHistory(0,$n)}); \
ConvertTo-Json -Compress -InputObject @($h | ForEach-Object {[pscustomobject]@{\
ClientApplicationID=$_.ClientApplicationID; Date=$_.Date.Ticks; Description=$_.Description; \
HResult=$_.HResult; Operation=[int]$_.Operation; ResultCode=[int]$_.ResultCode; \
ServerSelection=[int]$_.ServerSelection; ServiceID=$_.ServiceID; SupportUrl=$_.SupportUrl; \
Title=$_.Title; UpdateID=$_.UpdateIdentity.UpdateID; RevisionNumber=$_.UpdateIdentity.RevisionNumber}})";

pub fn args() -> [&'static str; 4] {
    ["-NoProfile", "-NonInteractive", "-Command", SCRIPT]
}

/// One `IUpdateHistoryEntry`, as the script prints it.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Entry {
    #[serde(rename = "ClientApplicationID")]
    pub client_application_id: Option<String>,
    pub date: Option<i64>,
    pub description: Option<String>,
    pub h_result: Option<i64>,
    pub operation: Option<i64>,
    pub result_code: Option<i64>,
    pub server_selection: Option<i64>,
    #[serde(rename = "ServiceID")]
    pub service_id: Option<String>,
    pub support_url: Option<String>,
    pub title: Option<String>,
    #[serde(rename = "UpdateID")]
    pub update_id: Option<String>,
    pub revision_number: Option<i64>,
}

/// Parses the script's output.
pub fn parse(stdout: &str) -> Result<Vec<Entry>, serde_json::Error> {
    let text = stdout.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text)
}

/// .NET ticks (100 ns since 0001-01-01) as Unix seconds.
pub fn ticks_to_unix(ticks: i64) -> i64 {
    (ticks - 621_355_968_000_000_000).div_euclid(10_000_000)
}

fn operation(n: Option<i64>) -> &'static str {
    match n {
        Some(1) => "Installation",
        Some(2) => "Uninstallation",
        _ => "",
    }
}

fn result_code(n: Option<i64>) -> &'static str {
    match n {
        Some(0) => "NotStarted",
        Some(1) => "InProgress",
        Some(2) => "Succeeded",
        Some(3) => "SucceededWithErrors",
        Some(4) => "Failed",
        Some(5) => "Aborted",
        _ => "",
    }
}

fn server_selection(n: Option<i64>) -> &'static str {
    match n {
        Some(0) => "Default",
        Some(1) => "ManagedServer",
        Some(2) => "WindowsUpdate",
        Some(3) => "Others",
        _ => "",
    }
}

/// The row osquery renders for an entry; `utc_offset` is the machine's
/// current offset from UTC in seconds.
pub fn entry_row(e: &Entry, utc_offset: i64) -> Row {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let mut r = RowBuilder::new(COLUMNS);
    r.set("client_app_id", text(&e.client_application_id))
        .set("date", e.date.map_or(0, |t| ticks_to_unix(t) - utc_offset))
        .set("description", text(&e.description))
        .set("hresult", e.h_result.unwrap_or(0))
        .set("operation", operation(e.operation))
        .set("result_code", result_code(e.result_code))
        .set("server_selection", server_selection(e.server_selection))
        .set(
            "service_id",
            if e.server_selection == Some(3) {
                text(&e.service_id)
            } else {
                String::new()
            },
        )
        .set("support_url", text(&e.support_url))
        .set("title", text(&e.title))
        .set("update_id", text(&e.update_id))
        .set("update_revision", e.revision_number.unwrap_or(0));
    r.build()
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let out = match ctx.machine.commands.run(POWERSHELL, &args()) {
        Ok(o) if o.status == 0 => o,
        _ => return Ok(Vec::new()),
    };
    let Ok(entries) = parse(&out.stdout) else {
        return Ok(Vec::new());
    };
    let (offset, _) = ctx.machine.host.local_offset();
    Ok(entries.iter().map(|e| entry_row(e, offset)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn ticks_convert() {
        // 2024-01-10T03:15:42Z
        assert_eq!(ticks_to_unix(638_404_533_420_000_000), 1_704_856_542);
        assert_eq!(ticks_to_unix(621_355_968_000_000_000), 0);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("[]").unwrap().is_empty());
    }

    #[test]
    fn reads_recorded_history() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/windows_update_history"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine
            .query("SELECT * FROM windows_update_history")
            .unwrap();
        assert_eq!(res.rows.len(), 3);
        let t = |i: usize, c: &str| res.get(i, c).cloned().unwrap();
        let text = |s: &str| Value::Text(s.to_string());
        assert_eq!(
            t(0, "title"),
            text(
                "2024-01 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5034123)"
            )
        );
        assert_eq!(t(0, "operation"), text("Installation"));
        assert_eq!(t(0, "result_code"), text("Succeeded"));
        assert_eq!(t(0, "server_selection"), text("WindowsUpdate"));
        assert_eq!(t(0, "client_app_id"), text("UpdateOrchestrator"));
        assert_eq!(t(0, "hresult"), Value::Integer(0));
        assert_eq!(t(0, "update_revision"), Value::Integer(1));
        assert_eq!(
            t(0, "update_id"),
            text("4ad5a3b8-5c82-4ba6-8e4a-fa9f0a7c3d5e")
        );
        assert_eq!(
            t(0, "support_url"),
            text("https://support.microsoft.com/help/5034123")
        );
        // 03:15:42 UTC, less the recorded machine's UTC+1 offset.
        assert_eq!(t(0, "date"), Value::Integer(1_704_856_542 - 3600));
        assert_eq!(t(0, "service_id"), text(""));
        // A failed Defender definition update (0x80240022), from another service.
        assert_eq!(t(1, "result_code"), text("Failed"));
        assert_eq!(t(1, "hresult"), Value::Integer(-2_145_124_318));
        assert_eq!(t(1, "server_selection"), text("Others"));
        assert_eq!(
            t(1, "service_id"),
            text("7971f918-a847-4430-9279-4a52d1efe18d")
        );
        assert_eq!(t(2, "operation"), text("Uninstallation"));
    }
}
