//! `LogPolicy`: retention, archiving, access and periodic audits of an app's four log
//! categories — access, operation, error, auth — kept 90 days by default (seed §3).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References, route_references};
use crate::types::{
    AppRef, CronSchedule, Duration, NotificationRoute, Severity, StorageLocation, TimeZone,
    duration_rule, min_duration,
};

/// Log retention, archive, access and audit rules for an app.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "LogPolicy",
    namespaced,
    status = "LogPolicyStatus",
    shortname = "lp",
    category = "tend",
    doc = "Retention (90 days by default), archiving, access and periodic audits of an app's access, operation, error and auth logs.",
    printcolumn(
        name = "Access Retention",
        type_ = "string",
        json_path = ".spec.categories.access.retention"
    ),
    printcolumn(
        name = "Last Prune",
        type_ = "date",
        json_path = ".status.lastPruneTime"
    ),
    printcolumn(
        name = "Last Audit",
        type_ = "date",
        json_path = ".status.lastAuditTime"
    ),
    printcolumn(
        name = "Findings",
        type_ = "integer",
        json_path = ".status.openFindings"
    ),
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
#[x_kube(validation = kube::core::Rule::new(
    "has(self.archive) || !(self.categories.access.archive || self.categories.operation.archive || self.categories.error.archive || self.categories.auth.archive)"
).message("spec.archive is required when any category archives expired entries").field_path(".archive"))]
pub struct LogPolicySpec {
    /// The app whose logs are governed (through its ops API).
    pub app: AppRef,
    /// When to prune (and archive) expired entries. Defaults to `0 3 * * *`.
    #[serde(default = "default_prune_schedule")]
    pub schedule: CronSchedule,
    /// Time zone for the schedules and the audit's office hours. Defaults to `UTC`.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Retention per category.
    #[serde(default)]
    pub categories: LogCategories,
    /// Where expired entries are archived before deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<StorageLocation>,
    /// Who may read logs in the app.
    #[serde(default)]
    pub access: LogAccess,
    /// Periodic audits of the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
}

fn default_prune_schedule() -> CronSchedule {
    CronSchedule("0 3 * * *".into())
}

/// The four log categories.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogCategories {
    /// Every HTTP request.
    #[serde(default)]
    pub access: CategoryRetention,
    /// Every create/update/delete by users and staff.
    #[serde(default)]
    pub operation: CategoryRetention,
    /// Errors.
    #[serde(default)]
    pub error: CategoryRetention,
    /// Sign-ins, sign-outs, failures and role changes.
    #[serde(default)]
    pub auth: CategoryRetention,
}

/// Retention of one category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRetention {
    /// Keep entries this long. Defaults to `2160h` (90 days).
    #[serde(default = "default_retention")]
    #[x_kube(validation = duration_rule(min_duration::HOUR))]
    pub retention: Duration,
    /// Archive entries before deleting them. Defaults to true.
    #[serde(default = "default_true")]
    pub archive: bool,
}

impl Default for CategoryRetention {
    fn default() -> Self {
        Self {
            retention: default_retention(),
            archive: default_true(),
        }
    }
}

fn default_retention() -> Duration {
    Duration("2160h".into())
}

fn default_true() -> bool {
    true
}

/// Who may read logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogAccess {
    /// App roles allowed to read logs. Defaults to `[admin]`; reading is itself logged.
    #[serde(default = "default_read_roles")]
    #[schemars(length(min = 1, max = 3))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub read_roles: Vec<AppRole>,
}

impl Default for LogAccess {
    fn default() -> Self {
        Self {
            read_roles: default_read_roles(),
        }
    }
}

fn default_read_roles() -> Vec<AppRole> {
    vec![AppRole::Admin]
}

/// fieldbook roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AppRole {
    Admin,
    Operator,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Periodic audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// When to audit. Defaults to hourly.
    #[serde(default = "default_audit_schedule")]
    pub schedule: CronSchedule,
    /// The rules.
    #[schemars(length(min = 1, max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub rules: Vec<AuditRule>,
}

fn default_audit_schedule() -> CronSchedule {
    CronSchedule("@hourly".into())
}

/// One audit rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type != 'offHoursAdminAccess' || has(self.officeHours)")
    .message("offHoursAdminAccess needs officeHours").field_path(".officeHours"))]
pub struct AuditRule {
    /// Rule name, shown in findings.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `authFailureBurst` (at least `threshold` failed sign-ins for one account or address
    /// within `window`), `privilegedAction` (any role change, user deletion or settings change),
    /// or `offHoursAdminAccess` (admin sign-ins outside `officeHours`).
    #[serde(rename = "type")]
    pub type_: AuditRuleType,
    /// For `authFailureBurst`: how many failures. Defaults to 10.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 100000))]
    pub threshold: u32,
    /// For `authFailureBurst`: the window. Defaults to `10m`.
    #[serde(default = "default_window")]
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub window: Duration,
    /// For `offHoursAdminAccess`: the office hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_hours: Option<OfficeHours>,
    /// Severity of findings.
    #[serde(default)]
    pub severity: Severity,
    /// Where findings are sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub routes: Vec<NotificationRoute>,
}

fn default_threshold() -> u32 {
    10
}

fn default_window() -> Duration {
    Duration("10m".into())
}

/// Audit rule types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuditRuleType {
    AuthFailureBurst,
    PrivilegedAction,
    OffHoursAdminAccess,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Office hours, in the policy's time zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.start < self.end")
    .message("start must be before end (HH:MM, same day)"))]
pub struct OfficeHours {
    /// Start, `HH:MM`.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// End, `HH:MM`.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub end: String,
    /// Working days, `Mon`..`Sun`. Defaults to Monday to Friday.
    #[serde(default = "default_days")]
    #[schemars(length(min = 1, max = 7))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub days: Vec<Weekday>,
}

fn default_days() -> Vec<Weekday> {
    use Weekday::*;
    vec![Mon, Tue, Wed, Thu, Fri]
}

/// Days of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Observed state of a LogPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPolicyStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When expired entries were last pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune_time: Option<Time>,
    /// Per-category results of the last prune.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub categories: Vec<CategoryStatus>,
    /// When the logs were last audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit_time: Option<Time>,
    /// Findings of recent audits, newest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub findings: Vec<AuditFinding>,
    /// Findings of the last audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_findings: Option<u32>,
}

/// One category after the last prune.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryStatus {
    /// `access`, `operation`, `error` or `auth`.
    pub category: String,
    /// Entries deleted.
    pub deleted: u64,
    /// Entries archived.
    pub archived: u64,
    /// Timestamp of the oldest entry still kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_retained: Option<Time>,
}

/// One audit finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditFinding {
    /// The rule that matched.
    pub rule: String,
    /// When it was found.
    pub time: Time,
    /// Severity.
    pub severity: Severity,
    /// What was found (never secrets).
    pub message: String,
    /// How many log entries matched.
    #[serde(default)]
    pub count: u64,
}

impl References for LogPolicySpec {
    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference::secret_key(
            "spec.app.tokenSecretRef",
            &self.app.token_secret_ref,
        )];
        if let Some(archive) = &self.archive {
            refs.extend(archive.references("spec.archive"));
        }
        if let Some(audit) = &self.audit {
            for (i, rule) in audit.rules.iter().enumerate() {
                refs.extend(route_references(
                    &format!("spec.audit.rules[{i}].routes"),
                    &rule.routes,
                ));
            }
        }
        refs
    }
}
