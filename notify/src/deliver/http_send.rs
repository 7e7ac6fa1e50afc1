//! One HTTP attempt: POST the JSON body, classify the answer. Nothing that names the URL leaves
//! this module unredacted.

use std::error::Error as _;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;

use super::pace::parse_retry_after;
use super::{Failure, NotifierConfig, Retry};
use crate::error::ErrorKind;
use crate::http::Https;
use crate::redact::{one_line, redact, truncate_chars};

/// How much of an error response is read (and at most 200 characters of it are kept).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

pub(crate) async fn post_json(
    client: &Client<Https, Full<Bytes>>,
    uri: http::Uri,
    body: Bytes,
    config: &NotifierConfig,
    secrets: &[&str],
) -> Result<(), Failure> {
    let request = Request::post(uri)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(USER_AGENT, config.user_agent.as_str())
        .body(Full::new(body))
        .map_err(|e| Failure {
            kind: ErrorKind::InvalidDestination,
            detail: redact(&format!("cannot build the request: {e}"), secrets),
            retry: Retry::No,
        })?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| transport_failure(&e, secrets))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read (a bounded part of) the body either way, so the connection can be reused.
        let text = match Limited::new(response.into_body(), ERROR_BODY_LIMIT)
            .collect()
            .await
        {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        classify(status, retry_after, &text, secrets)
    };
    match tokio::time::timeout(config.request_timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure {
            kind: ErrorKind::Timeout,
            detail: format!(
                "no response within {} ms",
                config.request_timeout.as_millis()
            ),
            retry: Retry::Yes,
        }),
    }
}

/// The outcome of an answered request.
fn classify(
    status: StatusCode,
    retry_after: Option<std::time::Duration>,
    body: &str,
    secrets: &[&str],
) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let snippet = truncate_chars(&one_line(body.trim()), 200);
    let detail = if snippet.is_empty() {
        format!("the server answered HTTP {status}")
    } else {
        redact(
            &format!("the server answered HTTP {status}: {snippet}"),
            secrets,
        )
    };
    let retry_later = retry_after.map_or(Retry::Yes, Retry::After);
    let (kind, retry) = match status.as_u16() {
        429 => (ErrorKind::RateLimited, retry_later),
        408 => (ErrorKind::Timeout, Retry::Yes),
        500..=599 => (ErrorKind::ServerError, retry_later),
        300..=399 => (ErrorKind::Rejected, Retry::No),
        _ => (ErrorKind::Rejected, Retry::No),
    };
    let detail = if status.is_redirection() {
        format!("{detail} (redirects are not followed)")
    } else {
        detail
    };
    Err(Failure {
        kind,
        detail,
        retry,
    })
}

/// A request that got no answer: TLS failures are permanent, the rest may pass.
fn transport_failure(e: &hyper_util::client::legacy::Error, secrets: &[&str]) -> Failure {
    let mut chain = vec![e.to_string()];
    let mut kind = ErrorKind::ConnectFailed;
    let mut source = e.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        if cause.is::<rustls::Error>() {
            kind = ErrorKind::TlsFailed;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                kind = ErrorKind::TlsFailed;
            } else if io.kind() == std::io::ErrorKind::TimedOut && kind != ErrorKind::TlsFailed {
                kind = ErrorKind::Timeout;
            }
        }
        source = cause.source();
    }
    chain.dedup();
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    Failure {
        kind,
        detail: redact(&format!("{what}: {}", chain.join(": ")), secrets),
        retry: if kind == ErrorKind::TlsFailed {
            Retry::No
        } else {
            Retry::Yes
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn statuses_are_classified() {
        let ok = classify(StatusCode::OK, None, "ok", &[]);
        assert!(ok.is_ok());
        let f = classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            "",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            (f.kind, f.retry),
            (ErrorKind::RateLimited, Retry::After(Duration::from_secs(3)))
        );
        let f = classify(StatusCode::SERVICE_UNAVAILABLE, None, "", &[]).unwrap_err();
        assert_eq!((f.kind, f.retry), (ErrorKind::ServerError, Retry::Yes));
        let f = classify(StatusCode::REQUEST_TIMEOUT, None, "", &[]).unwrap_err();
        assert_eq!((f.kind, f.retry), (ErrorKind::Timeout, Retry::Yes));
        let f = classify(StatusCode::BAD_REQUEST, None, "invalid_payload", &[]).unwrap_err();
        assert_eq!((f.kind, f.retry), (ErrorKind::Rejected, Retry::No));
        assert_eq!(
            f.detail,
            "the server answered HTTP 400 Bad Request: invalid_payload"
        );
        let f = classify(StatusCode::FOUND, None, "", &[]).unwrap_err();
        assert_eq!((f.kind, f.retry), (ErrorKind::Rejected, Retry::No));
        let f = classify(
            StatusCode::NOT_FOUND,
            None,
            "no such hook /services/SECRET",
            &["/services/SECRET"],
        )
        .unwrap_err();
        assert!(!f.detail.contains("SECRET"), "{}", f.detail);
    }
}
