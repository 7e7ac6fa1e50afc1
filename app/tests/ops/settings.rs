//! Settings export and import: round trips, named errors, all or nothing.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use serde_json::json;

use crate::fixtures::content;
use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    settings_export_and_import_round_trip,
    settings_import_names_bad_fields_and_applies_all_or_nothing,
);

async fn settings_export_and_import_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut user = app.user("farmer@example.com", Role::User).await;
    // Before anything is published: no content, maintenance off.
    let fresh = app.ops("GET", "/ops/v1/settings", None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let fresh = fresh.json();
    assert_eq!(
        fresh,
        json!({
            "format": 1,
            "app": "fieldbook",
            "version": env!("CARGO_PKG_VERSION"),
            "settings": {
                "supportContent": null,
                "maintenance": {"enabled": false, "message": null}
            }
        })
    );

    let r = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(3, "Early morning.")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .ops(
            "PUT",
            "/ops/v1/maintenance",
            Some(json!({"enabled": true, "message": "Moving to a new server."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let exported = app.ops("GET", "/ops/v1/settings", None).await;
    assert_eq!(exported.status, StatusCode::OK);
    // No secrets: neither the ops token nor anything about passwords or mail.
    for secret in [
        tend_testkit::fieldbook::OPS_TOKEN,
        "password",
        "argon2",
        "smtp",
    ] {
        assert!(
            !exported.text.to_lowercase().contains(secret),
            "{secret}: {}",
            exported.text
        );
    }
    let exported = exported.json();
    assert_eq!(
        exported["settings"]["supportContent"],
        content(3, "Early morning.")
    );
    assert_eq!(
        exported["settings"]["maintenance"],
        json!({"enabled": true, "message": "Moving to a new server."})
    );

    // Change everything after the export.
    app.ops(
        "PUT",
        "/ops/v1/support-content",
        Some(content(4, "Evening.")),
    )
    .await;
    app.ops(
        "PUT",
        "/ops/v1/maintenance",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(user.get("/records").await.status, StatusCode::OK);

    // Re-apply the export: both sections change back.
    let r = app
        .ops("PUT", "/ops/v1/settings", Some(exported.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"changed": ["supportContent", "maintenance"]})
    );
    assert_eq!(
        app.ops("GET", "/ops/v1/settings", None).await.json(),
        exported
    );
    // The restore rolls the revision back on purpose; the help page and the
    // maintenance page follow at once (no restart).
    assert_eq!(
        app.ops("GET", "/ops/v1/support-content", None).await.json()["revision"],
        3
    );
    let page = user.get("/records").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text.contains("Moving to a new server."));
    assert_eq!(app.log_count("operation", "settings.import").await, 1);

    // Idempotent: the same document again changes nothing.
    let again = app
        .ops("PUT", "/ops/v1/settings", Some(exported.clone()))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json(), json!({"changed": []}));
    assert_eq!(
        app.ops("GET", "/ops/v1/settings", None).await.json(),
        exported
    );
    assert_eq!(app.log_count("operation", "settings.import").await, 1);

    // A later publish needs a higher revision than the restored one, as usual.
    let r = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(content(4, "Evening.")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Restore into a brand-new database (the disaster-recovery case).
    let other = TestApp::new(backend).await;
    let r = other
        .ops("PUT", "/ops/v1/settings", Some(exported.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        other.ops("GET", "/ops/v1/settings", None).await.json(),
        exported
    );
    assert!(other.state.maintenance_message().is_some());

    // The empty document from the start restores the built-in defaults.
    let r = app
        .ops("PUT", "/ops/v1/settings", Some(fresh.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.ops("GET", "/ops/v1/settings", None).await.json(), fresh);
    assert_eq!(
        app.ops("GET", "/ops/v1/support-content", None).await.json()["revision"],
        0
    );
    assert_eq!(user.get("/records").await.status, StatusCode::OK);

    // The token is checked like everywhere else in /ops/v1.
    let r = app
        .ops_with_token(
            "PUT",
            "/ops/v1/settings",
            Some(exported),
            Some("wrong-token-0123456789"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.ops("GET", "/ops/v1/settings", None).await.json(), fresh);
}

fn settings_doc(maintenance: serde_json::Value) -> serde_json::Value {
    json!({
        "format": 1,
        "app": "fieldbook",
        "version": "0.1.0",
        "settings": {
            "supportContent": content(7, "At dawn."),
            "maintenance": maintenance
        }
    })
}

async fn settings_import_names_bad_fields_and_applies_all_or_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.ops(
        "PUT",
        "/ops/v1/support-content",
        Some(content(2, "Early morning.")),
    )
    .await;
    let before = app.ops("GET", "/ops/v1/settings", None).await.json();
    let good = settings_doc(json!({"enabled": true, "message": "Back soon."}));
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut d = good.clone();
        f(&mut d);
        d
    };
    for (body, field) in [
        (edit(&|d| d["format"] = json!(2)), "format"),
        (
            edit(&|d| {
                d.as_object_mut().unwrap().remove("format");
            }),
            "format",
        ),
        (edit(&|d| d["app"] = json!("other-app")), "app"),
        (edit(&|d| d["settings"] = json!([])), "settings"),
        (
            edit(&|d| {
                d["settings"].as_object_mut().unwrap().remove("maintenance");
            }),
            "settings.maintenance",
        ),
        (
            edit(&|d| d["settings"]["maintenance"]["enabled"] = json!("yes")),
            "settings.maintenance.enabled",
        ),
        (
            edit(&|d| d["settings"]["maintenance"]["message"] = json!("")),
            "settings.maintenance.message",
        ),
        (
            edit(&|d| d["settings"]["supportContent"]["nps"]["intervalDays"] = json!(0)),
            "settings.supportContent.nps.intervalDays",
        ),
        (
            edit(&|d| d["settings"]["supportContent"]["revision"] = json!(0)),
            "settings.supportContent.revision",
        ),
        (
            edit(&|d| d["settings"]["supportContent"]["faq"][0]["answer"] = json!(7)),
            "settings.supportContent.faq[0].answer",
        ),
    ] {
        let r = app.ops("PUT", "/ops/v1/settings", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text
        );
        let e = r.json();
        assert_eq!(e["code"], "bad_input", "{field}: {}", r.text);
        assert_eq!(e["field"], field, "{}", r.text);
    }
    // An unknown format says so, whatever its contents look like.
    let r = app
        .ops(
            "PUT",
            "/ops/v1/settings",
            Some(json!({"format": 2, "app": "fieldbook", "everything": "else"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "format");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("unsupported settings format 2"),
        "{}",
        r.text
    );
    let r = app
        .ops_with_token(
            "PUT",
            "/ops/v1/settings",
            None,
            Some(tend_testkit::fieldbook::OPS_TOKEN),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "body");
    // Nothing of the refused documents was applied.
    assert_eq!(
        app.ops("GET", "/ops/v1/settings", None).await.json(),
        before
    );

    // All or nothing: with the settings table unreachable the maintenance
    // write fails after the support content was written in the same
    // transaction, and the support content stays as it was.
    sqlx::query("ALTER TABLE settings RENAME TO settings_away")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let r = app.ops("PUT", "/ops/v1/settings", Some(good.clone())).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    sqlx::query("ALTER TABLE settings_away RENAME TO settings")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        app.ops("GET", "/ops/v1/settings", None).await.json(),
        before
    );
    assert!(app.state.maintenance_message().is_none());

    let r = app.ops("PUT", "/ops/v1/settings", Some(good.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = app.ops("GET", "/ops/v1/settings", None).await.json();
    assert_eq!(now["settings"], good["settings"]);
    assert_eq!(now["version"], env!("CARGO_PKG_VERSION"));
}
