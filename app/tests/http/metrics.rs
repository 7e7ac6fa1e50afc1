//! `/metrics` label values stay bounded whatever clients send, and carry what
//! the example alert rules select on.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use tend_testkit::fieldbook::{Backend, Reply, TestApp};

fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| (b'A' + b % 26) as char).collect()
}

async fn send(app: &TestApp, method: &str, path: &str) -> Reply {
    let req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a method token"))
        .uri(path)
        .body(Body::empty())
        .expect("request");
    Reply::from(app.router.clone().oneshot(req).await.expect("infallible")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_and_paths_do_not_grow_metrics() {
    let app = TestApp::new(Backend::Sqlite).await;
    let mut c = app.client();
    c.get("/status").await;
    c.get("/no/such/page").await;
    let before = c.get("/metrics").await.text;

    let mut sent = Vec::new();
    for i in 0..300 {
        // "Q" keeps the token clear of every real method name.
        let method = format!("Q{}", random_token(11));
        let segment = random_token(12).to_lowercase();
        let path = match i % 3 {
            0 => format!("/{segment}/{}", random_token(6).to_lowercase()),
            1 => format!("/records/{segment}/delete"),
            _ => format!("/ops/v1/{segment}"),
        };
        let r = send(&app, &method, &path).await;
        assert!(r.status.is_client_error(), "{method} {path}: {}", r.status);
        sent.push((method, segment));
    }
    // Known methods on unknown paths count too, under their own name.
    for _ in 0..20 {
        let path = format!("/{}", random_token(10).to_lowercase());
        assert_eq!(
            send(&app, "DELETE", &path).await.status,
            StatusCode::NOT_FOUND
        );
    }

    let after = c.get("/metrics").await.text;
    eprintln!(
        "/metrics: {} bytes before, {} after",
        before.len(),
        after.len()
    );
    assert!(
        after.len() < before.len() + 16 * 1024,
        "/metrics grew from {} to {} bytes:\n{after}",
        before.len(),
        after.len()
    );
    for (method, segment) in &sent {
        assert!(
            !after.contains(method.as_str()),
            "method {method} is a label value"
        );
        assert!(
            !after.contains(segment.as_str()),
            "path {segment} is a label value"
        );
    }
    for line in after
        .lines()
        .filter(|l| l.starts_with("fieldbook_http_requests_total{"))
    {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no method label: {line}"));
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
            ]
            .contains(&method),
            "{line}"
        );
        assert!(line.contains("status_class=\""), "{line}");
    }
    // Two thirds of the random requests hit no route (`/ops/v1/<x>` neither).
    assert!(
        after.contains(r#"method="other",route="unmatched",status="404",status_class="4xx"} 200"#),
        "{after}"
    );
    assert!(
        after.contains(r#"method="DELETE",route="unmatched",status="404",status_class="4xx"} 20"#),
        "{after}"
    );
    // A matched path is labelled with its template; the method is not allowed there.
    assert!(
        after.contains(
            r#"method="other",route="/records/{id}/delete",status="405",status_class="4xx"} 100"#
        ),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_latency_histogram_has_le_buckets_per_route() {
    let app = TestApp::new(Backend::Sqlite).await;
    let mut c = app.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    let text = c.get("/metrics").await.text;
    for le in ["0.005", "0.1", "0.5", "1.0", "10.0", "+Inf"] {
        let bucket = format!(
            r#"fieldbook_http_request_duration_seconds_bucket{{le="{le}",method="GET",route="/healthz",status="200",status_class="2xx"}} 1"#
        );
        assert!(text.contains(&bucket), "{bucket} missing in\n{text}");
    }
    assert!(text.contains("# TYPE fieldbook_http_request_duration_seconds histogram"));
    assert!(text.contains(
        r#"fieldbook_http_request_duration_seconds_count{method="GET",route="/healthz",status="200",status_class="2xx"} 1"#
    ));
}
