//! fieldbook: the crop-records web app that tend operates.
//!
//! [`app`] builds the whole HTTP surface from an [`AppState`]; the binary
//! (`src/main.rs`) only parses configuration and serves it.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod i18n;
pub mod incidents;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod photos;
pub mod restore;
pub mod routes;
pub mod selfcheck;
pub mod settings;
pub mod state;
pub mod support;
pub mod views;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};

pub use config::AppConfig;
pub use db::Db;
pub use state::AppState;

use routes::{
    account, admin, admin_audit, farm, feedback, health, help, inquiries, ops, record_edit,
    records, status,
};

pub fn app(state: AppState) -> Router {
    let upload_limit = state.config.upload_limit_bytes + 64 * 1024;
    let ops_api = Router::new()
        .route(
            "/support-content",
            get(ops::get_support_content).put(ops::put_support_content),
        )
        .route(
            "/incidents",
            get(ops::list_incidents).post(ops::create_incident),
        )
        .route("/incidents/{id}/updates", post(ops::update_incident))
        .route("/inquiries/stats", get(ops::inquiry_stats))
        .route("/logs/export", get(ops::export_logs))
        .route("/logs/prune", post(ops::prune_logs))
        .route(
            "/snapshot",
            // Databases can be gigabytes; the restore streams to disk.
            get(ops::snapshot).merge(put(ops::restore_snapshot).layer(DefaultBodyLimit::disable())),
        )
        .route(
            "/maintenance",
            get(ops::get_maintenance).put(ops::set_maintenance),
        )
        .route("/settings", get(ops::get_settings).put(ops::put_settings))
        .route("/verify", get(ops::verify))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ops::require_token,
        ));

    Router::new()
        .route("/", get(account::home))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/lang", get(account::set_language))
        .route("/fields", get(farm::page).post(farm::create_field))
        .route("/crops", post(farm::create_crop))
        .route(
            "/records",
            get(records::list)
                .post(record_edit::create)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/records/{id}/delete", post(record_edit::delete))
        .route("/photos/{id}", get(record_edit::photo))
        .route("/nps", post(record_edit::nps))
        .route("/help", get(help::page))
        .route("/help/faq.json", get(help::faq_json))
        .route("/support", get(inquiries::page))
        .route(
            "/support/inquiries",
            get(inquiries::mine)
                .post(inquiries::create)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/support/inquiries/{id}", get(inquiries::detail))
        .route("/support/inquiries/{id}/reply", post(inquiries::reply))
        .route(
            "/support/inquiries/{id}/screenshot",
            get(inquiries::screenshot),
        )
        .route(
            "/feedback",
            get(feedback::feedback_page).post(feedback::feedback),
        )
        .route("/status", get(status::page))
        .route("/api/status/summary.json", get(status::summary))
        .route("/admin", get(admin::dashboard))
        .route("/admin/inquiries", get(admin::inquiries))
        .route("/admin/inquiries/{id}", get(admin::inquiry))
        .route("/admin/inquiries/{id}/reply", post(admin::reply))
        .route("/admin/inquiries/{id}/assign", post(admin::assign))
        .route("/admin/inquiries/{id}/close", post(admin::close))
        .route("/admin/feedback", get(admin_audit::feedback))
        .route("/admin/users", get(admin_audit::users))
        .route("/admin/users/{id}/role", post(admin_audit::set_role))
        .route("/admin/logs", get(admin_audit::logs))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/static/app.css", get(web::static_css))
        .route("/static/app.js", get(web::static_js))
        .nest("/ops/v1", ops_api)
        .fallback(|| async { error::AppError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::request_context,
        ))
        .with_state(state)
}
