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
mod config;
mod report;
mod run;
mod scratch;
mod state;
mod targets;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};
use tend_crds::conditions::reasons;
use tend_crds::labels::DRILL_OF as DRILL_OF_LABEL;
use tend_crds::restore_request::reasons as rr;
use tend_crds::restore_request::{
    RestoreMode, RestorePhase, RestoreRequest, RestoreRequestSpec, RestoreRequestStatus,
};

use crate::context::Context;
use crate::metrics::PolicyLabels;
use crate::reconcile::{Note, TendKind, Verdict, confirm_current, status_access};
use crate::tasks::{Key, Task};
use report::{finished_verdict, record_outcome};
use state::{Entry, Poll, Shared};

pub use state::RestoreState;

pub use scratch::{scratch_database_name, scratch_dir_name};

/// How often a running restore's phase and progress are written to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);

fn key_of(request: &RestoreRequest) -> Key {
    (request.namespace().unwrap_or_default(), request.name_any())
}

impl TendKind for RestoreRequest {
    status_access!(
        RestoreRequest,
        RestoreRequestSpec,
        RestoreRequestStatus,
        "RestoreRequest"
    );
    type State = RestoreState;

    async fn operate(
        &self,
        ctx: &Context,
        state: &RestoreState,
        status: &mut RestoreRequestStatus,
        now: Timestamp,
    ) -> Verdict {
        operate(self, ctx, state, status, now).await
    }
}

async fn operate(
    request: &RestoreRequest,
    ctx: &Context,
    state: &RestoreState,
    status: &mut RestoreRequestStatus,
    now: Timestamp,
) -> Verdict {
    let key = key_of(request);
    let policy = request.spec.policy_ref.name.clone();
    if let Some(phase) = status.phase.filter(|p| p.is_finished()) {
        // A finished request never runs again; it stays as the record of what happened.
        state.forget(&key);
        return finished_verdict(phase, status);
    }
    match state.poll(&key, request.uid().as_deref()) {
        Poll::Finished {
            outcome,
            mut notes,
            first,
        } => {
            record_outcome(
                request,
                &ctx.metrics,
                status,
                &outcome,
                now,
                &mut notes,
                first,
            );
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
                start(request, ctx, state, &key);
                let mut verdict = Verdict::reconciling(rr::RUNNING, "restore running");
                verdict.requeue_after = Some(PROGRESS_INTERVAL);
                verdict
            } else {
                // The claim is not visible yet (the watch lags behind our own write): write
                // it again, whole, and look again soon.
                status.phase = Some(RestorePhase::Running);
                status.start_time = Some(Time(started));
                status.scratch_resources = scratch::planned_scratch(request);
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
                let outcome = scratch::interrupted(request, ctx, &state.settings, now).await;
                record_outcome(
                    request,
                    &ctx.metrics,
                    status,
                    &outcome,
                    now,
                    &mut notes,
                    true,
                );
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
            if let Some(other) = busy_with(ctx, state, &key, &policy, now).await {
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
            status.scratch_resources = scratch::planned_scratch(request);
            status.message = None;
            state.claim(key.clone(), request, now);
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

fn start(request: &RestoreRequest, ctx: &Context, state: &RestoreState, key: &Key) {
    let shared = Arc::new(Shared::default());
    *shared.phase.lock().expect("phase lock") = Some(RestorePhase::Running);
    let plan = run::Plan {
        client: ctx.client.clone(),
        namespace: key.0.clone(),
        name: key.1.clone(),
        uid: request.uid().unwrap_or_default(),
        spec: request.spec.clone(),
        drill: request.labels().contains_key(DRILL_OF_LABEL),
        tools: state.settings.postgres_tools.clone(),
        clock: ctx.clock.clone(),
    };
    let labels = PolicyLabels {
        namespace: key.0.clone(),
        policy: request.spec.policy_ref.name.clone(),
    };
    ctx.metrics.restore.running.get_or_create(&labels).inc();
    let runs = state.runs.clone();
    let api: Api<RestoreRequest> = Api::namespaced(ctx.client.clone(), &key.0);
    let (owned_key, uid) = (key.clone(), request.uid());
    let metrics = ctx.metrics.clone();
    let span = tracing::info_span!("restore", namespace = %key.0, request = %key.1);
    let task = Task::spawn(shared, state.runs.notifier(), move |shared| {
        let work = async move {
            let key = owned_key;
            let outcome = run::execute(plan, &shared).await;
            // A request deleted while it ran is never reconciled again: drop its entry here.
            if let Ok(found) = api.get_opt(&key.1).await
                && found.is_none_or(|r| r.uid() != uid)
            {
                let mut entries = runs.entries();
                if entries.get(&key).is_some_and(|r| r.request.uid() == uid) {
                    entries.remove(&key);
                    drop(entries);
                    metrics.restore.ended(&labels);
                    tracing::info!(
                        "the RestoreRequest was deleted while its restore ran; the restore has ended"
                    );
                }
            }
            outcome
        };
        tracing::Instrument::instrument(work, span)
    });
    tracing::info!(namespace = %key.0, request = %key.1, "restore started");
    if let Some(run) = state.runs.entries().get_mut(key) {
        run.entry = Entry::Running(task);
    }
}

/// The name of another request of the same policy that is claimed or running in this process,
/// if any. Entries of requests that were deleted meanwhile (`kubectl delete rr` mid-run, a
/// pruned drill) are stopped and cleaned up like interrupted ones, so they block nothing.
async fn busy_with(
    ctx: &Context,
    state: &RestoreState,
    key: &Key,
    policy: &str,
    now: Timestamp,
) -> Option<String> {
    let api: Api<RestoreRequest> = Api::namespaced(ctx.client.clone(), &key.0);
    for (other, request) in state.others(key, policy) {
        let exists = match api.get_opt(&other.1).await {
            Ok(found) => found.is_some_and(|r| r.uid() == request.uid()),
            // Cannot tell: keep waiting for it.
            Err(_) => true,
        };
        if exists || !state.abandon(&other, request.uid().as_deref()) {
            return Some(other.1);
        }
        tracing::warn!(namespace = %other.0, request = %other.1, "the RestoreRequest was deleted while it ran; its restore is stopped and cleaned up");
        let outcome = scratch::interrupted(&request, ctx, &state.settings, now).await;
        ctx.metrics.restore.ended(&PolicyLabels {
            namespace: other.0.clone(),
            policy: policy.to_string(),
        });
        if let Some(error) = &outcome.error {
            tracing::info!(request = %other.1, %error, "cleanup of the deleted request");
        }
    }
    None
}
