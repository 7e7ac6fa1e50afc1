//! Prometheus metrics of the controller, served on `/metrics`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub namespace: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub namespace: String,
    pub policy: String,
    pub component: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub namespace: String,
    pub policy: String,
    pub reason: &'static str,
}

/// Backup metrics, per policy.
pub struct BackupMetrics {
    pub last_success: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub duration: Family<PolicyLabels, Histogram>,
    pub bytes: Family<ComponentLabels, Counter>,
    pub objects_uploaded: Family<PolicyLabels, Counter>,
    pub objects_skipped: Family<PolicyLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub rpo_seconds: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub running: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestoreLabels {
    pub namespace: String,
    pub policy: String,
    pub mode: &'static str,
    pub result: &'static str,
}

/// Restore and drill metrics.
pub struct RestoreMetrics {
    pub restores: Family<RestoreLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub duration: Family<PolicyLabels, Histogram>,
    pub running: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub drill_success: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub drill_rto_seconds: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub drill_last_timestamp: Family<PolicyLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
}

impl RestoreMetrics {
    /// A restore of the policy ended: the running gauge one down (never below zero).
    pub fn ended(&self, labels: &PolicyLabels) {
        let running = self.running.get_or_create(labels);
        if running.get() > 0 {
            running.dec();
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub namespace: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertResultLabels {
    pub namespace: String,
    pub rule: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertFailureLabels {
    pub namespace: String,
    pub rule: String,
    pub reason: &'static str,
}

/// AlertRule metrics, per rule.
#[derive(Default)]
pub struct AlertMetrics {
    pub firing: Family<AlertLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub evaluations: Family<AlertResultLabels, Counter>,
    pub evaluation_failures: Family<AlertFailureLabels, Counter>,
    pub remediations: Family<AlertResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `email`, `slack`, `teams` or `webhook`.
    pub r#type: &'static str,
    /// `delivered` or the failure's reason (`connect_failed`, `auth_failed`, ...).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationTypeLabels {
    pub r#type: &'static str,
}

/// Notifications sent by any kind (AlertRule routes, later incidents and support), by
/// destination type: bounded labels, whatever the number of objects.
pub struct NotificationMetrics {
    pub sent: Family<NotificationLabels, Counter>,
    /// From the first attempt to the destination's acceptance, retries included.
    pub delivery_seconds: Family<NotificationTypeLabels, Histogram>,
}

impl Default for NotificationMetrics {
    fn default() -> Self {
        Self {
            sent: Family::default(),
            delivery_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            }),
        }
    }
}

/// All controller metrics, registered once.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub stalled: Family<ConditionLabels, Counter>,
    pub leader: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub lease_renewals: Counter<u64, AtomicU64>,
    pub backup: BackupMetrics,
    pub restore: RestoreMetrics,
    pub alert: AlertMetrics,
    pub notifications: NotificationMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tend");
        let reconciles = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciliations run, by kind",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed with a transient error, by kind and error",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation, by kind",
            reconcile_duration.clone(),
        );
        let stalled = Family::<ConditionLabels, Counter>::default();
        registry.register(
            "stalled_transitions",
            "Objects that became Stalled, by kind and reason",
            stalled.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        let lease_renewals = Counter::default();
        registry.register(
            "lease_renewals",
            "Successful leader lease renewals",
            lease_renewals.clone(),
        );
        let backup = BackupMetrics {
            last_success: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                ])
            }),
            bytes: Family::default(),
            objects_uploaded: Family::default(),
            objects_skipped: Family::default(),
            failures: Family::default(),
            rpo_seconds: Family::default(),
            running: Family::default(),
        };
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last successful backup of a policy finished (Unix time)",
            backup.last_success.clone(),
        );
        registry.register(
            "backup_duration_seconds",
            "Duration of backup runs, successful or not",
            backup.duration.clone(),
        );
        registry.register(
            "backup_bytes",
            "Bytes written to the repository by successful backups, by component",
            backup.bytes.clone(),
        );
        registry.register(
            "backup_objects_uploaded",
            "Objects (photos) stored by backups because they were new or changed",
            backup.objects_uploaded.clone(),
        );
        registry.register(
            "backup_objects_skipped",
            "Objects (photos) found unchanged and not stored again",
            backup.objects_skipped.clone(),
        );
        registry.register(
            "backup_failures",
            "Failed backup runs, by reason",
            backup.failures.clone(),
        );
        registry.register(
            "backup_rpo_seconds",
            "Age of the newest restore point of a policy",
            backup.rpo_seconds.clone(),
        );
        registry.register(
            "backup_running",
            "1 while a backup of the policy is running",
            backup.running.clone(),
        );
        let restore = RestoreMetrics {
            restores: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                ])
            }),
            running: Family::default(),
            drill_success: Family::default(),
            drill_rto_seconds: Family::default(),
            drill_last_timestamp: Family::default(),
        };
        registry.register(
            "restores",
            "Finished restores (RestoreRequests), by policy, mode and result",
            restore.restores.clone(),
        );
        registry.register(
            "restore_failures",
            "Failed restores (drills included), by policy and reason",
            restore.failures.clone(),
        );
        registry.register(
            "restore_duration_seconds",
            "Start to verified (or failed) of restores, by policy",
            restore.duration.clone(),
        );
        registry.register(
            "restore_running",
            "Restores of the policy running now",
            restore.running.clone(),
        );
        registry.register(
            "drill_success",
            "1 if the last restore drill of the policy passed, 0 if it failed",
            restore.drill_success.clone(),
        );
        registry.register(
            "drill_rto_seconds",
            "Measured recovery time of the last passed drill (start to verified)",
            restore.drill_rto_seconds.clone(),
        );
        registry.register(
            "drill_last_timestamp_seconds",
            "When the last restore drill of the policy finished (Unix time)",
            restore.drill_last_timestamp.clone(),
        );
        let alert = AlertMetrics::default();
        registry.register(
            "alert_firing",
            "1 while the AlertRule is Firing",
            alert.firing.clone(),
        );
        registry.register(
            "alert_evaluations",
            "AlertRule evaluations, by result (ok, error)",
            alert.evaluations.clone(),
        );
        registry.register(
            "alert_evaluation_failures",
            "AlertRule evaluations that could not read the signal, by reason",
            alert.evaluation_failures.clone(),
        );
        registry.register(
            "alert_remediations",
            "RestoreRequests an AlertRule's remediation created, by result (created, failed)",
            alert.remediations.clone(),
        );
        let notifications = NotificationMetrics::default();
        registry.register(
            "notifications",
            "Notifications sent, by destination type and result (delivered or the failure's reason)",
            notifications.sent.clone(),
        );
        registry.register(
            "notification_delivery_seconds",
            "Time from the first attempt to delivery (retries included), by destination type",
            notifications.delivery_seconds.clone(),
        );
        Self {
            registry,
            backup,
            restore,
            alert,
            notifications,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            stalled,
            leader,
            lease_renewals,
        }
    }
}

impl Metrics {
    /// Records one finished reconcile.
    pub fn observe_reconcile(&self, kind: &'static str, elapsed: Duration) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
