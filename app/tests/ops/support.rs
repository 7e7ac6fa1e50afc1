//! Support content by revision, incidents and inquiry statistics.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use serde_json::json;

use crate::fixtures::content;
use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    support_content_is_published_by_revision_and_shown_in_help,
    incidents_reject_bad_input,
    inquiry_stats_require_a_valid_sla,
);

async fn support_content_is_published_by_revision_and_shown_in_help(backend: Backend) {
    let app = TestApp::new(backend).await;
    let default = app.ops("GET", "/ops/v1/support-content", None).await;
    assert_eq!(default.status, StatusCode::OK);
    assert_eq!(default.json()["revision"], 0);
    let r = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(1, "Early morning.")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["changed"], true);
    let again = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(1, "Early morning.")),
        )
        .await;
    assert_eq!(again.json()["changed"], false);
    let conflict = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(1, "Evening.")),
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let r = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(2, "Evening.")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let older = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(1, "Early morning.")),
        )
        .await;
    assert_eq!(older.status, StatusCode::CONFLICT);
    for (body, field) in [
        (content(0, "x"), "revision"),
        (content(3, " "), "faq.answer"),
        (
            {
                let mut c = content(3, "x");
                c["nps"]["intervalDays"] = json!(0);
                c
            },
            "nps.intervalDays",
        ),
        (
            {
                let mut c = content(3, "x");
                c["forms"]["inquiryCategories"] = json!([]);
                c
            },
            "forms.inquiryCategories",
        ),
        (
            {
                let mut c = content(3, "x");
                c["colour"] = json!("red");
                c
            },
            "colour",
        ),
        (json!({"faq": []}), "revision"),
    ] {
        let r = app.ops("PUT", "/ops/v1/support-content", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text
        );
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let r = app
        .ops_with_token(
            "PUT",
            "/ops/v1/support-content",
            None,
            Some(tend_testkit::fieldbook::OPS_TOKEN),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let current = app.ops("GET", "/ops/v1/support-content", None).await.json();
    assert_eq!(current["revision"], 2);
    let mut user = app.user("farmer@example.com", Role::User).await;
    let help = user.get("/help?q=water").await;
    assert!(
        help.text.contains("Evening.") && help.text.contains("Planting rice"),
        "{}",
        help.text
    );
    let support = user.get("/support").await;
    assert!(support.text.contains("Harvest"));
    // NPS disabled by the published settings.
    assert!(!user.get("/records").await.text.contains("id=\"nps\""));
    let r = user
        .post_multipart(
            "/support/inquiries",
            &[("category", "Harvest"), ("subject", "s"), ("message", "m")],
            None,
            true,
        )
        .await;
    assert!(r.text.contains("Thanks for writing") && r.text.contains("We answer within a day."));
}

async fn incidents_reject_bad_input(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (body, field) in [
        (
            json!({"name": "x", "status": "panicking", "impact": "minor", "body": "b"}),
            "status",
        ),
        (
            json!({"name": "x", "status": "investigating", "impact": "huge", "body": "b"}),
            "impact",
        ),
        (
            json!({"name": "", "status": "investigating", "impact": "minor", "body": "b"}),
            "name",
        ),
        (
            json!({"status": "investigating", "impact": "minor", "body": "b"}),
            "name",
        ),
    ] {
        let r = app.ops("POST", "/ops/v1/incidents", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text
        );
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let missing = app
        .ops(
            "POST",
            "/ops/v1/incidents/999/updates",
            Some(json!({"status": "resolved", "body": "b"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let created = app
        .ops(
            "POST",
            "/ops/v1/incidents",
            Some(
                json!({"name": "DB slow", "status": "identified", "impact": "minor", "body": "b"}),
            ),
        )
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    let bad = app
        .ops(
            "POST",
            &format!("/ops/v1/incidents/{id}/updates"),
            Some(json!({"status": "done", "body": "b"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let list = app.ops("GET", "/ops/v1/incidents", None).await.json();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["incidents"][0]["updates"].as_array().unwrap().len(),
        1,
        "bad update stored nothing"
    );
}

async fn inquiry_stats_require_a_valid_sla(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in [
        "/ops/v1/inquiries/stats",
        "/ops/v1/inquiries/stats?sla_hours=soon",
        "/ops/v1/inquiries/stats?sla_hours=-1",
    ] {
        let r = app.ops("GET", path, None).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(r.json()["field"], "sla_hours");
    }
    // An unanswered inquiry older than the SLA is overdue.
    let mut user = app.user("farmer@example.com", Role::User).await;
    user.post_multipart(
        "/support/inquiries",
        &[("category", "Account"), ("subject", "s"), ("message", "m")],
        None,
        true,
    )
    .await;
    sqlx::query("UPDATE inquiries SET created_at = created_at - 7200000")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let stats = app
        .ops("GET", "/ops/v1/inquiries/stats?sla_hours=1", None)
        .await
        .json();
    assert_eq!(stats["overdue"], 1);
    assert!(stats["oldestUnansweredSeconds"].as_i64().unwrap() >= 7200);
    let stats = app
        .ops("GET", "/ops/v1/inquiries/stats?sla_hours=3", None)
        .await
        .json();
    assert_eq!(stats["overdue"], 0);
}
