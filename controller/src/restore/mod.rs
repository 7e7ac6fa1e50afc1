//! The RestoreRequest reconciler: a one-shot restore of a backup into a scratch target or in
//! place, verified by checks, that runs exactly once.
//!
//! Exactly once: the first reconcile only *claims* the request — it writes `phase: Running`
//! and `startTime` to status and remembers the claim in this process. The restore task starts
//! on a later reconcile that sees `Running` in the object itself, so the record of the start is
//! durable before anything is touched. A `Running` (or `Verifying`) request that this process
//! has neither claimed nor runs was interrupted (crash, restart, leader change): it is ended as
//! `Failed`, its scratch target removed and maintenance mode turned off. A finished request is
//! never looked at again; re-applying it (a GitOps re-sync) changes nothing.

mod checks;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tend_backup::Progress;
use tend_crds::restore_request::{
    CheckResult, ChosenRestorePoint, ComponentResult, RestoreMode, RestorePhase, RestoreRequest,
    RestoreRequestStatus,
};
use tend_crds::types::format_duration;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::metrics::{PolicyLabels, RestoreLabels};
use crate::reconcile::{Note, Verdict};

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
    },
}

/// Restores claimed or running in this process.
#[derive(Default)]
pub struct RestoreRuns {
    runs: Mutex<HashMap<Key, (String, Entry)>>,
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
    Finished(Box<Outcome>, Vec<Note>),
}

impl RestoreRuns {
    fn poll(&self, key: &Key) -> Poll {
        let mut runs = self.runs.lock().expect("restore runs lock");
        let Some((_, entry)) = runs.get_mut(key) else {
            return Poll::Idle;
        };
        let Entry::Running { shared, task } = entry else {
            let Entry::Claimed { started } = entry else {
                unreachable!("two variants");
            };
            return Poll::Claimed { started: *started };
        };
        let notes = std::mem::take(&mut *shared.notes.lock().expect("notes lock"));
        let outcome = shared.outcome.lock().expect("outcome lock").take();
        if let Some(outcome) = outcome {
            runs.remove(key);
            return Poll::Finished(Box::new(outcome), notes);
        }
        if !task.is_finished() {
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
        let Some((_, Entry::Running { task, .. })) = runs.remove(key) else {
            unreachable!("checked above");
        };
        let error = match task.now_or_never() {
            Some(Err(error)) => error.to_string(),
            _ => "no outcome".to_string(),
        };
        Poll::Finished(
            Box::new(Outcome::failed(
                Timestamp::now(),
                format!("the restore task crashed: {error}"),
            )),
            notes,
        )
    }

    fn claim(&self, key: Key, policy: String, started: Timestamp) {
        self.runs
            .lock()
            .expect("restore runs lock")
            .insert(key, (policy, Entry::Claimed { started }));
    }

    /// Another request of the same policy claimed or running in this process.
    fn busy_with(&self, key: &Key, policy: &str) -> Option<String> {
        self.runs
            .lock()
            .expect("restore runs lock")
            .iter()
            .find(|((ns, name), (p, _))| ns == &key.0 && p == policy && name != &key.1)
            .map(|((_, name), _)| name.clone())
    }

    fn start(&self, key: Key, policy: String, shared: Arc<Shared>, task: JoinHandle<()>) {
        self.runs
            .lock()
            .expect("restore runs lock")
            .insert(key, (policy, Entry::Running { shared, task }));
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
        for ((ns, name), (_, entry)) in self.runs.lock().expect("restore runs lock").drain() {
            if let Entry::Running { task, .. } = entry {
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
#[derive(Debug, Default)]
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
        return finished_verdict(phase, status);
    }
    match ctx.restores.poll(&key) {
        Poll::Finished(outcome, mut notes) => {
            record_outcome(request, ctx, status, *outcome, now, &mut notes);
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
            let mut verdict = Verdict::new(
                true,
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
            let durable = request
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p == RestorePhase::Running);
            if durable {
                start(request, ctx, &key);
                let mut verdict = Verdict::new(true, rr::RUNNING, "restore running");
                verdict.requeue_after = Some(PROGRESS_INTERVAL);
                verdict
            } else {
                // The claim is not visible yet (the watch lags behind our own write): write
                // it again, whole, and look again soon.
                status.phase = Some(RestorePhase::Running);
                status.start_time = Some(Time(started));
                status.scratch_resources = task::planned_scratch(request);
                let mut verdict = Verdict::new(true, rr::RUNNING, "restore starting");
                verdict.requeue_after = Some(Duration::from_millis(200));
                verdict
            }
        }
        Poll::Idle => {
            if status
                .phase
                .is_some_and(|p| matches!(p, RestorePhase::Running | RestorePhase::Verifying))
            {
                let mut notes = Vec::new();
                let outcome = task::interrupted(request, ctx, now).await;
                record_outcome(request, ctx, status, outcome, now, &mut notes);
                let mut verdict = finished_verdict(RestorePhase::Failed, status);
                verdict.notes = notes;
                return verdict;
            }
            if let Some(other) = ctx.restores.busy_with(&key, &policy) {
                status.phase = Some(RestorePhase::Pending);
                let mut verdict = Verdict::new(
                    true,
                    rr::PENDING,
                    format!(
                        "waiting for RestoreRequest {other} of the same BackupPolicy to finish"
                    ),
                );
                verdict.requeue_after = Some(PROGRESS_INTERVAL);
                return verdict;
            }
            // Claim: the status written after this step is the durable record of the start.
            status.phase = Some(RestorePhase::Running);
            status.start_time = Some(Time(now));
            status.scratch_resources = task::planned_scratch(request);
            status.message = None;
            ctx.restores.claim(key.clone(), policy, now);
            let mode = match request.spec.target.mode {
                RestoreMode::InPlace => "in place",
                _ => "into a scratch target",
            };
            let mut verdict = Verdict::new(true, rr::RUNNING, "restore starting");
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
        tokio::spawn(async move {
            let outcome = task::execute(plan, &shared).await;
            *shared.outcome.lock().expect("outcome lock") = Some(outcome);
            finished.notify_one();
            finished_for_policies.notify_one();
        })
    };
    tracing::info!(namespace = %key.0, request = %key.1, "restore started");
    ctx.restores.start(
        key.clone(),
        request.spec.policy_ref.name.clone(),
        shared,
        task,
    );
}

fn record_outcome(
    request: &RestoreRequest,
    ctx: &Context,
    status: &mut RestoreRequestStatus,
    outcome: Outcome,
    now: Timestamp,
    notes: &mut Vec<Note>,
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
        (_, error) => {
            let message = error.unwrap_or_else(|| "a check failed".into());
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            notes.push(Note::warning(rr::FAILED, "Restore", message));
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

/// A recovery time for status: tenths of a second below a minute (small restores finish in
/// less than one), else `1m12s`. Both forms parse as durations.
pub fn format_rto(rto: Duration) -> String {
    if rto < Duration::from_secs(60) {
        format!("{:.1}s", rto.as_secs_f64())
    } else {
        format_duration(rto)
    }
}

fn finished_verdict(phase: RestorePhase, status: &RestoreRequestStatus) -> Verdict {
    let succeeded = phase == RestorePhase::Succeeded;
    Verdict::new(
        succeeded,
        if succeeded { rr::SUCCEEDED } else { rr::FAILED },
        status
            .message
            .clone()
            .unwrap_or_else(|| format!("restore {phase:?}")),
    )
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
