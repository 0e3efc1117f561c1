//! A check's fix, written in markdown for the window and for Slack, made
//! into the plain text a notification shows.
//!
//! Notification servers show their body as text (some accept a few HTML
//! tags, none markdown), so "Run `sudo ufw enable`." would show its
//! backticks. Code spans and emphasis keep their text, links keep their
//! address after the text, list items become bullets, paragraphs stay
//! apart; raw HTML is kept as written.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// `markdown` as plain text.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::new();
    // The address of each open link, and where its text began.
    let mut links: Vec<(String, usize)> = Vec::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak | Event::Rule => out.push('\n'),
            Event::Start(Tag::Item) => out.push_str("• "),
            Event::Start(Tag::Link { dest_url, .. }) => links.push((dest_url.into(), out.len())),
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = links.pop()
                    && out[start..] != url
                {
                    out.push_str(&format!(" ({url})"));
                }
            }
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::CodeBlock) => {
                out.push_str("\n\n")
            }
            Event::End(TagEnd::Item | TagEnd::List(_)) => out.push('\n'),
            _ => {}
        }
    }
    // Blocks end in blank lines; between them one is enough.
    let mut text = String::with_capacity(out.len());
    for line in out.trim().lines() {
        if line.trim().is_empty() && text.ends_with("\n\n") {
            continue;
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_the_text_it_shows() {
        assert_eq!(plain_text("Run `sudo ufw enable`."), "Run sudo ufw enable.");
        assert_eq!(
            plain_text("Turn on **FileVault** in *System Settings*."),
            "Turn on FileVault in System Settings."
        );
        assert_eq!(
            plain_text("See [the guide](https://example.com/fv) or <https://example.com/x>."),
            "See the guide (https://example.com/fv) or https://example.com/x."
        );
        assert_eq!(
            plain_text("Two steps:\n\n- open Settings\n- turn it on\n\nThen wait."),
            "Two steps:\n\n• open Settings\n• turn it on\n\nThen wait."
        );
        assert_eq!(
            plain_text("One line\nwraps here.\n\n```\nsudo ufw enable\n```"),
            "One line wraps here.\n\nsudo ufw enable"
        );
        assert_eq!(
            plain_text("a <b>raw</b> tag & more"),
            "a <b>raw</b> tag & more"
        );
        assert_eq!(plain_text(""), "");
    }
}
