//! Write semantics shared by every verb: create, update (main resource or `/status`) and delete,
//! with uid/creationTimestamp/generation bookkeeping, optimistic concurrency, finalizers,
//! namespace lifecycle, owner-reference garbage collection and CRD registration.

use crate::delete::finish_delete;
pub use crate::delete::{DeleteOpts, Propagation, delete, sweep_namespaces};
use crate::meta;
use crate::registry::{Flavor, ResourceType};
use crate::status::{ApiError, ApiResult};
use crate::store::{Key, Store};
use crate::{crd, events, validate};
use serde_json::{Value, json};
use std::sync::Arc;

/// Per-request options that affect writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields are an error instead of a warning.
    pub strict: bool,
}

/// A successful write and the warnings to send back (`Warning:` headers).
pub struct Written {
    pub object: Arc<Value>,
    pub warnings: Vec<String>,
}

/// Events are stored in core/v1 form whichever view wrote them.
fn stored_api_version(rt: &ResourceType) -> String {
    if rt.flavor == Flavor::EventsV1 {
        "v1".into()
    } else {
        rt.api_version()
    }
}

fn namespace_gate(store: &Store, rt: &ResourceType, ns: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match store.get("namespaces", &(String::new(), ns.to_string())) {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(n) if meta::is_deleting(&n) => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            rt.qualified(),
            meta::name(&n)
        ))),
        Some(_) => Ok(()),
    }
}

fn check_identity(rt: &ResourceType, obj: &Value, url_ns: &str) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind {kind:?} does not match the resource {:?} ({})",
            rt.plural, rt.kind
        )));
    }
    let body_ns = meta::namespace(obj);
    if rt.namespaced && !body_ns.is_empty() && body_ns != url_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Runs schema + CEL admission for custom resources; returns unknown-field warnings.
fn admit(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> ApiResult<Vec<String>> {
    let Some(schema) = &rt.schema else {
        return Ok(vec![]);
    };
    let unknown = schema.admit(&rt.kind, &rt.group, obj, old)?;
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if opts.strict && !warnings.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            warnings.join(", ")
        )));
    }
    Ok(warnings)
}

pub fn create(
    store: &mut Store,
    rt: &Arc<ResourceType>,
    ns: &str,
    mut obj: Value,
    opts: &WriteOpts,
) -> ApiResult<Written> {
    check_identity(rt, &obj, ns)?;
    obj["apiVersion"] = json!(stored_api_version(rt));
    obj["kind"] = json!(rt.kind);
    let md = meta::metadata_mut(&mut obj);
    if md
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        match md.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let name = format!("{prefix}{}", meta::random_suffix());
                md.insert("name".into(), json!(name));
            }
            _ => {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    "",
                    vec![(
                        "FieldValueRequired".into(),
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        }
    }
    if rt.namespaced {
        md.insert("namespace".into(), json!(ns));
    } else {
        md.remove("namespace");
    }
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        md.remove(k);
    }
    md.insert("uid".into(), json!(meta::new_uid()));
    md.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    if rt.has_generation {
        md.insert("generation".into(), json!(1));
    } else {
        md.remove("generation");
    }
    let name = meta::name(&obj).to_string();
    let meta_warnings = validate::check_object_meta(rt, &obj)?;
    let key: Key = (meta::namespace(&obj).to_string(), name.clone());
    if store.get(&rt.storage, &key).is_some() {
        return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
    }
    namespace_gate(store, rt, ns)?;
    if rt.status_subresource && rt.flavor == Flavor::Custom {
        obj.as_object_mut().expect("object").remove("status");
    }
    let mut new_types = vec![];
    match rt.flavor {
        Flavor::Namespace => {
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        Flavor::Crd => {
            new_types = crd::resource_types(&obj)?;
            crd::set_established(&mut obj);
        }
        Flavor::CoreEvent | Flavor::EventsV1 => obj = events::normalize_core(obj),
        Flavor::Secret => normalize_secret(&mut obj),
        _ => {}
    }
    let mut warnings = admit(rt, &mut obj, None, opts)?;
    warnings.extend(meta_warnings);
    if opts.dry_run {
        return Ok(Written {
            object: Arc::new(obj),
            warnings,
        });
    }
    for t in new_types {
        store.registry.insert(t);
    }
    let object = store.put(&rt.storage, obj);
    Ok(Written { object, warnings })
}

