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
        "date-time" | "datetime" => is_date_time(value),
        "date" => parse_date(value).is_some(),
        "duration" => parse_duration(value).is_some(),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(value)
            .is_ok(),
        "uri" => is_request_uri(value),
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

/// go-openapi's `IsValueValidAgainstRange`: whether a number (a value, or a schema bound) can be
/// held by the schema's numeric type and format without loss. Integers must fit `int32`,
/// `uint32`, `uint64` or, by default, `int64`; `float` numbers must fit a float32.
pub(crate) fn number_fits(type_name: &str, format: &str, value: &serde_json::Number) -> bool {
    if type_name != "integer" {
        return !matches!(format, "float" | "float32")
            || value
                .as_f64()
                .is_some_and(|f| f.abs() <= f64::from(f32::MAX));
    }
    let whole: Option<i128> = if let Some(i) = value.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = value.as_u64() {
        Some(i128::from(u))
    } else {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1.9e19)
            .map(|f| f as i128)
    };
    let Some(whole) = whole else { return false };
    match format {
        "int32" => i32::try_from(whole).is_ok(),
        "uint32" => u32::try_from(whole).is_ok(),
        "uint64" => u64::try_from(whole).is_ok(),
        _ => i64::try_from(whole).is_ok(),
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
/// `-1.5s`, `300ms`); failing that, every `<digits><optional space><letters>` run in the string
/// whose letters name a unit (`3 days`, `1w 2d`) is summed, and runs with other letters are
/// ignored, as strfmt ignores them. No run with a known unit means no duration.
pub(crate) fn parse_duration(value: &str) -> Option<chrono::Duration> {
    if let Some(d) = parse_go_duration(value) {
        return Some(d);
    }
    let mut total = chrono::Duration::zero();
    let mut matched = false;
    let mut rest = value;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        rest = &rest[start..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let amount = &rest[..digits];
        let after = rest[digits..].trim_start();
        let letters = after
            .find(|c: char| !(c.is_ascii_alphabetic() || c == 'µ'))
            .unwrap_or(after.len());
        if letters > 0 {
            if let Some(unit) = unit_nanos_named(&after[..letters].to_lowercase()) {
                let amount: i64 = amount.parse().ok()?;
                let nanos = amount.checked_mul(unit)?;
                total = total.checked_add(&chrono::Duration::nanoseconds(nanos))?;
                matched = true;
            }
            rest = &after[letters..];
        } else {
            rest = after;
        }
    }
    matched.then_some(total)
}

fn unit_nanos_named(unit: &str) -> Option<i64> {
    const SECOND: i64 = 1_000_000_000;
    Some(match unit {
        "ns" | "nanoseconds" => 1,
        "us" | "microseconds" => 1_000,
        "ms" | "milliseconds" => 1_000_000,
        "s" | "seconds" => SECOND,
        "m" | "minutes" => 60 * SECOND,
        "h" | "hours" => 3_600 * SECOND,
        "d" | "days" => 86_400 * SECOND,
        "w" | "weeks" => 7 * 86_400 * SECOND,
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

/// strfmt's hostname: dot-separated labels of letters, digits, symbols and inner hyphens, each
/// at most 63 bytes, at most 255 in all, no trailing dot; with several labels, the last one is a
/// 2–63 letter top-level domain (so an IP address is not a hostname).
fn is_hostname(value: &str) -> bool {
    if value.is_empty() || value.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = value.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || is_symbol(c))
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    match labels.as_slice() {
        [_single] => true,
        [.., tld] => {
            (2..=63).contains(&tld.chars().count()) && tld.chars().all(char::is_alphabetic)
        }
        [] => false,
    }
}

/// Unicode symbols that strfmt allows in host names (`\p{S}`), approximated by the ASCII and
/// common non-ASCII symbol ranges.
fn is_symbol(c: char) -> bool {
    matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
        || (!c.is_ascii()
            && !c.is_alphanumeric()
            && !c.is_whitespace()
            && !c.is_control()
            && !c.is_ascii_punctuation())
}

/// kube-openapi's `date-time` check: an RFC 3339 full date, `T`, and `hh:mm:ss[.frac]` with a
/// `Z` or `±hh:mm` zone; case-insensitive; hours to 23, minutes and seconds to 59.
fn is_date_time(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let Some((date, time)) = lower.split_once('t') else {
        return false;
    };
    if parse_date(date).is_none() {
        return false;
    }
    let (clock, zone) = match time.strip_suffix('z') {
        Some(clock) => (clock, None),
        None => match time.len().checked_sub(6) {
            Some(at) if time.is_char_boundary(at) => (&time[..at], Some(&time[at..])),
            _ => return false,
        },
    };
    if let Some(zone) = zone {
        let bytes = zone.as_bytes();
        let zone_ok = matches!(bytes[0], b'+' | b'-')
            && bytes[1..3].iter().all(u8::is_ascii_digit)
            && bytes[3] == b':'
            && bytes[4..6].iter().all(u8::is_ascii_digit);
        if !zone_ok {
            return false;
        }
    }
    let (hms, fraction) = match clock.get(8..) {
        Some("") => (clock, None),
        Some(rest) => (&clock[..8], Some(rest)),
        None => return false,
    };
    if let Some(fraction) = fraction {
        // Any one character, then digits: the Go pattern's `.` is not escaped.
        let mut chars = fraction.chars();
        chars.next();
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let two_digits = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 3
        && parts.iter().all(two_digits)
        && parts[0] <= "23"
        && parts[1] <= "59"
        && parts[2] <= "59"
}

/// Go's `url.ParseRequestURI`, loosely: an absolute URI (`scheme:...`) or an absolute path, no
/// control characters, and no spaces in the host.
fn is_request_uri(value: &str) -> bool {
    if value.chars().any(char::is_control) {
        return false;
    }
    if value.starts_with('/') {
        return true;
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest
        .strip_prefix("//")
        .map(|authority| authority.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    scheme_ok && !host.contains(' ')
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

#[cfg(test)]
mod tests {
    use super::string_is_valid;

    fn valid(format: &str, value: &str) -> bool {
        string_is_valid(format, value).expect("format is checked")
    }

    #[test]
    fn date_time_needs_seconds_and_a_zone_like_kube_openapi() {
        assert!(valid("date-time", "2026-11-28T12:00:00Z"));
        assert!(valid("date-time", "2026-11-28t12:00:00.123z"));
        assert!(valid("date-time", "2026-11-28T12:00:00.5+02:00"));
        assert!(!valid("date-time", "2026-11-28T12:00:00"));
        assert!(!valid("date-time", "2026-11-28T12:00Z"));
        assert!(!valid("date-time", "2026-11-28T24:00:00Z"));
        assert!(!valid("date-time", "2026-02-30T12:00:00Z"));
    }

    #[test]
    fn duration_accepts_go_syntax_and_strfmt_unit_words() {
        assert!(valid("duration", "1h30m"));
        assert!(valid("duration", "-1.5s"));
        assert!(valid("duration", "3 days"));
        assert!(valid("duration", "1w2d"));
        assert!(!valid("duration", "1 hour"));
        assert!(!valid("duration", "soon"));
        assert!(!valid("duration", ""));
    }

    #[test]
    fn hostname_needs_a_letter_tld_when_dotted() {
        assert!(valid("hostname", "localhost"));
        assert!(valid("hostname", "db.internal"));
        assert!(!valid("hostname", "10.0.0.1"));
        assert!(!valid("hostname", "bad-.example.test"));
        assert!(!valid("hostname", "example.test."));
    }

    #[test]
    fn uri_must_be_absolute_or_an_absolute_path() {
        assert!(valid("uri", "https://example.test/a?b=c"));
        assert!(valid("uri", "/healthz"));
        assert!(valid("uri", "mailto:ops@example.test"));
        assert!(!valid("uri", "example.test"));
        assert!(!valid("uri", "https://exa mple.test/"));
    }
}
