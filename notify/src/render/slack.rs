//! The Slack incoming-webhook message: Block Kit (a header, the description, the facts as
//! fields, the runbook, a context line) with `text` as the fallback for notifications. Block
//! Kit's limits are kept: header 150 characters, section text 3000, ten fields of 2000 each.

use serde_json::{Value, json};

use super::{fields, headline, runbook_link, words};
use crate::model::{Lang, Notification, Status};
use crate::redact::truncate_chars;

pub fn render_slack(lang: Lang, n: &Notification) -> Value {
    let w = words(lang);
    let emoji = match (n.status, n.severity.as_str()) {
        (Status::Resolved, _) => ":white_check_mark:",
        (_, "critical") => ":rotating_light:",
        (_, "warning") => ":warning:",
        _ => ":information_source:",
    };
    let title = headline(lang, n);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&format!("{emoji} {title}"), 150), "emoji": true},
    })];
    if let Some(description) = &n.description {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate_chars(&mrkdwn(description), 3000)},
        }));
    }
    let field_texts: Vec<Value> = fields(lang, n)
        .into_iter()
        .map(|(label, value)| {
            json!({
                "type": "mrkdwn",
                "text": truncate_chars(&format!("*{}*\n{}", mrkdwn(&label), mrkdwn(&value)), 2000),
            })
        })
        .collect();
    // Slack allows ten fields per section; the blocks cap (50) is far off.
    for chunk in field_texts.chunks(10).take(40) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    if let Some(url) = &n.runbook_url {
        let text = match runbook_link(n) {
            Some(link) => format!("*{}*: <{}|{}>", w.runbook, link_target(link), mrkdwn(link)),
            None => format!("*{}*: {}", w.runbook, mrkdwn(url)),
        };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&text, 3000)}}));
    }
    let mut context = Vec::new();
    if let Some(object) = &n.object {
        context.push(json!({"type": "mrkdwn", "text": truncate_chars(&format!("`{}`", mrkdwn(&object.kubectl_describe())), 2000)}));
    }
    context.push(json!({"type": "mrkdwn", "text": truncate_chars(&format!("{}: {}", w.alert, mrkdwn(&n.group_key)), 2000)}));
    blocks.push(json!({"type": "context", "elements": context}));
    json!({
        "text": truncate_chars(&mrkdwn(&title), 3000),
        "blocks": blocks,
    })
}

/// Slack's mrkdwn escaping: only `&`, `<` and `>` are special.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link target inside `<…|…>`: `|` and `>` would end it early.
fn link_target(url: &str) -> String {
    url.replace('|', "%7C")
        .replace('>', "%3E")
        .replace('<', "%3C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample::notification;

    #[test]
    fn slack_message_has_blocks_and_fallback() {
        let n = notification();
        let v = render_slack(Lang::En, &n);
        assert_eq!(
            v["text"],
            "[FIRING critical] API error rate above 5% &lt;script&gt;"
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with(":rotating_light: [FIRING critical]")
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "Errors &amp; timeouts on /api/records.\nSecond line."
        );
        let fields = blocks[2]["fields"].as_array().unwrap();
        assert_eq!(fields[0]["text"], "*Severity*\ncritical");
        assert_eq!(fields[1]["text"], "*Value*\n0.073");
        assert_eq!(fields[2]["text"], "*Condition*\n&gt; 0.05");
        assert!(blocks.iter().any(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("<https://runbooks.example/api-errors?a=1&b=2|"))
        }));
        let last = blocks.last().unwrap();
        assert_eq!(last["type"], "context");
        assert_eq!(
            last["elements"][0]["text"],
            "`kubectl describe alertrule/api-errors -n fieldbook`"
        );
        // Valid JSON round trip.
        let text = serde_json::to_string(&v).unwrap();
        let _: Value = serde_json::from_str(&text).unwrap();
    }

    #[test]
    fn slack_limits_hold_for_huge_input() {
        let mut n = notification();
        n.title = "t".repeat(500);
        n.description = Some("d".repeat(10_000));
        n.facts = (0..30)
            .map(|i| (format!("k{i}"), "v".repeat(5000)))
            .collect();
        let v = render_slack(Lang::Ja, &n);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000);
            }
            if let Some(fs) = b["fields"].as_array() {
                assert!(fs.len() <= 10);
                assert!(
                    fs.iter()
                        .all(|f| f["text"].as_str().unwrap().chars().count() <= 2000)
                );
            }
        }
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("[発生中 重大]")
        );
    }
}
