//! The incident banner and status summary, and the health, readiness and metrics endpoints.

use axum::http::StatusCode;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    incident_banner_and_status_summary_follow_the_ops_api,
    health_ready_and_metrics_endpoints_answer,
);

async fn incident_banner_and_status_summary_follow_the_ops_api(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    assert!(!c.get("/").await.text.contains("incident-banner"));
    let summary = c.get("/api/status/summary.json").await.json();
    assert_eq!(summary["status"]["indicator"], "none");
    let created = app
        .ops("POST", "/ops/v1/incidents", Some(serde_json::json!({"name": "Photo uploads failing", "status": "investigating", "impact": "major", "body": "We are looking into it."})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();
    let home = c.get("/").await;
    assert!(home.text.contains("incident-banner") && home.text.contains("Photo uploads failing"));
    let summary = c.get("/api/status/summary.json").await.json();
    assert_eq!(summary["status"]["indicator"], "major");
    assert_eq!(summary["incidents"][0]["name"], "Photo uploads failing");
    assert_eq!(
        summary["incidents"][0]["incident_updates"][0]["body"],
        "We are looking into it."
    );
    assert!(summary["page"]["updated_at"].is_string());
    let r = app
        .ops(
            "POST",
            &format!("/ops/v1/incidents/{id}/updates"),
            Some(serde_json::json!({"status": "resolved", "body": "Fixed."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!c.get("/").await.text.contains("incident-banner"));
    let status = c.get("/status").await;
    assert!(status.text.contains("All systems operational") && status.text.contains("Fixed."));
    let summary = c.get("/api/status/summary.json").await.json();
    assert_eq!(summary["incidents"].as_array().unwrap().len(), 0);
}

async fn health_ready_and_metrics_endpoints_answer(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    c.get("/status").await;
    let m = c.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    for name in [
        "fieldbook_http_requests_total",
        "fieldbook_http_request_duration_seconds_bucket",
        "fieldbook_http_requests_in_flight",
        "fieldbook_db_query_duration_seconds_bucket",
        "\nprocess_cpu_seconds_total ",
        "\nprocess_resident_memory_bytes ",
        "\nprocess_start_time_seconds ",
        "\nprocess_open_fds ",
    ] {
        assert!(m.text.contains(name), "{name} missing in\n{}", m.text);
    }
    assert!(
        m.text.contains(r#"fieldbook_http_requests_total{method="GET",route="/status",status="200",status_class="2xx"} 1"#),
        "{}",
        m.text
    );
    assert_eq!(c.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
}
