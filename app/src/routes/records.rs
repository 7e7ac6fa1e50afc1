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
    let lang = ctx.lang;
    let t = lang.t();
    let body = html! {
        @if let Some(question) = nps {
            section.card #nps aria-labelledby="nps-title" {
                h2 #nps-title { (t.nps_title) }
                form method="post" action="/nps" {
                    (csrf_field(&ctx))
                    label for="nps-score" { (question) (t.nps_scale) }
                    select #nps-score name="score" required { @for s in 0..=10 { option value=(s) { (s) } } }
                    label for="nps-comment" { (t.nps_comment) }
                    input #nps-comment name="comment" maxlength="1000";
                    button type="submit" { (t.send) }
                }
            }
        }
        details.card #new-record-box open[records.is_empty() || crops.is_empty()] {
            summary { h2.inline { (t.new_record) } }
            @if crops.is_empty() {
                p { (t.need_crops_before) a href="/fields" { (t.need_crops_link) } (t.need_crops_after) }
            } @else {
                form #new-record method="post" action="/records" enctype="multipart/form-data" {
                    (csrf_field(&ctx))
                    label for="crop_id" { (t.crop) }
                    select #crop_id name="crop_id" required { @for (id, label) in &crops { option value=(id) { (label) } } }
                    label for="day" { (t.date) }
                    input #day type="date" name="day" required value=(today);
                    label for="kind" { (t.work) }
                    select #kind name="kind" { @for k in KINDS { option value=(k) { (lang.kind(k)) } } }
                    label for="quantity" { (t.quantity_optional) }
                    input #quantity name="quantity" inputmode="decimal";
                    label for="unit" { (t.unit_optional) }
                    input #unit name="unit" maxlength="20" placeholder=(t.unit_placeholder);
                    label for="notes" { (t.notes) }
                    textarea #notes name="notes" maxlength="5000" {}
                    label for="photo" { (t.photo_optional) }
                    input #photo type="file" name="photo" accept="image/*";
                    button type="submit" { (t.save_record) }
                }
            }
        }
        section {
            h2 { (t.records_title) }
            form.card method="get" action="/records" role="search" {
                label for="s-crop" { (t.crop) } input #s-crop name="crop" value=(filter.crop);
                label for="s-from" { (t.search_from) } input #s-from type="date" name="from" value=(filter.from);
                label for="s-to" { (t.search_to) } input #s-to type="date" name="to" value=(filter.to);
                button type="submit" { (t.search) }
            }
            @if records.is_empty() { p.muted { (t.no_records) } }
            @else {
                table #records {
                    thead { tr { th { (t.date) } th { (t.crop) } th { (t.work) } th { (t.quantity) } th { (t.notes) } th { (t.photo) } th {} } }
                    tbody {
                        @for r in &records {
                            tr data-day=(r.day) data-kind=(r.kind) {
                                td { (lang.day(&r.day)) }
                                td { (r.crop) br; span.muted { (r.field) } }
                                td { (lang.kind(&r.kind)) }
                                td { @if let Some(q) = r.quantity { (q) " " (r.unit) } }
                                td { (r.notes) }
                                td { @if let Some(p) = r.photo_id { img.photo src={"/photos/" (p)} alt=(lang.photo_alt(&r.crop, &r.day)); } }
                                td {
                                    form method="post" action={"/records/" (r.id) "/delete"} {
                                        (csrf_field(&ctx))
                                        button.link type="submit" aria-label=(lang.delete_record_label(&r.day)) { (t.delete) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, &base, filter.page, has_next))
        }
    };
    Ok(render(&state, &ctx, t.records_title, body)
        .await
        .into_response())
}
