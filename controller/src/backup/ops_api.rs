//! A small client for the application's ops API (fieldbook's `/ops/v1`): a bearer token, JSON
//! or a streamed body. The token never appears in errors or logs.

use std::time::Duration;

use futures::TryStreamExt;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tend_backup::repository::ByteReader;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

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
    client: Client<Https, Full<Bytes>>,
    base: String,
    token: String,
}

/// Limit for JSON answers (settings, verify reports): a misbehaving endpoint cannot make the
/// controller buffer without bound.
const JSON_LIMIT: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to the response headers; a streamed body may then take as long as it needs.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

impl OpsApi {
    pub fn new(endpoint: &str, token: &str) -> Result<Self, OpsApiError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| OpsApiError {
                method: "GET",
                url: endpoint.to_owned(),
                message: format!("cannot load the system's TLS roots: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
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
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(format!("bad request: {e}")))?;
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| fail(format!("no answer within {}s", RESPONSE_TIMEOUT.as_secs())))?
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
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<(ByteReader, http::HeaderMap), OpsApiError> {
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
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, OpsApiError> {
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
    pub async fn put_json(
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
