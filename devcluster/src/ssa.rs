//! Field ownership (`metadata.managedFields`) as server-side apply keeps it, close to the real
//! thing:
//!
//! - every write records which manager set which fields: apply as operation `Apply`, create /
//!   update / merge, JSON and strategic patches as operation `Update` (the manager is the
//!   `fieldManager` parameter, else the User-Agent up to its first `/`), each per subresource;
//!   a non-apply write takes over the fields it changes from every other manager;
//! - an apply that sets a field another manager owns to a different value is refused with
//!   409 Conflict unless `force=true`, which moves ownership to the applier;
//! - a field a manager stops applying is removed only when no other manager owns it;
//! - lists marked `x-kubernetes-list-type: map` merge item by item on their keys (`set` lists
//!   by value); other lists are atomic;
//! - an apply that changes nothing writes nothing (same resourceVersion, no watch event).
//!
//! Field sets use the `FieldsV1` encoding (`f:name`, `k:{"type":"Ready"}`, `v:"x"`, `.`).

use crate::registry::{Flavor, ResourceType};
use crate::status::ApiError;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

type Path = Vec<String>;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const CLIENT_SIDE_APPLY_MANAGER: &str = "kubectl-client-side-apply";
type PathSet = BTreeSet<Path>;

/// Which part of an object a write may touch.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// "" (main resource) or "status".
    pub subresource: &'a str,
    /// True when status is only written through `/status`.
    pub status_separate: bool,
}

impl Scope<'_> {
    fn includes(&self, top: &str) -> bool {
        match top {
            "apiVersion" | "kind" => false,
            "status" => self.subresource == "status" || !self.status_separate,
            "metadata" => self.subresource.is_empty(),
            _ => self.subresource.is_empty(),
        }
    }
}

/// The OpenAPI schema of a custom resource's version, read from its CRD.
pub fn schema_for(store: &Store, rt: &ResourceType) -> Option<Value> {
    if rt.flavor != Flavor::Custom {
        return None;
    }
    let crd = store.get(
        "customresourcedefinitions.apiextensions.k8s.io",
        &(String::new(), rt.storage.clone()),
    )?;
    let versions = crd.pointer("/spec/versions")?.as_array()?;
    versions
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(rt.version.as_str()))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
}

/// True for kinds whose field ownership devcluster does not track (events are stored in one
/// shape and served in two).
pub fn untracked(rt: &ResourceType) -> bool {
    matches!(rt.flavor, Flavor::CoreEvent | Flavor::EventsV1)
}

fn metadata_schema() -> &'static Value {
    static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        json!({"type": "object", "properties": {
            "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["uid"], "items": {"type": "object"}},
            "finalizers": {"type": "array", "x-kubernetes-list-type": "set"},
        }})
    })
}

fn child_schema<'a>(schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let s = schema?;
    s.pointer(&format!(
        "/properties/{}",
        key.replace('~', "~0").replace('/', "~1")
    ))
    .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

enum ListKind {
    Map(Vec<String>),
    Set,
    Atomic,
}

