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

mod drill;
mod objectives;
mod recovery;
mod report;
mod run;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tend_backup::{PostgresTools, Progress};
use tend_crds::backup_policy::reasons as br;
use tend_crds::backup_policy::{
    BackupPolicy, BackupPolicySpec, BackupPolicyStatus, BackupRun, RunResult,
};
use tend_crds::conditions::reasons;
use tend_crds::cron::Schedule;

use crate::context::Context;
use crate::metrics::PolicyLabels;
use crate::reconcile::{Note, TendKind, Verdict, confirm_current, status_access};
use crate::schedule::{ScheduleState, Trigger, decide};
use crate::tasks::{Key, Task, TaskPoll, Tasks};
use run::{Outcome, RunPlan};

/// The annotation whose new value requests a backup now (`kubectl annotate bp x
/// tend.dev/backup-now=$(date +%s)`, or a commit that changes it).
pub use tend_crds::labels::BACKUP_NOW as BACKUP_NOW_ANNOTATION;

/// How often a running backup's progress is written to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);

/// Settings of the backup engine that come from the controller's command line.
#[derive(Clone, Debug, Default)]
pub struct BackupSettings {
    /// Where `pg_dump` of each major version is looked for.
    pub postgres_tools: PostgresTools,
}

/// What BackupPolicy keeps in this process: the engine settings and the runs in progress.
#[derive(Default)]
pub struct BackupState {
    pub settings: BackupSettings,
    runs: Tasks<RunEntry>,
}

impl BackupState {
    pub fn new(settings: BackupSettings) -> Self {
        Self {
            settings,
            runs: Tasks::default(),
        }
    }

    /// Yields whenever a run ends, so its policy is reconciled at once.
    pub fn finished_runs(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        self.runs.finished_runs()
    }

    /// Stops every run (shutdown, lost lease). Their records stay `Running` in status, and the
    /// next leader settles them from the repository.
    pub fn abort_all(&self) {
        for ((namespace, policy), run) in self.runs.drain() {
            tracing::warn!(%namespace, %policy, backup = %run.id, "stopping a backup run: the controller is shutting down");
            run.task.abort();
        }
    }

    /// The run of `key`, given what the object's status records (`recorded`, its
    /// `lastBackup`). A finished run's outcome is handed out until `recorded` shows it.
    fn poll(&self, key: &Key, recorded: Option<&BackupRun>) -> Poll {
        let mut runs = self.runs.entries();
        let Some(run) = runs.get_mut(key) else {
            return Poll::Idle;
        };
        let id = &run.id;
        match run.task.poll(|error| Outcome::crashed(id.clone(), &error)) {
            TaskPoll::Running => Poll::Running {
                id: run.id.clone(),
                bytes: run.task.shared.bytes(),
            },
            TaskPoll::Finished { outcome, .. }
                if recorded
                    .is_some_and(|r| r.id == outcome.id && r.result != RunResult::Running) =>
            {
                runs.remove(key);
                Poll::Idle
            }
            TaskPoll::Finished { outcome, first } => Poll::Finished { outcome, first },
        }
    }
}

/// One backup run of a policy.
struct RunEntry {
    id: String,
    task: Task<Progress, Outcome>,
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

impl TendKind for BackupPolicy {
    status_access!(
        BackupPolicy,
        BackupPolicySpec,
        BackupPolicyStatus,
        "BackupPolicy"
    );
    type State = BackupState;

