//! `EscalationPolicy`: who is notified when an incident is not acknowledged in time — L1, then
//! L2, then L3 (seed §2 escalation).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References, route_references};
use crate::types::{Duration, NotificationRoute, duration_rule, min_duration};

/// Ordered escalation levels with acknowledgement timeouts.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "EscalationPolicy",
    namespaced,
    status = "EscalationPolicyStatus",
    shortname = "escpol",
    category = "tend",
    doc = "Ordered escalation levels (L1, L2, L3...): each notifies its targets and waits for an acknowledgement before escalating.",
    printcolumn(name = "Levels", type_ = "integer", json_path = ".status.levels"),
    printcolumn(name = "Repeat", type_ = "integer", json_path = ".spec.repeat"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EscalationPolicySpec {
    /// Levels in order; an unacknowledged incident moves to the next level when the current
    /// level's `ackTimeout` passes.
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub levels: Vec<EscalationLevel>,
    /// How many times to run through all levels again after the last one times out.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub repeat: u32,
}

/// One escalation level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscalationLevel {
    /// Level name, e.g. `L1` (first responders), `L2` (engineers), `L3` (management).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Who is notified at this level.
    #[schemars(length(min = 1, max = 20))]
    pub targets: Vec<NotificationRoute>,
    /// How long to wait for an acknowledgement before escalating, e.g. `15m`.
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub ack_timeout: Duration,
}

/// Observed state of an EscalationPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscalationPolicyStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Number of levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<u32>,
    /// Longest time from first notification to the last level, e.g. `1h15m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_escalation_time: Option<String>,
}

impl References for EscalationPolicySpec {
    fn references(&self) -> Vec<Reference> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(i, level)| {
                route_references(&format!("spec.levels[{i}].targets"), &level.targets)
            })
            .collect()
    }
}
