//! BackupPolicy in the controller: when to run (the pure scheduler in [`crate::schedule`]), one
//! run per policy at a time as a background task, and what status, Events and metrics say.
//!
//! A run is recorded in `status.lastBackup` as `Running` (with its id) in the same reconcile
//! that starts it. Reconciles poll the run while it goes (bytes so far) and write its outcome
//! when it ends. The outcome stays in memory until a reconcile sees it recorded in the object
//! itself, so a status write that fails, or whose response is lost, is simply written again.
//!
//! A `Running` record with no task behind it means the controller stopped during the run
//! (crash, SIGKILL, leadership moved) — or that this reconcile was handed a stale copy of the
//! object. So the object is first read again from the API server; only if it still says
//! `Running` is the run ended. The manifest is the commit point: a run whose manifest exists
//! finished, and is recorded `Succeeded` from it; only a run without one is reported `Failed`
//! and its parts and pending uploads removed. Only the leader reconciles, so there is never a
//! second run of a policy on another replica.

pub mod drill;
pub mod ops_api;
pub(crate) mod setup;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Client, ResourceExt};
use tend_backup::{
    BackupJob, Manifest, PolicyLocation, PostgresTools, Progress, Repository, RetentionOptions,
    RetentionReport, RetentionRules, Uncommitted, apply_retention, remove_uncommitted_backup,
    restore_points, run_backup,
};
use tend_crds::backup_policy::{
    BackupPolicy, BackupPolicySpec, BackupPolicyStatus, BackupRun, KeptBackup, RestorePoint,
    RetentionResult, RunResult,
};
use tend_crds::conditions::{condition, find_condition, reasons, set_condition, types};
use tend_crds::cron::Schedule;
use tend_crds::restore_request::{Component, ComponentResult};
use tend_crds::types::format_duration;
use tokio::task::JoinHandle;

use crate::context::{Clock, Context};
use crate::metrics::{ComponentLabels, FailureLabels, PolicyLabels};
use crate::reconcile::{Note, Verdict, confirm_current};
use crate::schedule::{ScheduleState, Trigger, decide};
use setup::{Secrets, SetupError};

/// The annotation whose new value requests a backup now (`kubectl annotate bp x
/// tend.dev/backup-now=$(date +%s)`, or a commit that changes it).
pub use tend_crds::labels::BACKUP_NOW as BACKUP_NOW_ANNOTATION;

/// Condition reasons of BackupPolicy.
pub mod backup_reasons {
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
use backup_reasons as br;

/// How often a running backup's progress is written to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);
/// Restore points listed in status (the repository holds them all).
const STATUS_RESTORE_POINTS: usize = 100;
/// Retention leaves younger uncommitted parts, blobs and uploads alone.
const RETENTION_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// Settings of the backup engine that come from the controller's command line.
#[derive(Clone, Debug, Default)]
pub struct BackupSettings {
    /// Where `pg_dump` of each major version is looked for.
    pub postgres_tools: PostgresTools,
}

type Key = (String, String);

struct Running {
    id: String,
    progress: Progress,
    /// Filled by the task just before it ends (then `finished` is notified).
    outcome: Arc<Mutex<Option<Outcome>>>,
    task: JoinHandle<()>,
    /// The outcome once the task has ended; kept until the object shows it recorded.
    ended: Option<Arc<Outcome>>,
    /// The outcome's metrics were counted (once, however often its status write is retried).
    counted: bool,
}

/// Backup runs in progress in this process, by policy.
#[derive(Default)]
pub struct BackupRuns {
    runs: Mutex<HashMap<Key, Running>>,
    finished: Arc<tokio::sync::Notify>,
}

enum Poll {
    Idle,
    Running {
        id: String,
        bytes: u64,
    },
    /// The run ended; `first` is true the first time this outcome is handed out.
    Finished {
        outcome: Arc<Outcome>,
        first: bool,
    },
}

impl BackupRuns {
    /// The run of `key`, given what the object's status records (`recorded`, its
    /// `lastBackup`). A finished run's outcome is handed out until `recorded` shows it.
    fn poll(&self, key: &Key, recorded: Option<&BackupRun>) -> Poll {
        let mut runs = self.runs.lock().expect("backup runs lock");
        let Some(run) = runs.get_mut(key) else {
            return Poll::Idle;
        };
        if run.ended.is_none() {
            if let Some(outcome) = run.outcome.lock().expect("outcome lock").take() {
                run.ended = Some(Arc::new(outcome));
            } else if run.task.is_finished() {
                // The task ended without an outcome: it panicked.
                let error = match (&mut run.task).now_or_never() {
                    Some(Err(error)) => error.to_string(),
                    _ => "no outcome".to_string(),
                };
                run.ended = Some(Arc::new(Outcome::crashed(run.id.clone(), &error)));
            } else {
                return Poll::Running {
                    id: run.id.clone(),
                    bytes: run.progress.bytes(),
                };
            }
        }
        let outcome = run.ended.clone().expect("set above");
        if recorded.is_some_and(|r| r.id == outcome.id && r.result != RunResult::Running) {
            runs.remove(key);
            return Poll::Idle;
        }
        let first = !std::mem::replace(&mut run.counted, true);
        Poll::Finished { outcome, first }
    }

