//! The reconcile pipeline against a mocked API (tower-test, the kube-rs `ApiServerVerifier`
//! pattern): no stateful server is needed to check what tend asks and writes. Behaviour against
//! a real API server (watches, leader election, kubectl) is covered by the end-to-end tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tend::context::Clock;
use tend::context::Context;
use tend::metrics::Metrics;
use tend::reconcile::{KindContext, TendKind, reconcile};
use tend_crds::{BackupPolicy, EscalationPolicy, IncidentRecord, RestoreRequest};

/// One request the controller made.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// A scripted API: answers Secret and tend-object GETs from maps, echoes status patches and
/// event creations, and records every call.
struct MockApi {
    calls: Arc<Mutex<Vec<Call>>>,
    client: Client,
}

impl MockApi {
    /// `stored` is the object under reconcile: a status patch is answered with it, status
    /// replaced, as the apiserver answers.
    fn start(
        secrets: BTreeMap<&'static str, Vec<&'static str>>,
        objects: Vec<&'static str>,
        stored: Value,
    ) -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let path = parts.uri.path().to_string();
                let call = Call {
                    method: parts.method.clone(),
                    path: path.clone(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    body: body.clone(),
                };
                recorded.lock().unwrap().push(call);
                let last = path.rsplit('/').next().unwrap_or_default().to_string();
                let (status, reply) = if parts.method == Method::GET && path.contains("/secrets/") {
                    match secrets.get(last.as_str()) {
                        Some(keys) => {
                            let data: serde_json::Map<String, Value> = keys
                                .iter()
                                .map(|k| (k.to_string(), json!("c2VjcmV0")))
                                .collect();
                            (
                                StatusCode::OK,
                                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": last}, "data": data}),
                            )
                        }
                        None => not_found(&last),
                    }
                } else if parts.method == Method::GET {
                    if objects.contains(&last.as_str()) {
                        (
                            StatusCode::OK,
                            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": last}}),
                        )
                    } else {
                        not_found(&last)
                    }
                } else if parts.method == Method::PATCH {
                    let mut object = stored.clone();
                    object["status"] = body["status"].clone();
                    (StatusCode::OK, object)
                } else {
                    (StatusCode::OK, body)
                };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
        });
        let client = Client::new(service, "default");
        Self { calls, client }
    }

    fn context<K: TendKind>(&self) -> Arc<KindContext<K>> {
        KindContext::new(
            Arc::new(Context::new(
                self.client.clone(),
                "test-replica",
                Arc::new(Metrics::default()),
                Clock::system(),
            )),
            Arc::default(),
        )
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn status_patch(&self) -> Value {
        let calls = self.calls();
        let patch = calls
            .iter()
            .find(|c| c.method == Method::PATCH && c.path.ends_with("/status"))
            .unwrap_or_else(|| panic!("no status patch in {calls:#?}"));
        assert!(
            patch.query.contains("fieldManager=tend.dev"),
            "status must be applied by tend.dev: {}",
            patch.query
        );
        assert!(patch.query.contains("force=true"), "{}", patch.query);
        patch.body["status"].clone()
    }

    fn events(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == Method::POST && c.path.contains("/events"))
            .map(|c| c.body)
            .collect()
    }
}

fn not_found(name: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
               "message": format!("\"{name}\" not found")}),
    )
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status:#}"))
}

fn load<K: serde::de::DeserializeOwned + serde::Serialize>(
    example: &str,
    generation: i64,
) -> Arc<K> {
    let path = format!("{}/../examples/{example}", env!("CARGO_MANIFEST_DIR"));
    let mut doc: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["metadata"]["generation"] = json!(generation);
    doc["metadata"]["uid"] = json!("5c1d3c3e-0000-4000-8000-000000000001");
    Arc::new(serde_json::from_value(doc).unwrap())
}

const ALL_BACKUP_SECRETS: &[(&str, &[&str])] = &[
    ("backup-age", &["recipients", "identity"]),
    ("fieldbook-ops", &["token"]),
    (
        "fieldbook-db",
        &["host", "port", "dbname", "user", "password"],
    ),
    ("fieldbook-photos-s3", &["accessKeyId", "secretAccessKey"]),
    ("backup-repository-s3", &["accessKeyId", "secretAccessKey"]),
    (
        "scratch-db",
        &["host", "port", "dbname", "user", "password"],
    ),
];

