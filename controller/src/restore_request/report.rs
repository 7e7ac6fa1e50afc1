//! What a RestoreRequest's status says once its restore ended: the record of the outcome (and,
//! once, its metrics) and the final verdict.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tend_crds::restore_request::reasons as rr;
use tend_crds::restore_request::{
    CheckResult, ChosenRestorePoint, ComponentResult, RestoreMode, RestorePhase, RestoreRequest,
    RestoreRequestStatus,
};
use tend_crds::types::format_rto;

use crate::metrics::{FailureLabels, Metrics, PolicyLabels, RestoreLabels};
use crate::reconcile::{Note, Verdict};

/// What a finished restore reports.
#[derive(Clone, Debug, Default)]
pub(super) struct Outcome {
    pub(super) point: Option<ChosenRestorePoint>,
    pub(super) components: Vec<ComponentResult>,
    pub(super) checks: Vec<CheckResult>,
    /// When every check had passed; `None` if the restore failed.
    pub(super) verified: Option<Timestamp>,
    pub(super) finished: Option<Timestamp>,
    pub(super) error: Option<String>,
    /// The failure's metric label (see [`crate::error::StepError::metric_label`]).
    pub(super) reason: Option<&'static str>,
    pub(super) scratch_removed: Vec<String>,
    /// Nothing of the scratch target is left (removed, or never created).
    pub(super) scratch_gone: bool,
}

impl Outcome {
    pub(super) fn failed(at: Timestamp, reason: &'static str, error: String) -> Self {
        Self {
            finished: Some(at),
            error: Some(error),
            reason: Some(reason),
            ..Self::default()
        }
    }
}

/// Writes a finished restore into status (and, the `first` time, into the metrics).
pub(super) fn record_outcome(
    request: &RestoreRequest,
    metrics: &Metrics,
    status: &mut RestoreRequestStatus,
    outcome: &Outcome,
    now: Timestamp,
    notes: &mut Vec<Note>,
    first: bool,
) {
    let finished = outcome.finished.unwrap_or(now);
    let started = status.start_time.as_ref().map_or(finished, |t| t.0);
    if outcome.point.is_some() {
        status.restore_point = outcome.point.clone();
    }
    status.components = outcome.components.clone();
    status.checks = outcome.checks.clone();
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
        metrics.restore.ended(&labels);
        let elapsed = finished.duration_since(started);
        metrics
            .restore
            .duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64().max(0.0));
    }
    match (outcome.verified, &outcome.error) {
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
                metrics
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
            let message = error.clone().unwrap_or_else(|| "a check failed".into());
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            notes.push(Note::warning(rr::FAILED, "Restore", message));
            if first {
                metrics
                    .restore
                    .restores
                    .get_or_create(&RestoreLabels {
                        namespace: labels.namespace,
                        policy: labels.policy,
                        mode,
                        result: "failed",
                    })
                    .inc();
                metrics
                    .restore
                    .failures
                    .get_or_create(&FailureLabels {
                        namespace: request.namespace().unwrap_or_default(),
                        policy: request.spec.policy_ref.name.clone(),
                        reason: outcome.reason.unwrap_or("check"),
                    })
                    .inc();
            }
        }
    }
}

/// A finished request: `Ready=True` only when it succeeded; a failed one is `Stalled` (only a
/// new request can try again), so `kubectl wait --for=condition=Ready` returns on success only.
pub(super) fn finished_verdict(phase: RestorePhase, status: &RestoreRequestStatus) -> Verdict {
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

    fn request() -> RestoreRequest {
        serde_yaml::from_str(include_str!("../../../examples/restorerequest.yaml"))
            .expect("the example parses")
    }

    #[test]
    fn a_verified_restore_succeeds_with_its_rto() {
        let metrics = Metrics::default();
        let start = Timestamp::now();
        let mut status = RestoreRequestStatus {
            start_time: Some(Time(start)),
            ..RestoreRequestStatus::default()
        };
        let outcome = Outcome {
            verified: Some(start + jiff::SignedDuration::from_millis(12_340)),
            finished: Some(start + jiff::SignedDuration::from_secs(13)),
            scratch_gone: true,
            ..Outcome::default()
        };
        let mut notes = Vec::new();
        record_outcome(
            &request(),
            &metrics,
            &mut status,
            &outcome,
            start,
            &mut notes,
            true,
        );
        assert_eq!(status.phase, Some(RestorePhase::Succeeded));
        assert_eq!(status.rto.as_deref(), Some("12.3s"));
        let verdict = finished_verdict(RestorePhase::Succeeded, &status);
        assert!(verdict.ready && !verdict.stalled);
        assert!(metrics.encode().contains(r#"result="succeeded"} 1"#));
    }

    #[test]
    fn a_failed_restore_stalls_and_is_counted_by_reason_once() {
        let metrics = Metrics::default();
        let now = Timestamp::now();
        let mut status = RestoreRequestStatus::default();
        let outcome = Outcome::failed(
            now,
            "integrity",
            "restore point b1 failed verification".into(),
        );
        for first in [true, false] {
            record_outcome(
                &request(),
                &metrics,
                &mut status,
                &outcome,
                now,
                &mut Vec::new(),
                first,
            );
        }
        assert_eq!(status.phase, Some(RestorePhase::Failed));
        let verdict = finished_verdict(RestorePhase::Failed, &status);
        assert!(!verdict.ready && verdict.stalled);
        assert_eq!(verdict.reason, rr::FAILED);
        let page = metrics.encode();
        assert!(page.contains(r#"reason="integrity"} 1"#), "{page}");
    }
}
