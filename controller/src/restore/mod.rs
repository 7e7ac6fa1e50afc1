//! The RestoreRequest reconciler: a one-shot restore of a backup into a scratch target or in
//! place, verified by checks, that runs exactly once.
//!
//! Exactly once: the first reconcile only *claims* the request — it writes `phase: Running`
//! and `startTime` to status and remembers the claim in this process. The restore task starts
//! on a later reconcile that sees `Running` in the object itself, so the record of the start is
//! durable before anything is touched. A `Running` (or `Verifying`) request that this process
//! has neither claimed nor runs was interrupted (crash, restart, leader change): it is ended as
//! `Failed`, its scratch target removed and maintenance mode turned off — but only after the
//! object has been read again from the API server, since a lagging watch can hand over a copy
//! that still says `Running` after the outcome was written. A finished restore's outcome stays
//! in memory until the object shows it recorded, so a lost status write is written again. A
//! finished request is never looked at again; re-applying it (a GitOps re-sync) changes
//! nothing. A request deleted while it runs has its restore stopped and cleaned up as an
//! interrupted one, so later requests of the policy are not kept waiting.

mod checks;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};
use tend_backup::Progress;
use tend_crds::conditions::reasons;
use tend_crds::restore_request::{
    CheckResult, ChosenRestorePoint, ComponentResult, RestoreMode, RestorePhase, RestoreRequest,
    RestoreRequestStatus,
};
use tend_crds::types::format_duration;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::metrics::{PolicyLabels, RestoreLabels};
use crate::reconcile::{Note, Verdict, confirm_current};

pub use task::{DRILL_OF_LABEL, scratch_database_name, scratch_dir_name};

/// Event reasons of restores (also used as condition reasons).
pub mod restore_reasons {
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
use restore_reasons as rr;

/// How often a running restore's phase and progress are written to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);

type Key = (String, String);

/// What a running task shares with the reconciler.
#[derive(Default)]
struct Shared {
    phase: Mutex<Option<RestorePhase>>,
    progress: Progress,
    /// Events the task asks for (maintenance on/off), published by the next reconcile.
    notes: Mutex<Vec<Note>>,
    outcome: Mutex<Option<Outcome>>,
}

enum Entry {
    /// `Running` was written to status (at `started`); the task starts once the object shows it.
    Claimed { started: Timestamp },
    Running {
        shared: Arc<Shared>,
        task: JoinHandle<()>,
        /// The outcome once the task ended; kept until the object shows it recorded.
        ended: Option<Outcome>,
        /// The outcome's metrics were counted.
        counted: bool,
    },
}

/// One request claimed or running in this process.
struct Run {
    policy: String,
    /// The request as it was claimed: its uid tells a deleted and re-created request apart,
    /// and a deleted one is cleaned up from it.
    request: Arc<RestoreRequest>,
    entry: Entry,
}

/// Restores claimed or running in this process.
#[derive(Default)]
pub struct RestoreRuns {
    runs: Arc<Mutex<HashMap<Key, Run>>>,
    finished: Arc<tokio::sync::Notify>,
    /// Notified too when a restore ends, for the BackupPolicy controller (drills).
    finished_for_policies: Arc<tokio::sync::Notify>,
}

enum Poll {
    Idle,
    Claimed {
        started: Timestamp,
    },
    Running {
        phase: RestorePhase,
        bytes: u64,
        notes: Vec<Note>,
    },
    /// The restore ended; `first` is true the first time this outcome is handed out.
    Finished {
        outcome: Box<Outcome>,
        notes: Vec<Note>,
        first: bool,
    },
}

impl RestoreRuns {
    /// The restore of `request` in this process (its entry must belong to this uid).
    fn poll(&self, key: &Key, uid: Option<&str>) -> Poll {
        let mut runs = self.runs.lock().expect("restore runs lock");
        let Some(run) = runs.get_mut(key) else {
            return Poll::Idle;
        };
        if run.request.uid().as_deref() != uid {
            // A request of the same name was deleted and created again: the entry is the old
            // one's, cleaned up when another request of the policy asks (see `blocking`).
            return Poll::Idle;
        }
        let (shared, task, ended, counted) = match &mut run.entry {
            Entry::Claimed { started } => return Poll::Claimed { started: *started },
            Entry::Running {
                shared,
                task,
                ended,
                counted,
            } => (shared, task, ended, counted),
        };
        let notes = std::mem::take(&mut *shared.notes.lock().expect("notes lock"));
        if ended.is_none() {
            if let Some(outcome) = shared.outcome.lock().expect("outcome lock").take() {
                *ended = Some(outcome);
            } else if task.is_finished() {
                let error = match task.now_or_never() {
                    Some(Err(error)) => error.to_string(),
                    _ => "no outcome".to_string(),
                };
                *ended = Some(Outcome::failed(
                    Timestamp::now(),
                    format!("the restore task crashed: {error}"),
                ));
            } else {
                return Poll::Running {
                    phase: shared
                        .phase
                        .lock()
                        .expect("phase lock")
                        .unwrap_or(RestorePhase::Running),
                    bytes: shared.progress.bytes(),
                    notes,
                };
            }
        }
        let first = !std::mem::replace(counted, true);
        Poll::Finished {
            outcome: Box::new(ended.clone().expect("set above")),
            notes,
            first,
        }
    }

