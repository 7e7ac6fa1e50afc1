//! Staff area, oversight: feedback and NPS overview (operators), users and
//! roles, and the audit logs (admins; reading them is itself logged).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser, Role};
use crate::error::{AppError, AppResult};
use crate::logs::Category;
use crate::routes::admin::staff;
use crate::state::AppState;
use crate::views::{csrf_field, when};
use crate::web::render;

/// NPS = % promoters (9–10) − % detractors (0–6), over the given responses.
pub fn nps_score(scores: &[i64]) -> Option<i64> {
    if scores.is_empty() {
        return None;
    }
    let promoters = scores.iter().filter(|s| **s >= 9).count() as f64;
    let detractors = scores.iter().filter(|s| **s <= 6).count() as f64;
    Some(((promoters - detractors) * 100.0 / scores.len() as f64).round() as i64)
}

pub async fn feedback(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
) -> AppResult<Response> {
    staff(&state, &user, Role::Operator, "feedback").await?;
    let since = crate::db::now_ms() - 90 * 24 * 3600 * 1000;
    let scores: Vec<i64> = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT score FROM nps_responses WHERE created_at >= $1").bind(since),
        )
        .await?
        .iter()
        .map(|r| r.get("score"))
        .collect();
    let counts = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT kind, COUNT(*) AS n FROM feedback GROUP BY kind ORDER BY kind"),
        )
        .await?;
    let recent = state
        .db
        .all(
            &state.db.pool,
            sqlx::query(
                "SELECT kind, title, body, created_at FROM feedback ORDER BY id DESC LIMIT 50",
            ),
        )
        .await?;
    let comments = state
        .db
        .all(&state.db.pool, sqlx::query("SELECT score, comment FROM nps_responses WHERE comment <> '' ORDER BY id DESC LIMIT 20"))
        .await?;
    let body = html! {
        div.grid {
            section.card { h2 { "NPS (last 90 days)" }
                p #nps-score { @match nps_score(&scores) { Some(s) => { strong { (s) } " from " (scores.len()) " responses" } None => { "No responses yet" } } } }
            section.card { h2 { "Feedback by kind" }
                ul { @for c in &counts { li { (c.get::<String, _>("kind")) ": " (c.get::<i64, _>("n")) } } } }
        }
        h2 { "Recent bug reports and feature requests" }
        @for r in &recent { article.card { p.muted { (r.get::<String, _>("kind")) " · " (when(r.get("created_at"))) } h3 { (r.get::<String, _>("title")) } p { (r.get::<String, _>("body")) } } }
        h2 { "NPS comments" }
        ul { @for c in &comments { li { (c.get::<i64, _>("score")) ": " (c.get::<String, _>("comment")) } } }
    };
    Ok(render(&state, &ctx, "Feedback and NPS", body)
        .await
        .into_response())
}

pub async fn users(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
) -> AppResult<Response> {
    staff(&state, &user, Role::Admin, "users").await?;
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT id, email, role, created_at FROM users ORDER BY id LIMIT 500"),
        )
        .await?;
    let body = html! {
        table { thead { tr { th { "E-mail" } th { "Since" } th { "Role" } } }
        tbody { @for r in &rows { tr {
            td { (r.get::<String, _>("email")) }
            td { (when(r.get("created_at"))) }
            td { form.inline method="post" action={"/admin/users/" (r.get::<i64, _>("id")) "/role"} {
                (csrf_field(&ctx))
                label.muted for={"role-" (r.get::<i64, _>("id"))} { "Role" }
                select id={"role-" (r.get::<i64, _>("id"))} name="role" {
                    @for role in ["user", "operator", "admin"] { option value=(role) selected[r.get::<String, _>("role") == role] { (role) } }
                }
                button type="submit" { "Change" }
            } }
        } } } }
    };
    Ok(render(&state, &ctx, "Users and roles", body)
        .await
        .into_response())
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(target): Path<i64>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Admin, "users").await?;
    let role = Role::parse(form.role.trim())
        .ok_or_else(|| AppError::field("role", "must be user, operator or admin"))?;
    if target == user.id && role != Role::Admin {
        return Err(AppError::field(
            "role",
            "you cannot remove your own admin role",
        ));
    }
    let before = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT role FROM users WHERE id = $1").bind(target),
        )
        .await?
        .ok_or(AppError::NotFound)?
        .get::<String, _>("role");
    state
        .db
        .exec(
            &state.db.pool,
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(target),
        )
        .await?;
    state
        .audit(
            Category::Auth,
            json!({"event": "role_change", "actor": user.id, "user_id": target, "before": before, "after": role.as_str()}),
        )
        .await;
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    before: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    Query(q): Query<LogQuery>,
) -> AppResult<Response> {
    staff(&state, &user, Role::Admin, "logs").await?;
    let category = match q.category.as_str() {
        "" => None,
        c => Some(crate::logs::Category::parse(c).ok_or_else(|| {
            AppError::field("category", "must be access, auth, operation or error")
        })?),
    };
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "logs.read", "category": q.category, "before": q.before}),
        )
        .await;
    let entries = state.logs.recent(category, q.before, 100).await?;
    let next = entries.last().map(|e| e.id);
    let body = html! {
        p { a href="/admin/logs" { "all" } " " @for c in crate::logs::CATEGORIES { a href={"/admin/logs?category=" (c)} { (c) } " " } }
        table #logs { thead { tr { th { "#" } th { "Time" } th { "Log" } th { "Entry" } } }
        tbody { @for e in &entries { tr { td { (e.id) } td { (e.ts) } td { (e.category) } td { code { (e.data.to_string()) } } } } } }
        @if let (Some(n), true) = (next, entries.len() == 100) {
            nav.pager aria-label="Pages" { a rel="next" href={"/admin/logs?category=" (q.category) "&before=" (n)} { "Older →" } }
        }
    };
    Ok(render(&state, &ctx, "Audit logs", body)
        .await
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::nps_score;

    #[test]
    fn nps_is_promoters_minus_detractors_in_percent() {
        assert_eq!(nps_score(&[]), None);
        assert_eq!(nps_score(&[10, 9, 8, 7]), Some(50));
        assert_eq!(nps_score(&[0, 6, 10]), Some(-33));
        assert_eq!(nps_score(&[7, 8]), Some(0));
    }
}
