//! One restore, in a task: resolve the restore point, verify every part before touching any
//! target, turn maintenance on (in place), restore the components, run the checks, turn
//! maintenance off — always —, and remove the scratch target of drills and failed requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tend_backup::postgres::{self as pg, PgRestoreMode};
use tend_backup::restore::{
    ObjectsRestoreOptions, ObjectsTarget, check_objects, restore_objects, restore_postgres,
};
use tend_backup::{
    Decryption, Manifest, PolicyLocation, PostgresConnection, PostgresTools, Repository,
    restore_part, restore_points, verify_backup,
};
use tend_crds::backup_policy::BackupPolicy;
use tend_crds::restore_request::{
    CheckResult, CheckType, ChosenRestorePoint, Component, ComponentResult, RestoreMode,
    RestoreRequest, RestoreRequestSpec, ScratchTarget,
};
use tend_crds::types::StorageLocation;

use super::checks;
use super::{Outcome, Shared, restore_reasons as rr};
use crate::backup::ops_api::OpsApi;
use crate::backup::setup::{self, Secrets, SetupError};
use crate::context::Clock;
use crate::reconcile::Note;

/// Label on the RestoreRequests a BackupPolicy's drills create: the policy's name.
pub use tend_crds::labels::DRILL_OF as DRILL_OF_LABEL;

const MAINTENANCE_MESSAGE: &str = "Data is being restored from a backup. Back soon.";

/// Everything a restore needs, copied out of the request.
pub struct Plan {
    pub client: Client,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub spec: RestoreRequestSpec,
    pub drill: bool,
    pub tools: PostgresTools,
    pub clock: Clock,
}

/// The scratch database of a request: derived from its uid, so a crashed restore's leftover
/// is found again and two requests never share one.
pub fn scratch_database_name(uid: &str) -> String {
    let digest = hex::encode(Sha256::digest(uid.as_bytes()));
    format!("tend_scratch_{}", &digest[..12])
}

/// The directory (or S3 prefix segment) of a request under the scratch location.
pub fn scratch_dir_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

/// The scratch resources a request may create, recorded in status before any is created.
pub fn planned_scratch(request: &RestoreRequest) -> Vec<String> {
    let Some(scratch) = scratch_of(&request.spec) else {
        return Vec::new();
    };
    let namespace = request.namespace().unwrap_or_default();
    let dir = scratch_dir_name(&namespace, &request.name_any());
    let mut out = Vec::new();
    if scratch.postgres.is_some() && request.spec.components.contains(&Component::Database) {
        out.push(format!(
            "postgres:{}",
            scratch_database_name(&request.uid().unwrap_or_default())
        ));
    }
    if let Some(fs) = &scratch.filesystem {
        out.push(format!("directory:{}/{dir}", fs.path.trim_end_matches('/')));
    }
    if let Some(s3) = &scratch.s3 {
        let prefix = s3.prefix.trim_matches('/');
        out.push(if prefix.is_empty() {
            format!("s3:{}/{dir}/", s3.bucket)
        } else {
            format!("s3:{}/{prefix}/{dir}/", s3.bucket)
        });
    }
    out
}

fn scratch_of(spec: &RestoreRequestSpec) -> Option<&ScratchTarget> {
    (spec.target.mode == RestoreMode::Scratch)
        .then_some(spec.target.scratch.as_ref())
        .flatten()
}

/// Runs the restore and always returns an outcome.
pub(super) async fn execute(plan: Plan, shared: &Shared) -> Outcome {
    let mut run = Run {
        plan: &plan,
        shared,
        outcome: Outcome::default(),
        scratch: None,
        temp: None,
        touched: false,
    };
    let result = run.restore().await;
    let mut outcome = std::mem::take(&mut run.outcome);
    match result {
        Ok(verified) => outcome.verified = Some(verified),
        Err(error) => outcome.error = Some(error),
    }
    let failed = outcome.error.is_some();
    outcome.scratch_gone = !run.touched;
    // A request that failed before any target was touched (bad restore point, corrupted part,
    // unreadable Secret) created nothing to remove.
    if run.touched && (plan.drill || failed) {
        match remove_scratch(
            &plan.client,
            &plan.namespace,
            &plan.name,
            &plan.uid,
            &plan.spec,
            &plan.tools,
        )
        .await
        {
            Ok(removed) => {
                outcome.scratch_removed = removed;
                outcome.scratch_gone = true;
            }
            Err(error) => {
                tracing::warn!(namespace = %plan.namespace, request = %plan.name, %error, "scratch target not removed");
                let message = outcome.error.take().unwrap_or_default();
                outcome.error = Some(if message.is_empty() {
                    format!("verified, but the scratch target could not be removed: {error}")
                } else {
                    format!("{message}; the scratch target could not be removed: {error}")
                });
                outcome.verified = None;
            }
        }
    }
    outcome.finished = Some(plan.clock.now());
    outcome
}

