//! What a backup policy's status says: a finished run's record, the restore points, and the
//! `Ready` verdict. Pure, apart from counting a finished run in the metrics once.
//!
//! Over 400 lines because of its unit tests; the code itself is about 320.

use std::collections::HashSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tend_crds::backup_policy::reasons as br;
use tend_crds::backup_policy::{
    BackupPolicy, BackupPolicyStatus, BackupRun, KeptBackup, RestorePoint, RetentionResult,
    RunResult,
};
use tend_crds::conditions::{find_condition, reasons, types};
use tend_crds::restore_request::{Component, ComponentResult};
use tend_crds::types::format_duration;

use super::run::{Outcome, PointSummary, Success};
use crate::metrics::{ComponentLabels, FailureLabels, Metrics, PolicyLabels};
use crate::reconcile::{Note, Verdict};
use crate::schedule::Trigger;

/// Restore points listed in status (the repository holds them all).
const STATUS_RESTORE_POINTS: usize = 100;

/// Ready while a run goes keeps what the last finished run said.
pub(super) fn running_verdict(status: &BackupPolicyStatus, id: &str, bytes: u64) -> Verdict {
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

pub(super) fn settled_verdict(policy: &BackupPolicy, status: &BackupPolicyStatus) -> Verdict {
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

/// Writes a finished run into status (and, the first time, into the metrics).
pub(super) fn record_outcome(
    metrics: &Metrics,
    status: &mut BackupPolicyStatus,
    outcome: &Outcome,
    labels: &PolicyLabels,
    notes: &mut Vec<Note>,
    first: bool,
) {
    let metrics = &metrics.backup;
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
                        reason: failure.metric_label(),
                    })
                    .inc();
            }
            tracing::warn!(namespace = %labels.namespace, policy = %labels.policy, backup = %outcome.id, reason = failure.metric_label(), message = %failure, "backup failed");
            notes.push(Note::warning(
                br::FAILED,
                "Backup",
                format!("backup {} failed: {failure}", outcome.id),
            ));
            BackupRun {
                id: outcome.id.clone(),
                result: RunResult::Failed,
                trigger,
                start_time,
                completion_time: Some(Time(outcome.finished)),
                bytes: 0,
                components: Vec::new(),
                message: Some(failure.to_string()),
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

pub(super) fn set_restore_points(status: &mut BackupPolicyStatus, points: &[PointSummary]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use jiff::Timestamp;

    use crate::error::StepError;

    fn labels() -> PolicyLabels {
        PolicyLabels {
            namespace: "fieldbook".into(),
            policy: "fieldbook-nightly".into(),
        }
    }

    fn failed_outcome(due: Timestamp) -> Outcome {
        Outcome {
            id: "b2".into(),
            trigger: Some(Trigger::Schedule { due }),
            finished: due,
            elapsed: Duration::from_secs(2),
            result: Err(StepError::Setup(
                "spec.repository.s3.credentialsSecretRef: Secret \"x\" not found".into(),
            )),
            points: None,
            retention: None,
        }
    }

    #[test]
    fn a_failed_run_is_recorded_and_counted_once_by_reason() {
        let metrics = Metrics::default();
        let due = Timestamp::now();
        let mut status = BackupPolicyStatus::default();
        let outcome = failed_outcome(due);
        for first in [true, false] {
            let mut notes = Vec::new();
            record_outcome(
                &metrics,
                &mut status,
                &outcome,
                &labels(),
                &mut notes,
                first,
            );
            assert_eq!(notes.len(), 1);
            assert!(notes[0].warning);
        }
        let run = status.last_backup.as_ref().unwrap();
        assert_eq!(run.result, RunResult::Failed);
        assert!(
            run.message
                .as_deref()
                .unwrap()
                .contains("credentialsSecretRef")
        );
        assert_eq!(run.trigger.as_deref(), Some("Schedule"));
        assert_eq!(status.last_schedule_time.as_ref().map(|t| t.0), Some(due));
        assert!(status.last_successful_backup.is_none());
        let page = metrics.encode();
        assert!(
            page.contains(r#"tend_backup_failures_total{namespace="fieldbook",policy="fieldbook-nightly",reason="setup"} 1"#),
            "{page}"
        );

        let verdict = settled_verdict(&super::super::example_policy(), &status);
        assert!(!verdict.ready);
        assert_eq!(verdict.reason, br::FAILED);
    }

    #[test]
    fn settled_verdicts_follow_the_last_run_and_suspend() {
        let mut policy = super::super::example_policy();
        let status = BackupPolicyStatus::default();
        let verdict = settled_verdict(&policy, &status);
        assert!(verdict.ready);
        assert_eq!(verdict.reason, reasons::VALID);
        policy.spec.suspend = true;
        let verdict = settled_verdict(&policy, &status);
        assert!(verdict.ready, "suspended is a settled state (Flux)");
        assert_eq!(verdict.reason, reasons::SUSPENDED);
    }

    #[test]
    fn a_running_backup_keeps_what_the_last_finished_run_said() {
        let mut status = BackupPolicyStatus::default();
        let verdict = running_verdict(&status, "b3", 10);
        assert_eq!((verdict.ready, verdict.reason), (true, br::RUNNING));
        assert!(verdict.message.contains("10 bytes"));
        status.conditions.push(tend_crds::conditions::condition(
            types::READY,
            false,
            br::FAILED,
            "backup b2 failed: no space",
            None,
            Timestamp::now(),
        ));
        let verdict = running_verdict(&status, "b3", 10);
        assert_eq!((verdict.ready, verdict.reason), (false, br::FAILED));
        assert_eq!(verdict.message, "backup b2 failed: no space");
    }

    #[test]
    fn restore_points_keep_their_verified_mark_and_are_capped() {
        let now = Timestamp::now();
        let mut status = BackupPolicyStatus {
            restore_points: vec![RestorePoint {
                id: "p1".into(),
                time: Time(now),
                bytes: 1,
                verified: true,
            }],
            ..BackupPolicyStatus::default()
        };
        let points: Vec<PointSummary> = (0..150)
            .map(|i| PointSummary {
                id: format!("p{i}"),
                time: now,
                bytes: i,
            })
            .collect();
        set_restore_points(&mut status, &points);
        assert_eq!(status.restore_points.len(), STATUS_RESTORE_POINTS);
        assert!(status.restore_points[1].verified);
        assert!(!status.restore_points[2].verified);
    }
}
