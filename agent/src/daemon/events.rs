//! Transitions and the events they emit.
//!
//! A check's result moves between `passed`, `failed`, `error` and `not
//! applicable`. Two kinds of change are events:
//!
//! - `ASSET_COMPLIANCE`: the last definite answer (passed or failed) flips.
//!   The body is the seed's shape field for field (`uuid`, `timestamp`,
//!   `level`, `meta`, `changes.passed.{last,latest}`, `item`, `company`,
//!   `user`, `team`, `asset`), with a leading `type` so one log stream can
//!   carry both kinds. A check's first definite answer is a change too, from
//!   `last: null`: a device that starts out failing is reported, not only
//!   one that later flips. An `error` in between does not reset the last
//!   answer: passed → error → passed is no compliance change.
//! - `ASSET_CHECK_ERROR`: entering or leaving `error`, with the reason
//!   (`changes.error.{last,latest}`, the message or `null`).
//!
//! [`transitions`] is the pure rule; the store applies it in the same
//! transaction that writes the new state, and [`body`] renders an event.

use serde::Serialize;

use crate::checks::Status;
use crate::tables::util::Civil;

pub const ASSET_COMPLIANCE: &str = "ASSET_COMPLIANCE";
pub const ASSET_CHECK_ERROR: &str = "ASSET_CHECK_ERROR";

/// What the store remembers of a check between evaluations.
#[derive(Clone, Debug, PartialEq)]
pub struct Previous {
    pub status: Status,
    /// The last definite answer: `Some(true)` passed, `Some(false)` failed.
    pub passed: Option<bool>,
    pub error: Option<String>,
}

/// One event a transition emits.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Compliance { last: Option<bool>, latest: bool },
    ErrorEntered { reason: String },
    ErrorLeft { reason: String },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Compliance { .. } => ASSET_COMPLIANCE,
            Change::ErrorEntered { .. } | Change::ErrorLeft { .. } => ASSET_CHECK_ERROR,
        }
    }
}

