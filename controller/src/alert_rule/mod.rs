//! AlertRule in the controller: evaluate the signal every `interval`, move the state machine
//! (Inactive → Pending → Firing → Inactive), and remediate once per firing by creating a
//! RestoreRequest from the rule's template.
//!
//! The pure parts are in [`evaluate`] (aggregation, thresholds, state machine), [`window`]
//! (the windowed aggregations) and [`textformat`] (the metrics page parser); [`source`] reads a
//! rule's signal through [`probe`] (HTTP), [`prometheus`] and [`postgres`], and keeps the sample
//! windows; [`remediation`] creates the RestoreRequest. This module ties them to the reconcile
//! pipeline: status, Events (as [`Note`]s) and metrics.
//!
//! Not in this build: notifications (`spec.routes`) and incidents (`spec.incident`); rules with
//! them are evaluated and remediate, and `Ready` says what is left out.

pub mod evaluate;
pub mod postgres;
pub mod probe;
pub mod prometheus;
pub mod remediation;
pub mod source;
pub mod textformat;
pub mod window;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tend_crds::alert_rule::{AlertRule, AlertRuleSpec, AlertRuleStatus, AlertState};
use tend_crds::conditions::reasons;

use crate::context::Context;
use crate::error::StepError;
use crate::metrics::{AlertFailureLabels, AlertLabels, AlertResultLabels};
use crate::reconcile::{Note, TendKind, Verdict, status_access};
use evaluate::{Change, Memory, compare, format_value, step, unsupported};
use source::Sources;

use tend_crds::alert_rule::reasons as ar;

/// `lastValue` holds at most this much of an error.
const LAST_VALUE_MAX: usize = 300;
const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl TendKind for AlertRule {
    status_access!(AlertRule, AlertRuleSpec, AlertRuleStatus, "AlertRule");
    type State = Sources;

    async fn operate(
        &self,
        ctx: &Context,
        state: &Sources,
        status: &mut AlertRuleStatus,
        now: Timestamp,
    ) -> Verdict {
        operate(self, ctx, state, status, now).await
    }
}

