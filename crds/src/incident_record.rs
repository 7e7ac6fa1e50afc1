//! `IncidentRecord`: one incident from detection to closed postmortem — lifecycle, escalation,
//! public notice and timeline (seed §2). It cannot be closed without a complete postmortem.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References};
use crate::types::{LocalObjectRef, NoticeImpact, Severity};

/// An incident: opened by an AlertRule or by hand, escalated until acknowledged, resolved, and
/// closed only with a postmortem.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "IncidentRecord",
    namespaced,
    status = "IncidentRecordStatus",
    shortname = "inc",
    category = "tend",
    doc = "An incident from detection to a closed postmortem: escalation until acknowledged, a public notice for the status page, resolution, and a mandatory postmortem.",
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Level",
        type_ = "string",
        json_path = ".status.escalation.level"
    ),
    printcolumn(
        name = "Acked By",
        type_ = "string",
        json_path = ".spec.acknowledgedBy"
    ),
    printcolumn(
        name = "Title",
        type_ = "string",
        json_path = ".spec.title",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "self.state != 'closed' || (has(self.postmortem) && size(self.postmortem.summary) > 0 && size(self.postmortem.impact) > 0 && size(self.postmortem.rootCause) > 0 && size(self.postmortem.actionItems) > 0 && size(self.postmortem.lessons) > 0)"
).message("an incident cannot be closed without a complete postmortem (summary, impact, rootCause, actionItems, lessons)")
    .field_path(".postmortem"))]
#[x_kube(validation = kube::core::Rule::new(
    "!(self.state in ['resolved', 'closed']) || has(self.resolution)"
).message("a resolved or closed incident needs a resolution").field_path(".resolution"))]
#[x_kube(validation = kube::core::Rule::new("self.state == 'open' || has(self.acknowledgedBy)")
    .message("acknowledgedBy is required once the incident is acknowledged, resolved or closed")
    .field_path(".acknowledgedBy"))]
pub struct IncidentRecordSpec {
    /// Short title, e.g. `Photo uploads failing`.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// Severity.
    #[serde(default)]
    pub severity: Severity,
    /// What is happening, for responders.
    #[serde(default)]
    #[schemars(length(max = 8000))]
    pub summary: String,
    /// Where the incident came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<IncidentOrigin>,
    /// Escalation policy; without one, only the origin's routes are notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy_ref: Option<LocalObjectRef>,
    /// Desired lifecycle state, moved forward by people: `open` → `acknowledged` → `resolved`
    /// → `closed`.
    #[serde(default)]
    pub state: IncidentState,
    /// Who acknowledged the incident; setting it stops escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub acknowledged_by: Option<String>,
    /// Notice for the public status page, with its updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_notice: Option<IncidentNotice>,
    /// How the incident was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The postmortem; required (complete) to close the incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmortem: Option<Postmortem>,
}

/// Where an incident came from: exactly one of `alertRuleRef` or `manual`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.alertRuleRef) != has(self.manual)")
    .message("exactly one of alertRuleRef or manual must be set"))]
pub struct IncidentOrigin {
    /// The AlertRule that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_rule_ref: Option<LocalObjectRef>,
    /// Reported by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualOrigin>,
}

/// A manually reported incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualOrigin {
    /// Who reported it (name or e-mail).
    #[schemars(length(min = 1, max = 200))]
    pub reported_by: String,
}

/// Incident lifecycle states.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum IncidentState {
    #[default]
    Open,
    Acknowledged,
    Resolved,
    Closed,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// The public notice plus its dated updates (shown newest first on the status page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentNotice {
    /// Short title users see, e.g. `Photo uploads are failing`.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// What users should know, in plain words.
    #[serde(default)]
    #[schemars(length(max = 4000))]
    pub message: String,
    /// Impact shown on the status page.
    #[serde(default)]
    pub impact: NoticeImpact,
    /// Affected parts of the service (e.g. `photos`, `sign-in`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub components: Vec<String>,
    /// Updates posted to the status page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub updates: Vec<NoticeUpdate>,
}

/// One status page update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoticeUpdate {
    /// When it was posted.
    pub time: Time,
    /// `investigating`, `identified`, `monitoring` or `resolved`.
    pub status: NoticeStatus,
    /// Message for users.
    #[schemars(length(min = 1, max = 4000))]
    pub message: String,
}

/// Status page update states (Statuspage's vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NoticeStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// How the incident was resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    /// What fixed it.
    #[schemars(length(min = 1, max = 8000))]
    pub summary: String,
    /// Who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// The postmortem (blameless): all fields must be filled to close the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Postmortem {
    /// What happened, in a paragraph.
    #[serde(default)]
    #[schemars(length(max = 8000))]
    pub summary: String,
    /// Who and what was affected, for how long.
    #[serde(default)]
    #[schemars(length(max = 8000))]
    pub impact: String,
    /// Why it happened.
    #[serde(default)]
    #[schemars(length(max = 8000))]
    pub root_cause: String,
    /// Follow-up work.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub action_items: Vec<ActionItem>,
    /// What we learned.
    #[serde(default)]
    #[schemars(length(max = 8000))]
    pub lessons: String,
}

/// A follow-up from a postmortem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionItem {
    /// What to do.
    #[schemars(length(min = 1, max = 1000))]
    pub description: String,
    /// Who owns it.
    #[schemars(length(min = 1, max = 200))]
    pub owner: String,
    /// Due date (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub due: Option<String>,
    /// Done yet.
    #[serde(default)]
    pub done: bool,
}

/// Observed state of an IncidentRecord.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRecordStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, PostmortemComplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The state tend has acted on: `open`, `acknowledged`, `resolved`, `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<IncidentState>,
    /// When the incident opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Time>,
    /// When it was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Time>,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Time>,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Time>,
    /// Escalation progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationState>,
    /// Notifications sent so far.
    #[serde(default)]
    pub notifications_sent: u32,
    /// What happened, oldest first; append-only and bounded (oldest entries summarised).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub timeline: Vec<TimelineEntry>,
}

/// Where an incident is in its escalation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscalationState {
    /// Current level name, e.g. `L2`.
    pub level: String,
    /// Which pass through the levels (0 is the first).
    #[serde(default)]
    pub round: u32,
    /// When the next level is notified unless acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_escalation_time: Option<Time>,
}

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// When.
    pub time: Time,
    /// What kind of entry: `Opened`, `Notified`, `Escalated`, `Acknowledged`, `NoticePublished`,
    /// `Resolved`, `Closed`, `Note`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Detail.
    pub message: String,
}

impl References for IncidentRecordSpec {
    fn references(&self) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(policy) = &self.escalation_policy_ref {
            refs.push(Reference::object(
                "spec.escalationPolicyRef",
                "EscalationPolicy",
                &policy.name,
            ));
        }
        if let Some(rule) = self.origin.as_ref().and_then(|o| o.alert_rule_ref.as_ref()) {
            refs.push(Reference::object(
                "spec.origin.alertRuleRef",
                "AlertRule",
                &rule.name,
            ));
        }
        refs
    }
}

/// Reasons of the `PostmortemComplete` condition (API: alerts and `kubectl wait` match on them).
pub mod reasons {
    /// Every section the postmortem needs is written.
    pub const COMPLETE: &str = "Complete";
    /// Sections are missing; the message names them.
    pub const INCOMPLETE: &str = "Incomplete";
}
