//! AlertRule in the controller: evaluate the signal every `interval`, move the state machine
//! (Inactive → Pending → Firing → Inactive), and remediate once per firing by creating a
//! RestoreRequest from the rule's template.
//!
//! The pure parts are in [`evaluate`] (aggregation, thresholds, state machine), [`window`]
//! (the windowed aggregations), [`textformat`] (the metrics page parser) and [`routes`] (what
//! each route is owed, silences, the message); [`source`] reads a rule's signal through
//! [`probe`] (HTTP), [`prometheus`] and [`postgres`], and keeps the sample windows;
//! [`remediation`] creates the RestoreRequest, and the shared [`crate::notifications`] adapter
//! sends. This module ties them to the reconcile pipeline: status, Events (as [`Note`]s) and
//! metrics.
//!
//! Not in this build: incidents (`spec.incident`); rules with one are evaluated, notify and
//! remediate, and `Ready` says what is left out.

pub mod evaluate;
pub mod postgres;
pub mod probe;
pub mod prometheus;
pub mod remediation;
pub mod routes;
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

    notify(rule, ctx, status, now, interval, &mut notes).await;

    let mut verdict = ready_verdict(spec, status);
    verdict.requeue_after = Some(next_in.max(MIN_INTERVAL));
    verdict.notes = notes;
    verdict
}

/// Sends each route what it is owed (see [`routes`]), unless a silence is in effect; records
/// every attempt in `status.routes`. Routes are sent to concurrently; each send retries inside
/// the notifier, and a route that still fails is tried again at the next evaluation.
async fn notify(
    rule: &AlertRule,
    ctx: &Context,
    status: &mut AlertRuleStatus,
    now: Timestamp,
    interval: Duration,
    notes: &mut Vec<Note>,
) {
    let spec = &rule.spec;
    status.routes = routes::align(spec, &status.routes);
    let restoring = if spec
        .silences
        .iter()
        .any(|s| s.during_in_place_restores_of.is_some())
    {
        unfinished_in_place_restores(ctx, rule).await
    } else {
        Ok(Vec::new())
    };
    let silence = match &restoring {
        Ok(policies) => {
            routes::silence_in_effect(&spec.silences, now, |p| policies.iter().any(|q| q == p))
                .map(|s| s.name.clone())
        }
        // Unknown whether a restore runs: stay quiet rather than page during one.
        Err(_) => Some("duringInPlaceRestoresOf (RestoreRequests could not be listed)".into()),
    };
    if silence != status.silenced_by {
        notes.push(match &silence {
            Some(name) => Note::normal(
                ar::SILENCED,
                "Notify",
                format!("silence {name} in effect: the rule is evaluated, nothing is sent"),
            ),
            None => Note::normal(
                ar::SILENCE_ENDED,
                "Notify",
                format!(
                    "silence {} ended",
                    status.silenced_by.as_deref().unwrap_or_default()
                ),
            ),
        });
        status.silenced_by = silence.clone();
    }
    if silence.is_some() {
        return;
    }

    let notifier = match crate::notifications::notifier() {
        Ok(notifier) => notifier,
        Err(error) => {
            tracing::error!(%error, "notifications cannot be sent");
            return;
        }
    };
    let state = status.state.unwrap_or(AlertState::Inactive);
    let since = (state == AlertState::Firing)
        .then(|| status.active_since.as_ref().map(|t| t.0))
        .flatten();
    let repeat = spec
        .repeat_interval
        .parse()
        .unwrap_or(Duration::from_secs(4 * 3600));
    let condition = format!(
        "{} {}",
        operator_text(spec),
        format_value(spec.condition.threshold)
    );
    let value = status
        .last_value
        .clone()
        .filter(|v| !v.starts_with("error"));
    let namespace = rule.namespace().unwrap_or_default();
    let mut secrets = crate::secrets::Secrets::cached(&ctx.secrets, &namespace);
    let mut sends = Vec::new();
    for (i, (declared, route)) in spec.routes.iter().zip(status.routes.iter_mut()).enumerate() {
        let Some(owed) = routes::owed(state, since, route, declared.send_resolved, repeat, now)
        else {
            continue;
        };
        let (message, key) = match owed {
            routes::Owed::Record { key } => {
                route.delivered = Some(key);
                route.delivered_time = Some(Time(now));
                continue;
            }
            routes::Owed::Send { message, key } => (message, key),
        };
        if !routes::may_retry(route, interval, now) {
            continue;
        }
        // The firing's start: the current one, or the one the resolution speaks of.
        let began = since.or_else(|| routes::key_since(&key)).unwrap_or(now);
        let observed = routes::Observed {
            value: value.as_deref(),
            condition: condition.clone(),
            since: began,
            now,
        };
        let notification = routes::notification(rule, message, &observed);
        let destination =
            crate::notifications::destination(&mut secrets, &format!("spec.routes[{i}]"), declared)
                .await;
        let lang = crate::notifications::language(declared.language);
        sends.push(async move {
            let result = match destination {
                Ok(destination) => crate::notifications::send(
                    &ctx.metrics,
                    notifier,
                    &destination,
                    lang,
                    &notification,
                )
                .await
                .map_err(|e| (e.reason().to_string(), e.to_string(), e.attempts())),
                Err(e) => Err(("InvalidRoute".to_string(), e.to_string(), 0)),
            };
            (i, message, key, result)
        });
    }
    for (i, message, key, result) in futures::future::join_all(sends).await {
        let route = &mut status.routes[i];
        route.last_attempt_time = Some(Time(now));
        match result {
            Ok(delivery) => {
                route.delivered = Some(key);
                route.delivered_time = Some(Time(now));
                route.last_result = Some(ar::DELIVERED.into());
                route.last_error = None;
                route.attempts = Some(delivery.attempts);
                status.last_notification_time = Some(Time(now));
                notes.push(Note::normal(
                    ar::NOTIFIED,
                    "Notify",
                    format!(
                        "{} sent on route {} ({})",
                        message_text(message),
                        route.name,
                        route.r#type
                    ),
                ));
            }
            Err((reason, error, attempts)) => {
                tracing::warn!(namespace = %namespace, rule = %rule.name_any(), route = %route.name, %reason, %error, "notification failed; retrying at the next evaluation");
                if route.last_result.as_deref() != Some(reason.as_str()) {
                    notes.push(Note::warning(
                        ar::NOTIFICATION_FAILED,
                        "Notify",
                        format!(
                            "{} on route {} failed, retrying at the next evaluation: {error}",
                            message_text(message),
                            route.name
                        ),
                    ));
                }
                route.last_result = Some(reason);
                route.last_error = Some(shorten(&error));
                route.attempts = Some(attempts);
            }
        }
    }
}

