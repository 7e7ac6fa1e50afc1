//! Pure renderers: a [`Notification`] in Japanese or English, as an e-mail (subject, plain
//! text, HTML), a Slack Block Kit message, a Teams Adaptive Card, or Alertmanager's webhook v4
//! body. No I/O; every channel shows the same facts, in the same order.

mod email;
mod slack;
mod teams;
mod webhook;

pub use email::{
    EmailContent, render_email, render_email_html, render_email_subject, render_email_text,
};
pub use slack::render_slack;
pub use teams::{TEAMS_MAX_BYTES, render_teams};
pub use webhook::{WebhookContext, render_webhook};

use crate::model::{Lang, Notification, Status};

/// The words of one language.
pub(crate) struct Words {
    pub firing: &'static str,
    pub resolved: &'static str,
    pub reminder: &'static str,
    pub severity: &'static str,
    pub value: &'static str,
    pub condition: &'static str,
    pub since: &'static str,
    pub resolved_at: &'static str,
    pub runbook: &'static str,
    pub inspect: &'static str,
    pub source: &'static str,
    pub alert: &'static str,
    pub footer: &'static str,
}

pub(crate) fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &Words {
            firing: "FIRING",
            resolved: "RESOLVED",
            reminder: "reminder",
            severity: "Severity",
            value: "Value",
            condition: "Condition",
            since: "Since",
            resolved_at: "Resolved at",
            runbook: "Runbook",
            inspect: "Inspect",
            source: "Source",
            alert: "Alert",
            footer: "Sent by tend.",
        },
        Lang::Ja => &Words {
            firing: "発生中",
            resolved: "解決",
            reminder: "再通知",
            severity: "重要度",
            value: "観測値",
            condition: "条件",
            since: "発生時刻",
            resolved_at: "解決時刻",
            runbook: "対応手順",
            inspect: "確認コマンド",
            source: "発生元",
            alert: "アラート",
            footer: "tend から送信されました。",
        },
    }
}

/// The severity in the reader's language ("critical" → "重大"); unknown words stay as they are.
pub(crate) fn severity_word(lang: Lang, severity: &str) -> String {
    match (lang, severity.to_ascii_lowercase().as_str()) {
        (Lang::Ja, "critical") => "重大".into(),
        (Lang::Ja, "warning") => "警告".into(),
        (Lang::Ja, "info") => "情報".into(),
        _ => severity.to_string(),
    }
}

/// "[FIRING critical]", "[発生中 重大]", "[RESOLVED warning]", with "(reminder)" after it for a
/// repeat. One line; the title follows in [`headline`].
pub(crate) fn tag(lang: Lang, n: &Notification) -> String {
    let w = words(lang);
    let state = match n.status {
        Status::Firing => w.firing,
        Status::Resolved => w.resolved,
    };
    let severity = crate::redact::one_line(&severity_word(lang, &n.severity));
    let mut tag = format!("[{state} {severity}]");
    if n.repeat && n.status == Status::Firing {
        tag.push_str(&format!(" ({})", w.reminder));
    }
    tag
}

/// The tag and the title, on one line: the e-mail subject, the Slack header, the card title.
pub(crate) fn headline(lang: Lang, n: &Notification) -> String {
    crate::redact::one_line(&format!("{} {}", tag(lang, n), n.title))
}

/// A time for people: "2025-01-02 03:04:05 UTC", and in Japanese also JST first.
pub(crate) fn human_time(lang: Lang, at: jiff::Timestamp) -> String {
    let utc = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    match lang {
        Lang::En => utc,
        Lang::Ja => {
            let jst = at.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)));
            format!("{} JST ({utc})", jst.strftime("%Y-%m-%d %H:%M:%S"))
        }
    }
}

/// The labelled facts every channel shows, in order (title and description are shown apart).
pub(crate) fn fields(lang: Lang, n: &Notification) -> Vec<(String, String)> {
    let w = words(lang);
    let mut out = vec![(w.severity.to_string(), severity_word(lang, &n.severity))];
    match (&n.value, &n.condition) {
        (Some(v), Some(c)) => {
            out.push((w.value.to_string(), v.clone()));
            out.push((w.condition.to_string(), c.clone()));
        }
        (Some(v), None) => out.push((w.value.to_string(), v.clone())),
        (None, Some(c)) => out.push((w.condition.to_string(), c.clone())),
        (None, None) => {}
    }
    out.push((w.since.to_string(), human_time(lang, n.starts_at)));
    if n.status == Status::Resolved
        && let Some(end) = n.ends_at
    {
        out.push((w.resolved_at.to_string(), human_time(lang, end)));
    }
    out.push((w.source.to_string(), n.source.clone()));
    out.extend(n.facts.iter().cloned());
    out
}

/// The runbook URL if it is a web link (http/https); anything else is not made a link.
pub(crate) fn runbook_link(n: &Notification) -> Option<&str> {
    n.runbook_url
        .as_deref()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

#[cfg(test)]
pub(crate) mod sample {
    use std::collections::BTreeMap;

    use crate::model::{Notification, ObjectRef, Status};

    /// A firing critical alert with every field set.
    pub fn notification() -> Notification {
        Notification {
            source: "AlertRule".into(),
            group_key: "fieldbook/AlertRule/api-errors".into(),
            fingerprint: "a1b2c3d4e5f60718".into(),
            status: Status::Firing,
            repeat: false,
            severity: "critical".into(),
            title: "API error rate above 5% <script>".into(),
            description: Some("Errors & timeouts on /api/records.\nSecond line.".into()),
            value: Some("0.073".into()),
            condition: Some("> 0.05".into()),
            starts_at: "2025-01-02T03:04:05Z".parse().unwrap(),
            ends_at: None,
            runbook_url: Some("https://runbooks.example/api-errors?a=1&b=2".into()),
            object: Some(ObjectRef {
                kind: "AlertRule".into(),
                namespace: "fieldbook".into(),
                name: "api-errors".into(),
            }),
            facts: vec![("Probe".into(), "http://fieldbook/metrics".into())],
            labels: BTreeMap::from([("alertname".into(), "api-errors".into())]),
            annotations: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lang;

    #[test]
    fn times_are_utc_and_jst() {
        let at: jiff::Timestamp = "2025-01-02T18:04:05Z".parse().unwrap();
        assert_eq!(human_time(Lang::En, at), "2025-01-02 18:04:05 UTC");
        assert_eq!(
            human_time(Lang::Ja, at),
            "2025-01-03 03:04:05 JST (2025-01-02 18:04:05 UTC)"
        );
    }

    #[test]
    fn tags_name_state_severity_and_reminder() {
        let mut n = sample::notification();
        assert_eq!(tag(Lang::En, &n), "[FIRING critical]");
        assert_eq!(tag(Lang::Ja, &n), "[発生中 重大]");
        n.repeat = true;
        assert_eq!(tag(Lang::En, &n), "[FIRING critical] (reminder)");
        assert_eq!(tag(Lang::Ja, &n), "[発生中 重大] (再通知)");
        n.status = Status::Resolved;
        n.severity = "warning".into();
        assert_eq!(tag(Lang::En, &n), "[RESOLVED warning]");
        assert_eq!(tag(Lang::Ja, &n), "[解決 警告]");
    }
}