struct Run<'a> {
    plan: &'a Plan,
    shared: &'a Shared,
    outcome: Outcome,
    scratch: Option<ScratchTarget>,
    /// The decrypted SQLite file of an in-place restore (kept for SQL checks).
    temp: Option<tempfile::TempDir>,
    /// Targets are being written (scratch resources may exist).
    touched: bool,
}

/// What the database restore left for the checks.
enum RestoredDatabase {
    Postgres(PostgresConnection),
    Sqlite {
        file: PathBuf,
        /// Counts the app reported after an in-place restore.
        app_tables: Option<BTreeMap<String, u64>>,
    },
}

impl Run<'_> {
    fn note(&self, note: Note) {
        self.shared.notes.lock().expect("notes lock").push(note);
    }

    fn set_component(&mut self, result: ComponentResult) {
        self.outcome
            .components
            .retain(|c| c.component != result.component);
        self.outcome.components.push(result);
    }

    async fn restore(&mut self) -> Result<Timestamp, String> {
        let plan = self.plan;
        let client = &plan.client;
        let policy_name = &plan.spec.policy_ref.name;
        let policy = Api::<BackupPolicy>::namespaced(client.clone(), &plan.namespace)
            .get_opt(policy_name)
            .await
            .map_err(|e| format!("spec.policyRef: reading BackupPolicy {policy_name}: {e}"))?
            .ok_or_else(|| format!("spec.policyRef: BackupPolicy {policy_name} not found"))?;
        let mut secrets = Secrets::new(client.clone(), &plan.namespace);
        let repo = setup::storage(
            "spec.repository",
            &policy.spec.repository,
            &mut secrets,
            true,
        )
        .await
        .map_err(|e| format!("BackupPolicy {policy_name}: {e}"))?;
        let decryption = setup::decryption(&policy.spec, &mut secrets)
            .await
            .map_err(|e| format!("BackupPolicy {policy_name}: {e}"))?;
        let location = PolicyLocation::new(&plan.namespace, policy_name);
        let points = restore_points(repo.as_ref(), &location)
            .await
            .map_err(|e| format!("listing restore points: {e}"))?;
        let point = choose_point(&points, &plan.spec)?;
        let manifest = point.manifest.clone();
        self.outcome.point = Some(ChosenRestorePoint {
            id: manifest.id.clone(),
            time: Time(manifest.started_at),
        });

        let wanted = |c: Component| plan.spec.components.contains(&c);
        let has_database = manifest.database.is_some();
        let has_objects = manifest.objects.is_some();
        let has_config = manifest.parts.iter().any(|p| p.component == "config");
        for (component, present) in [
            (Component::Database, has_database),
            (Component::Objects, has_objects),
            (Component::Config, has_config),
        ] {
            if wanted(component) && !present {
                self.set_component(result(
                    component,
                    "Skipped",
                    0,
                    None,
                    "not in this restore point",
                ));
            }
        }
        let do_database = wanted(Component::Database) && has_database;
        let do_objects = wanted(Component::Objects) && has_objects;
        let do_config = wanted(Component::Config) && has_config;
        if !(do_database || do_objects || do_config) {
            return Err(format!(
                "restore point {} holds none of the requested components",
                manifest.id
            ));
        }

        // Nothing is touched until every part and blob checks out.
        verify_backup(repo.as_ref(), &location, &manifest)
            .await
            .map_err(|e| {
                format!(
                    "restore point {} failed verification; nothing was restored: {e}",
                    manifest.id
                )
            })?;

        self.scratch = scratch_of(&plan.spec).cloned();
        self.touched = true;
        let in_place = plan.spec.target.mode == RestoreMode::InPlace;
        let ops = setup::ops_api(&policy.spec, &mut secrets)
            .await
            .map_err(|e| format!("BackupPolicy {policy_name}: {e}"))?;
        let maintenance = match (&ops, in_place) {
            (Some(ops), true) => {
                set_maintenance(ops, true)
                    .await
                    .map_err(|e| format!("turning maintenance mode on: {e}"))?;
                self.note(Note::normal(
                    rr::MAINTENANCE_ON,
                    "Maintenance",
                    "the app is in maintenance mode while data is restored",
                ));
                Some(ops)
            }
            _ => None,
        };

        let result = self
            .restore_and_check(
                &policy,
                &mut secrets,
                repo,
                &location,
                &manifest,
                &decryption,
                ops.as_ref(),
                (do_database, do_objects, do_config),
            )
            .await;

        if let Some(ops) = maintenance {
            match set_maintenance(ops, false).await {
                Ok(()) => self.note(Note::normal(
                    rr::MAINTENANCE_OFF,
                    "Maintenance",
                    "maintenance mode is off",
                )),
                Err(e) => {
                    let message = format!("maintenance mode could not be turned off: {e}");
                    self.note(Note::warning(
                        rr::MAINTENANCE_OFF,
                        "Maintenance",
                        message.clone(),
                    ));
                    return Err(match result {
                        Ok(_) => format!("restored and verified, but {message}"),
                        Err(error) => format!("{error}; {message}"),
                    });
                }
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn restore_and_check(
        &mut self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
        repo: Arc<dyn Repository>,
        location: &PolicyLocation,
        manifest: &Manifest,
        decryption: &Decryption,
        ops: Option<&OpsApi>,
        (do_database, do_objects, do_config): (bool, bool, bool),
    ) -> Result<Timestamp, String> {
        let plan = self.plan;
        // Targets are prepared first (all Secret reads), then database and objects restore
        // concurrently.
        let database_target = if do_database {
            Some(self.database_target(policy, secrets, manifest).await?)
        } else {
            None
        };
        let objects_target = if do_objects {
            Some(self.objects_target(policy, secrets).await?)
        } else {
            None
        };
        let temp = tempfile::Builder::new()
            .prefix("tend-restore")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let sqlite_temp = temp.path().join("database.sqlite");
        self.temp = Some(temp);

        let progress = &self.shared.progress;
        type Boxed<'f, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'f>>;
        let database_fut: Boxed<'_, Result<Option<(RestoredDatabase, u64)>, String>> =
            Box::pin(async {
                match &database_target {
                    None => Ok(None),
                    Some(target) => restore_database(
                        plan,
                        target,
                        repo.as_ref(),
                        location,
                        manifest,
                        decryption,
                        ops,
                        progress,
                        &sqlite_temp,
                    )
                    .await
                    .map(Some),
                }
            });
        type ObjectsDone = (tend_backup::restore::ObjectsRestoreReport, (bool, String));
        let objects_fut: Boxed<'_, Result<Option<ObjectsDone>, String>> = Box::pin(async {
            let Some(target) = &objects_target else {
                return Ok(None);
            };
            let report = restore_objects(
                repo.clone(),
                location,
                manifest,
                decryption,
                target,
                &ObjectsRestoreOptions::default(),
                progress,
            )
            .await
            .map_err(|e| e.to_string())?;
            // Read back as soon as they are written, while the database may still be restoring.
            let check = match check_objects(target, manifest, 8).await {
                Ok(report) => checks::describe_objects(&report),
                Err(e) => (false, e.to_string()),
            };
            Ok(Some((report, check)))
        });
        let (database, objects) = tokio::join!(database_fut, objects_fut);
        let mut failures = Vec::new();
        let restored_database = match database {
            Ok(Some((restored, bytes))) => {
                let db = manifest.database.as_ref().expect("checked");
                self.set_component(result(
                    Component::Database,
                    "Succeeded",
                    bytes,
                    Some(db.row_counts.len() as u64),
                    &format!(
                        "{} restored ({})",
                        db.engine,
                        database_target.as_ref().map_or("", |t| t.describe())
                    ),
                ));
                Some(restored)
            }
            Ok(None) => None,
            Err(error) => {
                self.set_component(result(Component::Database, "Failed", 0, None, &error));
                failures.push(format!("database: {error}"));
                None
            }
        };
        let mut objects_check = None;
        match objects {
            Ok(Some((report, check))) => {
                objects_check = Some(check);
                self.set_component(ComponentResult {
                    component: Component::Objects,
                    result: "Succeeded".into(),
                    bytes: report.bytes,
                    objects: Some(report.restored),
                    objects_skipped: Some(report.unchanged),
                    message: Some(format!(
                        "{} objects restored, {} already present unchanged",
                        report.restored, report.unchanged
                    )),
                });
            }
            Ok(None) => {}
            Err(error) => {
                self.set_component(result(Component::Objects, "Failed", 0, None, &error));
                failures.push(format!("objects: {error}"));
            }
        }
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
        if do_config {
            match self
                .restore_config(repo.as_ref(), location, manifest, decryption, ops)
                .await
            {
                Ok((count, bytes, message)) => self.set_component(result(
                    Component::Config,
                    "Succeeded",
                    bytes,
                    Some(count),
                    &message,
                )),
                Err(error) => {
                    self.set_component(result(Component::Config, "Failed", 0, None, &error));
                    return Err(format!("config: {error}"));
                }
            }
        }

        *self.shared.phase.lock().expect("phase lock") =
            Some(tend_crds::restore_request::RestorePhase::Verifying);
        let checks = self
            .run_checks(
                manifest,
                restored_database.as_ref(),
                objects_target.as_ref(),
                objects_check,
                ops,
            )
            .await;
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                format!(
                    "check {} failed: {}",
                    c.name,
                    c.message.as_deref().unwrap_or("no detail")
                )
            })
            .collect();
        self.outcome.checks = checks;
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
        Ok(plan.clock.now())
    }

    async fn database_target(
        &self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
        manifest: &Manifest,
    ) -> Result<DatabaseTarget, String> {
        let plan = self.plan;
        let engine = manifest
            .database
            .as_ref()
            .map(|d| d.engine.as_str())
            .unwrap_or_default();
        match (engine, &self.scratch) {
            ("postgresql", Some(scratch)) => {
                let pg = scratch.postgres.as_ref().ok_or_else(|| {
                    "spec.target.scratch.postgres is required to restore a PostgreSQL database into a scratch target".to_string()
                })?;
                let admin = setup::postgres_connection(
                    secrets,
                    "spec.target.scratch.postgres.connectionSecretRef",
                    &pg.connection_secret_ref.name,
                )
                .await
                .map_err(|e| e.0)?;
                Ok(DatabaseTarget::ScratchPostgres {
                    name: scratch_database_name(&plan.uid),
                    admin,
                })
            }
            ("postgresql", None) => {
                let pg = policy
                    .spec
                    .targets
                    .database
                    .as_ref()
                    .and_then(|d| d.postgres.as_ref())
                    .ok_or_else(|| {
                        "the restore point holds a PostgreSQL dump but the BackupPolicy's database target is not PostgreSQL".to_string()
                    })?;
                let conn = setup::postgres_connection(
                    secrets,
                    "spec.targets.database.postgres.connectionSecretRef",
                    &pg.connection_secret_ref.name,
                )
                .await
                .map_err(|e: SetupError| e.0)?;
                Ok(DatabaseTarget::Postgres(conn))
            }
            ("sqlite", Some(scratch)) => {
                let fs = scratch.filesystem.as_ref().ok_or_else(|| {
                    "spec.target.scratch.filesystem is required to restore a SQLite database into a scratch target".to_string()
                })?;
                let dir =
                    PathBuf::from(&fs.path).join(scratch_dir_name(&plan.namespace, &plan.name));
                Ok(DatabaseTarget::ScratchSqlite(dir.join("database.sqlite")))
            }
            ("sqlite", None) => Ok(DatabaseTarget::AppSqlite),
            (other, _) => Err(format!("unknown database engine {other:?} in the manifest")),
        }
    }

    async fn objects_target(
        &self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
    ) -> Result<ObjectsTarget, String> {
        let plan = self.plan;
        match &self.scratch {
            None => {
                let location = policy.spec.targets.objects.as_ref().ok_or_else(|| {
                    "the BackupPolicy has no spec.targets.objects to restore objects into"
                        .to_string()
                })?;
                let store = restore_store("spec.targets.objects", location, secrets).await?;
                Ok(ObjectsTarget {
                    store,
                    prefix: String::new(),
                })
            }
            Some(scratch) => {
                let dir = scratch_dir_name(&plan.namespace, &plan.name);
                let location = scratch_store_location(scratch).ok_or_else(|| {
                    "spec.target.scratch needs s3 or filesystem to restore objects into".to_string()
                })?;
                let store = restore_store("spec.target.scratch", &location, secrets).await?;
                Ok(ObjectsTarget {
                    store,
                    prefix: format!("{dir}/objects/"),
                })
            }
        }
    }

    async fn restore_config(
        &self,
        repo: &dyn Repository,
        location: &PolicyLocation,
        manifest: &Manifest,
        decryption: &Decryption,
        ops: Option<&OpsApi>,
    ) -> Result<(u64, u64, String), String> {
        let plan = self.plan;
        let part = manifest
            .parts
            .iter()
            .find(|p| p.component == "config")
            .expect("checked");
        let mut archive = Vec::new();
        let bytes = restore_part(
            repo,
            location,
            manifest,
            &part.name,
            decryption,
            &mut archive,
        )
        .await
        .map_err(|e| e.to_string())?;
        let document: Value = serde_json::from_slice(&archive)
            .map_err(|e| format!("the config archive is not JSON: {e}"))?;
        let config_maps = document["configMaps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let secrets = document["secrets"].as_array().cloned().unwrap_or_default();
        let settings = document.get("appSettings").filter(|v| !v.is_null());
        let count = (config_maps.len() + secrets.len()) as u64 + u64::from(settings.is_some());
        let summary = format!(
            "{} ConfigMaps, {} Secrets{}",
            config_maps.len(),
            secrets.len(),
            if settings.is_some() {
                ", app settings"
            } else {
                ""
            }
        );
        if self.scratch.is_some() {
            return Ok((
                count,
                bytes,
                format!(
                    "archive decrypted and read: {summary} (a scratch restore applies nothing)"
                ),
            ));
        }
        let cm_api: Api<ConfigMap> = Api::namespaced(plan.client.clone(), &plan.namespace);
        for item in &config_maps {
            apply_archived(&cm_api, "ConfigMap", item, &["data", "binaryData"]).await?;
        }
        let secret_api: Api<Secret> = Api::namespaced(plan.client.clone(), &plan.namespace);
        for item in &secrets {
            apply_archived(&secret_api, "Secret", item, &["type", "data"]).await?;
        }
        if let Some(settings) = settings {
            let ops =
                ops.ok_or("the archive has app settings but the BackupPolicy has no spec.app")?;
            // The archived maintenance state is not re-applied: the restore keeps the app in
            // maintenance until it is done, then turns it off.
            let mut settings = settings.clone();
            if let Some(maintenance) = settings
                .get_mut("settings")
                .and_then(|s| s.get_mut("maintenance"))
            {
                *maintenance = json!({"enabled": true, "message": MAINTENANCE_MESSAGE});
            }
            ops.put_json("settings", &settings)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((count, bytes, format!("re-applied: {summary}")))
    }

    async fn run_checks(
        &self,
        manifest: &Manifest,
        database: Option<&RestoredDatabase>,
        objects: Option<&ObjectsTarget>,
        objects_check: Option<(bool, String)>,
        ops: Option<&OpsApi>,
    ) -> Vec<CheckResult> {
        let plan = self.plan;
        let expected = manifest
            .database
            .as_ref()
            .map(|d| d.row_counts.clone())
            .unwrap_or_default();
        let mut specs: Vec<(String, CheckType, Option<String>)> = plan
            .spec
            .checks
            .iter()
            .map(|c| (c.name.clone(), c.type_, c.query.clone()))
            .collect();
        // Row counts and object hashes are always checked.
        if database.is_some()
            && !expected.is_empty()
            && !specs.iter().any(|s| s.1 == CheckType::RowCounts)
        {
            specs.insert(0, ("rowCounts".into(), CheckType::RowCounts, None));
        }
        if objects.is_some() && !specs.iter().any(|s| s.1 == CheckType::ObjectHashes) {
            specs.insert(0, ("objectHashes".into(), CheckType::ObjectHashes, None));
        }
        let mut results = Vec::new();
        for (name, kind, query) in specs {
            let (passed, message) = match kind {
                CheckType::RowCounts => match database {
                    None => (false, "no database was restored".to_string()),
                    Some(db) => match self.row_counts(db).await {
                        Ok(found) => checks::compare_row_counts(&expected, &found),
                        Err(e) => (false, e),
                    },
                },
                CheckType::ObjectHashes => match (&objects_check, objects) {
                    (Some(done), _) => done.clone(),
                    (None, None) => (false, "no objects were restored".to_string()),
                    (None, Some(target)) => match check_objects(target, manifest, 8).await {
                        Ok(report) => checks::describe_objects(&report),
                        Err(e) => (false, e.to_string()),
                    },
                },
                CheckType::Sql => {
                    let query = query.unwrap_or_default();
                    match database {
                        None => (false, "no database was restored".to_string()),
                        Some(RestoredDatabase::Postgres(conn)) => {
                            match pg::check_query(&plan.tools, conn, &query).await {
                                Ok(true) => (true, "returned true".to_string()),
                                Ok(false) => (false, "returned false".to_string()),
                                Err(e) => (false, e.to_string()),
                            }
                        }
                        Some(RestoredDatabase::Sqlite { file, .. }) => {
                            checks::sqlite_check(file.clone(), query).await
                        }
                    }
                }
                CheckType::AppVerify => match ops {
                    Some(ops) if plan.spec.target.mode == RestoreMode::InPlace => {
                        match ops.get_json("verify").await {
                            Ok(report) => checks::judge_app_verify(&report),
                            Err(e) => (false, e.to_string()),
                        }
                    }
                    Some(_) => (
                        false,
                        "appVerify checks the app, which does not serve a scratch target"
                            .to_string(),
                    ),
                    None => (false, "the BackupPolicy has no spec.app".to_string()),
                },
                CheckType::Unknown => (false, "unknown check type".to_string()),
            };
            results.push(CheckResult {
                name,
                passed,
                message: Some(message),
            });
        }
        results
    }

    async fn row_counts(&self, db: &RestoredDatabase) -> Result<BTreeMap<String, u64>, String> {
        match db {
            RestoredDatabase::Postgres(conn) => pg::table_row_counts(&self.plan.tools, conn)
                .await
                .map_err(|e| e.to_string()),
            RestoredDatabase::Sqlite {
                app_tables: Some(tables),
                ..
            } => Ok(tables.clone()),
            RestoredDatabase::Sqlite { file, .. } => checks::sqlite_row_counts(file.clone()).await,
        }
    }
}

enum DatabaseTarget {
    Postgres(PostgresConnection),
    ScratchPostgres {
        name: String,
        admin: PostgresConnection,
    },
    AppSqlite,
    ScratchSqlite(PathBuf),
}

impl DatabaseTarget {
    fn describe(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "in place",
            Self::ScratchPostgres { .. } => "into a scratch database",
            Self::AppSqlite => "in place through the app's ops API",
            Self::ScratchSqlite(_) => "into a scratch file",
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn restore_database(
    plan: &Plan,
    target: &DatabaseTarget,
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    decryption: &Decryption,
    ops: Option<&OpsApi>,
    progress: &tend_backup::Progress,
    sqlite_temp: &std::path::Path,
) -> Result<(RestoredDatabase, u64), String> {
    let part = &manifest.database.as_ref().expect("checked").part;
    match target {
        DatabaseTarget::Postgres(conn) => {
            let bytes = restore_postgres(
                repo,
                location,
                manifest,
                decryption,
                &plan.tools,
                conn,
                PgRestoreMode::Replace,
                progress,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok((RestoredDatabase::Postgres(conn.clone()), bytes))
        }
        DatabaseTarget::ScratchPostgres { name, admin } => {
            // A leftover of an earlier attempt with this uid cannot exist (the uid is new),
            // but a half-created one of this very request might.
            pg::drop_database(&plan.tools, admin, name)
                .await
                .map_err(|e| e.to_string())?;
            pg::create_database(&plan.tools, admin, name)
                .await
                .map_err(|e| e.to_string())?;
            let conn = PostgresConnection {
                dbname: name.clone(),
                ..admin.clone()
            };
            let bytes = restore_postgres(
                repo,
                location,
                manifest,
                decryption,
                &plan.tools,
                &conn,
                PgRestoreMode::IntoEmpty,
                progress,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok((RestoredDatabase::Postgres(conn), bytes))
        }
        DatabaseTarget::ScratchSqlite(file) => {
            let bytes = write_part(repo, location, manifest, part, decryption, file).await?;
            Ok((
                RestoredDatabase::Sqlite {
                    file: file.clone(),
                    app_tables: None,
                },
                bytes,
            ))
        }
        DatabaseTarget::AppSqlite => {
            let ops = ops.ok_or("a SQLite database is restored through the app's ops API, but the BackupPolicy has no spec.app")?;
            let bytes = write_part(repo, location, manifest, part, decryption, sqlite_temp).await?;
            let answer = ops
                .put_file("snapshot", "application/vnd.sqlite3", sqlite_temp)
                .await
                .map_err(|e| e.to_string())?;
            let tables = answer
                .get("tables")
                .and_then(|t| serde_json::from_value(t.clone()).ok());
            Ok((
                RestoredDatabase::Sqlite {
                    file: sqlite_temp.to_path_buf(),
                    app_tables: tables,
                },
                bytes,
            ))
        }
    }
}

/// Restores one part into a new file (its directory is created).
async fn write_part(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    part: &str,
    decryption: &Decryption,
    file: &std::path::Path,
) -> Result<u64, String> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| format!("creating {}: {e}", file.display()))?;
    let bytes = restore_part(repo, location, manifest, part, decryption, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    use tokio::io::AsyncWriteExt;
    out.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    out.sync_all()
        .await
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(bytes)
}

fn result(
    component: Component,
    outcome: &str,
    bytes: u64,
    objects: Option<u64>,
    message: &str,
) -> ComponentResult {
    ComponentResult {
        component,
        result: outcome.into(),
        bytes,
        objects,
        objects_skipped: None,
        message: Some(message.to_owned()),
    }
}

fn choose_point<'p>(
    points: &'p [tend_backup::RestorePoint],
    spec: &RestoreRequestSpec,
) -> Result<&'p tend_backup::RestorePoint, String> {
    let selector = &spec.restore_point;
    if let Some(id) = &selector.id {
        return points.iter().find(|p| &p.id == id).ok_or_else(|| {
            format!(
                "spec.restorePoint.id: no restore point {id} in the repository ({} available)",
                points.len()
            )
        });
    }
    if let Some(before) = &selector.before {
        return points
            .iter()
            .find(|p| p.manifest.started_at < before.0)
            .ok_or_else(|| {
                format!(
                    "spec.restorePoint.before: no restore point taken before {}",
                    before.0
                )
            });
    }
    points
        .first()
        .ok_or_else(|| "spec.restorePoint.latest: the repository holds no restore point".into())
}

async fn set_maintenance(ops: &OpsApi, enabled: bool) -> Result<(), String> {
    let body = if enabled {
        json!({"enabled": true, "message": MAINTENANCE_MESSAGE})
    } else {
        json!({"enabled": false})
    };
    ops.put_json("maintenance", &body)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Re-creates one archived ConfigMap or Secret by server-side apply: its name, labels and
/// annotations plus the kind's own `fields` from the archive.
async fn apply_archived<K>(
    api: &Api<K>,
    kind: &str,
    item: &Value,
    fields: &[&str],
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = item["name"].as_str().unwrap_or_default();
    let mut object = json!({
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "labels": item["labels"], "annotations": item["annotations"]},
    });
    for field in fields {
        object[*field] = item[*field].clone();
    }
    api.patch(name, &PatchParams::apply("tend-restore").force(), &Patch::Apply(&object))
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "re-creating {kind} {name}: {} (restoring config needs the tend-config-restore role in this namespace; see docs/rbac.md)",
                kube_reason(&e)
            )
        })
}

