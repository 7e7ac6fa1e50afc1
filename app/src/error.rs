//! The one error type of every handler. It renders as JSON (the ops API and
//! `/api` speak JSON); the web router turns it into an HTML page through
//! [`ErrorInfo`], and internal errors are written to the error log once, by
//! the access-log middleware, never by the handler.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{field}: {message}")]
    BadInput {
        field: Cow<'static, str>,
        message: String,
    },
    #[error("sign in required")]
    Unauthenticated,
    #[error("missing or invalid bearer token")]
    BadToken,
    #[error("you do not have permission for this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("the form expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// What a failed response carries for the middleware: the status, a stable
/// code, the user-facing message, and (only for internal errors) the detail
/// that goes to the error log.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
    pub message: String,
    #[serde(skip)]
    pub internal_detail: Option<String>,
}

impl AppError {
    pub fn field(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> AppError {
        AppError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthenticated | AppError::BadToken => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput { .. } => "bad_input",
            AppError::Unauthenticated => "unauthenticated",
            AppError::BadToken => "bad_token",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Csrf => "csrf",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Conflict(_) => "conflict",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let info = ErrorInfo {
            code: self.code(),
            field: match &self {
                AppError::BadInput { field, .. } => Some(field.clone()),
                _ => None,
            },
            message: self.to_string(),
            internal_detail: match &self {
                AppError::Internal(e) => Some(crate::db::redact(&format!("{e:#}"))),
                _ => None,
            },
        };
        let mut response = (self.status(), Json(&info)).into_response();
        match &self {
            AppError::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            AppError::BadToken => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"fieldbook-ops\""),
                );
            }
            _ => {}
        }
        response.extensions_mut().insert(info);
        response
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> AppError {
        AppError::Internal(e.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> AppError {
        AppError::Internal(e)
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        AppError::Internal(e.into())
    }
}

pub type AppResult<T> = Result<T, AppError>;
