//! A check's fix, written in markdown by the policy's author, as HTML that
//! is safe to put in the window.
//!
//! The policy is signed, but the window must not trust it with script: raw
//! HTML in the markdown is shown as text, links keep only `http(s)` and
//! `mailto` targets (and open outside the app), and images become their
//! alt text, so nothing in a fix can load or run anything.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Renders `markdown` to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        // Raw HTML is shown as the text it is.
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Some(Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        })),
        // An image is replaced by its alt text (the text events inside it).
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, events);
    out
}

/// Keeps a link's target only if its scheme is harmless.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
    {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown() {
        let h = render("Run `sudo ufw enable`.\n\n1. Open **Settings**\n2. Turn it on");
        assert!(h.contains("<code>sudo ufw enable</code>"), "{h}");
        assert!(
            h.contains("<ol>") && h.contains("<strong>Settings</strong>"),
            "{h}"
        );
    }

    #[test]
    fn drops_script_and_dangerous_links() {
        let h = render(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)> ![a](http://e.invalid/t.png) [ok](https://example.invalid/fix)",
        );
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        assert!(h.contains(r#"href="https://example.invalid/fix""#), "{h}");
    }
}
