//! Request middleware: resolves the session and CSRF token, enforces
//! maintenance mode, renders errors as HTML on web pages, records metrics,
//! and writes the access log (and the error log for internal errors).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use crate::auth::{self, Ctx};
use crate::error::ErrorInfo;
use crate::i18n::{EN, Lang};
use crate::logs::Category;
use crate::metrics::{RouteLabels, UNMATCHED_ROUTE};
use crate::state::AppState;
use crate::views;

/// Paths that stay available in maintenance mode: tend must still be able to
/// operate the app, probes must still answer, and users can read the status.
fn exempt_from_maintenance(path: &str) -> bool {
    [
        "/ops/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/status",
        "/api/status",
        "/static/",
        "/lang",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

fn speaks_json(path: &str) -> bool {
    path.starts_with("/ops/") || path.starts_with("/api/") || path.starts_with("/help/faq.json")
}

pub fn client_addr(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // The route template, never the raw path: it is a metric label.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let client = client_addr(&req);

    let existing_csrf = auth::cookie_value(req.headers(), auth::CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let new_csrf = existing_csrf.is_none().then(auth::random_token);
    let csrf = existing_csrf
        .clone()
        .or(new_csrf.clone())
        .unwrap_or_default();
    let session_token_hash =
        auth::cookie_value(req.headers(), auth::SESSION_COOKIE).map(auth::sha256_hex);
    let user = match &session_token_hash {
        Some(h) => auth::user_by_session(&state.db, h).await.ok().flatten(),
        None => None,
    };
    let here = match (method == Method::GET, req.uri().path_and_query()) {
        (true, Some(pq)) => pq.as_str().to_string(),
        _ => "/".to_string(),
    };
    let ctx = Ctx {
        user,
        csrf,
        session_token_hash,
        lang: Lang::from_headers(req.headers()),
        here,
    };
    req.extensions_mut().insert(ctx.clone());

    let mut response = match state.maintenance_message() {
        Some(message) if !exempt_from_maintenance(&path) => {
            maintenance_page(&state, &ctx, &message).await
        }
        _ => next.run(req).await,
    };

    let status = response.status();
    let error = response.extensions().get::<ErrorInfo>().cloned();
    if let Some(info) = &error {
        if let Some(detail) = &info.internal_detail {
            state
                .audit(
                    Category::Error,
                    json!({"method": method.as_str(), "path": path, "route": route.as_deref().unwrap_or(UNMATCHED_ROUTE), "status": status.as_u16(), "error": detail}),
                )
                .await;
        }
        if !speaks_json(&path) {
            let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
            let secs = retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            response = html_error(&state, &ctx, status, info, &method, secs).await;
            if let Some(v) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
    }
    if let Some(Ok(v)) = new_csrf
        .map(|token| HeaderValue::from_str(&auth::csrf_cookie(&token, state.config.secure_cookies)))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    if !speaks_json(&path) {
        // Pages are written in the language of the cookie or Accept-Language.
        response.headers_mut().append(
            header::VARY,
            HeaderValue::from_static("Accept-Language, Cookie"),
        );
    }
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
        .headers_mut()
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));

    let elapsed = started.elapsed();
    let labels = RouteLabels::new(&method, route.as_deref(), status.as_u16());
    state.metrics.observe_request(labels.clone(), elapsed);
    state.metrics.in_flight.dec();
    // The query string is left out on purpose: it can carry search terms
    // and, for mistaken clients, credentials.
    state
        .audit(
            Category::Access,
            json!({
                "method": method.as_str(),
                "path": path,
                "route": labels.route,
                "status": status.as_u16(),
                "duration_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
                "user_id": ctx.user.as_ref().map(|u| u.id),
                "client": client,
            }),
        )
        .await;
    response
}

pub async fn chrome_incidents(state: &AppState) -> Vec<(String, String)> {
    crate::incidents::open_names(&state.db)
        .await
        .unwrap_or_default()
}

pub async fn render(state: &AppState, ctx: &Ctx, title: &str, body: maud::Markup) -> Html<String> {
    let incidents = chrome_incidents(state).await;
    let chrome = views::Chrome {
        ctx,
        incidents: &incidents,
    };
    Html(views::page(&chrome, title, body).into_string())
}

async fn maintenance_page(state: &AppState, ctx: &Ctx, message: &str) -> Response {
    let t = ctx.lang.t();
    let body = maud::html! {
        div.maintenance role="status" { p { (message) } }
        p { (t.maintenance_body) }
    };
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        render(state, ctx, t.maintenance_title, body).await,
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
    resp
}

async fn html_error(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    info: &ErrorInfo,
    method: &Method,
    retry_after: Option<u64>,
) -> Response {
    if status == StatusCode::UNAUTHORIZED && method == Method::GET {
        return Redirect::to("/login").into_response();
    }
    let t = ctx.lang.t();
    let title = match status {
        StatusCode::NOT_FOUND => t.err_not_found_title,
        StatusCode::FORBIDDEN => t.err_forbidden_title,
        StatusCode::UNAUTHORIZED => t.err_sign_in_title,
        StatusCode::TOO_MANY_REQUESTS => t.err_too_many_title,
        StatusCode::UNPROCESSABLE_ENTITY => t.err_check_form_title,
        _ => t.err_generic_title,
    };
    let message = error_message(ctx.lang, info, retry_after);
    let mut resp = (
        status,
        render(state, ctx, title, views::error_body(ctx.lang, &message)).await,
    )
        .into_response();
    resp.extensions_mut().insert(info.clone());
    resp
}

/// The error's message in the page's language. Messages that carry
/// operator-written text (maintenance, unknown conflicts) are shown as given.
fn error_message(lang: Lang, info: &ErrorInfo, retry_after: Option<u64>) -> String {
    let t = lang.t();
    match info.code {
        "bad_input" => {
            let field = info.field.as_deref().unwrap_or("");
            let detail = info
                .message
                .strip_prefix(field)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&info.message);
            lang.field_error(field, detail)
        }
        "rate_limited" => match retry_after {
            Some(secs) => lang.retry_in(secs),
            None => info.message.clone(),
        },
        "csrf" => t.err_csrf.to_string(),
        "forbidden" => t.err_forbidden.to_string(),
        "not_found" => t.err_not_found.to_string(),
        "unauthenticated" => t.err_sign_in.to_string(),
        "internal" => t.err_internal.to_string(),
        "conflict" if info.message == EN.err_inquiry_closed => t.err_inquiry_closed.to_string(),
        _ => info.message.clone(),
    }
}

pub async fn static_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
}

pub async fn static_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/app.js"),
    )
}

pub fn empty(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_default()
}
