//! The pure part of an AlertRule's notifications: which message each route is owed now, the
//! silence in effect, and the message itself. No I/O; times come in as arguments.
//!
//! Each route's status records the last notification delivered on it as a key — `firing
//! <since>`, `repeat <since>` or `resolved <since>`, where `since` is when the firing's
//! condition began. A route is owed the firing once per firing, a repeat every
//! `repeatInterval` while it lasts, and the resolution once (if it heard of the firing), so a
//! restart or a reconcile between evaluations sends nothing twice. A failed delivery leaves the
//! key as it was, so the next attempt sends the same message.
//!
//! Over 400 lines because of its unit tests; the code itself is about half.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tend_crds::alert_rule::{AlertRule, AlertRuleSpec, AlertState, RouteStatus, Silence};
use tend_crds::types::Severity;
use tend_notify::{Notification, ObjectRef, Status};

/// What a route is owed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owed {
    /// Send this message; on delivery record `key`.
    Send { message: Message, key: String },
    /// Record `key` without sending (the route does not want resolutions).
    Record { key: String },
}

/// Which message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Firing,
    Repeat,
    Resolved,
}

/// The firing a key speaks of and whether it was the resolution: `("firing", since)`.
fn parse_key(key: &str) -> Option<(&str, Timestamp)> {
    let (what, since) = key.split_once(' ')?;
    Some((what, since.parse().ok()?))
}

/// When the firing a key speaks of began.
pub fn key_since(key: &str) -> Option<Timestamp> {
    parse_key(key).map(|(_, since)| since)
}

