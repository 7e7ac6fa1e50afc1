//! The I/O of alert evaluation: an HTTP probe and a metrics scrape. Errors name the endpoint
//! without its credentials or query string (both may carry secrets).

use std::time::{Duration, Instant};

use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use tend_crds::alert_rule::{HttpMeasure, HttpMethod, HttpProbe, MetricsScrape};

use super::evaluate::aggregate;
use super::textformat;
use crate::error::StepError;

use crate::http::Https;

/// Limit for a scraped page: a misbehaving endpoint cannot make the controller buffer
/// without bound.
const PAGE_LIMIT: usize = 16 * 1024 * 1024;
/// A metrics scrape has no timeout field; this bounds it.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client shared by all rules.
#[derive(Clone)]
pub struct Prober {
    client: Client<Https, Empty<Bytes>>,
}

impl Prober {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            client: crate::http::client(None)?,
        })
    }

    /// Probes `probe.url` and returns the measured value. Failures to get an answer count as
    /// down (`up` 0, `statusCode` 0); for `latencySeconds` a timeout counts as the timeout,
    /// other failures are an error (no latency was measured).
    pub async fn http(&self, probe: &HttpProbe) -> Result<f64, StepError> {
        let timeout = probe
            .timeout
            .parse()
            .map_err(|e| StepError::Setup(format!("spec.source.http.timeout: {e}")))?;
        let method = match probe.method {
            HttpMethod::Head => Method::HEAD,
            _ => Method::GET,
        };
        let started = Instant::now();
        let answer = self.request(&probe.url, method, timeout).await;
        let elapsed = started.elapsed();
        match (probe.measure, answer) {
            (HttpMeasure::Up, Ok(status)) => {
                let ok = if probe.expect_status.is_empty() {
                    (200..300).contains(&status)
                } else {
                    probe.expect_status.contains(&status)
                };
                Ok(if ok { 1.0 } else { 0.0 })
            }
            (HttpMeasure::Up | HttpMeasure::StatusCode, Err(_)) => Ok(0.0),
            (HttpMeasure::StatusCode, Ok(status)) => Ok(f64::from(status)),
            (HttpMeasure::LatencySeconds, Ok(_)) => Ok(elapsed.as_secs_f64()),
            (HttpMeasure::Unknown, Ok(_)) => Err(StepError::Setup(
                "spec.source.http.measure is unknown".into(),
            )),
            (HttpMeasure::LatencySeconds, Err(Failure::TimedOut)) => Ok(timeout.as_secs_f64()),
            (_, Err(Failure::Other(message))) => Err(StepError::Probe(message)),
            (_, Err(Failure::TimedOut)) => Err(StepError::Probe(format!(
                "{}: no answer within {:?}",
                redact(&probe.url),
                timeout
            ))),
        }
    }

    /// Scrapes the page and aggregates the selected series.
    pub async fn metrics(&self, scrape: &MetricsScrape) -> Result<f64, StepError> {
        self.scrape(scrape).await.map_err(StepError::Probe)
    }

    async fn scrape(&self, scrape: &MetricsScrape) -> Result<f64, String> {
        let samples = self.samples(&scrape.url).await?;
        aggregate(
            &samples,
            &scrape.metric,
            &scrape.selector,
            scrape.aggregation,
        )
        .map_err(|e| format!("{}: {e}", redact(&scrape.url)))
    }

    /// Scrapes and parses a metrics page; errors name the redacted URL.
    pub async fn samples(&self, url: &str) -> Result<Vec<textformat::Sample>, String> {
        let shown = redact(url);
        let (status, bytes) = self.get(url, SCRAPE_TIMEOUT, PAGE_LIMIT).await?;
        if !(200..300).contains(&status) {
            return Err(format!("{shown} answered {status}"));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| format!("{shown}: the page is not UTF-8 text ({e})"))?;
        textformat::parse(text).map_err(|e| format!("{shown}: {e}"))
    }

    /// GETs `url` and reads the body (at most `limit` bytes), whatever the status; the whole
    /// exchange is bounded by `timeout`. Errors name the redacted URL.
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<(u16, Bytes), String> {
        let shown = redact(url);
        let started = Instant::now();
        let (parts, body) = self
            .send(url, Method::GET, timeout)
            .await
            .map_err(|f| match f {
                Failure::TimedOut => format!("{shown}: no answer within {timeout:?}"),
                Failure::Other(m) => m,
            })?;
        let left = timeout.saturating_sub(started.elapsed());
        let read = tokio::time::timeout(left, http_body_util::Limited::new(body, limit).collect())
            .await
            .map_err(|_| format!("{shown}: the answer did not arrive within {timeout:?}"))?
            .map_err(|e| format!("{shown}: reading the answer: {e}"))?;
        Ok((parts.status.as_u16(), read.to_bytes()))
    }

    async fn request(&self, url: &str, method: Method, timeout: Duration) -> Result<u16, Failure> {
        let (parts, _body) = self.send(url, method, timeout).await?;
        Ok(parts.status.as_u16())
    }

    async fn send(
        &self,
        url: &str,
        method: Method,
        timeout: Duration,
    ) -> Result<(http::response::Parts, hyper::body::Incoming), Failure> {
        let shown = redact(url);
        let (uri, authorization) = split_credentials(url)
            .map_err(|e| Failure::Other(format!("{shown} is not a usable URL: {e}")))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, "tend-alert");
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let request = builder
            .body(Empty::new())
            .map_err(|e| Failure::Other(format!("{shown}: bad request: {e}")))?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| Failure::TimedOut)?
            .map_err(|e| Failure::Other(format!("{shown}: cannot reach it: {}", chain(&e))))?;
        Ok(response.into_parts())
    }
}

enum Failure {
    TimedOut,
    Other(String),
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The URL as it may be shown: no `user:password@`, no query string or fragment.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let query = if url.contains('?') { "?…" } else { "" };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}{query}"),
        None => format!("{host}{path}{query}"),
    }
}

/// The URL without userinfo, and a Basic `Authorization` value when it had some.
fn split_credentials(url: &str) -> Result<(Uri, Option<String>), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("no scheme".into());
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host),
        None => (None, authority),
    };
    let uri: Uri = format!("{scheme}://{host}{tail}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let authorization = credentials.map(|c| format!("Basic {}", base64(&percent_decode(c))));
    Ok((uri, authorization))
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials_and_query() {
        assert_eq!(
            redact("https://user:s3cret@example.test:8443/metrics?token=abc"),
            "https://***@example.test:8443/metrics?…"
        );
        assert_eq!(redact("http://host/path"), "http://host/path");
        assert_eq!(redact("http://host"), "http://host");
        assert!(!redact("http://a:p%40ss@h/x#frag").contains("p%40ss"));
    }

    #[test]
    fn credentials_become_basic_auth() {
        let (uri, auth) = split_credentials("http://aladdin:open%20sesame@h:1/m?x=1").unwrap();
        assert_eq!(uri.to_string(), "http://h:1/m?x=1");
        assert_eq!(auth.as_deref(), Some("Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        let (_, auth) = split_credentials("http://h/m").unwrap();
        assert_eq!(auth, None);
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        // A stray '%' at the end is kept, not a panic.
        assert_eq!(percent_decode("a%"), b"a%");
        assert_eq!(percent_decode("a%4"), b"a%4");
        assert_eq!(percent_decode("%zz"), b"%zz");
    }
}
