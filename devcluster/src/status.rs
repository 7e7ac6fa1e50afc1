//! API errors, rendered as the `metav1.Status` bodies a real API server returns.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// A complete Status body made elsewhere (admission's 422), sent as is.
    pub body: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            body: None,
        }
    }

    pub fn from_status(body: Value) -> Self {
        let code = body.get("code").and_then(Value::as_u64).unwrap_or(422) as u16;
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        ApiError {
            code,
            reason: "Invalid",
            message,
            details: None,
            body: Some(body),
        }
    }

    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualify(resource, group);
        ApiError::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualify(resource, group);
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    pub fn conflict(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualify(resource, group);
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn invalid(
        kind: &str,
        group: &str,
        name: &str,
        causes: Vec<(String, String, String)>,
    ) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|(_, field, msg)| format!("{field}: {msg}"))
            .collect();
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = format!(
            "{qualified_kind} \"{name}\" is invalid: {}",
            join_causes(&summary)
        );
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|(reason, field, message)| json!({"reason": reason, "message": message, "field": field}))
            .collect();
        ApiError::new(422, "Invalid", message)
            .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn to_status(&self) -> Value {
        if let Some(b) = &self.body {
            return b.clone();
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

fn join_causes(parts: &[String]) -> String {
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

fn qualify(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_status();
        let mut resp = (code, body.to_string()).into_response();
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// The `metav1.Status` for a successful delete of an object that is already gone.
pub fn success(name: &str, group: &str, kind: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    })
}
