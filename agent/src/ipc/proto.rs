//! The messages of the local API: versioned JSON, one message per line,
//! each at most [`MAX_MESSAGE`] bytes.
//!
//! A request: `{"v": 1, "id": 7, "op": "recheck", "check": "firewall"}`.
//! A response: `{"v": 1, "id": 7, "ok": true, "result": {...}}` or
//! `{"v": 1, "id": 7, "ok": false, "error": {"code": "forbidden", "message": "..."}}`.
//! After `subscribe`, the server also sends pushes: `{"v": 1, "push":
//! "check", "data": {...}}` (a check's state changed) and `"interaction"`.
//!
//! | op | who may | does |
//! |---|---|---|
//! | `hello` | anyone | the daemon's version and protocol, and what this peer may do |
//! | `status` | anyone | every check's state, the policy in force, the device |
//! | `checks` | anyone | the policy's checks with remediation for this OS |
//! | `subscribe` | anyone | pushes on every change |
//! | `history` (`check`, `limit`) | anyone | the newest changes of status, of one check or all |
//! | `recheck` (`check`: id, or none for all) | the console user, an admin | runs it now, answers with the new state |
//! | `session` (`user`, `display`) | the console user, an admin | registers a tray/session; runs every check |
//! | `interaction` (`execution`, `event`, `token`) | the console user, an admin | a button was pressed: the event goes to the execution (with a token, it must be the execution's); answers with the event's `response` |
//! | `workflow_start` (`name`, `input`) | an admin | starts a workflow of the policy by hand |
//! | `workflow_executions` (`limit`) | the console user, an admin | the newest executions |
//! | `workflow_history` (`execution`) | the console user, an admin | an execution's history |
//! | `notified` (`notification`, `outcome`, `action`, `reason`) | the console user, an admin | a session says what became of a notification |
//! | `pull` | an admin | fetches the policy now |
//! | `reload` | an admin | re-reads the config and policy (as SIGHUP) |
//!
//! A connection that sent `session` is a user session: the server may push
//! it `{"v": 1, "push": "notify", "data": {...}}` (a
//! [`crate::notify::Request`]: show this notification), and the session
//! answers with `notified`: `outcome` `shown` or `suppressed` (with a
//! `reason`) or `failed` first, then, when the user acts, `action` (with
//! the button's id in `action`), `dismissed` or `expired`.
//!
//! A message that is not JSON, too large, of another version, or with bad
//! fields closes the connection (after an error response); an unknown `op`
//! or a forbidden one is answered with an error and the connection stays.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The largest message, either way, in bytes (newline excluded).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What a request asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Hello,
    Status,
    Checks,
    Recheck {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    Subscribe,
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Session {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
    },
    Interaction {
        execution: String,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    Notified {
        notification: String,
        outcome: NotifiedOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Pull,
    Reload,
    WorkflowStart {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<serde_json::Value>,
    },
    WorkflowExecutions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    WorkflowHistory {
        execution: String,
    },
}

/// What a session says became of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifiedOutcome {
    /// On screen.
    Shown,
    /// Not shown: a duplicate of what is on screen, or rate-limited.
    Suppressed,
    /// The desktop refused it.
    Failed,
    /// A button was pressed (`action` names it).
    Action,
    Dismissed,
    Expired,
}

/// The push that asks a session to show a notification.
pub const PUSH_NOTIFY: &str = "notify";

/// The ops this build knows, as spelled on the wire.
pub const OPS: &[&str] = &[
    "hello",
    "status",
    "checks",
    "recheck",
    "subscribe",
    "history",
    "session",
    "interaction",
    "notified",
    "pull",
    "reload",
    "workflow_start",
    "workflow_executions",
    "workflow_history",
];

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Hello => "hello",
            Op::Status => "status",
            Op::Checks => "checks",
            Op::Recheck { .. } => "recheck",
            Op::Subscribe => "subscribe",
            Op::History { .. } => "history",
            Op::Session { .. } => "session",
            Op::Interaction { .. } => "interaction",
            Op::Notified { .. } => "notified",
            Op::Pull => "pull",
            Op::Reload => "reload",
            Op::WorkflowStart { .. } => "workflow_start",
            Op::WorkflowExecutions { .. } => "workflow_executions",
            Op::WorkflowHistory { .. } => "workflow_history",
        }
    }
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub op: Op,
}

/// Why a message was refused. [`ProtoError::closes`] says whether the
/// connection ends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("the message is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("the message is not a JSON object: {0}")]
    Malformed(String),
    #[error("protocol version {0} is not supported (this daemon speaks {VERSION})")]
    Version(u64),
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("op {op}: {reason}")]
    BadFields { op: String, reason: String },
}

impl ProtoError {
    pub fn code(&self) -> &'static str {
        match self {
            ProtoError::TooLarge => "too_large",
            ProtoError::Malformed(_) => "malformed",
            ProtoError::Version(_) => "version",
            ProtoError::UnknownOp(_) => "unknown_op",
            ProtoError::BadFields { .. } => "bad_fields",
        }
    }

    pub fn closes(&self) -> bool {
        !matches!(self, ProtoError::UnknownOp(_))
    }
}

