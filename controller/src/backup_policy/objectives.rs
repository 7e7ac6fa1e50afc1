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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tend_crds::backup_policy::RestorePoint;
    use tend_crds::conditions::Condition;

    fn with_point(age: Duration, now: Timestamp) -> BackupPolicyStatus {
        BackupPolicyStatus {
            restore_points: vec![RestorePoint {
                id: "b1".into(),
                time: Time(now - age),
                bytes: 1,
                verified: false,
            }],
            ..BackupPolicyStatus::default()
        }
    }

    fn rpo_condition(status: &BackupPolicyStatus) -> Option<&Condition> {
        find_condition(&status.conditions, types::RPO_MET)
    }

    #[test]
    fn a_young_enough_point_meets_the_objective_and_says_so_once() {
        // The example's objective is 26h.
        let policy = super::super::example_policy();
        let now = Timestamp::now();
        let mut status = with_point(Duration::from_secs(3600), now);
        let mut notes = Vec::new();
        let age = update_rpo(&policy, &mut status, now, &mut notes);
        assert_eq!(age, Some(Duration::from_secs(3600)));
        assert_eq!(status.current_rpo.as_deref(), Some("1h0m0s"));
        let c = rpo_condition(&status).expect("RPOMet is set");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", br::RPO_MET)
        );
        assert_eq!(notes.len(), 1, "the first judgement is an Event");
        notes.clear();
        update_rpo(&policy, &mut status, now, &mut notes);
        assert!(notes.is_empty(), "no Event without a change");
    }

    #[test]
    fn an_old_point_breaches_and_no_point_is_unknown() {
        let policy = super::super::example_policy();
        let now = Timestamp::now();
        let mut status = with_point(Duration::from_secs(27 * 3600), now);
        let mut notes = Vec::new();
        update_rpo(&policy, &mut status, now, &mut notes);
        let c = rpo_condition(&status).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", br::RPO_BREACHED)
        );
        assert!(notes[0].warning);

        let mut empty = BackupPolicyStatus::default();
        let mut notes = Vec::new();
        assert_eq!(update_rpo(&policy, &mut empty, now, &mut notes), None);
        let c = rpo_condition(&empty).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", br::NO_RESTORE_POINT)
        );
        assert!(notes.is_empty(), "Unknown is not news");
    }

    #[test]
    fn without_an_objective_the_condition_goes_away() {
        let mut policy = super::super::example_policy();
        policy.spec.objectives = None;
        let now = Timestamp::now();
        let mut status = with_point(Duration::from_secs(60), now);
        status.conditions.push(tend_crds::conditions::condition(
            types::RPO_MET,
            true,
            br::RPO_MET,
            "",
            None,
            now,
        ));
        update_rpo(&policy, &mut status, now, &mut Vec::new());
        assert!(rpo_condition(&status).is_none());
        assert_eq!(rpo_breach_in(&policy, &status, now), None);
    }

    #[test]
    fn the_next_look_is_just_after_the_breach() {
        let policy = super::super::example_policy();
        let now = Timestamp::now();
        let status = with_point(Duration::from_secs(25 * 3600), now);
        assert_eq!(
            rpo_breach_in(&policy, &status, now),
            Some(Duration::from_secs(3600 + 1))
        );
        let late = with_point(Duration::from_secs(30 * 3600), now);
        assert_eq!(rpo_breach_in(&policy, &late, now), None);
    }
}
