//! The support flow seen by users: inquiry form → stored → automatic
//! acknowledgement (on the page and by e-mail) → history with staff answers.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{CsrfForm, Ctx, CurrentUser, User, check_csrf};
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::logs::Category;
use crate::routes::farm::text;
use crate::state::AppState;
use crate::support;
use crate::views::csrf_field;
use crate::web::render;

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(_): CurrentUser,
) -> AppResult<Response> {
    let content = support::load(&state.db).await?;
    let t = ctx.lang.t();
    let body = html! {
        p { (t.help_first_before) a href="/help" { (t.help_first_link) } (t.help_first_after) }
        section.card {
            h2 { (t.send_inquiry) }
            form #inquiry-form method="post" action="/support/inquiries" enctype="multipart/form-data" {
                (csrf_field(&ctx))
                label for="category" { (t.category) }
                select #category name="category" { @for c in &content.forms.inquiry_categories { option value=(c) { (c) } } }
                label for="subject" { (t.subject) }
                input #subject name="subject" required maxlength="200";
                label for="message" { (t.message) }
                textarea #message name="message" required maxlength="10000" {}
                label for="screenshot" { (t.screenshot_optional) }
                input #screenshot type="file" name="screenshot" accept="image/*";
                button type="submit" { (t.send_inquiry_button) }
            }
        }
        p { a href="/support/inquiries" { (t.your_inquiries_link) } }
        p { a href="/feedback?kind=bug" { (t.report_bug) } " · " a href="/feedback?kind=feature" { (t.request_feature) } }
    };
    Ok(render(&state, &ctx, t.support_title, body)
        .await
        .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let content = support::load(&state.db).await?;
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut csrf_ok = false;
    let mut screenshot = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::field("form", e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "screenshot" {
            if !csrf_ok {
                return Err(AppError::Csrf);
            }
            screenshot = state
                .photos
                .put_stream("screenshot", &mut field, state.config.upload_limit_bytes)
                .await?;
        } else if fields.len() < 10 {
            let value = field
                .text()
                .await
                .map_err(|_| AppError::field("form", "could not be read"))?;
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
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let category = get("category").trim().to_string();
    if !content.forms.inquiry_categories.contains(&category) {
        return Err(AppError::field(
            "category",
            "must be one of the listed categories",
        ));
    }
    let subject = text("subject", get("subject"), 1, 200)?;
    let message = text("message", get("message"), 1, 10_000)?;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let row = state
        .db
        .one(
            &mut *tx,
            sqlx::query(
                "INSERT INTO inquiries (user_id, category, subject, status, screenshot_key, screenshot_type, created_at) \
                 VALUES ($1, $2, $3, 'open', $4, $5, $6) RETURNING id",
            )
            .bind(user.id)
            .bind(category.clone())
            .bind(subject.clone())
            .bind(screenshot.as_ref().map(|s| s.key.clone()))
            .bind(screenshot.as_ref().map(|s| s.content_type.to_string()))
            .bind(now),
        )
        .await?;
    let inquiry_id: i64 = row.get("id");
    for (author, kind, body) in [
        (Some(user.id), "user", message.as_str()),
        (None, "auto-reply", content.auto_reply.body.as_str()),
    ] {
        state
            .db
            .exec(
                &mut *tx,
                sqlx::query(
                    "INSERT INTO inquiry_messages (inquiry_id, author_id, author_kind, body, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(inquiry_id)
                .bind(author)
                .bind(kind)
                .bind(body.to_string())
                .bind(now),
            )
            .await?;
    }
    tx.commit().await?;
    state
        .audit(
            Category::Operation,
            json!({"actor": user.id, "action": "inquiry.create", "after": {"inquiry_id": inquiry_id, "category": category}}),
        )
        .await;
    let mut emailed = false;
    if let Some(smtp) = &state.config.smtp {
        let subject_line = format!("{} [#{inquiry_id}]", content.auto_reply.subject);
        let mail_body = format!("{}\n\nYour message: {subject}\n", content.auto_reply.body);
        match crate::mail::send(smtp, &user.email, &subject_line, &mail_body).await {
            Ok(()) => emailed = true,
            Err(e) => {
                state
                    .audit(Category::Error, json!({"event": "auto_reply_mail_failed", "inquiry_id": inquiry_id, "error": e.to_string()}))
                    .await
            }
        }
    }
    let t = ctx.lang.t();
    let body = html! {
        div.card #acknowledgement role="status" {
            h2 { (content.auto_reply.subject) }
            p { (content.auto_reply.body) }
            p.muted { (ctx.lang.inquiry_number(inquiry_id)) @if emailed { (ctx.lang.copy_sent_to(&user.email)) } }
        }
        p { a #follow-inquiry href={"/support/inquiries/" (inquiry_id)} { (t.follow_inquiry) } }
    };
    Ok(render(&state, &ctx, t.inquiry_received, body)
        .await
        .into_response())
}

pub async fn mine(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
) -> AppResult<Response> {
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query("SELECT id, subject, status, created_at FROM inquiries WHERE user_id = $1 ORDER BY id DESC LIMIT 100")
                .bind(user.id),
        )
        .await?;
    let lang = ctx.lang;
    let t = lang.t();
    let body = html! {
        @if rows.is_empty() { p.muted { (t.no_inquiries) } }
        table { tbody {
            @for r in &rows {
                tr {
                    td { a href={"/support/inquiries/" (r.get::<i64, _>("id"))} { (r.get::<String, _>("subject")) } }
                    td { (lang.state_word(&r.get::<String, _>("status"))) }
                    td { (lang.when(r.get("created_at"))) }
                }
            }
        } }
        p { a href="/support" { (t.new_inquiry) } }
    };
    Ok(render(&state, &ctx, t.your_inquiries, body)
        .await
        .into_response())
}

/// The conversation of one inquiry, shared by the user's and the staff's page.
pub async fn history(state: &AppState, lang: Lang, inquiry_id: i64) -> AppResult<Markup> {
    let t = lang.t();
    let rows = state
        .db
        .all(
            &state.db.pool,
            sqlx::query(
                "SELECT m.author_kind, m.body, m.created_at, u.email FROM inquiry_messages m \
                 LEFT JOIN users u ON u.id = m.author_id WHERE m.inquiry_id = $1 ORDER BY m.id",
            )
            .bind(inquiry_id),
        )
        .await?;
    Ok(html! {
        ol.history {
            @for r in &rows {
                @let kind: String = r.get("author_kind");
                li.card {
                    p.muted {
                        @match kind.as_str() {
                            "staff" => { (t.support_team) }
                            "auto-reply" => { (t.automatic_ack) }
                            _ => { (r.try_get::<Option<String>, _>("email").ok().flatten().unwrap_or_default()) }
                        }
                        " · " (lang.when(r.get("created_at")))
                    }
                    p { (r.get::<String, _>("body")) }
                }
            }
        }
    })
}

pub async fn add_message(
    state: &AppState,
    inquiry_id: i64,
    author: &User,
    kind: &str,
    body: &str,
    new_status: &str,
) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    state
        .db
        .exec(
            &mut *tx,
            sqlx::query("INSERT INTO inquiry_messages (inquiry_id, author_id, author_kind, body, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(inquiry_id)
                .bind(author.id)
                .bind(kind.to_string())
                .bind(body.to_string())
                .bind(now),
        )
        .await?;
    let first_response = if kind == "staff" { Some(now) } else { None };
    state
        .db
        .exec(
            &mut *tx,
            sqlx::query("UPDATE inquiries SET status = $1, first_response_at = COALESCE(first_response_at, $2) WHERE id = $3")
                .bind(new_status.to_string())
                .bind(first_response)
                .bind(inquiry_id),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn detail(
    State(state): State<AppState>,
    ctx: Ctx,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
) -> AppResult<Response> {
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query(
                "SELECT subject, status, category FROM inquiries WHERE id = $1 AND user_id = $2",
            )
            .bind(inquiry_id)
            .bind(user.id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    let status: String = row.get("status");
    let lang = ctx.lang;
    let t = lang.t();
    let body = html! {
        p { (t.category_label) (row.get::<String, _>("category")) (t.status_label) strong #inquiry-status data-status=(status) { (lang.state_word(&status)) } }
        (history(&state, lang, inquiry_id).await?)
        @if status != "closed" {
            form method="post" action={"/support/inquiries/" (inquiry_id) "/reply"} {
                (csrf_field(&ctx))
                label for="reply" { (t.add_message) }
                textarea #reply name="body" required maxlength="10000" {}
                button type="submit" { (t.send) }
            }
        }
    };
    Ok(render(&state, &ctx, &row.get::<String, _>("subject"), body)
        .await
        .into_response())
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    pub body: String,
}

pub async fn reply(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> AppResult<Response> {
    let body = text("body", &form.body, 1, 10_000)?;
    let owned = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT status FROM inquiries WHERE id = $1 AND user_id = $2")
                .bind(inquiry_id)
                .bind(user.id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    if owned.get::<String, _>("status") == "closed" {
        return Err(AppError::Conflict(
            "this inquiry is closed; send a new one".into(),
        ));
    }
    add_message(&state, inquiry_id, &user, "user", &body, "open").await?;
    state
        .audit(Category::Operation, json!({"actor": user.id, "action": "inquiry.user_reply", "after": {"inquiry_id": inquiry_id}}))
        .await;
    Ok(Redirect::to(&format!("/support/inquiries/{inquiry_id}")).into_response())
}

/// The screenshot attached to an inquiry, for its author and for staff.
pub async fn screenshot(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(inquiry_id): Path<i64>,
) -> AppResult<Response> {
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query(
                "SELECT user_id, screenshot_key, screenshot_type FROM inquiries WHERE id = $1",
            )
            .bind(inquiry_id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    if row.get::<i64, _>("user_id") != user.id && !user.is_staff() {
        return Err(AppError::NotFound);
    }
    let key: Option<String> = row.try_get("screenshot_key")?;
    let key = key.ok_or(AppError::NotFound)?;
    let content_type: Option<String> = row.try_get("screenshot_type")?;
    let body = state.photos.open_object(&key).await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
            ),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=3600".into(),
            ),
        ],
        body,
    )
        .into_response())
}
