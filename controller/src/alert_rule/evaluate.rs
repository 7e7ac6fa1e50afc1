//! The pure part of alert evaluation: what this build cannot evaluate (values of a newer tend),
//! aggregating scraped series (the windowed aggregations are in `window.rs`),
//! comparing a value with the threshold, and the Inactive → Pending → Firing state machine.
//! No I/O and no Kubernetes types beyond the CRD's own enums; times come in as arguments.
//!
//! Over 400 lines because of its unit tests; the code itself is about half.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use tend_crds::alert_rule::{
    Aggregation, AlertSource, AlertState, HttpMeasure, HttpMethod, Operator, PostgresMeasure,
};

use super::textformat::Sample;

/// What this build cannot evaluate in `source`, in words for the Ready message; `None` when
/// it can.
pub fn unsupported(source: &AlertSource, operator: Operator) -> Option<String> {
    if operator == Operator::Unknown {
        return Some(
            "an operator unknown to this version of tend (spec.condition.operator)".into(),
        );
    }
    if let Some(http) = &source.http {
        if http.method == HttpMethod::Unknown {
            return Some("an HTTP method unknown to this version (spec.source.http.method)".into());
        }
        if http.measure == HttpMeasure::Unknown {
            return Some("a measure unknown to this version (spec.source.http.measure)".into());
        }
    }
    if let Some(postgres) = &source.postgres
        && postgres.measure == PostgresMeasure::Unknown
    {
        return Some("a measure unknown to this version (spec.source.postgres.measure)".into());
    }
    if source
        .metrics
        .as_ref()
        .is_some_and(|m| m.aggregation == Aggregation::Unknown)
    {
        return Some(
            "an aggregation unknown to this version (spec.source.metrics.aggregation)".into(),
        );
    }
    None
}

/// Combines the samples named `metric` whose labels include every pair of `selector`.
/// `count` of nothing is 0; the other aggregations of nothing are an error (no data).
pub fn aggregate(
    samples: &[Sample],
    metric: &str,
    selector: &BTreeMap<String, String>,
    aggregation: Aggregation,
) -> Result<f64, String> {
    let values: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == metric)
        .filter(|s| selector.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| s.value)
        .collect();
    if aggregation == Aggregation::Count {
        return Ok(values.len() as f64);
    }
    if values.is_empty() {
        return Err(if selector.is_empty() {
            format!("the page has no series {metric}")
        } else {
            let wanted: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!(
                "no series {metric} has the labels {{{}}}",
                wanted.join(", ")
            )
        });
    }
    // NaN propagates (as in PromQL): a NaN series makes the result NaN, which no
    // threshold except `!=` matches.
    let fold = |f: fn(f64, f64) -> f64| {
        values.iter().copied().reduce(|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                f(a, b)
            }
        })
    };
    let value = match aggregation {
        Aggregation::Sum => values.iter().sum(),
        Aggregation::Avg => values.iter().sum::<f64>() / values.len() as f64,
        Aggregation::Min => fold(f64::min).unwrap_or(f64::NAN),
        Aggregation::Max => fold(f64::max).unwrap_or(f64::NAN),
        other => {
            return Err(format!(
                "the {other:?} aggregation is not part of this build"
            ));
        }
    };
    Ok(value)
}

/// `value <operator> threshold`; `None` for an operator this version does not know.
pub fn compare(value: f64, operator: Operator, threshold: f64) -> Option<bool> {
    Some(match operator {
        Operator::Gt => value > threshold,
        Operator::Ge => value >= threshold,
        Operator::Lt => value < threshold,
        Operator::Le => value <= threshold,
        Operator::Eq => value == threshold,
        Operator::Ne => value != threshold,
        Operator::Unknown => return None,
    })
}

/// A value as text for status: `3`, `0.073`, `NaN`, `+Inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// The part of an alert's status the state machine keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub state: AlertState,
    pub active_since: Option<Timestamp>,
}

/// A state change worth an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Inactive → Pending: the condition holds, `for` has not elapsed.
    Pending,
    /// Pending or Inactive → Firing.
    Firing,
    /// Firing → Inactive.
    Resolved,
    /// Pending → Inactive: the condition stopped holding before `for` elapsed.
    Cleared,
}