/// The AlertRule's own reconcile step.
async fn operate(
    rule: &AlertRule,
    ctx: &Context,
    sources: &Sources,
    status: &mut AlertRuleStatus,
    now: Timestamp,
) -> Verdict {
    let spec = &rule.spec;
    if let Some(what) = unsupported(&spec.source, spec.condition.operator) {
        return Verdict::new(
            false,
            reasons::ENGINE_NOT_IMPLEMENTED,
            format!(
                "spec is valid, but {what} is not part of this build yet; the rule is not evaluated"
            ),
        );
    }
    let labels = AlertLabels {
        namespace: rule.namespace().unwrap_or_default(),
        rule: rule.name_any(),
    };
    let interval = spec
        .interval
        .parse()
        .unwrap_or(Duration::from_secs(30))
        .max(MIN_INTERVAL);
    let for_ = spec.for_.parse().unwrap_or(Duration::ZERO);
    // What the stored status recorded, before this reconcile changes it.
    let recorded_until = status.last_evaluation_time.as_ref().map(|t| t.0);
    let mut notes = Vec::new();

    let since_last = recorded_until.map(|last| now.duration_since(last));
    let spec_changed = status.observed_generation != rule.metadata.generation;
    let due = spec_changed
        || since_last.is_none_or(|elapsed| elapsed >= signed(interval) || elapsed.is_negative());
    let next_in = if due {
        let observation = sources.evaluate(ctx, rule, now).await;
        evaluate_once(
            ctx,
            spec,
            observation,
            status,
            now,
            for_,
            &labels,
            &mut notes,
        );
        interval
    } else {
        let elapsed = since_last.unwrap_or_default();
        Duration::try_from(signed(interval) - elapsed).unwrap_or(MIN_INTERVAL)
    };

    let firing = status.state == Some(AlertState::Firing);
    ctx.metrics
        .alert
        .firing
        .get_or_create(&labels)
        .set(i64::from(firing));
    let template = spec.remediation.as_ref().and_then(|r| r.restore.as_ref());
    if let (true, None, Some(template)) = (firing, &status.current_remediation, template) {
        let began = status.active_since.as_ref().map_or(now, |t| t.0);
        let created = remediation::ensure(&ctx.client, rule, template, began, recorded_until).await;
        let result = match created {
            Ok(name) => {
                tracing::info!(namespace = %labels.namespace, rule = %labels.rule, restore_request = %name, "remediation started");
                notes.push(Note::normal(
                    ar::REMEDIATION_STARTED,
                    "Remediate",
                    format!("created RestoreRequest {name} from spec.remediation.restore"),
                ));
                status.current_remediation = Some(name);
                "created"
            }
            Err(error) => {
                tracing::warn!(namespace = %labels.namespace, rule = %labels.rule, %error, "remediation failed; retrying at the next evaluation");
                notes.push(Note::warning(
                    ar::REMEDIATION_FAILED,
                    "Remediate",
                    format!("remediation failed, retrying at the next evaluation: {error}"),
                ));
                "failed"
            }
        };
        ctx.metrics
            .alert
            .remediations
            .get_or_create(&AlertResultLabels {
                namespace: labels.namespace.clone(),
                rule: labels.rule.clone(),
                result,
            })
            .inc();
    }

    let mut verdict = ready_verdict(spec, status);
    verdict.requeue_after = Some(next_in.max(MIN_INTERVAL));
    verdict.notes = notes;
    verdict
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// One evaluation: the value (or error) into status, the state machine, Events and metrics.
#[allow(clippy::too_many_arguments)]
fn evaluate_once(
    ctx: &Context,
    spec: &AlertRuleSpec,
    observation: Result<f64, StepError>,
    status: &mut AlertRuleStatus,
    now: Timestamp,
    for_: Duration,
    labels: &AlertLabels,
    notes: &mut Vec<Note>,
) {
    let holds = match &observation {
        Ok(value) => compare(*value, spec.condition.operator, spec.condition.threshold),
        Err(_) => None,
    };
    ctx.metrics
        .alert
        .evaluations
        .get_or_create(&AlertResultLabels {
            namespace: labels.namespace.clone(),
            rule: labels.rule.clone(),
            result: match &observation {
                Ok(_) => "ok",
                Err(StepError::NoData(_)) => "no_data",
                Err(_) => "error",
            },
        })
        .inc();
    status.last_evaluation_time = Some(Time(now));
    let value_text = match &observation {
        Ok(value) => format_value(*value),
        // Not a failure (a window still filling, an empty query result): said in lastValue,
        // no Event, and the state stays.
        Err(StepError::NoData(text)) => shorten(text),
        Err(error) => {
            ctx.metrics
                .alert
                .evaluation_failures
                .get_or_create(&AlertFailureLabels {
                    namespace: labels.namespace.clone(),
                    rule: labels.rule.clone(),
                    reason: error.metric_label(),
                })
                .inc();
            let text = shorten(&format!("error: {error}"));
            if status.last_value.as_deref() != Some(text.as_str()) {
                tracing::warn!(namespace = %labels.namespace, rule = %labels.rule, %error, "alert evaluation failed");
                notes.push(Note::warning(
                    ar::EVALUATION_FAILED,
                    "Evaluate",
                    format!("evaluation failed, the state stays as it was: {error}"),
                ));
            }
            text
        }
    };
    status.last_value = Some(value_text.clone());

    let previous = Memory {
        state: status.state.unwrap_or(AlertState::Inactive),
        active_since: status.active_since.as_ref().map(|t| t.0),
    };
    let (memory, change) = step(previous, holds, now, for_);
    status.state = Some(memory.state);
    status.active_since = memory.active_since.map(Time);
    let condition = format!(
        "{value_text} {} {}",
        operator_text(spec),
        format_value(spec.condition.threshold)
    );
    let note = match change {
        None => None,
        Some(Change::Pending) => Some(Note::normal(
            ar::PENDING,
            "Evaluate",
            format!(
                "{condition} holds; firing if it still holds after {}",
                spec.for_.as_str()
            ),
        )),
        Some(Change::Firing) => Some(Note::warning(
            ar::FIRING,
            "Evaluate",
            format!("firing: {condition} ({})", spec.summary),
        )),
        Some(Change::Resolved) => {
            // The RestoreRequest stays as the record; the next firing creates a new one.
            status.current_remediation = None;
            Some(Note::normal(
                ar::RESOLVED,
                "Evaluate",
                format!("resolved: the condition no longer holds (value {value_text})"),
            ))
        }
        Some(Change::Cleared) => Some(Note::normal(
            ar::RESOLVED,
            "Evaluate",
            format!(
                "the condition stopped holding before {} elapsed (value {value_text}); it never fired",
                spec.for_.as_str()
            ),
        )),
    };
    if let Some(note) = note {
        tracing::info!(namespace = %labels.namespace, rule = %labels.rule, state = ?memory.state, value = %value_text, "alert state changed");
        notes.push(note);
    }
}

fn operator_text(spec: &AlertRuleSpec) -> &'static str {
    use tend_crds::alert_rule::Operator::*;
    match spec.condition.operator {
        Gt => ">",
        Ge => ">=",
        Lt => "<",
        Le => "<=",
        Eq => "==",
        Ne => "!=",
        Unknown => "?",
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= LAST_VALUE_MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(LAST_VALUE_MAX).collect();
    format!("{cut}…")
}

/// Ready from the stored state, so a reconcile between evaluations reports the same thing.
fn ready_verdict(spec: &AlertRuleSpec, status: &AlertRuleStatus) -> Verdict {
    let state = match status.state {
        Some(AlertState::Pending) => "Pending",
        Some(AlertState::Firing) => "Firing",
        _ => "Inactive",
    };
    let mut summary = format!(
        "{state}; last value {}",
        status.last_value.as_deref().unwrap_or("(none yet)")
    );
    if let Some(name) = &status.current_remediation {
        summary.push_str(&format!("; remediation RestoreRequest {name}"));
    }
    let mut missing = Vec::new();
    if !spec.routes.is_empty() {
        missing.push("notifications (spec.routes)");
    }
    if spec.incident.is_some() {
        missing.push("incidents (spec.incident)");
    }
    if missing.is_empty() {
        Verdict::new(true, ar::EVALUATING, summary)
    } else {
        Verdict::new(
            false,
            reasons::ENGINE_NOT_IMPLEMENTED,
            format!(
                "evaluation and remediation run ({summary}), but {} are not part of this build yet",
                missing.join(" and ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> AlertRuleSpec {
        let mut base = serde_json::json!({
            "source": {"http": {"url": "http://x/"}},
            "condition": {"operator": "==", "threshold": 0},
            "summary": "down"
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn ready_names_state_value_and_what_is_missing() {
        let status = AlertRuleStatus {
            state: Some(AlertState::Firing),
            last_value: Some("0".into()),
            current_remediation: Some("r-remediation-20260101000000".into()),
            ..AlertRuleStatus::default()
        };
        let v = ready_verdict(&spec(serde_json::json!({})), &status);
        assert!(v.ready);
        assert_eq!(v.reason, "Evaluating");
        assert_eq!(
            v.message,
            "Firing; last value 0; remediation RestoreRequest r-remediation-20260101000000"
        );
        let v = ready_verdict(
            &spec(serde_json::json!({"incident": {}})),
            &AlertRuleStatus::default(),
        );
        assert!(!v.ready);
        assert_eq!(v.reason, "EngineNotImplemented");
        assert!(
            v.message.contains("Inactive; last value (none yet)")
                && v.message.contains("incidents (spec.incident) are not part")
                && !v.message.contains("routes"),
            "{}",
            v.message
        );
    }

    #[test]
    fn in_place_template_without_confirm_is_invalid() {
        use tend_crds::validation::Validate;
        let spec = spec(serde_json::json!({"remediation": {"restore": {
            "policyRef": {"name": "daily"},
            "restorePoint": {"latest": true},
            "target": {"mode": "inPlace"}
        }}}));
        let fields: Vec<String> = spec.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["spec.remediation.restore.target.confirm"]);
    }

    #[test]
    fn long_errors_are_cut() {
        let text = shorten(&"x".repeat(1000));
        assert_eq!(text.chars().count(), LAST_VALUE_MAX + 1);
    }
}
