//! A movable clock for tests that run the controller in-process, and injected times derived
//! from the real clock.
//!
//! The API server stamps `creationTimestamp` with the real time, and the scheduler never runs a
//! slot older than the object, so an injected time must lie after the real now: a test pinned
//! to a calendar date stops working once that date has passed. Every injected time therefore
//! starts from [`next_day_at`] or [`next_weekday_at`], and the year-ahead check in
//! `scripts/test.sh` runs these tests with the process clock shifted to prove it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use tend::context::Clock;

/// A clock that runs with real time plus an offset the test moves with [`TestClock::set`].
#[derive(Clone)]
pub struct TestClock {
    offset_micros: Arc<AtomicI64>,
}

impl TestClock {
    /// A clock that reads `at` now, and the controller's [`Clock`] that follows it.
    pub fn new(at: Timestamp) -> (Self, Clock) {
        let test_clock = TestClock {
            offset_micros: Arc::new(AtomicI64::new(0)),
        };
        test_clock.set(at);
        let offset = test_clock.offset_micros.clone();
        let clock = Clock::from_fn(move || {
            let micros = Timestamp::now().as_microsecond() + offset.load(Ordering::SeqCst);
            Timestamp::from_microsecond(micros).expect("test clock within jiff's range")
        });
        (test_clock, clock)
    }

    /// From now on the clock reads `at` (and runs on from there).
    pub fn set(&self, at: Timestamp) {
        self.offset_micros.store(
            at.as_microsecond() - Timestamp::now().as_microsecond(),
            Ordering::SeqCst,
        );
    }
}

impl TestClock {
    /// Moves the clock `seconds` ahead.
    pub fn advance(&self, seconds: i64) {
        self.offset_micros
            .fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

/// `time` (UTC) on the first day after today (UTC): always in the future, whatever the date.
pub fn next_day_at(time: Time) -> Timestamp {
    let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
    let tomorrow = today.checked_add(1.day()).expect("a representable date");
    tomorrow
        .to_datetime(time)
        .to_zoned(TimeZone::UTC)
        .expect("UTC has no gaps")
        .timestamp()
}

/// `time` (UTC) on the first `weekday` after today (UTC), for tests whose expectations depend
/// on the day of the week (weekly retention, ISO weeks).
pub fn next_weekday_at(weekday: Weekday, time: Time) -> Timestamp {
    let mut day = next_day_at(time);
    while day.to_zoned(TimeZone::UTC).weekday() != weekday {
        day = day.checked_add(24.hours()).expect("a representable date");
    }
    day
}

/// `at` plus `days` whole days.
pub fn days_after(at: Timestamp, days: i64) -> Timestamp {
    at.checked_add((days * 24).hours())
        .expect("a representable date")
}

/// `at` in UTC with a `strftime` format, e.g. `%Y%m%d` for the day in a backup id.
pub fn utc(at: Timestamp, format: &str) -> String {
    at.to_zoned(TimeZone::UTC).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_times_lie_after_now_on_the_asked_weekday() {
        let at = next_weekday_at(Weekday::Tuesday, Time::constant(2, 0, 30, 0));
        assert!(at > Timestamp::now());
        assert!(at <= days_after(Timestamp::now(), 8));
        assert_eq!(at.to_zoned(TimeZone::UTC).weekday(), Weekday::Tuesday);
        assert_eq!(utc(at, "%H:%M:%S"), "02:00:30");
    }

    #[test]
    fn the_clock_moves_where_it_is_set() {
        let target = days_after(Timestamp::now(), 400);
        let (test_clock, clock) = TestClock::new(target);
        assert!((clock.now() - target).get_seconds().abs() < 5);
        test_clock.set(days_after(target, 1));
        assert!((clock.now() - days_after(target, 1)).get_seconds().abs() < 5);
    }
}
