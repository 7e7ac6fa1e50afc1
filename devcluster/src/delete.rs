//! Deletion: finalizers and deletionTimestamp, namespace termination, the three propagation
//! policies, and a garbage collector for dependents (ownerReferences).
//!
//! As in Kubernetes:
//! - `Background` (the default): the owner goes at once; its dependents are collected a little
//!   later by the garbage collector ([`GC_DELAY`]), so for a moment they outlive their owner.
//!   A dependent that still has another live owner only loses the dangling reference.
//! - `Foreground`: the owner gets a deletionTimestamp and the `foregroundDeletion` finalizer;
//!   the collector deletes its dependents, and removes the owner once no dependent with
//!   `blockOwnerDeletion: true` is left.
//! - `Orphan`: the owner goes; dependents stay and lose their reference to it.

use crate::meta;
use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult};
use crate::store::{GcItem, Key, ObjectRef, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long dependents of a removed owner live on before the garbage collector takes them.
pub const GC_DELAY: Duration = Duration::from_millis(300);
/// How often the garbage collector runs.
pub const GC_TICK: Duration = Duration::from_millis(50);

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    pub propagation: Propagation,
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
    let out = match opts.propagation {
        Propagation::Foreground if rt.storage != "namespaces" => {
            begin_foreground(store, &rt.storage, key)
        }
        Propagation::Orphan => {
            orphan_dependents(store, meta::uid(&old));
            begin_delete(store, &rt.storage, key)
        }
        _ => begin_delete(store, &rt.storage, key),
    }
    .unwrap_or(old);
    sweep_namespaces(store);
    Ok(out)
}

/// Marks an object for foreground deletion; the garbage collector finishes it.
fn begin_foreground(store: &mut Store, storage: &str, key: &Key) -> Option<Arc<Value>> {
    let obj = store.get(storage, key)?;
    let mut fins = meta::finalizers(&obj);
    if meta::is_deleting(&obj) && fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
        return Some(obj);
    }
    let mut marked = (*obj).clone();
    if !fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
        fins.push(FOREGROUND_FINALIZER.to_string());
    }
    let md = meta::metadata_mut(&mut marked);
    if !meta::is_deleting(&obj) {
        md.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
        md.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    md.insert("finalizers".into(), json!(fins));
    let out = store.put(storage, marked);
    store.foreground.insert((storage.to_string(), key.clone()));
    Some(out)
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

/// Removes an object; its dependents are left for the garbage collector.
pub(crate) fn finish_delete(store: &mut Store, storage: &str, key: &Key) -> Option<Arc<Value>> {
    let (gone, dependents) = store.remove(storage, key)?;
    if storage == "customresourcedefinitions.apiextensions.k8s.io" {
        let served = meta::name(&gone).to_string();
        store.drop_storage(&served);
        store.registry.remove_storage(&served);
    }
    if !dependents.is_empty() {
        store.gc_queue.push_back(GcItem {
            due: Instant::now() + GC_DELAY,
            owner_uid: meta::uid(&gone).to_string(),
            dependents,
        });
    }
    Some(gone)
}

fn orphan_dependents(store: &mut Store, owner_uid: &str) {
    for (storage, key) in store.dependents_of(owner_uid) {
        strip_owner(store, &storage, &key, |u| u == owner_uid);
    }
}

/// Removes the owner references whose uid `drop` selects.
fn strip_owner(store: &mut Store, storage: &str, key: &Key, drop: impl Fn(&str) -> bool) {
    let Some(obj) = store.get(storage, key) else {
        return;
    };
    let mut o = (*obj).clone();
    if let Some(refs) = o
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| !drop(r.get("uid").and_then(Value::as_str).unwrap_or_default()));
        if refs.is_empty()
            && let Some(md) = o.get_mut("metadata").and_then(Value::as_object_mut)
        {
            md.remove("ownerReferences");
        }
    }
    if o != *obj {
        store.put(storage, o);
    }
}