fn kube_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => format!("{} ({})", response.message, response.reason),
        other => other.to_string(),
    }
}

/// A store objects are restored into. A directory is not fsynced object by object but once
/// when the restore is done (thousands of small photos otherwise cost more than the data).
async fn restore_store(
    field: &str,
    location: &StorageLocation,
    secrets: &mut Secrets,
) -> Result<Arc<dyn Repository>, String> {
    if let Some(fs) = &location.filesystem {
        let repo = tend_backup::LocalRepository::new(&fs.path)
            .map_err(|e| format!("{field}.filesystem: {e}"))?
            .with_deferred_sync();
        return Ok(Arc::new(repo));
    }
    setup::storage(field, location, secrets, false)
        .await
        .map_err(|e| e.0)
}

/// Where scratch objects go, as a storage location the setup code understands.
fn scratch_store_location(scratch: &ScratchTarget) -> Option<StorageLocation> {
    if let Some(s3) = &scratch.s3 {
        return Some(StorageLocation {
            s3: Some(s3.clone()),
            filesystem: None,
        });
    }
    scratch.filesystem.as_ref().map(|fs| StorageLocation {
        s3: None,
        filesystem: Some(fs.clone()),
    })
}

/// Removes a request's scratch target, recomputed from its spec and uid (never from status,
/// so nothing outside the scratch location can be named for deletion). Returns what it removed.
pub async fn remove_scratch(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
    spec: &RestoreRequestSpec,
    tools: &PostgresTools,
) -> Result<Vec<String>, String> {
    let Some(scratch) = scratch_of(spec) else {
        return Ok(Vec::new());
    };
    let dir = scratch_dir_name(namespace, name);
    let mut removed = Vec::new();
    let mut secrets = Secrets::new(client.clone(), namespace);
    if let Some(pg) = &scratch.postgres {
        let admin = setup::postgres_connection(
            &mut secrets,
            "spec.target.scratch.postgres.connectionSecretRef",
            &pg.connection_secret_ref.name,
        )
        .await
        .map_err(|e| e.0)?;
        let database = scratch_database_name(uid);
        pg::drop_database(tools, &admin, &database)
            .await
            .map_err(|e| e.to_string())?;
        removed.push(format!("postgres:{database}"));
    }
    if let Some(fs) = &scratch.filesystem {
        let path = PathBuf::from(&fs.path).join(&dir);
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => removed.push(format!("directory:{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", path.display())),
        }
    }
    if scratch.s3.is_some() {
        let location = scratch_store_location(scratch).expect("s3 set");
        let store = setup::storage("spec.target.scratch", &location, &mut secrets, false)
            .await
            .map_err(|e| e.0)?;
        let prefix = format!("{dir}/");
        let objects = store.list(&prefix).await.map_err(|e| e.to_string())?;
        for object in &objects {
            store.delete(&object.key).await.map_err(|e| e.to_string())?;
        }
        if !objects.is_empty() {
            removed.push(format!("s3:{}", store.describe()));
        }
    }
    Ok(removed)
}

