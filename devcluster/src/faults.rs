//! Fault injection: make devcluster fail the way a real API server does, on purpose, so tests
//! can prove that a client survives it.
//!
//! A real kube-apiserver sometimes answers 500, 429 (with `Retry-After`) or 504; sometimes it
//! commits a write and the response is lost on the way back; its watches lag and end; reads
//! served from its watch cache (`resourceVersion=0`) can be behind. devcluster is kinder by
//! default; a test turns each of these on:
//!
//! - [`DevCluster::inject`](crate::DevCluster::inject) a [`Fault`]: matching requests are
//!   answered with a [`FaultResponse`], either before anything is written
//!   ([`FaultStage::BeforeCommit`]) or after the write was committed — stored, resourceVersion
//!   bumped, watch event sent — so the client sees an error for a change that happened
//!   ([`FaultStage::AfterCommit`]). A fault on a watch refuses it (before commit) or ends it
//!   with an in-stream `ERROR` event carrying the status after its initial events (after
//!   commit).
//! - [`DevCluster::set_watch_delay`](crate::DevCluster::set_watch_delay): every watch event is
//!   delivered late, in order.
//! - [`DevCluster::set_stale_reads`](crate::DevCluster::set_stale_reads): lists and gets with
//!   `resourceVersion=0` (what kube-runtime's watcher sends when it (re)lists) see the state as
//!   it was a while ago, as a lagging watch cache serves it.
//! - [`DevCluster::close_watches`](crate::DevCluster::close_watches): every open watch ends and
//!   resuming from an older resourceVersion gets 410 Gone, as after an API server restart.
//!
//! The same controls are served over HTTP for the `devcluster` binary (scripts/dev.sh), under
//! `/devcluster/v1/` (not part of the Kubernetes API; no authentication — loopback only):
//!
//! | Request | Body | Effect |
//! |---|---|---|
//! | `POST /devcluster/v1/faults` | a [`FaultSpec`] | inject a fault; answers `{"id", "fired", "remaining"}` |
//! | `GET /devcluster/v1/faults` | | every injected fault with its counters |
//! | `DELETE /devcluster/v1/faults` | | [`clear_faults`](crate::DevCluster::clear_faults) |
//! | `PUT /devcluster/v1/watch-delay` | `{"baseMillis": 200, "jitterMillis": 100}` | set the watch delay (zeros: off) |
//! | `PUT /devcluster/v1/stale-reads` | `{"lagMillis": 2000}` | stale `resourceVersion=0` reads |
//! | `DELETE /devcluster/v1/stale-reads` | | fresh reads again |
//! | `POST /devcluster/v1/close-watches` | | end every open watch |
//!
//! A [`FaultSpec`] body looks like
//! `{"response": "InternalError" | "TooManyRequests" | "Timeout", "retryAfterSeconds": 1,
//! "verb": "update", "resource": "backuppolicies", "subresource": "status",
//! "namespace": "shop", "name": "nightly", "stage": "BeforeCommit" | "AfterCommit", "times": 1}`;
//! every field but `response` is optional. For example:
//!
//! ```text
//! curl -X POST http://127.0.0.1:PORT/devcluster/v1/faults \
//!   -d '{"response":"InternalError","verb":"update","resource":"backuppolicies","subresource":"status","stage":"AfterCommit"}'
//! ```

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a faulty request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultResponse {
    /// 500, Status reason `InternalError`.
    InternalError,
    /// 429, Status reason `TooManyRequests`, with a `Retry-After` header.
    TooManyRequests { retry_after_seconds: u32 },
    /// 504, Status reason `Timeout`.
    Timeout,
}

/// When a write fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStage {
    /// The request is refused; nothing is written.
    BeforeCommit,
    /// The write is committed (stored, resourceVersion bumped, watch event sent) but the client
    /// gets the error: the response is lost.
    AfterCommit,
}

/// Which requests fail, how, and how many times.
#[derive(Clone, Debug)]
pub struct Fault {
    verb: Option<String>,
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    response: FaultResponse,
    stage: FaultStage,
    times: u32,
}

