//! One backup run, in a task: prepare the sources from the spec, back up, apply retention and
//! list the restore points. What it reports is an [`Outcome`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use kube::Client;
use tend_backup::{
    BackupJob, Manifest, PolicyLocation, PostgresTools, Progress, Repository, RetentionOptions,
    RetentionReport, RetentionRules, apply_retention, restore_points, run_backup,
};
use tend_crds::backup_policy::BackupPolicySpec;

use crate::context::Clock;
use crate::error::StepError;
use crate::schedule::Trigger;
use crate::secrets::Secrets;
use crate::setup;

/// Retention leaves younger uncommitted parts, blobs and uploads alone.
const RETENTION_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// What a finished run reports.
pub(super) struct Outcome {
    pub(super) id: String,
    /// What started the run; recorded with the outcome too, so a lost write of the `Running`
    /// record does not make the same request or slot run a second time.
    pub(super) trigger: Option<Trigger>,
    pub(super) finished: Timestamp,
    pub(super) elapsed: Duration,
    pub(super) result: Result<Success, StepError>,
    /// Restore points after the run and retention (`None` when the repository could not be
    /// listed).
    pub(super) points: Option<Vec<PointSummary>>,
    pub(super) retention: Option<Result<RetentionReport, String>>,
}

pub(super) struct Success {
    pub(super) manifest: Manifest,
    /// ConfigMaps and Secrets archived (unknown when recorded from a manifest alone).
    pub(super) config_objects: Option<u64>,
}

pub(super) struct PointSummary {
    pub(super) id: String,
    pub(super) time: Timestamp,
    pub(super) bytes: u64,
}

impl From<tend_backup::RestorePoint> for PointSummary {
    fn from(p: tend_backup::RestorePoint) -> Self {
        PointSummary {
            bytes: p.manifest.stored_bytes(),
            time: p.manifest.started_at,
            id: p.id,
        }
    }
}

impl Outcome {
    pub(super) fn crashed(id: String, error: &str) -> Self {
        Outcome {
            id,
            trigger: None,
            finished: Timestamp::now(),
            elapsed: Duration::ZERO,
            result: Err(StepError::Internal(format!(
                "the backup task stopped unexpectedly: {error}"
            ))),
            points: None,
            retention: None,
        }
    }
}

/// Everything a run needs, owned, so it can go to a task.
pub(super) struct RunPlan {
    pub(super) client: Client,
    pub(super) namespace: String,
    pub(super) policy: String,
    pub(super) spec: BackupPolicySpec,
    pub(super) id: String,
    pub(super) trigger: Trigger,
    pub(super) started: Timestamp,
    pub(super) verified: HashSet<String>,
    pub(super) tools: PostgresTools,
    pub(super) clock: Clock,
}

/// The run itself, in a task: prepare the sources, back up, list restore points, apply
/// retention.
pub(super) async fn execute(plan: RunPlan, progress: Arc<Progress>) -> Outcome {
    let clock = plan.clock.clone();
    let timer = Instant::now();
    let location = PolicyLocation::new(&plan.namespace, &plan.policy);
    let mut secrets = Secrets::new(plan.client.clone(), &plan.namespace);
    let repo = match setup::storage(
        "spec.repository",
        &plan.spec.repository,
        &mut secrets,
        false,
    )
    .await
    {
        Ok(repo) => repo,
        Err(e) => {
            return Outcome {
                id: plan.id,
                trigger: Some(plan.trigger),
                finished: clock.now(),
                elapsed: timer.elapsed(),
                result: Err(e),
                points: None,
                retention: None,
            };
        }
    };
    let result = back_up(&plan, &mut secrets, repo.clone(), &location, progress).await;
    let retention = match &result {
        Ok(_) => Some(
            apply_retention(
                repo.as_ref(),
                &location,
                &RetentionOptions {
                    rules: retention_rules(&plan.spec),
                    verified: plan.verified.clone(),
                    now: clock.now(),
                    grace: RETENTION_GRACE,
                },
            )
            .await
            .map_err(|e| e.to_string()),
        ),
        Err(_) => None,
    };
    let points = match restore_points(repo.as_ref(), &location).await {
        Ok(points) => Some(points.into_iter().map(PointSummary::from).collect()),
        Err(error) => {
            tracing::warn!(policy = %plan.policy, %error, "cannot list restore points");
            None
        }
    };
    Outcome {
        id: plan.id,
        trigger: Some(plan.trigger),
        finished: clock.now().max(plan.started),
        elapsed: timer.elapsed(),
        result,
        points,
        retention,
    }
}

async fn back_up(
    plan: &RunPlan,
    secrets: &mut Secrets,
    repo: Arc<dyn Repository>,
    location: &PolicyLocation,
    progress: Arc<Progress>,
) -> Result<Success, StepError> {
    let spec = &plan.spec;
    let encryption = setup::encryption(spec, secrets).await?;
    let ops = setup::ops_api(spec, secrets).await?;
    let objects = setup::objects(spec, secrets).await?;
    let config = setup::config(
        spec.targets.config.as_ref(),
        &plan.client,
        &plan.namespace,
        ops.as_ref(),
    )
    .await?;
    // Last: a SQLite snapshot starts streaming as soon as it is requested.
    let database = setup::database(spec, secrets, ops.as_ref(), &plan.tools).await?;
    let mut job = BackupJob::new(repo, location.clone(), encryption);
    job.id = Some(plan.id.clone());
    job.started_at = Some(plan.started);
    job.trigger = Some(plan.trigger.label().to_string());
    job.progress = Progress::clone(&progress);
    job.database = database;
    job.objects = objects;
    let config_objects = config.as_ref().map_or(0, |(_, n)| *n);
    job.config = config.map(|(source, _)| source);
    let manifest = run_backup(job).await?;
    Ok(Success {
        manifest,
        config_objects: Some(config_objects),
    })
}

fn retention_rules(spec: &BackupPolicySpec) -> RetentionRules {
    RetentionRules {
        keep_last: spec.retention.keep_last.unwrap_or(0),
        keep_daily: spec.retention.keep_daily,
        keep_weekly: spec.retention.keep_weekly,
        keep_monthly: spec.retention.keep_monthly,
        time_zone: spec.time_zone.resolve().unwrap_or(jiff::tz::TimeZone::UTC),
    }
}
