//! The [`Notifier`]: renders for the destination, then delivers with a timeout per attempt,
//! retries with backoff on what may pass (connect errors, timeouts, 5xx, 429 — honouring its
//! `Retry-After`), and a minimum interval between sends to one destination.

mod http_send;
mod pace;
mod smtp;

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use tokio::time::Instant;

use crate::destination::{Destination, validate_url};
use crate::error::{ErrorKind, NotifyError};
use crate::http::{Https, http_client};
use crate::model::{Lang, Notification};
use crate::render::{WebhookContext, render_slack, render_teams, render_webhook};
use pace::{RateLimiter, backoff};

/// Minimum time between two sends to the same destination, per kind of destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinIntervals {
    pub email: Duration,
    pub slack: Duration,
    pub teams: Duration,
    pub webhook: Duration,
}

impl Default for MinIntervals {
    /// Slack allows about one message a second per webhook and Teams about four requests a
    /// second; webhooks and e-mail are not paced.
    fn default() -> Self {
        MinIntervals {
            email: Duration::ZERO,
            slack: Duration::from_secs(1),
            teams: Duration::from_secs(1),
            webhook: Duration::ZERO,
        }
    }
}

/// How the notifier behaves; `Default` suits production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifierConfig {
    /// Giving up on opening a TCP connection (HTTP).
    pub connect_timeout: Duration,
    /// One attempt, end to end: an HTTP request and its response, or a whole SMTP transaction.
    pub request_timeout: Duration,
    /// Attempts per send, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt, up to `backoff_cap`, with jitter.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured; a longer one waits this long.
    pub max_retry_after: Duration,
    pub min_interval: MinIntervals,
    /// The receiver name and external URL in the Alertmanager-shaped webhook body.
    pub webhook: WebhookContext,
    pub user_agent: String,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            min_interval: MinIntervals::default(),
            webhook: WebhookContext::default(),
            user_agent: concat!("tend-notify/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A successful delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// From the call to the accepted attempt, waits included.
    pub latency: Duration,
}

/// One per process; `Send + Sync`, share it through an `Arc`.
pub struct Notifier {
    config: NotifierConfig,
    http: Client<Https, Full<Bytes>>,
    limiter: RateLimiter,
    /// Keys the rate limiter by a hash of the destination, random per process.
    hasher: RandomState,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    /// Secret-free (redacted where it was made).
    pub detail: String,
    pub retry: Retry,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    No,
    Yes,
    After(Duration),
}

impl Notifier {
    pub fn new(config: NotifierConfig) -> Result<Self, NotifyError> {
        let http = http_client(Some(config.connect_timeout)).map_err(|e| {
            NotifyError::new(ErrorKind::Internal, 0, crate::redact::redact(&e, &[]))
        })?;
        Ok(Notifier {
            config,
            http,
            limiter: RateLimiter::default(),
            hasher: RandomState::new(),
        })
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.config
    }

    /// Renders `n` in `lang` for `dest` and delivers it. A destination that cannot work
    /// (malformed URL, unknown scheme, no recipients …) fails with `InvalidDestination` before
    /// any network attempt.
    pub async fn send(
        &self,
        dest: &Destination,
        lang: Lang,
        n: &Notification,
    ) -> Result<Delivery, NotifyError> {
        dest.validate()?;
        let started = Instant::now();
        let key = self.hasher.hash_one(dest.rate_key());
        let interval = match dest {
            Destination::Email { .. } => self.config.min_interval.email,
            Destination::Slack { .. } => self.config.min_interval.slack,
            Destination::Teams { .. } => self.config.min_interval.teams,
            Destination::Webhook { .. } => self.config.min_interval.webhook,
        };
        let secrets = dest.secrets();
        match dest {
            Destination::Email { smtp, to } => {
                let prepared =
                    smtp::prepare(smtp, to, lang, n, &secrets, self.config.request_timeout)?;
                self.with_retries(dest, key, interval, started, || {
                    smtp::send_once(&prepared, self.config.request_timeout, &secrets)
                })
                .await
            }
            Destination::Slack { .. } | Destination::Teams { .. } | Destination::Webhook { .. } => {
                let uri = validate_url(dest.kind(), dest.url().unwrap_or_default())?;
                let body = match dest {
                    Destination::Slack { .. } => render_slack(lang, n),
                    Destination::Teams { .. } => render_teams(lang, n),
                    _ => render_webhook(lang, n, &self.config.webhook),
                };
                let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| {
                    NotifyError::new(ErrorKind::Internal, 0, format!("cannot encode JSON: {e}"))
                })?);
                self.with_retries(dest, key, interval, started, || {
                    http_send::post_json(
                        &self.http,
                        uri.clone(),
                        body.clone(),
                        &self.config,
                        &secrets,
                    )
                })
                .await
            }
        }
    }

    async fn with_retries<F, Fut>(
        &self,
        dest: &Destination,
        key: u64,
        interval: Duration,
        started: Instant,
        mut attempt_once: F,
    ) -> Result<Delivery, NotifyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let max_attempts = self.config.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.wait_turn(key, interval).await;
            let failure = match attempt_once().await {
                Ok(()) => {
                    tracing::debug!(destination = %dest.describe(), attempt, "notification delivered");
                    return Ok(Delivery {
                        attempts: attempt,
                        latency: started.elapsed(),
                    });
                }
                Err(failure) => failure,
            };
            let delay = match failure.retry {
                _ if attempt >= max_attempts => None,
                Retry::No => None,
                Retry::Yes => Some(backoff(
                    attempt,
                    self.config.backoff_base,
                    self.config.backoff_cap,
                )),
                Retry::After(after) => {
                    let after = after.min(self.config.max_retry_after);
                    self.limiter.hold(key, Instant::now() + after);
                    Some(after)
                }
            };
            let Some(delay) = delay else {
                return Err(NotifyError::new(failure.kind, attempt, failure.detail));
            };
            tracing::debug!(
                destination = %dest.describe(),
                attempt,
                reason = failure.kind.reason(),
                detail = %failure.detail,
                retry_in_ms = delay.as_millis() as u64,
                "notification attempt failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

impl Destination {
    /// What identifies a destination for pacing (hashed before use).
    fn rate_key(&self) -> (&'static str, String) {
        match self {
            Destination::Email { smtp, .. } => (
                "email",
                format!(
                    "{}\n{}\n{}",
                    smtp.host,
                    smtp.port,
                    smtp.username.as_deref().unwrap_or_default()
                ),
            ),
            Destination::Slack { url }
            | Destination::Teams { url }
            | Destination::Webhook { url } => (self.kind(), url.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Notifier>();
        assert_send_sync::<NotifyError>();
    }
}