impl Fault {
    /// Matches every resource request, strikes before commit, once.
    pub fn new(response: FaultResponse) -> Fault {
        Fault {
            verb: None,
            resource: None,
            subresource: None,
            namespace: None,
            name: None,
            response,
            stage: FaultStage::BeforeCommit,
            times: 1,
        }
    }

    /// Only this Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection.
    pub fn verb(mut self, verb: &str) -> Fault {
        self.verb = Some(verb.to_string());
        self
    }

    /// Only this resource (plural), e.g. "backuppolicies", "events".
    pub fn resource(mut self, plural: &str) -> Fault {
        self.resource = Some(plural.to_string());
        self
    }

    /// Only this subresource, e.g. "status". Without it, only requests with no subresource match.
    pub fn subresource(mut self, sub: &str) -> Fault {
        self.subresource = Some(sub.to_string());
        self
    }

    /// Only requests in this namespace.
    pub fn namespace(mut self, ns: &str) -> Fault {
        self.namespace = Some(ns.to_string());
        self
    }

    /// Only requests for the object with this name.
    pub fn name(mut self, name: &str) -> Fault {
        self.name = Some(name.to_string());
        self
    }

    /// Commit the write, then answer with the error.
    pub fn after_commit(mut self) -> Fault {
        self.stage = FaultStage::AfterCommit;
        self
    }

    /// Answer `n` matching requests this way, then stop matching.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    pub fn stage(&self) -> FaultStage {
        self.stage
    }

    pub fn response(&self) -> &FaultResponse {
        &self.response
    }

    fn matches(&self, r: &RequestInfo<'_>) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.verb, r.verb)
            && eq(&self.resource, r.resource)
            && self.subresource.as_deref().unwrap_or("") == r.subresource
            && eq(&self.namespace, r.namespace)
            && eq(&self.name, r.name)
    }
}

/// Counts how often an injected fault struck.
#[derive(Clone)]
pub struct FaultHandle {
    counter: Arc<Counter>,
}

struct Counter {
    fired: AtomicU32,
    remaining: AtomicU32,
}

impl FaultHandle {
    /// How many requests this fault has answered.
    pub fn fired(&self) -> u32 {
        self.counter.fired.load(Ordering::SeqCst)
    }

