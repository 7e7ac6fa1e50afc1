//! The AlertRule's per-process runtime ([`TendKind::State`](crate::reconcile::TendKind)): one
//! HTTP client for every rule, and the sample windows of the rules with a windowed
//! aggregation. [`Sources::evaluate`] reads a rule's signal — whichever of the four sources it
//! names — and returns the value, "no data yet" ([`StepError::NoData`]) or why there is none.
//!
//! Windows live as long as their rule evaluates: a window is keyed by the rule's namespace,
//! name and UID (a re-created rule starts afresh), is replaced when the metrics source changes,
//! and is forgotten once unused for longer than its span plus [`FORGET_AFTER`] — which is how
//! windows of deleted rules go, since nothing tells this state about deletions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use tend_crds::alert_rule::{Aggregation, AlertRule, MetricsScrape};

use super::postgres;
use super::probe::{Prober, redact};
use super::prometheus::{self, Answer};
use super::window::{Labels, NoValue, Window};
use crate::context::Context;
use crate::error::StepError;

/// An unused window is forgotten this long after its span.
pub const FORGET_AFTER: Duration = Duration::from_secs(10 * 60);
/// Unused windows are looked for at most this often (a scan visits every window).
const PRUNE_EVERY: SignedDuration = SignedDuration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RuleKey {
    namespace: String,
    name: String,
    uid: String,
}

struct Kept {
    /// The source the window was filled for; another one starts a new window.
    source: MetricsScrape,
    window: Window,
    last_used: Timestamp,
}

/// What the AlertRule kind keeps in this process.
pub struct Sources {
    prober: Result<Prober, String>,
    windows: Mutex<HashMap<RuleKey, Kept>>,
    /// When unused windows were last looked for.
    pruned: Mutex<Option<Timestamp>>,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            prober: Prober::new(),
            windows: Mutex::new(HashMap::new()),
            pruned: Mutex::new(None),
        }
    }
}

impl Sources {
    fn prober(&self) -> Result<&Prober, StepError> {
        self.prober
            .as_ref()
            .map_err(|e| StepError::Internal(format!("the HTTP client: {e}")))
    }

    /// Reads the rule's signal at `now`.
    pub async fn evaluate(
        &self,
        ctx: &Context,
        rule: &AlertRule,
        now: Timestamp,
    ) -> Result<f64, StepError> {
        let source = &rule.spec.source;
        let key = RuleKey {
            namespace: rule.namespace().unwrap_or_default(),
            name: rule.name_any(),
            uid: rule.uid().unwrap_or_default(),
        };
        {
            let mut pruned = self.pruned.lock().unwrap_or_else(|e| e.into_inner());
            let due = pruned.is_none_or(|at| {
                let since = now.duration_since(at);
                since >= PRUNE_EVERY || since.is_negative()
            });
            if due {
                *pruned = Some(now);
                self.forget_unused(now);
            }
        }
        let windowed = source
            .metrics
            .as_ref()
            .filter(|m| is_windowed(m.aggregation));
        if windowed.is_none() {
            self.windows().remove(&key);
        }
        if let Some(http) = &source.http {
            return self.prober()?.http(http).await;
        }
        if let Some(metrics) = windowed {
            return self.windowed(key, rule, metrics, now).await;
        }
        if let Some(metrics) = &source.metrics {
            return self.prober()?.metrics(metrics).await;
        }
        if let Some(query) = &source.prometheus {
            return match prometheus::query(self.prober()?, query).await? {
                Answer::Value(value) => Ok(value),
                Answer::Empty => Err(StepError::NoData(
                    "no data: spec.source.prometheus.query returned an empty vector".into(),
                )),
            };
        }
        if let Some(probe) = &source.postgres {
            let connection = postgres::connection(ctx, &key.namespace, probe).await?;
            return postgres::probe(&connection, probe).await;
        }
        Err(StepError::Setup(
            "spec.source: none of http, metrics, prometheus or postgres is set".into(),
        ))
    }

    /// A windowed aggregation: scrape, keep the selected series, compute over the window.
    async fn windowed(
        &self,
        key: RuleKey,
        rule: &AlertRule,
        metrics: &MetricsScrape,
        now: Timestamp,
    ) -> Result<f64, StepError> {
        let span = window_span(rule, metrics)?;
        let samples = self
            .prober()?
            .samples(&metrics.url)
            .await
            .map_err(StepError::Probe)?;
        let name = series_name(metrics);
        let selected: Vec<(Labels, f64)> = samples
            .into_iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                metrics
                    .selector
                    .iter()
                    .all(|(k, v)| s.labels.get(k) == Some(v))
            })
            .map(|s| (s.labels, s.value))
            .collect();
        let shown = redact(&metrics.url);
        let mut windows = self.windows();
        let kept = windows.entry(key).or_insert_with(|| Kept {
            source: metrics.clone(),
            window: Window::new(span),
            last_used: now,
        });
        if kept.source != *metrics {
            kept.source = metrics.clone();
            kept.window = Window::new(span);
        }
        kept.last_used = now;
        kept.window.push(now, selected).map_err(|e| {
            StepError::Probe(format!(
                "{shown}: {name}: {e}; narrow spec.source.metrics.selector"
            ))
        })?;
        let window = &kept.window;
        let value = match metrics.aggregation {
            Aggregation::Rate => window.rate(),
            Aggregation::Increase => window.increase(),
            Aggregation::ErrorRatio => {
                let errors = metrics.error_selector.clone().unwrap_or_default();
                window.error_ratio(&errors)
            }
            Aggregation::Quantile => window.quantile(metrics.quantile.unwrap_or(f64::NAN)),
            other => Err(NoValue::Error(format!("{other:?} is not windowed"))),
        };
        value.map_err(|no_value| match no_value {
            NoValue::NotYet(text) => StepError::NoData(text),
            NoValue::Error(text) => StepError::Probe(format!(
                "{shown}: {name}{}: {text}",
                selector_text(&metrics.selector)
            )),
        })
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<RuleKey, Kept>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_unused(&self, now: Timestamp) {
        self.windows().retain(|_, kept| {
            let idle = now.duration_since(kept.last_used);
            let keep_for = SignedDuration::try_from(kept_span(&kept.source) + FORGET_AFTER)
                .unwrap_or(SignedDuration::MAX);
            idle < keep_for && !idle.is_negative()
        });
    }

    /// Number of windows held (for tests).
    #[cfg(test)]
    fn window_count(&self) -> usize {
        self.windows().len()
    }
}

