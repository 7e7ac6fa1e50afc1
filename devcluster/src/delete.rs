//! Deletion: finalizers and deletionTimestamp, namespace termination, orphaning, and
//! owner-reference garbage collection of dependents.

use crate::meta;
use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult};
use crate::store::{Key, Store};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    pub orphan: bool,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// Deletes (or starts deleting) an object. Returns the object as it now is: with a
/// deletionTimestamp while finalizers remain, or as it was when removed.
pub fn delete(
    store: &mut Store,
    rt: &Arc<ResourceType>,
    key: &Key,
    opts: &DeleteOpts,
) -> ApiResult<Arc<Value>> {
    let old = store
        .get(&rt.storage, key)
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, &key.1))?;
    if opts
        .precondition_uid
        .as_deref()
        .is_some_and(|u| u != meta::uid(&old))
        || opts
            .precondition_rv
            .as_deref()
            .is_some_and(|r| r != meta::resource_version(&old))
    {
        return Err(ApiError::conflict(&rt.plural, &rt.group, &key.1));
    }
    if opts.dry_run {
        return Ok(old);
    }
    if opts.orphan {
        orphan_dependents(store, meta::uid(&old));
    }
    let out = begin_delete(store, &rt.storage, key).unwrap_or(old);
    sweep_namespaces(store);
    Ok(out)
}

/// Marks an object deleted; removes it now if nothing holds it.
fn begin_delete(store: &mut Store, storage: &str, key: &Key) -> Option<Arc<Value>> {
    let obj = store.get(storage, key)?;
    let is_namespace = storage == "namespaces";
    if is_namespace {
        let mut ns = (*obj).clone();
        if !meta::is_deleting(&ns) {
            meta::metadata_mut(&mut ns)
                .insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
            ns["status"] = json!({"phase": "Terminating"});
            store.put(storage, ns);
        }
        for s in store.storages() {
            for o in store.list(&s, Some(&key.1), None) {
                let k = (key.1.clone(), meta::name(&o).to_string());
                begin_delete(store, &s, &k);
            }
        }
        return store.get(storage, key);
    }
    if !meta::finalizers(&obj).is_empty() {
        if meta::is_deleting(&obj) {
            return Some(obj);
        }
        let mut marked = (*obj).clone();
        let md = meta::metadata_mut(&mut marked);
        md.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
        md.insert("deletionGracePeriodSeconds".into(), json!(0));
        return Some(store.put(storage, marked));
    }
    finish_delete(store, storage, key)
}

/// Removes an object and cascades to dependents left without owners.
pub(crate) fn finish_delete(store: &mut Store, storage: &str, key: &Key) -> Option<Arc<Value>> {
    let (gone, orphans) = store.remove(storage, key)?;
    if storage == "customresourcedefinitions.apiextensions.k8s.io" {
        let served = meta::name(&gone).to_string();
        store.drop_storage(&served);
        store.registry.remove_storage(&served);
    }
    for (s, k) in orphans {
        begin_delete(store, &s, &k);
    }
    Some(gone)
}

fn orphan_dependents(store: &mut Store, owner_uid: &str) {
    for (storage, obj) in store.all_objects() {
        if !meta::owner_uids(&obj).iter().any(|u| u == owner_uid) {
            continue;
        }
        let mut o = (*obj).clone();
        if let Some(refs) = o
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        }
        store.put(&storage, o);
    }
}

/// Removes terminating namespaces that have become empty.
pub fn sweep_namespaces(store: &mut Store) {
    for ns in store.list("namespaces", None, None) {
        let name = meta::name(&ns).to_string();
        if meta::is_deleting(&ns)
            && meta::finalizers(&ns).is_empty()
            && store.count_in_namespace(&name) == 0
        {
            store.remove("namespaces", &(String::new(), name));
        }
    }
}
