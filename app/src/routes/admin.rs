//! Staff area, support handling: the dashboard and the inquiry queue
//! (assign, answer, close). Operators and admins.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser, Role, User, require_role};
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::routes::farm::{id, text};
use crate::routes::inquiries::{ReplyForm, add_message, history};
use crate::state::AppState;
use crate::views::{csrf_field, when};
use crate::web::render;

/// Checks the role and logs refused attempts in the auth log.
pub(crate) async fn staff(state: &AppState, user: &User, role: Role, what: &str) -> AppResult<()> {
    if let Err(e) = require_role(user, role) {
        state
            .audit(
                Category::Auth,
                json!({"event": "access_denied", "user_id": user.id, "role": user.role.as_str(), "resource": what}),
            )
            .await;
        return Err(e);
    }
    Ok(())
}

pub async fn dashboard(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "admin").await?;
    let body = html! {
        ul {
            li { a href="/admin/inquiries" { "Inquiries" } }
            li { a href="/admin/feedback" { "Feedback and NPS" } }
            @if user.role == Role::Admin {
                li { a href="/admin/users" { "Users and roles" } }
                li { a href="/admin/logs" { "Audit logs" } }
            }
        }
    };
    Ok(render(&state, &ctx, "Admin", body).await.into_response())
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    #[serde(default)]
    status: String,
}

pub async fn inquiries(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    Query(q): Query<StatusQuery>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "inquiries").await?;
    let status = if q.status.is_empty() {
        "open".to_string()
    } else {
        q.status
    };
    if !["open", "answered", "closed", "all"].contains(&status.as_str()) {
        return Err(AppError::field(
            "status",
            "must be open, answered, closed or all",
        ));
    }
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query(
                "SELECT i.id, i.subject, i.category, i.status, i.created_at, u.email, a.email AS assignee \
                 FROM inquiries i JOIN users u ON u.id = i.user_id LEFT JOIN users a ON a.id = i.assignee_id \
                 WHERE ($1 = 'all' OR i.status = $1) ORDER BY i.id LIMIT 200",
            )
            .bind(status.clone()),
        )
        .await?;
    let body = html! {
        p { @for s in ["open", "answered", "closed", "all"] { a href={"/admin/inquiries?status=" (s)} { (s) } " " } }
        table { thead { tr { th { "#" } th { "Subject" } th { "From" } th { "Category" } th { "Assignee" } th { "Received" } } }
        tbody { @for r in &rows { tr {
            td { (r.get::<i64, _>("id")) }
            td { a href={"/admin/inquiries/" (r.get::<i64, _>("id"))} { (r.get::<String, _>("subject")) } }
            td { (r.get::<String, _>("email")) }
            td { (r.get::<String, _>("category")) }
            td { (r.try_get::<Option<String>, _>("assignee").ok().flatten().unwrap_or_else(|| "—".into())) }
            td { (when(r.get("created_at"))) }
        } } } }
    };
    Ok(render(&state, &ctx, &format!("Inquiries ({status})"), body)
        .await
        .into_response())
}

pub async fn inquiry(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "inquiries").await?;
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query(
                "SELECT i.subject, i.status, i.category, i.screenshot_key, u.email, a.email AS assignee FROM inquiries i \
                 JOIN users u ON u.id = i.user_id LEFT JOIN users a ON a.id = i.assignee_id WHERE i.id = $1",
            )
            .bind(inquiry_id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    let status: String = row.get("status");
    let staff_rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT id, email FROM users WHERE role <> 'user' ORDER BY email"),
        )
        .await?;
    let base = format!("/admin/inquiries/{inquiry_id}");
    let body = html! {
        p { "From " (row.get::<String, _>("email")) " · " (row.get::<String, _>("category")) " · Status: " strong { (status) }
            " · Assignee: " (row.try_get::<Option<String>, _>("assignee").ok().flatten().unwrap_or_else(|| "nobody".into())) }
        @if row.try_get::<Option<String>, _>("screenshot_key").ok().flatten().is_some() { p { img.photo src={"/support/inquiries/" (inquiry_id) "/screenshot"} alt="Screenshot attached by the user"; } }
        (history(&state, ctx.lang, inquiry_id).await?)
        @if status != "closed" {
            form.card method="post" action={(base) "/reply"} {
                (csrf_field(&ctx))
                label for="staff-reply" { "Answer" }
                textarea #staff-reply name="body" required maxlength="10000" {}
                button type="submit" { "Send answer" }
            }
            form.card method="post" action={(base) "/assign"} {
                (csrf_field(&ctx))
                label for="assignee" { "Assign to" }
                select #assignee name="assignee_id" { @for s in &staff_rows { option value=(s.get::<i64, _>("id")) selected[s.get::<i64, _>("id") == user.id] { (s.get::<String, _>("email")) } } }
                button type="submit" { "Assign" }
            }
            form method="post" action={(base) "/close"} { (csrf_field(&ctx)) button type="submit" { "Close inquiry" } }
        }
    };
    Ok(render(&state, &ctx, &row.get::<String, _>("subject"), body)
        .await
        .into_response())
}

pub async fn reply(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "inquiries").await?;
    let body = text("body", &form.body, 1, 10_000)?;
    exists(&state, inquiry_id).await?;
    add_message(&state, inquiry_id, &user, "staff", &body, "answered").await?;
    state
        .audit(Category::Operation, json!({"actor": user.id, "action": "inquiry.answer", "after": {"inquiry_id": inquiry_id}}))
        .await;
    Ok(Redirect::to(&format!("/admin/inquiries/{inquiry_id}")).into_response())
}

async fn exists(state: &AppState, inquiry_id: i64) -> AppResult<i64> {
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT assignee_id FROM inquiries WHERE id = $1").bind(inquiry_id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(row.try_get::<Option<i64>, _>("assignee_id")?.unwrap_or(0))
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    assignee_id: String,
}

pub async fn assign(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "inquiries").await?;
    let assignee = id("assignee_id", &form.assignee_id)?;
    let before = exists(&state, inquiry_id).await?;
    let is_staff = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT id FROM users WHERE id = $1 AND role <> 'user'").bind(assignee),
        )
        .await?;
    if is_staff.is_none() {
        return Err(AppError::field(
            "assignee_id",
            "must be an operator or admin",
        ));
    }
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("UPDATE inquiries SET assignee_id = $1 WHERE id = $2")
                .bind(assignee)
                .bind(inquiry_id),
        )
        .await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "inquiry.assign", "target": inquiry_id, "before": {"assignee_id": before}, "after": {"assignee_id": assignee}}),
        )
        .await;
    Ok(Redirect::to(&format!("/admin/inquiries/{inquiry_id}")).into_response())
}

pub async fn close(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
    CsrfForm(_): CsrfForm<std::collections::HashMap<String, String>>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "inquiries").await?;
    exists(&state, inquiry_id).await?;
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("UPDATE inquiries SET status = 'closed', closed_at = $1 WHERE id = $2")
                .bind(crate::db::now_ms())
                .bind(inquiry_id),
        )
        .await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "inquiry.close", "target": inquiry_id}),
        )
        .await;
    Ok(Redirect::to("/admin/inquiries").into_response())
}
