//! Resource verbs: get, list, watch, create, update, patch, delete, deletecollection. Each takes
//! the store lock once, so a read-modify-write (patch) is atomic.

use crate::events;
use crate::meta;
use crate::ops::{self, DeleteOpts, Propagation, WriteOpts};
use crate::patch;
use crate::registry::{Flavor, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{ResourceRequest, Shared, json_response};
use crate::ssa;
use crate::status::{self, ApiError, ApiResult};
use crate::store::Key;
use crate::table;
use crate::validate;
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

fn scope<'a>(rt: &ResourceType, sub: &'a str) -> ssa::Scope<'a> {
    ssa::Scope {
        subresource: sub,
        status_separate: rt.status_subresource && rt.flavor != Flavor::Namespace,
    }
}

/// Records field ownership for a non-apply write (create, update, patch).
fn track(
    store: &crate::store::Store,
    req: &ResourceRequest,
    old: Option<&Value>,
    new: &mut Value,
    sub: &str,
) {
    let rt = &req.rt;
    if ssa::untracked(rt) || !new.is_object() {
        return;
    }
    let manager = ssa::manager_of(
        req.query.get("fieldManager").map(String::as_str),
        header(req, http::header::USER_AGENT),
    );
    let sent = new.pointer("/metadata/managedFields").cloned();
    let live = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .cloned();
    match sent {
        // As the API server: a request that changes managedFields itself (kubectl's migration
        // from client-side to server-side apply does) is taken as is; `[{}]` clears them; an
        // empty list means "not sent".
        Some(Value::Array(a)) if a.len() == 1 && a[0] == json!({}) => {
            meta::metadata_mut(new).insert("managedFields".into(), json!([]));
            return;
        }
        Some(Value::Array(a)) if !a.is_empty() && Some(Value::Array(a.clone())) != live => {
            return;
        }
        _ => {}
    }
    let schema = ssa::schema_for(store, rt);
    let old = old.map(|o| view(rt, o));
    ssa::track_update(old.as_ref(), new, &manager, scope(rt, sub), schema.as_ref());
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
    let found = match stale_rv(shared, req, &store) {
        Some(at) => store.get_at(&rt.storage, &key(req), at).flatten(),
        None => store.get(&rt.storage, &key(req)),
    };
    let obj = found.ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, &key(req).1))?;
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

/// A continue token: the list's resourceVersion and the key the next page starts after, as
/// base64 JSON like the API server's (`{"v": "meta.k8s.io/v1", "rv": …, "start": …}`).
struct ContinueToken {
    rv: u64,
    after: Key,
}

fn encode_continue(rv: u64, k: &Key) -> String {
    use base64::Engine;
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [k.0, k.1]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    use base64::Engine;
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad("bad JSON"))?;
    if doc.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rv = doc
        .get("rv")
        .and_then(Value::as_u64)
        .filter(|rv| *rv > 0)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let start = doc.get("start").and_then(Value::as_array);
    let part = |i: usize| {
        start
            .and_then(|s| s.get(i))
            .and_then(Value::as_str)
            .map(String::from)
    };
    match (part(0), part(1)) {
        (Some(ns), Some(name)) => Ok(ContinueToken {
            rv,
            after: (ns, name),
        }),
        _ => Err(bad("encoded key is empty")),
    }
}

/// What the API server answers for a continue token whose revision was compacted.
fn continue_expired() -> ApiError {
    ApiError::new(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    )
}

fn too_old(rv: u64, oldest: u64) -> ApiError {
    ApiError::new(
        410,
        "Expired",
        format!("too old resource version: {rv} ({oldest})"),
    )
}

