//! Restore drills: on `spec.drill.schedule` the policy creates a scratch RestoreRequest for its
//! newest restore point, owned by the policy; when the request finishes, the result and the
//! measured RTO go to `status.lastDrill`, the `DrillPassed` and `RTOMet` conditions, and the
//! metrics. A passed drill marks its restore point verified (retention keeps the newest
//! verified point). Finished drill requests beyond `keepRequests` are deleted.
//!
//! Just over 400 lines: starting, following and finishing a drill share the policy's status and
//! are kept together.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use tend_crds::backup_policy::{BackupPolicy, BackupPolicyStatus, DrillResult, RunResult};
use tend_crds::conditions::{condition, remove_condition, set_condition, types};
use tend_crds::cron::Schedule;
use tend_crds::restore_request::{
    Component, RestoreMode, RestorePhase, RestorePointSelector, RestoreRequest, RestoreRequestSpec,
    RestoreTarget,
};
use tend_crds::types::{LocalObjectRef, parse_duration};

use crate::children::{Child, child_name};
use crate::context::Context;
use crate::metrics::PolicyLabels;
use crate::reconcile::Note;
use crate::schedule::{ScheduleState, decide};
use tend_crds::labels::DRILL_OF as DRILL_OF_LABEL;

use tend_crds::backup_policy::drill_reasons as dr;

/// How often a running drill's request is looked at (its end also wakes the policy at once).
const DRILL_POLL: Duration = Duration::from_secs(5);

/// Drives the drills of a policy; returns when to look again.
pub async fn reconcile(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    notes: &mut Vec<Note>,
) -> Option<Duration> {
    let Some(drill) = &policy.spec.drill else {
        remove_condition(&mut status.conditions, types::DRILL_PASSED);
        remove_condition(&mut status.conditions, types::RTO_MET);
        return None;
    };
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let api: Api<RestoreRequest> = Api::namespaced(ctx.client.clone(), &namespace);

    if let Some(last) = status
        .last_drill
        .clone()
        .filter(|d| d.result == RunResult::Running)
    {
        match api.get_opt(&last.request_name).await {
            Err(error) => {
                tracing::warn!(%namespace, policy = %name, %error, "reading the drill's RestoreRequest");
                return Some(DRILL_POLL);
            }
            Ok(None) => finish(
                policy,
                ctx,
                status,
                now,
                notes,
                None,
                Some("the drill's RestoreRequest was deleted before it finished".into()),
            ),
            Ok(Some(request)) => {
                let phase = request.status.as_ref().and_then(|s| s.phase);
                if !phase.is_some_and(RestorePhase::is_finished) {
                    return Some(DRILL_POLL);
                }
                finish(policy, ctx, status, now, notes, Some(&request), None);
            }
        }
        prune(&api, policy, drill.keep_requests as usize).await;
    }

    let (Ok(schedule), Ok(zone)) = (
        Schedule::parse(drill.schedule.as_str()),
        policy.spec.time_zone.resolve(),
    ) else {
        return None;
    };
    let created = policy
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let starting_deadline = policy
        .spec
        .starting_deadline
        .parse()
        .unwrap_or(Duration::from_secs(3600));
    let state = ScheduleState {
        schedule: &schedule,
        time_zone: &zone,
        // `suspend` stops scheduled backups only: drills of the existing restore points go on.
        suspend: false,
        starting_deadline,
        last_schedule_time: status.last_drill.as_ref().map(|d| d.start_time.0),
        created,
        requested: None,
        last_handled_request: None,
    };
    if policy.metadata.deletion_timestamp.is_some() {
        // Being deleted: a running drill is followed to its end, no new one starts.
        return None;
    }
    let decision = decide(&state, now);
    if let Some(trigger) = decision.run {
        let slot = match trigger {
            crate::schedule::Trigger::Schedule { due } => due,
            crate::schedule::Trigger::Manual { .. } => now,
        };
        // Only from the API server's current copy (see the backup start).
        if crate::reconcile::confirm_current(policy, ctx)
            .await
            .is_err()
        {
            return Some(Duration::from_secs(1));
        }
        start(policy, &api, status, slot, now, notes).await;
        return Some(DRILL_POLL);
    }
    decision
        .next
        .and_then(|next| Duration::try_from(next.duration_since(now)).ok())
        .map(|d| d.max(Duration::from_secs(1)))
}

