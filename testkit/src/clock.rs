//! A movable clock for tests that run the controller in-process, and injected times derived
//! from the real clock.
//!
//! [`TestClock::new`] and [`TestClock::frozen`] return the clock the test moves and a reader
//! that follows it; the controller's `Clock::from_fn(reader)` turns the reader into the clock
//! it is given (the kit knows nothing of the controller).
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

/// A clock the test moves with [`TestClock::set`]: either running with real time from where it
/// was set ([`TestClock::new`], for durations such as RTOs), or standing still
/// ([`TestClock::frozen`], for exact times such as backup ids).
#[derive(Clone)]
pub struct TestClock {
    /// Running: offset from the real time. Frozen: the time itself.
    micros: Arc<AtomicI64>,
    frozen: bool,
}

/// What reads a [`TestClock`]: the closure a controller clock is made from.
pub trait Reader: Fn() -> Timestamp + Clone + Send + Sync + 'static {}

impl<F: Fn() -> Timestamp + Clone + Send + Sync + 'static> Reader for F {}

impl TestClock {
    /// A clock that reads `at` now and runs on, and the reader that follows it.
    pub fn new(at: Timestamp) -> (Self, impl Reader) {
        Self::start(at, false)
    }

    /// A clock that reads `at` until it is set again, and the reader that follows it.
    pub fn frozen(at: Timestamp) -> (Self, impl Reader) {
        Self::start(at, true)
    }

    fn start(at: Timestamp, frozen: bool) -> (Self, impl Reader) {
        let test_clock = TestClock {
            micros: Arc::new(AtomicI64::new(0)),
            frozen,
        };
        test_clock.set(at);
        let reader = test_clock.clone();
        (test_clock, move || reader.now())
    }

    /// What the clock reads now.
    pub fn now(&self) -> Timestamp {
        let mut at = self.micros.load(Ordering::SeqCst);
        if !self.frozen {
            at += Timestamp::now().as_microsecond();
        }
        Timestamp::from_microsecond(at).expect("test clock within jiff's range")
    }

    /// From now on the clock reads `at` (and, unless frozen, runs on from there).
    pub fn set(&self, at: Timestamp) {
        let value = if self.frozen {
            at.as_microsecond()
        } else {
            at.as_microsecond() - Timestamp::now().as_microsecond()
        };
        self.micros.store(value, Ordering::SeqCst);
    }
}

impl TestClock {
    /// Moves the clock `seconds` ahead.
    pub fn advance(&self, seconds: i64) {
        self.micros.fetch_add(seconds * 1_000_000, Ordering::SeqCst);
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
        let (test_clock, now) = TestClock::new(target);
        assert!((now() - target).get_seconds().abs() < 5);
        test_clock.set(days_after(target, 1));
        assert!((now() - days_after(target, 1)).get_seconds().abs() < 5);

        // A frozen clock keeps microseconds, as the controller's times do.
        let target = Timestamp::from_microsecond(target.as_microsecond()).unwrap();
        let (frozen, now) = TestClock::frozen(target);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(now(), target);
        frozen.advance(60);
        assert_eq!(now(), target + 1.minute());
    }
}
