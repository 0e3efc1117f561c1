//! `systemd_units`: the units systemd has loaded (osquery's `systemd_units`).
//!
//! osquery asks systemd over D-Bus (`ListUnits`, then `FragmentPath`,
//! `SourcePath`, `UnitFileState` and the service's `User` of each unit).
//! Tend asks `systemctl`, which reads the same D-Bus properties, in one call
//! for all units:
//!
//! ```text
//! systemctl show --all --no-pager --property=Id,Description,... '*'
//! ```
//!
//! `'*'` expands to every loaded unit, and `--all` keeps inactive ones (as
//! `ListUnits` does) and prints empty properties. `Job` only gives the job's
//! id, so when a unit has a pending job, `systemctl list-jobs` gives its type.
//! `object_path` and `job_path` are the D-Bus paths systemd gives the unit and
//! job (the unit name escaped as `sd_bus_path_encode` does). `user` is the
//! service's `User=` setting, empty for other units, as in osquery.
//!
//! On a systemd too old to expand patterns in `show`, the units are listed
//! with `systemctl list-units` first. When systemd is not running, the
//! error names `systemctl` and what it said.

use std::collections::HashMap;

use crate::os::CommandOutput;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "systemd_units",
    columns: COLUMNS,
    platforms: Platforms::LINUX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("id"),
    col::text("description"),
    col::text("load_state"),
    col::text("active_state"),
    col::text("sub_state"),
    col::text("unit_file_state"),
    col::text("following"),
    col::text("object_path"),
    col::bigint("job_id"),
    col::text("job_type"),
    col::text("job_path"),
    col::text("fragment_path"),
    col::text("user"),
    col::text("source_path"),
];

const PROPERTIES: &str = "--property=Id,Description,LoadState,ActiveState,SubState,UnitFileState,Following,FragmentPath,SourcePath,Job,User";
const SHOW_ALL: [&str; 5] = ["show", "--all", "--no-pager", PROPERTIES, "*"];
const LIST_UNITS: [&str; 6] = [
    "list-units",
    "--all",
    "--no-legend",
    "--no-pager",
    "--plain",
    "--full",
];
const LIST_JOBS: [&str; 4] = ["list-jobs", "--no-legend", "--no-pager", "--full"];
/// Units per `systemctl show` call when they are named one by one.
const CHUNK: usize = 200;

/// One unit's properties, as `systemctl show` prints them.
pub type Properties = HashMap<String, String>;

/// Parses `systemctl show` output: `Key=value` lines, units separated by blank lines.
pub fn parse_show(text: &str) -> Vec<Properties> {
    let mut units = Vec::new();
    let mut cur = Properties::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                units.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            cur.insert(k.to_string(), v.to_string());
        }
    }
    if !cur.is_empty() {
        units.push(cur);
    }
    units.retain(|u| u.get("Id").is_some_and(|id| !id.is_empty()));
    units
}

/// Unit names from `systemctl list-units --plain --no-legend` (a leading `●`
/// marks failed or missing units).
pub fn parse_list_units(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().find(|w| *w != "●" && *w != "*"))
        .map(String::from)
        .collect()
}

/// Job id → job type from `systemctl list-jobs --no-legend` (`JOB UNIT TYPE STATE`).
pub fn parse_jobs(text: &str) -> HashMap<u64, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.parse().ok()?, f.get(2)?.to_string()))
        })
        .collect()
}

/// A unit's D-Bus object path: `sd_bus_path_encode("/org/freedesktop/systemd1/unit", id)`.
pub fn object_path(id: &str) -> String {
    let mut out = String::from("/org/freedesktop/systemd1/unit/");
    if id.is_empty() {
        out.push('_');
        return out;
    }
    for (i, b) in id.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

fn systemctl(ctx: &ScanContext<'_>, args: &[&str]) -> Result<CommandOutput, TableError> {
    ctx.machine.commands.run("systemctl", args).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TableError::other("systemd_units", format!("systemctl is not available: {e}"))
        } else {
            TableError::io("systemd_units", format!("running systemctl {}", args[0]), e)
        }
    })
}

fn failure(args: &[&str], out: &CommandOutput) -> TableError {
    TableError::other(
        "systemd_units",
        format!(
            "systemctl {} exited with status {}: {}",
            args[0],
            out.status,
            out.stderr.trim()
        ),
    )
}