    /// The object shows the request finished: nothing of it is needed in memory any more.
    fn forget(&self, key: &Key) {
        self.runs.lock().expect("restore runs lock").remove(key);
    }

    fn claim(&self, key: Key, request: &RestoreRequest, started: Timestamp) {
        self.runs.lock().expect("restore runs lock").insert(
            key,
            Run {
                policy: request.spec.policy_ref.name.clone(),
                request: Arc::new(request.clone()),
                entry: Entry::Claimed { started },
            },
        );
    }

    /// Other requests of the same policy claimed or running in this process.
    fn others(&self, key: &Key, policy: &str) -> Vec<(Key, Arc<RestoreRequest>)> {
        self.runs
            .lock()
            .expect("restore runs lock")
            .iter()
            .filter(|((ns, name), run)| ns == &key.0 && run.policy == policy && name != &key.1)
            .map(|(k, run)| (k.clone(), run.request.clone()))
            .collect()
    }

    /// The request of `key` (with `uid`) was deleted: removes its entry and stops its task —
    /// except an in-place restore still writing, which is left to finish (stopping it half way
    /// would leave the app half restored) and removes itself at its end. Returns whether the
    /// entry was removed.
    fn abandon(&self, key: &Key, uid: Option<&str>) -> bool {
        let mut runs = self.runs.lock().expect("restore runs lock");
        let Some(run) = runs.get(key) else {
            return false;
        };
        if run.request.uid().as_deref() != uid {
            return false;
        }
        if let Entry::Running { task, .. } = &run.entry
            && !task.is_finished()
            && run.request.spec.target.mode == RestoreMode::InPlace
        {
            return false;
        }
        if let Some(Run {
            entry: Entry::Running { task, .. },
            ..
        }) = runs.remove(key)
        {
            task.abort();
        }
        true
    }

    fn start(&self, key: Key, shared: Arc<Shared>, task: JoinHandle<()>) {
        if let Some(run) = self.runs.lock().expect("restore runs lock").get_mut(&key) {
            run.entry = Entry::Running {
                shared,
                task,
                ended: None,
                counted: false,
            };
        }
    }

    /// A stream that yields whenever a restore finishes, so its request (and the policy whose
    /// drill it is) is reconciled at once.
    pub fn finished_runs(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        notified(self.finished.clone())
    }

    /// The same for the BackupPolicy controller: a drill's request finished.
    pub fn finished_runs_for_policies(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        notified(self.finished_for_policies.clone())
    }

    /// Stops every restore (shutdown, lost lease). Their requests stay `Running` in status, and
    /// the next leader ends them as failed and cleans up.
    pub fn abort_all(&self) {
        for ((ns, name), run) in self.runs.lock().expect("restore runs lock").drain() {
            if let Entry::Running { task, .. } = run.entry {
                tracing::warn!(namespace = %ns, request = %name, "stopping a restore: the controller is shutting down");
                task.abort();
            }
        }
    }
}

fn notified(notify: Arc<tokio::sync::Notify>) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(notify, |notify| async move {
        notify.notified().await;
        Some(((), notify))
    })
}

/// What a finished restore reports.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    point: Option<ChosenRestorePoint>,
    components: Vec<ComponentResult>,
    checks: Vec<CheckResult>,
    /// When every check had passed; `None` if the restore failed.
    verified: Option<Timestamp>,
    finished: Option<Timestamp>,
    error: Option<String>,
    scratch_removed: Vec<String>,
    /// Nothing of the scratch target is left (removed, or never created).
    scratch_gone: bool,
}

