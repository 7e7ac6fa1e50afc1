//! The ops API (`/ops/v1`) through which tend operates fieldbook. Bearer
//! token from configuration; JSON in and out; documented in openapi.yaml.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::auth::constant_time_eq;
use crate::db::{Backend, TABLES, now_ms};
use crate::error::{AppError, AppResult};
use crate::incidents::{self, IncidentChange, NewIncident};
use crate::logs::Category;
use crate::settings::{self, SettingsDocument};
use crate::state::{AppState, MAINTENANCE_SETTING};
use crate::support::{self, SupportContent};
use crate::{restore, selfcheck};

pub async fn require_token(state: State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Sha256::digest(t.trim().as_bytes()));
    let ok = match (&state.config.ops_token_sha256, given) {
        (Some(expected), Some(given)) => constant_time_eq(expected, &given),
        _ => false,
    };
    if !ok {
        state
            .audit(
                Category::Auth,
                json!({"event": "ops_token_rejected", "path": req.uri().path()}),
            )
            .await;
        return AppError::BadToken.into_response();
    }
    next.run(req).await
}

/// JSON body whose errors name the offending field (serde's message does).
pub struct OpsJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OpsJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::field("body", "could not be read"))?;
        let mut de = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut de)
            .map(OpsJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // A missing or unknown field is reported by serde at the
                // enclosing level; its message names it.
                if path == "." || path.is_empty() {
                    AppError::field("body", format!("invalid JSON: {inner}"))
                } else {
                    AppError::field(path, format!("invalid value: {inner}"))
                }
            })
    }
}

async fn ops_audit(state: &AppState, action: &str, detail: Value) {
    state
        .audit(
            Category::Operation,
            json!({"actor": "ops-api", "action": action, "detail": detail}),
        )
        .await;
}

pub async fn get_support_content(State(state): State<AppState>) -> AppResult<Json<SupportContent>> {
    Ok(Json(support::load(&state.db).await?))
}

pub async fn put_support_content(
    State(state): State<AppState>,
    OpsJson(content): OpsJson<SupportContent>,
) -> AppResult<Json<Value>> {
    let changed = support::publish(&state.db, &content).await?;
    if changed {
        ops_audit(
            &state,
            "support_content.publish",
            json!({"revision": content.revision}),
        )
        .await;
    }
    Ok(Json(
        json!({"revision": content.revision, "changed": changed}),
    ))
}

pub async fn list_incidents(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let list = incidents::list(&state.db, false, 200).await?;
    Ok(Json(json!({ "incidents": list })))
}