fn list_kind(schema: Option<&Value>) -> ListKind {
    let Some(s) = schema else {
        return ListKind::Atomic;
    };
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListKind::Map(
            s.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("set") => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

fn collect(v: &Value, schema: Option<&Value>, prefix: &mut Path, out: &mut PathSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(format!("f:{k}"));
                collect(child, child_schema(schema, k), prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => match list_kind(schema) {
            ListKind::Map(keys) if !keys.is_empty() => {
                let item_schema = schema.and_then(|s| s.get("items"));
                for item in items {
                    prefix.push(item_key(item, &keys));
                    prefix.push(".".into());
                    out.insert(prefix.clone());
                    prefix.pop();
                    collect_fields(item, item_schema, prefix, out);
                    prefix.pop();
                }
                if items.is_empty() {
                    out.insert(prefix.clone());
                }
            }
            ListKind::Set => {
                for item in items {
                    prefix.push(format!("v:{item}"));
                    out.insert(prefix.clone());
                    prefix.pop();
                }
                if items.is_empty() {
                    out.insert(prefix.clone());
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn collect_fields(item: &Value, schema: Option<&Value>, prefix: &mut Path, out: &mut PathSet) {
    if let Value::Object(m) = item {
        for (k, child) in m {
            prefix.push(format!("f:{k}"));
            collect(child, child_schema(schema, k), prefix, out);
            prefix.pop();
        }
    }
}

/// The field paths of an object within a scope.
fn paths_of(obj: &Value, schema: Option<&Value>, scope: Scope<'_>) -> PathSet {
    let mut out = PathSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (top, v) in m {
        if !scope.includes(top) {
            continue;
        }
        let mut prefix = vec![format!("f:{top}")];
        if top == "metadata" {
            let Some(md) = v.as_object() else { continue };
            for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
                if let Some(child) = md.get(k) {
                    prefix.push(format!("f:{k}"));
                    collect(
                        child,
                        child_schema(Some(metadata_schema()), k),
                        &mut prefix,
                        &mut out,
                    );
                    prefix.pop();
                }
            }
            continue;
        }
        collect(v, child_schema(schema, top), &mut prefix, &mut out);
    }
    out
}

fn find_item<'a>(items: &'a [Value], seg: &str) -> Option<(usize, &'a Value)> {
    if let Some(k) = seg.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(k).ok()?;
        return items
            .iter()
            .enumerate()
            .find(|(_, it)| want.iter().all(|(f, v)| it.get(f) == Some(v)));
    }
    if let Some(v) = seg.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return items.iter().enumerate().find(|(_, it)| **it == want);
    }
    if let Some(i) = seg.strip_prefix("i:") {
        let i: usize = i.parse().ok()?;
        return items.get(i).map(|it| (i, it));
    }
    None
}

fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        if seg == "." {
            continue;
        }
        cur = match seg.strip_prefix("f:") {
            Some(k) => cur.get(k)?,
            None => find_item(cur.as_array()?, seg)?.1,
        };
    }
    Some(cur)
}

fn get_at_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        if seg == "." {
            continue;
        }
        cur = match seg.strip_prefix("f:") {
            Some(k) => cur.get_mut(k)?,
            None => {
                let i = find_item(cur.as_array()?, seg)?.0;
                cur.as_array_mut()?.get_mut(i)?
            }
        };
    }
    Some(cur)
}

fn remove_at(v: &mut Value, path: &[String]) {
    let path: Vec<String> = path.iter().filter(|s| *s != ".").cloned().collect();
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(p) = get_at_mut(v, parent) else {
        return;
    };
    match last.strip_prefix("f:") {
        Some(k) => {
            if let Some(m) = p.as_object_mut() {
                m.remove(k);
            }
        }
        None => {
            if let Some(i) = p
                .as_array()
                .and_then(|a| find_item(a, last))
                .map(|(i, _)| i)
                && let Some(a) = p.as_array_mut()
            {
                a.remove(i);
            }
        }
    }
}

fn to_tree(paths: &PathSet) -> Value {
    let mut root = Value::Object(Map::new());
    for p in paths {
        let mut cur = &mut root;
        for seg in p {
            let m = cur.as_object_mut().expect("tree node");
            cur = m.entry(seg.clone()).or_insert_with(|| json!({}));
        }
    }
    root
}

fn from_tree(tree: &Value) -> PathSet {
    fn walk(node: &Value, prefix: &mut Path, out: &mut PathSet) {
        match node.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    prefix.push(k.clone());
                    if k == "." {
                        out.insert(prefix.clone());
                    } else {
                        walk(child, prefix, out);
                    }
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = PathSet::new();
    walk(tree, &mut vec![], &mut out);
    out
}

struct Entry {
    raw: Value,
    set: PathSet,
}

impl Entry {
    fn manager(&self) -> &str {
        self.raw
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn operation(&self) -> &str {
        self.raw
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn subresource(&self) -> &str {
        self.raw
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager() == manager
            && self.operation() == operation
            && self.subresource() == subresource
    }
}

fn entries_of(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|raw| Entry {
                    set: from_tree(raw.get("fieldsV1").unwrap_or(&Value::Null)),
                    raw: raw.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(|mut e| {
            e.raw["fieldsV1"] = to_tree(&e.set);
            e.raw
        })
        .collect();
    let md = crate::meta::metadata_mut(obj);
    if list.is_empty() {
        md.remove("managedFields");
    } else {
        md.insert("managedFields".into(), Value::Array(list));
    }
}

fn new_entry(manager: &str, operation: &str, api_version: &Value, subresource: &str) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": crate::meta::now_rfc3339(),
        "fieldsType": "FieldsV1",
    });
    if !subresource.is_empty() {
        e["subresource"] = json!(subresource);
    }
    e
}

/// True when `p` is `q` or lies inside it (`q` a prefix, ignoring a trailing ".").
fn within(p: &[String], q: &[String]) -> bool {
    let q: Vec<&String> = q.iter().filter(|s| *s != ".").collect();
    p.len() >= q.len() && p.iter().zip(q.iter()).all(|(a, b)| a == *b)
}

fn show(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if seg != "." {
            s.push('[');
            s.push_str(seg.split_once(':').map(|x| x.1).unwrap_or(seg));
            s.push(']');
        }
    }
    s
}

