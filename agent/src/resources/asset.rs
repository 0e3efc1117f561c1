//! `zrn:agent:asset:get`: this device and its owner (the identity the
//! daemon puts in its events: asset uuid and name, user, company, team).
//!
//! Result: `{"uuid", "name", "owner": {"name", "email", ...} | null,
//! "company", "team"}`; `name` and `email` of the owner are also at the top
//! level, so `$.owner.name` after the seed's `mapping` reads the person's
//! name. The parameters are not needed (the seed passes the asset's uuid;
//! a different uuid is an error: this agent knows only its own device).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tend_workflow::{ErrorInfo, Resource, TaskCall};

use super::{Agent, BAD_PARAMETERS};

pub const NAME: &str = "zrn:agent:asset:get";

pub struct AssetGet(pub Arc<dyn Agent>);

impl Resource for AssetGet {
    fn call(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, ErrorInfo>> {
        Box::pin(async move {
            let who = self.0.asset();
            let uuid = &who["asset"]["uuid"];
            if let Some(asked) = call.input.get("uuid").and_then(Value::as_str)
                && uuid.as_str().is_some_and(|u| u != asked)
            {
                return Err(ErrorInfo::new(
                    BAD_PARAMETERS,
                    format!("this agent is asset {uuid}, not {asked:?}"),
                ));
            }
            let owner = &who["user"];
            Ok(json!({
                "uuid": uuid,
                "name": owner.get("name").cloned().unwrap_or(Value::Null),
                "email": owner.get("email").cloned().unwrap_or(Value::Null),
                "asset": who["asset"],
                "owner": owner,
                "company": who["company"],
                "team": who["team"],
            }))
        })
    }
}
