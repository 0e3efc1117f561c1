//! The Slack resources: `zrn:integration:slack:chat:postMessage`,
//! `...:chat:update` and `...:users:lookupByEmail`, on the Slack Web API
//! with a bot token ([`api`]).
//!
//! `chat:postMessage` takes the workflow's parameters as Slack's method
//! does (`channel`, `blocks`, `text`, ...) with two additions: a `channel`
//! that is an email address (the seed's `"$.owner.email"`) or a user id
//! becomes the DM with that user (`users.lookupByEmail`, then
//! `conversations.open`), and every button without a `url` gets a `tend://`
//! link ([`blocks`]) carrying the execution, the event (the button's
//! `value`) and the execution's token. Slack delivers real button clicks
//! only to an app's Request URL or one Socket Mode connection, never to the
//! device that posted, so a fleet of agents cannot hear them; a link button
//! opens `tend open-url` on the device the user clicked on instead.
//!
//! Results: `postMessage` → `{"channel", "ts", "user"?}` (map it, say to
//! `$.slack`, for a later `chat:update` with `"channel": "$.slack.channel",
//! "ts": "$.slack.ts"`); `update` → `{"channel", "ts"}`; `lookupByEmail` →
//! Slack's `user` object. Errors: Slack's `ok: false` is `Slack.<error>`
//! (`Slack.users_not_found`, `Slack.channel_not_found`, ...); see [`api`]
//! for rate limits and lost connections.

pub mod api;
pub mod blocks;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use tend_workflow::{ErrorInfo, Registry, Resource, TaskCall};

pub use api::{SecretToken, SlackApi, SlackError, SlackSettings, TokenSource};

use super::Interactions;

/// The prefix every Slack resource shares.
pub const PREFIX: &str = "zrn:integration:slack:";

/// The three Slack resources, one type.
pub struct SlackResource {
    api: SlackApi,
    interactions: Option<Arc<dyn Interactions>>,
}

impl SlackResource {
    /// `interactions`: where button links get their execution token; with
    /// `None` buttons are posted as they are.
    pub fn new(api: SlackApi, interactions: Option<Arc<dyn Interactions>>) -> SlackResource {
        SlackResource { api, interactions }
    }

    /// Registers the resource under [`PREFIX`].
    pub fn register(self, registry: &mut Registry) {
        registry.prefix(PREFIX, self);
    }

    /// The DM channel for an email address or a user id; any other
    /// channel as it is. Returns the channel and the user, when one was resolved.
    async fn channel(&self, channel: &str) -> Result<(String, Option<String>), SlackError> {
        let user = if channel.contains('@') {
            let found = self.lookup(channel).await?;
            Some(
                found["id"]
                    .as_str()
                    .ok_or_else(|| SlackError::invalid("users.lookupByEmail", "no user.id"))?
                    .to_string(),
            )
        } else if channel.starts_with('U') || channel.starts_with('W') {
            Some(channel.to_string())
        } else {
            None
        };
        let Some(user) = user else {
            return Ok((channel.to_string(), None));
        };
        let open = self
            .api
            .call_json("conversations.open", &json!({ "users": user }))
            .await?;
        let id = open["channel"]["id"]
            .as_str()
            .ok_or_else(|| SlackError::invalid("conversations.open", "no channel.id"))?;
        Ok((id.to_string(), Some(user)))
    }

    async fn lookup(&self, email: &str) -> Result<Value, SlackError> {
        let found = self
            .api
            .call_form("users.lookupByEmail", &[("email", email)])
            .await?;
        Ok(found["user"].clone())
    }

    async fn post(&self, call: &TaskCall) -> Result<Value, SlackError> {
        let mut body = object(&call.input)?;
        let channel = string_field(&body, "channel")?;
        let (channel, user) = self.channel(&channel).await?;
        body.insert("channel".into(), json!(channel));
        self.link_buttons(&mut body, &call.execution_id)?;
        let r = self
            .api
            .call_json("chat.postMessage", &Value::Object(body))
            .await?;
        let mut out = json!({"channel": r["channel"], "ts": r["ts"]});
        if let Some(u) = user {
            out["user"] = json!(u);
        }
        Ok(out)
    }

    async fn update(&self, call: &TaskCall) -> Result<Value, SlackError> {
        let mut body = object(&call.input)?;
        string_field(&body, "channel")?;
        string_field(&body, "ts")?;
        self.link_buttons(&mut body, &call.execution_id)?;
        let r = self
            .api
            .call_json("chat.update", &Value::Object(body))
            .await?;
        Ok(json!({"channel": r["channel"], "ts": r["ts"]}))
    }

    fn link_buttons(
        &self,
        body: &mut Map<String, Value>,
        execution: &str,
    ) -> Result<(), SlackError> {
        let (Some(interactions), Some(b)) = (&self.interactions, body.get_mut("blocks")) else {
            return Ok(());
        };
        let token = interactions
            .token(execution)
            .ok_or_else(|| SlackError::Input {
                reason: format!(
                    "execution {execution} has no interaction token (it is not running)"
                ),
            })?;
        blocks::link_buttons(b, execution, &token).map_err(|reason| SlackError::Input { reason })
    }
}

fn object(input: &Value) -> Result<Map<String, Value>, SlackError> {
    input.as_object().cloned().ok_or_else(|| SlackError::Input {
        reason: "the parameters must be an object".into(),
    })
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<String, SlackError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(SlackError::Input {
            reason: format!("parameter `{field}` must be a non-empty string, not {other}"),
        }),
        None => Err(SlackError::Input {
            reason: format!("parameter `{field}` is missing"),
        }),
    }
}

impl Resource for SlackResource {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let method = call.resource.strip_prefix(PREFIX).unwrap_or_default();
            let result = match method {
                "chat:postMessage" => self.post(&call).await,
                "chat:update" => self.update(&call).await,
                "users:lookupByEmail" => match call.input.get("email").and_then(Value::as_str) {
                    Some(email) => self.lookup(email).await,
                    None => Err(SlackError::Input {
                        reason: "parameter `email` (a string) is missing".into(),
                    }),
                },
                other => Err(SlackError::Input {
                    reason: format!(
                        "unknown Slack resource {other:?} (chat:postMessage, chat:update, users:lookupByEmail)"
                    ),
                }),
            };
            result.map_err(|e| {
                tracing::warn!(
                    "execution {}, state {}: {}: {e}",
                    call.execution_id,
                    call.state,
                    call.resource
                );
                ErrorInfo::new(e.error_name(), e.to_string())
            })
        })
    }
}
