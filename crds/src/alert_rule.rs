//! `AlertRule`: a check of one signal against a threshold, with notification routes, incident
//! creation and optional automated remediation (seed §2 detection, §4 monitoring).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References, route_references};
use crate::restore_request::RestoreRequestSpec;
use crate::types::{
    CronSchedule, Duration, LocalObjectRef, NotificationRoute, PublicNotice, SecretRef, Severity,
    TimeZone, duration_rule, min_duration,
};

/// Evaluate a signal on an interval; notify, open an incident and remediate when it breaches.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "AlertRule",
    namespaced,
    status = "AlertRuleStatus",
    shortname = "arule",
    category = "tend",
    doc = "A monitored signal (HTTP probe, metrics scrape, Prometheus query or PostgreSQL probe) with a threshold, notification routes, incident creation and optional remediation.",
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Value", type_ = "string", json_path = ".status.lastValue"),
    printcolumn(name = "Since", type_ = "date", json_path = ".status.activeSince"),
    printcolumn(
        name = "Incident",
        type_ = "string",
        json_path = ".status.currentIncident"
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
pub struct AlertRuleSpec {
    /// The signal to evaluate.
    pub source: AlertSource,
    /// How often to evaluate. Defaults to `30s`.
    #[serde(default = "default_interval")]
    #[x_kube(validation = duration_rule(min_duration::SECOND))]
    pub interval: Duration,
    /// When the rule fires: `value <operator> threshold`.
    pub condition: Threshold,
    /// How long the condition must hold before the rule fires (Pending until then). Defaults
    /// to `0s`.
    #[serde(default = "default_for", rename = "for")]
    #[x_kube(validation = duration_rule(min_duration::ZERO))]
    pub for_: Duration,
    /// Severity of the alert and of incidents it opens. Defaults to `warning`.
    #[serde(default)]
    pub severity: Severity,
    /// One-line summary used in notifications, e.g. `API error rate above 5%`.
    #[schemars(length(min = 1, max = 200))]
    pub summary: String,
    /// Longer description for responders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4000))]
    pub description: Option<String>,
    /// Link to the runbook responders should follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub runbook_url: Option<String>,
    /// Where notifications go when the rule fires and resolves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub routes: Vec<NotificationRoute>,
    /// Re-send notifications this often while firing. Defaults to `4h`.
    #[serde(default = "default_repeat_interval")]
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub repeat_interval: Duration,
    /// Windows in which the rule is still evaluated and its state shown, but nothing is sent
    /// (maintenance). A firing that outlasts its silence is sent when the silence ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub silences: Vec<Silence>,
    /// Open an IncidentRecord when the rule fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentTemplate>,
    /// Automated remediation when the rule fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

fn default_interval() -> Duration {
    Duration("30s".into())
}

fn default_for() -> Duration {
    Duration("0s".into())
}

fn default_repeat_interval() -> Duration {
    Duration("4h".into())
}

/// A time in which nothing is sent: exactly one of a fixed window (`from` + `until`), a
/// recurring one (`schedule` + `duration`, in `timeZone`), or `duringInPlaceRestoresOf` (while an
/// in-place RestoreRequest of that BackupPolicy runs, when the app is in maintenance mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.from) || has(self.until) ? 1 : 0) + (has(self.schedule) || has(self.duration) ? 1 : 0) + (has(self.duringInPlaceRestoresOf) ? 1 : 0) == 1"
).message("set exactly one of from+until, schedule+duration or duringInPlaceRestoresOf"))]
#[x_kube(validation = kube::core::Rule::new("has(self.from) == has(self.until)")
    .message("from and until go together"))]
#[x_kube(validation = kube::core::Rule::new("has(self.schedule) == has(self.duration)")
    .message("schedule and duration go together"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.from) || !has(self.until) || self.from < self.until"
).message("until must be after from").field_path(".until"))]
pub struct Silence {
    /// A name for this silence, shown in status (e.g. `sunday-maintenance`).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Start of a fixed window (RFC 3339, e.g. `2027-01-10T01:00:00+09:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Time>,
    /// End of a fixed window (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// Start of a recurring window: a cron expression read in `timeZone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// Length of a recurring window, e.g. `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub duration: Option<Duration>,
    /// IANA time zone `schedule` is read in. Defaults to `UTC`.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Silent while an in-place RestoreRequest of this BackupPolicy is not finished (the app is
    /// in maintenance mode then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during_in_place_restores_of: Option<LocalObjectRef>,
    /// Why, for the people reading status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub comment: Option<String>,
}

