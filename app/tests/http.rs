//! HTTP-level tests through `app()` + `oneshot`, each run on SQLite and on a
//! throwaway PostgreSQL.

mod common;

use axum::http::StatusCode;
use common::{Backend, TestApp, png};
use fieldbook::auth::Role;

on_both_backends!(
    signup_signs_in_with_secure_cookie_attributes,
    post_without_csrf_token_is_rejected,
    login_is_throttled_after_repeated_failures,
    records_with_photos_are_listed_searched_and_paginated,
    bad_record_input_names_the_field_and_stores_nothing,
    users_cannot_see_each_others_records_or_photos,
    inquiry_is_acknowledged_answered_by_staff_and_visible_in_history,
    feedback_forms_and_nps_survey_reach_the_operator_view,
    non_admin_cannot_read_logs_and_the_attempt_is_logged,
    admin_changes_a_role_and_it_is_auth_logged,
    incident_banner_and_status_summary_follow_the_ops_api,
    health_ready_and_metrics_endpoints_answer,
    every_page_has_the_help_button_and_help_search_finds_faq,
    farmer_pages_speak_japanese_by_default_and_english_on_request,
    language_switch_sets_the_cookie_and_never_leaves_the_site,
);

async fn signup_signs_in_with_secure_cookie_attributes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    let page = c.get("/signup").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("name=\"csrf\""));
    let r = c
        .post_form(
            "/signup",
            &[
                ("email", "Hanako@Example.com"),
                ("password", "a long enough secret"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("fb_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let records = c.get("/records").await;
    assert_eq!(records.status, StatusCode::OK);
    assert!(records.text.contains("hanako@example.com") || records.text.contains("Sign out"));
    // Duplicate sign-up names the field.
    let mut other = app.client();
    let dup = other
        .post_form(
            "/signup",
            &[
                ("email", "hanako@example.com"),
                ("password", "another long secret"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.text.contains("email"), "{}", dup.text);
    // Short password names the field.
    let short = other
        .post_form(
            "/signup",
            &[("email", "x@example.com"), ("password", "short")],
        )
        .await;
    assert!(short.text.contains("password"), "{}", short.text);
    // Sign-out ends the session.
    let out = c.post_form("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let again = c.get("/records").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), "/login");
    assert_eq!(app.log_count("auth", "\"signup\"").await, 1);
    assert_eq!(app.log_count("auth", "\"logout\"").await, 1);
    // No secret in any stored log entry.
    assert_eq!(app.log_count("auth", "a long enough secret").await, 0);
    assert_eq!(app.log_count("access", "a long enough secret").await, 0);
}

async fn post_without_csrf_token_is_rejected(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("farmer@example.com", Role::User).await;
    let r = c.post_raw_form("/fields", "name=North").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = c.post_raw_form("/fields", "name=North&csrf=0000").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .post_multipart(
            "/records",
            &[("crop_id", "1"), ("day", "2024-05-01"), ("kind", "sowing")],
            None,
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let count = sqlx::query("SELECT COUNT(*) AS n FROM fields")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&count, "n"), 0);
    let ok = c.post_form("/fields", &[("name", "North")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

async fn login_is_throttled_after_repeated_failures(backend: Backend) {
    let app = TestApp::new(backend).await;
    drop(app.user("target@example.com", Role::User).await);
    let mut c = app.client();
    for _ in 0..5 {
        let r = c
            .post_form(
                "/login",
                &[
                    ("email", "target@example.com"),
                    ("password", "wrong password!"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Even the right password is refused while throttled.
    let r = c
        .post_form(
            "/login",
            &[
                ("email", "target@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(app.log_count("auth", "login_failed").await, 5);
    assert_eq!(app.log_count("auth", "login_throttled").await, 1);
}

async fn setup_crop(c: &mut common::Client, field: &str, crop: &str) -> i64 {
    let r = c
        .post_form("/fields", &[("name", field), ("location", "by the river")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let page = c.get("/fields").await;
    let marker = format!(">{field}</option>");
    let before = &page.text[..page.text.find(&marker).expect("field in select")];
    let field_id = before
        .rsplit("value=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = c
        .post_form(
            "/crops",
            &[
                ("field_id", &field_id),
                ("name", crop),
                ("variety", "Momotaro"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let page = c.get("/records").await;
    let marker = format!(">{crop} (Momotaro) — {field}</option>");
    let before = &page.text[..page.text.find(&marker).expect("crop in select")];
    before
        .rsplit("value=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn records_with_photos_are_listed_searched_and_paginated(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("farmer@example.com", Role::User).await;
    let tomato = setup_crop(&mut c, "North", "Tomato").await.to_string();
    let rice = setup_crop(&mut c, "South", "Rice").await.to_string();
    let image = png(1);
    let r = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &tomato),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
                ("quantity", "2.5"),
                ("unit", "kg"),
                ("notes", "first seeds"),
            ],
            Some(("photo", "seed.png", &image)),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for day in 1..=25 {
        let d = format!("2024-06-{day:02}");
        let r = c
            .post_multipart(
                "/records",
                &[
                    ("crop_id", &rice),
                    ("day", &d),
                    ("kind", "watering"),
                    ("notes", ""),
                ],
                None,
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    }
    let page = c.get("/records?crop=tomato").await;
    assert!(
        page.text.contains("first seeds") && page.text.contains("2.5 kg"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("2024-06-01"));
    let photo_path = page
        .text
        .split("src=\"/photos/")
        .nth(1)
        .expect("photo link")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let photo = c.get(&format!("/photos/{photo_path}")).await;
    assert_eq!(photo.status, StatusCode::OK);
    assert_eq!(photo.bytes, image);
    assert_eq!(photo.headers["content-type"], "image/png");
    // Stored content-addressed on disk.
    let key = sqlx::query("SELECT object_key FROM photos")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let key: String = sqlx::Row::get(&key, "object_key");
    assert_eq!(
        std::fs::read(app.dir.path().join("photos").join(&key)).unwrap(),
        image
    );
    // Date range.
    let page = c
        .get("/records?crop=rice&from=2024-06-10&to=2024-06-12")
        .await;
    assert_eq!(
        page.text.matches("<td>2024-06-1").count(),
        3,
        "{}",
        page.text
    );
    // Pagination: 26 records, 20 per page.
    let first = c.get("/records").await;
    assert_eq!(
        first.text.matches("data-kind=\"watering\"").count()
            + first.text.matches("data-kind=\"sowing\"").count(),
        20
    );
    assert!(first.text.contains("rel=\"next\""));
    let second = c.get("/records?page=2").await;
    assert!(
        second.text.contains("first seeds"),
        "oldest record on page 2"
    );
    assert!(!second.text.contains("rel=\"next\""));
    // Bad search input names the field.
    let bad = c.get("/records?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("from"));
    // Delete logs the before state.
    let id_row = sqlx::query("SELECT id FROM records ORDER BY id LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&id_row, "id");
    let r = c.post_form(&format!("/records/{id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.log_count("operation", "record.delete").await, 1);
    assert_eq!(app.log_count("operation", "record.create").await, 26);
}

async fn bad_record_input_names_the_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("farmer@example.com", Role::User).await;
    let crop = setup_crop(&mut c, "North", "Tomato").await.to_string();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-13-01"),
                ("kind", "sowing"),
            ],
            "day",
        ),
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "dancing"),
            ],
            "kind",
        ),
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
                ("quantity", "-3"),
            ],
            "quantity",
        ),
        (
            &[
                ("crop_id", "abc"),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
            ],
            "crop_id",
        ),
        (
            &[
                ("crop_id", "99999"),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
            ],
            "crop_id",
        ),
    ];
    for (fields, name) in cases {
        let r = c
            .post_multipart("/records", fields, Some(("photo", "p.png", &png(2))), true)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.text
        );
        assert!(r.text.contains(name), "{name}: {}", r.text);
    }
    let not_image = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            Some(("photo", "x.exe", b"MZ not an image")),
            true,
        )
        .await;
    assert_eq!(not_image.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_image.text.contains("photo"));
    let n = sqlx::query("SELECT COUNT(*) AS n FROM records")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&n, "n"), 0);
}

async fn users_cannot_see_each_others_records_or_photos(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut a = app.user("a@example.com", Role::User).await;
    let mut b = app.user("b@example.com", Role::User).await;
    let crop = setup_crop(&mut a, "North", "Tomato").await.to_string();
    a.post_multipart(
        "/records",
        &[
            ("crop_id", &crop),
            ("day", "2024-05-01"),
            ("kind", "sowing"),
            ("notes", "secret plot"),
        ],
        Some(("photo", "p.png", &png(3))),
        true,
    )
    .await;
    let list = b.get("/records").await;
    assert!(!list.text.contains("secret plot"));
    let photo = sqlx::query("SELECT id FROM photos")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&photo, "id");
    assert_eq!(
        b.get(&format!("/photos/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    // b cannot record against a's crop.
    let r = b
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

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

async fn non_admin_cannot_read_logs_and_the_attempt_is_logged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut op = app.user("op@example.com", Role::Operator).await;
    let r = op.get("/admin/logs").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.log_count("auth", "access_denied").await, 1);
    let mut admin = app.user("admin@example.com", Role::Admin).await;
    let r = admin.get("/admin/logs?category=auth").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("access_denied"));
    assert_eq!(app.log_count("operation", "logs.read").await, 1);
    let bad = admin.get("/admin/logs?category=nope").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn admin_changes_a_role_and_it_is_auth_logged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut admin = app.user("admin@example.com", Role::Admin).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    let row = sqlx::query("SELECT id FROM users WHERE email = 'farmer@example.com'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&row, "id");
    assert_eq!(user.get("/admin").await.status, StatusCode::FORBIDDEN);
    let r = admin
        .post_form(&format!("/admin/users/{id}/role"), &[("role", "operator")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(user.get("/admin").await.status, StatusCode::OK);
    assert_eq!(app.log_count("auth", "role_change").await, 1);
    let r = admin
        .post_form(&format!("/admin/users/{id}/role"), &[("role", "king")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = user
        .post_form(&format!("/admin/users/{id}/role"), &[("role", "admin")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

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
        "fieldbook_process_cpu_seconds",
        "fieldbook_process_resident_memory_bytes",
    ] {
        assert!(m.text.contains(name), "{name} missing in\n{}", m.text);
    }
    assert!(m.text.contains("route=\"/status\""), "{}", m.text);
    assert_eq!(c.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
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

/// The farmer-facing pages with a Japanese marker and an English one each.
const FARMER_PAGES: &[(&str, &str, &str)] = &[
    ("/records", "作業記録", "New record"),
    ("/fields", "圃場名", "Field name"),
    ("/help", "よくある質問", "Frequently asked questions"),
    ("/support", "お問い合わせを送る", "Send an inquiry"),
    ("/support/inquiries", "お問い合わせ履歴", "Your inquiries"),
    ("/feedback?kind=bug", "不具合の報告", "Report a bug"),
    (
        "/feedback?kind=feature",
        "機能のご要望",
        "Request a feature",
    ),
    ("/status", "稼働状況", "Service status"),
];

fn assert_japanese(path: &str, text: &str, marker: &str) {
    assert!(text.contains("<html lang=\"ja\">"), "{path}: {text}");
    assert!(
        text.contains(marker) && text.contains("本文へ移動") && text.contains("ヘルプ"),
        "{path} is not Japanese: {text}"
    );
    assert!(!text.contains("Skip to content"), "{path}: {text}");
}

fn assert_english(path: &str, text: &str, marker: &str) {
    assert!(text.contains("<html lang=\"en\">"), "{path}: {text}");
    assert!(
        text.contains(marker) && text.contains("Skip to content"),
        "{path} is not English: {text}"
    );
    assert!(!text.contains("本文へ移動"), "{path}: {text}");
}

async fn farmer_pages_speak_japanese_by_default_and_english_on_request(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("taro@example.com", Role::User).await;
    assert_eq!(
        c.post_form("/fields", &[("name", "North paddy")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let field = sqlx::query("SELECT id FROM fields")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let field_id = sqlx::Row::get::<i64, _>(&field, "id").to_string();
    let r = c
        .post_form("/crops", &[("field_id", &field_id), ("name", "Rice")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let crop = sqlx::query("SELECT id FROM crops")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let crop_id = sqlx::Row::get::<i64, _>(&crop, "id").to_string();
    let r = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop_id),
                ("day", "2026-11-28"),
                ("kind", "harvest"),
                ("notes", "good year"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);

    // No Accept-Language: Japanese. Accept-Language ranking ja first: Japanese.
    for header in [
        None,
        Some("ja-JP,ja;q=0.9,en;q=0.8"),
        Some("fr, ja;q=0.7, en;q=0.3"),
    ] {
        c.accept_language = header.map(str::to_string);
        for (path, ja, _) in FARMER_PAGES {
            let r = c.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            assert_japanese(path, &r.text, ja);
        }
        let records = c.get("/records").await;
        assert!(
            records.text.contains("2026年11月28日") && records.text.contains("収穫"),
            "{}",
            records.text
        );
        assert!(records.text.contains("ログアウト"));
    }
    // Accept-Language ranking en first: English.
    c.accept_language = Some("en-US,en;q=0.9,ja;q=0.8".to_string());
    for (path, _, en) in FARMER_PAGES {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_english(path, &r.text, en);
    }
    let records = c.get("/records").await;
    assert!(
        records.text.contains(">2026-11-28<") && records.text.contains("Harvest"),
        "{}",
        records.text
    );

    // The cookie wins over Accept-Language.
    c.accept_language = Some("ja".to_string());
    c.cookies.insert("lang".into(), "en".into());
    for (path, _, en) in FARMER_PAGES {
        assert_english(path, &c.get(path).await.text, en);
    }
    c.cookies.insert("lang".into(), "ja".into());
    c.accept_language = Some("en".to_string());
    for (path, ja, _) in FARMER_PAGES {
        assert_japanese(path, &c.get(path).await.text, ja);
    }

    // Form errors are explained in the page's language.
    let bad = c.post_form("/fields", &[("name", "  ")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("名前を入力してください"), "{}", bad.text);
    assert!(
        bad.text.contains("入力内容を確認してください"),
        "{}",
        bad.text
    );
    c.cookies.remove("lang");
    let bad = c.post_form("/fields", &[("name", "  ")]).await;
    assert!(bad.text.contains("name: is required"), "{}", bad.text);

    // Signed-out pages too.
    let mut anon = app.client();
    anon.accept_language = None;
    for (path, ja) in [
        ("/", "農場の作業記録"),
        ("/login", "ログイン"),
        ("/signup", "アカウントを作成"),
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_japanese(path, &r.text, ja);
    }
    anon.accept_language = Some("en".to_string());
    for (path, en) in [
        ("/", "Crop records for your farm"),
        ("/login", "Sign in"),
        ("/signup", "Create an account"),
    ] {
        assert_english(path, &anon.get(path).await.text, en);
    }
}

async fn language_switch_sets_the_cookie_and_never_leaves_the_site(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("jiro@example.com", Role::User).await;
    c.accept_language = None;
    c.cookies.remove("lang");

    // Every page offers the switch to the other language, back to itself.
    let help = c.get("/help?q=photo").await;
    assert!(
        help.text
            .contains("href=\"/lang?set=en&amp;next=%2Fhelp%3Fq%3Dphoto\""),
        "{}",
        help.text
    );
    assert!(help.text.contains("id=\"lang-switch\"") && help.text.contains("English"));
    assert_eq!(help.headers["vary"], "Accept-Language, Cookie");

    let r = c.get("/lang?set=en&next=%2Fhelp%3Fq%3Dphoto").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/help?q=photo");
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("lang="))
        .expect("lang cookie");
    assert!(
        cookie.starts_with("lang=en;")
            && cookie.contains("Path=/")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let help = c.get("/help?q=photo").await;
    assert!(help.text.contains("<html lang=\"en\">"));
    assert!(
        help.text
            .contains("href=\"/lang?set=ja&amp;next=%2Fhelp%3Fq%3Dphoto\"")
    );

    // Off-site or malformed targets go to the home page instead.
    for next in [
        "%2F%2Fevil.example%2Fx",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "evil.example",
        "%2F%0D%0ASet-Cookie%3A%20x%3Dy",
        "",
    ] {
        let r = c.get(&format!("/lang?set=ja&next={next}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.location(), "/", "{next}");
    }
    let r = c.get("/lang?set=ja").await;
    assert_eq!(r.location(), "/");
    assert_eq!(c.cookies.get("lang").map(String::as_str), Some("ja"));
    assert!(c.get("/records").await.text.contains("<html lang=\"ja\">"));

    // An unknown language is refused and changes nothing.
    let r = c.get("/lang?set=fr&next=%2Frecords").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(c.cookies.get("lang").map(String::as_str), Some("ja"));
}
