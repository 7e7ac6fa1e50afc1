//! Data the areas share: a support-content document and a farm with a photo.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use serde_json::json;

use tend_testkit::fieldbook::{TestApp, png};

pub(crate) fn content(revision: i64, answer: &str) -> serde_json::Value {
    json!({
        "revision": revision,
        "faq": [{"question": "When is the best time to water?", "answer": answer, "tags": ["water"]}],
        "guides": [{"title": "Planting rice", "body": "Flood the paddy first."}],
        "troubleshooting": [{"title": "Cannot sign in", "body": "Check caps lock."}],
        "forms": {"inquiryCategories": ["Account", "Harvest"]},
        "autoReply": {"subject": "Thanks for writing", "body": "We answer within a day."},
        "nps": {"enabled": false, "intervalDays": 30, "question": "Would you recommend us?"}
    })
}

/// A user with one field, crop and record with a photo; returns the photo's object key.
pub(crate) async fn farm_with_photo(app: &TestApp, email: &str, seed: u8) -> String {
    use sqlx::Row;
    let mut user = app.user(email, Role::User).await;
    user.post_form("/fields", &[("name", "North")]).await;
    let fid: i64 = sqlx::query("SELECT MAX(id) AS id FROM fields")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .get("id");
    user.post_form(
        "/crops",
        &[("field_id", &fid.to_string()), ("name", "Tomato")],
    )
    .await;
    let cid: i64 = sqlx::query("SELECT MAX(id) AS id FROM crops")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .get("id");
    let r = user
        .post_multipart(
            "/records",
            &[
                ("crop_id", &cid.to_string()),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            Some(("photo", "p.png", &png(seed))),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    sqlx::query("SELECT object_key FROM photos ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .get("object_key")
}
