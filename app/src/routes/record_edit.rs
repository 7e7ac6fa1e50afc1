//! Changing records: create (multipart, photo streamed to the store),
//! delete, photo download, and the NPS answer.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser, check_csrf};
use crate::db::{now_ms, parse_day};
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::routes::farm::{id, text};
use crate::routes::records::KINDS;
use crate::state::AppState;

struct NewRecord {
    crop_id: i64,
    day: String,
    kind: String,
    quantity: Option<f64>,
    unit: String,
    notes: String,
}

fn validate_record(fields: &HashMap<String, String>) -> AppResult<NewRecord> {
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let kind = get("kind").trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        return Err(AppError::field(
            "kind",
            format!("must be one of {}", KINDS.join(", ")),
        ));
    }
    let quantity = match get("quantity").trim() {
        "" => None,
        q => Some(
            q.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| AppError::field("quantity", "must be a number of at least 0"))?,
        ),
    };
    Ok(NewRecord {
        crop_id: id("crop_id", get("crop_id"))?,
        day: parse_day("day", get("day"))?,
        kind,
        quantity,
        unit: text("unit", get("unit"), 0, 20)?,
        notes: text("notes", get("notes"), 0, 5000)?,
    })
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let mut fields = HashMap::new();
    let mut csrf_ok = false;
    let mut photo = None;
    let mut record = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::field("form", e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "photo" {
            // The file comes last in our form; everything it belongs to must
            // be valid before we spend disk on it.
            if !csrf_ok {
                return Err(AppError::Csrf);
            }
            record = Some(validate_record(&fields)?);
            photo = state
                .photos
                .put_stream("photo", &mut field, state.config.upload_limit_bytes)
                .await?;
        } else if fields.len() < 20 {
            let value = field
                .text()
                .await
                .map_err(|_| AppError::field("form", "could not be read"))?;
            if value.len() > 10_000 {
                return Err(AppError::field("form", format!("{name} is too long")));
            }
            if name == "csrf" {
                check_csrf(&ctx.csrf, Some(&value))?;
                csrf_ok = true;
            }
            fields.insert(name, value);
        }
    }
    if !csrf_ok {
        return Err(AppError::Csrf);
    }
    let record = match record {
        Some(r) => r,
        None => validate_record(&fields)?,
    };
    let owned = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT id FROM crops WHERE id = $1 AND owner_id = $2")
                .bind(record.crop_id)
                .bind(user.id),
        )
        .await?;
    if owned.is_none() {
        return Err(AppError::field("crop_id", "is not one of your crops"));
    }
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let row = state
        .db
        .one(
            &mut *tx,
            sqlx::query(
                "INSERT INTO records (owner_id, crop_id, day, kind, quantity, unit, notes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(user.id)
            .bind(record.crop_id)
            .bind(record.day)
            .bind(record.kind)
            .bind(record.quantity)
            .bind(record.unit)
            .bind(record.notes)
            .bind(now),
        )
        .await?;
    let record_id: i64 = row.get("id");
    if let Some(p) = &photo {
        state
            .db
            .exec(
                &mut *tx,
                sqlx::query(
                    "INSERT INTO photos (record_id, object_key, content_type, size_bytes, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(record_id)
                .bind(p.key.clone())
                .bind(p.content_type)
                .bind(p.size)
                .bind(now),
            )
            .await?;
    }
    tx.commit().await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "record.create",
                   "after": {"record_id": record_id, "crop_id": record.crop_id, "photo": photo.as_ref().map(|p| &p.key)}}),
        )
        .await;
    Ok(Redirect::to("/records").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(record_id): Path<i64>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> AppResult<Response> {
    let before = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT crop_id, day, kind FROM records WHERE id = $1 AND owner_id = $2")
                .bind(record_id)
                .bind(user.id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("DELETE FROM records WHERE id = $1").bind(record_id),
        )
        .await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "record.delete",
                   "before": {"record_id": record_id, "crop_id": before.get::<i64, _>("crop_id"),
                              "day": before.get::<String, _>("day"), "kind": before.get::<String, _>("kind")}}),
        )
        .await;
    Ok(Redirect::to("/records").into_response())
}

pub async fn photo(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(photo_id): Path<i64>,
) -> AppResult<Response> {
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query(
                "SELECT p.object_key, p.content_type, r.owner_id FROM photos p JOIN records r ON r.id = p.record_id WHERE p.id = $1",
            )
            .bind(photo_id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    if row.get::<i64, _>("owner_id") != user.id && !user.is_staff() {
        return Err(AppError::NotFound);
    }
    let body = state
        .photos
        .open_object(&row.get::<String, _>("object_key"))
        .await?;
    let content_type: String = row.get("content_type");
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct NpsForm {
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

pub async fn nps(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<NpsForm>,
) -> AppResult<Response> {
    let score = form
        .score
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=10).contains(s))
        .ok_or_else(|| AppError::field("score", "must be a number from 0 to 10"))?;
    let comment = text("comment", &form.comment, 0, 1000)?;
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("INSERT INTO nps_responses (user_id, score, comment, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user.id)
                .bind(score)
                .bind(comment)
                .bind(now_ms()),
        )
        .await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "nps.respond", "after": {"score": score}}),
        )
        .await;
    Ok(Redirect::to("/records").into_response())
}