/// One evaluation's step. `holds` is `None` when the evaluation failed: the condition is
/// unknown and the state is kept. `activeSince` is when the current Pending or Firing state
/// began (so it moves when Pending becomes Firing).
pub fn step(
    previous: Memory,
    holds: Option<bool>,
    now: Timestamp,
    for_: Duration,
) -> (Memory, Option<Change>) {
    let Some(holds) = holds else {
        return (previous, None);
    };
    // A state written by a newer tend is read as Inactive.
    let state = match previous.state {
        AlertState::Unknown => AlertState::Inactive,
        s => s,
    };
    let firing = Memory {
        state: AlertState::Firing,
        active_since: Some(now),
    };
    let inactive = Memory {
        state: AlertState::Inactive,
        active_since: None,
    };
    match (state, holds) {
        (AlertState::Firing, true) => (previous, None),
        (AlertState::Firing, false) => (inactive, Some(Change::Resolved)),
        (AlertState::Pending, false) => (inactive, Some(Change::Cleared)),
        (AlertState::Pending, true) => {
            let since = previous.active_since.unwrap_or(now);
            let held = now.duration_since(since);
            if held >= jiff::SignedDuration::try_from(for_).unwrap_or(jiff::SignedDuration::MAX) {
                (firing, Some(Change::Firing))
            } else {
                (
                    Memory {
                        state: AlertState::Pending,
                        active_since: Some(since),
                    },
                    None,
                )
            }
        }
        (_, true) if for_.is_zero() => (firing, Some(Change::Firing)),
        (_, true) => (
            Memory {
                state: AlertState::Pending,
                active_since: Some(now),
            },
            Some(Change::Pending),
        ),
        (_, false) => (inactive, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert_rule::textformat::parse;

    fn page() -> Vec<Sample> {
        parse(
            "fieldbook_verify_missing_objects{kind=\"photo\",bucket=\"a\"} 3\n\
             fieldbook_verify_missing_objects{kind=\"photo\",bucket=\"b\"} 1\n\
             fieldbook_verify_missing_objects{kind=\"thumb\",bucket=\"a\"} 7\n\
             other 100\n",
        )
        .unwrap()
    }

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn aggregations_over_selected_series() {
        let m = "fieldbook_verify_missing_objects";
        let all = sel(&[]);
        let photos = sel(&[("kind", "photo")]);
        assert_eq!(aggregate(&page(), m, &all, Aggregation::Sum), Ok(11.0));
        assert_eq!(aggregate(&page(), m, &photos, Aggregation::Sum), Ok(4.0));
        assert_eq!(aggregate(&page(), m, &photos, Aggregation::Avg), Ok(2.0));
        assert_eq!(aggregate(&page(), m, &all, Aggregation::Min), Ok(1.0));
        assert_eq!(aggregate(&page(), m, &all, Aggregation::Max), Ok(7.0));
        assert_eq!(aggregate(&page(), m, &photos, Aggregation::Count), Ok(2.0));
        let none = sel(&[("kind", "video")]);
        assert_eq!(aggregate(&page(), m, &none, Aggregation::Count), Ok(0.0));
        let err = aggregate(&page(), m, &none, Aggregation::Max).unwrap_err();
        assert!(err.contains("kind=\"video\""), "{err}");
        let err = aggregate(&page(), "absent", &all, Aggregation::Sum).unwrap_err();
        assert!(err.contains("no series absent"), "{err}");
        // The metric name must match exactly, not as a prefix.
        assert_eq!(aggregate(&page(), "oth", &all, Aggregation::Count), Ok(0.0));
    }

    #[test]
    fn nan_propagates_and_matches_only_not_equal() {
        let samples = parse("x{a=\"1\"} 1\nx{a=\"2\"} NaN\nx{a=\"3\"} 5\n").unwrap();
        for aggregation in [
            Aggregation::Sum,
            Aggregation::Avg,
            Aggregation::Min,
            Aggregation::Max,
        ] {
            let v = aggregate(&samples, "x", &sel(&[]), aggregation).unwrap();
            assert!(v.is_nan(), "{aggregation:?} gave {v}");
            assert_eq!(compare(v, Operator::Gt, 0.0), Some(false));
            assert_eq!(compare(v, Operator::Ne, 0.0), Some(true));
        }
    }

    #[test]
    fn threshold_operators() {
        use Operator::*;
        let cases = [
            (Gt, 3.0, 2.0, true),
            (Gt, 2.0, 2.0, false),
            (Ge, 2.0, 2.0, true),
            (Ge, 1.9, 2.0, false),
            (Lt, 1.0, 2.0, true),
            (Lt, 2.0, 2.0, false),
            (Le, 2.0, 2.0, true),
            (Le, 2.1, 2.0, false),
            (Eq, 0.0, 0.0, true),
            (Eq, 0.5, 0.0, false),
            (Ne, 0.5, 0.0, true),
            (Ne, 0.0, 0.0, false),
            (Gt, f64::INFINITY, 1e300, true),
        ];
        for (op, value, threshold, expected) in cases {
            assert_eq!(
                compare(value, op, threshold),
                Some(expected),
                "{value} {op:?} {threshold}"
            );
        }
        assert_eq!(compare(1.0, Unknown, 0.0), None);
    }

    #[test]
    fn values_as_text() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.073), "0.073");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const INACTIVE: Memory = Memory {
        state: AlertState::Inactive,
        active_since: None,
    };

    #[test]
    fn pending_then_firing_after_for_then_resolved_then_fires_again() {
        let for_ = Duration::from_secs(30);
        let t0 = at("2026-05-01T10:00:00Z");
        let (m, change) = step(INACTIVE, Some(true), t0, for_);
        assert_eq!(change, Some(Change::Pending));
        assert_eq!(m.state, AlertState::Pending);
        assert_eq!(m.active_since, Some(t0));

        // Still inside `for`: no change, activeSince kept.
        let (m, change) = step(m, Some(true), at("2026-05-01T10:00:29Z"), for_);
        assert_eq!((m.state, change), (AlertState::Pending, None));
        assert_eq!(m.active_since, Some(t0));

        // An evaluation error keeps everything.
        let (m, change) = step(m, None, at("2026-05-01T10:00:29Z"), for_);
        assert_eq!((m.state, change), (AlertState::Pending, None));

        let t30 = at("2026-05-01T10:00:30Z");
        let (m, change) = step(m, Some(true), t30, for_);
        assert_eq!(change, Some(Change::Firing));
        assert_eq!(m.state, AlertState::Firing);
        assert_eq!(m.active_since, Some(t30));

        let (m, change) = step(m, Some(true), at("2026-05-01T10:05:00Z"), for_);
        assert_eq!((m.state, change), (AlertState::Firing, None));
        assert_eq!(m.active_since, Some(t30));

        let (m, change) = step(m, None, at("2026-05-01T10:06:00Z"), for_);
        assert_eq!((m.state, change), (AlertState::Firing, None));

        let (m, change) = step(m, Some(false), at("2026-05-01T10:07:00Z"), for_);
        assert_eq!(change, Some(Change::Resolved));
        assert_eq!(m, INACTIVE);

        // Re-fire: pending again first, firing after another 30 s.
        let t1 = at("2026-05-01T11:00:00Z");
        let (m, change) = step(m, Some(true), t1, for_);
        assert_eq!(change, Some(Change::Pending));
        let (m, change) = step(m, Some(true), at("2026-05-01T11:00:45Z"), for_);
        assert_eq!(change, Some(Change::Firing));
        assert_eq!(m.state, AlertState::Firing);
    }

    #[test]
    fn zero_for_fires_at_once_and_pending_can_clear() {
        let t = at("2026-05-01T10:00:00Z");
        let (m, change) = step(INACTIVE, Some(true), t, Duration::ZERO);
        assert_eq!(change, Some(Change::Firing));
        assert_eq!(m.active_since, Some(t));

        let (m, change) = step(INACTIVE, Some(true), t, Duration::from_secs(60));
        assert_eq!(change, Some(Change::Pending));
        let (m, change) = step(m, Some(false), t, Duration::from_secs(60));
        assert_eq!(change, Some(Change::Cleared));
        assert_eq!(m, INACTIVE);

        let (m, change) = step(INACTIVE, Some(false), t, Duration::ZERO);
        assert_eq!((m, change), (INACTIVE, None));
        let unknown = Memory {
            state: AlertState::Unknown,
            active_since: None,
        };
        assert_eq!(
            step(unknown, Some(false), t, Duration::ZERO),
            (INACTIVE, None)
        );
    }

    #[test]
    fn every_source_and_aggregation_is_supported_but_unknown_values() {
        for source in [
            serde_json::json!({"metrics": {"url": "http://x/metrics", "metric": "m", "aggregation": "rate", "window": "5m"}}),
            serde_json::json!({"metrics": {"url": "http://x/metrics", "metric": "m", "aggregation": "quantile", "quantile": 0.9, "window": "5m"}}),
            serde_json::json!({"prometheus": {"url": "http://p:9090", "query": "up"}}),
            serde_json::json!({"postgres": {"connectionSecretRef": {"name": "db"}}}),
        ] {
            let source: AlertSource = serde_json::from_value(source).unwrap();
            assert_eq!(unsupported(&source, Operator::Gt), None, "{source:?}");
        }
        let source: AlertSource = serde_json::from_value(serde_json::json!({
            "postgres": {"connectionSecretRef": {"name": "db"}, "measure": "rowCount"}
        }))
        .unwrap();
        let what = unsupported(&source, Operator::Gt).unwrap();
        assert!(what.contains("spec.source.postgres.measure"), "{what}");
        let source: AlertSource = serde_json::from_value(serde_json::json!({
            "metrics": {"url": "http://x/metrics", "metric": "m", "aggregation": "median"}
        }))
        .unwrap();
        let what = unsupported(&source, Operator::Gt).unwrap();
        assert!(what.contains("spec.source.metrics.aggregation"), "{what}");
        let source: AlertSource = serde_json::from_value(serde_json::json!({
            "metrics": {"url": "http://x/metrics", "metric": "m", "aggregation": "max"}
        }))
        .unwrap();
        assert_eq!(unsupported(&source, Operator::Gt), None);
        let source: AlertSource =
            serde_json::from_value(serde_json::json!({"http": {"url": "http://x/"}})).unwrap();
        assert_eq!(unsupported(&source, Operator::Ge), None);
    }
}
