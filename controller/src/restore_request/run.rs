//! One restore, in a task: resolve the restore point, verify every part before touching any
//! target, turn maintenance on (in place), restore the components, run the checks, turn
//! maintenance off — always —, and remove the scratch target of drills and failed requests.
//! The targets are prepared and written in [`super::targets`], config in [`super::config`],
//! the checks' pure parts are in [`super::checks`].
//!
//! Over 400 lines on purpose: `restore` and `restore_and_check` are the one sequence of a
//! restore, kept together so the order of its safety steps (verify before touching anything,
//! maintenance off whatever happens, scratch removed) reads in one place.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Client};

use tend_backup::restore::{ObjectsRestoreOptions, check_objects, restore_objects};
use tend_backup::{
    Decryption, Manifest, PolicyLocation, PostgresTools, Repository, restore_points, verify_backup,
};
use tend_crds::backup_policy::BackupPolicy;
use tend_crds::restore_request::reasons as rr;
use tend_crds::restore_request::{
    ChosenRestorePoint, Component, ComponentResult, RestoreMode, RestoreRequestSpec, ScratchTarget,
};

use super::Shared;
use super::checks;
use super::report::Outcome;
use super::scratch::{remove_scratch, scratch_of};
use super::targets::{RestoredDatabase, restore_database};
use crate::context::Clock;
use crate::error::StepError;
use crate::ops_api::OpsApi;
use crate::reconcile::Note;
use crate::secrets::Secrets;
use crate::setup;

pub(super) const MAINTENANCE_MESSAGE: &str = "Data is being restored from a backup. Back soon.";

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
        Err(error) => {
            outcome.reason = Some(error.metric_label());
            outcome.error = Some(error.to_string());
        }
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
                outcome.reason.get_or_insert("target");
            }
        }
    }
    outcome.finished = Some(plan.clock.now());
    outcome
}

pub(super) struct Run<'a> {
    pub(super) plan: &'a Plan,
    pub(super) shared: &'a Shared,
    pub(super) outcome: Outcome,
    pub(super) scratch: Option<ScratchTarget>,
    /// The decrypted SQLite file of an in-place restore (kept for SQL checks).
    pub(super) temp: Option<tempfile::TempDir>,
    /// Targets are being written (scratch resources may exist).
    pub(super) touched: bool,
}

impl Run<'_> {
    pub(super) fn note(&self, note: Note) {
        self.shared.notes.lock().expect("notes lock").push(note);
    }

    pub(super) fn set_component(&mut self, result: ComponentResult) {
        self.outcome
            .components
            .retain(|c| c.component != result.component);
        self.outcome.components.push(result);
    }

    pub(super) async fn restore(&mut self) -> Result<Timestamp, StepError> {
        let plan = self.plan;
        let client = &plan.client;
        let policy_name = &plan.spec.policy_ref.name;
        let policy = Api::<BackupPolicy>::namespaced(client.clone(), &plan.namespace)
            .get_opt(policy_name)
            .await
            .map_err(|e| {
                StepError::kube(
                    format!("spec.policyRef: reading BackupPolicy {policy_name}"),
                    &e,
                )
            })?
            .ok_or_else(|| {
                StepError::Setup(format!(
                    "spec.policyRef: BackupPolicy {policy_name} not found"
                ))
            })?;
        let mut secrets = Secrets::new(client.clone(), &plan.namespace);
        let repo = setup::storage(
            "spec.repository",
            &policy.spec.repository,
            &mut secrets,
            true,
        )
        .await
        .map_err(|e| StepError::Setup(format!("BackupPolicy {policy_name}: {e}")))?;
        let decryption = setup::decryption(&policy.spec, &mut secrets)
            .await
            .map_err(|e| StepError::Setup(format!("BackupPolicy {policy_name}: {e}")))?;
        let location = PolicyLocation::new(&plan.namespace, policy_name);
        let points = restore_points(repo.as_ref(), &location)
            .await
            .map_err(|e| StepError::engine("listing restore points", e))?;
        let point = choose_point(&points, &plan.spec).map_err(StepError::Setup)?;
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
            return Err(StepError::Setup(format!(
                "restore point {} holds none of the requested components",
                manifest.id
            )));
        }

        // Nothing is touched until every part and blob checks out.
        verify_backup(repo.as_ref(), &location, &manifest)
            .await
            .map_err(|e| {
                StepError::engine(
                    format!(
                        "restore point {} failed verification; nothing was restored",
                        manifest.id
                    ),
                    e,
                )
            })?;

        self.scratch = scratch_of(&plan.spec).cloned();
        self.touched = true;
        let in_place = plan.spec.target.mode == RestoreMode::InPlace;
        let ops = setup::ops_api(&policy.spec, &mut secrets)
            .await
            .map_err(|e| StepError::Setup(format!("BackupPolicy {policy_name}: {e}")))?;
        let maintenance = match (&ops, in_place) {
            (Some(ops), true) => {
                set_maintenance(ops, true)
                    .await
                    .map_err(|e| StepError::Target(format!("turning maintenance mode on: {e}")))?;
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
                        Ok(_) => StepError::Target(format!("restored and verified, but {message}")),
                        Err(error) => StepError::Target(format!("{error}; {message}")),
                    });
                }
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn restore_and_check(
        &mut self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
        repo: Arc<dyn Repository>,
        location: &PolicyLocation,
        manifest: &Manifest,
        decryption: &Decryption,
        ops: Option<&OpsApi>,
        (do_database, do_objects, do_config): (bool, bool, bool),
    ) -> Result<Timestamp, StepError> {
        let plan = self.plan;
        // Targets are prepared first (all Secret reads), then database and objects restore
        // concurrently.
        let database_target = if do_database {
            Some(
                self.database_target(policy, secrets, manifest)
                    .await
                    .map_err(StepError::Setup)?,
            )
        } else {
            None
        };
        let objects_target = if do_objects {
            Some(
                self.objects_target(policy, secrets)
                    .await
                    .map_err(StepError::Setup)?,
            )
        } else {
            None
        };
        let temp = tempfile::Builder::new()
            .prefix("tend-restore")
            .tempdir()
            .map_err(|e| StepError::Internal(format!("creating a temporary directory: {e}")))?;
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
            return Err(StepError::Target(failures.join("; ")));
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
                    return Err(StepError::Target(format!("config: {error}")));
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
            return Err(StepError::Check(failed.join("; ")));
        }
        Ok(plan.clock.now())
    }
}

pub(super) fn result(
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

pub(super) fn choose_point<'p>(
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

pub(super) async fn set_maintenance(ops: &OpsApi, enabled: bool) -> Result<(), String> {
    ops.set_maintenance(enabled, MAINTENANCE_MESSAGE)
        .await
        .map_err(|e| e.to_string())
}