/// Merges an applied configuration into `target`: maps recurse, map-lists merge by key,
/// set-lists by value, other lists and scalars are replaced; an applied `null` is no opinion.
fn merge_apply(target: &mut Value, cfg: &Value, schema: Option<&Value>) {
    match cfg {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if !v.is_null() {
                    merge_apply(
                        t.entry(k.clone()).or_insert(Value::Null),
                        v,
                        child_schema(schema, k),
                    );
                }
            }
        }
        Value::Array(items) => match (list_kind(schema), target.as_array_mut()) {
            (ListKind::Map(keys), Some(live)) if !keys.is_empty() => {
                let item_schema = schema.and_then(|s| s.get("items"));
                for item in items {
                    let k = item_key(item, &keys);
                    match find_item(live, &k).map(|(i, _)| i) {
                        Some(i) => merge_apply(&mut live[i], item, item_schema),
                        None => live.push(item.clone()),
                    }
                }
            }
            (ListKind::Set, Some(live)) => {
                for item in items {
                    if !live.contains(item) {
                        live.push(item.clone());
                    }
                }
            }
            _ => *target = cfg.clone(),
        },
        other => *target = other.clone(),
    }
}

fn schema_root<'a>(schema: Option<&'a Value>, top: &str) -> Option<&'a Value> {
    if top == "metadata" {
        Some(metadata_schema())
    } else {
        child_schema(schema, top)
    }
}

/// What an apply request asks for.
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub scope: Scope<'a>,
    pub schema: Option<&'a Value>,
}

