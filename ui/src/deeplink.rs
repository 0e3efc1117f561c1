//! `tend://` links (from a Slack message, a notification, a web page) and
//! what each asks the tray to do.
//!
//! - `tend://open` and `tend://check/<id>`: open the window (at that check);
//! - `tend://recheck/<id>`: re-check now (the same as "I've fixed it");
//! - `tend://event/<execution>/<event>?token=<token>`: a workflow button,
//!   forwarded to the daemon as an `interaction` (the daemon checks the
//!   per-execution token; the tray only carries it).

/// What a link asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Open {
        check: Option<String>,
    },
    Recheck {
        check: String,
    },
    Event {
        execution: String,
        event: String,
        token: Option<String>,
    },
}

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("{0:?} is not a tend:// link")]
    Scheme(String),
    #[error("{link:?}: {why}")]
    Shape { link: String, why: &'static str },
}

/// The longest link accepted (a token is short; this bounds the work).
const MAX_LINK: usize = 2048;

/// Reads one link.
pub fn parse(link: &str) -> Result<Action, LinkError> {
    let shape = |why| LinkError::Shape {
        link: link.chars().take(120).collect(),
        why,
    };
    if link.len() > MAX_LINK {
        return Err(shape("longer than 2048 bytes"));
    }
    let rest = link
        .strip_prefix("tend://")
        .or_else(|| link.strip_prefix("tend:"))
        .ok_or_else(|| LinkError::Scheme(link.chars().take(120).collect()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(|| shape("a bad %-escape"))?;
    let token = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v).ok_or_else(|| shape("a bad %-escape in the token")))
        .transpose()?;
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        [] | ["open"] => Ok(Action::Open { check: None }),
        ["check", id] => Ok(Action::Open {
            check: Some(id.to_string()),
        }),
        ["recheck", id] => Ok(Action::Recheck {
            check: id.to_string(),
        }),
        ["event", execution, event] => Ok(Action::Event {
            execution: execution.to_string(),
            event: event.to_string(),
            token,
        }),
        _ => Err(shape(
            "expected open, check/<id>, recheck/<id> or event/<execution>/<event>",
        )),
    }
}

/// Decodes `%XX` escapes (and nothing else); `None` for a broken escape or
/// text that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(parse("tend://open"), Ok(Action::Open { check: None }));
        assert_eq!(parse("tend://"), Ok(Action::Open { check: None }));
        assert_eq!(
            parse("tend://check/firewall/"),
            Ok(Action::Open {
                check: Some("firewall".into())
            })
        );
        assert_eq!(
            parse("tend://recheck/disk%20encryption"),
            Ok(Action::Recheck {
                check: "disk encryption".into()
            })
        );
        assert_eq!(
            parse("tend://event/exec-1/yes?token=a%2Bb&x=1"),
            Ok(Action::Event {
                execution: "exec-1".into(),
                event: "yes".into(),
                token: Some("a+b".into())
            })
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(parse("https://x"), Err(LinkError::Scheme(_))));
        assert!(matches!(
            parse("tend://format/disk"),
            Err(LinkError::Shape { .. })
        ));
        assert!(matches!(
            parse("tend://check/%zz"),
            Err(LinkError::Shape { .. })
        ));
        assert!(matches!(
            parse("tend://check/%ff"),
            Err(LinkError::Shape { .. })
        ));
        let long = format!("tend://check/{}", "a".repeat(3000));
        assert!(matches!(parse(&long), Err(LinkError::Shape { .. })));
    }
}