impl Outcome {
    fn failed(at: Timestamp, error: String) -> Self {
        Self {
            finished: Some(at),
            error: Some(error),
            ..Self::default()
        }
    }
}

fn key_of(request: &RestoreRequest) -> Key {
    (request.namespace().unwrap_or_default(), request.name_any())
}

pub async fn operate(
    request: &RestoreRequest,
    ctx: &Context,
    status: &mut RestoreRequestStatus,
    now: Timestamp,
) -> Verdict {
    let key = key_of(request);
    let policy = request.spec.policy_ref.name.clone();
    if let Some(phase) = status.phase.filter(|p| p.is_finished()) {
        // A finished request never runs again; it stays as the record of what happened.
        ctx.restores.forget(&key);
        return finished_verdict(phase, status);
    }
    match ctx.restores.poll(&key, request.uid().as_deref()) {
        Poll::Finished {
            outcome,
            mut notes,
            first,
        } => {
            record_outcome(request, ctx, status, *outcome, now, &mut notes, first);
            let phase = status.phase.unwrap_or(RestorePhase::Failed);
            let mut verdict = finished_verdict(phase, status);
            verdict.notes = notes;
            verdict
        }
        Poll::Running {
            phase,
            bytes,
            mut notes,
        } => {
            if status.phase != Some(phase) && phase == RestorePhase::Verifying {
                notes.push(Note::normal(
                    rr::VERIFYING,
                    "Restore",
                    "data restored; running the checks",
                ));
            }
            status.phase = Some(phase);
            let mut verdict = Verdict::reconciling(
                if phase == RestorePhase::Verifying {
                    rr::VERIFYING
                } else {
                    rr::RUNNING
                },
                format!("restore {phase:?}: {bytes} bytes restored so far"),
            );
            verdict.requeue_after = Some(PROGRESS_INTERVAL);
            verdict.notes = notes;
            verdict
        }
        Poll::Claimed { started } => {
            // Durable: the object shows this process's claim (its start time), not only some
            // `Running` — a stale copy may have hidden an older claim of a stopped controller.
            // (metav1.Time keeps whole seconds.)
            let durable = request.status.as_ref().is_some_and(|s| {
                s.phase == Some(RestorePhase::Running)
                    && s.start_time.as_ref().map(|t| t.0.as_second()) == Some(started.as_second())
            });
            if durable {
                start(request, ctx, &key);
                let mut verdict = Verdict::reconciling(rr::RUNNING, "restore running");
                verdict.requeue_after = Some(PROGRESS_INTERVAL);
                verdict
            } else {
                // The claim is not visible yet (the watch lags behind our own write): write
                // it again, whole, and look again soon.
                status.phase = Some(RestorePhase::Running);
                status.start_time = Some(Time(started));
                status.scratch_resources = task::planned_scratch(request);
                let mut verdict = Verdict::reconciling(rr::RUNNING, "restore starting");
                verdict.requeue_after = Some(Duration::from_millis(200));
                verdict
            }
        }
        Poll::Idle => {
            if status
                .phase
                .is_some_and(|p| matches!(p, RestorePhase::Running | RestorePhase::Verifying))
            {
                if let Err(stale) = confirm_current(request, ctx).await {
                    return stale;
                }
                let mut notes = Vec::new();
                let outcome = task::interrupted(request, ctx, now).await;
                record_outcome(request, ctx, status, outcome, now, &mut notes, true);
                let mut verdict = finished_verdict(RestorePhase::Failed, status);
                verdict.notes = notes;
                return verdict;
            }
            if request.metadata.deletion_timestamp.is_some() {
                return Verdict::new(
                    false,
                    reasons::DELETING,
                    "the request is being deleted; the restore does not start",
                );
            }
            if let Some(other) = busy_with(ctx, &key, &policy, now).await {
                status.phase = Some(RestorePhase::Pending);
                let mut verdict = Verdict::reconciling(
                    rr::PENDING,
                    format!(
                        "waiting for RestoreRequest {other} of the same BackupPolicy to finish"
                    ),
                );
                verdict.requeue_after = Some(PROGRESS_INTERVAL);
                return verdict;
            }
            // Only the API server's current copy may be claimed (a stale one may hide that the
            // request already finished, or is being deleted).
            if let Err(stale) = confirm_current(request, ctx).await {
                return stale;
            }
            // Claim: the status written after this step is the durable record of the start.
            status.phase = Some(RestorePhase::Running);
            status.start_time = Some(Time(now));
            status.scratch_resources = task::planned_scratch(request);
            status.message = None;
            ctx.restores.claim(key.clone(), request, now);
            let mode = match request.spec.target.mode {
                RestoreMode::InPlace => "in place",
                _ => "into a scratch target",
            };
            let mut verdict = Verdict::reconciling(rr::RUNNING, "restore starting");
            verdict.notes.push(Note::normal(
                rr::STARTED,
                "Restore",
                format!(
                    "restoring from BackupPolicy {} {mode}",
                    request.spec.policy_ref.name
                ),
            ));
            verdict.requeue_after = Some(Duration::from_millis(200));
            verdict
        }
    }
}