    /// How many more matching requests it will answer.
    pub fn remaining(&self) -> u32 {
        self.counter.remaining.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultHandle")
            .field("fired", &self.fired())
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Reads served "from cache" lag behind by this much.
#[derive(Clone, Copy, Debug)]
pub struct StaleReads {
    pub lag: Duration,
}

/// What a request is, in the terms faults match on.
pub struct RequestInfo<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The faults injected into one devcluster, in injection order.
#[derive(Default)]
pub struct Faults {
    list: Mutex<Vec<(u64, Fault, FaultHandle)>>,
    next_id: Mutex<u64>,
}

impl Faults {
    pub fn inject(&self, fault: Fault) -> (u64, FaultHandle) {
        let handle = FaultHandle {
            counter: Arc::new(Counter {
                fired: AtomicU32::new(0),
                remaining: AtomicU32::new(fault.times),
            }),
        };
        let id = {
            let mut n = self.next_id.lock().expect("faults lock");
            *n += 1;
            *n
        };
        self.list
            .lock()
            .expect("faults lock")
            .push((id, fault, handle.clone()));
        (id, handle)
    }

    pub fn clear(&self) {
        self.list.lock().expect("faults lock").clear();
    }

    /// The first fault for this stage that matches the request and has answers left; counts
    /// it as fired.
    pub fn take(&self, req: &RequestInfo<'_>, stage: FaultStage) -> Option<FaultResponse> {
        let list = self.list.lock().expect("faults lock");
        for (_, f, h) in list.iter() {
            if f.stage != stage || !f.matches(req) {
                continue;
            }
            let left = h.counter.remaining.load(Ordering::SeqCst);
            if left == 0 {
                continue;
            }
            h.counter.remaining.store(left - 1, Ordering::SeqCst);
            h.counter.fired.fetch_add(1, Ordering::SeqCst);
            return Some(f.response.clone());
        }
        None
    }

    /// True when some fault for this stage could still match the request (nothing is counted).
    pub fn armed(&self, req: &RequestInfo<'_>, stage: FaultStage) -> bool {
        let list = self.list.lock().expect("faults lock");
        list.iter().any(|(_, f, h)| {
            f.stage == stage && f.matches(req) && h.counter.remaining.load(Ordering::SeqCst) > 0
        })
    }

    fn describe(&self) -> Value {
        let list = self.list.lock().expect("faults lock");
        Value::Array(
            list.iter()
                .map(|(id, f, h)| {
                    let mut v = serde_json::to_value(FaultSpec::from(f)).unwrap_or_default();
                    v["id"] = json!(id);
                    v["fired"] = json!(h.fired());
                    v["remaining"] = json!(h.remaining());
                    v
                })
                .collect(),
        )
    }
}

/// The Status body a real API server sends for this response.
pub fn status_body(resp: &FaultResponse) -> Value {
    match resp {
        FaultResponse::InternalError => json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Internal error occurred: injected fault (devcluster)",
            "reason": "InternalError",
            "details": {"causes": [{"message": "injected fault (devcluster)"}]},
            "code": 500
        }),
        FaultResponse::TooManyRequests {
            retry_after_seconds,
        } => json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Too many requests: please try again later",
            "reason": "TooManyRequests",
            "details": {"retryAfterSeconds": retry_after_seconds},
            "code": 429
        }),
        FaultResponse::Timeout => json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Timeout: request did not complete within requested timeout - context deadline exceeded",
            "reason": "Timeout",
            "details": {},
            "code": 504
        }),
    }
}

