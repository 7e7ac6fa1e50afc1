//! Fields and crops: the places and plants records belong to.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::state::AppState;
use crate::views::csrf_field;
use crate::web::render;

pub fn text(field: &'static str, value: &str, min: usize, max: usize) -> AppResult<String> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min {
        return Err(AppError::field(field, "is required"));
    }
    if n > max {
        return Err(AppError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v.to_string())
}

pub fn id(field: &'static str, value: &str) -> AppResult<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AppError::field(field, "must be chosen from the list"))
}

#[derive(Deserialize)]
pub struct NewField {
    #[serde(default)]
    name: String,
    #[serde(default)]
    location: String,
}

#[derive(Deserialize)]
pub struct NewCrop {
    #[serde(default)]
    field_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    variety: String,
}

/// (crop id, "crop — field") for the user's crops, for select boxes.
pub async fn crop_choices(state: &AppState, owner: i64) -> AppResult<Vec<(i64, String)>> {
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query(
                "SELECT c.id, c.name, c.variety, f.name AS field FROM crops c JOIN fields f ON f.id = c.field_id \
                 WHERE c.owner_id = $1 ORDER BY f.name, c.name",
            )
            .bind(owner),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let variety: String = r.get("variety");
            let name: String = r.get("name");
            let label = if variety.is_empty() {
                name
            } else {
                format!("{name} ({variety})")
            };
            (
                r.get("id"),
                format!("{label} — {}", r.get::<String, _>("field")),
            )
        })
        .collect())
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
) -> AppResult<Response> {
    let fields = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT id, name, location FROM fields WHERE owner_id = $1 ORDER BY name")
                .bind(user.id),
        )
        .await?;
    let crops = crop_choices(&state, user.id).await?;
    let t = ctx.lang.t();
    let body = html! {
        div.grid {
            section.card {
                h2 { (t.your_fields) }
                @if fields.is_empty() { p.muted { (t.no_fields) } }
                ul { @for f in &fields { li { strong { (f.get::<String, _>("name")) } " " span.muted { (f.get::<String, _>("location")) } } } }
                form method="post" action="/fields" {
                    (csrf_field(&ctx))
                    label for="field-name" { (t.field_name) }
                    input #field-name name="name" required maxlength="100";
                    label for="field-location" { (t.field_location) }
                    input #field-location name="location" maxlength="200";
                    button type="submit" { (t.add_field) }
                }
            }
            section.card {
                h2 { (t.your_crops) }
                @if crops.is_empty() { p.muted { (t.no_crops) } }
                ul { @for (_, label) in &crops { li { (label) } } }
                @if !fields.is_empty() {
                    form method="post" action="/crops" {
                        (csrf_field(&ctx))
                        label for="crop-field" { (t.field) }
                        select #crop-field name="field_id" required {
                            @for f in &fields { option value=(f.get::<i64, _>("id")) { (f.get::<String, _>("name")) } }
                        }
                        label for="crop-name" { (t.crop) }
                        input #crop-name name="name" required maxlength="100" placeholder=(t.crop_placeholder);
                        label for="crop-variety" { (t.variety_optional) }
                        input #crop-variety name="variety" maxlength="100";
                        button type="submit" { (t.add_crop) }
                    }
                }
            }
        }
    };
    Ok(render(&state, &ctx, t.fields_title, body)
        .await
        .into_response())
}

pub async fn create_field(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<NewField>,
) -> AppResult<Response> {
    let name = text("name", &form.name, 1, 100)?;
    let location = text("location", &form.location, 0, 200)?;
    let row = state
        .db
        .one(
            &state.db.pool,
            sqlx::query("INSERT INTO fields (owner_id, name, location, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(user.id)
                .bind(name)
                .bind(location)
                .bind(now_ms()),
        )
        .await?;
    let field_id: i64 = row.get("id");
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "field.create", "after": {"field_id": field_id}}),
        )
        .await;
    Ok(Redirect::to("/fields").into_response())
}

pub async fn create_crop(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<NewCrop>,
) -> AppResult<Response> {
    let field_id = id("field_id", &form.field_id)?;
    let name = text("name", &form.name, 1, 100)?;
    let variety = text("variety", &form.variety, 0, 100)?;
    let owned = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT id FROM fields WHERE id = $1 AND owner_id = $2")
                .bind(field_id)
                .bind(user.id),
        )
        .await?;
    if owned.is_none() {
        return Err(AppError::field("field_id", "is not one of your fields"));
    }
    let row = state
        .db
        .one(
            &state.db.pool,
            sqlx::query(
                "INSERT INTO crops (owner_id, field_id, name, variety, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(user.id)
            .bind(field_id)
            .bind(name)
            .bind(variety)
            .bind(now_ms()),
        )
        .await?;
    let crop_id: i64 = row.get("id");
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "crop.create", "after": {"crop_id": crop_id, "field_id": field_id}}),
        )
        .await;
    Ok(Redirect::to("/fields").into_response())
}
