//! Every ops endpoint is documented in openapi.yaml and refuses a missing or wrong token.

use axum::http::StatusCode;
use serde_json::json;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(every_ops_endpoint_rejects_missing_and_wrong_tokens,);

#[test]
fn openapi_documents_every_ops_endpoint() {
    let text = include_str!("../../openapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("openapi.yaml parses");
    assert_eq!(doc["openapi"].as_str().unwrap_or(""), "3.0.3");
    let paths = doc["paths"].as_mapping().expect("paths");
    for (method, path) in ENDPOINTS {
        let route = path
            .trim_start_matches("/ops/v1")
            .split('?')
            .next()
            .unwrap()
            .replace("/1/", "/{id}/");
        let item = paths
            .get(serde_yaml::Value::String(route.clone()))
            .unwrap_or_else(|| panic!("{route} not documented"));
        let op = &item[method.to_lowercase().as_str()];
        assert!(op.is_mapping(), "{method} {route} not documented");
        assert!(
            op["responses"]["401"].is_mapping(),
            "{method} {route} lacks the 401 response"
        );
    }
    assert_eq!(paths.len(), 10, "documented paths match the router");
    // The documented settings example is a document PUT /settings accepts.
    let example = serde_json::to_vec(&doc["components"]["schemas"]["SettingsDocument"]["example"])
        .expect("example as JSON");
    fieldbook::settings::parse(&example).expect("the settings example is valid");
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/ops/v1/support-content"),
    ("PUT", "/ops/v1/support-content"),
    ("GET", "/ops/v1/incidents"),
    ("POST", "/ops/v1/incidents"),
    ("POST", "/ops/v1/incidents/1/updates"),
    ("GET", "/ops/v1/inquiries/stats?sla_hours=24"),
    (
        "GET",
        "/ops/v1/logs/export?category=access&before=2030-01-01T00:00:00Z",
    ),
    ("POST", "/ops/v1/logs/prune"),
    ("GET", "/ops/v1/snapshot"),
    ("PUT", "/ops/v1/snapshot"),
    ("GET", "/ops/v1/maintenance"),
    ("PUT", "/ops/v1/maintenance"),
    ("GET", "/ops/v1/verify"),
    ("GET", "/ops/v1/settings"),
    ("PUT", "/ops/v1/settings"),
];

async fn every_ops_endpoint_rejects_missing_and_wrong_tokens(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (method, path) in ENDPOINTS {
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let r = app
                .ops_with_token(method, path, Some(json!({})), token)
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(r.json()["code"], "bad_token");
            assert!(r.headers.contains_key("www-authenticate"));
        }
    }
    assert_eq!(
        app.log_count("auth", "ops_token_rejected").await,
        ENDPOINTS.len() * 3
    );
    // The token never lands in a log.
    assert_eq!(app.log_count("auth", "wrong-token").await, 0);
    assert_eq!(app.log_count("access", "wrong-token").await, 0);
    // An app with no token configured refuses everything.
    let no_token = TestApp::with_config(backend, |c| c.ops_token_sha256 = None).await;
    let r = no_token.ops("GET", "/ops/v1/verify", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
