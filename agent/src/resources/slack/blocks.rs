//! Turning the buttons of Block Kit blocks into `tend://` link buttons.
//!
//! The blocks are posted as the workflow wrote them (the seed's, verbatim
//! after templating); only a `button` element without a `url` gains one: a
//! [`Link`] to the execution's event named by the button's `value` (or its
//! `action_id` when it has no value).

use serde_json::Value;

use crate::notify::link::Link;

/// Adds the links; an error names the block and element it is about.
pub fn link_buttons(blocks: &mut Value, execution: &str, token: &str) -> Result<(), String> {
    let Value::Array(list) = blocks else {
        return Err("parameter `blocks` must be a list of Block Kit blocks".into());
    };
    for (i, block) in list.iter_mut().enumerate() {
        let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut) else {
            continue;
        };
        for (j, el) in elements.iter_mut().enumerate() {
            if el.get("type").and_then(Value::as_str) != Some("button") || el.get("url").is_some() {
                continue;
            }
            let event = el
                .get("value")
                .or_else(|| el.get("action_id"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!(
                        "blocks[{i}].elements[{j}]: a button needs a `value` (the event it sends)"
                    )
                })?
                .to_string();
            let link = Link {
                execution: execution.to_string(),
                event,
                token: token.to_string(),
            };
            let url = link.to_url();
            Link::parse(&url).map_err(|e| format!("blocks[{i}].elements[{j}]: {e}"))?;
            if let Value::Object(m) = el {
                m.insert("url".into(), Value::String(url));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn buttons_gain_links_and_nothing_else_changes() {
        let mut b = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
            {"type": "actions", "elements": [
                {"type": "button", "value": "yes", "text": {"type": "plain_text", "text": "Yes"}},
                {"type": "button", "url": "https://example.com", "text": {"type": "plain_text", "text": "Docs"}}
            ]}
        ]);
        let before = b.clone();
        link_buttons(&mut b, "exec-1", "tok_tok_tok_tok_tok_").unwrap();
        assert_eq!(
            b[1]["elements"][0]["url"],
            "tend://interaction?execution=exec-1&event=yes&token=tok_tok_tok_tok_tok_"
        );
        assert_eq!(b[1]["elements"][1], before[1]["elements"][1]);
        assert_eq!(b[0], before[0]);
        let mut bad = json!([{"type": "actions", "elements": [{"type": "button"}]}]);
        let e = link_buttons(&mut bad, "e", "tok_tok_tok_tok_tok_").unwrap_err();
        assert!(e.contains("blocks[0].elements[0]"), "{e}");
    }
}