    /// A stream that yields whenever a run finishes, so the controller reconciles at once
    /// instead of at the next progress poll.
    pub fn finished_runs(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.finished.clone(), |notify| async move {
            notify.notified().await;
            Some(((), notify))
        })
    }

    fn start(&self, key: Key, run: Running) {
        self.runs.lock().expect("backup runs lock").insert(key, run);
    }

    /// Stops every run (shutdown, lost lease). Their records stay `Running` in status, and the
    /// next leader reports them failed and cleans up.
    pub fn abort_all(&self) {
        for (_, run) in self.runs.lock().expect("backup runs lock").drain() {
            tracing::warn!(backup = %run.id, "stopping a backup run: the controller is shutting down");
            run.task.abort();
        }
    }
}

/// What a finished run reports.
struct Outcome {
    id: String,
    /// What started the run; recorded with the outcome too, so a lost write of the `Running`
    /// record does not make the same request or slot run a second time.
    trigger: Option<Trigger>,
    finished: Timestamp,
    elapsed: Duration,
    result: Result<Success, Failure>,
    /// Restore points after the run and retention (`None` when the repository could not be
    /// listed).
    points: Option<Vec<PointSummary>>,
    retention: Option<Result<RetentionReport, String>>,
}

struct Success {
    manifest: Manifest,
    /// ConfigMaps and Secrets archived (unknown when recorded from a manifest alone).
    config_objects: Option<u64>,
}

struct Failure {
    label: &'static str,
    message: String,
}

struct PointSummary {
    id: String,
    time: Timestamp,
    bytes: u64,
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
    fn crashed(id: String, error: &str) -> Self {
        Outcome {
            id,
            trigger: None,
            finished: Timestamp::now(),
            elapsed: Duration::ZERO,
            result: Err(Failure {
                label: "internal",
                message: format!("the backup task stopped unexpectedly: {error}"),
            }),
            points: None,
            retention: None,
        }
    }
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        Failure {
            label: "setup",
            message: e.0,
        }
    }
}

impl From<tend_backup::Error> for Failure {
    fn from(e: tend_backup::Error) -> Self {
        Failure {
            label: e.metric_label(),
            message: e.to_string(),
        }
    }
}

/// Everything a run needs, owned, so it can go to a task.
struct RunPlan {
    client: Client,
    namespace: String,
    policy: String,
    spec: BackupPolicySpec,
    id: String,
    trigger: Trigger,
    started: Timestamp,
    verified: HashSet<String>,
    tools: PostgresTools,
    clock: Clock,
}

