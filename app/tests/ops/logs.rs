//! Log export and pruning, and the hash chain that shows an edited or removed entry.

use axum::http::StatusCode;
use serde_json::json;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    log_export_streams_one_category_older_than_a_time,
    prune_deletes_old_entries_and_the_chain_stays_verifiable,
    verify_logs_detects_an_edited_or_removed_entry,
);

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
