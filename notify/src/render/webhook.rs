//! The generic webhook body: exactly Alertmanager's webhook v4, so any receiver of Alertmanager
//! works, plus a `tend` object with tend's own fields (receivers ignore unknown fields).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::{Lang, Notification};

/// Alertmanager's zero time, its `endsAt` for an alert that has not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What Alertmanager would know about itself: its receiver's name and external URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookContext {
    pub receiver: String,
    pub external_url: String,
}

impl Default for WebhookContext {
    fn default() -> Self {
        WebhookContext {
            receiver: "tend".into(),
            external_url: String::new(),
        }
    }
}

/// The v4 body. Labels are the notification's, with `severity` added when missing;
/// annotations gain `summary`, `description` and `runbook_url` when missing.
pub fn render_webhook(lang: Lang, n: &Notification, ctx: &WebhookContext) -> Value {
    let mut labels = n.labels.clone();
    labels
        .entry("severity".into())
        .or_insert_with(|| n.severity.clone());
    let mut annotations = n.annotations.clone();
    annotations
        .entry("summary".into())
        .or_insert_with(|| n.title.clone());
    if let Some(d) = &n.description {
        annotations
            .entry("description".into())
            .or_insert_with(|| d.clone());
    }
    if let Some(r) = &n.runbook_url {
        annotations
            .entry("runbook_url".into())
            .or_insert_with(|| r.clone());
    }
    let group_labels: BTreeMap<&str, &String> = labels
        .get("alertname")
        .map(|a| ("alertname", a))
        .into_iter()
        .collect();
    let ends_at = match (n.status, n.ends_at) {
        (crate::Status::Resolved, Some(end)) => end.to_string(),
        _ => ZERO_TIME.to_string(),
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status.as_str(),
        "receiver": ctx.receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": ctx.external_url,
        "alerts": [{
            "status": n.status.as_str(),
            "labels": labels,
            "annotations": annotations,
            "startsAt": n.starts_at.to_string(),
            "endsAt": ends_at,
            "generatorURL": ctx.external_url,
            "fingerprint": n.fingerprint,
        }],
        "tend": {
            "source": n.source,
            "title": n.title,
            "description": n.description,
            "severity": n.severity,
            "value": n.value,
            "condition": n.condition,
            "repeat": n.repeat,
            "object": n.object,
            "kubectl": n.object.as_ref().map(|o| o.kubectl_describe()),
            "runbookUrl": n.runbook_url,
            "facts": n.facts.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
            "lang": lang.as_str(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::render::sample::notification;

    #[test]
    fn alertmanager_v4_body() {
        let n = notification();
        let v = render_webhook(Lang::En, &n, &WebhookContext::default());
        assert_eq!(v["version"], "4");
        assert_eq!(v["groupKey"], "fieldbook/AlertRule/api-errors");
        assert_eq!(v["truncatedAlerts"], 0);
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "tend");
        assert_eq!(v["groupLabels"], json!({"alertname": "api-errors"}));
        assert_eq!(v["commonLabels"]["severity"], "critical");
        assert_eq!(v["commonAnnotations"]["summary"], n.title);
        assert_eq!(v["externalURL"], "");
        let alert = &v["alerts"][0];
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["startsAt"], "2025-01-02T03:04:05Z");
        assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(alert["fingerprint"], "a1b2c3d4e5f60718");
        assert_eq!(alert["labels"]["alertname"], "api-errors");
        assert_eq!(
            alert["annotations"]["runbook_url"],
            "https://runbooks.example/api-errors?a=1&b=2"
        );
        assert_eq!(alert["generatorURL"], "");
        let tend = &v["tend"];
        assert_eq!(tend["source"], "AlertRule");
        assert_eq!(tend["value"], "0.073");
        assert_eq!(tend["condition"], "> 0.05");
        assert_eq!(tend["repeat"], false);
        assert_eq!(tend["lang"], "en");
        assert_eq!(
            tend["object"],
            json!({"kind": "AlertRule", "namespace": "fieldbook", "name": "api-errors"})
        );
        assert_eq!(
            tend["runbookUrl"],
            "https://runbooks.example/api-errors?a=1&b=2"
        );
    }

    #[test]
    fn resolved_alert_has_its_end() {
        let mut n = notification();
        n.status = Status::Resolved;
        n.ends_at = Some("2025-01-02T04:00:00Z".parse().unwrap());
        let v = render_webhook(Lang::Ja, &n, &WebhookContext::default());
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["alerts"][0]["endsAt"], "2025-01-02T04:00:00Z");
        assert_eq!(v["tend"]["lang"], "ja");
        // Labels the caller set win over the defaults.
        n.labels.insert("severity".into(), "page".into());
        let v = render_webhook(Lang::Ja, &n, &WebhookContext::default());
        assert_eq!(v["commonLabels"]["severity"], "page");
    }
}