/// Every loaded unit's properties.
fn units(ctx: &ScanContext<'_>) -> Result<Vec<Properties>, TableError> {
    let out = systemctl(ctx, &SHOW_ALL)?;
    if out.status == 0 {
        return Ok(parse_show(&out.stdout));
    }
    // An old systemctl may not expand patterns: name the units one by one.
    let first_error = failure(&SHOW_ALL, &out);
    let listed = match systemctl(ctx, &LIST_UNITS) {
        Ok(l) if l.status == 0 => l,
        _ => return Err(first_error),
    };
    let names = parse_list_units(&listed.stdout);
    let mut all = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let mut args = vec!["show", "--all", "--no-pager", PROPERTIES];
        args.extend(chunk.iter().map(String::as_str));
        let out = systemctl(ctx, &args)?;
        if out.status != 0 {
            return Err(failure(&args, &out));
        }
        all.extend(parse_show(&out.stdout));
    }
    Ok(all)
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let units = units(ctx)?;
    let job_of = |u: &Properties| {
        u.get("Job")
            .and_then(|j| j.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let jobs = if units.iter().any(|u| job_of(u) > 0) {
        match systemctl(ctx, &LIST_JOBS) {
            Ok(out) if out.status == 0 => parse_jobs(&out.stdout),
            _ => HashMap::new(),
        }
    } else {
        HashMap::new()
    };
    let mut rows = Vec::new();
    for u in &units {
        let get = |k: &str| u.get(k).cloned().unwrap_or_default();
        let id = get("Id");
        let is_service = id.ends_with(".service");
        let job = job_of(u);
        let mut r = RowBuilder::new(COLUMNS);
        r.set("object_path", object_path(&id))
            .set("id", id)
            .set("description", get("Description"))
            .set("load_state", get("LoadState"))
            .set("active_state", get("ActiveState"))
            .set("sub_state", get("SubState"))
            .set("unit_file_state", get("UnitFileState"))
            .set("following", get("Following"))
            .set("job_id", job)
            .set("job_type", jobs.get(&job).cloned().unwrap_or_default())
            .set(
                "job_path",
                if job > 0 {
                    format!("/org/freedesktop/systemd1/job/{job}")
                } else {
                    "/".to_string()
                },
            )
            .set("fragment_path", get("FragmentPath"))
            .set("source_path", get("SourcePath"))
            // osquery reads User from the Service interface only (sockets and
            // mounts have one too, which systemctl would print).
            .set(
                "user",
                if is_service {
                    get("User")
                } else {
                    String::new()
                },
            );
        rows.push(r.build());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text};

    #[test]
    fn escapes_object_paths_like_systemd() {
        assert_eq!(
            object_path("ssh.service"),
            "/org/freedesktop/systemd1/unit/ssh_2eservice"
        );
        assert_eq!(
            object_path("-.mount"),
            "/org/freedesktop/systemd1/unit/_2d_2emount"
        );
        assert_eq!(
            object_path("systemd-journald.service"),
            "/org/freedesktop/systemd1/unit/systemd_2djournald_2eservice"
        );
        assert_eq!(
            object_path("getty@tty1.service"),
            "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"
        );
        assert_eq!(
            object_path("1x.target"),
            "/org/freedesktop/systemd1/unit/_31x_2etarget"
        );
    }

    #[test]
    fn parses_systemctl_output() {
        let units = parse_show("User=\nId=ssh.service\nJob=\n\nId=cron.service\nJob=77\n\n");
        assert_eq!(units.len(), 2);
        assert_eq!(units[1]["Job"], "77");
        assert_eq!(
            parse_list_units(
                "ssh.service loaded active running OpenBSD Secure Shell server\n● foo.service not-found inactive dead foo.service\n"
            ),
            vec!["ssh.service", "foo.service"]
        );
        assert_eq!(
            parse_jobs("1523 apt-daily.service start waiting\n")
                .get(&1523)
                .map(String::as_str),
            Some("start")
        );
    }

    #[test]
    fn reads_recorded_units() {
        let engine = Engine::new(fixture("systemd_units")).unwrap();
        let ssh = engine
            .query("SELECT * FROM systemd_units WHERE id = 'ssh.service'")
            .unwrap();
        assert_eq!(
            ssh.rows,
            vec![vec![
                text("ssh.service"),
                text("OpenBSD Secure Shell server"),
                text("loaded"),
                text("active"),
                text("running"),
                text("enabled"),
                text(""),
                text("/org/freedesktop/systemd1/unit/ssh_2eservice"),
                Value::Integer(0),
                text(""),
                text("/"),
                text("/lib/systemd/system/ssh.service"),
                text(""),
                text(""),
            ]]
        );
        let pg = engine
            .query("SELECT user, unit_file_state FROM systemd_units WHERE id = 'postgresql@15-main.service'")
            .unwrap();
        assert_eq!(
            pg.rows,
            vec![vec![text("postgres"), text("enabled-runtime")]]
        );
        let job = engine
            .query("SELECT job_id, job_type, job_path, active_state FROM systemd_units WHERE id = 'apt-daily.service'")
            .unwrap();
        assert_eq!(
            job.rows,
            vec![vec![
                Value::Integer(1523),
                text("start"),
                text("/org/freedesktop/systemd1/job/1523"),
                text("activating")
            ]]
        );
        let root = engine
            .query("SELECT source_path, unit_file_state FROM systemd_units WHERE id = '-.mount'")
            .unwrap();
        assert_eq!(root.rows, vec![vec![text("/etc/fstab"), text("generated")]]);
        let missing = engine
            .query("SELECT load_state, active_state, fragment_path FROM systemd_units WHERE id = 'display-manager.service'")
            .unwrap();
        assert_eq!(
            missing.rows,
            vec![vec![text("not-found"), text("inactive"), text("")]]
        );
        let dev = engine
            .query("SELECT following FROM systemd_units WHERE id = 'sys-subsystem-net-devices-eth0.device'")
            .unwrap();
        assert_eq!(
            dev.rows,
            vec![vec![text(
                "sys-devices-pci0000:00-0000:00:03.0-virtio0-net-eth0.device"
            )]]
        );
        let n = engine.query("SELECT count(*) FROM systemd_units").unwrap();
        assert_eq!(n.rows[0][0], Value::Integer(8));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn runs_on_this_machine() {
        // systemd may not be running here (a container): then the error names systemctl.
        let engine = Engine::new(Machine::real()).unwrap();
        match engine.query("SELECT id, load_state FROM systemd_units") {
            Ok(r) => {
                for row in &r.rows {
                    assert!(
                        matches!(&row[0], Value::Text(id) if id.contains('.')),
                        "{row:?}"
                    );
                }
            }
            Err(e) => assert!(e.to_string().contains("systemctl"), "{e}"),
        }
    }
}
