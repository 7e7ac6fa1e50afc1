//! The one way every kind writes its status: server-side apply of the `status` subresource under
//! the `tend.dev` field manager, only when something changed, plus an Event on transitions.

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
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
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(tend_crds::FIELD_MANAGER).force();
    api.patch_status(&obj.name_any(), &params, &Patch::Apply(&body))
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
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(%error, reason, "could not record event");
    }
}

/// The (status, reason) of a condition, to detect transitions.
pub fn condition_key(conditions: &[Condition], type_: &str) -> Option<(String, String)> {
    tend_crds::conditions::find_condition(conditions, type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}
