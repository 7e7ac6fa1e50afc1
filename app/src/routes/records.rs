//! Dated crop records with photos: list with search and paging, create
//! (multipart, photo streamed to the store), delete, photo download.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser, User, check_csrf};
use crate::db::{now_ms, parse_day};
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::routes::farm::{crop_choices, id, text};
use crate::state::AppState;
use crate::views::{csrf_field, pager};
use crate::web::render;

pub const KINDS: &[&str] = &[
    "sowing",
    "watering",
    "fertilising",
    "spraying",
    "harvest",
    "other",
];
pub const PAGE_SIZE: i64 = 20;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    pub crop: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: Option<String>,
}

pub struct Filter {
    pub crop: String,
    pub from: String,
    pub to: String,
    pub page: i64,
}

impl Search {
    pub fn parse(&self) -> AppResult<Filter> {
        let from = if self.from.trim().is_empty() {
            String::new()
        } else {
            parse_day("from", &self.from)?
        };
        let to = if self.to.trim().is_empty() {
            String::new()
        } else {
            parse_day("to", &self.to)?
        };
        let page = match &self.page {
            None => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| AppError::field("page", "must be a page number"))?,
        };
        Ok(Filter {
            crop: text("crop", &self.crop, 0, 100)?,
            from,
            to,
            page,
        })
    }
}

pub struct RecordRow {
    pub id: i64,
    pub day: String,
    pub kind: String,
    pub crop: String,
    pub field: String,
    pub quantity: Option<f64>,
    pub unit: String,
    pub notes: String,
    pub photo_id: Option<i64>,
}

pub async fn search_records(
    state: &AppState,
    owner: i64,
    f: &Filter,
) -> AppResult<(Vec<RecordRow>, bool)> {
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query(
                "SELECT r.id, r.day, r.kind, r.quantity, r.unit, r.notes, c.name AS crop, fl.name AS field, \
                 (SELECT MIN(p.id) FROM photos p WHERE p.record_id = r.id) AS photo_id \
                 FROM records r JOIN crops c ON c.id = r.crop_id JOIN fields fl ON fl.id = c.field_id \
                 WHERE r.owner_id = $1 AND ($2 = '' OR LOWER(c.name) LIKE $3) \
                 AND ($4 = '' OR r.day >= $4) AND ($5 = '' OR r.day <= $5) \
                 ORDER BY r.day DESC, r.id DESC LIMIT $6 OFFSET $7",
            )
            .bind(owner)
            .bind(f.crop.clone())
            .bind(format!("%{}%", f.crop.to_lowercase().replace(['%', '_'], "")))
            .bind(f.from.clone())
            .bind(f.to.clone())
            .bind(PAGE_SIZE + 1)
            .bind((f.page - 1) * PAGE_SIZE),
        )
        .await?;
    let has_next = rows.len() as i64 > PAGE_SIZE;
    let out = rows
        .iter()
        .take(PAGE_SIZE as usize)
        .map(|r| RecordRow {
            id: r.get("id"),
            day: r.get("day"),
            kind: r.get("kind"),
            crop: r.get("crop"),
            field: r.get("field"),
            quantity: r.try_get("quantity").ok().flatten(),
            unit: r.get("unit"),
            notes: r.get("notes"),
            photo_id: r.try_get("photo_id").ok().flatten(),
        })
        .collect();
    Ok((out, has_next))
}

