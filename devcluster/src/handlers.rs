//! Resource verbs: get, list, watch, create, update, patch, delete, deletecollection. Each takes
//! the store lock once, so a read-modify-write (patch) is atomic.

use crate::events;
use crate::meta;
use crate::ops::{self, DeleteOpts, WriteOpts};
use crate::patch;
use crate::registry::{Flavor, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{ResourceRequest, Shared, json_response};
use crate::status::{self, ApiError, ApiResult};
use crate::store::Key;
use crate::table;
use crate::watch::{self, WatchSpec};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Storage form → the form this resource type presents.
pub fn view(rt: &ResourceType, obj: &Value) -> Value {
    if rt.flavor == Flavor::EventsV1 {
        return events::to_events_v1(obj);
    }
    let mut v = obj.clone();
    v["apiVersion"] = json!(rt.api_version());
    v["kind"] = json!(rt.kind);
    v
}

/// The presented form → storage form.
fn incoming(rt: &ResourceType, obj: Value) -> Value {
    if rt.flavor == Flavor::EventsV1 {
        events::to_core(obj)
    } else {
        obj
    }
}

fn header(req: &ResourceRequest, name: http::header::HeaderName) -> &str {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn decode_body(req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let ct = header(req, http::header::CONTENT_TYPE);
    if ct.contains("protobuf") {
        return crate::protobuf::decode(body)
            .map_err(|m| ApiError::new(415, "UnsupportedMediaType", m));
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml::from_slice::<Value>(body).map_err(|_| {
            ApiError::bad_request(format!(
                "the request body is not valid JSON or YAML: {json_err}"
            ))
        }),
    }
}

fn write_opts(req: &ResourceRequest) -> WriteOpts {
    WriteOpts {
        dry_run: req.query.get("dryRun").is_some_and(|d| d == "All"),
        strict: req
            .query
            .get("fieldValidation")
            .is_some_and(|f| f == "Strict"),
    }
}

fn wants_table(req: &ResourceRequest) -> bool {
    header(req, http::header::ACCEPT).contains("as=Table")
}

fn key(req: &ResourceRequest) -> Key {
    (
        req.namespace.clone().unwrap_or_default(),
        req.name.clone().unwrap_or_default(),
    )
}

fn respond(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let mut resp = json_response(code, body);
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "'"));
        if let Ok(h) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, h);
        }
    }
    resp
}

fn include(req: &ResourceRequest) -> String {
    req.query
        .get("includeObject")
        .cloned()
        .unwrap_or_else(|| "Object".into())
}

pub fn get(shared: &Shared, req: &ResourceRequest) -> ApiResult<Response> {
    let rt = &req.rt;
    let store = shared.store.lock().expect("store lock");
    let obj = store
        .get(&rt.storage, &key(req))
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, &key(req).1))?;
    let v = view(rt, &obj);
    if wants_table(req) {
        let meta = json!({"resourceVersion": meta::resource_version(&obj)});
        return Ok(json_response(
            StatusCode::OK,
            &table::table(rt, &[v], &include(req), meta),
        ));
    }
    Ok(json_response(StatusCode::OK, &v))
}

fn selectors(req: &ResourceRequest) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(
        req.query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        req.query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    Ok((labels, fields))
}

