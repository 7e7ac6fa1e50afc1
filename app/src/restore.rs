//! Restore of an uploaded SQLite snapshot (`PUT /ops/v1/snapshot`), the
//! reverse of `GET /ops/v1/snapshot`.
//!
//! Pipeline: `receive` streams the body into a temporary file next to the
//! database (bounded memory, any size) → `validate` judges that copy on its
//! own connection (header, `integrity_check`, migrations, schema, foreign
//! keys), migrating an older copy forward → `apply` replaces the rows of every
//! application table in one transaction on one connection of the live
//! database. Nothing live is touched before `apply`, and `apply` is all or
//! nothing. The temporary directory is removed when the restore ends, however
//! it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use tokio::io::AsyncWriteExt;

use crate::db::{Backend, TABLES};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, MAINTENANCE_SETTING};

/// Schema name the uploaded copy is attached under on the live connection.
const SOURCE: &str = "restore_src";

/// What a finished restore reports.
#[derive(Debug)]
pub struct Restored {
    /// Size of the uploaded file.
    pub bytes: u64,
    /// Rows each table received from the snapshot, for the tables (and in the
    /// format) of the snapshot's `X-Fieldbook-Row-Counts` header.
    pub tables: Map<String, Value>,
}

/// Refuses a restore fieldbook cannot take right now; nothing is read or changed.
pub fn precheck(state: &AppState) -> AppResult<()> {
    if state.db.backend != Backend::Sqlite {
        return Err(AppError::Conflict(
            "snapshot restores are for SQLite; restore PostgreSQL with pg_restore".into(),
        ));
    }
    if state.maintenance_message().is_none() {
        return Err(AppError::Conflict(
            "a restore replaces all data: turn maintenance mode on first with PUT /ops/v1/maintenance {\"enabled\": true}".into(),
        ));
    }
    Ok(())
}

pub async fn restore(state: &AppState, body: Body) -> AppResult<Restored> {
    precheck(state)?;
    let dir = tempfile::Builder::new()
        .prefix(".fieldbook-restore")
        .tempdir_in(scratch_dir(state).await?)?;
    let path = dir.path().join("snapshot.db");
    let bytes = receive(body, &path).await?;
    check_header(&path, bytes).await?;
    let live = live_schema(state).await?;
    validate(state, &path, &live).await?;
    let tables = state
        .logs
        .while_replaced(apply(state, &path, &live))
        .await?;
    // Mirrors of database content: the maintenance message (kept, but read
    // back so the cache is exactly what is stored); the log heads were
    // dropped by `while_replaced`; support content is read per request.
    let maintenance = state.db.setting(MAINTENANCE_SETTING).await?;
    *state.maintenance.write().unwrap_or_else(|p| p.into_inner()) = maintenance;
    drop(dir);
    Ok(Restored { bytes, tables })
}

/// The directory of the live database file, so the copy lands on the same
/// volume (databases can be larger than a tmpfs); the system temp dir for an
/// in-memory database.
async fn scratch_dir(state: &AppState) -> AppResult<PathBuf> {
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'"),
        )
        .await?;
    let file: String = row.map(|r| r.get("file")).unwrap_or_default();
    Ok(Path::new(&file)
        .parent()
        .filter(|p| !file.is_empty() && p.is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir))
}

/// Streams the request body into `path`, chunk by chunk; returns its size.
async fn receive(body: Body, path: &Path) -> AppResult<u64> {
    let mut file =
        tokio::io::BufWriter::with_capacity(1024 * 1024, tokio::fs::File::create(path).await?);
    let mut stream = body.into_data_stream();
    let mut bytes = 0_u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::field(
                "body",
                format!("upload interrupted after {bytes} bytes: {e}"),
            )
        })?;
        file.write_all(&chunk).await?;
        bytes += chunk.len() as u64;
    }
    file.flush().await?;
    file.get_ref().sync_all().await?;
    Ok(bytes)
}

fn refused(message: impl Into<String>) -> AppError {
    AppError::field("body", message)
}

/// The SQLite file header: magic, page size, and the size it declares
/// against the size received (a cut-off upload is named as such).
async fn check_header(path: &Path, bytes: u64) -> AppResult<()> {
    use tokio::io::AsyncReadExt;
    let mut header = [0_u8; 100];
    let mut file = tokio::fs::File::open(path).await?;
    let read = file.read(&mut header).await?;
    if read < 16 || &header[..16] != b"SQLite format 3\0" {
        return Err(refused(
            "not a SQLite database (the file does not start with \"SQLite format 3\")",
        ));
    }
    if bytes < 100 {
        return Err(refused(format!(
            "truncated SQLite database: {bytes} bytes, shorter than its 100-byte header"
        )));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536_u64,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(refused(format!(
            "damaged SQLite header: page size {page_size}"
        )));
    }
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if change_counter == valid_for && pages > 0 && bytes < pages * page_size {
        return Err(refused(format!(
            "truncated SQLite database: its header declares {} bytes, {bytes} arrived",
            pages * page_size
        )));
    }
    if !bytes.is_multiple_of(page_size) {
        return Err(refused(format!(
            "truncated SQLite database: {bytes} bytes is not a whole number of {page_size}-byte pages"
        )));
    }
    Ok(())
}