fn secrets(
    list: &[(&'static str, &'static [&'static str])],
) -> BTreeMap<&'static str, Vec<&'static str>> {
    list.iter()
        .map(|(name, keys)| (*name, keys.to_vec()))
        .collect()
}

#[tokio::test]
async fn missing_secret_stalls_naming_the_field_and_secret() {
    let policy = load::<BackupPolicy>("backuppolicy.yaml", 3);
    let api = MockApi::start(BTreeMap::new(), vec![], json!(*policy));
    reconcile(policy, api.context()).await.unwrap();

    let status = api.status_patch();
    assert_eq!(status["observedGeneration"], 3);
    let stalled = condition(&status, "Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "SecretNotFound");
    assert_eq!(
        stalled["message"],
        "spec.encryption.recipientsSecretRef: Secret \"backup-age\" not found"
    );
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "SecretNotFound");

    let events = api.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["reason"], "SecretNotFound");
    assert_eq!(events[0]["regarding"]["kind"], "BackupPolicy");
    assert_eq!(events[0]["regarding"]["name"], "fieldbook-nightly");
}

#[tokio::test]
async fn missing_secret_key_is_reported_without_secret_values() {
    let mut present = secrets(ALL_BACKUP_SECRETS);
    present.insert("fieldbook-db", vec!["host", "port", "dbname", "user"]);
    let policy = load::<BackupPolicy>("backuppolicy.yaml", 1);
    let api = MockApi::start(present, vec![], json!(*policy));
    reconcile(policy, api.context()).await.unwrap();

    let status = api.status_patch();
    let stalled = condition(&status, "Stalled");
    assert_eq!(stalled["reason"], "SecretKeyMissing");
    assert_eq!(
        stalled["message"],
        "spec.targets.database.postgres.connectionSecretRef: Secret \"fieldbook-db\" has no key \"password\""
    );
    // The mock's secret value (base64 "secret") must never leak into status or events.
    let written =
        serde_json::to_string(&api.calls().iter().map(|c| &c.body).collect::<Vec<_>>()).unwrap();
    assert!(
        !written.contains("c2VjcmV0"),
        "a secret value leaked: {written}"
    );
}

#[tokio::test]
async fn new_backup_policy_is_ready_and_reports_its_next_run() {
    let policy = load::<BackupPolicy>("backuppolicy.yaml", 2);
    let api = MockApi::start(secrets(ALL_BACKUP_SECRETS), vec![], json!(*policy));
    reconcile(policy, api.context()).await.unwrap();

    let status = api.status_patch();
    assert_eq!(status["observedGeneration"], 2);
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "Valid");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .starts_with("no backup has run yet"),
        "{ready}"
    );
    // Nothing is due yet, so nothing runs; with no restore point the RPO is unknown.
    assert!(status.get("lastBackup").is_none(), "{status}");
    assert_eq!(condition(&status, "RPOMet")["status"], "Unknown");
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "Stalled")
    );
    // 02:00 Asia/Tokyo is 17:00 UTC.
    let next = status["nextScheduleTime"].as_str().unwrap();
    assert!(next.ends_with("T17:00:00Z"), "{next}");
    // The first observation of a healthy object is not a transition: no Event.
    assert!(api.events().is_empty(), "{:#?}", api.events());
}

#[tokio::test]
async fn escalation_policy_reports_totals_but_is_not_ready_without_an_engine() {
    let policy = load::<EscalationPolicy>("escalationpolicy.yaml", 1);
    let api = MockApi::start(
        secrets(&[
            ("smtp", &["host", "port", "from"]),
            ("chat-webhooks", &["slack", "teams"]),
        ]),
        vec![],
        json!(*policy),
    );
    reconcile(policy, api.context()).await.unwrap();

    let status = api.status_patch();
    // Nothing escalates until the incident engine lands: not Ready, and not Stalled either.
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "EngineNotImplemented");
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "Stalled"),
        "{status:#}"
    );
    assert_eq!(status["levels"], 3);
    // (15m + 30m + 1h) × (repeat 1 + 1)
    assert_eq!(status["totalEscalationTime"], "3h30m0s");
    // The first observation is not a transition: ten thousand new policies cost no Events.
    assert!(api.events().is_empty(), "{:#?}", api.events());

    // Ready changing reason (a Secret that was missing now exists) is one.
    let mut seen = (*load::<EscalationPolicy>("escalationpolicy.yaml", 1)).clone();
    let mut status = tend_crds::escalation_policy::EscalationPolicyStatus::default();
    status.conditions.push(tend_crds::conditions::condition(
        "Ready",
        false,
        "SecretNotFound",
        "spec.levels[0]: Secret \"smtp\" not found".to_owned(),
        Some(1),
        jiff::Timestamp::now(),
    ));
    seen.status = Some(status);
    reconcile(Arc::new(seen), api.context()).await.unwrap();
    let events = api.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "EngineNotImplemented");
}