/// One pass of the garbage collector: dependents of owners removed at least [`GC_DELAY`] ago,
/// and owners being deleted in the foreground.
pub fn collect_garbage(store: &mut Store, now: Instant) {
    let mut touched = false;
    while store.gc_queue.front().is_some_and(|i| i.due <= now) {
        let item = store.gc_queue.pop_front().expect("front");
        for (s, k) in item.dependents {
            touched = true;
            collect_dependent(store, &s, &k, &item.owner_uid);
        }
    }
    for (s, k) in store.foreground.clone() {
        touched = true;
        advance_foreground(store, &s, &k);
    }
    if touched {
        sweep_namespaces(store);
    }
}

/// A dependent whose owner `owner_uid` is gone: deleted when no owner is left, else it only
/// loses the dangling references.
fn collect_dependent(store: &mut Store, storage: &str, key: &Key, owner_uid: &str) {
    let Some(dep) = store.get(storage, key) else {
        return;
    };
    let owners = meta::owner_uids(&dep);
    if !owners.iter().any(|o| o == owner_uid) {
        return;
    }
    if owners.iter().any(|o| store.uid_exists(o)) {
        let dangling: Vec<String> = owners
            .into_iter()
            .filter(|o| !store.uid_exists(o))
            .collect();
        strip_owner(store, storage, key, |u| dangling.iter().any(|d| d == u));
        return;
    }
    begin_delete(store, storage, key);
}

fn blocks_owner(dep: &Value, owner_uid: &str) -> bool {
    dep.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                    && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
            })
        })
}

/// Deletes the dependents of an owner being deleted in the foreground; once none that blocks
/// it is left, drops the `foregroundDeletion` finalizer (and the owner, if nothing else holds
/// it).
fn advance_foreground(store: &mut Store, storage: &str, key: &Key) {
    let id: ObjectRef = (storage.to_string(), key.clone());
    let Some(owner) = store.get(storage, key) else {
        store.foreground.remove(&id);
        return;
    };
    if !meta::is_deleting(&owner)
        || !meta::finalizers(&owner)
            .iter()
            .any(|f| f == FOREGROUND_FINALIZER)
    {
        store.foreground.remove(&id);
        return;
    }
    let uid = meta::uid(&owner).to_string();
    for (s, k) in store.dependents_of(&uid) {
        let Some(dep) = store.get(&s, &k) else {
            continue;
        };
        if meta::is_deleting(&dep) {
            continue;
        }
        if store.dependents_of(meta::uid(&dep)).is_empty() {
            begin_delete(store, &s, &k);
        } else {
            begin_foreground(store, &s, &k);
        }
    }
    let blocked = store
        .dependents_of(&uid)
        .iter()
        .any(|(s, k)| store.get(s, k).is_some_and(|d| blocks_owner(&d, &uid)));
    if blocked {
        return;
    }
    let mut done = (*owner).clone();
    let fins: Vec<String> = meta::finalizers(&owner)
        .into_iter()
        .filter(|f| f != FOREGROUND_FINALIZER)
        .collect();
    let md = meta::metadata_mut(&mut done);
    if fins.is_empty() {
        md.remove("finalizers");
    } else {
        md.insert("finalizers".into(), json!(fins));
    }
    store.foreground.remove(&id);
    store.put(storage, done);
    if fins.is_empty() {
        finish_delete(store, storage, key);
    }
}

/// Queues for the garbage collector every object whose owners are all gone (after loading a
/// snapshot: the collector's queue does not survive a restart, a real one rebuilds its graph).
pub fn enqueue_dangling(store: &mut Store) {
    let mut found: std::collections::BTreeMap<String, Vec<ObjectRef>> = Default::default();
    for (storage, obj) in store.all_objects() {
        if meta::is_deleting(&obj)
            && meta::finalizers(&obj)
                .iter()
                .any(|f| f == FOREGROUND_FINALIZER)
        {
            let key = (
                meta::namespace(&obj).to_string(),
                meta::name(&obj).to_string(),
            );
            store.foreground.insert((storage.clone(), key));
        }
        let owners = meta::owner_uids(&obj);
        if owners.is_empty() || owners.iter().any(|o| store.uid_exists(o)) {
            continue;
        }
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        found
            .entry(owners[0].clone())
            .or_default()
            .push((storage, key));
    }
    for (owner_uid, dependents) in found {
        store.gc_queue.push_back(GcItem {
            due: Instant::now() + GC_DELAY,
            owner_uid,
            dependents,
        });
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