fn message_text(message: routes::Message) -> &'static str {
    match message {
        routes::Message::Firing => "firing notice",
        routes::Message::Repeat => "reminder",
        routes::Message::Resolved => "resolution",
    }
}

/// The BackupPolicies with an in-place RestoreRequest in the rule's namespace that has not
/// finished (a quorum read: a silence must not lag the restore it covers).
async fn unfinished_in_place_restores(
    ctx: &Context,
    rule: &AlertRule,
) -> Result<Vec<String>, kube::Error> {
    use tend_crds::restore_request::{RestoreMode, RestoreRequest};
    let api: kube::Api<RestoreRequest> =
        kube::Api::namespaced(ctx.client.clone(), &rule.namespace().unwrap_or_default());
    let list = api.list(&kube::api::ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|r| r.spec.target.mode == RestoreMode::InPlace)
        .filter(|r| {
            !r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_finished())
        })
        .map(|r| r.spec.policy_ref.name)
        .collect())
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
    if let Some(silence) = &status.silenced_by {
        summary.push_str(&format!("; silenced by {silence}"));
    }
    let failing: Vec<String> = status
        .routes
        .iter()
        .filter(|r| r.last_result.as_deref().is_some_and(|x| x != ar::DELIVERED))
        .map(|r| {
            format!(
                "{} ({}: {})",
                r.name,
                r.last_result.as_deref().unwrap_or_default(),
                r.last_error.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if !failing.is_empty() {
        return Verdict::new(
            false,
            ar::NOTIFICATION_FAILED,
            format!(
                "{summary}; notifications fail on route {}",
                failing.join(", ")
            ),
        );
    }
    if spec.incident.is_some() {
        return Verdict::new(
            false,
            reasons::ENGINE_NOT_IMPLEMENTED,
            format!(
                "evaluation, notifications and remediation run ({summary}), but incidents (spec.incident) are not part of this build yet"
            ),
        );
    }
    Verdict::new(true, ar::EVALUATING, summary)
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
                && v.message.contains("incidents (spec.incident) are not part"),
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
