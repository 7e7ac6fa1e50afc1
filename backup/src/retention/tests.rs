use super::*;
use rand::{Rng, SeedableRng};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cand(id: &str, time: &str) -> Candidate {
    Candidate {
        id: id.into(),
        time: at(time),
        verified: false,
    }
}

fn rules(last: u32, daily: u32, weekly: u32, monthly: u32) -> RetentionRules {
    RetentionRules {
        keep_last: last,
        keep_daily: daily,
        keep_weekly: weekly,
        keep_monthly: monthly,
        time_zone: TimeZone::UTC,
    }
}

fn kept_ids(plan: &RetentionPlan) -> Vec<&str> {
    plan.kept.iter().map(|k| k.id.as_str()).collect()
}

/// One backup a day at 02:00 UTC for `days` days from 2026-01-01, ids `d000`, `d001`...
fn daily_backups(days: usize) -> Vec<Candidate> {
    let start = at("2026-01-01T02:00:00Z");
    (0..days)
        .map(|i| Candidate {
            id: format!("d{i:03}"),
            time: start + SignedDuration::from_hours(24 * i as i64),
            verified: false,
        })
        .collect()
}

#[test]
fn default_rules_keep_seven_daily_generations() {
    let backups = daily_backups(20);
    let plan = plan_retention(&backups, &RetentionRules::default());
    assert_eq!(
        kept_ids(&plan),
        ["d019", "d018", "d017", "d016", "d015", "d014", "d013"]
    );
    assert_eq!(plan.deleted.len(), 13);
    assert!(plan.kept.iter().all(|k| k.reasons == [KeepReason::Daily]));
}

#[test]
fn daily_keeps_the_newest_backup_of_each_day() {
    let backups = vec![
        cand("a", "2026-03-01T01:00:00Z"),
        cand("b", "2026-03-01T13:00:00Z"),
        cand("c", "2026-03-02T01:00:00Z"),
        cand("d", "2026-03-02T23:00:00Z"),
    ];
    let plan = plan_retention(&backups, &rules(0, 2, 0, 0));
    assert_eq!(kept_ids(&plan), ["d", "b"]);
    assert_eq!(plan.deleted, ["c", "a"]);
}

#[test]
fn days_are_counted_in_the_policy_time_zone() {
    // 23:30 UTC on the 1st is already the 2nd in Tokyo, the same day as 01:00 UTC on the 2nd.
    let backups = vec![
        cand("late", "2026-03-01T23:30:00Z"),
        cand("next", "2026-03-02T01:00:00Z"),
    ];
    let utc = plan_retention(&backups, &rules(0, 2, 0, 0));
    assert_eq!(kept_ids(&utc), ["next", "late"]);
    let mut tokyo = rules(0, 2, 0, 0);
    tokyo.time_zone = TimeZone::get("Asia/Tokyo").unwrap();
    let plan = plan_retention(&backups, &tokyo);
    assert_eq!(kept_ids(&plan), ["next"]);
    assert_eq!(plan.deleted, ["late"]);
}

#[test]
fn weekly_uses_iso_weeks_and_monthly_calendar_months() {
    // 90 daily backups from Thursday 2026-01-01.
    let backups = daily_backups(90);
    let plan = plan_retention(&backups, &rules(0, 0, 2, 2));
    // Newest: d089 = 2026-03-31 (Tuesday, ISO week 14). Week 13's newest is Sunday 03-29 = d087.
    let weekly: Vec<&str> = plan
        .kept
        .iter()
        .filter(|k| k.reasons.contains(&KeepReason::Weekly))
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(weekly, ["d089", "d087"]);
    // Months: March's newest d089, February's newest 02-28 = d058.
    let monthly: Vec<&str> = plan
        .kept
        .iter()
        .filter(|k| k.reasons.contains(&KeepReason::Monthly))
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(monthly, ["d089", "d058"]);
    let newest = &plan.kept[0];
    assert_eq!(newest.reasons, [KeepReason::Weekly, KeepReason::Monthly]);
}

#[test]
fn gaps_do_not_wipe_history() {
    // Two backups, a month apart: keep 7 daily still keeps both.
    let backups = vec![
        cand("old", "2026-01-01T00:00:00Z"),
        cand("new", "2026-02-01T00:00:00Z"),
    ];
    let plan = plan_retention(&backups, &rules(0, 7, 0, 0));
    assert_eq!(kept_ids(&plan), ["new", "old"]);
}

#[test]
fn newest_verified_is_never_deleted() {
    let mut backups = daily_backups(10);
    backups[2].verified = true;
    backups[1].verified = true;
    let plan = plan_retention(&backups, &rules(1, 0, 0, 0));
    assert_eq!(kept_ids(&plan), ["d009", "d002"]);
    assert_eq!(plan.kept[1].reasons, [KeepReason::NewestVerified]);
}

