//! Sign-up, CSRF, login throttling, and who may read logs and change roles.

use axum::http::StatusCode;
use fieldbook::auth::Role;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    signup_signs_in_with_secure_cookie_attributes,
    post_without_csrf_token_is_rejected,
    login_is_throttled_after_repeated_failures,
    non_admin_cannot_read_logs_and_the_attempt_is_logged,
    admin_changes_a_role_and_it_is_auth_logged,
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
