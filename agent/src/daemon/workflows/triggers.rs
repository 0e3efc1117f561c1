//! What starts a workflow: its `trigger` (DESIGN.md, "Workflows").
//!
//! - `{"event": "ASSET_COMPLIANCE", "filter": {"$.item.id": "firewall"}}`:
//!   every outbox event of that type (`ASSET_COMPLIANCE`,
//!   `ASSET_CHECK_ERROR`) whose body matches the filter: each JSONPath
//!   selects a value equal to the one given. The event is the input.
//! - `{"cron": "0 9 * * 1-5"}`: a cron schedule (`croner`: five or six
//!   fields), on the local wall clock. The input is `{"scheduled": RFC 3339}`.
//! - `{"manual": true}`, or no trigger: only `tend workflow start`.
//!
//! Every workflow can also be started by hand.

use chrono::{Local, TimeZone as _};
use serde_json::Value;
use tend_workflow::path::Path;

/// The event types the daemon emits.
pub const EVENT_TYPES: &[&str] = &["ASSET_COMPLIANCE", "ASSET_CHECK_ERROR"];

#[derive(Clone, Debug)]
pub enum Trigger {
    Event {
        kind: String,
        filter: Vec<(Path, Value)>,
    },
    Cron(Box<croner::Cron>),
    Manual,
}

impl Trigger {
    /// Reads a workflow's `trigger`; errors name the JSON path under it.
    pub fn parse(v: Option<&Value>) -> Result<Trigger, (String, String)> {
        let Some(v) = v else {
            return Ok(Trigger::Manual);
        };
        let Some(obj) = v.as_object() else {
            return Err((String::new(), "a trigger is an object: {\"event\": TYPE}, {\"cron\": SCHEDULE} or {\"manual\": true}".into()));
        };
        for k in obj.keys() {
            if !["event", "filter", "cron", "manual"].contains(&k.as_str()) {
                return Err((format!(".{k}"), format!("unknown trigger field {k:?}")));
            }
        }
        let kinds = ["event", "cron", "manual"]
            .iter()
            .filter(|k| obj.contains_key(**k))
            .count();
        if kinds != 1 {
            return Err((
                String::new(),
                "a trigger has exactly one of \"event\", \"cron\" or \"manual\"".into(),
            ));
        }
        if obj.contains_key("filter") && !obj.contains_key("event") {
            return Err((
                ".filter".into(),
                "only an event trigger has a filter".into(),
            ));
        }
        if let Some(e) = obj.get("event") {
            let Some(kind) = e.as_str().filter(|k| EVENT_TYPES.contains(k)) else {
                return Err((
                    ".event".into(),
                    format!("the event type must be one of {}", EVENT_TYPES.join(", ")),
                ));
            };
            let mut filter = Vec::new();
            if let Some(f) = obj.get("filter") {
                let Some(f) = f.as_object() else {
                    return Err((
                        ".filter".into(),
                        "a filter is an object of JSONPath → value".into(),
                    ));
                };
                for (p, want) in f {
                    let path =
                        Path::parse(p).map_err(|e| (format!(".filter[{p:?}]"), e.to_string()))?;
                    filter.push((path, want.clone()));
                }
            }
            return Ok(Trigger::Event {
                kind: kind.to_string(),
                filter,
            });
        }
        if let Some(c) = obj.get("cron") {
            let Some(text) = c.as_str() else {
                return Err((".cron".into(), "a cron schedule is a string".into()));
            };
            let cron: croner::Cron = text
                .parse()
                .map_err(|e: croner::errors::CronError| (".cron".into(), e.to_string()))?;
            return Ok(Trigger::Cron(Box::new(cron)));
        }
        match obj.get("manual") {
            Some(Value::Bool(true)) => Ok(Trigger::Manual),
            _ => Err((".manual".into(), "write \"manual\": true".into())),
        }
    }

    /// Whether an outbox event of `kind` with this body starts the workflow.
    pub fn matches_event(&self, kind: &str, body: &Value) -> bool {
        match self {
            Trigger::Event { kind: k, filter } => {
                k == kind
                    && filter
                        .iter()
                        .all(|(p, want)| p.select(body, &Value::Null).as_ref() == Some(want))
            }
            _ => false,
        }
    }

    /// For a cron trigger: the first slot after `after_ms` (Unix ms).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let Trigger::Cron(cron) = self else {
            return None;
        };
        let start = Local.timestamp_millis_opt(after_ms).single()?;
        cron.find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers_read_and_match() {
        let t = Trigger::parse(Some(
            &json!({"event": "ASSET_COMPLIANCE", "filter": {"$.item.id": "fw"}}),
        ))
        .unwrap();
        assert!(t.matches_event("ASSET_COMPLIANCE", &json!({"item": {"id": "fw"}})));
        assert!(!t.matches_event("ASSET_COMPLIANCE", &json!({"item": {"id": "disk"}})));
        assert!(!t.matches_event("ASSET_CHECK_ERROR", &json!({"item": {"id": "fw"}})));
        assert!(matches!(Trigger::parse(None), Ok(Trigger::Manual)));
        let c = Trigger::parse(Some(&json!({"cron": "*/5 * * * *"}))).unwrap();
        let next = c.next_after(0).unwrap();
        assert!(next > 0 && next <= 5 * 60_000, "{next}");
        for (bad, at) in [
            (json!({"event": "NOPE"}), ".event"),
            (json!({"cron": "not a schedule"}), ".cron"),
            (
                json!({"cron": "* * * * *", "event": "ASSET_COMPLIANCE"}),
                "",
            ),
            (json!({"when": 1}), ".when"),
        ] {
            assert_eq!(Trigger::parse(Some(&bad)).unwrap_err().0, at, "{bad}");
        }
    }
}
