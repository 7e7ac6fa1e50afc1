//! `GET /verify` and the periodic self-check behind the metrics.

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    verify_reports_row_counts_and_missing_photo_objects,
    periodic_self_check_shows_missing_photos_in_metrics,
);

async fn verify_reports_row_counts_and_missing_photo_objects(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = app.farm_with_photo("farmer@example.com", 4).await;
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["tables"]["records"], 1);
    assert_eq!(v["tables"]["users"], 1);
    assert_eq!(v["photos"]["referenced"], 1);
    std::fs::remove_file(app.dir.path().join("photos").join(&key)).unwrap();
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["photos"]["missing"][0], key.as_str());
}

/// Waits until `/metrics` shows both lines, or fails after `secs`.
async fn wait_for_metrics(app: &TestApp, lines: &[&str], secs: u64) {
    let started = std::time::Instant::now();
    loop {
        let text = app.client().get("/metrics").await.text;
        if lines.iter().all(|l| text.lines().any(|t| t == *l)) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(secs),
            "{lines:?} not in /metrics within {secs}s:\n{}",
            text.lines()
                .filter(|l| l.starts_with("fieldbook_verify"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn last_run(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("fieldbook_verify_last_run_timestamp_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn periodic_self_check_shows_missing_photos_in_metrics(backend: Backend) {
    let app = TestApp::with_config(backend, |c| {
        c.verify_interval = Some(std::time::Duration::from_secs(1));
    })
    .await;
    let key = app.farm_with_photo("farmer@example.com", 5).await;
    let task = fieldbook::selfcheck::start(&app.state).expect("interval set");
    wait_for_metrics(
        &app,
        &[
            "fieldbook_verify_missing_objects 0",
            "fieldbook_verify_ok 1",
        ],
        10,
    )
    .await;
    let first = last_run(&app.client().get("/metrics").await.text);
    assert!(first > 1.6e9, "{first}");
    let object = app.dir.path().join("photos").join(&key);
    let away = app.dir.path().join("away.png");
    std::fs::rename(&object, &away).unwrap();
    wait_for_metrics(
        &app,
        &[
            "fieldbook_verify_missing_objects 1",
            "fieldbook_verify_ok 0",
        ],
        10,
    )
    .await;
    assert!(last_run(&app.client().get("/metrics").await.text) > first);
    std::fs::rename(&away, &object).unwrap();
    wait_for_metrics(
        &app,
        &[
            "fieldbook_verify_missing_objects 0",
            "fieldbook_verify_ok 1",
        ],
        10,
    )
    .await;
    task.abort();

    // With the period off, GET /verify alone moves the metrics, at once.
    let manual = TestApp::with_config(backend, |c| c.verify_interval = None).await;
    assert!(fieldbook::selfcheck::start(&manual.state).is_none());
    let key = manual.farm_with_photo("farmer@example.com", 6).await;
    std::fs::remove_file(manual.dir.path().join("photos").join(&key)).unwrap();
    let v = manual.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], false);
    wait_for_metrics(
        &manual,
        &[
            "fieldbook_verify_missing_objects 1",
            "fieldbook_verify_ok 0",
        ],
        0,
    )
    .await;
}
