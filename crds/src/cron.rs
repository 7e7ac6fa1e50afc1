//! Cron schedules: five fields (`minute hour day-of-month month day-of-week`) or an `@` macro,
//! evaluated in an IANA time zone. Used to validate specs and to compute the next run.
//!
//! Semantics follow Vixie cron: when both day-of-month and day-of-week are restricted, a day
//! matches if either does. Local times skipped by a DST change run at the first instant after
//! the gap; times repeated by a DST change run once (the earlier instant).
//!
//! The grammar is small and exact, and written once, in [`FIELDS`]: [`Schedule::parse`] reads
//! it, and [`schema`] turns the same table into the regular expressions of the CRD's CEL rules,
//! so admission accepts exactly the schedules the parser accepts (a test compares the two on
//! many generated expressions). Fields are separated by spaces; each is a list (`a,b`) of `*`,
//! `?`, a value or a range `a-b` with `a <= b`, each optionally with a step `/n` (`1 <= n <=`
//! the number of values in the field). Values are decimal (leading zeros allowed) or, for month
//! and day-of-week, three-letter English names in any ASCII case. Quartz extensions (`L`, `W`,
//! `#`) and seconds are not supported.

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

/// The macros, and the five-field schedules they stand for.
pub const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// One of the five fields of a schedule.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    /// Names of the values from `min` on (`jan` is 1, `sun` is 0).
    pub names: &'static [&'static str],
    /// How the values read in a message, e.g. `0-7 or sun-sat (0 and 7 are Sunday)`.
    pub values: &'static str,
}

impl Field {
    /// The largest step: one more than the span of the field.
    pub fn max_step(&self) -> u32 {
        self.max - self.min + 1
    }
}

/// The fields, in order.
pub const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        values: "0-59",
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        values: "0-23",
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        values: "1-31",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTH_NAMES,
        values: "1-12 or jan-dec",
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DAY_NAMES,
        values: "0-7 or sun-sat (0 and 7 are Sunday)",
    },
];

/// Longest schedule text the CRD accepts.
pub const MAX_LENGTH: u32 = 100;

/// The shape every five-field schedule has: five space-separated words.
const FIVE_WORDS: &str = "^[^ ]+( +[^ ]+){4}$";

