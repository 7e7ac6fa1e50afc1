//! `RestoreRequest`: a one-shot restore (or drill) from a BackupPolicy's repository. The spec is
//! immutable, and the controller runs each request at most once (seed §1, §2 recovery flows).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References};
use crate::types::{FilesystemLocation, LocalObjectRef, S3Location, SecretRef};

/// Restore a backup into a scratch target or in place, then verify it.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "RestoreRequest",
    namespaced,
    status = "RestoreRequestStatus",
    shortname = "rr",
    category = "tend",
    doc = "A one-shot restore of a backup into a scratch target or in place, verified by checks; its spec is immutable and it runs once.",
    validation = kube::core::Rule::new("self.spec == oldSelf.spec").message("spec is immutable: a RestoreRequest runs once; create a new one instead"),
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policyRef.name"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.target.mode"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Restore Point", type_ = "string", json_path = ".status.restorePoint.id"),
    printcolumn(name = "RTO", type_ = "string", json_path = ".status.rto"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequestSpec {
    /// The BackupPolicy whose repository holds the backup.
    pub policy_ref: LocalObjectRef,
    /// Which restore point to use.
    pub restore_point: RestorePointSelector,
    /// Components to restore. Defaults to all that the restore point contains.
    #[serde(default = "all_components")]
    #[schemars(length(min = 1, max = 3))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub components: Vec<Component>,
    /// Where to restore.
    pub target: RestoreTarget,
    /// Checks run after the restore; row counts and object hashes are always checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub checks: Vec<RestoreCheck>,
}

fn all_components() -> Vec<Component> {
    vec![Component::Database, Component::Objects, Component::Config]
}

/// Selects a restore point: exactly one of `id`, `latest` or `before`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.id) ? 1 : 0) + (has(self.latest) && self.latest ? 1 : 0) + (has(self.before) ? 1 : 0) == 1"
).message("set exactly one of id, latest: true, or before"))]
pub struct RestorePointSelector {
    /// A specific backup id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The newest restore point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<bool>,
    /// The newest restore point taken strictly before this time (RFC 3339), e.g. just before a
    /// bad deploy corrupted data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Time>,
}

/// A part of a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Component {
    /// The database dump or snapshot.
    Database,
    /// Object storage (photos).
    Objects,
    /// ConfigMaps, Secrets and app settings.
    Config,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Where a restore writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.mode != 'inPlace' || self.confirm == true")
    .message("an inPlace restore overwrites production data: set confirm: true")
    .field_path(".confirm"))]
#[x_kube(validation = kube::core::Rule::new("self.mode != 'scratch' || has(self.scratch)")
    .message("a scratch restore needs target.scratch")
    .field_path(".scratch"))]
pub struct RestoreTarget {
    /// `scratch` restores into a separate target and never touches production; `inPlace`
    /// overwrites production (the app is put into maintenance mode meanwhile).
    pub mode: RestoreMode,
    /// Must be true for `inPlace`: an explicit acknowledgement that production is overwritten.
    #[serde(default)]
    pub confirm: bool,
    /// The scratch target, for `scratch` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<ScratchTarget>,
}

/// Restore modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RestoreMode {
    Scratch,
    InPlace,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// A throwaway restore target, created for the restore and removed afterwards by drills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScratchTarget {
    /// A PostgreSQL server where tend creates a scratch database (`tend_scratch_<id>`). The
    /// Secret holds `host`, `port`, `dbname` (the maintenance database), `user` and `password`
    /// of a role allowed to create databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<ScratchPostgres>,
    /// A directory for SQLite files and config archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemLocation>,
    /// An S3 location for restored objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Location>,
}

/// The PostgreSQL server for scratch databases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScratchPostgres {
    /// Secret with the libpq keys `host`, `port`, `dbname`, `user`, `password`.
    pub connection_secret_ref: SecretRef,
}

impl ScratchTarget {
    /// References of a scratch target found at `field`.
    pub fn references(&self, field: &str) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(pg) = &self.postgres {
            refs.push(Reference::secret(
                &format!("{field}.postgres.connectionSecretRef"),
                &pg.connection_secret_ref,
                &["host", "port", "dbname", "user", "password"],
            ));
        }
        if let Some(creds) = self
            .s3
            .as_ref()
            .and_then(|s| s.credentials_secret_ref.as_ref())
        {
            refs.push(Reference::secret(
                &format!("{field}.s3.credentialsSecretRef"),
                creds,
                &["accessKeyId", "secretAccessKey"],
            ));
        }
        refs
    }
}

/// A check run after a restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type != 'sql' || (has(self.query) && size(self.query) > 0)")
    .message("a sql check needs a query")
    .field_path(".query"))]
pub struct RestoreCheck {
    /// Name shown in status.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `rowCounts` (tables match the manifest), `objectHashes` (every object present with its
    /// SHA-256), `sql` (a query returning a single true value), or `appVerify` (the app's
    /// verify endpoint).
    #[serde(rename = "type")]
    pub type_: CheckType,
    /// For `sql`: a query that must return one row with one boolean column, true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4000))]
    pub query: Option<String>,
}

/// Kinds of restore checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CheckType {
    RowCounts,
    ObjectHashes,
    Sql,
    AppVerify,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Observed state of a RestoreRequest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequestStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Pending → Running → Verifying → Succeeded or Failed. Once finished, never runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// The restore point chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<ChosenRestorePoint>,
    /// When the restore started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the restore finished (verified or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Measured recovery time, start to verified, e.g. `3m41s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    /// Per-component results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub components: Vec<ComponentResult>,
    /// Per-check results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 60))]
    pub checks: Vec<CheckResult>,
    /// Scratch resources created for this request, removed when it is torn down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub scratch_resources: Vec<String>,
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Restore phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RestorePhase {
    Pending,
    Running,
    Verifying,
    Succeeded,
    Failed,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl RestorePhase {
    /// Succeeded and Failed are final: a finished request never runs again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The restore point a request resolved to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChosenRestorePoint {
    /// Backup id.
    pub id: String,
    /// When its data was captured.
    pub time: Time,
}

/// Result for one component of a backup or restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentResult {
    /// `database`, `objects` or `config`.
    pub component: Component,
    /// `Running`, `Succeeded`, `Failed` or `Skipped`.
    pub result: String,
    /// Bytes moved.
    #[serde(default)]
    pub bytes: u64,
    /// Objects (photos, config objects, tables) handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Objects found unchanged and not uploaded again (incremental backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_skipped: Option<u64>,
    /// Detail or failure reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Result of one post-restore check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Check name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl References for RestoreRequestSpec {
    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference::object(
            "spec.policyRef",
            "BackupPolicy",
            &self.policy_ref.name,
        )];
        if let Some(scratch) = &self.target.scratch {
            refs.extend(scratch.references("spec.target.scratch"));
        }
        refs
    }
}

/// Condition and Event reasons of RestoreRequest (API: `kubectl wait` and alerts match on
/// them).
pub mod reasons {
    pub const STARTED: &str = "RestoreStarted";
    pub const PENDING: &str = "RestorePending";
    pub const RUNNING: &str = "RestoreRunning";
    pub const VERIFYING: &str = "RestoreVerifying";
    pub const SUCCEEDED: &str = "RestoreSucceeded";
    pub const FAILED: &str = "RestoreFailed";
    pub const MAINTENANCE_ON: &str = "MaintenanceOn";
    pub const MAINTENANCE_OFF: &str = "MaintenanceOff";
    pub const SCRATCH_REMOVED: &str = "ScratchRemoved";
}
