//! Cron schedules: five fields (`minute hour day-of-month month day-of-week`) or an `@` macro,
//! evaluated in an IANA time zone. Used to validate specs and to compute the next run.
//!
//! Semantics follow Vixie cron: when both day-of-month and day-of-week are restricted, a day
//! matches if either does. Local times skipped by a DST change run at the first instant after
//! the gap; times repeated by a DST change run once (the earlier instant).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed cron schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
}

const MONTH_NAMES: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Schedule {
    /// Parses a cron expression. Errors name the field and the offending text.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let expanded = match expression.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown macro {other:?} (use @yearly, @monthly, @weekly, @daily or @hourly)"
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let minutes = parse_field(fields[0], "minute", 0, 59, &[])?;
        let hours = parse_field(fields[1], "hour", 0, 23, &[])?;
        let days_of_month = parse_field(fields[2], "day-of-month", 1, 31, &[])?;
        let months = parse_field(fields[3], "month", 1, 12, MONTH_NAMES)?;
        let mut days_of_week = parse_field(fields[4], "day-of-week", 0, 7, DAY_NAMES)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & 0x7f; // 7 is Sunday too
        }
        Ok(Schedule {
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week: days_of_week as u8,
            dom_restricted: !is_wildcard(fields[2]),
            dow_restricted: !is_wildcard(fields[4]),
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first run strictly after `after`, in time zone `tz`. `None` if the schedule never
    /// fires in the next five years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        let mut date = start.date();
        for _ in 0..(366 * 5) {
            if self.day_matches(date) {
                for hour in 0..24i8 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let local =
                            DateTime::from_parts(date, jiff::civil::time(hour, minute, 0, 0));
                        if local < start.with().second(0).subsec_nanosecond(0).build().ok()? {
                            continue;
                        }
                        let instant = tz.to_ambiguous_zoned(local).compatible().ok()?.timestamp();
                        if instant > after {
                            return Some(instant);
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }

    /// The most recent run at or before `at` and strictly after `since`, if any: used to find a
    /// missed run after downtime.
    pub fn last_due(&self, since: Timestamp, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut cursor = since;
        let mut last = None;
        // Bounded walk: a policy missed for longer than this has its deadline long passed.
        for _ in 0..10_000 {
            match self.next_after(cursor, tz) {
                Some(next) if next <= at => {
                    last = Some(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        last
    }
}

fn is_wildcard(field: &str) -> bool {
    field == "*" || field == "?"
}

fn parse_field(field: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| {
                    format!("{name} field {field:?}: step {step:?} is not a number")
                })?;
                if step == 0 {
                    return Err(format!("{name} field {field:?}: step must be at least 1"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (
                value(low, name, field, min, max, names)?,
                value(high, name, field, min, max, names)?,
            )
        } else {
            let v = value(range, name, field, min, max, names)?;
            (v, if part.contains('/') { max } else { v })
        };
        if low > high {
            return Err(format!(
                "{name} field {field:?}: range {low}-{high} is backwards"
            ));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn value(
    text: &str,
    name: &str,
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = names.iter().position(|n| *n == lower) {
        // Names are listed from the field's minimum: month names from 1, day names from 0.
        return Ok(index as u32 + min);
    }
    let v: u32 = text.parse().map_err(|_| {
        format!(
            "{name} field {field:?}: {text:?} is not a number{}",
            if names.is_empty() { "" } else { " or name" }
        )
    })?;
    if v < min || v > max {
        return Err(format!(
            "{name} field {field:?}: {v} is out of range {min}-{max}"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn daily_at_two_runs_next_day_after_two() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        assert_eq!(
            s.next_after(ts("2026-11-28T02:00:00Z"), &TimeZone::UTC),
            Some(ts("2026-11-29T02:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-11-28T01:59:59Z"), &TimeZone::UTC),
            Some(ts("2026-11-28T02:00:00Z"))
        );
    }

    #[test]
    fn schedule_is_read_in_its_time_zone() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        // 02:00 in Tokyo is 17:00 UTC the day before.
        assert_eq!(
            s.next_after(ts("2026-11-28T00:00:00Z"), &tz("Asia/Tokyo")),
            Some(ts("2026-11-28T17:00:00Z"))
        );
    }

    #[test]
    fn steps_lists_ranges_and_names() {
        let s = Schedule::parse("*/15 9-17 * JAN,jul mon-fri").unwrap();
        // 2026-07-03 is a Friday.
        assert_eq!(
            s.next_after(ts("2026-07-03T17:50:00Z"), &TimeZone::UTC),
            Some(ts("2026-07-06T09:00:00Z"))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        let s = Schedule::parse("0 0 1 * sun").unwrap();
        // 2026-11-29 is a Sunday: it matches before December 1st.
        assert_eq!(
            s.next_after(ts("2026-11-28T00:00:00Z"), &TimeZone::UTC),
            Some(ts("2026-11-29T00:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_runs_after_the_gap_once() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        // 2026-03-08 02:30 does not exist in New York; runs at 03:30 EDT = 07:30Z.
        let next = s
            .next_after(ts("2026-03-08T05:00:00Z"), &tz("America/New_York"))
            .unwrap();
        assert_eq!(next, ts("2026-03-08T07:30:00Z"));
    }

    #[test]
    fn impossible_date_never_fires() {
        assert_eq!(
            Schedule::parse("0 0 31 2 *")
                .unwrap()
                .next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
    }

    #[test]
    fn macros_expand() {
        assert_eq!(
            Schedule::parse("@daily").unwrap(),
            Schedule::parse("0 0 * * *").unwrap()
        );
        assert_eq!(
            Schedule::parse("0 0 * * 7").unwrap(),
            Schedule::parse("0 0 * * 0").unwrap()
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (expr, needle) in [
            ("61 * * * *", "minute field \"61\": 61 is out of range 0-59"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "backwards"),
            ("* * * *", "expected 5 fields"),
            ("@sometimes", "unknown macro"),
            ("* * L * *", "day-of-month field \"L\""),
        ] {
            let err = Schedule::parse(expr).unwrap_err();
            assert!(err.contains(needle), "{expr}: {err}");
        }
    }

    #[test]
    fn last_due_finds_the_missed_run() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let due = s.last_due(
            ts("2026-11-26T03:00:00Z"),
            ts("2026-11-28T02:30:00Z"),
            &TimeZone::UTC,
        );
        assert_eq!(due, Some(ts("2026-11-28T02:00:00Z")));
    }
}
