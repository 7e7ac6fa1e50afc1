//! The one way every kind writes its status: server-side apply of the `status` subresource under
//! the `tend.dev` field manager, only when something changed, plus an Event on transitions.
//!
//! Every status write carries the `resourceVersion` of the object it was computed from, as an
//! optimistic-concurrency precondition. A reconcile that read a stale copy (a lagging watch, a
//! relist served from an older cache) therefore fails with 409 Conflict instead of writing old
//! facts over newer ones, and runs again on the fresh object.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tend_crds::conditions::Condition;

use crate::context::Context;
use crate::error::Result;

/// Applies `status` to the object's status subresource. Sends the whole status: under server-side
/// apply, fields tend stops sending are removed, so status never carries stale entries.
pub async fn apply_status<K, S>(ctx: &Context, obj: &K, status: &S) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let namespace = obj.namespace().unwrap_or_default();
    apply_status_of::<K, S>(
        ctx,
        &namespace,
        &obj.name_any(),
        obj.resource_version().as_deref(),
        status,
    )
    .await
}

/// [`apply_status`] by name, also for objects tend could not deserialize. `resource_version` is
/// the version the status was computed from (see the module docs).
pub async fn apply_status_of<K, S>(
    ctx: &Context,
    namespace: &str,
    name: &str,
    resource_version: Option<&str>,
    status: &S,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    // The response is read as metadata only: tend must be able to write the status of an object
    // whose spec it cannot deserialize.
    let api: Api<PartialObjectMeta<K>> = Api::namespaced(ctx.client.clone(), namespace);
    let mut body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(rv) = resource_version {
        body["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    let params = PatchParams::apply(tend_crds::FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// Publishes an Event on the object. Failing to record an event never fails a reconcile: the
/// status already says the same thing.
pub async fn publish_event<K>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    publish_event_on(ctx, &obj.object_ref(&()), type_, reason, action, note).await;
}

/// [`publish_event`] for an object known only by reference.
pub async fn publish_event_on(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(fit_note(note)),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, regarding).await {
        tracing::warn!(%error, reason, "could not record event");
    }
}

/// The API server refuses an Event whose note is longer than this many bytes.
pub const EVENT_NOTE_LIMIT: usize = 1024;

/// `note` cut to [`EVENT_NOTE_LIMIT`] bytes at a character boundary, marked with an ellipsis.
/// The full text stays in status and in the log.
pub fn fit_note(mut note: String) -> String {
    if note.len() <= EVENT_NOTE_LIMIT {
        return note;
    }
    const MARK: &str = " …";
    let mut end = EVENT_NOTE_LIMIT - MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push_str(MARK);
    note
}

/// The (status, reason) of a condition, to detect transitions.
pub fn condition_key(conditions: &[Condition], type_: &str) -> Option<(String, String)> {
    tend_crds::conditions::find_condition(conditions, type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_to_the_api_limit_at_a_character_boundary() {
        assert_eq!(fit_note("short".into()), "short");
        let exact = "a".repeat(EVENT_NOTE_LIMIT);
        assert_eq!(fit_note(exact.clone()), exact);
        // Three-byte characters, so the cut falls inside one unless it is moved.
        let long = "障".repeat(EVENT_NOTE_LIMIT);
        let cut = fit_note(long);
        assert!(cut.len() <= EVENT_NOTE_LIMIT, "{}", cut.len());
        assert!(cut.ends_with(" …"));
        assert!(cut.trim_end_matches(" …").chars().all(|c| c == '障'));
    }
}