#[test]
fn the_newest_backup_survives_rules_that_keep_nothing() {
    let backups = daily_backups(3);
    let plan = plan_retention(&backups, &rules(0, 0, 0, 0));
    assert_eq!(kept_ids(&plan), ["d002"]);
    assert_eq!(plan.kept[0].reasons, [KeepReason::Newest]);
}

#[test]
fn no_backups_plan_nothing() {
    assert_eq!(
        plan_retention(&[], &RetentionRules::default()),
        RetentionPlan::default()
    );
}

#[test]
fn simulated_year_of_daily_backups_keeps_exactly_the_configured_generations() {
    // Run retention after every daily backup for a year, as the controller would.
    let r = rules(2, 7, 4, 6);
    let mut repo: Vec<Candidate> = Vec::new();
    for day in daily_backups(365) {
        repo.push(day);
        let plan = plan_retention(&repo, &r);
        repo.retain(|c| !plan.deleted.contains(&c.id));
    }
    let plan = plan_retention(&repo, &r);
    assert!(plan.deleted.is_empty());
    let count = |reason| {
        plan.kept
            .iter()
            .filter(|k| k.reasons.contains(&reason))
            .count()
    };
    assert_eq!(count(KeepReason::Last), 2);
    assert_eq!(count(KeepReason::Daily), 7);
    assert_eq!(count(KeepReason::Weekly), 4);
    assert_eq!(count(KeepReason::Monthly), 6);
    // 7 daily cover the last 2 and the newest week and month; the other 3 weeks are older
    // Sundays; the other 5 months are older month-ends (none of them a kept Sunday by chance
    // is allowed, hence ≤).
    assert!(repo.len() <= 7 + 3 + 5, "{} kept", repo.len());
    assert!(repo.len() >= 7 + 3, "{} kept", repo.len());
}

fn random_candidates(rng: &mut rand::rngs::StdRng) -> Vec<Candidate> {
    let n = rng.random_range(0..60);
    let base = at("2026-01-01T00:00:00Z");
    (0..n)
        .map(|i| Candidate {
            id: format!("b{i:03}"),
            time: base + SignedDuration::from_secs(rng.random_range(0..200 * 86_400)),
            verified: rng.random_bool(0.1),
        })
        .collect()
}

#[test]
fn property_every_backup_is_either_kept_with_a_reason_or_deleted() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let zones = ["UTC", "Asia/Tokyo", "America/New_York", "Pacific/Chatham"];
    for _ in 0..500 {
        let backups = random_candidates(&mut rng);
        let mut r = rules(
            rng.random_range(0..5),
            rng.random_range(0..10),
            rng.random_range(0..6),
            rng.random_range(0..6),
        );
        r.time_zone = TimeZone::get(zones[rng.random_range(0..zones.len())]).unwrap();
        let plan = plan_retention(&backups, &r);

        // A partition of the input.
        let mut all: Vec<&str> = kept_ids(&plan);
        all.extend(plan.deleted.iter().map(String::as_str));
        all.sort();
        let mut ids: Vec<&str> = backups.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        assert_eq!(all, ids);
        assert!(plan.kept.iter().all(|k| !k.reasons.is_empty()));

        // Never empty, newest and newest verified kept.
        let newest = backups.iter().max_by_key(|c| (c.time, c.id.clone()));
        if let Some(newest) = newest {
            assert!(kept_ids(&plan).contains(&newest.id.as_str()));
        }
        let newest_verified = backups
            .iter()
            .filter(|c| c.verified)
            .max_by_key(|c| (c.time, c.id.clone()));
        if let Some(v) = newest_verified {
            assert!(kept_ids(&plan).contains(&v.id.as_str()));
        }

        // Each rule keeps at most its count.
        let count = |reason| {
            plan.kept
                .iter()
                .filter(|k| k.reasons.contains(&reason))
                .count()
        };
        assert!(count(KeepReason::Last) <= r.keep_last as usize);
        assert!(count(KeepReason::Daily) <= r.keep_daily as usize);
        assert!(count(KeepReason::Weekly) <= r.keep_weekly as usize);
        assert!(count(KeepReason::Monthly) <= r.keep_monthly as usize);

        // Idempotent: planning again over what is kept deletes nothing.
        let survivors: Vec<Candidate> = backups
            .iter()
            .filter(|c| kept_ids(&plan).contains(&c.id.as_str()))
            .cloned()
            .collect();
        let again = plan_retention(&survivors, &r);
        assert!(
            again.deleted.is_empty(),
            "second pass deleted {:?}",
            again.deleted
        );

        // Input order does not matter.
        let mut shuffled = backups.clone();
        shuffled.reverse();
        assert_eq!(plan_retention(&shuffled, &r), plan);
    }
}