/// Server-side apply of `config` onto `live` (None: create). Returns the new object, or the
/// 409 Conflict kube-apiserver answers when another manager owns a field the config changes.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let mut cfg = config.clone();
    if let Some(md) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("managedFields");
        md.remove("resourceVersion");
    }
    let new_set = paths_of(&cfg, req.schema, req.scope);
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let mut entries = entries_of(live);
    let sub = req.scope.subresource;
    let mine = |e: &Entry| e.is(req.manager, "Apply", sub);

    // Conflicts: fields another manager owns that this config sets to something else.
    let mut conflicts: Vec<(String, String, Path)> = vec![];
    for e in entries.iter().filter(|e| !mine(e)) {
        for p in new_set.intersection(&e.set) {
            if p.last().map(String::as_str) == Some(".") {
                continue;
            }
            if get_at(&cfg, p) != get_at(live_v, p) {
                let api_version = e
                    .raw
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                conflicts.push((e.manager().to_string(), api_version, p.clone()));
            }
        }
    }
    // As kube-apiserver's last-applied handling does for objects kubectl applied client-side:
    // a conflict on a field whose applied value equals the one in the
    // `kubectl.kubernetes.io/last-applied-configuration` annotation is no conflict — the
    // applier is taking over what it applied before — and ownership moves to it.
    let last_applied: Option<Value> = live_v
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok());
    let (taken_over, conflicts): (Vec<_>, Vec<_>) = conflicts.into_iter().partition(|(_, _, p)| {
        last_applied
            .as_ref()
            .is_some_and(|last| get_at(last, p).is_some() && get_at(last, p) == get_at(&cfg, p))
    });
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        for (_, _, p) in &taken_over {
            e.set.remove(p);
        }
    }
    if !conflicts.is_empty() {
        if !req.force {
            return Err(conflict_error(&conflicts));
        }
        for e in entries.iter_mut().filter(|e| !mine(e)) {
            for (_, _, p) in &conflicts {
                e.set.remove(p);
            }
        }
    }

    // Fields the client-side manager owns and this apply now sets move to the applier.
    if live_v
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .is_some()
    {
        for e in entries
            .iter_mut()
            .filter(|e| e.manager() == CLIENT_SIDE_APPLY_MANAGER)
        {
            e.set
                .retain(|p| !new_set.contains(p) || get_at(&cfg, p) == get_at(live_v, p));
        }
    }
    let mut out = live.cloned().unwrap_or_else(|| json!({}));
    let old_set = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    // Fields this manager stopped applying go, unless someone else still owns them.
    // Whole list items first: their own fields cannot be found once their keys are gone.
    let mut dropped: Vec<&Path> = old_set.difference(&new_set).collect();
    dropped.sort_by_key(|p| p.iter().filter(|s| *s != ".").count());
    for p in &dropped {
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !mine(e))
            .any(|e| e.set.iter().any(|q| within(q, p) || within(p, q)))
            || new_set.iter().any(|q| within(q, p) && q != *p);
        if !owned_elsewhere {
            remove_at(&mut out, p);
        }
    }
    if let Some(m) = cfg.as_object() {
        for (top, v) in m {
            if v.is_null() {
                continue;
            }
            if top == "apiVersion" || top == "kind" || req.scope.includes(top) || live.is_none() {
                let slot = out
                    .as_object_mut()
                    .expect("object")
                    .entry(top.clone())
                    .or_insert(Value::Null);
                merge_apply(slot, v, schema_root(req.schema, top));
            }
        }
    }

    let changed_object = strip_mf(&out) != strip_mf(live_v);
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            if e.set != new_set || changed_object {
                e.set = new_set;
                e.raw["time"] = json!(crate::meta::now_rfc3339());
                e.raw["apiVersion"] = cfg.get("apiVersion").cloned().unwrap_or(Value::Null);
            }
        }
        None => {
            let api_version = cfg.get("apiVersion").cloned().unwrap_or(Value::Null);
            entries.push(Entry {
                raw: new_entry(req.manager, "Apply", &api_version, sub),
                set: new_set,
            });
        }
    }
    store_entries(&mut out, entries);
    Ok(out)
}

fn strip_mf(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("managedFields");
        md.remove("resourceVersion");
    }
    v
}

fn conflict_error(conflicts: &[(String, String, Path)]) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        let (m, v, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with \"{m}\" using {v}: {}",
            show(p)
        )
    } else {
        let mut groups: Vec<(String, String, Vec<String>)> = vec![];
        for (m, v, p) in conflicts {
            match groups.iter_mut().find(|g| g.0 == *m && g.1 == *v) {
                Some(g) => g.2.push(show(p)),
                None => groups.push((m.clone(), v.clone(), vec![show(p)])),
            }
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(m, v, ps)| {
                let lines: Vec<String> = ps.iter().map(|p| format!("- {p}")).collect();
                format!("conflicts with \"{m}\" using {v}:\n{}", lines.join("\n"))
            })
            .collect();
        format!("Apply failed with {n} conflicts: {}", parts.join("\n"))
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, v, p)| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{m}\" using {v}"),
                   "field": show(p)})
        })
        .collect();
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// Records a non-apply write (create, update, patch) of `new` over `old` by `manager`: it owns
/// the fields it changed, which no other manager owns any more; removed fields are owned by
/// no one. Nothing changes when the write changes nothing.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope<'_>,
    schema: Option<&Value>,
) {
    let empty = json!({});
    let old_v = old.unwrap_or(&empty);
    let old_paths = paths_of(old_v, schema, scope);
    let new_paths = paths_of(new, schema, scope);
    let changed: PathSet = new_paths
        .iter()
        .filter(|p| {
            if p.last().map(String::as_str) == Some(".") {
                get_at(old_v, p).is_none()
            } else {
                get_at(old_v, p) != get_at(new, p)
            }
        })
        .cloned()
        .collect();
    let removed: PathSet = old_paths.difference(&new_paths).cloned().collect();
    let mut entries = entries_of(old);
    if changed.is_empty() && removed.is_empty() {
        if let Some(mf) = old_v.pointer("/metadata/managedFields") {
            crate::meta::metadata_mut(new).insert("managedFields".into(), mf.clone());
        } else if let Some(md) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
        }
        return;
    }
    let sub = scope.subresource;
    for e in entries.iter_mut() {
        let mine = e.is(manager, "Update", sub);
        e.set
            .retain(|p| !removed.iter().any(|r| within(p, r)) && (mine || !changed.contains(p)));
    }
    match entries.iter_mut().find(|e| e.is(manager, "Update", sub)) {
        Some(e) => {
            e.set.extend(changed);
            e.raw["time"] = json!(crate::meta::now_rfc3339());
        }
        None if !changed.is_empty() => {
            let api_version = new.get("apiVersion").cloned().unwrap_or(Value::Null);
            entries.push(Entry {
                raw: new_entry(manager, "Update", &api_version, sub),
                set: changed,
            });
        }
        None => {}
    }
    store_entries(new, entries);
}