/// Application tables of the live database with their columns: every table
/// but SQLite's own and the migration ledger.
struct LiveSchema {
    /// In dependency order (the order of `TABLES`, then any others by name).
    tables: Vec<(String, Vec<String>)>,
    /// `_sqlx_migrations` of the live database: (version, checksum).
    migrations: Vec<(i64, Vec<u8>)>,
}

async fn live_schema(state: &AppState) -> AppResult<LiveSchema> {
    let db = &state.db;
    let rows = db
        .all(
            &db.pool,
            sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
            ),
        )
        .await?;
    let mut names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
    let rank = |n: &String| TABLES.iter().position(|t| t == n).unwrap_or(TABLES.len());
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let mut tables = Vec::new();
    for name in names {
        let cols = db
            .all(
                &db.pool,
                sqlx::query("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                    .bind(name.clone()),
            )
            .await?
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        tables.push((name, cols));
    }
    let migrations = db
        .all(
            &db.pool,
            sqlx::query("SELECT version, checksum FROM _sqlx_migrations ORDER BY version"),
        )
        .await?
        .iter()
        .map(|r| (r.get::<i64, _>("version"), r.get::<Vec<u8>, _>("checksum")))
        .collect();
    Ok(LiveSchema { tables, migrations })
}

/// Judges the uploaded copy on its own connection, and brings an older
/// copy's schema up to date with the app's migrator. Every refusal is a 422
/// naming what is wrong; the live database is not involved.
async fn validate(state: &AppState, path: &Path, live: &LiveSchema) -> AppResult<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .foreign_keys(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| refused(format!("cannot open the snapshot as SQLite: {e}")))?;
    let outcome = validate_on(state, &mut conn, live).await;
    // Closing checkpoints and removes any -wal file beside the copy.
    conn.close().await?;
    outcome
}

async fn validate_on(
    state: &AppState,
    conn: &mut SqliteConnection,
    live: &LiveSchema,
) -> AppResult<()> {
    let damaged = |e: sqlx::Error| refused(format!("damaged SQLite database: {e}"));
    // One file, no journal beside it, before it is attached to the live database.
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut *conn)
        .await
        .map_err(damaged)?;
    let problems: Vec<String> = sqlx::query("PRAGMA integrity_check(5)")
        .fetch_all(&mut *conn)
        .await
        .map_err(damaged)?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    if problems != ["ok"] {
        return Err(refused(format!(
            "damaged SQLite database: PRAGMA integrity_check reports {}",
            problems.join("; ")
        )));
    }
    let applied: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| {
                refused(format!(
                    "not a fieldbook database: no readable _sqlx_migrations table ({e})"
                ))
            })?
            .iter()
            .map(|r| (r.get("version"), r.get("checksum"), r.get("success")))
            .collect();
    if compare_migrations(&applied, &live.migrations)? {
        state
            .db
            .migrator()
            .run_direct(&mut *conn)
            .await
            .map_err(|e| refused(format!("migrating the snapshot forward failed: {e}")))?;
    }
    for (table, columns) in &live.tables {
        let present: Vec<String> =
            sqlx::query("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get("name"))
                .collect();
        if present.is_empty() {
            return Err(refused(format!("the snapshot has no table {table}")));
        }
        if let Some(col) = columns.iter().find(|c| !present.contains(c)) {
            return Err(refused(format!(
                "table {table} of the snapshot has no column {col}"
            )));
        }
    }
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_optional(&mut *conn)
        .await
        .map_err(damaged)?;
    if let Some(row) = broken {
        let table: String = row.get(0);
        let rowid: Option<i64> = row.get(1);
        let parent: String = row.get(2);
        return Err(refused(format!(
            "the snapshot breaks a foreign key: a row of {table} (rowid {}) refers to a missing {parent} row",
            rowid.map_or_else(|| "-".into(), |r| r.to_string())
        )));
    }
    Ok(())
}

