//! A small client for the application's ops API (fieldbook's `/ops/v1`): a bearer token, JSON
//! or a streamed body. The token never appears in errors or logs.

use std::time::Duration;

use futures::TryStreamExt;
use http::{Method, Request, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use tend_backup::repository::ByteReader;

use crate::http::Https;

/// Why an ops API call failed, in words fit for status (the endpoint, never the token).
#[derive(Debug, thiserror::Error)]
#[error("ops API {method} {url}: {message}")]
pub struct OpsApiError {
    method: &'static str,
    url: String,
    message: String,
}

/// The ops API of one application.
#[derive(Clone)]
pub struct OpsApi {
    client: Client<Https, BoxBody<Bytes, std::io::Error>>,
    base: String,
    token: String,
}

/// Limit for JSON answers (settings, verify reports): a misbehaving endpoint cannot make the
/// controller buffer without bound.
const JSON_LIMIT: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to the response headers; a streamed body may then take as long as it needs.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// An upload (a database snapshot being restored) and the app's work on it.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

impl OpsApi {
    pub fn new(endpoint: &str, token: &str) -> Result<Self, OpsApiError> {
        let client = crate::http::client(Some(CONNECT_TIMEOUT)).map_err(|message| OpsApiError {
            method: "GET",
            url: endpoint.to_owned(),
            message,
        })?;
        Ok(Self {
            client,
            base: endpoint.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<hyper::body::Incoming>, OpsApiError> {
        let content_type = body.as_ref().map(|_| "application/json");
        let body = full(body.unwrap_or_default());
        self.send_body(method, path, content_type, body, RESPONSE_TIMEOUT)
            .await
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
        timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, OpsApiError> {
        let url = self.url(path);
        let method_name = if method == Method::GET { "GET" } else { "PUT" };
        let fail = |message: String| OpsApiError {
            method: method_name,
            url: url.clone(),
            message,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(body)
            .map_err(|e| fail(format!("bad request: {e}")))?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| fail(format!("no answer within {}s", timeout.as_secs())))?
            .map_err(|e| fail(format!("cannot reach it: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = read_limited(response.into_body(), 4096)
            .await
            .ok()
            .and_then(|body| {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            })
            .unwrap_or_default();
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                " (the token in spec.app.tokenSecretRef was refused)"
            }
            _ => "",
        };
        Err(fail(format!(
            "answered {status}{hint}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        )))
    }

    /// GETs `path` and returns the body as a stream (a database snapshot) with the response
    /// headers.
    async fn get_stream(&self, path: &str) -> Result<(ByteReader, http::HeaderMap), OpsApiError> {
        let response = self.send(Method::GET, path, None).await?;
        let (parts, body) = response.into_parts();
        let stream = http_body_util::BodyDataStream::new(body)
            .map_err(|e| std::io::Error::other(e.to_string()));
        Ok((
            Box::pin(tokio_util::io::StreamReader::new(stream)),
            parts.headers,
        ))
    }

    /// GETs `path` as JSON.
    async fn get_json(&self, path: &str) -> Result<serde_json::Value, OpsApiError> {
        let url = self.url(path);
        let response = self.send(Method::GET, path, None).await?;
        let body = read_limited(response.into_body(), JSON_LIMIT)
            .await
            .map_err(|message| OpsApiError {
                method: "GET",
                url: url.clone(),
                message,
            })?;
        serde_json::from_slice(&body).map_err(|e| OpsApiError {
            method: "GET",
            url,
            message: format!("answer is not JSON: {e}"),
        })
    }

    /// PUTs a JSON document and returns the JSON answer.
    async fn put_json(
        &self,
        path: &str,
        document: &serde_json::Value,
    ) -> Result<serde_json::Value, OpsApiError> {
        let url = self.url(path);
        let body = serde_json::to_vec(document).expect("a JSON value serializes");
        let response = self.send(Method::PUT, path, Some(body)).await?;
        let body = read_limited(response.into_body(), JSON_LIMIT)
            .await
            .map_err(|message| OpsApiError {
                method: "PUT",
                url: url.clone(),
                message,
            })?;
        if body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| OpsApiError {
            method: "PUT",
            url,
            message: format!("answer is not JSON: {e}"),
        })
    }
}

impl OpsApi {
    /// PUTs a file as the streamed body (a database snapshot to restore) and returns the JSON
    /// answer. The file is never read into memory whole.
    async fn put_file(
        &self,
        path: &str,
        content_type: &str,
        file: &std::path::Path,
    ) -> Result<serde_json::Value, OpsApiError> {
        let url = self.url(path);
        let fail = |message: String| OpsApiError {
            method: "PUT",
            url: url.clone(),
            message,
        };
        let reader = tokio::fs::File::open(file)
            .await
            .map_err(|e| fail(format!("opening {}: {e}", file.display())))?;
        let stream = tokio_util::io::ReaderStream::new(reader).map_ok(hyper::body::Frame::data);
        let body = StreamBody::new(stream).boxed();
        let response = self
            .send_body(Method::PUT, path, Some(content_type), body, UPLOAD_TIMEOUT)
            .await?;
        let body = read_limited(response.into_body(), JSON_LIMIT)
            .await
            .map_err(&fail)?;
        serde_json::from_slice(&body).map_err(|e| fail(format!("answer is not JSON: {e}")))
    }
}

/// A SQLite snapshot as `GET /snapshot` streams it.
pub struct Snapshot {
    pub body: ByteReader,
    /// Rows per table of this snapshot (`X-Fieldbook-Row-Counts`), empty if the app sent none.
    pub row_counts: std::collections::BTreeMap<String, u64>,
}

/// The typed operations of the ops API (`app/openapi.yaml`): the paths, headers and bodies
/// live here and nowhere else.
impl OpsApi {
    /// `GET /snapshot`: a consistent copy of the app's SQLite database, streamed.
    pub async fn snapshot(&self) -> Result<Snapshot, OpsApiError> {
        let (body, headers) = self.get_stream("snapshot").await?;
        let row_counts = headers
            .get("x-fieldbook-row-counts")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        Ok(Snapshot { body, row_counts })
    }

    /// `PUT /snapshot`: replaces the app's data with a SQLite file (maintenance mode must be
    /// on); returns the rows each table received.
    pub async fn restore_snapshot(
        &self,
        file: &std::path::Path,
    ) -> Result<serde_json::Value, OpsApiError> {
        self.put_file("snapshot", "application/vnd.sqlite3", file)
            .await
    }

    /// `GET /settings`: the operator-managed settings document.
    pub async fn settings(&self) -> Result<serde_json::Value, OpsApiError> {
        self.get_json("settings").await
    }

    /// `PUT /settings`: re-applies a settings document, all or nothing.
    pub async fn put_settings(
        &self,
        document: &serde_json::Value,
    ) -> Result<serde_json::Value, OpsApiError> {
        self.put_json("settings", document).await
    }

    /// `PUT /maintenance`: turns maintenance mode on (with the message users see) or off.
    pub async fn set_maintenance(&self, enabled: bool, message: &str) -> Result<(), OpsApiError> {
        let body = if enabled {
            serde_json::json!({"enabled": true, "message": message})
        } else {
            serde_json::json!({"enabled": false})
        };
        self.put_json("maintenance", &body).await.map(|_| ())
    }

    /// `GET /verify`: the app's integrity self-check, run now.
    pub async fn verify(&self) -> Result<serde_json::Value, OpsApiError> {
        self.get_json("verify").await
    }
}

async fn read_limited(body: hyper::body::Incoming, limit: usize) -> Result<Vec<u8>, String> {
    let limited = http_body_util::Limited::new(body, limit);
    let collected = limited
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(collected.to_bytes().to_vec())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