#[tokio::test]
async fn missing_referenced_policy_stalls_a_restore_request() {
    let request = load::<RestoreRequest>("restorerequest.yaml", 1);
    let api = MockApi::start(
        secrets(&[(
            "scratch-db",
            &["host", "port", "dbname", "user", "password"],
        )]),
        vec![],
        json!(*request),
    );
    reconcile(request, api.context()).await.unwrap();
    let stalled = condition(&api.status_patch(), "Stalled").clone();
    assert_eq!(stalled["reason"], "ReferenceNotFound");
    assert_eq!(
        stalled["message"],
        "spec.policyRef: BackupPolicy \"fieldbook-nightly\" not found"
    );
}

#[tokio::test]
async fn invalid_spec_stalls_without_touching_references() {
    let mut policy = (*load::<BackupPolicy>("backuppolicy.yaml", 4)).clone();
    policy.spec.schedule = "0 25 * * *".into();
    let api = MockApi::start(BTreeMap::new(), vec![], json!(policy));
    reconcile(Arc::new(policy), api.context()).await.unwrap();

    assert!(
        api.calls().iter().all(|c| !c.path.contains("/secrets/")),
        "validation must come first"
    );
    let stalled = condition(&api.status_patch(), "Stalled").clone();
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.schedule: invalid cron schedule")
    );
}

#[tokio::test]
async fn unchanged_status_is_not_written_again() {
    let policy = load::<EscalationPolicy>("escalationpolicy.yaml", 1);
    let api = MockApi::start(
        secrets(&[
            ("smtp", &["host", "port", "from"]),
            ("chat-webhooks", &["slack", "teams"]),
        ]),
        vec![],
        json!(*policy),
    );
    let ctx = api.context();
    reconcile(policy.clone(), ctx.clone()).await.unwrap();
    // Feed the written status back, as the watch would, and reconcile again.
    let mut observed = (*policy).clone();
    observed.status = Some(serde_json::from_value(api.status_patch()).unwrap());
    let before = api.calls().len();
    reconcile(Arc::new(observed), ctx).await.unwrap();
    let writes: Vec<_> = api.calls()[before..]
        .iter()
        .filter(|c| c.method != Method::GET)
        .map(|c| c.path.clone())
        .collect();
    assert!(
        writes.is_empty(),
        "a steady object must not be rewritten: {writes:?}"
    );
}

#[tokio::test]
async fn incident_reports_postmortem_completeness() {
    let incident = load::<IncidentRecord>("incidentrecord.yaml", 1);
    let api = MockApi::start(BTreeMap::new(), vec!["fieldbook-oncall"], json!(*incident));
    reconcile(incident, api.context()).await.unwrap();
    let status = api.status_patch();
    assert_eq!(condition(&status, "PostmortemComplete")["status"], "True");
    assert_eq!(
        condition(&status, "Ready")["reason"],
        "EngineNotImplemented"
    );
}

#[tokio::test]
async fn unreadable_object_is_stalled_not_fatal() {
    use kube::core::DeserializeGuard;
    // An object the Rust types cannot read (e.g. written when the CRD had another shape).
    let raw = json!({
        "apiVersion": "tend.dev/v1alpha1", "kind": "EscalationPolicy",
        "metadata": {"name": "legacy", "namespace": "fieldbook", "generation": 7, "uid": "u-1"},
        "spec": {"levels": "L1,L2"}
    });
    let guard: DeserializeGuard<EscalationPolicy> = serde_json::from_value(raw.clone()).unwrap();
    assert!(guard.0.is_err());
    let api = MockApi::start(BTreeMap::new(), vec![], raw);
    tend::reconcile::reconcile_guarded(Arc::new(guard), api.context())
        .await
        .unwrap();

    let status = api.status_patch();
    assert_eq!(status["observedGeneration"], 7);
    let stalled = condition(&status, "Stalled");
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .starts_with("tend cannot read this object: ")
    );
    assert_eq!(api.events()[0]["regarding"]["name"], "legacy");
}
