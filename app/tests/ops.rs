//! The ops API (`/ops/v1`): every endpoint with a good token, a bad token,
//! and bad input; plus the log hash chain across tampering and pruning.

mod common;

use axum::http::StatusCode;
use common::{Backend, TestApp, png};
use fieldbook::auth::Role;
use serde_json::json;

on_both_backends!(
    every_ops_endpoint_rejects_missing_and_wrong_tokens,
    support_content_is_published_by_revision_and_shown_in_help,
    incidents_reject_bad_input,
    inquiry_stats_require_a_valid_sla,
    log_export_streams_one_category_older_than_a_time,
    prune_deletes_old_entries_and_the_chain_stays_verifiable,
    verify_logs_detects_an_edited_or_removed_entry,
    maintenance_mode_blocks_pages_but_not_ops_or_status,
    verify_reports_row_counts_and_missing_photo_objects,
    snapshot_is_a_consistent_sqlite_database_or_refused_on_postgres,
    settings_export_and_import_round_trip,
    settings_import_names_bad_fields_and_applies_all_or_nothing,
    snapshot_restore_puts_the_data_back_and_keeps_maintenance_on,
    periodic_self_check_shows_missing_photos_in_metrics,
);

#[test]
fn openapi_documents_every_ops_endpoint() {
    let text = include_str!("../openapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("openapi.yaml parses");
    assert_eq!(doc["openapi"].as_str().unwrap_or(""), "3.0.3");
    let paths = doc["paths"].as_mapping().expect("paths");
    for (method, path) in ENDPOINTS {
        let route = path
            .trim_start_matches("/ops/v1")
            .split('?')
            .next()
            .unwrap()
            .replace("/1/", "/{id}/");
        let item = paths
            .get(serde_yaml::Value::String(route.clone()))
            .unwrap_or_else(|| panic!("{route} not documented"));
        let op = &item[method.to_lowercase().as_str()];
        assert!(op.is_mapping(), "{method} {route} not documented");
        assert!(
            op["responses"]["401"].is_mapping(),
            "{method} {route} lacks the 401 response"
        );
    }
    assert_eq!(paths.len(), 10, "documented paths match the router");
    // The documented settings example is a document PUT /settings accepts.
    let example = serde_json::to_vec(&doc["components"]["schemas"]["SettingsDocument"]["example"])
        .expect("example as JSON");
    fieldbook::settings::parse(&example).expect("the settings example is valid");
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/ops/v1/support-content"),
    ("PUT", "/ops/v1/support-content"),
    ("GET", "/ops/v1/incidents"),
    ("POST", "/ops/v1/incidents"),
    ("POST", "/ops/v1/incidents/1/updates"),
    ("GET", "/ops/v1/inquiries/stats?sla_hours=24"),
    (
        "GET",
        "/ops/v1/logs/export?category=access&before=2030-01-01T00:00:00Z",
    ),
    ("POST", "/ops/v1/logs/prune"),
    ("GET", "/ops/v1/snapshot"),
    ("PUT", "/ops/v1/snapshot"),
    ("GET", "/ops/v1/maintenance"),
    ("PUT", "/ops/v1/maintenance"),
    ("GET", "/ops/v1/verify"),
    ("GET", "/ops/v1/settings"),
    ("PUT", "/ops/v1/settings"),
];

async fn every_ops_endpoint_rejects_missing_and_wrong_tokens(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (method, path) in ENDPOINTS {
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let r = app
                .ops_with_token(method, path, Some(json!({})), token)
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(r.json()["code"], "bad_token");
            assert!(r.headers.contains_key("www-authenticate"));
        }
    }
    assert_eq!(
        app.log_count("auth", "ops_token_rejected").await,
        ENDPOINTS.len() * 3
    );
    // The token never lands in a log.
    assert_eq!(app.log_count("auth", "wrong-token").await, 0);
    assert_eq!(app.log_count("access", "wrong-token").await, 0);
    // An app with no token configured refuses everything.
    let no_token = TestApp::with_config(backend, |c| c.ops_token_sha256 = None).await;
    let r = no_token.ops("GET", "/ops/v1/verify", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn content(revision: i64, answer: &str) -> serde_json::Value {
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
            Some(common::OPS_TOKEN),
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

async fn log_export_streams_one_category_older_than_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    for _ in 0..5 {
        c.get("/status").await;
    }
    for (path, field) in [
        (
            "/ops/v1/logs/export?category=debug&before=2030-01-01T00:00:00Z",
            "category",
        ),
        (
            "/ops/v1/logs/export?category=access&before=tomorrow",
            "before",
        ),
        ("/ops/v1/logs/export?category=access", "before"),
    ] {
        let r = app.ops("GET", path, None).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(r.json()["field"], field);
    }
    let r = app
        .ops(
            "GET",
            "/ops/v1/logs/export?category=access&before=2100-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let lines: Vec<serde_json::Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 5, "{}", r.text);
    assert!(
        lines
            .iter()
            .all(|l| l["category"] == "access" && l["hash"].as_str().unwrap().len() == 64)
    );
    let none = app
        .ops(
            "GET",
            "/ops/v1/logs/export?category=access&before=2000-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(none.text, "");
}

async fn prune_deletes_old_entries_and_the_chain_stays_verifiable(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    for _ in 0..4 {
        c.get("/status").await;
    }
    // Make the first entries old.
    sqlx::query("UPDATE logs SET ts = 1000 WHERE category = 'access'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // Rewriting ts breaks the hashes, so rebuild the chain as if written then.
    rehash(&app).await;
    for _ in 0..2 {
        c.get("/status").await;
    }
    for (body, field) in [
        (
            json!({"category": "nope", "before": "2020-01-01T00:00:00Z"}),
            "category",
        ),
        (json!({"category": "access", "before": "later"}), "before"),
        (json!({"category": "access"}), "before"),
    ] {
        let r = app.ops("POST", "/ops/v1/logs/prune", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text
        );
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let r = app
        .ops(
            "POST",
            "/ops/v1/logs/prune",
            Some(json!({"category": "access", "before": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json()["deleted"].as_u64().unwrap() >= 4, "{}", r.text);
    let report = fieldbook::logs::verify_chains(&app.state.db).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    // New entries keep chaining after the cut.
    c.get("/status").await;
    let report = fieldbook::logs::verify_chains(&app.state.db).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let again = app
        .ops(
            "POST",
            "/ops/v1/logs/prune",
            Some(json!({"category": "access", "before": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(again.json()["deleted"], 0);
    let verify = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(verify["logChains"]["ok"], true, "{verify}");
    assert_eq!(verify["tables"]["log_checkpoints"], 1);
}

/// Recomputes every hash in id order (test helper for back-dating entries).
async fn rehash(app: &TestApp) {
    use sqlx::Row;
    for category in fieldbook::logs::CATEGORIES {
        let rows = sqlx::query("SELECT id, ts, data FROM logs WHERE category = $1 ORDER BY id")
            .bind(*category)
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
        let mut prev = "0".repeat(64);
        for r in rows {
            let hash = fieldbook::logs::entry_hash(
                &prev,
                category,
                r.get("ts"),
                &r.get::<String, _>("data"),
            );
            sqlx::query("UPDATE logs SET prev_hash = $1, hash = $2 WHERE id = $3")
                .bind(prev.clone())
                .bind(hash.clone())
                .bind(r.get::<i64, _>("id"))
                .execute(&app.state.db.pool)
                .await
                .unwrap();
            prev = hash;
        }
    }
    // The in-memory chain heads are stale after the rewrite.
    app.state.logs.forget_heads().await;
}

async fn verify_logs_detects_an_edited_or_removed_entry(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.client();
    for _ in 0..5 {
        c.get("/status").await;
    }
    let cli = env!("CARGO_BIN_EXE_fieldbook");
    let ok = std::process::Command::new(cli)
        .args(["verify-logs", "--database-url", &app.database_url])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    sqlx::query("UPDATE logs SET data = REPLACE(data, '/status', '/elsewhere') WHERE id = (SELECT MIN(id) FROM logs WHERE category = 'access')")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let report = fieldbook::logs::verify_chains(&app.state.db).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("edited"));
    let broken = std::process::Command::new(cli)
        .args(["verify-logs", "--database-url", &app.database_url])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("BROKEN"));
    // Removing an entry from the middle breaks the next link.
    let fresh = TestApp::new(backend).await;
    let mut c = fresh.client();
    for _ in 0..5 {
        c.get("/status").await;
    }
    sqlx::query(
        "DELETE FROM logs WHERE id = (SELECT MIN(id) + 2 FROM logs WHERE category = 'access')",
    )
    .execute(&fresh.state.db.pool)
    .await
    .unwrap();
    let report = fieldbook::logs::verify_chains(&fresh.state.db)
        .await
        .unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("link")),
        "{:?}",
        report.problems
    );
}

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

async fn snapshot_is_a_consistent_sqlite_database_or_refused_on_postgres(backend: Backend) {
    let app = TestApp::new(backend).await;
    drop(app.user("farmer@example.com", Role::User).await);
    let r = app.ops("GET", "/ops/v1/snapshot", None).await;
    match backend {
        Backend::Postgres => {
            assert_eq!(r.status, StatusCode::CONFLICT);
            assert!(r.text.contains("pg_dump"));
        }
        Backend::Sqlite => {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert!(r.bytes.starts_with(b"SQLite format 3\0"));
            let copy = app.dir.path().join("copy.db");
            std::fs::write(&copy, &r.bytes).unwrap();
            let db = fieldbook::Db::connect(&copy.to_string_lossy())
                .await
                .unwrap();
            let n: i64 = sqlx::Row::get(
                &sqlx::query("SELECT COUNT(*) AS n FROM users")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap(),
                "n",
            );
            assert_eq!(n, 1);
            // The response names the rows of this very snapshot.
            let counts: serde_json::Value =
                serde_json::from_str(r.headers["x-fieldbook-row-counts"].to_str().unwrap())
                    .unwrap();
            assert_eq!(counts["users"], 1, "{counts}");
            assert_eq!(counts["records"], 0, "{counts}");
            let report = fieldbook::logs::verify_chains(&db).await.unwrap();
            assert!(report.ok(), "{:?}", report.problems);
        }
    }
}

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
    for secret in [common::OPS_TOKEN, "password", "argon2", "smtp"] {
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
        .ops_with_token("PUT", "/ops/v1/settings", None, Some(common::OPS_TOKEN))
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

/// A user with one field, crop and record with a photo; returns the photo's object key.
async fn farm_with_photo(app: &TestApp, email: &str, seed: u8) -> String {
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

/// PUT /ops/v1/snapshot with the body sent in 64 KiB chunks, as a client streams it.
async fn put_snapshot(app: &TestApp, bytes: Vec<u8>) -> common::Reply {
    use axum::body::{Body, Bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = Request::builder()
        .method("PUT")
        .uri("/ops/v1/snapshot")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", common::OPS_TOKEN),
        )
        .header(header::CONTENT_TYPE, "application/vnd.sqlite3")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    common::Reply::from(app.router.clone().oneshot(req).await.unwrap()).await
}

/// Row counts of every table as `GET /verify` reports them.
async fn table_counts(app: &TestApp) -> serde_json::Value {
    app.ops("GET", "/ops/v1/verify", None).await.json()["tables"].clone()
}

async fn maintenance_on(app: &TestApp, message: &str) {
    let r = app
        .ops(
            "PUT",
            "/ops/v1/maintenance",
            Some(json!({"enabled": true, "message": message})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Leftovers of a restore's temporary copy beside the database.
fn restore_leftovers(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".fieldbook-restore"))
        .collect()
}

async fn snapshot_restore_puts_the_data_back_and_keeps_maintenance_on(backend: Backend) {
    let app = TestApp::new(backend).await;
    if let Backend::Postgres = backend {
        // Refused with or without maintenance, before the body is read.
        for with_maintenance in [false, true] {
            if with_maintenance {
                maintenance_on(&app, "Restoring.").await;
            }
            let r = put_snapshot(&app, b"SQLite format 3\0".to_vec()).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
            assert!(r.text.contains("pg_restore"), "{}", r.text);
        }
        return;
    }
    let key = farm_with_photo(&app, "farmer@example.com", 1).await;
    app.ops(
        "PUT",
        "/ops/v1/support-content",
        Some(content(1, "Early morning.")),
    )
    .await;
    let snap = app.ops("GET", "/ops/v1/snapshot", None).await;
    assert_eq!(snap.status, StatusCode::OK, "{}", snap.text);
    let header_counts: serde_json::Value =
        serde_json::from_str(snap.headers["x-fieldbook-row-counts"].to_str().unwrap()).unwrap();
    assert_eq!(header_counts["records"], 1);

    // Lose and change data after the snapshot.
    sqlx::query("DELETE FROM records")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    drop(app.user("intruder@example.com", Role::User).await);
    app.ops(
        "PUT",
        "/ops/v1/support-content",
        Some(content(2, "Evening.")),
    )
    .await;
    let changed = table_counts(&app).await;
    assert_eq!(changed["records"], 0);
    assert_eq!(changed["users"], 2);

    // Without maintenance mode: refused, nothing changed.
    let r = put_snapshot(&app, snap.bytes.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("PUT /ops/v1/maintenance"), "{}", r.text);
    assert_eq!(table_counts(&app).await["users"], 2);

    maintenance_on(&app, "Restoring last night's backup.").await;
    // Garbage, an empty body and a cut-off upload: 422 naming the problem, data untouched.
    let half = snap.bytes[..snap.bytes.len() / 2].to_vec();
    let mut scrambled = snap.bytes.clone();
    for b in scrambled.iter_mut().skip(8192).step_by(7) {
        *b ^= 0x5a;
    }
    for (body, needle) in [
        (
            b"certainly not a database".to_vec(),
            "not a SQLite database",
        ),
        (Vec::new(), "not a SQLite database"),
        (half, "truncated"),
        (scrambled, "damaged SQLite database"),
    ] {
        let r = put_snapshot(&app, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{needle}: {}",
            r.text
        );
        assert_eq!(r.json()["field"], "body", "{}", r.text);
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
        assert_eq!(table_counts(&app).await["users"], 2, "{needle}");
    }
    assert_eq!(restore_leftovers(&app), Vec::<String>::new());

    let r = put_snapshot(&app, snap.bytes.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    assert_eq!(body["bytes"], snap.bytes.len());
    // Directly comparable with the snapshot's own header.
    assert_eq!(body["tables"], header_counts);
    assert_eq!(restore_leftovers(&app), Vec::<String>::new());

    let now = table_counts(&app).await;
    assert_eq!(now["records"], 1);
    assert_eq!(now["users"], 1);
    assert_eq!(now["photos"], 1);
    assert_eq!(
        app.ops("GET", "/ops/v1/support-content", None).await.json()["revision"],
        1
    );
    // Still in maintenance, with the operator's message, in the cache and the database.
    assert_eq!(
        app.state.maintenance_message().as_deref(),
        Some("Restoring last night's backup.")
    );
    let restarted = fieldbook::AppState::new(app.state.db.clone(), (*app.state.config).clone())
        .await
        .unwrap();
    assert_eq!(
        restarted.maintenance_message().as_deref(),
        Some("Restoring last night's backup.")
    );
    // Audited, and the log chains continue from the restored rows.
    assert_eq!(app.log_count("operation", "\"snapshot.restore\"").await, 1);
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["photos"]["missing"], json!([]), "{key}: {v}");

    app.ops(
        "PUT",
        "/ops/v1/maintenance",
        Some(json!({"enabled": false})),
    )
    .await;
    let mut farmer = app.client();
    farmer.get("/login").await;
    let r = farmer
        .post_form(
            "/login",
            &[
                ("email", "farmer@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let records = farmer.get("/records").await;
    assert_eq!(records.status, StatusCode::OK);
    assert!(records.text.contains("Tomato"), "{}", records.text);
}

/// Writes a snapshot to a file, lets `edit` change it through its own
/// connection, and returns the edited file's bytes.
async fn edited_snapshot(app: &TestApp, snapshot: &[u8], edit: &[&str]) -> Vec<u8> {
    use sqlx::Connection;
    let path = app.dir.path().join("edited.db");
    std::fs::write(&path, snapshot).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(false);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    for sql in edit {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restore_judges_migrations_and_foreign_keys_and_migrates_older_snapshots() {
    let app = TestApp::new(Backend::Sqlite).await;
    farm_with_photo(&app, "farmer@example.com", 2).await;
    let snap = app.ops("GET", "/ops/v1/snapshot", None).await.bytes;
    sqlx::query("DELETE FROM records")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    maintenance_on(&app, "Restoring.").await;
    for (edit, needle) in [
        (
            vec![
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, x'00', 0)",
            ],
            "migration 99",
        ),
        (
            vec!["UPDATE _sqlx_migrations SET checksum = x'0102' WHERE version = 2"],
            "migration 2",
        ),
        (vec!["DROP TABLE _sqlx_migrations"], "_sqlx_migrations"),
        (vec!["DELETE FROM fields"], "foreign key"),
    ] {
        let bytes = edited_snapshot(&app, &snap, &edit).await;
        let r = put_snapshot(&app, bytes).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{needle}: {}",
            r.text
        );
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
        assert_eq!(table_counts(&app).await["records"], 0, "{needle}");
    }
    assert!(app.log_count("operation", "snapshot.restore_refused").await >= 4);
    // A snapshot from before migration 2 is migrated forward, then restored.
    let older = edited_snapshot(
        &app,
        &snap,
        &[
            "DELETE FROM _sqlx_migrations WHERE version = 2",
            "ALTER TABLE inquiries DROP COLUMN screenshot_type",
        ],
    )
    .await;
    let r = put_snapshot(&app, older).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["tables"]["records"], 1);
    assert_eq!(table_counts(&app).await["records"], 1);
    assert_eq!(restore_leftovers(&app), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restore_rolls_everything_back_when_the_copy_fails_midway() {
    let app = TestApp::new(Backend::Sqlite).await;
    farm_with_photo(&app, "farmer@example.com", 3).await;
    let snap = app.ops("GET", "/ops/v1/snapshot", None).await.bytes;
    // Diverge: one more user and farm, so a partial copy would show.
    farm_with_photo(&app, "second@example.com", 4).await;
    maintenance_on(&app, "Restoring.").await;
    let before = table_counts(&app).await;
    // The live database refuses records half-way through the copy (users,
    // fields and crops are already replaced by then), as a full disk would.
    sqlx::query(
        "CREATE TRIGGER refuse_records BEFORE INSERT ON records \
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END",
    )
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let r = put_snapshot(&app, snap.clone()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    let after = table_counts(&app).await;
    // Everything as before; only the logs grew (this request's entries).
    for table in [
        "users", "sessions", "fields", "crops", "records", "photos", "settings",
    ] {
        assert_eq!(after[table], before[table], "{table}");
    }
    assert_eq!(
        app.state.maintenance_message().as_deref(),
        Some("Restoring.")
    );
    assert_eq!(restore_leftovers(&app), Vec::<String>::new());
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["logChains"]["ok"], true, "{v}");
    sqlx::query("DROP TRIGGER refuse_records")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let r = put_snapshot(&app, snap).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(table_counts(&app).await["users"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restore_takes_a_body_of_several_megabytes() {
    let app = TestApp::new(Backend::Sqlite).await;
    drop(app.user("farmer@example.com", Role::User).await);
    let text = "x".repeat(2000);
    let mut tx = app.state.db.pool.begin().await.unwrap();
    for i in 0..4000_i64 {
        sqlx::query("INSERT INTO feedback (user_id, kind, title, body, created_at) VALUES (1, 'bug', $1, $2, 0)")
            .bind(format!("report {i}"))
            .bind(text.clone())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let snap = app.ops("GET", "/ops/v1/snapshot", None).await;
    assert!(snap.bytes.len() > 6 * 1024 * 1024, "{}", snap.bytes.len());
    sqlx::query("DELETE FROM feedback")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    maintenance_on(&app, "Restoring.").await;
    let r = put_snapshot(&app, snap.bytes.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["bytes"], snap.bytes.len());
    assert_eq!(r.json()["tables"]["feedback"], 4000);
    assert_eq!(table_counts(&app).await["feedback"], 4000);
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