/// The CRD schema of a cron schedule: a string with one CEL rule for the overall shape (or the
/// macro) and one per field, each with a message naming the field and its values.
pub fn schema() -> schemars::Schema {
    let macros = MACROS
        .iter()
        .map(|(name, _)| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rules = vec![serde_json::json!({
        "rule": format!("self.startsWith('@') ? self in [{macros}] : self.matches('{FIVE_WORDS}')"),
        "message": "must be five fields separated by spaces (minute hour day-of-month month day-of-week) or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    })];
    for (i, field) in FIELDS.iter().enumerate() {
        rules.push(serde_json::json!({
            "rule": format!(
                "self.startsWith('@') || !self.matches('{FIVE_WORDS}') || self.matches('{}')",
                field_in_schedule_regex(i)
            ),
            "message": format!(
                "{} (field {}) must be {}, * or ?, a range a-b with a <= b, or a list of these, each optionally with a step /1-{}",
                field.name,
                i + 1,
                field.values,
                field.max_step()
            ),
        }));
    }
    schemars::json_schema!({
        "type": "string",
        "maxLength": MAX_LENGTH,
        "x-kubernetes-validations": rules,
    })
}

/// A regex matching the whole schedule when field `index` is valid, whatever the others hold.
pub fn field_in_schedule_regex(index: usize) -> String {
    let before = "[^ ]+ +".repeat(index);
    let after = " +[^ ]+".repeat(4 - index);
    format!("^{before}{}{after}$", field_regex(&FIELDS[index]))
}

/// A regex (no anchors) for one field: what [`parse_field`] accepts.
pub fn field_regex(field: &Field) -> String {
    let value = values_regex(field, field.min, field.max);
    // A range's high end is at least its low end: one alternative per low end.
    let ranges = (field.min..=field.max)
        .map(|low| {
            format!(
                "{}-{}",
                values_regex(field, low, low),
                values_regex(field, low, field.max)
            )
        })
        .collect::<Vec<_>>()
        .join("|");
    let steps = number_range_regex(1, field.max_step());
    let part = format!("([*?]|{value}|{ranges})(/0*({steps}))?");
    format!("{part}(,{part})*")
}

/// A regex for the values `low..=high` of a field, as numbers or names (ASCII case-insensitive,
/// spelled out as character classes: `(?i)` would also fold non-ASCII letters such as `ſ`).
fn values_regex(field: &Field, low: u32, high: u32) -> String {
    let mut forms = vec![format!("0*({})", number_range_regex(low, high))];
    for (i, name) in field.names.iter().enumerate() {
        let v = i as u32 + field.min;
        if (low..=high).contains(&v) {
            forms.push(
                name.chars()
                    .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c))
                    .collect(),
            );
        }
    }
    format!("({})", forms.join("|"))
}

/// A regex for the decimal numbers `low..=high` without leading zeros (`[5-9]|[1-2][0-9]`);
/// cron values have at most two digits.
fn number_range_regex(low: u32, high: u32) -> String {
    assert!(
        low <= high && high < 100,
        "cron values have at most two digits"
    );
    let digits = |a: u32, b: u32| {
        if a == b {
            a.to_string()
        } else {
            format!("[{a}-{b}]")
        }
    };
    let mut pieces = Vec::new();
    if low <= 9 {
        pieces.push(digits(low, high.min(9)));
    }
    if high >= 10 {
        let low = low.max(10);
        let (low_tens, high_tens) = (low / 10, high / 10);
        if low_tens == high_tens {
            pieces.push(format!("{low_tens}{}", digits(low % 10, high % 10)));
        } else {
            pieces.push(format!("{low_tens}{}", digits(low % 10, 9)));
            if high_tens > low_tens + 1 {
                pieces.push(format!("{}[0-9]", digits(low_tens + 1, high_tens - 1)));
            }
            pieces.push(format!("{high_tens}{}", digits(0, high % 10)));
        }
    }
    pieces.join("|")
}

impl Schedule {
    /// Parses a cron expression. Errors name the field and the offending text.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        if expression.chars().count() > MAX_LENGTH as usize {
            return Err(format!("longer than {MAX_LENGTH} characters"));
        }
        let expanded = if expression.starts_with('@') {
            MACROS
                .iter()
                .find(|(name, _)| *name == expression)
                .map(|(_, fields)| *fields)
                .ok_or_else(|| {
                    format!(
                        "unknown macro {expression:?} (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
                    )
                })?
        } else {
            expression
        };
        let fields: Vec<&str> = expanded.split(' ').filter(|f| !f.is_empty()).collect();
        if fields.len() != 5 || expanded.starts_with(' ') || expanded.ends_with(' ') {
            return Err(format!(
                "expected 5 fields separated by spaces (minute hour day-of-month month day-of-week), found {} words{}",
                fields.len(),
                if expanded.trim() != expanded {
                    " and leading or trailing spaces"
                } else {
                    ""
                }
            ));
        }
        let [minute, hour, dom, month, dow] = &FIELDS;
        let minutes = parse_field(fields[0], minute)?;
        let hours = parse_field(fields[1], hour)?;
        let days_of_month = parse_field(fields[2], dom)?;
        let months = parse_field(fields[3], month)?;
        let mut days_of_week = parse_field(fields[4], dow)?;
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

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let name = field.name;
    let (min, max) = (field.min, field.max);
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step = number(step).ok_or_else(|| {
                    format!("{name} field {text:?}: step {step:?} is not a number")
                })?;
                if step == 0 || step > field.max_step() {
                    return Err(format!(
                        "{name} field {text:?}: step must be between 1 and {}",
                        field.max_step()
                    ));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (value(low, field, text)?, value(high, field, text)?)
        } else {
            let v = value(range, field, text)?;
            (v, if part.contains('/') { max } else { v })
        };
        if low > high {
            return Err(format!(
                "{name} field {text:?}: range {low}-{high} is backwards"
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

/// A decimal number of ASCII digits (leading zeros allowed; no sign).
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    if significant.len() > 9 {
        return Some(u32::MAX); // out of every range, and no overflow
    }
    Some(significant.parse().unwrap_or(0))
}

fn value(text: &str, field: &Field, whole: &str) -> Result<u32, String> {
    let (name, min, max) = (field.name, field.min, field.max);
    let lower = text.to_ascii_lowercase();
    if let Some(index) = field.names.iter().position(|n| *n == lower) {
        // Names are listed from the field's minimum: month names from 1, day names from 0.
        return Ok(index as u32 + min);
    }
    let v = number(text).ok_or_else(|| {
        format!(
            "{name} field {whole:?}: {text:?} is not a number{}",
            if field.names.is_empty() {
                ""
            } else {
                " or name"
            }
        )
    })?;
    if v < min || v > max {
        return Err(format!(
            "{name} field {whole:?}: {text} is out of range {min}-{max}"
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
            ("*/0 * * * *", "step must be between 1 and 60"),
            ("5-1 * * * *", "backwards"),
            ("* * * *", "expected 5 fields"),
            ("@sometimes", "unknown macro"),
            ("* * L * *", "day-of-month field \"L\""),
            ("* * * * 5#2", "day-of-week field \"5#2\""),
            ("* * * * 5L", "day-of-week field \"5L\""),
            ("*/61 * * * *", "step must be between 1 and 60"),
            ("*/+5 * * * *", "step \"+5\" is not a number"),
            ("+5 * * * *", "\"+5\" is not a number"),
            (" 0 2 * * *", "leading or trailing spaces"),
            ("0\t2 * * *", "found 4 words"),
            ("* * * * sat-sun", "range 6-0 is backwards"),
            (
                &format!("{} * * * *", ["0"; 50].join(",")),
                "longer than 100 characters",
            ),
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

    /// Random expressions near the edges of the grammar: valid and invalid values, names in
    /// any case, Quartz extensions, steps, ranges both ways, odd spacing and field counts.
    fn generated_expressions(count: usize) -> Vec<String> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const ATOMS: &[&str] = &[
            "L", "5L", "1#2", "W", "15W", "", "+5", "x", "-1", "ſun", "ju", "JUNE", "00", "007",
        ];
        const NAMES: &[&str] = &[
            "jan", "Feb", "MAR", "dec", "sun", "Mon", "SAT", "tUe", "sunday",
        ];
        // Mostly numbers around the field's range, so that many expressions are valid.
        let value = |next: &mut dyn FnMut(usize) -> usize, field: usize| -> String {
            let (min, max) = (
                FIELDS[field % 5].min as usize,
                FIELDS[field % 5].max as usize,
            );
            match next(20) {
                0 => ATOMS[next(ATOMS.len())].to_string(),
                1 | 2 => NAMES[next(NAMES.len())].to_string(),
                3 => format!("0{}", next(70)),
                _ => (min + next(max - min + 3)).saturating_sub(1).to_string(),
            }
        };
        let mut out = vec![];
        for _ in 0..count {
            let mut fields = vec![];
            let n_fields = match next(20) {
                0 => 4,
                1 => 6,
                _ => 5,
            };
            for field in 0..n_fields {
                let mut parts = vec![];
                for _ in 0..1 + next(2) {
                    let mut part = match next(9) {
                        0..=2 => "*".to_string(),
                        3 => "?".to_string(),
                        4 | 5 => value(&mut next, field),
                        _ => {
                            let mut ends = [value(&mut next, field), value(&mut next, field)];
                            // Mostly in order, sometimes backwards.
                            if let (Ok(a), Ok(b)) = (ends[0].parse::<u32>(), ends[1].parse::<u32>())
                                && a > b
                                && next(4) != 0
                            {
                                ends.swap(0, 1);
                            }
                            ends.join("-")
                        }
                    };
                    if next(4) == 0 {
                        part = match next(16) {
                            0 => format!("{part}/"),
                            1 => format!("{part}/+{}", next(9)),
                            _ => format!("{part}/{}", next(70)),
                        };
                    }
                    parts.push(part);
                }
                fields.push(parts.join(","));
            }
            let sep = if next(10) == 0 { "  " } else { " " };
            let mut expression = fields.join(sep);
            match next(40) {
                0 => expression = format!(" {expression}"),
                1 => expression.push(' '),
                2 => expression = expression.replacen(' ', "\t", 1),
                3 => expression = MACROS[next(MACROS.len())].0.to_string(),
                4 => expression = "@Daily".to_string(),
                _ => {}
            }
            out.push(expression);
        }
        out
    }

    /// What the CRD's CEL rules decide, evaluated with the same regexes.
    fn admitted(expression: &str) -> bool {
        static FIELD_REGEXES: std::sync::OnceLock<Vec<regex::Regex>> = std::sync::OnceLock::new();
        let fields = FIELD_REGEXES.get_or_init(|| {
            (0..5)
                .map(|i| regex::Regex::new(&field_in_schedule_regex(i)).unwrap())
                .collect()
        });
        let five = regex::Regex::new(FIVE_WORDS).unwrap();
        let shape = if expression.starts_with('@') {
            MACROS.iter().any(|(name, _)| *name == expression)
        } else {
            five.is_match(expression)
        };
        shape
            && (0..5).all(|i| {
                expression.starts_with('@')
                    || !five.is_match(expression)
                    || fields[i].is_match(expression)
            })
    }

    #[test]
    fn admission_rules_accept_exactly_what_the_parser_accepts() {
        let expressions = generated_expressions(4000);
        let valid = expressions
            .iter()
            .filter(|e| Schedule::parse(e).is_ok())
            .count();
        // The generator must exercise both sides.
        assert!(valid > 200 && valid < 3800, "{valid} valid of 4000");
        for expression in expressions.iter().map(String::as_str).chain([
            "0 2 * * *",
            "*/15 9-17 * JAN,jul mon-fri",
            "0 0 * * 7",
            "59 23 31 12 6",
            "0-59/60 0-23/24 1-31/31 1-12/12 0-7/8",
            "00 002 01 1 0",
            "0 2 * * 8",
            "60 * * * *",
            "* * 0 * *",
            "* * * 0 *",
            "0 2 L * *",
            "0 2 * * 5#3",
        ]) {
            let parsed = Schedule::parse(expression);
            assert_eq!(
                admitted(expression),
                parsed.is_ok(),
                "{expression:?}: admission and parser disagree (parser: {parsed:?})"
            );
        }
    }

    /// kube-apiserver estimates a `matches` call at (string length / 10) x (regex length / 4):
    /// with schedules of at most 100 characters, 16 KB of regexes cost about 40 000 per
    /// schedule, far below the 10 000 000 a rule may cost (and the 100 000 000 of a CRD).
    #[test]
    fn every_field_regex_is_small() {
        let total: usize = (0..5).map(|i| field_in_schedule_regex(i).len()).sum();
        assert!(total < 16_000, "the cron rules grew to {total} bytes");
    }
}