/// The BackupPolicy's own reconcile step.
pub async fn operate(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
) -> Verdict {
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let key = (namespace.clone(), name.clone());
    let labels = PolicyLabels {
        namespace: namespace.clone(),
        policy: name.clone(),
    };
    let mut notes = Vec::new();

    match ctx.backups.poll(&key, status.last_backup.as_ref()) {
        Poll::Running { id, bytes } => {
            if let Some(run) = status.last_backup.as_mut().filter(|r| r.id == id) {
                run.bytes = bytes;
            }
            update_rpo(policy, ctx, status, now, &labels, &mut notes);
            drill::reconcile(policy, ctx, status, now, &mut notes).await;
            let mut verdict = running_verdict(status, &id, bytes);
            verdict.requeue_after = Some(PROGRESS_INTERVAL);
            verdict.notes = notes;
            return verdict;
        }
        Poll::Finished { outcome, first } => {
            record_outcome(ctx, status, &outcome, &labels, &mut notes, first);
        }
        Poll::Idle => {
            if let Some(run) = status
                .last_backup
                .as_ref()
                .filter(|r| r.result == RunResult::Running)
            {
                let id = run.id.clone();
                if let Err(stale) = confirm_current(policy, ctx).await {
                    return stale;
                }
                interrupted(policy, ctx, status, &id, now, &labels, &mut notes).await;
            } else if status.last_backup.is_none() && status.restore_points.is_empty() {
                // A new policy over an existing repository (a rebuilt cluster): show what can
                // be restored before the first backup runs.
                discover_restore_points(policy, ctx, status, &labels).await;
            }
        }
    }

    // Validation parsed both already; a failure here would be a bug, reported as such.
    let schedule = Schedule::parse(policy.spec.schedule.as_str());
    let zone = jiff::tz::TimeZone::get(policy.spec.time_zone.as_str());
    let (Ok(schedule), Ok(zone)) = (schedule, zone) else {
        return Verdict::new(
            false,
            reasons::INVALID_SPEC,
            "spec.schedule or spec.timeZone cannot be read",
        );
    };
    let starting_deadline = policy
        .spec
        .starting_deadline
        .parse()
        .unwrap_or(Duration::from_secs(3600));
    let created = policy
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let requested = policy
        .annotations()
        .get(BACKUP_NOW_ANNOTATION)
        .map(String::as_str);
    let state = ScheduleState {
        schedule: &schedule,
        time_zone: &zone,
        suspend: policy.spec.suspend,
        starting_deadline,
        last_schedule_time: status.last_schedule_time.as_ref().map(|t| t.0),
        created,
        requested,
        last_handled_request: status.last_manual_request.as_deref(),
    };
    let deleting = policy.metadata.deletion_timestamp.is_some();
    let mut decision = decide(&state, now);
    if deleting {
        // Being deleted (e.g. a foreground prune waiting for the drill requests it owns):
        // start nothing new.
        decision.run = None;
        decision.next = None;
    }
    status.next_schedule_time = decision.next.map(Time);
    if let Some(missed) = decision.missed {
        status.last_schedule_time = Some(Time(missed));
        notes.push(Note::warning(
            br::MISSED_SCHEDULE,
            "Schedule",
            format!(
                "the run due at {missed} was missed by more than the starting deadline ({}); skipped",
                policy.spec.starting_deadline.as_str()
            ),
        ));
    }
    let mut started = None;
    if let Some(trigger) = decision.run {
        // A run is started only from the API server's current copy: a lagging watch may still
        // hand over a policy that is being deleted, or one whose last run is not visible yet.
        if let Err(stale) = confirm_current(policy, ctx).await {
            return stale;
        }
        match &trigger {
            Trigger::Schedule { due } => status.last_schedule_time = Some(Time(*due)),
            Trigger::Manual { request } => status.last_manual_request = Some(request.clone()),
        }
        started = Some(start_run(
            policy, ctx, status, &trigger, now, &key, &mut notes,
        ));
    }

    update_rpo(policy, ctx, status, now, &labels, &mut notes);
    let until_drill = drill::reconcile(policy, ctx, status, now, &mut notes).await;

    let mut verdict = match &started {
        Some(id) => running_verdict(status, id, 0),
        None if deleting => Verdict::new(
            false,
            reasons::DELETING,
            "the policy is being deleted; no new backups or drills start",
        ),
        None => settled_verdict(policy, status),
    };
    verdict.requeue_after = if started.is_some() {
        Some(PROGRESS_INTERVAL)
    } else {
        let until_next = decision
            .next
            .and_then(|next| Duration::try_from(next.duration_since(now)).ok());
        let until_breach = rpo_breach_in(policy, status, now);
        [until_next, until_breach, until_drill]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d.max(Duration::from_secs(1)))
    };
    verdict.notes = notes;
    verdict
}

