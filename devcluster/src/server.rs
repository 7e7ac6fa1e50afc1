//! HTTP front: routes a request to discovery or to a resource verb. Paths are parsed by hand
//! because Kubernetes paths have a variable shape (`/api/v1/namespaces/<ns>/<plural>/<name>/<sub>`,
//! the legacy `/watch/` prefix, cluster-scoped forms).

use crate::discovery;
use crate::faults::{self, FaultStage, Faults, Lag, RequestInfo};
use crate::handlers;
use crate::openapi;
use crate::registry::ResourceType;
use crate::status::ApiError;
use crate::store::Store;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Shared {
    pub store: Mutex<Store>,
    /// `host:port` the server listens on, for discovery's serverAddressByClientCIDRs.
    pub address: String,
    /// Injected faults (see [`crate::faults`]).
    pub faults: Faults,
    /// Watch delay and stale reads.
    pub lag: Lag,
}

impl Shared {
    pub fn new(store: Store, address: String) -> Shared {
        Shared {
            store: Mutex::new(store),
            address,
            faults: Faults::default(),
            lag: Lag::default(),
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::map_response(no_cache))
        .with_state(shared)
}

/// As kube-apiserver does for every response: `Cache-Control: no-cache, private`, so clients
/// with an HTTP cache (kubectl's discovery cache) revalidate instead of judging freshness from
/// the `Date` header — which would make a server whose clock runs ahead look forever fresh.
async fn no_cache(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-cache, private"));
    response
}

/// A parsed resource request.
pub struct ResourceRequest {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub watch: bool,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
}

/// `/api/v1/namespaces/<name>/status|finalize`: a Namespace subresource, not a namespaced path.
fn is_namespace_subresource(group: &str, rest: &[&str]) -> bool {
    group.is_empty() && rest.len() == 1 && matches!(rest[0], "status" | "finalize")
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = (code, body.to_string()).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let query = parse_query(uri.query());
    tracing::debug!(%method, %uri, "request");
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let reg = shared.store.lock().expect("store lock").registry.clone();
    let found = |v: Option<Value>| match v {
        Some(v) => json_response(StatusCode::OK, &v),
        None => ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .into_response(),
    };
    if let ["devcluster", "v1", rest @ ..] = segs.as_slice()
        && let Some(resp) = faults::control(&shared, &method, rest, &body)
    {
        return resp;
    }
    match segs.as_slice() {
        ["version"] => return json_response(StatusCode::OK, &discovery::version()),
        ["healthz"] | ["readyz"] | ["livez"] => return "ok".into_response(),
        ["api"] => {
            return json_response(StatusCode::OK, &discovery::core_versions(&shared.address));
        }
        ["api", "v1"] => return found(discovery::resource_list(&reg, "", "v1")),
        ["apis"] => return json_response(StatusCode::OK, &discovery::group_list(&reg)),
        ["apis", g] => return found(discovery::group(&reg, g)),
        ["apis", g, v] => return found(discovery::resource_list(&reg, g, v)),
        ["openapi", "v3"] => return json_response(StatusCode::OK, &openapi::root(&reg)),
        ["openapi", "v3", "api", v] => return found(openapi::group_version_doc(&reg, "", v)),
        ["openapi", "v3", "apis", g, v] => return found(openapi::group_version_doc(&reg, g, v)),
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
            .into_response();
        }
    };
    let (watch_prefix, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let (namespace, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, r @ ..] if !r.is_empty() && !is_namespace_subresource(group, r) => {
            (Some(*ns), r)
        }
        r => (None, r),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => {
            return ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
            .into_response();
        }
    };
    let Some(rt) = reg.get(group, version, plural) else {
        return ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .into_response();
    };
    if namespace.is_some() && !rt.namespaced {
        return ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .into_response();
    }
    let watch = watch_prefix || query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let req = ResourceRequest {
        rt,
        namespace: namespace.map(String::from),
        name,
        subresource: sub,
        watch,
        query,
        headers,
    };
    let verb = match (&method, req.name.is_some(), req.watch) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, false, false) => "list",
        (&Method::GET, true, false) => "get",
        (&Method::POST, ..) => "create",
        (&Method::PUT, ..) => "update",
        (&Method::PATCH, ..) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        _ => "",
    };
    let info = RequestInfo {
        verb,
        resource: &req.rt.plural,
        subresource: req.subresource.as_deref().unwrap_or_default(),
        namespace: req.namespace.as_deref().unwrap_or_default(),
        name: req.name.as_deref().unwrap_or_default(),
    };
    if let Some(f) = shared.faults.take(&info, FaultStage::BeforeCommit) {
        tracing::debug!(verb, resource = %req.rt.plural, "injected fault before commit");
        return faults::respond(&f);
    }
    let after_commit = shared.faults.armed(&info, FaultStage::AfterCommit);
    let result = match (&method, req.name.is_some(), req.watch) {
        (&Method::GET, _, true) => {
            let end_with = shared
                .faults
                .take(&info, FaultStage::AfterCommit)
                .map(|f| faults::status_body(&f));
            return handlers::watch(&shared, req, end_with);
        }
        (&Method::GET, false, false) => handlers::list(&shared, &req),
        (&Method::GET, true, false) => handlers::get(&shared, &req),
        (&Method::POST, false, _) => handlers::create(&shared, &req, &body),
        (&Method::PUT, true, _) => handlers::update(&shared, &req, &body),
        (&Method::PATCH, true, _) => handlers::patch(&shared, &req, &body),
        (&Method::DELETE, true, _) => handlers::delete(&shared, &req, &body),
        (&Method::DELETE, false, _) => handlers::delete_collection(&shared, &req, &body),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on this path"),
        )),
    };
    match result {
        Ok(resp) => {
            if after_commit
                && resp.status().is_success()
                && let Some(f) = shared.faults.take(&info, FaultStage::AfterCommit)
            {
                tracing::debug!(verb, "injected fault after commit: the response is lost");
                return faults::respond(&f);
            }
            resp
        }
        Err(e) => {
            tracing::debug!(code = e.code, message = %e.message, "request failed");
            e.into_response()
        }
    }
}