/// The signal: exactly one of `http`, `metrics`, `prometheus` or `postgres`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.http) ? 1 : 0) + (has(self.metrics) ? 1 : 0) + (has(self.prometheus) ? 1 : 0) + (has(self.postgres) ? 1 : 0) == 1"
).message("exactly one of http, metrics, prometheus or postgres must be set"))]
pub struct AlertSource {
    /// Probe an HTTP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// Scrape a Prometheus-format endpoint and aggregate a metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsScrape>,
    /// Run a PromQL query against a Prometheus server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusQuery>,
    /// Probe a PostgreSQL database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresProbe>,
}

/// An HTTP probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// URL to request.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// Request method. Defaults to `GET`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Give up after this long (counts as a failure). Defaults to `10s`.
    #[serde(default = "default_probe_timeout")]
    #[x_kube(validation = duration_rule(min_duration::PROBE_TIMEOUT))]
    pub timeout: Duration,
    /// Status codes that count as success. Defaults to any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub expect_status: Vec<u16>,
    /// The value compared to the threshold: `up` (1 success, 0 failure), `latencySeconds`, or
    /// `statusCode`.
    #[serde(default)]
    pub measure: HttpMeasure,
}

fn default_probe_timeout() -> Duration {
    Duration("10s".into())
}

/// HTTP probe methods.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum HttpMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// What an HTTP probe measures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum HttpMeasure {
    #[default]
    Up,
    LatencySeconds,
    StatusCode,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Scrape a Prometheus text-format endpoint (e.g. the app's `/metrics` or node_exporter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "!(self.aggregation in ['rate', 'increase', 'errorRatio']) || has(self.window)"
).message("rate, increase and errorRatio need a window").field_path(".window"))]
#[x_kube(validation = kube::core::Rule::new(
    "self.aggregation != 'errorRatio' || has(self.errorSelector)"
).message("errorRatio needs errorSelector (the labels of the error series)").field_path(".errorSelector"))]
pub struct MetricsScrape {
    /// URL of the metrics endpoint.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// Metric family name, e.g. `http_requests_total` or `node_cpu_seconds_total`.
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"))]
    pub metric: String,
    /// Only series whose labels equal these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// How series are combined: `sum`, `avg`, `min`, `max`, `count`, `rate` (per second over
    /// `window`), `increase` (over `window`), `errorRatio` (rate of the `errorSelector` series
    /// divided by the rate of all selected series), or `quantile` (from a histogram).
    #[serde(default)]
    pub aggregation: Aggregation,
    /// Time window for rate, increase, errorRatio and quantile (tend keeps the samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule(min_duration::SECOND))]
    pub window: Option<Duration>,
    /// For `errorRatio`: extra labels that select the error series, e.g. `{status: "5xx"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_selector: Option<BTreeMap<String, String>>,
    /// For `quantile`: which quantile of a histogram metric, e.g. 0.99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub quantile: Option<f64>,
}

/// Aggregations of scraped series.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Aggregation {
    #[default]
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Rate,
    Increase,
    ErrorRatio,
    Quantile,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// A PromQL instant query: a scalar or a one-sample vector is the value, an empty vector is "no
/// data" (the state stays), several samples or a range are an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusQuery {
    /// Prometheus server base URL, e.g. `http://prometheus.monitoring.svc:9090`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// PromQL expression returning a scalar or a single-sample vector.
    #[schemars(length(min = 1, max = 4000))]
    pub query: String,
}

/// A PostgreSQL probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresProbe {
    /// Secret with the libpq keys `host`, `port`, `dbname`, `user`, `password` (and optionally
    /// `sslmode`: `disable`, `allow` or `prefer`; tend connects without TLS).
    pub connection_secret_ref: SecretRef,
    /// Query to run. With `measure: value` it must return one numeric cell. Defaults to
    /// `SELECT 1`.
    #[serde(default = "default_pg_query")]
    #[schemars(length(min = 1, max = 4000))]
    pub query: String,
    /// `latencySeconds` (time to connect and run the query), `up`, or `value` (the result).
    #[serde(default)]
    pub measure: PostgresMeasure,
    /// Give up after this long (counts as down). Defaults to `10s`.
    #[serde(default = "default_probe_timeout")]
    #[x_kube(validation = duration_rule(min_duration::PROBE_TIMEOUT))]
    pub timeout: Duration,
}

fn default_pg_query() -> String {
    "SELECT 1".into()
}