/// Ready while a run goes keeps what the last finished run said.
fn running_verdict(status: &BackupPolicyStatus, id: &str, bytes: u64) -> Verdict {
    let ready = find_condition(&status.conditions, types::READY);
    let (is_ready, reason) = match ready.map(|c| (c.status.as_str(), c.reason.as_str())) {
        Some(("False", br::FAILED)) => (false, br::FAILED),
        Some(("True", br::SUCCEEDED)) => (true, br::SUCCEEDED),
        _ => (true, br::RUNNING),
    };
    let message = match ready {
        Some(c) if reason != br::RUNNING => c.message.clone(),
        _ => format!("backup {id} is running; {bytes} bytes stored so far"),
    };
    Verdict::new(is_ready, reason, message)
}

fn settled_verdict(policy: &BackupPolicy, status: &BackupPolicyStatus) -> Verdict {
    if policy.spec.suspend {
        // Flux's convention: suspended is a settled state, Ready=True with reason Suspended.
        return Verdict::new(
            true,
            reasons::SUSPENDED,
            "scheduled backups are suspended (spec.suspend); on-demand backups and drills still run",
        );
    }
    let next = status.next_schedule_time.as_ref().map_or_else(
        || "never (the schedule does not fire in the next five years)".to_string(),
        |t| t.0.to_string(),
    );
    match &status.last_backup {
        None => Verdict::new(
            true,
            reasons::VALID,
            format!("no backup has run yet; the next is due at {next}"),
        ),
        Some(run) if run.result == RunResult::Failed => Verdict::new(
            false,
            br::FAILED,
            format!(
                "backup {} failed: {}",
                run.id,
                run.message.as_deref().unwrap_or("no reason recorded")
            ),
        ),
        Some(run) => Verdict::new(
            true,
            br::SUCCEEDED,
            format!(
                "backup {} succeeded; {} restore points; the next is due at {next}",
                run.id,
                status.restore_points.len()
            ),
        ),
    }
}

fn start_run(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    trigger: &Trigger,
    now: Timestamp,
    key: &Key,
    notes: &mut Vec<Note>,
) -> String {
    let id = tend_backup::manifest::new_backup_id(now);
    let progress = Progress::default();
    let plan = RunPlan {
        client: ctx.client.clone(),
        namespace: key.0.clone(),
        policy: key.1.clone(),
        spec: policy.spec.clone(),
        id: id.clone(),
        trigger: trigger.clone(),
        started: now,
        verified: status
            .restore_points
            .iter()
            .filter(|p| p.verified)
            .map(|p| p.id.clone())
            .collect(),
        tools: ctx.backup_settings.postgres_tools.clone(),
        clock: ctx.clock.clone(),
    };
    let outcome = Arc::new(Mutex::new(None));
    let task = {
        let outcome = outcome.clone();
        let finished = ctx.backups.finished.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let result = execute(plan, progress).await;
            *outcome.lock().expect("outcome lock") = Some(result);
            finished.notify_one();
        })
    };
    ctx.backups.start(
        key.clone(),
        Running {
            id: id.clone(),
            progress,
            outcome,
            task,
            ended: None,
            counted: false,
        },
    );
    ctx.metrics
        .backup
        .running
        .get_or_create(&PolicyLabels {
            namespace: key.0.clone(),
            policy: key.1.clone(),
        })
        .set(1);
    let why = match trigger {
        Trigger::Schedule { due } => format!("scheduled for {due}"),
        Trigger::Manual { request } => format!("requested by {BACKUP_NOW_ANNOTATION}={request}"),
    };
    tracing::info!(namespace = %key.0, policy = %key.1, backup = %id, trigger = trigger.label(), "backup started");
    notes.push(Note::normal(
        br::STARTED,
        "Backup",
        format!("backup {id} started ({why})"),
    ));
    status.last_backup = Some(BackupRun {
        id: id.clone(),
        result: RunResult::Running,
        trigger: Some(trigger.label().to_string()),
        start_time: Time(now),
        completion_time: None,
        bytes: 0,
        components: Vec::new(),
        message: None,
    });
    id
}

