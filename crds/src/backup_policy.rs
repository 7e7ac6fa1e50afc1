//! `BackupPolicy`: what to back up, where to, how often, how long to keep it, the RPO/RTO
//! objectives, and the restore drills that prove the backups work (seed §1).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References};
use crate::restore_request::{ComponentResult, RestoreCheck, ScratchTarget};
use crate::types::{
    AppRef, CronSchedule, Duration, SecretKeyRef, SecretRef, StorageLocation, TimeZone,
    duration_rule, min_duration,
};

/// Scheduled, verifiable backups of an application's database, objects (photos) and config.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "BackupPolicy",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bp",
    category = "tend",
    doc = "Scheduled, encrypted, verifiable backups of an application's database, objects and config, with retention, RPO/RTO objectives and restore drills.",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Last Backup",
        type_ = "date",
        json_path = ".status.lastBackup.completionTime"
    ),
    printcolumn(
        name = "Last Result",
        type_ = "string",
        json_path = ".status.lastBackup.result"
    ),
    printcolumn(name = "RPO", type_ = "string", json_path = ".status.currentRpo"),
    printcolumn(
        name = "Last Drill",
        type_ = "string",
        json_path = ".status.lastDrill.result"
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
    "!has(self.targets.database) || !has(self.targets.database.sqlite) || has(self.app)"
).message("spec.app is required when the database target is sqlite (the snapshot comes from the app's ops API)"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.targets.config) || !self.targets.config.appSettings || has(self.app)"
).message("spec.app is required when targets.config.appSettings is true"))]
pub struct BackupPolicySpec {
    /// When to back up: a cron expression (`0 2 * * *`) or a macro (`@daily`), evaluated in
    /// `timeZone`.
    pub schedule: CronSchedule,
    /// IANA time zone the schedule is read in. Defaults to `UTC`.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Pause scheduled backups. On-demand backups (annotation `tend.dev/backup-now`) still run.
    #[serde(default)]
    pub suspend: bool,
    /// A scheduled run missed by less than this (controller down, leader change) still runs
    /// once; older missed runs are skipped and reported. Defaults to `1h`.
    #[serde(default = "default_starting_deadline")]
    #[x_kube(validation = duration_rule(min_duration::SECOND))]
    pub starting_deadline: Duration,
    /// The application's ops API; required for SQLite snapshots and app settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    /// What to back up.
    pub targets: BackupTargets,
    /// Where backups are stored.
    pub repository: StorageLocation,
    /// Encryption of everything written to the repository (age).
    pub encryption: Encryption,
    /// How many backups to keep. Defaults to 7 daily generations.
    #[serde(default)]
    pub retention: Retention,
    /// Recovery objectives the status is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Objectives>,
    /// Scheduled restore drills that prove the newest backup restores, and measure the RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,
}

fn default_starting_deadline() -> Duration {
    Duration("1h".into())
}

/// The parts of the application a backup covers; at least one must be set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.database) || has(self.objects) || has(self.config)")
    .message("at least one of database, objects or config must be set"))]
pub struct BackupTargets {
    /// The application database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseTarget>,
    /// Object storage (photos): backed up incrementally, each object stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<StorageLocation>,
    /// Kubernetes configuration and application settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigTarget>,
}

/// A database to dump: exactly one of `postgres` or `sqlite`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.postgres) != has(self.sqlite)")
    .message("exactly one of postgres or sqlite must be set"))]
pub struct DatabaseTarget {
    /// A PostgreSQL database, dumped with `pg_dump` in custom format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresDatabase>,
    /// A SQLite database, snapshotted consistently through the app's ops API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<SqliteDatabase>,
}

/// PostgreSQL connection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresDatabase {
    /// Secret with the keys `host`, `port`, `dbname`, `user` and `password` (libpq names).
    pub connection_secret_ref: SecretRef,
}