/// What a PostgreSQL probe measures.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum PostgresMeasure {
    #[default]
    LatencySeconds,
    Up,
    Value,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// `value <operator> threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Threshold {
    /// Comparison: `>`, `>=`, `<`, `<=`, `==`, `!=`.
    pub operator: Operator,
    /// The threshold value.
    pub threshold: f64,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Operator {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Incident creation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentTemplate {
    /// Escalation policy of the incidents this rule opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy_ref: Option<LocalObjectRef>,
    /// Publish a notice on the status page while the incident is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_notice: Option<PublicNotice>,
}

/// Automated remediation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    /// Create a RestoreRequest from this template when the rule fires (once per firing).
    /// `inPlace` restores still require `confirm: true` in the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreRequestSpec>,
}

/// Observed state of an AlertRule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// `Inactive`, `Pending` (condition true, `for` not yet elapsed) or `Firing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlertState>,
    /// When the rule was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
    /// The value of the last evaluation, as text (e.g. `0.073`), or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<String>,
    /// When the current Pending or Firing state began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,
    /// When a notification was last delivered on any route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notification_time: Option<Time>,
    /// The last delivery on each route of `spec.routes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub routes: Vec<RouteStatus>,
    /// The silence in effect at the last evaluation, if any (nothing is sent while it lasts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// The IncidentRecord opened by the current firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_incident: Option<String>,
    /// The RestoreRequest created by the current firing's remediation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_remediation: Option<String>,
}

/// The last delivery on one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The route's name in `spec.routes`.
    pub name: String,
    /// `email`, `slack`, `teams` or `webhook`.
    #[serde(default)]
    pub r#type: String,
    /// The last notification delivered: `firing <since>`, `repeat <since>` or `resolved <since>`
    /// (since = when the firing's condition began). tend sends each transition once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_time: Option<Time>,
    /// When tend last tried to send on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    /// `Delivered` or a failure reason (`ConnectFailed`, `AuthFailed`, `Rejected`, `Timeout`,
    /// `RateLimited`, `ServerError`, `InvalidDestination`, `SecretMissing`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// What went wrong on the last attempt (never a secret), empty after a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Attempts the last send took (retries included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// Alert states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl References for AlertRuleSpec {
    fn references(&self) -> Vec<Reference> {
        let mut refs = route_references("spec.routes", &self.routes);
        if let Some(pg) = &self.source.postgres {
            refs.push(Reference::secret(
                "spec.source.postgres.connectionSecretRef",
                &pg.connection_secret_ref,
                &["host", "port", "dbname", "user", "password"],
            ));
        }
        if let Some(policy) = self
            .incident
            .as_ref()
            .and_then(|i| i.escalation_policy_ref.as_ref())
        {
            refs.push(Reference::object(
                "spec.incident.escalationPolicyRef",
                "EscalationPolicy",
                &policy.name,
            ));
        }
        for (i, silence) in self.silences.iter().enumerate() {
            if let Some(policy) = &silence.during_in_place_restores_of {
                refs.push(Reference::object(
                    &format!("spec.silences[{i}].duringInPlaceRestoresOf"),
                    "BackupPolicy",
                    &policy.name,
                ));
            }
        }
        if let Some(restore) = self.remediation.as_ref().and_then(|r| r.restore.as_ref()) {
            refs.push(Reference::object(
                "spec.remediation.restore.policyRef",
                "BackupPolicy",
                &restore.policy_ref.name,
            ));
        }
        refs
    }
}

/// Reasons of AlertRule conditions and Events (API: alerts and `kubectl wait` match on them).
pub mod reasons {
    /// Ready=True: the rule is evaluated on its interval.
    pub const EVALUATING: &str = "Evaluating";
    pub const PENDING: &str = "AlertPending";
    pub const FIRING: &str = "AlertFiring";
    pub const RESOLVED: &str = "AlertResolved";
    pub const EVALUATION_FAILED: &str = "EvaluationFailed";
    pub const REMEDIATION_STARTED: &str = "RemediationStarted";
    pub const REMEDIATION_FAILED: &str = "RemediationFailed";
    /// Event: a notification was delivered on a route.
    pub const NOTIFIED: &str = "Notified";
    /// Ready=False and Event: a route could not be delivered to (the message names it).
    pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
    /// Event: a silence began or ended.
    pub const SILENCED: &str = "Silenced";
    pub const SILENCE_ENDED: &str = "SilenceEnded";
    /// `status.routes[].lastResult` of a delivery.
    pub const DELIVERED: &str = "Delivered";
}