/// The run itself, in a task: prepare the sources, back up, list restore points, apply
/// retention.
async fn execute(plan: RunPlan, progress: Progress) -> Outcome {
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
                result: Err(e.into()),
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
    progress: Progress,
) -> Result<Success, Failure> {
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
    job.progress = progress;
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
        time_zone: jiff::tz::TimeZone::get(spec.time_zone.as_str())
            .unwrap_or(jiff::tz::TimeZone::UTC),
    }
}

fn component_results(success: &Success) -> Vec<ComponentResult> {
    let manifest = &success.manifest;
    let mut results = Vec::new();
    for part in &manifest.parts {
        let component = match part.component.as_str() {
            "database" => Component::Database,
            "config" => Component::Config,
            _ => continue,
        };
        let objects = match component {
            Component::Database => manifest
                .database
                .as_ref()
                .filter(|d| !d.row_counts.is_empty())
                .map(|d| d.row_counts.len() as u64),
            _ => success.config_objects,
        };
        let message = match component {
            Component::Database => manifest.database.as_ref().map(|d| {
                let what = match d.engine.as_str() {
                    // For SQLite the manifest keeps the snapshot's name in `server_version`.
                    "sqlite" => format!(
                        "sqlite snapshot {:?}",
                        d.server_version.as_deref().unwrap_or("app")
                    ),
                    engine => format!(
                        "{engine} {}; {} tables counted",
                        d.server_version.as_deref().unwrap_or("(version unknown)"),
                        d.row_counts.len()
                    ),
                };
                format!("{what}; {} bytes before compression", part.source_bytes)
            }),
            _ => None,
        };
        results.push(ComponentResult {
            component,
            result: "Succeeded".into(),
            bytes: part.stored_bytes,
            objects,
            objects_skipped: None,
            message,
        });
    }
    if let Some(objects) = &manifest.objects {
        results.push(ComponentResult {
            component: Component::Objects,
            result: "Succeeded".into(),
            bytes: objects.uploaded_bytes,
            objects: Some(objects.count),
            objects_skipped: Some(objects.count.saturating_sub(objects.uploaded)),
            message: Some(format!(
                "{} objects ({} bytes); {} new blobs stored, {} read",
                objects.count, objects.bytes, objects.uploaded, objects.read
            )),
        });
    }
    results
}