fn encode_continue(k: &Key) -> String {
    format!("{}/{}", k.0, k.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> ApiResult<Key> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

pub fn list(shared: &Shared, req: &ResourceRequest) -> ApiResult<Response> {
    let rt = &req.rt;
    let (labels, fields) = selectors(req)?;
    let limit: usize = req
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    // Only Arc clones happen under the lock; filtering and serialization happen outside it so a
    // large list does not hold up writers.
    let (rv, candidates) = {
        let store = shared.store.lock().expect("store lock");
        let objs = store.list(&rt.storage, req.namespace.as_deref(), after.as_ref());
        (store.current_rv(), objs)
    };
    let api_version = rt.api_version();
    let mut items: Vec<Arc<Value>> = vec![];
    let mut last_key = None;
    let mut more = false;
    for obj in candidates {
        let identity = rt.flavor != Flavor::EventsV1
            && obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str());
        let v = if identity {
            obj
        } else {
            Arc::new(view(rt, &obj))
        };
        if !labels.matches(&v) || !fields.matches(&v) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        last_key = Some((meta::namespace(&v).to_string(), meta::name(&v).to_string()));
        items.push(v);
    }
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if more && let Some(k) = &last_key {
        list_meta["continue"] = json!(encode_continue(k));
    }
    if wants_table(req) {
        let rows: Vec<Value> = items.iter().map(|v| (**v).clone()).collect();
        return Ok(json_response(
            StatusCode::OK,
            &table::table(rt, &rows, &include(req), list_meta),
        ));
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListBody<'a> {
        kind: String,
        api_version: String,
        metadata: Value,
        items: Vec<&'a Value>,
    }
    let body = ListBody {
        kind: rt.list_kind(),
        api_version,
        metadata: list_meta,
        items: items.iter().map(|a| a.as_ref()).collect(),
    };
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

pub fn watch(shared: &Arc<Shared>, req: ResourceRequest) -> Response {
    let (labels, mut fields) = match selectors(&req) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(name) = &req.name {
        match FieldSelector::parse(&format!("metadata.name={name}")) {
            Ok(f) => fields = f,
            Err(e) => return e.into_response(),
        }
    }
    let rt = req.rt.clone();
    let as_table = wants_table(&req);
    let rt_render = rt.clone();
    let include_mode = include(&req);
    let q = |k: &str| req.query.get(k).cloned().unwrap_or_default();
    let spec = WatchSpec {
        storage: rt.storage.clone(),
        namespace: req.namespace.clone(),
        filter: Box::new(move |v| labels.matches(v) && fields.matches(v)),
        render: Box::new(move |o| {
            let v = view(&rt_render, o);
            if as_table {
                table::table(&rt_render, &[v], &include_mode, json!({}))
            } else {
                v
            }
        }),
        bookmark: json!({"kind": rt.kind, "apiVersion": rt.api_version()}),
        resource_version: q("resourceVersion").parse().ok(),
        bookmarks: q("allowWatchBookmarks") == "true",
        send_initial_events: q("sendInitialEvents") == "true",
        timeout: Duration::from_secs(q("timeoutSeconds").parse().unwrap_or(1800)),
    };
    let stream = watch::start(shared, spec);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn create(shared: &Shared, req: &ResourceRequest, body: &[u8]) -> ApiResult<Response> {
    let rt = &req.rt;
    let obj = incoming(rt, decode_body(req, body)?);
    let mut store = shared.store.lock().expect("store lock");
    let w = ops::create(
        &mut store,
        rt,
        req.namespace.as_deref().unwrap_or_default(),
        obj,
        &write_opts(req),
    )?;
    Ok(respond(
        StatusCode::CREATED,
        &view(rt, &w.object),
        &w.warnings,
    ))
}

fn subresource(req: &ResourceRequest) -> ApiResult<&str> {
    match req.subresource.as_deref() {
        None => Ok(""),
        Some("status") if req.rt.status_subresource => Ok("status"),
        Some("finalize") if req.rt.flavor == Flavor::Namespace => Ok(""),
        Some(other) => Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the subresource {other:?}"),
        )),
    }
}

pub fn update(shared: &Shared, req: &ResourceRequest, body: &[u8]) -> ApiResult<Response> {
    let rt = &req.rt;
    let sub = subresource(req)?;
    let obj = incoming(rt, decode_body(req, body)?);
    let mut store = shared.store.lock().expect("store lock");
    let w = ops::update(&mut store, rt, &key(req), obj, sub, &write_opts(req))?;
    Ok(respond(StatusCode::OK, &view(rt, &w.object), &w.warnings))
}

pub fn patch(shared: &Shared, req: &ResourceRequest, body: &[u8]) -> ApiResult<Response> {
    let rt = &req.rt;
    let sub = subresource(req)?;
    let ct = header(req, http::header::CONTENT_TYPE).to_string();
    let patch_doc = decode_body(req, body)?;
    let k = key(req);
    let opts = write_opts(req);
    let mut store = shared.store.lock().expect("store lock");
    let current = store.get(&rt.storage, &k);
    if ct.starts_with("application/apply-patch") {
        let manager = req
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("PATCH with apply requires the fieldManager query parameter")
            })?;
        let Some(current) = current else {
            if !sub.is_empty() {
                return Err(ApiError::not_found(&rt.plural, &rt.group, &k.1));
            }
            let obj = incoming(rt, patch::apply(None, &patch_doc, manager, ""));
            let w = ops::create(&mut store, rt, &k.0, with_name(obj, &k.1), &opts)?;
            return Ok(respond(
                StatusCode::CREATED,
                &view(rt, &w.object),
                &w.warnings,
            ));
        };
        // As kube-apiserver does: a resourceVersion in the applied configuration is an
        // optimistic-concurrency precondition (409 Conflict when the object has moved on).
        if let Some(want) = patch_doc
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty())
            && want != meta::resource_version(&current)
        {
            return Err(ApiError::conflict(&rt.plural, &rt.group, &k.1));
        }
        let mut live = view(rt, &current);
        strip_rv(&mut live);
        let merged = incoming(rt, patch::apply(Some(&live), &patch_doc, manager, sub));
        let w = ops::update(&mut store, rt, &k, merged, sub, &opts)?;
        return Ok(respond(StatusCode::OK, &view(rt, &w.object), &w.warnings));
    }
    let current = current.ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, &k.1))?;
    let mut doc = view(rt, &current);
    if ct.starts_with("application/json-patch+json") {
        patch::json_patch(&mut doc, &patch_doc)?;
    } else if ct.starts_with("application/merge-patch+json") {
        patch::merge_patch(&mut doc, &patch_doc);
    } else if ct.starts_with("application/strategic-merge-patch+json") {
        let mut p = patch_doc;
        patch::strip_directives(&mut p);
        patch::merge_patch(&mut doc, &p);
    } else {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the patch content type {ct:?} is not supported"),
        ));
    }
    let w = ops::update(&mut store, rt, &k, incoming(rt, doc), sub, &opts)?;
    Ok(respond(StatusCode::OK, &view(rt, &w.object), &w.warnings))
}