/// A request found `Running` with no task in this process: end it as failed, remove its
/// scratch target, and turn the app's maintenance mode off if it was an in-place restore.
pub(super) async fn interrupted(
    request: &RestoreRequest,
    ctx: &crate::context::Context,
    now: Timestamp,
) -> Outcome {
    let namespace = request.namespace().unwrap_or_default();
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let mut problems = Vec::new();
    let mut outcome = Outcome::failed(
        now,
        "interrupted: the controller stopped during the restore (crash, restart or leader change); apply a new RestoreRequest to try again".into(),
    );
    match remove_scratch(
        &ctx.client,
        &namespace,
        &name,
        &uid,
        &request.spec,
        &ctx.backup_settings.postgres_tools,
    )
    .await
    {
        Ok(removed) => {
            outcome.scratch_removed = removed;
            outcome.scratch_gone = true;
        }
        Err(e) => problems.push(format!("the scratch target could not be removed: {e}")),
    }
    if request.spec.target.mode == RestoreMode::InPlace {
        let policy = Api::<BackupPolicy>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&request.spec.policy_ref.name)
            .await
            .ok()
            .flatten();
        if let Some(policy) = policy {
            let mut secrets = Secrets::new(ctx.client.clone(), &namespace);
            match setup::ops_api(&policy.spec, &mut secrets).await {
                Ok(Some(ops)) => {
                    if let Err(e) = set_maintenance(&ops, false).await {
                        problems.push(format!("maintenance mode could not be turned off: {e}"));
                    }
                }
                Ok(None) => {}
                Err(e) => problems.push(format!("maintenance mode could not be turned off: {e}")),
            }
        }
    }
    if !problems.is_empty() {
        let message = outcome.error.take().unwrap_or_default();
        outcome.error = Some(format!("{message}; {}", problems.join("; ")));
    }
    outcome
}
