//! Maintenance mode: pages answer 503, the ops API and status do not.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use serde_json::json;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(maintenance_mode_blocks_pages_but_not_ops_or_status,);

async fn maintenance_mode_blocks_pages_but_not_ops_or_status(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    for (body, field) in [
        (json!({}), "enabled"),
        (json!({"enabled": "yes"}), "enabled"),
        (json!({"enabled": true, "message": ""}), "message"),
    ] {
        let r = app.ops("PUT", "/ops/v1/maintenance", Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let on = app
        .ops(
            "PUT",
            "/ops/v1/maintenance",
            Some(json!({"enabled": true, "message": "Upgrading the database until 10:00."})),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    let page = user.get("/records").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text.contains("Upgrading the database until 10:00."));
    assert_eq!(user.get("/status").await.status, StatusCode::OK);
    assert_eq!(user.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(
        app.ops("GET", "/ops/v1/maintenance", None).await.json()["enabled"],
        true
    );
    // Survives a restart: a new state reads it from the database.
    let restarted = fieldbook::AppState::new(app.state.db.clone(), (*app.state.config).clone())
        .await
        .unwrap();
    assert!(restarted.maintenance_message().is_some());
    let off = app
        .ops(
            "PUT",
            "/ops/v1/maintenance",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(off.json()["enabled"], false);
    assert_eq!(user.get("/records").await.status, StatusCode::OK);
}