/// Apply must not carry the live resourceVersion as a precondition of its own.
fn strip_rv(v: &mut Value) {
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
    }
}

fn with_name(mut obj: Value, name: &str) -> Value {
    meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
    obj
}

fn delete_opts(req: &ResourceRequest, body: &[u8]) -> ApiResult<DeleteOpts> {
    let b = decode_body(req, body)?;
    let policy = b
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| req.query.get("propagationPolicy").cloned())
        .unwrap_or_default();
    let dry = b
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|d| d == "All"))
        || req.query.get("dryRun").is_some_and(|d| d == "All");
    Ok(DeleteOpts {
        orphan: policy == "Orphan" || b.get("orphanDependents") == Some(&json!(true)),
        dry_run: dry,
        precondition_uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        precondition_rv: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
    })
}

pub fn delete(shared: &Shared, req: &ResourceRequest, body: &[u8]) -> ApiResult<Response> {
    let rt = &req.rt;
    let opts = delete_opts(req, body)?;
    let k = key(req);
    let mut store = shared.store.lock().expect("store lock");
    let obj = ops::delete(&mut store, rt, &k, &opts)?;
    if store.get(&rt.storage, &k).is_some() && !opts.dry_run {
        return Ok(json_response(StatusCode::OK, &view(rt, &obj)));
    }
    let done = status::success(&k.1, &rt.group, &rt.plural, meta::uid(&obj));
    Ok(json_response(StatusCode::OK, &done))
}

pub fn delete_collection(
    shared: &Shared,
    req: &ResourceRequest,
    body: &[u8],
) -> ApiResult<Response> {
    let rt = &req.rt;
    let opts = delete_opts(req, body)?;
    let (labels, fields) = selectors(req)?;
    let mut store = shared.store.lock().expect("store lock");
    let mut deleted = vec![];
    for obj in store.list(&rt.storage, req.namespace.as_deref(), None) {
        let v = view(rt, &obj);
        if labels.matches(&v) && fields.matches(&v) {
            let k = (
                meta::namespace(&obj).to_string(),
                meta::name(&obj).to_string(),
            );
            let _ = ops::delete(&mut store, rt, &k, &opts)?;
            deleted.push(v);
        }
    }
    let body = json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted});
    Ok(json_response(StatusCode::OK, &body))
}
