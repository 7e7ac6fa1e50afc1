//! Dated crop records: the list with search by crop and date range, paging,
//! and the NPS question shown there at most once per interval.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use sqlx::Row;

use crate::auth::{Ctx, CurrentUser, User};
use crate::db::{now_ms, parse_day};
use crate::error::{AppError, AppResult};
use crate::routes::farm::{crop_choices, text};
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
