//! `GET /verify` and the periodic self-check behind the metrics.

use axum::http::StatusCode;
use fieldbook::auth::Role;

use crate::fixtures::farm_with_photo;
use tend_testkit::fieldbook::{Backend, TestApp, png};
use tend_testkit::on_both_backends;

on_both_backends!(
    verify_reports_row_counts_and_missing_photo_objects,
    periodic_self_check_shows_missing_photos_in_metrics,
);

async fn verify_reports_row_counts_and_missing_photo_objects(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    user.post_form("/fields", &[("name", "North")]).await;
    let fid: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM fields")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
    user.post_form(
        "/crops",
        &[("field_id", &fid.to_string()), ("name", "Tomato")],
    )
    .await;
    let cid: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM crops")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
    let r = user
        .post_multipart(
            "/records",
            &[
                ("crop_id", &cid.to_string()),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            Some(("photo", "p.png", &png(4))),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["tables"]["records"], 1);
    assert_eq!(v["tables"]["users"], 1);
    assert_eq!(v["photos"]["referenced"], 1);
    let key: String = sqlx::Row::get(
        &sqlx::query("SELECT object_key FROM photos")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "object_key",
    );
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
    let key = farm_with_photo(&app, "farmer@example.com", 5).await;
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
    let key = farm_with_photo(&manual, "farmer@example.com", 6).await;
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