/// Keys name times in whole seconds, as status stores them (`metav1.Time`): a key written
/// from a fresh evaluation must equal the one rebuilt from the stored status.
fn key(what: &str, since: Timestamp) -> String {
    format!("{what} {}", whole_seconds(since))
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// What `route` is owed now. `since` is when the current firing began (`None` unless
/// `state` is Firing).
pub fn owed(
    state: AlertState,
    since: Option<Timestamp>,
    route: &RouteStatus,
    send_resolved: bool,
    repeat_interval: Duration,
    now: Timestamp,
) -> Option<Owed> {
    let delivered = route.delivered.as_deref().and_then(parse_key);
    match (state, since) {
        (AlertState::Firing, Some(since)) => match delivered {
            Some(("firing" | "repeat", at)) if at == whole_seconds(since) => {
                let last = route.delivered_time.as_ref().map(|t| t.0)?;
                let interval = SignedDuration::try_from(repeat_interval).ok()?;
                (now.duration_since(last) >= interval).then(|| Owed::Send {
                    message: Message::Repeat,
                    key: key("repeat", since),
                })
            }
            _ => Some(Owed::Send {
                message: Message::Firing,
                key: key("firing", since),
            }),
        },
        _ => match delivered {
            // The route heard of a firing that is over.
            Some(("firing" | "repeat", since)) => {
                let key = key("resolved", since);
                Some(if send_resolved {
                    Owed::Send {
                        message: Message::Resolved,
                        key,
                    }
                } else {
                    Owed::Record { key }
                })
            }
            _ => None,
        },
    }
}

/// Whether a route that failed at `last_attempt` may be tried again at `now`: failed sends
/// are retried once per evaluation interval, not on every reconcile.
pub fn may_retry(route: &RouteStatus, interval: Duration, now: Timestamp) -> bool {
    let failed = route
        .last_result
        .as_deref()
        .is_some_and(|r| r != tend_crds::alert_rule::reasons::DELIVERED);
    match (failed, route.last_attempt_time.as_ref()) {
        (true, Some(last)) => {
            let waited = now.duration_since(last.0);
            waited.is_negative()
                || SignedDuration::try_from(interval).is_ok_and(|interval| waited >= interval)
        }
        _ => true,
    }
}

/// The status entries for `spec.routes`, in their order: kept for routes still declared,
/// fresh for new ones; routes no longer declared are dropped.
pub fn align(spec: &AlertRuleSpec, routes: &[RouteStatus]) -> Vec<RouteStatus> {
    spec.routes
        .iter()
        .map(|route| {
            let r#type = route_type(route);
            routes
                .iter()
                .find(|r| r.name == route.name && r.r#type == r#type)
                .cloned()
                .unwrap_or_else(|| RouteStatus {
                    name: route.name.clone(),
                    r#type: r#type.to_string(),
                    ..RouteStatus::default()
                })
        })
        .collect()
}

/// `email`, `slack`, `teams` or `webhook`.
pub fn route_type(route: &tend_crds::types::NotificationRoute) -> &'static str {
    if route.email.is_some() {
        "email"
    } else if route.slack.is_some() {
        "slack"
    } else if route.teams.is_some() {
        "teams"
    } else {
        "webhook"
    }
}

/// The first silence of `silences` in effect at `now`, by a clock rule (fixed or recurring
/// window). `restoring` answers the `duringInPlaceRestoresOf` ones: whether an in-place
/// restore of the named BackupPolicy is unfinished.
pub fn silence_in_effect(
    silences: &[Silence],
    now: Timestamp,
    restoring: impl Fn(&str) -> bool,
) -> Option<&Silence> {
    silences.iter().find(|s| {
        if let (Some(from), Some(until)) = (&s.from, &s.until) {
            return from.0 <= now && now < until.0;
        }
        if let (Some(schedule), Some(duration)) = (&s.schedule, &s.duration) {
            let (Ok(schedule), Ok(length), Ok(tz)) = (
                tend_crds::cron::Schedule::parse(schedule.as_str()),
                duration.parse(),
                s.time_zone.resolve(),
            ) else {
                return false;
            };
            let Ok(length) = SignedDuration::try_from(length) else {
                return false;
            };
            // A window that began within `length` before now (or exactly now) is open.
            let Ok(before) = now.checked_sub(length) else {
                return false;
            };
            let Ok(slightly_before) = before.checked_sub(SignedDuration::from_nanos(1)) else {
                return false;
            };
            return schedule
                .last_due(slightly_before, now, &tz)
                .is_some_and(|start| {
                    start
                        .checked_add(length)
                        .is_ok_and(|end| start <= now && now < end)
                });
        }
        s.during_in_place_restores_of
            .as_ref()
            .is_some_and(|policy| restoring(&policy.name))
    })
}

/// Stable identity of a rule's alerts (hex), the webhook's `fingerprint`.
pub fn fingerprint(namespace: &str, name: &str) -> String {
    let hash = format!("{namespace}/{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// What the observation said, for the message.
pub struct Observed<'a> {
    pub value: Option<&'a str>,
    pub condition: String,
    pub since: Timestamp,
    pub now: Timestamp,
}

/// The notification `message` of `rule`.
pub fn notification(rule: &AlertRule, message: Message, observed: &Observed<'_>) -> Notification {
    let spec = &rule.spec;
    let namespace = rule.metadata.namespace.clone().unwrap_or_default();
    let name = rule.metadata.name.clone().unwrap_or_default();
    let severity = match spec.severity {
        Severity::Critical => "critical",
        Severity::Info => "info",
        _ => "warning",
    };
    let labels = BTreeMap::from([
        ("alertname".to_string(), name.clone()),
        ("namespace".to_string(), namespace.clone()),
        ("severity".to_string(), severity.to_string()),
    ]);
    let mut annotations = BTreeMap::from([("summary".to_string(), spec.summary.clone())]);
    if let Some(description) = &spec.description {
        annotations.insert("description".into(), description.clone());
    }
    if let Some(url) = &spec.runbook_url {
        annotations.insert("runbook_url".into(), url.clone());
    }
    Notification {
        source: "AlertRule".into(),
        group_key: format!("{namespace}/AlertRule/{name}"),
        fingerprint: fingerprint(&namespace, &name),
        status: if message == Message::Resolved {
            Status::Resolved
        } else {
            Status::Firing
        },
        repeat: message == Message::Repeat,
        severity: severity.into(),
        title: spec.summary.clone(),
        description: spec.description.clone(),
        value: observed.value.map(str::to_owned),
        condition: Some(observed.condition.clone()),
        starts_at: observed.since,
        ends_at: (message == Message::Resolved).then_some(observed.now),
        runbook_url: spec.runbook_url.clone(),
        object: Some(ObjectRef {
            kind: "AlertRule".into(),
            namespace,
            name,
        }),
        facts: Vec::new(),
        labels,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn route(delivered: Option<&str>, delivered_at: Option<&str>) -> RouteStatus {
        RouteStatus {
            name: "mail".into(),
            r#type: "email".into(),
            delivered: delivered.map(str::to_owned),
            delivered_time: delivered_at.map(|t| Time(at(t))),
            ..RouteStatus::default()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_firing_is_sent_once_then_repeated_every_repeat_interval() {
        let since = at("2030-01-01T00:00:00Z");
        let now = at("2030-01-01T00:01:00Z");
        let fresh = route(None, None);
        assert_eq!(
            owed(AlertState::Firing, Some(since), &fresh, true, HOUR, now),
            Some(Owed::Send {
                message: Message::Firing,
                key: "firing 2030-01-01T00:00:00Z".into()
            })
        );
        let sent = route(
            Some("firing 2030-01-01T00:00:00Z"),
            Some("2030-01-01T00:01:00Z"),
        );
        assert_eq!(
            owed(AlertState::Firing, Some(since), &sent, true, HOUR, now),
            None,
            "nothing twice"
        );
        let later = at("2030-01-01T01:01:00Z");
        assert_eq!(
            owed(AlertState::Firing, Some(since), &sent, true, HOUR, later),
            Some(Owed::Send {
                message: Message::Repeat,
                key: "repeat 2030-01-01T00:00:00Z".into()
            })
        );
        let repeated = route(
            Some("repeat 2030-01-01T00:00:00Z"),
            Some("2030-01-01T01:01:00Z"),
        );
        assert_eq!(
            owed(
                AlertState::Firing,
                Some(since),
                &repeated,
                true,
                HOUR,
                at("2030-01-01T01:30:00Z")
            ),
            None
        );
    }

    #[test]
    fn keys_match_whatever_the_precision_of_since() {
        // Fresh from an evaluation `since` has a fraction; read back from status it has not.
        let precise = at("2030-01-01T00:00:00.386Z");
        let sent = route(
            Some("firing 2030-01-01T00:00:00Z"),
            Some("2030-01-01T00:00:01Z"),
        );
        let now = at("2030-01-01T00:00:02Z");
        assert_eq!(
            owed(AlertState::Firing, Some(precise), &sent, true, HOUR, now),
            None
        );
        assert_eq!(
            owed(
                AlertState::Firing,
                Some(precise),
                &route(None, None),
                true,
                HOUR,
                now
            ),
            Some(Owed::Send {
                message: Message::Firing,
                key: "firing 2030-01-01T00:00:00Z".into()
            })
        );
    }

    #[test]
    fn a_new_firing_is_sent_even_if_the_old_one_was_never_resolved() {
        let old = route(
            Some("firing 2030-01-01T00:00:00Z"),
            Some("2030-01-01T00:00:05Z"),
        );
        let since = at("2030-01-02T00:00:00Z");
        assert_eq!(
            owed(AlertState::Firing, Some(since), &old, true, HOUR, since),
            Some(Owed::Send {
                message: Message::Firing,
                key: "firing 2030-01-02T00:00:00Z".into()
            })
        );
    }

    #[test]
    fn the_resolution_goes_only_to_routes_that_heard_of_the_firing() {
        let now = at("2030-01-01T02:00:00Z");
        let heard = route(
            Some("repeat 2030-01-01T00:00:00Z"),
            Some("2030-01-01T01:00:00Z"),
        );
        for state in [AlertState::Inactive, AlertState::Pending] {
            assert_eq!(
                owed(state, None, &heard, true, HOUR, now),
                Some(Owed::Send {
                    message: Message::Resolved,
                    key: "resolved 2030-01-01T00:00:00Z".into()
                })
            );
        }
        assert_eq!(
            owed(AlertState::Inactive, None, &heard, false, HOUR, now),
            Some(Owed::Record {
                key: "resolved 2030-01-01T00:00:00Z".into()
            }),
            "sendResolved: false records without sending"
        );
        let resolved = route(
            Some("resolved 2030-01-01T00:00:00Z"),
            Some("2030-01-01T02:00:00Z"),
        );
        assert_eq!(
            owed(AlertState::Inactive, None, &resolved, true, HOUR, now),
            None
        );
        assert_eq!(
            owed(
                AlertState::Inactive,
                None,
                &route(None, None),
                true,
                HOUR,
                now
            ),
            None,
            "a firing nobody heard of resolves silently"
        );
    }

    #[test]
    fn failed_routes_are_retried_once_per_interval() {
        let now = at("2030-01-01T00:00:30Z");
        let mut r = route(None, None);
        assert!(may_retry(&r, Duration::from_secs(30), now));
        r.last_result = Some("ConnectFailed".into());
        r.last_attempt_time = Some(Time(at("2030-01-01T00:00:10Z")));
        assert!(!may_retry(&r, Duration::from_secs(30), now));
        assert!(may_retry(&r, Duration::from_secs(20), now));
        r.last_result = Some("Delivered".into());
        assert!(may_retry(&r, Duration::from_secs(30), now));
    }

    fn silence(json: serde_json::Value) -> Silence {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn fixed_windows_are_half_open() {
        let s = [silence(serde_json::json!({
            "name": "upgrade",
            "from": "2030-01-01T01:00:00Z",
            "until": "2030-01-01T03:00:00Z"
        }))];
        let no = |_: &str| false;
        assert!(silence_in_effect(&s, at("2030-01-01T00:59:59Z"), no).is_none());
        assert_eq!(
            silence_in_effect(&s, at("2030-01-01T01:00:00Z"), no).map(|s| s.name.as_str()),
            Some("upgrade")
        );
        assert!(silence_in_effect(&s, at("2030-01-01T03:00:00Z"), no).is_none());
    }

    #[test]
    fn recurring_windows_follow_the_schedule_in_its_time_zone() {
        // Sundays 02:00–04:00 in Tokyo = Saturdays 17:00–19:00 UTC.
        let s = [silence(serde_json::json!({
            "name": "sunday",
            "schedule": "0 2 * * 0",
            "duration": "2h",
            "timeZone": "Asia/Tokyo"
        }))];
        let no = |_: &str| false;
        // 2030-01-05 is a Saturday.
        assert!(silence_in_effect(&s, at("2030-01-05T16:59:00Z"), no).is_none());
        assert!(silence_in_effect(&s, at("2030-01-05T17:00:00Z"), no).is_some());
        assert!(silence_in_effect(&s, at("2030-01-05T18:59:59Z"), no).is_some());
        assert!(silence_in_effect(&s, at("2030-01-05T19:00:00Z"), no).is_none());
        assert!(silence_in_effect(&s, at("2030-01-06T18:00:00Z"), no).is_none());
    }

    #[test]
    fn restores_silence_only_their_policy() {
        let s = [silence(serde_json::json!({
            "name": "restoring",
            "duringInPlaceRestoresOf": {"name": "nightly"}
        }))];
        let now = at("2030-01-01T00:00:00Z");
        assert!(silence_in_effect(&s, now, |p| p == "nightly").is_some());
        assert!(silence_in_effect(&s, now, |p| p == "other").is_none());
    }

    #[test]
    fn the_message_carries_what_responders_need() {
        let rule: AlertRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "tend.dev/v1alpha1",
            "kind": "AlertRule",
            "metadata": {"name": "api-errors", "namespace": "fieldbook"},
            "spec": {
                "source": {"http": {"url": "http://x/"}},
                "condition": {"operator": ">", "threshold": 0.05},
                "severity": "critical",
                "summary": "API error rate above 5%",
                "description": "Requests fail.",
                "runbookUrl": "https://runbooks.example/app-errors"
            }
        }))
        .unwrap();
        let observed = Observed {
            value: Some("0.07"),
            condition: "> 0.05".into(),
            since: at("2030-01-01T00:00:00Z"),
            now: at("2030-01-01T00:10:00Z"),
        };
        let n = notification(&rule, Message::Resolved, &observed);
        assert_eq!(n.status, Status::Resolved);
        assert_eq!(n.ends_at, Some(at("2030-01-01T00:10:00Z")));
        assert_eq!(n.severity, "critical");
        assert_eq!(n.group_key, "fieldbook/AlertRule/api-errors");
        assert_eq!(n.labels["alertname"], "api-errors");
        assert_eq!(
            n.annotations["runbook_url"],
            "https://runbooks.example/app-errors"
        );
        assert_eq!(n.fingerprint, fingerprint("fieldbook", "api-errors"));
        assert_ne!(n.fingerprint, fingerprint("fieldbook", "api-error"));
        let n = notification(&rule, Message::Repeat, &observed);
        assert!(n.repeat && n.status == Status::Firing && n.ends_at.is_none());
    }
}
