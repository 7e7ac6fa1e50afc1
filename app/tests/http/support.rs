//! Inquiries, feedback and the NPS survey, and the help button on every page.

use axum::http::StatusCode;
use fieldbook::auth::Role;

use tend_testkit::fieldbook::{Backend, TestApp, png};
use tend_testkit::on_both_backends;

on_both_backends!(
    inquiry_is_acknowledged_answered_by_staff_and_visible_in_history,
    feedback_forms_and_nps_survey_reach_the_operator_view,
    every_page_has_the_help_button_and_help_search_finds_faq,
);

async fn inquiry_is_acknowledged_answered_by_staff_and_visible_in_history(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    let mut op = app.user("op@example.com", Role::Operator).await;
    let support = user.get("/support").await;
    assert!(support.text.contains("Records and photos"));
    let r = user
        .post_multipart(
            "/support/inquiries",
            &[
                ("category", "Records and photos"),
                ("subject", "Photo missing"),
                ("message", "My photo does not show"),
            ],
            Some(("screenshot", "s.png", &png(9))),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("id=\"acknowledgement\"") && r.text.contains("We received your inquiry")
    );
    let bad = user
        .post_multipart(
            "/support/inquiries",
            &[("category", "Nope"), ("subject", "x"), ("message", "y")],
            None,
            true,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("category"));

    let stats = app
        .ops("GET", "/ops/v1/inquiries/stats?sla_hours=24", None)
        .await
        .json();
    assert_eq!(stats["open"], 1);
    assert_eq!(stats["unanswered"], 1);
    assert_eq!(stats["overdue"], 0);
    assert!(stats["oldestUnansweredSeconds"].as_i64().unwrap() >= 0);

    let queue = op.get("/admin/inquiries").await;
    assert!(queue.text.contains("Photo missing"), "{}", queue.text);
    let id_row = sqlx::query("SELECT id FROM inquiries")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&id_row, "id");
    let op_row = sqlx::query("SELECT id FROM users WHERE email = 'op@example.com'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let op_id: i64 = sqlx::Row::get(&op_row, "id");
    let r = op
        .post_form(
            &format!("/admin/inquiries/{id}/assign"),
            &[("assignee_id", &op_id.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = op
        .post_form(
            &format!("/admin/inquiries/{id}/reply"),
            &[("body", "Please try uploading again as PNG.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let history = user.get(&format!("/support/inquiries/{id}")).await;
    assert!(
        history.text.contains("Please try uploading again as PNG.")
            && history.text.contains("Support team")
    );
    assert!(history.text.contains("answered"));
    let stats = app
        .ops("GET", "/ops/v1/inquiries/stats?sla_hours=24", None)
        .await
        .json();
    assert_eq!(stats["unanswered"], 0);
    let r = op
        .post_form(&format!("/admin/inquiries/{id}/close"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let stats = app
        .ops("GET", "/ops/v1/inquiries/stats?sla_hours=24", None)
        .await
        .json();
    assert_eq!(stats["open"], 0);
    // A plain user cannot use the staff pages.
    assert_eq!(
        user.get("/admin/inquiries").await.status,
        StatusCode::FORBIDDEN
    );
    // Another user cannot read this inquiry.
    let mut other = app.user("other@example.com", Role::User).await;
    assert_eq!(
        other.get(&format!("/support/inquiries/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let verify = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(verify["photos"]["referenced"], 1);
    assert_eq!(verify["photos"]["missing"].as_array().unwrap().len(), 0);
}

async fn feedback_forms_and_nps_survey_reach_the_operator_view(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    let first = user.get("/records").await;
    assert!(
        first.text.contains("id=\"nps\""),
        "survey shown the first time"
    );
    let second = user.get("/records").await;
    assert!(
        !second.text.contains("id=\"nps\""),
        "survey not shown again within the interval"
    );
    let r = user
        .post_form("/nps", &[("score", "10"), ("comment", "great app")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let bad = user.post_form("/nps", &[("score", "11")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("score"));
    let mut other = app.user("other@example.com", Role::User).await;
    other.get("/records").await;
    other.post_form("/nps", &[("score", "3")]).await;
    assert_eq!(user.get("/feedback?kind=bug").await.status, StatusCode::OK);
    let r = user
        .post_form(
            "/feedback",
            &[
                ("kind", "bug"),
                ("title", "Crash on save"),
                ("body", "It crashed"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = user
        .post_form(
            "/feedback",
            &[
                ("kind", "feature"),
                ("title", "Weather"),
                ("body", "Show rain"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = user
        .post_form(
            "/feedback",
            &[("kind", "rant"), ("title", "x"), ("body", "y")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut op = app.user("op@example.com", Role::Operator).await;
    let view = op.get("/admin/feedback").await;
    assert_eq!(view.status, StatusCode::OK);
    // One promoter, one detractor: NPS 0.
    assert!(
        view.text.contains("<strong>0</strong> from 2 responses"),
        "{}",
        view.text
    );
    assert!(
        view.text.contains("Crash on save")
            && view.text.contains("bug: 1")
            && view.text.contains("feature: 1")
    );
    assert_eq!(
        user.get("/admin/feedback").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn every_page_has_the_help_button_and_help_search_finds_faq(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    for path in [
        "/",
        "/records",
        "/fields",
        "/support",
        "/help",
        "/status",
        "/support/inquiries",
        "/feedback?kind=feature",
    ] {
        let page = user.get(path).await;
        assert!(
            page.status == StatusCode::OK || page.status == StatusCode::SEE_OTHER,
            "{path}"
        );
        if page.status == StatusCode::OK {
            assert!(
                page.text.contains("id=\"help-button\""),
                "{path} lacks the help button"
            );
        }
    }
    let help = user.get("/help?q=photo").await;
    assert!(help.text.contains("How do I add a photo to a record?"));
    let json = user.get("/help/faq.json?q=password").await.json();
    assert_eq!(json.as_array().unwrap().len(), 1);
    let css = user.get("/static/app.css").await;
    assert!(
        css.text
            .contains(".help-button { position: fixed; right: 16px; bottom: 16px;")
    );
}
