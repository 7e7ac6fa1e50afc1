//! The one way every kind writes its status: server-side apply of the `status` subresource under
//! the `tend.dev` field manager, only when something changed, plus an Event on transitions.

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
    apply_status_of::<K, S>(ctx, &namespace, &obj.name_any(), status).await
}

/// [`apply_status`] by name, also for objects tend could not deserialize.
pub async fn apply_status_of<K, S>(
    ctx: &Context,
    namespace: &str,
    name: &str,
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
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
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
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, regarding).await {
        tracing::warn!(%error, reason, "could not record event");
    }
}

/// The (status, reason) of a condition, to detect transitions.
pub fn condition_key(conditions: &[Condition], type_: &str) -> Option<(String, String)> {
    tend_crds::conditions::find_condition(conditions, type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}
