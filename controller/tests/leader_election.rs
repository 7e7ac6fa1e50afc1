//! Leader election against a minimal in-memory Lease endpoint with resourceVersion checks (the
//! one piece of API state election needs). Two `tend run` processes against devcluster are
//! covered by the end-to-end tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tend::leader::{LeaderElector, LeaseConfig};

/// Serves one Lease: GET, POST (create, 409 if it exists), PUT (409 on a stale resourceVersion).
fn lease_api() -> (Client, Arc<Mutex<Option<Value>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let store: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    let state = store.clone();
    tokio::spawn(async move {
        let mut version = 0u64;
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body: Value = serde_json::from_slice(&body.collect().await.unwrap().to_bytes())
                .unwrap_or(Value::Null);
            let mut lease = state.lock().unwrap();
            let conflict = || {
                (
                    StatusCode::CONFLICT,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"}),
                )
            };
            let (status, reply) = match parts.method {
                Method::GET => match lease.as_ref() {
                    Some(l) => (StatusCode::OK, l.clone()),
                    None => (
                        StatusCode::NOT_FOUND,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                    ),
                },
                Method::POST if lease.is_some() => conflict(),
                Method::PUT
                    if lease.as_ref().map(|l| &l["metadata"]["resourceVersion"])
                        != Some(&body["metadata"]["resourceVersion"]) =>
                {
                    conflict()
                }
                Method::POST | Method::PUT => {
                    version += 1;
                    let mut stored = body.clone();
                    stored["metadata"]["resourceVersion"] = json!(version.to_string());
                    *lease = Some(stored.clone());
                    (
                        if parts.method == Method::POST {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        },
                        stored,
                    )
                }
                _ => (StatusCode::METHOD_NOT_ALLOWED, Value::Null),
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap();
            respond.send_response(response);
        }
    });
    (Client::new(service, "default"), store)
}

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_millis(300),
        retry_period: Duration::from_millis(50),
        ..LeaseConfig::new("tend-system", "tend-controller", identity)
    }
}

fn holder(store: &Arc<Mutex<Option<Value>>>) -> Value {
    store
        .lock()
        .unwrap()
        .as_ref()
        .map(|l| l["spec"]["holderIdentity"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn only_one_candidate_leads_while_the_lease_is_renewed() {
    let (client, store) = lease_api();
    let mut a = LeaderElector::new(client.clone(), config("a"));
    let mut b = LeaderElector::new(client, config("b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(holder(&store), "a");
    // b keeps trying for longer than the lease duration while a keeps renewing: b never leads.
    for _ in 0..10 {
        assert!(!b.try_acquire_or_renew().await.unwrap());
        assert!(a.try_acquire_or_renew().await.unwrap());
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(holder(&store), "a");
}

#[tokio::test]
async fn a_dead_leaders_lease_is_taken_over_after_the_lease_duration() {
    let (client, store) = lease_api();
    let mut a = LeaderElector::new(client.clone(), config("a"));
    let mut b = LeaderElector::new(client, config("b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    // a stops renewing. b must first observe the unchanged record for a whole lease duration.
    assert!(!b.try_acquire_or_renew().await.unwrap());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "taken over before the lease expired"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(b.try_acquire_or_renew().await.unwrap());
    assert_eq!(holder(&store), "b");
    let transitions = store.lock().unwrap().as_ref().unwrap()["spec"]["leaseTransitions"].clone();
    assert_eq!(transitions, 1);
    // The old leader finds out it lost the lease.
    assert!(!a.try_acquire_or_renew().await.unwrap());
}

#[tokio::test]
async fn released_lease_is_taken_at_once() {
    let (client, store) = lease_api();
    let mut a = LeaderElector::new(client.clone(), config("a"));
    let mut b = LeaderElector::new(client, config("b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    a.release().await.unwrap();
    assert_eq!(holder(&store), Value::Null);
    assert!(b.try_acquire_or_renew().await.unwrap());
    assert_eq!(holder(&store), "b");
}