/// With stale reads on, the revision a `resourceVersion=0` read is served at.
fn stale_rv(shared: &Shared, req: &ResourceRequest, store: &crate::store::Store) -> Option<u64> {
    if req.query.get("resourceVersion").map(String::as_str) != Some("0") {
        return None;
    }
    let lag = shared.lag.stale_reads()?.lag;
    let when = std::time::Instant::now().checked_sub(lag)?;
    Some(store.rv_at(when))
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
    let token = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let exact = req.query.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
    // Only Arc clones happen under the lock; filtering and serialization happen outside it so a
    // large list does not hold up writers. Every page of a paged list is read at the revision of
    // its first page, as etcd serves it; once history no longer reaches it, 410 Gone.
    let (rv, candidates) = {
        let store = shared.store.lock().expect("store lock");
        let ns = req.namespace.as_deref();
        match token {
            Some(t) => {
                let objs = store
                    .list_at(&rt.storage, ns, Some(&t.after), t.rv)
                    .ok_or_else(continue_expired)?;
                (t.rv, objs)
            }
            None => {
                let at = if exact {
                    let want = req
                        .query
                        .get("resourceVersion")
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "resourceVersionMatch \"Exact\" requires a resourceVersion",
                            )
                        })?;
                    if want > store.current_rv() {
                        return Err(ApiError::new(
                            504,
                            "Timeout",
                            format!(
                                "Timeout: Too large resource version: {want}, current: {}",
                                store.current_rv()
                            ),
                        ));
                    }
                    Some(want)
                } else {
                    stale_rv(shared, req, &store)
                };
                match at {
                    Some(at) => {
                        let objs = store
                            .list_at(&rt.storage, ns, None, at)
                            .ok_or_else(|| too_old(at, store.history_start()))?;
                        (at, objs)
                    }
                    None => (store.current_rv(), store.list(&rt.storage, ns, None)),
                }
            }
        }
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
        list_meta["continue"] = json!(encode_continue(rv, k));
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

pub fn watch(shared: &Arc<Shared>, req: ResourceRequest, end_with: Option<Value>) -> Response {
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
        end_with,
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
    let raw = decode_body(req, body)?;
    if rt.flavor == Flavor::EventsV1 {
        event_causes(rt, &raw, validate::events_v1_create(&raw))?;
    }
    let mut raw = raw;
    let mut store = shared.store.lock().expect("store lock");
    track(&store, req, None, &mut raw, "");
    let obj = incoming(rt, raw);
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
    let mut raw = decode_body(req, body)?;
    let mut store = shared.store.lock().expect("store lock");
    let old = store.get(&rt.storage, &key(req));
    if rt.flavor == Flavor::EventsV1
        && let Some(old) = &old
    {
        let old = view(rt, old);
        event_causes(rt, &raw, validate::events_v1_update(&raw, &old))?;
    }
    if let Some(old) = &old {
        track(&store, req, Some(old), &mut raw, sub);
    }
    let obj = incoming(rt, raw);
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
        let force = req.query.get("force").is_some_and(|f| f == "true");
        let schema = ssa::schema_for(&store, rt);
        let apply_req = ssa::ApplyRequest {
            manager,
            force,
            scope: scope(rt, sub),
            schema: schema.as_ref(),
        };
        let Some(current) = current else {
            if !sub.is_empty() {
                return Err(ApiError::not_found(&rt.plural, &rt.group, &k.1));
            }
            let created = ssa::apply(None, &patch_doc, &apply_req)?;
            if rt.flavor == Flavor::EventsV1 {
                event_causes(rt, &created, validate::events_v1_create(&created))?;
            }
            let obj = incoming(rt, created);
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
        let merged = ssa::apply(Some(&live), &patch_doc, &apply_req)?;
        if rt.flavor == Flavor::EventsV1 {
            event_causes(rt, &merged, validate::events_v1_update(&merged, &live))?;
        }
        let merged = incoming(rt, merged);
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
    if rt.flavor == Flavor::EventsV1 {
        event_causes(
            rt,
            &doc,
            validate::events_v1_update(&doc, &view(rt, &current)),
        )?;
    }
    track(&store, req, Some(&current), &mut doc, sub);
    let w = ops::update(&mut store, rt, &k, incoming(rt, doc), sub, &opts)?;
    Ok(respond(StatusCode::OK, &view(rt, &w.object), &w.warnings))
}

/// An events.k8s.io/v1 Event refused as the API server refuses it.
fn event_causes(rt: &ResourceType, ev: &Value, causes: Vec<validate::Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        &rt.kind,
        &rt.group,
        meta::name(ev),
        causes,
    ))
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
    let propagation = match policy.as_str() {
        "" => match b.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Propagation::Orphan,
            Some(false) | None => Propagation::Background,
        },
        "Orphan" => Propagation::Orphan,
        "Background" => Propagation::Background,
        "Foreground" => Propagation::Foreground,
        other => {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                vec![(
                    "FieldValueNotSupported".into(),
                    "propagationPolicy".into(),
                    format!(
                        "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    ),
                )],
            ));
        }
    };
    Ok(DeleteOpts {
        propagation,
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