/// The HTTP response for a fault.
pub fn respond(resp: &FaultResponse) -> Response {
    let body = status_body(resp);
    let code = body
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| StatusCode::from_u16(c as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let FaultResponse::TooManyRequests {
        retry_after_seconds,
    } = resp
        && let Ok(v) = http::HeaderValue::from_str(&retry_after_seconds.to_string())
    {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
}

/// A fault as JSON, for the HTTP control API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// `InternalError`, `TooManyRequests` or `Timeout`.
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `BeforeCommit` (default) or `AfterCommit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl From<&Fault> for FaultSpec {
    fn from(f: &Fault) -> Self {
        let (response, retry) = match &f.response {
            FaultResponse::InternalError => ("InternalError", None),
            FaultResponse::TooManyRequests {
                retry_after_seconds,
            } => ("TooManyRequests", Some(*retry_after_seconds)),
            FaultResponse::Timeout => ("Timeout", None),
        };
        FaultSpec {
            response: response.into(),
            retry_after_seconds: retry,
            verb: f.verb.clone(),
            resource: f.resource.clone(),
            subresource: f.subresource.clone(),
            namespace: f.namespace.clone(),
            name: f.name.clone(),
            stage: Some(match f.stage {
                FaultStage::BeforeCommit => "BeforeCommit".into(),
                FaultStage::AfterCommit => "AfterCommit".into(),
            }),
            times: Some(f.times),
        }
    }
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(s: FaultSpec) -> Result<Fault, String> {
        let response = match s.response.as_str() {
            "InternalError" => FaultResponse::InternalError,
            "TooManyRequests" => FaultResponse::TooManyRequests {
                retry_after_seconds: s.retry_after_seconds.unwrap_or(1),
            },
            "Timeout" => FaultResponse::Timeout,
            other => {
                return Err(format!(
                    "response {other:?} is not one of InternalError, TooManyRequests, Timeout"
                ));
            }
        };
        let mut f = Fault::new(response);
        f.verb = s.verb;
        f.resource = s.resource;
        f.subresource = s.subresource;
        f.namespace = s.namespace;
        f.name = s.name;
        f.stage = match s.stage.as_deref() {
            None | Some("BeforeCommit") => FaultStage::BeforeCommit,
            Some("AfterCommit") => FaultStage::AfterCommit,
            Some(other) => {
                return Err(format!(
                    "stage {other:?} is not one of BeforeCommit, AfterCommit"
                ));
            }
        };
        f.times = s.times.unwrap_or(1);
        Ok(f)
    }
}

/// The watch delay and stale-read settings, changed at run time.
#[derive(Default)]
pub struct Lag {
    watch: Mutex<(Duration, Duration)>,
    stale: Mutex<Option<StaleReads>>,
}

impl Lag {
    pub fn set_watch_delay(&self, base: Duration, jitter: Duration) {
        *self.watch.lock().expect("lag lock") = (base, jitter);
    }

    /// How long to hold the next watch event: base + uniform(0..jitter).
    pub fn next_watch_delay(&self) -> Duration {
        let (base, jitter) = *self.watch.lock().expect("lag lock");
        let j = jitter.as_micros() as u64;
        let extra = if j == 0 { 0 } else { fastrand::u64(0..j) };
        base + Duration::from_micros(extra)
    }

    pub fn set_stale_reads(&self, stale: Option<StaleReads>) {
        *self.stale.lock().expect("lag lock") = stale;
    }

    pub fn stale_reads(&self) -> Option<StaleReads> {
        *self.stale.lock().expect("lag lock")
    }
}

fn control_error(code: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": message.into()});
    crate::server::json_response(code, &body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WatchDelaySpec {
    #[serde(default)]
    base_millis: u64,
    #[serde(default)]
    jitter_millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StaleSpec {
    lag_millis: u64,
}

/// A control request body (empty means `{}`).
fn body_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("bad request body: {e}"))
}

/// The `/devcluster/v1/...` control API; `None` when the path is not one of its routes.
pub fn control(
    shared: &crate::server::Shared,
    method: &http::Method,
    rest: &[&str],
    body: &[u8],
) -> Option<Response> {
    use http::Method;
    let ok = |v: Value| crate::server::json_response(StatusCode::OK, &v);
    let resp = match (method, rest) {
        (&Method::POST, ["faults"]) => {
            let spec = match body_as::<FaultSpec>(body) {
                Ok(s) => s,
                Err(m) => return Some(control_error(StatusCode::BAD_REQUEST, m)),
            };
            match Fault::try_from(spec) {
                Ok(f) => {
                    let (id, h) = shared.faults.inject(f);
                    crate::server::json_response(
                        StatusCode::CREATED,
                        &json!({"id": id, "fired": h.fired(), "remaining": h.remaining()}),
                    )
                }
                Err(m) => control_error(StatusCode::BAD_REQUEST, m),
            }
        }
        (&Method::GET, ["faults"]) => ok(json!({"faults": shared.faults.describe()})),
        (&Method::DELETE, ["faults"]) => {
            shared.faults.clear();
            ok(json!({"faults": []}))
        }
        (&Method::PUT, ["watch-delay"]) => match body_as::<WatchDelaySpec>(body) {
            Ok(s) => {
                shared.lag.set_watch_delay(
                    Duration::from_millis(s.base_millis),
                    Duration::from_millis(s.jitter_millis),
                );
                ok(json!({"baseMillis": s.base_millis, "jitterMillis": s.jitter_millis}))
            }
            Err(m) => control_error(StatusCode::BAD_REQUEST, m),
        },
        (&Method::DELETE, ["watch-delay"]) => {
            shared.lag.set_watch_delay(Duration::ZERO, Duration::ZERO);
            ok(json!({"baseMillis": 0, "jitterMillis": 0}))
        }
        (&Method::PUT, ["stale-reads"]) => match body_as::<StaleSpec>(body) {
            Ok(s) => {
                shared.lag.set_stale_reads(Some(StaleReads {
                    lag: Duration::from_millis(s.lag_millis),
                }));
                ok(json!({"lagMillis": s.lag_millis}))
            }
            Err(m) => control_error(StatusCode::BAD_REQUEST, m),
        },
        (&Method::DELETE, ["stale-reads"]) => {
            shared.lag.set_stale_reads(None);
            ok(json!({"lagMillis": null}))
        }
        (&Method::POST, ["close-watches"]) => {
            shared.store.lock().expect("store lock").restart_watches();
            ok(json!({"closed": true}))
        }
        _ => control_error(
            StatusCode::NOT_FOUND,
            format!(
                "no devcluster control route {method} /devcluster/v1/{}",
                rest.join("/")
            ),
        ),
    };
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(verb: &'a str, resource: &'a str, sub: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            verb,
            resource,
            subresource: sub,
            namespace: "ns",
            name: "n",
        }
    }

    #[test]
    fn faults_match_and_count_down() {
        let faults = Faults::default();
        let (_, h) = faults.inject(
            Fault::new(FaultResponse::InternalError)
                .verb("update")
                .resource("widgets")
                .subresource("status")
                .times(2),
        );
        let status = req("update", "widgets", "status");
        assert!(
            faults
                .take(&req("update", "widgets", ""), FaultStage::BeforeCommit)
                .is_none()
        );
        assert!(
            faults
                .take(&req("patch", "widgets", "status"), FaultStage::BeforeCommit)
                .is_none()
        );
        assert!(faults.take(&status, FaultStage::AfterCommit).is_none());
        assert_eq!(
            faults.take(&status, FaultStage::BeforeCommit),
            Some(FaultResponse::InternalError)
        );
        assert_eq!((h.fired(), h.remaining()), (1, 1));
        assert!(faults.take(&status, FaultStage::BeforeCommit).is_some());
        assert!(faults.take(&status, FaultStage::BeforeCommit).is_none());
        assert_eq!((h.fired(), h.remaining()), (2, 0));
    }

    #[test]
    fn without_a_subresource_only_main_resource_requests_match() {
        let faults = Faults::default();
        faults.inject(Fault::new(FaultResponse::Timeout).times(5));
        assert!(
            faults
                .take(&req("get", "widgets", "status"), FaultStage::BeforeCommit)
                .is_none()
        );
        assert!(
            faults
                .take(&req("get", "widgets", ""), FaultStage::BeforeCommit)
                .is_some()
        );
    }

    #[test]
    fn spec_round_trips_and_rejects_unknown_values() {
        let f: Fault = serde_json::from_value::<FaultSpec>(json!({
            "response": "TooManyRequests", "retryAfterSeconds": 3, "verb": "create",
            "stage": "AfterCommit", "times": 4
        }))
        .unwrap()
        .try_into()
        .unwrap();
        assert_eq!(
            f.response,
            FaultResponse::TooManyRequests {
                retry_after_seconds: 3
            }
        );
        assert_eq!(f.stage, FaultStage::AfterCommit);
        assert_eq!(f.times, 4);
        let bad = FaultSpec {
            response: "Teapot".into(),
            ..FaultSpec::default()
        };
        assert!(Fault::try_from(bad).is_err());
        assert!(
            serde_json::from_value::<FaultSpec>(json!({"response": "Timeout", "bogus": 1}))
                .is_err()
        );
    }

    #[test]
    fn responses_carry_the_apiserver_codes_and_reasons() {
        for (r, code, reason) in [
            (FaultResponse::InternalError, 500, "InternalError"),
            (
                FaultResponse::TooManyRequests {
                    retry_after_seconds: 2,
                },
                429,
                "TooManyRequests",
            ),
            (FaultResponse::Timeout, 504, "Timeout"),
        ] {
            let b = status_body(&r);
            assert_eq!(b["code"], code);
            assert_eq!(b["reason"], reason);
            let resp = respond(&r);
            assert_eq!(resp.status().as_u16(), code);
        }
        let resp = respond(&FaultResponse::TooManyRequests {
            retry_after_seconds: 2,
        });
        assert_eq!(resp.headers()[http::header::RETRY_AFTER], "2");
    }
}
