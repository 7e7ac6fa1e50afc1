//! What a notification says, independent of where it goes: the alert's identity, state,
//! severity and the facts a reader needs to act on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The language a notification is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    #[default]
    En,
}

impl Lang {
    /// `"ja"` or `"en"`, as in the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// Whether the alert is firing or has resolved (Alertmanager's `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    /// `"firing"` or `"resolved"`, as in the serde form and Alertmanager's webhook.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// The Kubernetes object a reader should look at (only its coordinates: this crate knows no
/// Kubernetes types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// `kubectl describe <kind-lowercase>/<name> -n <namespace>`.
    pub fn kubectl_describe(&self) -> String {
        format!(
            "kubectl describe {}/{} -n {}",
            self.kind.to_lowercase(),
            self.name,
            self.namespace
        )
    }
}

/// One alert notification, already decided on: the renderers only present it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// What raised it: "AlertRule", "IncidentRecord", "SupportChannel" … (free text).
    pub source: String,
    /// Stable per alert, e.g. "fieldbook/AlertRule/api-errors" (Alertmanager `groupKey`).
    pub group_key: String,
    /// Stable id of this alert, hex (Alertmanager `fingerprint`).
    pub fingerprint: String,
    pub status: Status,
    /// A reminder while the alert is still firing.
    pub repeat: bool,
    /// "critical" | "warning" | "info" (other words are shown as they are).
    pub severity: String,
    /// One line: the rule's summary.
    pub title: String,
    pub description: Option<String>,
    /// The observed value as text, e.g. "0.073".
    pub value: Option<String>,
    /// The threshold it was compared with, e.g. "> 0.05".
    pub condition: Option<String>,
    pub starts_at: jiff::Timestamp,
    pub ends_at: Option<jiff::Timestamp>,
    pub runbook_url: Option<String>,
    pub object: Option<ObjectRef>,
    /// Extra label/value pairs, already in the notification's language.
    pub facts: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}