async fn nps_due(state: &AppState, user: &User) -> AppResult<Option<String>> {
    let content = crate::support::load(&state.db).await?;
    if !content.nps.enabled {
        return Ok(None);
    }
    let row = state
        .db
        .one(
            &state.db.pool,
            sqlx::query("SELECT nps_prompted_at FROM users WHERE id = $1").bind(user.id),
        )
        .await?;
    let last: Option<i64> = row.try_get("nps_prompted_at")?;
    let now = now_ms();
    let interval_ms = content.nps.interval_days * 24 * 3600 * 1000;
    if last.is_some_and(|t| now - t < interval_ms) {
        return Ok(None);
    }
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("UPDATE users SET nps_prompted_at = $1 WHERE id = $2")
                .bind(now)
                .bind(user.id),
        )
        .await?;
    Ok(Some(content.nps.question))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    Query(search): Query<Search>,
) -> AppResult<Response> {
    let filter = search.parse()?;
    let (records, has_next) = search_records(&state, user.id, &filter).await?;
    let crops = crop_choices(&state, user.id).await?;
    let nps = nps_due(&state, &user).await?;
    let base = format!(
        "/records?{}",
        serde_urlencoded::to_string([
            ("crop", &filter.crop),
            ("from", &filter.from),
            ("to", &filter.to)
        ])
        .unwrap_or_default()
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let body = html! {
        @if let Some(question) = nps {
            section.card #nps aria-labelledby="nps-title" {
                h2 #nps-title { "Quick question" }
                form method="post" action="/nps" {
                    (csrf_field(&ctx))
                    label for="nps-score" { (question) " (0 = not at all, 10 = extremely)" }
                    select #nps-score name="score" required { @for s in 0..=10 { option value=(s) { (s) } } }
                    label for="nps-comment" { "Anything you want to tell us? (optional)" }
                    input #nps-comment name="comment" maxlength="1000";
                    button type="submit" { "Send" }
                }
            }
        }
        details.card #new-record-box open[records.is_empty() || crops.is_empty()] {
            summary { h2.inline { "New record" } }
            @if crops.is_empty() {
                p { "First " a href="/fields" { "add a field and a crop" } "." }
            } @else {
                form #new-record method="post" action="/records" enctype="multipart/form-data" {
                    (csrf_field(&ctx))
                    label for="crop_id" { "Crop" }
                    select #crop_id name="crop_id" required { @for (id, label) in &crops { option value=(id) { (label) } } }
                    label for="day" { "Date" }
                    input #day type="date" name="day" required value=(today);
                    label for="kind" { "Work" }
                    select #kind name="kind" { @for k in KINDS { option value=(k) { (k) } } }
                    label for="quantity" { "Quantity (optional)" }
                    input #quantity name="quantity" inputmode="decimal";
                    label for="unit" { "Unit (optional)" }
                    input #unit name="unit" maxlength="20" placeholder="kg, L, …";
                    label for="notes" { "Notes" }
                    textarea #notes name="notes" maxlength="5000" {}
                    label for="photo" { "Photo (optional)" }
                    input #photo type="file" name="photo" accept="image/*";
                    button type="submit" { "Save record" }
                }
            }
        }
        section {
            h2 { "Records" }
            form.card method="get" action="/records" role="search" {
                label for="s-crop" { "Crop" } input #s-crop name="crop" value=(filter.crop);
                label for="s-from" { "From" } input #s-from type="date" name="from" value=(filter.from);
                label for="s-to" { "To" } input #s-to type="date" name="to" value=(filter.to);
                button type="submit" { "Search" }
            }
            @if records.is_empty() { p.muted { "No records found." } }
            @else {
                table #records {
                    thead { tr { th { "Date" } th { "Crop" } th { "Work" } th { "Quantity" } th { "Notes" } th { "Photo" } th {} } }
                    tbody {
                        @for r in &records {
                            tr {
                                td { (r.day) }
                                td { (r.crop) br; span.muted { (r.field) } }
                                td { (r.kind) }
                                td { @if let Some(q) = r.quantity { (q) " " (r.unit) } }
                                td { (r.notes) }
                                td { @if let Some(p) = r.photo_id { img.photo src={"/photos/" (p)} alt={"Photo of " (r.crop) " on " (r.day)}; } }
                                td {
                                    form method="post" action={"/records/" (r.id) "/delete"} {
                                        (csrf_field(&ctx))
                                        button.link type="submit" aria-label={"Delete record of " (r.day)} { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(&base, filter.page, has_next))
        }
    };
    Ok(render(&state, &ctx, "Records", body).await.into_response())
}

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