/// Writes a finished run into status (and, the first time, into the metrics).
fn record_outcome(
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    outcome: &Outcome,
    labels: &PolicyLabels,
    notes: &mut Vec<Note>,
    first: bool,
) {
    let metrics = &ctx.metrics.backup;
    metrics.running.get_or_create(labels).set(0);
    if first {
        metrics
            .duration
            .get_or_create(labels)
            .observe(outcome.elapsed.as_secs_f64());
    }
    match &outcome.trigger {
        Some(Trigger::Schedule { due })
            if status
                .last_schedule_time
                .as_ref()
                .is_none_or(|t| t.0 < *due) =>
        {
            status.last_schedule_time = Some(Time(*due));
        }
        Some(Trigger::Manual { request }) => status.last_manual_request = Some(request.clone()),
        _ => {}
    }
    let previous = status.last_backup.take().filter(|r| r.id == outcome.id);
    let start_time = previous
        .as_ref()
        .map_or_else(|| Time(outcome.finished), |r| r.start_time.clone());
    let trigger = previous
        .and_then(|r| r.trigger)
        .or_else(|| outcome.trigger.as_ref().map(|t| t.label().to_string()));
    let run = match &outcome.result {
        Ok(success) => {
            let components = component_results(success);
            for c in components.iter().filter(|_| first) {
                let component = match c.component {
                    Component::Database => "database",
                    Component::Objects => "objects",
                    _ => "config",
                };
                metrics
                    .bytes
                    .get_or_create(&ComponentLabels {
                        namespace: labels.namespace.clone(),
                        policy: labels.policy.clone(),
                        component,
                    })
                    .inc_by(c.bytes);
            }
            if let Some(objects) = success.manifest.objects.as_ref().filter(|_| first) {
                metrics
                    .objects_uploaded
                    .get_or_create(labels)
                    .inc_by(objects.uploaded);
                metrics
                    .objects_skipped
                    .get_or_create(labels)
                    .inc_by(objects.count.saturating_sub(objects.uploaded));
            }
            metrics
                .last_success
                .get_or_create(labels)
                .set(outcome.finished.as_second());
            let bytes = success.manifest.stored_bytes();
            notes.push(Note::normal(
                br::SUCCEEDED,
                "Backup",
                format!(
                    "backup {} succeeded: {bytes} bytes stored in {}",
                    outcome.id,
                    format_duration(outcome.elapsed)
                ),
            ));
            BackupRun {
                id: outcome.id.clone(),
                result: RunResult::Succeeded,
                trigger,
                start_time,
                completion_time: Some(Time(outcome.finished)),
                bytes,
                components,
                message: None,
            }
        }
        Err(failure) => {
            if first {
                metrics
                    .failures
                    .get_or_create(&FailureLabels {
                        namespace: labels.namespace.clone(),
                        policy: labels.policy.clone(),
                        reason: failure.label,
                    })
                    .inc();
            }
            tracing::warn!(namespace = %labels.namespace, policy = %labels.policy, backup = %outcome.id, reason = failure.label, message = %failure.message, "backup failed");
            notes.push(Note::warning(
                br::FAILED,
                "Backup",
                format!("backup {} failed: {}", outcome.id, failure.message),
            ));
            BackupRun {
                id: outcome.id.clone(),
                result: RunResult::Failed,
                trigger,
                start_time,
                completion_time: Some(Time(outcome.finished)),
                bytes: 0,
                components: Vec::new(),
                message: Some(failure.message.clone()),
            }
        }
    };
    if run.result == RunResult::Succeeded {
        status.last_successful_backup = Some(run.clone());
    }
    status.last_backup = Some(run);
    if let Some(points) = &outcome.points {
        set_restore_points(status, points);
    }
    match &outcome.retention {
        Some(Ok(report)) => {
            status.last_retention = Some(RetentionResult {
                time: Time(outcome.finished),
                deleted: report
                    .plan
                    .deleted
                    .iter()
                    .chain(&report.incomplete_removed)
                    .take(100)
                    .cloned()
                    .collect(),
                kept: report
                    .plan
                    .kept
                    .iter()
                    .take(200)
                    .map(|k| KeptBackup {
                        id: k.id.clone(),
                        reasons: k.reasons.iter().map(|r| r.as_str().to_string()).collect(),
                    })
                    .collect(),
                blobs_deleted: report.blobs_deleted,
                uploads_aborted: report.uploads_aborted,
            });
        }
        Some(Err(message)) => notes.push(Note::warning(
            br::RETENTION_FAILED,
            "Retention",
            format!("retention after backup {} failed: {message}", outcome.id),
        )),
        None => {}
    }
}