/// Starts the drill of the schedule's `slot`. The request is named after the slot, so a
/// reconcile whose status write was lost finds the request it created (AlreadyExists) instead
/// of starting a second drill.
async fn start(
    policy: &BackupPolicy,
    api: &Api<RestoreRequest>,
    status: &mut BackupPolicyStatus,
    slot: Timestamp,
    now: Timestamp,
    notes: &mut Vec<Note>,
) {
    let drill = policy.spec.drill.as_ref().expect("checked by the caller");
    let name = policy.name_any();
    let Some(point) = status.restore_points.first().map(|p| p.id.clone()) else {
        status.last_drill = Some(DrillResult {
            request_name: String::new(),
            restore_point: None,
            result: RunResult::Failed,
            start_time: Time(now),
            completion_time: Some(Time(now)),
            rto: None,
            message: Some("there is no restore point to drill yet".into()),
        });
        set_drill_conditions(
            policy,
            status,
            now,
            false,
            "there is no restore point to drill yet",
            None,
        );
        notes.push(Note::warning(
            dr::FAILED,
            "Drill",
            "drill skipped: there is no restore point yet",
        ));
        return;
    };
    let child = Child {
        parent: policy,
        name: child_name(&name, "drill", slot),
        label: DRILL_OF_LABEL,
        annotations: BTreeMap::new(),
        // A controller reference: the policy is reconciled when its drill's request changes.
        controller: true,
        spec: RestoreRequestSpec {
            policy_ref: LocalObjectRef { name: name.clone() },
            restore_point: RestorePointSelector {
                id: Some(point.clone()),
                latest: None,
                before: None,
            },
            components: vec![Component::Database, Component::Objects, Component::Config],
            target: RestoreTarget {
                mode: RestoreMode::Scratch,
                confirm: false,
                scratch: Some(drill.scratch.clone()),
            },
            checks: drill.checks.clone(),
        },
    };
    let request_name = child.name.clone();
    if let Err(error) = child.create(api).await {
        tracing::warn!(%error, "creating the drill's RestoreRequest");
        notes.push(Note::warning(
            dr::FAILED,
            "Drill",
            format!("could not start the drill: {error}"),
        ));
        return;
    }
    status.last_drill = Some(DrillResult {
        request_name: request_name.clone(),
        restore_point: Some(point.clone()),
        result: RunResult::Running,
        start_time: Time(now),
        completion_time: None,
        rto: None,
        message: None,
    });
    notes.push(Note::normal(
        dr::STARTED,
        "Drill",
        format!("drill of restore point {point} started: RestoreRequest {request_name}"),
    ));
}

fn finish(
    policy: &BackupPolicy,
    ctx: &Context,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    notes: &mut Vec<Note>,
    request: Option<&RestoreRequest>,
    error: Option<String>,
) {
    let Some(last) = status.last_drill.as_mut() else {
        return;
    };
    let rr_status = request.and_then(|r| r.status.as_ref());
    let passed =
        error.is_none() && rr_status.and_then(|s| s.phase) == Some(RestorePhase::Succeeded);
    let message = error.or_else(|| rr_status.and_then(|s| s.message.clone()));
    last.result = if passed {
        RunResult::Succeeded
    } else {
        RunResult::Failed
    };
    last.completion_time = Some(
        rr_status
            .and_then(|s| s.completion_time.clone())
            .unwrap_or(Time(now)),
    );
    last.rto = rr_status.and_then(|s| s.rto.clone()).filter(|_| passed);
    if let Some(point) = rr_status.and_then(|s| s.restore_point.as_ref()) {
        last.restore_point = Some(point.id.clone());
    }
    last.message = message.clone();
    let point = last.restore_point.clone();
    let rto = last.rto.as_deref().and_then(|r| parse_duration(r).ok());
    let request_name = last.request_name.clone();
    if passed && let Some(point) = &point {
        for p in status.restore_points.iter_mut().filter(|p| &p.id == point) {
            p.verified = true;
        }
    }
    let labels = PolicyLabels {
        namespace: policy.namespace().unwrap_or_default(),
        policy: policy.name_any(),
    };
    let metrics = &ctx.metrics.restore;
    metrics
        .drill_success
        .get_or_create(&labels)
        .set(i64::from(passed));
    metrics
        .drill_last_timestamp
        .get_or_create(&labels)
        .set(now.as_second());
    if let Some(rto) = rto {
        metrics
            .drill_rto_seconds
            .get_or_create(&labels)
            .set(rto.as_secs_f64());
    }
    let text = if passed {
        format!(
            "drill {request_name} restored and verified restore point {} in {}",
            point.as_deref().unwrap_or("?"),
            rto.map_or_else(|| "?".into(), tend_crds::types::format_rto)
        )
    } else {
        format!(
            "drill {request_name} failed: {}",
            message.as_deref().unwrap_or("no reason recorded")
        )
    };
    set_drill_conditions(policy, status, now, passed, &text, rto);
    notes.push(if passed {
        Note::normal(dr::PASSED, "Drill", text)
    } else {
        Note::warning(dr::FAILED, "Drill", text)
    });
}

