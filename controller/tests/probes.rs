//! `/healthz`, `/readyz` and `/metrics` of the controller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tend::metrics::Metrics;
use tend::server::{Probes, router};
use tower::ServiceExt;

async fn get(probes: &Probes, path: &str) -> (StatusCode, String) {
    let response = router(probes.clone())
        .oneshot(Request::get(path).body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn readyz_fails_until_the_api_answered() {
    let probes = Probes {
        metrics: Arc::new(Metrics::default()),
        ready: Arc::new(AtomicBool::new(false)),
    };
    assert_eq!(get(&probes, "/healthz").await.0, StatusCode::OK);
    assert_eq!(
        get(&probes, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    probes.ready.store(true, Ordering::Relaxed);
    assert_eq!(get(&probes, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_expose_reconcile_counts_by_kind() {
    let metrics = Arc::new(Metrics::default());
    metrics.observe_reconcile("BackupPolicy", std::time::Duration::from_millis(12));
    metrics.leader.set(1);
    let probes = Probes {
        metrics,
        ready: Arc::new(AtomicBool::new(true)),
    };
    let (status, body) = get(&probes, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("tend_reconciles_total{kind=\"BackupPolicy\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("tend_reconcile_duration_seconds_count{kind=\"BackupPolicy\"} 1"),
        "{body}"
    );
    assert!(body.contains("tend_leader 1"), "{body}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
}
