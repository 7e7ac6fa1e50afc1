//! Sign-up, sign-in (throttled) and sign-out.

use std::time::Duration;

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::auth::{self, CsrfForm, Ctx, Role};
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::logs::Category;
use crate::state::AppState;
use crate::views::csrf_field;
use crate::web::render;

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/records").into_response();
    }
    let t = ctx.lang.t();
    let body = html! {
        p.lead { (t.home_lead) }
        p { a.button href="/signup" { (t.home_create) } " " a href="/login" { (t.sign_in) } }
    };
    render(&state, &ctx, t.home_title, body)
        .await
        .into_response()
}

fn credentials_form(ctx: &Ctx, action: &str, button: &str) -> maud::Markup {
    let t = ctx.lang.t();
    html! {
        form method="post" action=(action) {
            (csrf_field(ctx))
            label for="email" { (t.email) }
            input #email type="email" name="email" required autocomplete="email";
            label for="password" { (t.password) }
            input #password type="password" name="password" required minlength="10"
                autocomplete=(if action == "/signup" { "new-password" } else { "current-password" });
            button type="submit" { (button) }
        }
    }
}

pub async fn signup_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let t = ctx.lang.t();
    let body = html! {
        (credentials_form(&ctx, "/signup", t.signup_button))
        p.muted { (t.password_hint) }
    };
    render(&state, &ctx, t.signup_title, body)
        .await
        .into_response()
}

pub async fn login_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let t = ctx.lang.t();
    let body = html! {
        (credentials_form(&ctx, "/login", t.login_button))
        p { (t.no_account) a href="/signup" { (t.create_one) } }
    };
    render(&state, &ctx, t.login_title, body)
        .await
        .into_response()
}

fn with_session_cookie(state: &AppState, token: &str, to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let cookie = auth::session_cookie(
        token,
        state.config.session_ttl_secs,
        state.config.secure_cookies,
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn signup(
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<Credentials>,
) -> AppResult<Response> {
    let id = auth::create_user(
        &state.db,
        &form.email,
        &form.password,
        Role::User,
        state.config.argon2,
    )
    .await?;
    state
        .audit(
            Category::Auth,
            json!({"event": "signup", "user_id": id, "role": "user"}),
        )
        .await;
    let token = auth::start_session(&state.db, id, state.config.session_ttl_secs).await?;
    Ok(with_session_cookie(&state, &token, "/records"))
}

pub async fn login(State(state): State<AppState>, req: Request) -> AppResult<Response> {
    let client = crate::web::client_addr(&req);
    let CsrfForm(form) =
        <CsrfForm<Credentials> as FromRequest<AppState>>::from_request(req, &state).await?;
    let email = form.email.trim().to_lowercase();
    let mut keys = vec![format!("email:{email}")];
    if let Some(c) = &client {
        keys.push(format!("ip:{c}"));
    }
    let window = Duration::from_secs(state.config.login_window_secs);
    if let Err(retry_after_secs) =
        state
            .limiter
            .check(&keys, state.config.login_max_failures, window)
    {
        state
            .audit(
                Category::Auth,
                json!({"event": "login_throttled", "email": email, "client": client}),
            )
            .await;
        return Err(AppError::RateLimited { retry_after_secs });
    }
    let row = state
        .db
        .optional(
            &state.db.pool,
            sqlx::query("SELECT id, password_hash FROM users WHERE email = $1").bind(email.clone()),
        )
        .await?;
    let verified = match &row {
        Some(r) => auth::verify_password(form.password.clone(), r.get("password_hash")).await,
        None => {
            // Same work for unknown e-mails, so timing does not reveal accounts.
            let _ = auth::hash_password(form.password.clone(), state.config.argon2).await;
            false
        }
    };
    match (row, verified) {
        (Some(r), true) => {
            let id: i64 = r.get("id");
            state.limiter.reset(&keys[0]);
            let token = auth::start_session(&state.db, id, state.config.session_ttl_secs).await?;
            state
                .audit(
                    Category::Auth,
                    json!({"event": "login", "user_id": id, "client": client}),
                )
                .await;
            Ok(with_session_cookie(&state, &token, "/records"))
        }
        _ => {
            state.limiter.record_failure(&keys, window);
            state
                .audit(
                    Category::Auth,
                    json!({"event": "login_failed", "email": email, "client": client}),
                )
                .await;
            Err(AppError::field("password", "e-mail or password is wrong"))
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    CsrfForm(_): CsrfForm<std::collections::HashMap<String, String>>,
) -> AppResult<Response> {
    if let Some(h) = &ctx.session_token_hash {
        state
            .db
            .exec(
                &state.db.pool,
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(h.clone()),
            )
            .await?;
    }
    if let Some(u) = &ctx.user {
        state
            .audit(Category::Auth, json!({"event": "logout", "user_id": u.id}))
            .await;
    }
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_session_cookie(state.config.secure_cookies)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LangChoice {
    #[serde(default)]
    set: String,
    #[serde(default)]
    next: String,
}

/// The language switch: remembers the choice in the `lang` cookie and goes
/// back to the page it came from. It changes nothing but that cookie, so a
/// plain GET link is enough; the return target is always a path on this site.
pub async fn set_language(
    State(state): State<AppState>,
    Query(choice): Query<LangChoice>,
) -> AppResult<Response> {
    let lang = Lang::parse(choice.set.trim())
        .ok_or_else(|| AppError::field("lang", "must be ja or en"))?;
    let mut resp = Redirect::to(crate::i18n::safe_return_path(&choice.next)).into_response();
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        crate::i18n::LANG_COOKIE,
        lang.code(),
        if state.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}