/// SQLite snapshot settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqliteDatabase {
    /// Name the snapshot is stored under in the backup (informational). Defaults to `app`.
    #[serde(default = "default_sqlite_name")]
    pub name: String,
}

fn default_sqlite_name() -> String {
    "app".into()
}

/// Kubernetes objects and application settings to include.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigTarget {
    /// ConfigMaps in this namespace matching the selector are archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_selector: Option<LabelSelector>,
    /// Secrets in this namespace matching the selector are archived (always encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_selector: Option<LabelSelector>,
    /// Include the application's own settings, exported through its ops API.
    #[serde(default)]
    pub app_settings: bool,
}

/// age encryption of backups. Recipients encrypt; the identity is needed only to restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// Secret key holding one or more age recipients (`age1...`), one per line.
    pub recipients_secret_ref: SecretKeyRef,
    /// Secret key holding the age identity (`AGE-SECRET-KEY-1...`) used by restores and drills.
    /// Keep a copy outside the cluster: without it no backup can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_secret_ref: Option<SecretKeyRef>,
}

/// Generations to keep (grandfather-father-son). A backup is kept if any rule keeps it, and the
/// newest restore point verified by a drill is never deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.keepLast) ? self.keepLast : 0) + self.keepDaily + self.keepWeekly + self.keepMonthly >= 1"
).message("retention must keep at least one backup"))]
pub struct Retention {
    /// Keep the newest N backups regardless of age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N days. Defaults to 7.
    #[serde(default = "default_keep_daily")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_daily: u32,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_weekly: u32,
    /// Keep the newest backup of each of the last N months.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_monthly: u32,
}

fn default_keep_daily() -> u32 {
    7
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: None,
            keep_daily: default_keep_daily(),
            keep_weekly: 0,
            keep_monthly: 0,
        }
    }
}

/// Recovery objectives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Objectives {
    /// Recovery point objective: the newest restore point must never be older than this
    /// (condition `RPOMet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub rpo: Option<Duration>,
    /// Recovery time objective: a drill must restore and verify within this (condition
    /// `RTOMet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule(min_duration::SECOND))]
    pub rto: Option<Duration>,
}

/// Scheduled restore drills into a scratch target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drill {
    /// When to drill (cron), in the policy's `timeZone`.
    pub schedule: CronSchedule,
    /// Where the drill restores to; torn down afterwards.
    pub scratch: ScratchTarget,
    /// Checks run after the restore; row counts and object hashes are always checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub checks: Vec<RestoreCheck>,
    /// How many finished drill RestoreRequests to keep. Defaults to 3.
    #[serde(default = "default_keep_requests")]
    #[schemars(range(min = 1, max = 50))]
    pub keep_requests: u32,
}

fn default_keep_requests() -> u32 {
    3
}

/// Observed state of a BackupPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, RPOMet, DrillPassed, RTOMet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the last scheduled run was due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the next scheduled run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The value of the `tend.dev/backup-now` annotation that last started a run; a new value
    /// starts another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_request: Option<String>,
    /// The most recent backup run, finished or in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRun>,
    /// The most recent backup run that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<BackupRun>,
    /// Restore points in the repository, newest first (bounded; the repository is the truth).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub restore_points: Vec<RestorePoint>,
    /// Age of the newest restore point when status was written, e.g. `3h12m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rpo: Option<String>,
    /// The most recent restore drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<DrillResult>,
    /// What the last retention pass deleted and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retention: Option<RetentionResult>,
}

/// One backup run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRun {
    /// Backup id (also the restore point id once it succeeds), e.g. `20261128T020000Z-7f3a`.
    pub id: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub result: RunResult,
    /// What started it: `Schedule`, `Manual` (annotation) or `Drill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// When the run started.
    pub start_time: Time,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Bytes written to the repository (after compression and encryption). While running: so far.
    #[serde(default)]
    pub bytes: u64,
    /// Per-component results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub components: Vec<ComponentResult>,
    /// Why the run failed, in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of a run or drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RunResult {
    Running,
    Succeeded,
    Failed,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// A backup that can be restored: its manifest is written and verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePoint {
    /// Backup id.
    pub id: String,
    /// When the backup's data was captured.
    pub time: Time,
    /// Size in the repository.
    #[serde(default)]
    pub bytes: u64,
    /// A drill restored and verified this restore point.
    #[serde(default)]
    pub verified: bool,
}

