//! The e-mail: a one-line subject, a plain-text body and an HTML body (every piece of content
//! HTML-escaped) that say the same thing.

use std::fmt::Write;

use super::{fields, headline, runbook_link, words};
use crate::model::{Lang, Notification};

/// A rendered e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render_email(lang: Lang, n: &Notification) -> EmailContent {
    EmailContent {
        subject: render_email_subject(lang, n),
        text: render_email_text(lang, n),
        html: render_email_html(lang, n),
    }
}

/// `[FIRING critical] title`, `[発生中 重大] title`, `[RESOLVED …]`, `… (reminder) …`: one line,
/// no control characters (nothing from the input can start a new header), at most 200
/// characters.
pub fn render_email_subject(lang: Lang, n: &Notification) -> String {
    crate::redact::truncate_chars(&headline(lang, n), 200)
}

pub fn render_email_text(lang: Lang, n: &Notification) -> String {
    let w = words(lang);
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(lang, n));
    out.push('\n');
    if let Some(description) = &n.description {
        let _ = writeln!(out, "{}\n", description.trim_end());
    }
    for (label, value) in fields(lang, n) {
        let _ = writeln!(out, "{label}: {value}");
    }
    if let Some(url) = &n.runbook_url {
        let _ = writeln!(out, "{}: {url}", w.runbook);
    }
    if let Some(object) = &n.object {
        let _ = writeln!(out, "{}: {}", w.inspect, object.kubectl_describe());
    }
    let _ = writeln!(out, "\n-- \n{} ({}: {})", w.footer, w.alert, n.group_key);
    out
}

pub fn render_email_html(lang: Lang, n: &Notification) -> String {
    let w = words(lang);
    let color = match (n.status, n.severity.as_str()) {
        (crate::Status::Resolved, _) => "#2e7d32",
        (_, "critical") => "#c62828",
        (_, "warning") => "#ef6c00",
        _ => "#1565c0",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:sans-serif\">\n",
        lang.as_str(),
        esc(&headline(lang, n))
    );
    let _ = writeln!(
        out,
        "<h2 style=\"color:{color}\">{}</h2>",
        esc(&headline(lang, n))
    );
    if let Some(description) = &n.description {
        let _ = writeln!(
            out,
            "<p>{}</p>",
            esc(description.trim_end()).replace('\n', "<br>\n")
        );
    }
    out.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse\">\n");
    for (label, value) in fields(lang, n) {
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            esc(&label),
            esc(&value)
        );
    }
    if let Some(url) = &n.runbook_url {
        let cell = match runbook_link(n) {
            Some(link) => format!("<a href=\"{}\">{}</a>", esc(link), esc(link)),
            None => esc(url),
        };
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{}</th><td>{cell}</td></tr>",
            esc(w.runbook)
        );
    }
    if let Some(object) = &n.object {
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{}</th><td><code>{}</code></td></tr>",
            esc(w.inspect),
            esc(&object.kubectl_describe())
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<p style=\"color:#666;font-size:small\">{} ({}: {})</p>\n</body></html>",
        esc(w.footer),
        esc(w.alert),
        esc(&n.group_key)
    );
    out
}

/// HTML-escapes text for element content and double-quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::render::sample::notification;

    #[test]
    fn english_email_has_every_fact() {
        let n = notification();
        let mail = render_email(Lang::En, &n);
        assert_eq!(
            mail.subject,
            "[FIRING critical] API error rate above 5% <script>"
        );
        for expected in [
            "Severity: critical",
            "Value: 0.073",
            "Condition: > 0.05",
            "Since: 2025-01-02 03:04:05 UTC",
            "Runbook: https://runbooks.example/api-errors?a=1&b=2",
            "Inspect: kubectl describe alertrule/api-errors -n fieldbook",
            "Probe: http://fieldbook/metrics",
            "Errors & timeouts on /api/records.\nSecond line.",
        ] {
            assert!(
                mail.text.contains(expected),
                "text lacks {expected:?}:\n{}",
                mail.text
            );
        }
    }

    #[test]
    fn html_escapes_all_content() {
        let n = notification();
        let html = render_email_html(Lang::En, &n);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("API error rate above 5% &lt;script&gt;"));
        assert!(html.contains("Errors &amp; timeouts"));
        assert!(html.contains("<a href=\"https://runbooks.example/api-errors?a=1&amp;b=2\">"));
        assert!(html.contains("<code>kubectl describe alertrule/api-errors -n fieldbook</code>"));
        let mut evil = n.clone();
        evil.runbook_url = Some("javascript:alert(1)".into());
        let html = render_email_html(Lang::En, &evil);
        assert!(!html.contains("href=\"javascript"), "{html}");
    }

    #[test]
    fn japanese_email_and_resolved_variant() {
        let mut n = notification();
        n.title = "API エラー率が 5% を超えました".into();
        let mail = render_email(Lang::Ja, &n);
        assert_eq!(mail.subject, "[発生中 重大] API エラー率が 5% を超えました");
        assert!(mail.text.contains("重要度: 重大"));
        assert!(
            mail.text
                .contains("発生時刻: 2025-01-02 12:04:05 JST (2025-01-02 03:04:05 UTC)")
        );
        assert!(
            mail.text
                .contains("確認コマンド: kubectl describe alertrule/api-errors -n fieldbook")
        );
        assert!(mail.html.contains("<html lang=\"ja\">"));
        n.status = Status::Resolved;
        n.ends_at = Some("2025-01-02T04:00:00Z".parse().unwrap());
        let mail = render_email(Lang::Ja, &n);
        assert!(mail.subject.starts_with("[解決 重大]"));
        assert!(mail.text.contains("解決時刻: 2025-01-02 13:00:00 JST"));
        let en = render_email(Lang::En, &n);
        assert!(en.subject.starts_with("[RESOLVED critical]"));
        assert!(en.text.contains("Resolved at: 2025-01-02 04:00:00 UTC"));
    }

    #[test]
    fn subject_is_one_line_whatever_the_title() {
        let mut n = notification();
        n.title = "boom\r\nBcc: evil@example.com\r\n\r\nbody".into();
        n.severity = "critical\nX-Evil: 1".into();
        let subject = render_email_subject(Lang::En, &n);
        assert!(
            !subject.contains('\r') && !subject.contains('\n'),
            "{subject:?}"
        );
        n.title = "x".repeat(1000);
        assert_eq!(render_email_subject(Lang::En, &n).chars().count(), 200);
    }
}
