//! Bug-report and feature-request forms.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::routes::farm::text;
use crate::state::AppState;
use crate::views::csrf_field;
use crate::web::render;

#[derive(Deserialize, Default)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

fn feedback_kind(kind: &str) -> AppResult<&'static str> {
    match kind {
        "bug" => Ok("bug"),
        "feature" => Ok("feature"),
        _ => Err(AppError::field("kind", "must be bug or feature")),
    }
}

pub async fn feedback_page(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(_): CurrentUser,
    Query(q): Query<KindQuery>,
) -> AppResult<Response> {
    let kind = feedback_kind(if q.kind.is_empty() { "bug" } else { &q.kind })?;
    let t = ctx.lang.t();
    let (title, hint) = if kind == "bug" {
        (t.bug_title, t.bug_hint)
    } else {
        (t.feature_title, t.feature_hint)
    };
    let body = html! {
        form.card method="post" action="/feedback" {
            (csrf_field(&ctx))
            input type="hidden" name="kind" value=(kind);
            label for="fb-title" { (t.feedback_title_label) }
            input #fb-title name="title" required maxlength="200";
            label for="fb-body" { (t.feedback_details) }
            p.muted { (hint) }
            textarea #fb-body name="body" required maxlength="10000" {}
            button type="submit" { (t.send) }
        }
    };
    Ok(render(&state, &ctx, title, body).await.into_response())
}

#[derive(Deserialize)]
pub struct FeedbackForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

pub async fn feedback(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<FeedbackForm>,
) -> AppResult<Response> {
    let kind = feedback_kind(&form.kind)?;
    let title = text("title", &form.title, 1, 200)?;
    let body = text("body", &form.body, 1, 10_000)?;
    let row = state
        .db
        .one(
            &state.db.pool,
            sqlx::query("INSERT INTO feedback (user_id, kind, title, body, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(user.id)
                .bind(kind)
                .bind(title)
                .bind(body)
                .bind(now_ms()),
        )
        .await?;
    let feedback_id: i64 = row.get("id");
    state
        .audit(Category::Operation, json!({"actor": user.id, "action": "feedback.create", "after": {"feedback_id": feedback_id, "kind": kind}}))
        .await;
    let page = html! { p.notice #feedback-received role="status" { (ctx.lang.feedback_received(kind, feedback_id)) } };
    Ok(render(&state, &ctx, ctx.lang.t().thank_you, page)
        .await
        .into_response())
}
