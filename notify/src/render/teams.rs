//! The Microsoft Teams Workflows message: one Adaptive Card 1.4 in a `message` envelope. Teams
//! refuses bodies over 28 KB, so the card is cut to fit — the description first (ending in an
//! ellipsis), then long facts, then the facts themselves.

use serde_json::{Value, json};

use super::{fields, headline, runbook_link, words};
use crate::model::{Lang, Notification, Status};
use crate::redact::truncate_chars;

/// The largest body sent to Teams, in bytes of JSON (28 KB less a margin for the envelope
/// Teams adds).
pub const TEAMS_MAX_BYTES: usize = 27_000;

pub fn render_teams(lang: Lang, n: &Notification) -> Value {
    let mut description = n.description.clone();
    let mut fact_limit = usize::MAX;
    let mut keep_facts = true;
    loop {
        let card = card(lang, n, description.as_deref(), fact_limit, keep_facts);
        let size = serde_json::to_vec(&card).map(|v| v.len()).unwrap_or(0);
        if size <= TEAMS_MAX_BYTES {
            return card;
        }
        let excess = size - TEAMS_MAX_BYTES;
        match &description {
            // Keep the longest prefix whose JSON form is `excess` (and the ellipsis) smaller.
            Some(d) if !d.is_empty() => {
                let budget = json_len(d).saturating_sub(excess + "…".len());
                let mut used = 0;
                let keep = d
                    .chars()
                    .take_while(|c| {
                        used += json_char_len(*c);
                        used <= budget
                    })
                    .count();
                description = (keep > 0).then(|| {
                    let mut cut: String = d.chars().take(keep).collect();
                    cut.push('…');
                    cut
                });
            }
            _ if fact_limit == usize::MAX => {
                description = None;
                fact_limit = 200;
            }
            _ if keep_facts => keep_facts = false,
            // Even the bare card is too big (a huge title or key): the title is cut too, below.
            _ => return card_minimal(lang, n),
        }
    }
}

/// Bytes of `text` inside a JSON string, as serde_json escapes it.
fn json_len(text: &str) -> usize {
    text.chars().map(json_char_len).sum()
}

fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

fn card(
    lang: Lang,
    n: &Notification,
    description: Option<&str>,
    fact_limit: usize,
    keep_facts: bool,
) -> Value {
    let w = words(lang);
    let color = match (n.status, n.severity.as_str()) {
        (Status::Resolved, _) => "Good",
        (_, "critical") => "Attention",
        (_, "warning") => "Warning",
        _ => "Accent",
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": headline(lang, n), "weight": "Bolder", "size": "Medium",
        "color": color, "wrap": true, "style": "heading",
    })];
    if let Some(d) = description {
        body.push(json!({"type": "TextBlock", "text": d, "wrap": true}));
    }
    let all = fields(lang, n);
    let facts: Vec<Value> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep_facts || *i < 3)
        .map(|(_, (title, value))| {
            json!({"title": truncate_chars(&title, fact_limit), "value": truncate_chars(&value, fact_limit)})
        })
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    if let Some(object) = &n.object {
        body.push(json!({
            "type": "TextBlock", "text": object.kubectl_describe(), "fontType": "Monospace",
            "wrap": true, "isSubtle": true,
        }));
    }
    body.push(json!({
        "type": "TextBlock", "text": format!("{}: {}", w.alert, truncate_chars(&n.group_key, 300)),
        "wrap": true, "isSubtle": true, "size": "Small",
    }));
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    });
    if let Some(link) = runbook_link(n) {
        content["actions"] = json!([{"type": "Action.OpenUrl", "title": w.runbook, "url": truncate_chars(link, 2000)}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

/// The last resort: the headline (cut) and the severity, nothing else.
fn card_minimal(lang: Lang, n: &Notification) -> Value {
    let w = words(lang);
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": truncate_chars(&headline(lang, n), 1000), "weight": "Bolder", "wrap": true},
                    {"type": "TextBlock", "text": format!("{}: {}", w.severity, truncate_chars(&n.severity, 100)), "wrap": true},
                ],
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample::notification;

    fn size(v: &Value) -> usize {
        serde_json::to_vec(v).unwrap().len()
    }

    #[test]
    fn teams_card_shape() {
        let n = notification();
        let v = render_teams(Lang::En, &n);
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &att["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(
            card["body"][0]["text"],
            "[FIRING critical] API error rate above 5% <script>"
        );
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(card["body"][2]["type"], "FactSet");
        assert_eq!(card["body"][2]["facts"][0]["title"], "Severity");
        assert_eq!(
            card["actions"][0]["url"],
            "https://runbooks.example/api-errors?a=1&b=2"
        );
        let ja = render_teams(Lang::Ja, &n);
        assert_eq!(
            ja["attachments"][0]["content"]["body"][2]["facts"][0]["title"],
            "重要度"
        );
    }

    #[test]
    fn huge_description_is_cut_with_an_ellipsis_under_28kb() {
        let mut n = notification();
        n.description = Some("エラー\"\n".repeat(20_000));
        let v = render_teams(Lang::Ja, &n);
        assert!(size(&v) <= TEAMS_MAX_BYTES, "{} bytes", size(&v));
        let d = v["attachments"][0]["content"]["body"][1]["text"]
            .as_str()
            .unwrap();
        assert!(d.ends_with('…'));
        assert!(d.len() > 20_000, "cut much more than needed: {}", d.len());
        // The facts survive.
        assert_eq!(
            v["attachments"][0]["content"]["body"][2]["facts"][1]["value"],
            "0.073"
        );
    }

    #[test]
    fn huge_facts_and_title_still_fit() {
        let mut n = notification();
        n.facts = (0..200)
            .map(|i| (format!("k{i}"), "v".repeat(2000)))
            .collect();
        assert!(size(&render_teams(Lang::En, &n)) <= TEAMS_MAX_BYTES);
        n.title = "t".repeat(100_000);
        assert!(size(&render_teams(Lang::En, &n)) <= TEAMS_MAX_BYTES);
    }
}