/// The manager of a non-apply write: `fieldManager`, else the User-Agent up to its first `/`.
pub fn manager_of(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = user_agent.split('/').next().unwrap_or_default().trim();
    if ua.is_empty() {
        "unknown".into()
    } else {
        ua.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "integer"}, "b": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {
                              "name": {"type": "string"}, "port": {"type": "integer"}}}}}},
            "status": {"type": "object"}}})
    }

    fn apply_as(
        live: Option<&Value>,
        cfg: Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        let s = schema();
        apply(
            live,
            &cfg,
            &ApplyRequest {
                manager,
                force,
                scope: Scope {
                    subresource: "",
                    status_separate: true,
                },
                schema: Some(&s),
            },
        )
    }

    fn cfg(spec: Value) -> Value {
        json!({"apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
    }

    #[test]
    fn apply_removes_fields_the_manager_stopped_applying() {
        let first = apply_as(None, cfg(json!({"a": 1, "b": 2})), "m", false).unwrap();
        let second = apply_as(Some(&first), cfg(json!({"a": 1})), "m", false).unwrap();
        assert_eq!(second["spec"], json!({"a": 1}));
        let other = apply_as(Some(&second), cfg(json!({"b": 3})), "n", false).unwrap();
        assert_eq!(other["spec"], json!({"a": 1, "b": 3}));
    }

    #[test]
    fn a_field_another_manager_owns_stays_when_one_stops_applying_it() {
        let first = apply_as(None, cfg(json!({"a": 1, "b": 2})), "m", false).unwrap();
        // n shares b (same value: no conflict).
        let shared = apply_as(Some(&first), cfg(json!({"b": 2})), "n", false).unwrap();
        let dropped = apply_as(Some(&shared), cfg(json!({"a": 1})), "m", false).unwrap();
        assert_eq!(dropped["spec"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn conflicts_are_409_unless_forced_and_force_moves_ownership() {
        let first = apply_as(None, cfg(json!({"a": 1})), "m", false).unwrap();
        let e = apply_as(Some(&first), cfg(json!({"a": 2})), "n", false).unwrap_err();
        assert_eq!((e.code, e.reason), (409, "Conflict"));
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"m\" using e2e.tend.dev/v1: .spec.a"
        );
        let forced = apply_as(Some(&first), cfg(json!({"a": 2})), "n", true).unwrap();
        assert_eq!(forced["spec"]["a"], 2);
        // m no longer owns a, so m re-applying its old value now conflicts with n.
        let e = apply_as(Some(&forced), cfg(json!({"a": 1})), "m", false).unwrap_err();
        assert!(e.message.contains("conflict with \"n\""), "{}", e.message);
    }

    #[test]
    fn a_field_applied_client_side_before_is_taken_over_without_conflict() {
        // What kubectl's client-side apply leaves: its last-applied annotation, and the field
        // owned by another manager with a value the server changed (a default filled in).
        let mut live =
            apply_as(None, cfg(json!({"tags": ["x", "defaulted"]})), "csa", false).unwrap();
        live["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration": r#"{"spec":{"tags":["x"]}}"#
        });
        let taken = apply_as(Some(&live), cfg(json!({"tags": ["x"]})), "kubectl", false).unwrap();
        assert_eq!(taken["spec"]["tags"], json!(["x"]));
        // A value that is not the one applied before is still a conflict.
        let e = apply_as(Some(&live), cfg(json!({"tags": ["y"]})), "kubectl", false).unwrap_err();
        assert_eq!(e.code, 409, "{}", e.message);
    }

    #[test]
    fn map_lists_merge_by_key_and_atomic_lists_are_replaced() {
        let first = apply_as(
            None,
            cfg(json!({"ports": [{"name": "http", "port": 80}], "tags": ["x"]})),
            "m",
            false,
        )
        .unwrap();
        let second = apply_as(
            Some(&first),
            cfg(json!({"ports": [{"name": "https", "port": 443}]})),
            "n",
            false,
        )
        .unwrap();
        assert_eq!(
            second["spec"]["ports"],
            json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}])
        );
        // m stops applying its port: only its item goes.
        let third = apply_as(Some(&second), cfg(json!({"tags": ["x"]})), "m", false).unwrap();
        assert_eq!(
            third["spec"]["ports"],
            json!([{"name": "https", "port": 443}])
        );
        let mf = third["metadata"]["managedFields"].to_string();
        assert!(mf.contains(r#"k:{\"name\":\"https\"}"#), "{mf}");
    }

    #[test]
    fn a_no_op_apply_changes_nothing() {
        let first = apply_as(None, cfg(json!({"a": 1})), "m", false).unwrap();
        let again = apply_as(Some(&first), cfg(json!({"a": 1})), "m", false).unwrap();
        assert_eq!(again, first);
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let first = apply_as(None, cfg(json!({"a": 1, "b": 2})), "m", false).unwrap();
        let mut edited = first.clone();
        edited["spec"]["a"] = json!(5);
        let s = schema();
        let scope = Scope {
            subresource: "",
            status_separate: true,
        };
        track_update(Some(&first), &mut edited, "kubectl-edit", scope, Some(&s));
        let entries = edited["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0]["fieldsV1"], json!({"f:spec": {"f:b": {}}}));
        assert_eq!(entries[1]["manager"], "kubectl-edit");
        assert_eq!(entries[1]["operation"], "Update");
        assert_eq!(entries[1]["fieldsV1"], json!({"f:spec": {"f:a": {}}}));
        // Now m applying a=1 again conflicts with the editor.
        let e = apply_as(Some(&edited), cfg(json!({"a": 1, "b": 2})), "m", false).unwrap_err();
        assert!(e.message.contains("\"kubectl-edit\""), "{}", e.message);
        // A write that changes nothing leaves managedFields alone.
        let mut same = edited.clone();
        track_update(Some(&edited), &mut same, "x", scope, Some(&s));
        assert_eq!(same, edited);
    }

    #[test]
    fn manager_names() {
        assert_eq!(manager_of(Some("tend"), "kube-rs/1"), "tend");
        assert_eq!(manager_of(None, "kubectl/v1.32.4 (linux/amd64)"), "kubectl");
        assert_eq!(manager_of(Some(""), ""), "unknown");
    }

    #[test]
    fn client_side_apply_fields_move_to_server_side_apply_without_conflict() {
        let s = schema();
        let last = json!({"spec": {"tags": ["x"]}}).to_string();
        let mut live = json!({"apiVersion": "e2e.tend.dev/v1", "kind": "Widget",
            "metadata": {"name": "w", "annotations": {LAST_APPLIED: last}},
            // "y" was added by defaulting: the live list differs from what was applied.
            "spec": {"tags": ["x", "y"]}});
        let scope = Scope {
            subresource: "",
            status_separate: true,
        };
        track_update(None, &mut live, CLIENT_SIDE_APPLY_MANAGER, scope, Some(&s));
        let ok = apply_as(Some(&live), cfg(json!({"tags": ["x"]})), "kubectl", false).unwrap();
        assert_eq!(ok["spec"]["tags"], json!(["x"]));
        // A value that differs from last-applied still conflicts.
        let e = apply_as(Some(&live), cfg(json!({"tags": ["z"]})), "kubectl", false).unwrap_err();
        assert_eq!(e.code, 409);
    }
}
