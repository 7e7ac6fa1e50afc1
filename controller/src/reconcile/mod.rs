//! The reconcile pipeline every kind follows:
//! `validate → resolve references → operate → write status (+ Events on transitions)`.
//!
//! Each kind implements [`TendKind`]: how to reach its status, and its own `operate` step. The
//! pipeline is shared so every kind reports the same way: `observedGeneration`, `Ready`, and
//! `Stalled` (present only while true) with stable reasons.
//!
//! Over 400 lines on purpose: the pipeline's steps (assess, conditions, status write, Events,
//! requeue) are one sequence every kind shares, and read best together.

mod references;
mod verdict;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::{DeserializeGuard, error_boundary::InvalidObject};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tend_crds::conditions::{
    Condition, condition, reasons, remove_condition, set_condition, types,
};
use tend_crds::references::References;
use tend_crds::validation::{Validate, summarize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::metrics::{ConditionLabels, ErrorLabels};
use crate::status::{
    apply_status, apply_status_of, condition_key, publish_event, publish_event_on,
};

pub use references::{ReferenceProblem, resolve};
pub use verdict::{Note, Verdict};

/// A tend custom resource the pipeline can reconcile.
pub trait TendKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    type Spec: Validate + References;
    type Status: Clone + Default + Serialize + PartialEq + Send + Sync;
    /// What the kind keeps in this process between reconciles (its running tasks, engine
    /// settings); `()` for kinds that keep nothing.
    type State: Default + Send + Sync + 'static;

    /// Kind name for metrics and logs.
    const KIND: &'static str;

    fn spec(&self) -> &Self::Spec;
    fn status(&self) -> Option<&Self::Status>;
    fn conditions_mut(status: &mut Self::Status) -> &mut Vec<Condition>;
    fn observed_generation_mut(status: &mut Self::Status) -> &mut Option<i64>;

    /// The kind's own work, once the spec is valid and its references resolve. Kinds whose
    /// engine is not built yet say so in the verdict's reason (`EngineNotImplemented`).
    fn operate(
        &self,
        ctx: &Context,
        state: &Self::State,
        status: &mut Self::Status,
        now: Timestamp,
    ) -> impl std::future::Future<Output = Verdict> + Send;
}

/// The status accessors of a [`TendKind`] impl, for kinds whose spec and status are the usual
/// `spec`/`status` fields with `conditions` and `observedGeneration`:
/// `status_access!(Kind, KindSpec, KindStatus, "Kind");`
macro_rules! status_access {
    ($kind:ty, $spec:ty, $status:ty, $name:literal) => {
        type Spec = $spec;
        type Status = $status;
        const KIND: &'static str = $name;

        fn spec(&self) -> &$spec {
            &self.spec
        }
        fn status(&self) -> Option<&$status> {
            self.status.as_ref()
        }
        fn conditions_mut(status: &mut $status) -> &mut Vec<tend_crds::conditions::Condition> {
            &mut status.conditions
        }
        fn observed_generation_mut(status: &mut $status) -> &mut Option<i64> {
            &mut status.observed_generation
        }
    };
}
pub(crate) use status_access;

/// How often objects with a problem that may fix itself (a Secret created later) are rechecked.
const RECHECK_MISSING_REFERENCE: Duration = Duration::from_secs(30);
/// Reads `obj` again from the API server (not the watch cache). Before a kind concludes that
/// work it recorded was lost (a run `Running` in status with no task behind it), it must know
/// the record is current: `Err` carries the verdict to return when the copy this reconcile was
/// handed is older than the server's, or the server cannot be asked.
pub async fn confirm_current<K: TendKind>(obj: &K, ctx: &Context) -> Result<(), Verdict> {
    let api: kube::Api<K> =
        kube::Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match api.get(&obj.name_any()).await {
        Ok(fresh) if fresh.resource_version() == obj.resource_version() => Ok(()),
        Ok(_) => Err(Verdict::stale(
            "the copy from the watch is older than the API server's",
        )),
        Err(error) => Err(Verdict::stale(format!(
            "cannot read the object again from the API server: {error}"
        ))),
    }
}

/// How soon a reconcile that failed (the API server refused or failed a request) runs again.
/// Short, because a lost status write leaves a finished run waiting to be recorded.
const ERROR_RETRY: Duration = Duration::from_secs(3);
/// How soon a reconcile that saw a stale copy of its object runs again.
const STALE_RETRY: Duration = Duration::from_millis(500);
/// Even with nothing due, objects are rechecked this often (references may have been deleted).
const RESYNC: Duration = Duration::from_secs(300);