pub async fn create_incident(
    State(state): State<AppState>,
    OpsJson(new): OpsJson<NewIncident>,
) -> AppResult<Response> {
    let id = incidents::create(&state.db, &new).await?;
    ops_audit(
        &state,
        "incident.create",
        json!({"incident_id": id, "status": new.status}),
    )
    .await;
    Ok((axum::http::StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

pub async fn update_incident(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OpsJson(change): OpsJson<IncidentChange>,
) -> AppResult<Json<Value>> {
    incidents::update(&state.db, id, &change).await?;
    ops_audit(
        &state,
        "incident.update",
        json!({"incident_id": id, "status": change.status}),
    )
    .await;
    Ok(Json(json!({"id": id, "status": change.status})))
}

fn positive(query: &HashMap<String, String>, name: &'static str) -> AppResult<i64> {
    let raw = query
        .get(name)
        .ok_or_else(|| AppError::field(name, "is required"))?;
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v > 0 && *v <= 24 * 3650)
        .ok_or_else(|| AppError::field(name, "must be a positive whole number of hours"))
}

pub async fn inquiry_stats(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> AppResult<Json<Value>> {
    let sla_hours = positive(&query, "sla_hours")?;
    let now = now_ms();
    let deadline = now - sla_hours * 3600 * 1000;
    let row = state
        .db
        .one(
            &state.db.pool,
            sqlx::query(
                "SELECT \
                 (SELECT COUNT(*) FROM inquiries WHERE status <> 'closed') AS open_count, \
                 (SELECT COUNT(*) FROM inquiries WHERE status <> 'closed' AND first_response_at IS NULL AND created_at < $1) AS overdue, \
                 (SELECT COUNT(*) FROM inquiries WHERE status <> 'closed' AND first_response_at IS NULL) AS unanswered, \
                 (SELECT MIN(created_at) FROM inquiries WHERE status <> 'closed' AND first_response_at IS NULL) AS oldest",
            )
            .bind(deadline),
        )
        .await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(Json(json!({
        "slaHours": sla_hours,
        "open": row.get::<i64, _>("open_count"),
        "unanswered": row.get::<i64, _>("unanswered"),
        "overdue": row.get::<i64, _>("overdue"),
        "oldestUnansweredSeconds": oldest.map(|t| (now - t) / 1000),
    })))
}

fn category_and_before(query: &HashMap<String, String>) -> AppResult<(Category, i64)> {
    let category = query
        .get("category")
        .and_then(|c| Category::parse(c))
        .ok_or_else(|| AppError::field("category", "must be access, auth, operation or error"))?;
    let before = query
        .get("before")
        .and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok())
        .ok_or_else(|| {
            AppError::field(
                "before",
                "must be an RFC 3339 time like 2024-05-01T00:00:00Z",
            )
        })?
        .timestamp_millis();
    Ok((category, before))
}

/// Streams JSON lines page by page, so memory stays flat for any log size.
pub async fn export_logs(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let (category, before) = category_and_before(&query)?;
    ops_audit(
        &state,
        "logs.export",
        json!({"category": category.as_str(), "before": before}),
    )
    .await;
    let stream = futures::stream::unfold(Some(0_i64), move |cursor| {
        let state = state.clone();
        async move {
            let after = cursor?;
            match state.logs.older_than(category, before, after, 500).await {
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let last = entries.last().map(|e| e.id);
                    let mut chunk = Vec::new();
                    for e in &entries {
                        if serde_json::to_writer(&mut chunk, e).is_ok() {
                            chunk.push(b'\n');
                        }
                    }
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), last))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    category: String,
    before: String,
}

pub async fn prune_logs(
    State(state): State<AppState>,
    OpsJson(req): OpsJson<PruneRequest>,
) -> AppResult<Json<Value>> {
    let query = HashMap::from([
        ("category".to_string(), req.category),
        ("before".to_string(), req.before),
    ]);
    let (category, before) = category_and_before(&query)?;
    let deleted = state.logs.prune(category, before).await?;
    ops_audit(
        &state,
        "logs.prune",
        json!({"category": category.as_str(), "before": before, "deleted": deleted}),
    )
    .await;
    Ok(Json(
        json!({"category": category.as_str(), "deleted": deleted}),
    ))
}

/// A consistent copy of the SQLite database: `VACUUM INTO` a temporary file
/// (a transactionally consistent snapshot taken while the app keeps serving),
/// streamed out and deleted when the stream ends.
pub async fn snapshot(State(state): State<AppState>) -> AppResult<Response> {
    if state.db.backend != Backend::Sqlite {
        return Err(AppError::Conflict(
            "snapshots are for SQLite; back PostgreSQL up with pg_dump".into(),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("fieldbook-snapshot")
        .tempdir()?;
    let path = dir.path().join("snapshot.db");
    let literal = path.to_string_lossy().replace('\'', "''");
    let vacuum = format!("VACUUM INTO '{literal}'");
    state.db.exec(&state.db.pool, sqlx::query(&vacuum)).await?;
    // Counted in the snapshot itself, so they describe exactly the rows it holds.
    let row_counts = snapshot_row_counts(&path).await?;
    let file = tokio::fs::File::open(&path).await?;
    let size = file.metadata().await?.len();
    ops_audit(&state, "snapshot", json!({"bytes": size})).await;
    let reader = tokio_util::io::ReaderStream::new(file);
    // The temp dir lives as long as the stream, then is removed.
    let stream = futures::StreamExt::map(reader, move |chunk| {
        let _keep = &dir;
        chunk
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static(ROW_COUNTS_HEADER),
                Value::from(row_counts).to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Response header of `/snapshot`: the rows per table in the snapshot, as a JSON object.
pub const ROW_COUNTS_HEADER: &str = "x-fieldbook-row-counts";

/// Rows per table of a snapshot file, read through its own read-only connection.
async fn snapshot_row_counts(path: &std::path::Path) -> AppResult<serde_json::Map<String, Value>> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let mut counts = serde_json::Map::new();
    for table in TABLES {
        let count = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = sqlx::query(&count).fetch_one(&mut conn).await?;
        counts.insert((*table).to_string(), json!(row.get::<i64, _>("n")));
    }
    conn.close().await?;
    Ok(counts)
}

/// Replaces the database contents with an uploaded snapshot (see
/// `restore`). The body is streamed to disk, never held in memory, and is not
/// subject to the router's body limit.
pub async fn restore_snapshot(State(state): State<AppState>, body: Body) -> AppResult<Json<Value>> {
    let restored = match restore::restore(&state, body).await {
        Ok(r) => r,
        Err(e) => {
            if !matches!(e, AppError::Internal(_)) {
                ops_audit(
                    &state,
                    "snapshot.restore_refused",
                    json!({"reason": e.to_string()}),
                )
                .await;
            }
            return Err(e);
        }
    };
    ops_audit(
        &state,
        "snapshot.restore",
        json!({"bytes": restored.bytes, "tables": restored.tables}),
    )
    .await;
    // The restored rows may reference objects the store lacks: let the
    // verify metrics say so now rather than at the next period.
    let background = state.clone();
    tokio::spawn(async move {
        let _ = selfcheck::run(&background).await;
    });
    Ok(Json(
        json!({"bytes": restored.bytes, "tables": restored.tables}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    enabled: bool,
    #[serde(default)]
    message: Option<String>,
}

pub async fn get_maintenance(State(state): State<AppState>) -> Json<Value> {
    let message = state.maintenance_message();
    Json(json!({"enabled": message.is_some(), "message": message}))
}

pub async fn set_maintenance(
    State(state): State<AppState>,
    OpsJson(req): OpsJson<MaintenanceRequest>,
) -> AppResult<Json<Value>> {
    let message = settings::maintenance_message(req.enabled, req.message, "message")?;
    // Maintenance is when data gets replaced from outside (pg_restore into the database):
    // the cached log chain heads may name rows that no longer exist, so the next entries
    // read the heads from the database again.
    state.logs.forget_heads().await;
    match &message {
        Some(m) => state.db.set_setting(MAINTENANCE_SETTING, m).await?,
        None => {
            state
                .db
                .exec(
                    &state.db.pool,
                    sqlx::query("DELETE FROM settings WHERE name = $1").bind(MAINTENANCE_SETTING),
                )
                .await?;
        }
    }
    *state.maintenance.write().unwrap_or_else(|p| p.into_inner()) = message.clone();
    ops_audit(&state, "maintenance", json!({"enabled": message.is_some()})).await;
    Ok(Json(
        json!({"enabled": message.is_some(), "message": message}),
    ))
}

pub async fn get_settings(State(state): State<AppState>) -> AppResult<Json<SettingsDocument>> {
    Ok(Json(settings::export(&state.db).await?))
}

/// Re-applies an exported settings document in one transaction. The body is
/// parsed here rather than by `OpsJson` so an unknown `format` is refused as
/// such before the shape of its contents is judged.
pub async fn put_settings(State(state): State<AppState>, body: Bytes) -> AppResult<Json<Value>> {
    let doc = settings::parse(&body)?;
    let applied = settings::apply(&state.db, &doc).await?;
    *state.maintenance.write().unwrap_or_else(|p| p.into_inner()) = applied.maintenance.clone();
    if !applied.changed.is_empty() {
        ops_audit(
            &state,
            "settings.import",
            json!({"changed": applied.changed, "fromVersion": doc.version}),
        )
        .await;
    }
    Ok(Json(json!({"changed": applied.changed})))
}

/// Runs the self-check now (it also runs periodically, see `selfcheck`) and
/// returns what it found; the `fieldbook_verify_*` metrics follow.
pub async fn verify(State(state): State<AppState>) -> AppResult<Json<Value>> {
    Ok(Json(selfcheck::run(&state).await?.to_json()))
}