fn set_restore_points(status: &mut BackupPolicyStatus, points: &[PointSummary]) {
    let verified: HashSet<&str> = status
        .restore_points
        .iter()
        .filter(|p| p.verified)
        .map(|p| p.id.as_str())
        .collect();
    let list = points
        .iter()
        .take(STATUS_RESTORE_POINTS)
        .map(|p| RestorePoint {
            id: p.id.clone(),
            time: Time(p.time),
            bytes: p.bytes,
            verified: verified.contains(p.id.as_str()),
        })
        .collect();
    status.restore_points = list;
}

/// Lists the repository's restore points into status (no run needed). Failures are only
/// logged: the first backup reports an unusable repository properly.
async fn discover_restore_points(
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
async fn interrupted(
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
                record_outcome(ctx, status, &outcome, labels, notes, true);
                return;
            }
            Ok(Uncommitted::Removed { .. }) => abort_uploads(repo.as_ref(), &location)
                .await
                .map(|n| format!("its partial data was removed ({n} pending uploads aborted)")),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.0),
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

/// Age of the newest restore point, `currentRpo`, and the `RPOMet` condition.
fn update_rpo(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    labels: &PolicyLabels,
    notes: &mut Vec<Note>,
) {
    let newest = newest_point(status);
    let age = newest.map(|t| Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO));
    status.current_rpo = age.map(format_duration);
    if let Some(age) = age {
        ctx.metrics
            .backup
            .rpo_seconds
            .get_or_create(labels)
            .set(age.as_secs() as i64);
    }
    let Some(objective) = policy.spec.objectives.as_ref().and_then(|o| o.rpo.as_ref()) else {
        tend_crds::conditions::remove_condition(&mut status.conditions, types::RPO_MET);
        return;
    };
    let Ok(limit) = objective.parse() else {
        return;
    };
    let generation = policy.metadata.generation;
    let previous = find_condition(&status.conditions, types::RPO_MET).map(|c| c.status.clone());
    let new = match age {
        None => {
            let mut c = condition(
                types::RPO_MET,
                false,
                br::NO_RESTORE_POINT,
                format!("no restore point yet; objective {}", objective.as_str()),
                generation,
                now,
            );
            c.status = "Unknown".into();
            c
        }
        Some(age) if age <= limit => condition(
            types::RPO_MET,
            true,
            br::RPO_MET,
            format!(
                "the newest restore point is {} old; objective {}",
                format_duration(age),
                objective.as_str()
            ),
            generation,
            now,
        ),
        Some(age) => condition(
            types::RPO_MET,
            false,
            br::RPO_BREACHED,
            format!(
                "the newest restore point is {} old, more than the objective {}",
                format_duration(age),
                objective.as_str()
            ),
            generation,
            now,
        ),
    };
    if previous.as_deref() != Some(new.status.as_str()) && new.status != "Unknown" {
        let note = if new.status == "True" {
            Note::normal(br::RPO_MET, "Objectives", new.message.clone())
        } else {
            Note::warning(br::RPO_BREACHED, "Objectives", new.message.clone())
        };
        notes.push(note);
    }
    set_condition(&mut status.conditions, new);
}

fn newest_point(status: &BackupPolicyStatus) -> Option<Timestamp> {
    status
        .restore_points
        .iter()
        .map(|p| p.time.0)
        .chain(
            status
                .last_successful_backup
                .as_ref()
                .map(|r| r.start_time.0),
        )
        .max()
}

/// Time until the RPO objective would be breached, to look again then.
fn rpo_breach_in(
    policy: &BackupPolicy,
    status: &BackupPolicyStatus,
    now: Timestamp,
) -> Option<Duration> {
    let limit: Duration = policy
        .spec
        .objectives
        .as_ref()?
        .rpo
        .as_ref()?
        .parse()
        .ok()?;
    let newest = newest_point(status)?;
    let age = Duration::try_from(now.duration_since(newest)).ok()?;
    limit.checked_sub(age).map(|d| d + Duration::from_secs(1))
}