fn is_windowed(aggregation: Aggregation) -> bool {
    matches!(
        aggregation,
        Aggregation::Rate | Aggregation::Increase | Aggregation::ErrorRatio | Aggregation::Quantile
    )
}

/// The series a window keeps: `<metric>_bucket` for a quantile (unless named so already).
fn series_name(metrics: &MetricsScrape) -> String {
    if metrics.aggregation == Aggregation::Quantile && !metrics.metric.ends_with("_bucket") {
        format!("{}_bucket", metrics.metric)
    } else {
        metrics.metric.clone()
    }
}

fn kept_span(metrics: &MetricsScrape) -> Duration {
    metrics
        .window
        .as_ref()
        .and_then(|w| w.parse().ok())
        .unwrap_or(Duration::ZERO)
}

/// The window, which must hold two scrapes half of it apart: at least twice the interval.
fn window_span(rule: &AlertRule, metrics: &MetricsScrape) -> Result<Duration, StepError> {
    let window = metrics.window.as_ref().ok_or_else(|| {
        StepError::Setup("spec.source.metrics.window: needed by this aggregation".into())
    })?;
    let span: Duration = window
        .parse()
        .map_err(|e| StepError::Setup(format!("spec.source.metrics.window: {e}")))?;
    let interval: Duration = rule
        .spec
        .interval
        .parse()
        .unwrap_or(Duration::from_secs(30));
    if span < interval * 2 {
        return Err(StepError::Setup(format!(
            "spec.source.metrics.window ({}) must be at least twice spec.interval ({}): a value needs two scrapes half a window apart",
            window.as_str(),
            rule.spec.interval.as_str()
        )));
    }
    Ok(span)
}

fn selector_text(selector: &BTreeMap<String, String>) -> String {
    if selector.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, metrics: serde_json::Value, interval: &str) -> AlertRule {
        let mut rule = AlertRule::new(
            name,
            serde_json::from_value(serde_json::json!({
                "source": {"metrics": metrics},
                "interval": interval,
                "condition": {"operator": ">", "threshold": 0},
                "summary": "s"
            }))
            .unwrap(),
        );
        rule.metadata.namespace = Some("farm".into());
        rule.metadata.uid = Some(format!("uid-{name}"));
        rule
    }

    #[test]
    fn a_window_shorter_than_two_intervals_is_refused_naming_the_field() {
        let r = rule(
            "r",
            serde_json::json!({"url": "http://x/metrics", "metric": "m", "aggregation": "rate", "window": "40s"}),
            "30s",
        );
        let error = window_span(&r, r.spec.source.metrics.as_ref().unwrap()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec.source.metrics.window (40s) must be at least twice spec.interval (30s): a value needs two scrapes half a window apart"
        );
        let r = rule(
            "r",
            serde_json::json!({"url": "http://x/metrics", "metric": "m", "aggregation": "rate", "window": "1m"}),
            "30s",
        );
        assert_eq!(
            window_span(&r, r.spec.source.metrics.as_ref().unwrap()).unwrap(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn quantiles_read_the_bucket_series() {
        let r = rule(
            "r",
            serde_json::json!({"url": "http://x/metrics", "metric": "h_seconds", "aggregation": "quantile", "quantile": 0.95, "window": "1m"}),
            "10s",
        );
        assert_eq!(
            series_name(r.spec.source.metrics.as_ref().unwrap()),
            "h_seconds_bucket"
        );
    }

    #[test]
    fn unused_windows_are_forgotten() {
        let sources = Sources::default();
        let r = rule(
            "r",
            serde_json::json!({"url": "http://x/metrics", "metric": "m", "aggregation": "rate", "window": "1m"}),
            "10s",
        );
        let now = Timestamp::now();
        sources.windows().insert(
            RuleKey {
                namespace: "farm".into(),
                name: "r".into(),
                uid: "uid-r".into(),
            },
            Kept {
                source: r.spec.source.metrics.clone().unwrap(),
                window: Window::new(Duration::from_secs(60)),
                last_used: now,
            },
        );
        sources.forget_unused(now + SignedDuration::from_secs(60 + 599));
        assert_eq!(sources.window_count(), 1);
        sources.forget_unused(now + SignedDuration::from_secs(60 + 600));
        assert_eq!(sources.window_count(), 0);
    }
}