/// What one kind's controller hands every reconcile: the shared [`Context`] and the kind's own
/// [`TendKind::State`].
pub struct KindContext<K: TendKind> {
    pub shared: Arc<Context>,
    pub state: Arc<K::State>,
}

impl<K: TendKind> KindContext<K> {
    pub fn new(shared: Arc<Context>, state: Arc<K::State>) -> Arc<Self> {
        Arc::new(Self { shared, state })
    }
}

/// Reconciles one object.
pub async fn reconcile<K: TendKind>(obj: Arc<K>, ctx: Arc<KindContext<K>>) -> Result<Action> {
    timed_reconcile(obj.as_ref(), &ctx).await
}

#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(kind = K::KIND, namespace = obj.namespace().unwrap_or_default(), name = obj.name_any())
)]
async fn timed_reconcile<K: TendKind>(obj: &K, ctx: &KindContext<K>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_inner(obj, &ctx.shared, &ctx.state).await;
    ctx.shared
        .metrics
        .observe_reconcile(K::KIND, started.elapsed());
    result
}

/// The kube-runtime entry point. The controller watches `DeserializeGuard<K>` so that one object
/// tend cannot read (written for another version of the CRD, or with admission bypassed) is
/// reported `Stalled` instead of breaking the watch for every other object of its kind.
pub async fn reconcile_guarded<K: TendKind>(
    obj: Arc<DeserializeGuard<K>>,
    ctx: Arc<KindContext<K>>,
) -> Result<Action> {
    match &obj.0 {
        Ok(object) => timed_reconcile(object, &ctx).await,
        Err(invalid) => report_unreadable::<K>(invalid, &ctx.shared).await,
    }
}

/// Transient errors: requeue with a short backoff; the watch also retriggers on change.
pub fn error_policy<K: TendKind>(
    obj: Arc<DeserializeGuard<K>>,
    error: &Error,
    ctx: Arc<KindContext<K>>,
) -> Action {
    ctx.shared
        .metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            kind: K::KIND,
            error: error.metric_label(),
        })
        .inc();
    if error.is_conflict() {
        // The copy this reconcile read was stale; the watch brings the newer one, and this
        // requeue covers a watch that lags.
        tracing::debug!(kind = K::KIND, name = %obj.name_any(), namespace = ?obj.namespace(), "status was computed from a stale copy; reconciling again");
        return Action::requeue(STALE_RETRY);
    }
    tracing::warn!(kind = K::KIND, name = %obj.name_any(), namespace = ?obj.namespace(), %error, "reconcile failed; retrying");
    Action::requeue(ERROR_RETRY)
}

async fn report_unreadable<K: TendKind>(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
    let meta = &invalid.metadata;
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let now = Timestamp::now();
    let message = format!("tend cannot read this object: {}", invalid.error);
    let reason = reasons::INVALID_SPEC;
    let ready = condition(
        types::READY,
        false,
        reason,
        message.clone(),
        meta.generation,
        now,
    );
    let stalled = condition(
        types::STALLED,
        true,
        reason,
        message.clone(),
        meta.generation,
        now,
    );
    let status = serde_json::json!({
        "observedGeneration": meta.generation,
        "conditions": [ready, stalled],
    });
    apply_status_of::<K, _>(
        ctx,
        &namespace,
        &name,
        meta.resource_version.as_deref(),
        &status,
    )
    .await?;
    let regarding = ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    };
    tracing::warn!(kind = K::KIND, %name, %namespace, error = %invalid.error, "object cannot be read");
    publish_event_on(
        ctx,
        &regarding,
        EventType::Warning,
        reason,
        "Validate",
        message,
    )
    .await;
    Ok(Action::await_change())
}