fn start(request: &RestoreRequest, ctx: &Context, key: &Key) {
    let shared = Arc::new(Shared::default());
    *shared.phase.lock().expect("phase lock") = Some(RestorePhase::Running);
    let plan = task::Plan {
        client: ctx.client.clone(),
        namespace: key.0.clone(),
        name: key.1.clone(),
        uid: request.uid().unwrap_or_default(),
        spec: request.spec.clone(),
        drill: request.labels().contains_key(DRILL_OF_LABEL),
        tools: ctx.backup_settings.postgres_tools.clone(),
        clock: ctx.clock.clone(),
    };
    let labels = PolicyLabels {
        namespace: key.0.clone(),
        policy: request.spec.policy_ref.name.clone(),
    };
    ctx.metrics.restore.running.get_or_create(&labels).inc();
    let task = {
        let shared = shared.clone();
        let finished = ctx.restores.finished.clone();
        let finished_for_policies = ctx.restores.finished_for_policies.clone();
        let runs = ctx.restores.runs.clone();
        let api: Api<RestoreRequest> = Api::namespaced(ctx.client.clone(), &key.0);
        let (key, uid) = (key.clone(), request.uid());
        let (metrics, labels) = (ctx.metrics.clone(), labels.clone());
        tokio::spawn(async move {
            let outcome = task::execute(plan, &shared).await;
            *shared.outcome.lock().expect("outcome lock") = Some(outcome);
            // A request deleted while it ran is never reconciled again: drop its entry here.
            if let Ok(found) = api.get_opt(&key.1).await
                && found.is_none_or(|r| r.uid() != uid)
            {
                let mut runs = runs.lock().expect("restore runs lock");
                if runs.get(&key).is_some_and(|r| r.request.uid() == uid) {
                    runs.remove(&key);
                    let running = metrics.restore.running.get_or_create(&labels);
                    if running.get() > 0 {
                        running.dec();
                    }
                    tracing::info!(namespace = %key.0, request = %key.1, "the RestoreRequest was deleted while its restore ran; the restore has ended");
                }
            }
            finished.notify_one();
            finished_for_policies.notify_one();
        })
    };
    tracing::info!(namespace = %key.0, request = %key.1, "restore started");
    ctx.restores.start(key.clone(), shared, task);
}

/// The name of another request of the same policy that is claimed or running in this process,
/// if any. Entries of requests that were deleted meanwhile (`kubectl delete rr` mid-run, a
/// pruned drill) are stopped and cleaned up like interrupted ones, so they block nothing.
async fn busy_with(ctx: &Context, key: &Key, policy: &str, now: Timestamp) -> Option<String> {
    let api: Api<RestoreRequest> = Api::namespaced(ctx.client.clone(), &key.0);
    for (other, request) in ctx.restores.others(key, policy) {
        let exists = match api.get_opt(&other.1).await {
            Ok(found) => found.is_some_and(|r| r.uid() == request.uid()),
            // Cannot tell: keep waiting for it.
            Err(_) => true,
        };
        if exists || !ctx.restores.abandon(&other, request.uid().as_deref()) {
            return Some(other.1);
        }
        {
            tracing::warn!(namespace = %other.0, request = %other.1, "the RestoreRequest was deleted while it ran; its restore is stopped and cleaned up");
            let outcome = task::interrupted(&request, ctx, now).await;
            let labels = PolicyLabels {
                namespace: other.0.clone(),
                policy: policy.to_string(),
            };
            let running = ctx.metrics.restore.running.get_or_create(&labels);
            if running.get() > 0 {
                running.dec();
            }
            if let Some(error) = outcome.error {
                tracing::info!(request = %other.1, %error, "cleanup of the deleted request");
            }
        }
    }
    None
}

