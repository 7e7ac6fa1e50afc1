//! Recovery point objective: the age of the newest restore point, `status.currentRpo`, the
//! `RPOMet` condition, and when to look again before it would be breached. Pure.

use std::time::Duration;

use jiff::Timestamp;
use tend_crds::backup_policy::reasons as br;
use tend_crds::backup_policy::{BackupPolicy, BackupPolicyStatus};
use tend_crds::conditions::{condition, find_condition, set_condition, types};
use tend_crds::types::format_duration;

use crate::reconcile::Note;

/// Sets `currentRpo` and the `RPOMet` condition (with a Note when it changes); returns the age
/// of the newest restore point, if there is one.
pub(super) fn update_rpo(
    policy: &BackupPolicy,
    status: &mut BackupPolicyStatus,
    now: Timestamp,
    notes: &mut Vec<Note>,
) -> Option<Duration> {
    let newest = newest_point(status);
    let age = newest.map(|t| Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO));
    status.current_rpo = age.map(format_duration);
    let Some(objective) = policy.spec.objectives.as_ref().and_then(|o| o.rpo.as_ref()) else {
        tend_crds::conditions::remove_condition(&mut status.conditions, types::RPO_MET);
        return age;
    };
    let Ok(limit) = objective.parse() else {
        return age;
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
    age
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
pub(super) fn rpo_breach_in(
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
