//! When a BackupPolicy (or any scheduled kind) should run: pure decisions, no Kubernetes.
//!
//! Rules (as CronJob's, plus an on-demand trigger):
//! - a scheduled time that passed while nothing ran still runs once if it is at most
//!   `starting_deadline` old; older missed times are skipped and reported;
//! - several missed times collapse into one run (the newest);
//! - `suspend` stops scheduled runs, not on-demand ones;
//! - an on-demand request is a new value of an annotation; each value runs once.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tend_crds::cron::Schedule;

/// Why a run starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule's time `due` arrived.
    Schedule { due: Timestamp },
    /// The on-demand annotation got a new value.
    Manual { request: String },
}

impl Trigger {
    /// Label for status and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Trigger::Schedule { .. } => "Schedule",
            Trigger::Manual { .. } => "Manual",
        }
    }
}

/// What the scheduler knows about one policy.
#[derive(Clone, Debug)]
pub struct ScheduleState<'a> {
    pub schedule: &'a Schedule,
    pub time_zone: &'a TimeZone,
    pub suspend: bool,
    pub starting_deadline: Duration,
    /// The last scheduled time that was run (or deliberately skipped); `None` for a new policy.
    pub last_schedule_time: Option<Timestamp>,
    /// When the policy was created: a new policy does not run for times before it existed.
    pub created: Timestamp,
    /// Current value of the on-demand annotation.
    pub requested: Option<&'a str>,
    /// The annotation value that last ran.
    pub last_handled_request: Option<&'a str>,
}

/// The scheduler's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Start a run now.
    pub run: Option<Trigger>,
    /// A scheduled time missed by more than the starting deadline (skipped, report it).
    pub missed: Option<Timestamp>,
    /// The next scheduled time after now (None when suspended or never).
    pub next: Option<Timestamp>,
}

/// Decides what to do at `now`.
pub fn decide(state: &ScheduleState<'_>, now: Timestamp) -> Decision {
    let next = if state.suspend {
        None
    } else {
        state.schedule.next_after(now, state.time_zone)
    };
    if let Some(request) = state.requested.filter(|r| !r.is_empty())
        && state.last_handled_request != Some(request)
    {
        return Decision {
            run: Some(Trigger::Manual {
                request: request.to_string(),
            }),
            missed: None,
            next,
        };
    }
    if state.suspend {
        return Decision {
            run: None,
            missed: None,
            next: None,
        };
    }
    let since = state.last_schedule_time.unwrap_or(state.created);
    let Some(due) = state.schedule.last_due(since, now, state.time_zone) else {
        return Decision {
            run: None,
            missed: None,
            next,
        };
    };
    let late = Duration::try_from(now.duration_since(due)).unwrap_or(Duration::ZERO);
    if late <= state.starting_deadline {
        Decision {
            run: Some(Trigger::Schedule { due }),
            missed: None,
            next,
        }
    } else {
        Decision {
            run: None,
            missed: Some(due),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    static UTC: TimeZone = TimeZone::UTC;

    fn state<'a>(schedule: &'a Schedule, last: Option<&str>) -> ScheduleState<'a> {
        ScheduleState {
            schedule,
            time_zone: &UTC,
            suspend: false,
            starting_deadline: Duration::from_secs(3600),
            last_schedule_time: last.map(ts),
            created: ts("2026-11-01T00:00:00Z"),
            requested: None,
            last_handled_request: None,
        }
    }

    #[test]
    fn due_time_runs_once() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let s = state(&daily, Some("2026-11-27T02:00:00Z"));
        let d = decide(&s, ts("2026-11-28T02:00:05Z"));
        assert_eq!(
            d.run,
            Some(Trigger::Schedule {
                due: ts("2026-11-28T02:00:00Z")
            })
        );
        assert_eq!(d.next, Some(ts("2026-11-29T02:00:00Z")));
        // Once recorded as run, it does not run again.
        let s = state(&daily, Some("2026-11-28T02:00:00Z"));
        assert_eq!(decide(&s, ts("2026-11-28T02:10:00Z")).run, None);
    }

    #[test]
    fn missed_run_inside_the_deadline_still_runs() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let s = state(&daily, Some("2026-11-27T02:00:00Z"));
        // The controller was down from 01:50 to 02:40.
        let d = decide(&s, ts("2026-11-28T02:40:00Z"));
        assert_eq!(
            d.run,
            Some(Trigger::Schedule {
                due: ts("2026-11-28T02:00:00Z")
            })
        );
    }

    #[test]
    fn missed_run_past_the_deadline_is_skipped_and_reported() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let s = state(&daily, Some("2026-11-27T02:00:00Z"));
        let d = decide(&s, ts("2026-11-28T05:00:00Z"));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, Some(ts("2026-11-28T02:00:00Z")));
    }

    #[test]
    fn many_missed_runs_collapse_into_the_newest() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let s = state(&hourly, Some("2026-11-28T00:00:00Z"));
        let d = decide(&s, ts("2026-11-28T05:30:00Z"));
        assert_eq!(
            d.run,
            Some(Trigger::Schedule {
                due: ts("2026-11-28T05:00:00Z")
            })
        );
    }

    #[test]
    fn a_new_policy_does_not_run_for_times_before_it_existed() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let mut s = state(&daily, None);
        s.created = ts("2026-11-28T03:00:00Z");
        assert_eq!(decide(&s, ts("2026-11-28T03:00:01Z")).run, None);
    }

    #[test]
    fn suspend_stops_schedules_but_not_manual_requests() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let mut s = state(&daily, Some("2026-11-27T02:00:00Z"));
        s.suspend = true;
        let d = decide(&s, ts("2026-11-28T02:00:05Z"));
        assert_eq!(
            d,
            Decision {
                run: None,
                missed: None,
                next: None
            }
        );
        s.requested = Some("2026-11-28-before-upgrade");
        assert_eq!(
            decide(&s, ts("2026-11-28T02:00:05Z")).run,
            Some(Trigger::Manual {
                request: "2026-11-28-before-upgrade".into()
            })
        );
    }

    #[test]
    fn each_manual_request_value_runs_once() {
        let daily = Schedule::parse("0 2 * * *").unwrap();
        let mut s = state(&daily, Some("2026-11-28T02:00:00Z"));
        s.requested = Some("1");
        s.last_handled_request = Some("1");
        assert_eq!(decide(&s, ts("2026-11-28T10:00:00Z")).run, None);
        s.requested = Some("2");
        assert!(matches!(
            decide(&s, ts("2026-11-28T10:00:00Z")).run,
            Some(Trigger::Manual { .. })
        ));
    }
}