/// Writes a finished restore into status (and, the `first` time, into the metrics).
fn record_outcome(
    request: &RestoreRequest,
    ctx: &Context,
    status: &mut RestoreRequestStatus,
    outcome: Outcome,
    now: Timestamp,
    notes: &mut Vec<Note>,
    first: bool,
) {
    let finished = outcome.finished.unwrap_or(now);
    let started = status.start_time.as_ref().map_or(finished, |t| t.0);
    if outcome.point.is_some() {
        status.restore_point = outcome.point;
    }
    status.components = outcome.components;
    status.checks = outcome.checks;
    status.completion_time = Some(Time(finished));
    if outcome.scratch_gone {
        status.scratch_resources.clear();
    }
    if !outcome.scratch_removed.is_empty() {
        notes.push(Note::normal(
            rr::SCRATCH_REMOVED,
            "Cleanup",
            format!(
                "removed the scratch target: {}",
                outcome.scratch_removed.join(", ")
            ),
        ));
    }
    let labels = PolicyLabels {
        namespace: request.namespace().unwrap_or_default(),
        policy: request.spec.policy_ref.name.clone(),
    };
    let mode = match request.spec.target.mode {
        RestoreMode::InPlace => "inPlace",
        _ => "scratch",
    };
    if first {
        let running = ctx.metrics.restore.running.get_or_create(&labels);
        if running.get() > 0 {
            running.dec();
        }
        let elapsed = finished.duration_since(started);
        ctx.metrics
            .restore
            .duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64().max(0.0));
    }
    match (outcome.verified, outcome.error) {
        (Some(verified), None) => {
            let rto = Duration::try_from(verified.duration_since(started)).unwrap_or_default();
            status.phase = Some(RestorePhase::Succeeded);
            status.rto = Some(format_rto(rto));
            status.message = Some(format!("restored and verified in {}", format_rto(rto)));
            notes.push(Note::normal(
                rr::SUCCEEDED,
                "Restore",
                format!(
                    "restore point {} restored and verified; RTO {}",
                    status.restore_point.as_ref().map_or("?", |p| p.id.as_str()),
                    format_rto(rto)
                ),
            ));
            if first {
                ctx.metrics
                    .restore
                    .restores
                    .get_or_create(&RestoreLabels {
                        namespace: labels.namespace,
                        policy: labels.policy,
                        mode,
                        result: "succeeded",
                    })
                    .inc();
            }
        }
        (_, error) => {
            let message = error.unwrap_or_else(|| "a check failed".into());
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            notes.push(Note::warning(rr::FAILED, "Restore", message));
            if first {
                ctx.metrics
                    .restore
                    .restores
                    .get_or_create(&RestoreLabels {
                        namespace: labels.namespace,
                        policy: labels.policy,
                        mode,
                        result: "failed",
                    })
                    .inc();
            }
        }
    }
}

/// A recovery time for status: tenths of a second below a minute (small restores finish in
/// less than one), else `1m12s`. Both forms parse as durations.
pub fn format_rto(rto: Duration) -> String {
    if rto < Duration::from_secs(60) {
        format!("{:.1}s", rto.as_secs_f64())
    } else {
        format_duration(rto)
    }
}

/// A finished request: `Ready=True` only when it succeeded; a failed one is `Stalled` (only a
/// new request can try again), so `kubectl wait --for=condition=Ready` returns on success only.
fn finished_verdict(phase: RestorePhase, status: &RestoreRequestStatus) -> Verdict {
    let message = status
        .message
        .clone()
        .unwrap_or_else(|| format!("restore {phase:?}"));
    if phase == RestorePhase::Succeeded {
        Verdict::new(true, rr::SUCCEEDED, message)
    } else {
        Verdict::stalled(rr::FAILED, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtos_keep_tenths_below_a_minute_and_parse_back() {
        for (rto, text) in [
            (Duration::from_millis(430), "0.4s"),
            (Duration::from_millis(12_340), "12.3s"),
            (Duration::from_secs(72), "1m12s"),
        ] {
            assert_eq!(format_rto(rto), text);
            let parsed = tend_crds::types::parse_duration(text).unwrap();
            assert!(parsed.abs_diff(rto) < Duration::from_millis(100), "{text}");
        }
    }
}