    async fn operate(
        &self,
        ctx: &Context,
        state: &BackupState,
        status: &mut BackupPolicyStatus,
        now: Timestamp,
    ) -> Verdict {
        operate(self, ctx, state, status, now).await
    }
}

/// The BackupPolicy's own reconcile step.
async fn operate(
    policy: &BackupPolicy,
    ctx: &Context,
    state: &BackupState,
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

    match state.poll(&key, status.last_backup.as_ref()) {
        Poll::Running { id, bytes } => {
            if let Some(run) = status.last_backup.as_mut().filter(|r| r.id == id) {
                run.bytes = bytes;
            }
            update_rpo(policy, ctx, status, now, &labels, &mut notes);
            drill::reconcile(policy, ctx, status, now, &mut notes).await;
            let mut verdict = report::running_verdict(status, &id, bytes);
            verdict.requeue_after = Some(PROGRESS_INTERVAL);
            verdict.notes = notes;
            return verdict;
        }
        Poll::Finished { outcome, first } => {
            report::record_outcome(&ctx.metrics, status, &outcome, &labels, &mut notes, first);
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
                recovery::interrupted(policy, ctx, status, &id, now, &labels, &mut notes).await;
            } else if status.last_backup.is_none() && status.restore_points.is_empty() {
                // A new policy over an existing repository (a rebuilt cluster): show what can
                // be restored before the first backup runs.
                recovery::discover_restore_points(policy, ctx, status, &labels).await;
            }
        }
    }

    // Validation parsed both already; a failure here would be a bug, reported as such.
    let schedule = Schedule::parse(policy.spec.schedule.as_str());
    let zone = policy.spec.time_zone.resolve();
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
    let schedule_state = ScheduleState {
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
    let mut decision = decide(&schedule_state, now);
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
            policy, ctx, state, status, &trigger, now, &key, &mut notes,
        ));
    }

    update_rpo(policy, ctx, status, now, &labels, &mut notes);
    let until_drill = drill::reconcile(policy, ctx, status, now, &mut notes).await;

    let mut verdict = match &started {
        Some(id) => report::running_verdict(status, id, 0),
        None if deleting => Verdict::new(
            false,
            reasons::DELETING,
            "the policy is being deleted; no new backups or drills start",
        ),
        None => report::settled_verdict(policy, status),
    };
    verdict.requeue_after = if started.is_some() {
        Some(PROGRESS_INTERVAL)
    } else {
        let until_next = decision
            .next
            .and_then(|next| Duration::try_from(next.duration_since(now)).ok());
        let until_breach = objectives::rpo_breach_in(policy, status, now);
        [until_next, until_breach, until_drill]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d.max(Duration::from_secs(1)))
    };
    verdict.notes = notes;
    verdict
}

/// Starts a run in a task and records it `Running`; returns its id.
#[allow(clippy::too_many_arguments)]
fn start_run(
    policy: &BackupPolicy,
    ctx: &Context,
    state: &BackupState,
    status: &mut BackupPolicyStatus,
    trigger: &Trigger,
    now: Timestamp,
    key: &Key,
    notes: &mut Vec<Note>,
) -> String {
    let id = tend_backup::manifest::new_backup_id(now);
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
        tools: state.settings.postgres_tools.clone(),
        clock: ctx.clock.clone(),
    };
    let task = Task::spawn(
        Arc::new(Progress::default()),
        state.runs.notifier(),
        |progress| {
            let span = tracing::info_span!("backup", namespace = %plan.namespace, policy = %plan.policy, backup = %plan.id);
            tracing::Instrument::instrument(run::execute(plan, progress), span)
        },
    );
    state.runs.entries().insert(
        key.clone(),
        RunEntry {
            id: id.clone(),
            task,
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

/// The RPO in status and conditions, and its gauge.
fn update_rpo(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    labels: &PolicyLabels,
    notes: &mut Vec<Note>,
) {
    if let Some(age) = objectives::update_rpo(policy, status, now, notes) {
        ctx.metrics
            .backup
            .rpo_seconds
            .get_or_create(labels)
            .set(age.as_secs() as i64);
    }
}

/// The example policy of `examples/`, as a user would apply it.
#[cfg(test)]
fn example_policy() -> BackupPolicy {
    serde_yaml::from_str(include_str!("../../../examples/backuppolicy.yaml"))
        .expect("the example parses")
}
