//! What the integration tests share: a notification with every field set, and a notifier whose
//! backoff is short enough for tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use tend_notify::{Notification, Notifier, NotifierConfig, ObjectRef, Status};

pub fn notification() -> Notification {
    Notification {
        source: "AlertRule".into(),
        group_key: "fieldbook/AlertRule/api-errors".into(),
        fingerprint: "a1b2c3d4e5f60718".into(),
        status: Status::Firing,
        repeat: false,
        severity: "critical".into(),
        title: "API error rate above 5%".into(),
        description: Some("Errors & timeouts on <b>/api/records</b>.".into()),
        value: Some("0.073".into()),
        condition: Some("> 0.05".into()),
        starts_at: "2025-01-02T03:04:05Z".parse().unwrap(),
        ends_at: None,
        runbook_url: Some("https://runbooks.example/api-errors".into()),
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

/// Production defaults but quick retries: 50 ms backoff base, 3 s per attempt.
pub fn fast_config() -> NotifierConfig {
    NotifierConfig {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        ..NotifierConfig::default()
    }
}

pub fn notifier(config: NotifierConfig) -> Notifier {
    Notifier::new(config).expect("a notifier")
}
