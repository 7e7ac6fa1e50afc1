//! Recovery without a run: restore points of an existing repository shown before the first
//! backup (a rebuilt cluster), and a run whose end was never recorded (the controller stopped
//! during it) settled from the repository — the manifest is the commit point.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tend_backup::{
    PolicyLocation, Repository, Uncommitted, remove_uncommitted_backup, restore_points,
};
use tend_crds::backup_policy::reasons as br;
use tend_crds::backup_policy::{BackupPolicy, BackupPolicyStatus, RunResult};

use super::report::{record_outcome, set_restore_points};
use super::run::{Outcome, PointSummary, Success};
use crate::context::Context;
use crate::metrics::{FailureLabels, PolicyLabels};
use crate::reconcile::Note;
use crate::secrets::Secrets;
use crate::setup;

/// Lists the repository's restore points into status (no run needed). Failures are only
/// logged: the first backup reports an unusable repository properly.
pub(super) async fn discover_restore_points(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    labels: &PolicyLabels,
) {
    let mut secrets = Secrets::cached(&ctx.secrets, &labels.namespace);
    let repo = match setup::storage(
        "spec.repository",
        &policy.spec.repository,
        &mut secrets,
        true,
    )
    .await
    {
        Ok(repo) => repo,
        Err(error) => {
            tracing::debug!(policy = %labels.policy, %error, "repository not readable yet");
            return;
        }
    };
    let location = PolicyLocation::new(&labels.namespace, &labels.policy);
    match restore_points(repo.as_ref(), &location).await {
        Ok(points) if !points.is_empty() => {
            tracing::info!(policy = %labels.policy, points = points.len(), "restore points found in the repository");
            let points = points
                .into_iter()
                .map(PointSummary::from)
                .collect::<Vec<_>>();
            set_restore_points(status, &points);
        }
        Ok(_) => {}
        Err(error) => {
            tracing::debug!(policy = %labels.policy, %error, "cannot list restore points yet")
        }
    }
}

/// A `Running` record with no task in this process, confirmed against the API server: the
/// controller stopped during the run, or the record of its end was lost. A run whose manifest
/// exists committed, and is recorded as succeeded from it; only one without a manifest failed,
/// and only its parts are removed.
pub(super) async fn interrupted(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    id: &str,
    now: Timestamp,
    labels: &PolicyLabels,
    notes: &mut Vec<Note>,
) {
    let location = PolicyLocation::new(&labels.namespace, &labels.policy);
    let mut secrets = Secrets::new(ctx.client.clone(), &labels.namespace);
    let cleaned = match setup::storage(
        "spec.repository",
        &policy.spec.repository,
        &mut secrets,
        false,
    )
    .await
    {
        Ok(repo) => match remove_uncommitted_backup(repo.as_ref(), &location, id).await {
            Ok(Uncommitted::Committed(manifest)) => {
                tracing::info!(namespace = %labels.namespace, policy = %labels.policy, backup = %id, "the run's end was not recorded, but its manifest exists: recording it as succeeded");
                let points = restore_points(repo.as_ref(), &location)
                    .await
                    .ok()
                    .map(|points| points.into_iter().map(PointSummary::from).collect());
                let outcome = Outcome {
                    id: id.to_string(),
                    trigger: None,
                    finished: manifest.finished_at,
                    elapsed: Duration::try_from(
                        manifest.finished_at.duration_since(manifest.started_at),
                    )
                    .unwrap_or_default(),
                    result: Ok(Success {
                        manifest: *manifest,
                        config_objects: None,
                    }),
                    points,
                    retention: None,
                };
                record_outcome(&ctx.metrics, status, &outcome, labels, notes, true);
                return;
            }
            Ok(Uncommitted::Removed { .. }) => abort_uploads(repo.as_ref(), &location)
                .await
                .map(|n| format!("its partial data was removed ({n} pending uploads aborted)")),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let cleaned = cleaned.unwrap_or_else(|e| {
        format!("its partial data could not be checked or removed yet ({e}); retention will")
    });
    let message = format!(
        "interrupted: the controller stopped before the run finished (restart or leader change); {cleaned}"
    );
    tracing::warn!(namespace = %labels.namespace, policy = %labels.policy, backup = %id, "backup run was interrupted");
    ctx.metrics
        .backup
        .failures
        .get_or_create(&FailureLabels {
            namespace: labels.namespace.clone(),
            policy: labels.policy.clone(),
            reason: "interrupted",
        })
        .inc();
    ctx.metrics.backup.running.get_or_create(labels).set(0);
    notes.push(Note::warning(
        br::FAILED,
        "Backup",
        format!("backup {id} failed: {message}"),
    ));
    if let Some(run) = status.last_backup.as_mut() {
        run.result = RunResult::Failed;
        run.completion_time = Some(Time(now));
        run.message = Some(message);
    }
}

/// Aborts the policy's pending multipart uploads (left by an interrupted run).
async fn abort_uploads(repo: &dyn Repository, location: &PolicyLocation) -> Result<u64, String> {
    let mut aborted = 0;
    for upload in repo
        .list_uploads(&location.root())
        .await
        .map_err(|e| e.to_string())?
    {
        repo.abort_upload(&upload)
            .await
            .map_err(|e| e.to_string())?;
        aborted += 1;
    }
    Ok(aborted)
}