/// The events a new result emits after `prev` (none for the first result
/// that is not definite). Leaving `error` comes before the compliance change.
pub fn transitions(prev: Option<&Previous>, status: Status, error: Option<&str>) -> Vec<Change> {
    let mut out = Vec::new();
    let was_error = prev.is_some_and(|p| p.status == Status::Error);
    match status {
        Status::Passed | Status::Failed => {
            if was_error {
                out.push(Change::ErrorLeft {
                    reason: prev.and_then(|p| p.error.clone()).unwrap_or_default(),
                });
            }
            let latest = status == Status::Passed;
            let last = prev.and_then(|p| p.passed);
            if last != Some(latest) {
                out.push(Change::Compliance { last, latest });
            }
        }
        Status::Error => {
            if !was_error {
                out.push(Change::ErrorEntered {
                    reason: error.unwrap_or("unknown error").to_string(),
                });
            }
        }
        Status::NotApplicable => {
            if was_error {
                out.push(Change::ErrorLeft {
                    reason: prev.and_then(|p| p.error.clone()).unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// `{uuid, name}` of a company or team.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Named {
    pub uuid: Option<String>,
    pub name: Option<String>,
}

/// The event's `user`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub email: String,
}

/// Who and what the events are about: this device and its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub asset: Named,
    pub company: Option<Named>,
    pub user: Option<User>,
    pub team: Option<Named>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct LastLatest<T> {
    last: Option<T>,
    latest: Option<T>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Changes {
    Passed(LastLatest<bool>),
    Error(LastLatest<String>),
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    uuid: &'a str,
    timestamp: String,
    level: &'static str,
    meta: Option<serde_json::Value>,
    changes: Changes,
    item: Item<'a>,
    company: Option<&'a Named>,
    user: Option<&'a User>,
    team: Option<&'a Named>,
    asset: &'a Named,
}

/// `2020-03-04T14:18:14+00:00`, as the seed writes it.
pub fn rfc3339(unix_ms: i64) -> String {
    let iso = Civil::from_unix(unix_ms.div_euclid(1000)).iso8601();
    format!("{}+00:00", iso.trim_end_matches('Z'))
}

/// The JSON text of one event.
pub fn body(
    change: &Change,
    uuid: &str,
    at_ms: i64,
    check_id: &str,
    check_name: &str,
    who: &Identity,
) -> String {
    let (level, changes) = match change {
        Change::Compliance { last, latest } => (
            if *latest { "INFO" } else { "WARNING" },
            Changes::Passed(LastLatest {
                last: *last,
                latest: Some(*latest),
            }),
        ),
        Change::ErrorEntered { reason } => (
            "ERROR",
            Changes::Error(LastLatest {
                last: None,
                latest: Some(reason.clone()),
            }),
        ),
        Change::ErrorLeft { reason } => (
            "INFO",
            Changes::Error(LastLatest {
                last: Some(reason.clone()),
                latest: None,
            }),
        ),
    };
    let b = Body {
        kind: change.kind(),
        uuid,
        timestamp: rfc3339(at_ms),
        level,
        meta: None,
        changes,
        item: Item {
            id: check_id,
            name: check_name,
        },
        company: who.company.as_ref(),
        user: who.user.as_ref(),
        team: who.team.as_ref(),
        asset: &who.asset,
    };
    // Serializing plain structs of strings, booleans and options cannot fail.
    serde_json::to_string(&b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prev(status: Status, passed: Option<bool>) -> Previous {
        Previous {
            status,
            passed,
            error: (status == Status::Error).then(|| "boom".to_string()),
        }
    }

    #[test]
    fn only_changes_are_events() {
        use Status::*;
        assert_eq!(
            transitions(None, Passed, None),
            vec![Change::Compliance {
                last: None,
                latest: true
            }]
        );
        assert!(transitions(Some(&prev(Passed, Some(true))), Passed, None).is_empty());
        assert_eq!(
            transitions(Some(&prev(Passed, Some(true))), Failed, None),
            vec![Change::Compliance {
                last: Some(true),
                latest: false
            }]
        );
        // passed → error → passed: two error events, no compliance change.
        assert_eq!(
            transitions(Some(&prev(Passed, Some(true))), Error, Some("boom")),
            vec![Change::ErrorEntered {
                reason: "boom".into()
            }]
        );
        assert!(transitions(Some(&prev(Error, Some(true))), Error, Some("other")).is_empty());
        assert_eq!(
            transitions(Some(&prev(Error, Some(true))), Passed, None),
            vec![Change::ErrorLeft {
                reason: "boom".into()
            }]
        );
        // passed → error → failed: left error, then the flip.
        assert_eq!(
            transitions(Some(&prev(Error, Some(true))), Failed, None),
            vec![
                Change::ErrorLeft {
                    reason: "boom".into()
                },
                Change::Compliance {
                    last: Some(true),
                    latest: false
                }
            ]
        );
        assert!(transitions(None, NotApplicable, None).is_empty());
        assert!(transitions(None, Error, Some("x")).len() == 1);
    }

    #[test]
    fn the_body_has_the_seeds_shape() {
        let who = Identity {
            asset: Named {
                uuid: Some("4e8924a8-31ff-4895-8956-92879b8c617e".into()),
                name: Some("James (laptop)".into()),
            },
            company: Some(Named {
                uuid: Some("f50dfca1-c8b0-40ca-80cd-984d2d6dce10".into()),
                name: Some("Zercurity".into()),
            }),
            user: None,
            team: Some(Named {
                uuid: Some("53d27c4a-41f5-4d37-83ab-93532dbfeab6".into()),
                name: Some("Zercurity".into()),
            }),
        };
        let text = body(
            &Change::Compliance {
                last: Some(false),
                latest: true,
            },
            "5c15f50e-432f-43fa-b169-40ea0b2957d1",
            1_583_331_494_000,
            "45e0bba6-9775-4dc9-b280-7ab4d35c5e0b",
            "FW-MAC Firewall check",
            &who,
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want = serde_json::json!({
            "type": "ASSET_COMPLIANCE",
            "uuid": "5c15f50e-432f-43fa-b169-40ea0b2957d1",
            "timestamp": "2020-03-04T14:18:14+00:00",
            "level": "INFO",
            "meta": null,
            "changes": { "passed": { "last": false, "latest": true } },
            "item": { "id": "45e0bba6-9775-4dc9-b280-7ab4d35c5e0b", "name": "FW-MAC Firewall check" },
            "company": { "uuid": "f50dfca1-c8b0-40ca-80cd-984d2d6dce10", "name": "Zercurity" },
            "user": null,
            "team": { "uuid": "53d27c4a-41f5-4d37-83ab-93532dbfeab6", "name": "Zercurity" },
            "asset": { "uuid": "4e8924a8-31ff-4895-8956-92879b8c617e", "name": "James (laptop)" }
        });
        assert_eq!(v, want);
        // The seed's field order.
        let keys: Vec<&str> = [
            "\"type\"",
            "\"uuid\"",
            "\"timestamp\"",
            "\"level\"",
            "\"meta\"",
            "\"changes\"",
            "\"item\"",
            "\"company\"",
            "\"user\"",
            "\"team\"",
            "\"asset\"",
        ]
        .to_vec();
        let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

        let err = body(
            &Change::ErrorEntered {
                reason: "query stopped".into(),
            },
            "u",
            0,
            "firewall",
            "Firewall",
            &who,
        );
        let v: serde_json::Value = serde_json::from_str(&err).unwrap();
        assert_eq!(v["type"], "ASSET_CHECK_ERROR");
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["changes"]["error"]["latest"], "query stopped");
        assert_eq!(v["changes"]["error"]["last"], serde_json::Value::Null);
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00+00:00");
    }
}