/// The outcome of a restore drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillResult {
    /// The RestoreRequest that ran the drill.
    pub request_name: String,
    /// The restore point drilled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<String>,
    /// `Running`, `Succeeded` or `Failed`.
    pub result: RunResult,
    /// When the drill started.
    pub start_time: Time,
    /// When the drill finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Measured recovery time: start of restore to verified, e.g. `4m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    /// Why the drill failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the last retention pass did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionResult {
    /// When retention ran.
    pub time: Time,
    /// Backup ids deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub deleted: Vec<String>,
    /// Backup ids kept, each with the rule that kept it (`daily`, `weekly`, `monthly`, `last`,
    /// `newestVerified`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub kept: Vec<KeptBackup>,
    /// Object blobs no backup references any more, deleted.
    #[serde(default)]
    pub blobs_deleted: u64,
    /// Stale multipart uploads aborted.
    #[serde(default)]
    pub uploads_aborted: u64,
}

/// A backup retention kept, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeptBackup {
    /// Backup id.
    pub id: String,
    /// The rules that keep it.
    pub reasons: Vec<String>,
}

impl References for BackupPolicySpec {
    fn references(&self) -> Vec<Reference> {
        const PG_KEYS: &[&str] = &["host", "port", "dbname", "user", "password"];
        let mut refs = vec![Reference::secret_key(
            "spec.encryption.recipientsSecretRef",
            &self.encryption.recipients_secret_ref,
        )];
        if let Some(identity) = &self.encryption.identity_secret_ref {
            refs.push(Reference::secret_key(
                "spec.encryption.identitySecretRef",
                identity,
            ));
        }
        if let Some(app) = &self.app {
            refs.push(Reference::secret_key(
                "spec.app.tokenSecretRef",
                &app.token_secret_ref,
            ));
        }
        if let Some(pg) = self
            .targets
            .database
            .as_ref()
            .and_then(|d| d.postgres.as_ref())
        {
            refs.push(Reference::secret(
                "spec.targets.database.postgres.connectionSecretRef",
                &pg.connection_secret_ref,
                PG_KEYS,
            ));
        }
        if let Some(objects) = &self.targets.objects {
            refs.extend(objects.references("spec.targets.objects"));
        }
        refs.extend(self.repository.references("spec.repository"));
        if let Some(drill) = &self.drill {
            refs.extend(drill.scratch.references("spec.drill.scratch"));
        }
        refs
    }
}

/// Condition and Event reasons of BackupPolicy backups (API: alerts and `kubectl wait` match
/// on them).
pub mod reasons {
    pub const RUNNING: &str = "BackupRunning";
    pub const SUCCEEDED: &str = "BackupSucceeded";
    pub const FAILED: &str = "BackupFailed";
    pub const STARTED: &str = "BackupStarted";
    pub const MISSED_SCHEDULE: &str = "MissedSchedule";
    pub const RPO_MET: &str = "RPOMet";
    pub const RPO_BREACHED: &str = "RPOBreached";
    pub const NO_RESTORE_POINT: &str = "NoRestorePoint";
    pub const RETENTION_FAILED: &str = "RetentionFailed";
}

/// Condition and Event reasons of BackupPolicy restore drills (API).
pub mod drill_reasons {
    pub const STARTED: &str = "DrillStarted";
    pub const PASSED: &str = "DrillPassed";
    pub const FAILED: &str = "DrillFailed";
    pub const RTO_MET: &str = "RTOMet";
    pub const RTO_BREACHED: &str = "RTOBreached";
}