/// Whether the snapshot's migrations are the app's, or a prefix of them
/// (`Ok(true)`: migrate the copy forward). Anything else names the version.
fn compare_migrations(
    snapshot: &[(i64, Vec<u8>, bool)],
    app: &[(i64, Vec<u8>)],
) -> AppResult<bool> {
    for (i, (version, checksum, success)) in snapshot.iter().enumerate() {
        let Some((expected, expected_sum)) = app.get(i) else {
            return Err(refused(format!(
                "the snapshot has migration {version}, which this fieldbook does not know (it comes from a newer version); upgrade fieldbook first"
            )));
        };
        if version != expected {
            let msg = if app.iter().any(|(v, _)| v == version) {
                format!("the snapshot lacks migration {expected} but has the later {version}")
            } else {
                format!("the snapshot has migration {version}, which this fieldbook does not know")
            };
            return Err(refused(msg));
        }
        if checksum != expected_sum {
            return Err(refused(format!(
                "migration {version} of the snapshot differs from this fieldbook's (checksum mismatch)"
            )));
        }
        if !success {
            return Err(refused(format!(
                "migration {version} did not complete in the snapshot"
            )));
        }
    }
    Ok(snapshot.len() < app.len())
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Replaces the rows of every application table with the copy's, in one
/// transaction on one connection; the maintenance setting keeps its live
/// value. The connection is taken out of the pool and closed afterwards, so
/// neither the attachment nor a failed transaction can outlive the restore.
async fn apply(state: &AppState, path: &Path, live: &LiveSchema) -> AppResult<Map<String, Value>> {
    let mut conn = state.db.pool.acquire().await?.detach();
    sqlx::query(&format!("ATTACH DATABASE $1 AS {SOURCE}"))
        .bind(path.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await?;
    let outcome = replace_rows(&mut conn, live).await;
    if outcome.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
    }
    let _ = sqlx::query(&format!("DETACH DATABASE {SOURCE}"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    outcome
}

async fn replace_rows(
    conn: &mut sqlx::AnyConnection,
    live: &LiveSchema,
) -> AppResult<Map<String, Value>> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    // Checked again under the write lock: maintenance may have been turned
    // off since the upload began. Its value is what the restore keeps.
    let maintenance: Option<String> =
        sqlx::query("SELECT value FROM main.settings WHERE name = $1")
            .bind(MAINTENANCE_SETTING)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.get("value"));
    let Some(maintenance) = maintenance else {
        return Err(AppError::Conflict(
            "maintenance mode was turned off during the upload; turn it on with PUT /ops/v1/maintenance and retry".into(),
        ));
    };
    sqlx::query("PRAGMA defer_foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    // Children first, so cascades find nothing left to do.
    for (table, _) in live.tables.iter().rev() {
        sqlx::query(&format!("DELETE FROM main.{}", quoted(table)))
            .execute(&mut *conn)
            .await?;
    }
    let mut copied: HashMap<&str, u64> = HashMap::new();
    for (table, columns) in &live.tables {
        let list = columns
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", ");
        let name = quoted(table);
        let n = sqlx::query(&format!(
            "INSERT INTO main.{name} ({list}) SELECT {list} FROM {SOURCE}.{name}"
        ))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        copied.insert(table, n);
    }
    restore_sequences(conn, live).await?;
    sqlx::query("DELETE FROM main.settings WHERE name = $1")
        .bind(MAINTENANCE_SETTING)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO main.settings (name, value) VALUES ($1, $2)")
        .bind(MAINTENANCE_SETTING)
        .bind(maintenance)
        .execute(&mut *conn)
        .await?;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(TABLES
        .iter()
        .map(|t| ((*t).to_string(), json!(copied.get(t).copied().unwrap_or(0))))
        .collect())
}

/// AUTOINCREMENT counters of the restored tables, when both sides keep them
/// (fieldbook's own schema uses plain rowids, so usually neither does).
async fn restore_sequences(conn: &mut sqlx::AnyConnection, live: &LiveSchema) -> AppResult<()> {
    let exists = |schema: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
        )
    };
    let in_main: i64 = sqlx::query(&exists("main"))
        .fetch_one(&mut *conn)
        .await?
        .get("n");
    if in_main == 0 {
        return Ok(());
    }
    let in_source: i64 = sqlx::query(&exists(SOURCE))
        .fetch_one(&mut *conn)
        .await?
        .get("n");
    for (table, _) in &live.tables {
        sqlx::query("DELETE FROM main.sqlite_sequence WHERE name = $1")
            .bind(table.clone())
            .execute(&mut *conn)
            .await?;
        if in_source > 0 {
            sqlx::query(&format!(
                "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM {SOURCE}.sqlite_sequence WHERE name = $1"
            ))
            .bind(table.clone())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Vec<(i64, Vec<u8>)> {
        vec![(1, vec![1]), (2, vec![2])]
    }

    #[test]
    fn snapshot_migrations_must_be_a_prefix_of_the_apps() {
        assert_eq!(
            compare_migrations(&[(1, vec![1], true), (2, vec![2], true)], &app()).ok(),
            Some(false)
        );
        assert_eq!(
            compare_migrations(&[(1, vec![1], true)], &app()).ok(),
            Some(true)
        );
        for (snapshot, needle) in [
            (
                vec![(1, vec![1], true), (2, vec![2], true), (3, vec![3], true)],
                "migration 3",
            ),
            (vec![(1, vec![9], true)], "migration 1"),
            (vec![(2, vec![2], true)], "lacks migration 1"),
            (vec![(1, vec![1], false)], "migration 1 did not complete"),
            (vec![(1, vec![1], true), (7, vec![7], true)], "migration 7"),
        ] {
            let err = compare_migrations(&snapshot, &app())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
            assert!(err.starts_with("body:"), "{err}");
        }
    }
}