async fn reconcile_inner<K: TendKind>(obj: &K, ctx: &Context, state: &K::State) -> Result<Action> {
    let now = ctx.now();
    let generation = obj.meta().generation;
    let old_status = obj.status().cloned().unwrap_or_default();
    let mut status = old_status.clone();

    let (verdict, stalled) = match assess(obj, ctx, state, &mut status, now).await? {
        Assessment::Operated(verdict) => {
            let stalled = verdict.stalled;
            (verdict, stalled)
        }
        Assessment::Stalled(verdict) => (verdict, true),
    };
    if verdict.stale {
        tracing::debug!(why = %verdict.message, "stale copy; nothing written");
        return Ok(Action::requeue(STALE_RETRY));
    }

    *K::observed_generation_mut(&mut status) = generation;
    let conditions = K::conditions_mut(&mut status);
    let previous_ready = condition_key(conditions, types::READY);
    set_condition(
        conditions,
        condition(
            types::READY,
            verdict.ready,
            verdict.reason,
            verdict.message.clone(),
            generation,
            now,
        ),
    );
    if stalled {
        set_condition(
            conditions,
            condition(
                types::STALLED,
                true,
                verdict.reason,
                verdict.message.clone(),
                generation,
                now,
            ),
        );
    } else {
        remove_condition(conditions, types::STALLED);
    }
    if verdict.reconciling && !stalled {
        set_condition(
            conditions,
            condition(
                types::RECONCILING,
                true,
                verdict.reason,
                verdict.message.clone(),
                generation,
                now,
            ),
        );
    } else {
        remove_condition(conditions, types::RECONCILING);
    }
    let current_ready = condition_key(conditions, types::READY);

    if status != old_status || obj.status().is_none() {
        apply_status(ctx, obj, &status).await?;
    }
    if !verdict.notes.is_empty() {
        for note in &verdict.notes {
            let type_ = if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            publish_event(
                ctx,
                obj,
                type_,
                note.reason,
                note.action,
                note.message.clone(),
            )
            .await;
        }
    } else if is_transition(previous_ready.as_ref(), current_ready.as_ref(), stalled) {
        record_transition(obj, ctx, &verdict, stalled).await;
    }

    let requeue = if stalled {
        RECHECK_MISSING_REFERENCE
    } else {
        verdict.requeue_after.map_or(RESYNC, |d| d.min(RESYNC))
    };
    // An invalid spec will not fix itself: wait for the next change instead of polling.
    if stalled && (verdict.reason == reasons::INVALID_SPEC || verdict.stalled) {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(requeue))
}

enum Assessment {
    Operated(Verdict),
    Stalled(Verdict),
}

async fn assess<K: TendKind>(
    obj: &K,
    ctx: &Context,
    state: &K::State,
    status: &mut K::Status,
    now: Timestamp,
) -> Result<Assessment> {
    let errors = obj.spec().validate();
    if !errors.is_empty() {
        return Ok(Assessment::Stalled(Verdict::new(
            false,
            reasons::INVALID_SPEC,
            summarize(&errors),
        )));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let references = obj.spec().references();
    if let Some(problem) = resolve(&ctx.client, &ctx.secrets, &namespace, &references).await? {
        let mut verdict = Verdict::new(false, problem.reason(), problem.to_string());
        verdict.requeue_after = Some(RECHECK_MISSING_REFERENCE);
        return Ok(Assessment::Stalled(verdict));
    }
    Ok(Assessment::Operated(
        obj.operate(ctx, state, status, now).await,
    ))
}

/// Whether `Ready` moved from `previous` to `current` (status, reason) in a way worth an Event.
/// The first observation of an object (no `Ready` yet) is not a transition, unless the object is
/// stalled: ten thousand new objects then cost no Event writes, while one that needs its
/// author's attention still says so in `kubectl describe`.
fn is_transition(
    previous: Option<&(String, String)>,
    current: Option<&(String, String)>,
    stalled: bool,
) -> bool {
    match previous {
        None => stalled,
        Some(previous) => Some(previous) != current,
    }
}

async fn record_transition<K: TendKind>(obj: &K, ctx: &Context, verdict: &Verdict, stalled: bool) {
    let (type_, action) = if stalled {
        ctx.metrics
            .stalled
            .get_or_create(&ConditionLabels {
                kind: K::KIND,
                reason: verdict.reason.to_string(),
            })
            .inc();
        (EventType::Warning, "Validate")
    } else {
        (EventType::Normal, "Reconcile")
    };
    tracing::info!(
        reason = verdict.reason,
        ready = verdict.ready,
        "condition changed"
    );
    publish_event(
        ctx,
        obj,
        type_,
        verdict.reason,
        action,
        verdict.message.clone(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::is_transition;

    fn key(status: &str, reason: &str) -> (String, String) {
        (status.to_owned(), reason.to_owned())
    }

    #[test]
    fn events_are_recorded_on_transitions_and_on_a_stalled_first_observation() {
        let ready = key("True", "Configured");
        let waiting = key("False", "EngineNotImplemented");
        let missing = key("False", "SecretNotFound");
        assert!(!is_transition(None, Some(&waiting), false));
        assert!(!is_transition(None, Some(&ready), false));
        assert!(is_transition(None, Some(&missing), true));
        assert!(!is_transition(Some(&waiting), Some(&waiting), false));
        assert!(!is_transition(Some(&missing), Some(&missing), true));
        assert!(is_transition(Some(&missing), Some(&ready), false));
        assert!(is_transition(Some(&ready), Some(&missing), true));
        assert!(is_transition(
            Some(&waiting),
            Some(&key("False", "Other")),
            false
        ));
    }
}
