//! The `tend://` link behind a button in a Slack message (or any message
//! Tend cannot hear clicks from): opening it on the device hands the click
//! to the local agent as the workflow's interaction event.
//!
//! `tend://interaction?execution=ID&event=NAME&token=TOKEN` — the
//! execution, the event name (a button's `value` in the seed's blocks), and
//! the execution's unguessable token, which the daemon checks so that a web
//! page cannot forge a click by opening such a link. [`Link::parse`] is
//! strict: a link it accepts has exactly these three fields, each short and
//! of a safe alphabet.

use reqwest::Url;

/// The scheme the tray and the OS register for Tend.
pub const SCHEME: &str = "tend";
/// The longest link accepted.
pub const MAX_LINK: usize = 2048;

/// A parsed interaction link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub execution: String,
    pub event: String,
    pub token: String,
}

/// Why a link is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not a URL: {0}")]
    NotUrl(String),
    #[error("the link is over {MAX_LINK} bytes")]
    TooLong,
    #[error("the link's scheme is {0:?}, not {SCHEME:?}")]
    Scheme(String),
    #[error("the link is for {0:?}; only tend://interaction links are handled")]
    Kind(String),
    #[error("the link's `{0}` is missing")]
    Missing(&'static str),
    #[error("the link has `{0}` more than once")]
    Repeated(String),
    #[error("the link has an unknown field `{0}`")]
    Unknown(String),
    #[error("the link's `{field}` is not valid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn token_ok(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Link {
    /// Parses and checks a link.
    pub fn parse(text: &str) -> Result<Link, LinkError> {
        if text.len() > MAX_LINK {
            return Err(LinkError::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|e| LinkError::NotUrl(e.to_string()))?;
        if url.scheme() != SCHEME {
            return Err(LinkError::Scheme(url.scheme().chars().take(32).collect()));
        }
        let kind = url.host_str().unwrap_or_default();
        if kind != "interaction" || !matches!(url.path(), "" | "/") {
            let what = format!("{kind}{}", url.path());
            return Err(LinkError::Kind(what.chars().take(64).collect()));
        }
        let (mut execution, mut event, mut token) = (None, None, None);
        for (k, v) in url.query_pairs() {
            let slot = match k.as_ref() {
                "execution" => &mut execution,
                "event" => &mut event,
                "token" => &mut token,
                other => return Err(LinkError::Unknown(other.chars().take(32).collect())),
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(LinkError::Repeated(k.into_owned()));
            }
        }
        let execution = execution.ok_or(LinkError::Missing("execution"))?;
        let event = event.ok_or(LinkError::Missing("event"))?;
        let token = token.ok_or(LinkError::Missing("token"))?;
        let invalid = |field, reason| Err(LinkError::Invalid { field, reason });
        if !name_ok(&execution) {
            return invalid(
                "execution",
                "an id of letters, digits and -_.: (at most 128)",
            );
        }
        if !name_ok(&event) {
            return invalid("event", "a name of letters, digits and -_.: (at most 128)");
        }
        if !token_ok(&token) {
            return invalid("token", "16 to 128 letters, digits, - and _");
        }
        Ok(Link {
            execution,
            event,
            token,
        })
    }

    /// The link as text.
    pub fn to_url(&self) -> String {
        let mut url = format!("{SCHEME}://interaction");
        let query: String = Url::parse("x:/")
            .map(|mut u| {
                u.query_pairs_mut()
                    .append_pair("execution", &self.execution)
                    .append_pair("event", &self.event)
                    .append_pair("token", &self.token);
                u.query().unwrap_or_default().to_string()
            })
            .unwrap_or_default();
        url.push('?');
        url.push_str(&query);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_bad_ones_say_why() {
        let l = Link {
            execution: "exec-1".into(),
            event: "no".into(),
            token: "AbCdEfGhIjKlMnOpQrSt_-12".into(),
        };
        let text = l.to_url();
        assert_eq!(
            text,
            "tend://interaction?execution=exec-1&event=no&token=AbCdEfGhIjKlMnOpQrSt_-12"
        );
        assert_eq!(Link::parse(&text).unwrap(), l);
        let err = |s: &str| Link::parse(s).unwrap_err();
        assert_eq!(
            err("https://evil.example/?a=b"),
            LinkError::Scheme("https".into())
        );
        assert!(matches!(err("tend://open?execution=a"), LinkError::Kind(_)));
        assert_eq!(
            err("tend://interaction?execution=a&event=no"),
            LinkError::Missing("token")
        );
        assert_eq!(
            err("tend://interaction?execution=a&execution=b"),
            LinkError::Repeated("execution".into())
        );
        assert_eq!(
            err("tend://interaction?execution=a&event=b&token=AAAAAAAAAAAAAAAAAAAA&cmd=rm"),
            LinkError::Unknown("cmd".into())
        );
        assert!(matches!(
            err("tend://interaction?execution=a%20b&event=no&token=AAAAAAAAAAAAAAAAAAAA"),
            LinkError::Invalid {
                field: "execution",
                ..
            }
        ));
        assert!(matches!(
            err("tend://interaction?execution=a&event=no&token=short"),
            LinkError::Invalid { field: "token", .. }
        ));
        assert_eq!(err(&"x".repeat(MAX_LINK + 1)), LinkError::TooLong);
    }
}