fn set_drill_conditions(
    policy: &BackupPolicy,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    passed: bool,
    message: &str,
    rto: Option<Duration>,
) {
    let generation = policy.metadata.generation;
    set_condition(
        &mut status.conditions,
        condition(
            types::DRILL_PASSED,
            passed,
            if passed { dr::PASSED } else { dr::FAILED },
            message,
            generation,
            now,
        ),
    );
    let Some(objective) = policy.spec.objectives.as_ref().and_then(|o| o.rto.as_ref()) else {
        remove_condition(&mut status.conditions, types::RTO_MET);
        return;
    };
    let new = match (passed, rto, objective.parse()) {
        (true, Some(rto), Ok(limit)) if rto <= limit => condition(
            types::RTO_MET,
            true,
            dr::RTO_MET,
            format!(
                "the last drill restored and verified in {}; objective {}",
                tend_crds::types::format_rto(rto),
                objective.as_str()
            ),
            generation,
            now,
        ),
        (true, Some(rto), Ok(_)) => condition(
            types::RTO_MET,
            false,
            dr::RTO_BREACHED,
            format!(
                "the last drill took {}, more than the objective {}",
                tend_crds::types::format_rto(rto),
                objective.as_str()
            ),
            generation,
            now,
        ),
        _ => {
            let mut c = condition(
                types::RTO_MET,
                false,
                dr::FAILED,
                format!(
                    "the last drill failed, so the recovery time is unknown; objective {}",
                    objective.as_str()
                ),
                generation,
                now,
            );
            c.status = "Unknown".into();
            c
        }
    };
    set_condition(&mut status.conditions, new);
}

/// Deletes finished drill requests of the policy beyond the newest `keep`.
async fn prune(api: &Api<RestoreRequest>, owner: &BackupPolicy, keep: usize) {
    let policy = owner.name_any();
    let params = ListParams::default().labels(&format!(
        "{DRILL_OF_LABEL}={}",
        tend_crds::labels::label_value(&policy)
    ));
    let list = match api.list(&params).await {
        Ok(list) => list.items,
        Err(error) => {
            tracing::warn!(%policy, %error, "listing drill RestoreRequests");
            return;
        }
    };
    let mut finished: Vec<_> = list
        .into_iter()
        .filter(|r| {
            r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(RestorePhase::is_finished)
        })
        // A label value may be shared by two long policy names; the owner is not.
        .filter(|r| {
            r.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == owner.uid().as_ref())
        })
        .collect();
    // Names end in the drill's start time, so they sort by age.
    finished.sort_by_key(|r| std::cmp::Reverse(r.name_any()));
    for old in finished.iter().skip(keep) {
        if let Err(error) = api
            .delete(&old.name_any(), &DeleteParams::background())
            .await
        {
            tracing::warn!(%policy, request = %old.name_any(), %error, "deleting an old drill RestoreRequest");
        }
    }
}