/// Parses one request line. Also returns the id it carried, when it had
/// one, so even a refusal can be matched to its request.
pub fn parse_request(line: &[u8]) -> Result<Request, (Option<u64>, ProtoError)> {
    if line.len() > MAX_MESSAGE {
        return Err((None, ProtoError::TooLarge));
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| (None, ProtoError::Malformed(e.to_string())))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err((None, ProtoError::Malformed("not an object".into())));
    };
    let id = match map.remove("id") {
        None => None,
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            return Err((
                None,
                ProtoError::Malformed("`id` must be a non-negative integer".into()),
            ));
        }
    };
    match map.remove("v") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        Some(serde_json::Value::Number(n)) => {
            return Err((id, ProtoError::Version(n.as_u64().unwrap_or(0))));
        }
        _ => {
            return Err((
                id,
                ProtoError::Malformed("`v` (the protocol version) is missing".into()),
            ));
        }
    }
    let op = match map.get("op") {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => return Err((id, ProtoError::Malformed("`op` is missing".into()))),
    };
    if !OPS.contains(&op.as_str()) {
        return Err((id, ProtoError::UnknownOp(op.chars().take(64).collect())));
    }
    let allowed: &[&str] = match op.as_str() {
        "recheck" => &["op", "check"],
        "history" => &["op", "check", "limit"],
        "session" => &["op", "user", "display"],
        "interaction" => &["op", "execution", "event", "token"],
        "notified" => &["op", "notification", "outcome", "action", "reason"],
        "workflow_start" => &["op", "name", "input"],
        "workflow_executions" => &["op", "limit"],
        "workflow_history" => &["op", "execution"],
        _ => &["op"],
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err((
            id,
            ProtoError::BadFields {
                op: op.clone(),
                reason: format!(
                    "unknown field `{}`",
                    extra.chars().take(64).collect::<String>()
                ),
            },
        ));
    }
    let op_value = serde_json::Value::Object(map);
    let parsed: Op = serde_json::from_value(op_value).map_err(|e| {
        (
            id,
            ProtoError::BadFields {
                op: op.clone(),
                reason: e.to_string(),
            },
        )
    })?;
    Ok(Request {
        id: id.unwrap_or(0),
        op: parsed,
    })
}

/// An error in a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// One response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub id: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    pub fn ok(id: u64, result: serde_json::Value) -> Response {
        Response {
            v: VERSION,
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn error(id: u64, code: &str, message: impl Into<String>) -> Response {
        Response {
            v: VERSION,
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                code: code.to_string(),
                message: message.into(),
            }),
        }
    }
}

/// A message the server sends unasked, after `subscribe`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub v: u32,
    pub push: String,
    pub data: serde_json::Value,
}

/// A request as a line (without the newline).
pub fn request_line(id: u64, op: &Op) -> String {
    let mut v = serde_json::to_value(op).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("v".into(), VERSION.into());
        m.insert("id".into(), id.into());
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_refuse() {
        let r = parse_request(br#"{"v":1,"id":7,"op":"recheck","check":"firewall"}"#).unwrap();
        assert_eq!(
            r,
            Request {
                id: 7,
                op: Op::Recheck {
                    check: Some("firewall".into())
                }
            }
        );
        assert_eq!(
            parse_request(br#"{"v":1,"op":"status"}"#).unwrap().op,
            Op::Status
        );
        let line = request_line(3, &Op::Recheck { check: None });
        assert_eq!(parse_request(line.as_bytes()).unwrap().id, 3);

        let err = |b: &[u8]| parse_request(b).unwrap_err();
        assert_eq!(err(b"not json").1.code(), "malformed");
        assert_eq!(err(b"[1,2]").1.code(), "malformed");
        assert_eq!(err(br#"{"op":"status"}"#).1.code(), "malformed");
        assert_eq!(
            err(br#"{"v":2,"id":1,"op":"status"}"#),
            (Some(1), ProtoError::Version(2))
        );
        let unknown = err(br#"{"v":1,"id":4,"op":"format_disk"}"#);
        assert_eq!(unknown.0, Some(4));
        assert!(!unknown.1.closes());
        let bad = err(br#"{"v":1,"op":"status","extra":1}"#).1;
        assert_eq!(bad.code(), "bad_fields");
        assert!(bad.closes());
        assert_eq!(
            err(br#"{"v":1,"op":"recheck","check":5}"#).1.code(),
            "bad_fields"
        );
        assert_eq!(err(&vec![b' '; MAX_MESSAGE + 1]).1, ProtoError::TooLarge);
        let notified = Op::Notified {
            notification: "n1".into(),
            outcome: NotifiedOutcome::Action,
            action: Some("yes".into()),
            reason: None,
        };
        let line = request_line(9, &notified);
        assert_eq!(parse_request(line.as_bytes()).unwrap().op, notified);
        assert_eq!(
            err(br#"{"v":1,"op":"notified","notification":"n","outcome":"exploded"}"#)
                .1
                .code(),
            "bad_fields"
        );
        assert_eq!(
            err(br#"{"v":1,"id":-1,"op":"status"}"#).1.code(),
            "malformed"
        );
    }
}
