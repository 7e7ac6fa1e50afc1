//! Pacing: the per-destination minimum interval between sends (Slack allows about one message
//! a second per webhook), and the backoff between attempts.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The earliest next send per destination, keyed by a hash of the destination (never the URL
/// itself, which is a credential).
#[derive(Default)]
pub(crate) struct RateLimiter {
    next: Mutex<HashMap<u64, Instant>>,
}

impl RateLimiter {
    /// Waits until this destination may be sent to, and books the slot after it.
    pub async fn wait_turn(&self, key: u64, interval: Duration) {
        if interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if next.len() > 4096 {
                next.retain(|_, at| *at > now);
            }
            let slot = next
                .get(&key)
                .copied()
                .filter(|at| *at > now)
                .unwrap_or(now);
            next.insert(key, slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds every send to this destination back until `until` (after a 429's Retry-After).
    pub fn hold(&self, key: u64, until: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = next.entry(key).or_insert(until);
        if *at < until {
            *at = until;
        }
    }
}

/// Exponential backoff with jitter: `base · 2^(attempt−1)`, capped, then scaled by a random
/// factor in [0.5, 1) so that many senders do not retry in step.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(cap);
    let random = RandomState::new().hash_one(Instant::now()) % 1000;
    capped.mul_f64(0.5 + random as f64 / 2000.0)
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date (a date in the past is zero).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(1, base, cap);
            assert!(
                first >= Duration::from_millis(50) && first < base,
                "{first:?}"
            );
            let third = backoff(3, base, cap);
            assert!(third >= Duration::from_millis(200) && third < Duration::from_millis(400));
            let late = backoff(30, base, cap);
            assert!(late >= Duration::from_millis(500) && late < cap);
        }
    }

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn one_destination_is_spaced_others_are_not() {
        let limiter = RateLimiter::default();
        let started = Instant::now();
        limiter.wait_turn(1, Duration::from_millis(300)).await;
        limiter.wait_turn(2, Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        limiter.wait_turn(1, Duration::from_millis(300)).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
