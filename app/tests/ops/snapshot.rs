//! Database snapshots (`GET`/`PUT /snapshot`): consistency, restore, rollback and migrations.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use serde_json::json;

use crate::fixtures::content;
use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    snapshot_is_a_consistent_sqlite_database_or_refused_on_postgres,
    snapshot_restore_puts_the_data_back_and_keeps_maintenance_on,
);

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

/// PUT /ops/v1/snapshot with the body sent in 64 KiB chunks, as a client streams it.
async fn put_snapshot(app: &TestApp, bytes: Vec<u8>) -> tend_testkit::fieldbook::Reply {
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
            format!("Bearer {}", tend_testkit::fieldbook::OPS_TOKEN),
        )
        .header(header::CONTENT_TYPE, "application/vnd.sqlite3")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    tend_testkit::fieldbook::Reply::from(app.router.clone().oneshot(req).await.unwrap()).await
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
    let key = app.farm_with_photo("farmer@example.com", 1).await;
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
    app.farm_with_photo("farmer@example.com", 2).await;
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
    app.farm_with_photo("farmer@example.com", 3).await;
    let snap = app.ops("GET", "/ops/v1/snapshot", None).await.bytes;
    // Diverge: one more user and farm, so a partial copy would show.
    app.farm_with_photo("second@example.com", 4).await;
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
