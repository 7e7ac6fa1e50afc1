//! String formats (`format:`) the apiserver checks for custom resources.
//!
//! Go's `strfmt` registry decides validity in kube-apiserver; these checks follow it closely for
//! the formats CRDs actually use (`date-time`, `date`, `duration`, `byte`, `int32`, `int64`) and
//! loosely for the rest (`uri`, `hostname`, `email`, ...). Unknown formats are accepted, as the
//! apiserver accepts them.

use base64::Engine;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Whether `value` is a valid string of `format`. `None` when the format is not checked.
pub(crate) fn string_is_valid(format: &str, value: &str) -> Option<bool> {
    let valid = match format {
        "date-time" | "datetime" => parse_date_time(value).is_some(),
        "date" => parse_date(value).is_some(),
        "duration" => parse_duration(value).is_some(),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(value)
            .is_ok(),
        "uri" => !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control()),
        "hostname" => is_hostname(value),
        "email" => is_email(value),
        "ipv4" => value.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => value.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(value),
        "uuid" => is_uuid(value),
        _ => return None,
    };
    Some(valid)
}

/// Whether an integer fits `format` (`int32`, `int64`). `None` when the format says nothing.
pub(crate) fn integer_fits(format: &str, value: &serde_json::Number) -> Option<bool> {
    match format {
        "int32" => Some(value.as_i64().is_some_and(|v| i32::try_from(v).is_ok())),
        "int64" => Some(
            value.as_i64().is_some()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.2e18),
        ),
        _ => None,
    }
}

/// Parses the timestamp forms Go's `strfmt.ParseDateTime` accepts: RFC 3339 with any fraction,
/// and the ISO 8601 local-time variants (read as UTC).
pub(crate) fn parse_date_time(value: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return Some(dt);
    }
    let utc = FixedOffset::east_opt(0)?;
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(value, layout) {
            return Some(utc.from_utc_datetime(&naive));
        }
    }
    let reduced = value.strip_suffix('Z')?;
    let naive = NaiveDateTime::parse_from_str(reduced, "%Y-%m-%dT%H:%M").ok()?;
    Some(utc.from_utc_datetime(&naive))
}

/// Parses a full date (`2024-02-29`) to midnight UTC, the value CEL sees for `format: date`.
pub(crate) fn parse_date(value: &str) -> Option<DateTime<FixedOffset>> {
    if value.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    Some(
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?)
            .fixed_offset(),
    )
}

/// Parses a duration the way Go's `strfmt.ParseDuration` does: first Go's own syntax (`1h30m`,
/// `-1.5s`, `300ms`), then a sequence of whole numbers with named units (`3 days`, `1w 2d`).
pub(crate) fn parse_duration(value: &str) -> Option<chrono::Duration> {
    if let Some(d) = parse_go_duration(value) {
        return Some(d);
    }
    let mut rest = value.trim();
    let mut total = chrono::Duration::zero();
    let mut matched = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let amount: i64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = unit_nanos_named(&rest[..unit_len].to_lowercase())?;
        total = total.checked_add(&chrono::Duration::nanoseconds(amount.checked_mul(unit)?))?;
        rest = rest[unit_len..].trim_start();
        matched = true;
    }
    matched.then_some(total)
}

fn unit_nanos_named(unit: &str) -> Option<i64> {
    const SECOND: i64 = 1_000_000_000;
    Some(match unit {
        "ns" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "microsecond" | "microseconds" => 1_000,
        "ms" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * SECOND,
        "d" | "day" | "days" => 86_400 * SECOND,
        "w" | "wk" | "wks" | "week" | "weeks" => 7 * 86_400 * SECOND,
        _ => return None,
    })
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; `0` alone is allowed.
pub(crate) fn parse_go_duration(value: &str) -> Option<chrono::Duration> {
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let amount: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += amount * unit;
        rest = &rest[unit_len..];
    }
    if nanos > 9.2e18 {
        return None;
    }
    let nanos = nanos.round() as i64;
    Some(chrono::Duration::nanoseconds(if negative {
        -nanos
    } else {
        nanos
    }))
}

fn is_hostname(value: &str) -> bool {
    let name = value.strip_suffix('.').unwrap_or(value);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_cidr(value: &str) -> bool {
    let Some((addr, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}