/// Replaces an object (`subresource` "" for the main resource, "status" for `/status`).
pub fn update(
    store: &mut Store,
    rt: &Arc<ResourceType>,
    key: &Key,
    mut obj: Value,
    subresource: &str,
    opts: &WriteOpts,
) -> ApiResult<Written> {
    check_identity(rt, &obj, &key.0)?;
    let old = store
        .get(&rt.storage, key)
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, &key.1))?;
    let body_name = meta::name(&obj);
    if !body_name.is_empty() && body_name != key.1 {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let want_rv = meta::resource_version(&obj);
    if !want_rv.is_empty() && want_rv != meta::resource_version(&old) {
        return Err(ApiError::conflict(&rt.plural, &rt.group, &key.1));
    }
    let uses_status_subresource = rt.status_subresource && rt.flavor != Flavor::Namespace;
    if subresource == "status" {
        let mut next = (*old).clone();
        match obj.get("status") {
            Some(s) => next["status"] = s.clone(),
            None => {
                next.as_object_mut().expect("object").remove("status");
            }
        }
        if let Some(mf) = obj.pointer("/metadata/managedFields") {
            meta::metadata_mut(&mut next).insert("managedFields".into(), mf.clone());
        }
        obj = next;
    } else {
        let old_md = old.get("metadata").cloned().unwrap_or_default();
        let md = meta::metadata_mut(&mut obj);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
        ] {
            match old_md.get(k) {
                Some(v) => md.insert(k.into(), v.clone()),
                None => md.remove(k),
            };
        }
        md.insert("name".into(), json!(key.1));
        if !md.contains_key("managedFields")
            && let Some(mf) = old_md.get("managedFields")
        {
            md.insert("managedFields".into(), mf.clone());
        }
        if uses_status_subresource || rt.flavor == Flavor::Namespace {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    obj.as_object_mut().expect("object").remove("status");
                }
            }
        }
    }
    obj["apiVersion"] = json!(stored_api_version(rt));
    obj["kind"] = json!(rt.kind);
    if rt.has_generation && meta::spec_part(&obj) != meta::spec_part(&old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        meta::metadata_mut(&mut obj).insert("generation".into(), json!(g + 1));
    }
    if meta::is_deleting(&old) {
        let before = meta::finalizers(&old);
        if meta::finalizers(&obj).iter().any(|f| !before.contains(f)) {
            return Err(ApiError::forbidden(
                "no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    let mut new_types = vec![];
    match rt.flavor {
        Flavor::Crd if subresource.is_empty() => {
            new_types = crd::resource_types(&obj)?;
            let status = old.get("status").cloned();
            crd::set_established(&mut obj);
            if let Some(s) = status {
                obj["status"]["conditions"] = s["conditions"].clone();
            }
        }
        Flavor::CoreEvent | Flavor::EventsV1 => obj = events::normalize_core(obj),
        Flavor::Secret => normalize_secret(&mut obj),
        _ => {}
    }
    let mut warnings = admit(rt, &mut obj, Some(&old), opts)?;
    let meta_warnings = validate::check_object_meta(rt, &obj)?;
    if meta::finalizers(&obj) != meta::finalizers(&old) {
        warnings.extend(meta_warnings);
    }
    meta::metadata_mut(&mut obj).insert(
        "resourceVersion".into(),
        json!(meta::resource_version(&old)),
    );
    if obj == *old || opts.dry_run {
        let object = if opts.dry_run { Arc::new(obj) } else { old };
        return Ok(Written { object, warnings });
    }
    if !new_types.is_empty() {
        store.registry.remove_storage(&rt_storage_of_crd(&obj));
        for t in new_types {
            store.registry.insert(t);
        }
    }
    let object = store.put(&rt.storage, obj);
    if meta::is_deleting(&object) && meta::finalizers(&object).is_empty() {
        finish_delete(store, &rt.storage, key);
        sweep_namespaces(store);
    }
    Ok(Written { object, warnings })
}

/// As the API server does: `stringData` is merged into `data` (base64) and never stored, and a
/// Secret without a type is `Opaque`.
fn normalize_secret(obj: &mut Value) {
    use base64::Engine;
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(Value::Object(plain)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in plain {
            let text = v.as_str().unwrap_or_default().to_string();
            data[k.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if m.get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        m.insert("type".into(), json!("Opaque"));
    }
}

fn rt_storage_of_crd(crd: &Value) -> String {
    meta::name(crd).to_string()
}
