//! Small value types shared by every kind: durations, cron schedules, time zones, e-mail
//! addresses, references.
//!
//! They are transparent strings on the wire so that a value the apiserver let through (or an
//! object written by a newer tend) never breaks deserialization in the controller's watcher.
//! Their schemas carry everything that can be checked without the cluster — the duration
//! grammar and bounds, cron fields and ranges, the IANA zone names, the e-mail shape — as
//! patterns and CEL rules, so `kubectl apply` refuses a bad value naming the field; and
//! [`crate::validation`] checks the same things with the same definitions, for objects that
//! bypassed admission.

use std::borrow::Cow;
use std::sync::OnceLock;

use kube::core::{Message, Rule};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Go-style duration (`0`, `90s`, `15m`, `1h30m`, `2160h`, `1.5h`, `250ms`): what
/// `time.ParseDuration` and CEL's `duration()` both read. `µs` is left out: CEL
/// implementations disagree on it, and no tend duration is that short.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$";

/// The longest duration tend accepts anywhere (100 years).
pub const DURATION_MAX: &str = "876000h";

/// The shortest values duration fields accept, shared by their admission rules
/// ([`duration_rule`]) and [`crate::validation`].
pub mod min_duration {
    /// `for`: zero means "fire at once".
    pub const ZERO: &str = "0s";
    /// Probe timeouts.
    pub const PROBE_TIMEOUT: &str = "100ms";
    pub const SECOND: &str = "1s";
    pub const MINUTE: &str = "1m";
    pub const HOUR: &str = "1h";
}

/// Longest duration text; keeps the CEL cost of the duration rules small and fixed.
const DURATION_MAX_LENGTH: u32 = 64;

/// The CEL rule a duration field carries: at least `min` (a duration literal such as `1s`),
/// at most [`DURATION_MAX`]. It only runs on text that matches [`DURATION_PATTERN`], so a
/// malformed value gets the pattern's error alone. [`crate::validation`] enforces the same
/// bounds from the same `min`.
pub fn duration_rule(min: &str) -> Rule {
    Rule::new(format!(
        "!self.matches('{DURATION_PATTERN}') || (duration(self) >= duration('{min}') && duration(self) <= duration('{DURATION_MAX}'))"
    ))
    .message(Message::Message(format!(
        "must be a duration of at least {min} and at most {DURATION_MAX}"
    )))
}

/// An e-mail address as tend accepts it: a plain `local@domain` with a dotted domain name
/// (`ops@fieldbook.example`), no display name. Deliberately narrower than RFC 5322.
pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9._%+-]+@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// Longest e-mail address (RFC 5321's path limit, minus the angle brackets).
pub const EMAIL_MAX_LENGTH: u32 = 254;

/// Whether `address` is an e-mail address tend accepts (the same test admission runs).
pub fn is_email_address(address: &str) -> bool {
    static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
    address.len() <= EMAIL_MAX_LENGTH as usize
        && EMAIL
            .get_or_init(|| regex::Regex::new(EMAIL_PATTERN).expect("EMAIL_PATTERN compiles"))
            .is_match(address)
}

/// Schema of a list of e-mail addresses: each item is checked by CEL, so the error names it
/// (`spec.routes[0].email.to[1]`).
pub fn email_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 50,
        "items": {
            "type": "string",
            "maxLength": EMAIL_MAX_LENGTH,
            "x-kubernetes-validations": [{
                "rule": format!("self.matches('{EMAIL_PATTERN}')"),
                "message": "must be an e-mail address such as ops@example.com",
            }],
        },
    })
}

/// The IANA time zone names tend accepts: those of the time zone database bundled with this
/// build (jiff's copy of tzdb, so the list is the same on every machine), exactly as spelled
/// there, without the `Factory` placeholder.
pub fn time_zone_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = jiff::tz::TimeZoneDatabase::bundled()
            .available()
            .map(|name| name.as_str().to_string())
            .filter(|name| name != "Factory")
            .collect();
        names.sort();
        names
    })
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $schema_name:literal, $schema:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($schema_name)
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

string_newtype!(
    /// A duration such as `30s`, `15m`, `1h30m` or `2160h` (Go `time.ParseDuration` syntax).
    Duration,
    "Duration",
    json_schema!({
        "type": "string",
        "maxLength": DURATION_MAX_LENGTH,
        "pattern": DURATION_PATTERN,
    })
);

string_newtype!(
    /// A cron schedule: five fields (`minute hour day-of-month month day-of-week`) or a macro
    /// such as `@daily`.
    CronSchedule,
    "CronSchedule",
    crate::cron::schema()
);

string_newtype!(
    /// An IANA time zone name such as `UTC` or `Asia/Tokyo`.
    TimeZone,
    "TimeZone",
    {
        let names = time_zone_names()
            .iter()
            .map(|name| format!("'{name}'"))
            .collect::<Vec<_>>()
            .join(", ");
        json_schema!({
            "type": "string",
            "maxLength": 64,
            "x-kubernetes-validations": [{
                "rule": format!("self in [{names}]"),
                "message": "must be an IANA time zone name such as UTC or Asia/Tokyo (exact spelling, see tzdb)",
            }],
        })
    }
);

impl TimeZone {
    /// Whether this is one of [`time_zone_names`] (the test admission runs).
    pub fn is_known(&self) -> bool {
        time_zone_names()
            .binary_search_by(|name| name.as_str().cmp(self.as_str()))
            .is_ok()
    }

    /// The zone from the bundled database, so that every zone admission accepts resolves
    /// even where the system's tzdata is older or missing.
    pub fn resolve(&self) -> Result<jiff::tz::TimeZone, String> {
        if !self.is_known() {
            return Err(format!("unknown time zone {:?}", self.as_str()));
        }
        jiff::tz::TimeZoneDatabase::bundled()
            .get(self.as_str())
            .map_err(|e| e.to_string())
    }
}

impl Duration {
    /// Parses the Go duration syntax into a std duration.
    pub fn parse(&self) -> Result<std::time::Duration, String> {
        parse_duration(&self.0)
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self("UTC".into())
    }
}

/// Parses the duration grammar of [`DURATION_PATTERN`] (`1h30m`, `250ms`, `1.5h`, `0`), up to
/// [`DURATION_MAX`]. Negative durations are refused: every duration in the tend API is a length
/// of time. Accepts exactly what the schema's pattern accepts.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.chars().count() > DURATION_MAX_LENGTH as usize {
        return Err(format!("longer than {DURATION_MAX_LENGTH} characters"));
    }
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let whole = digits(rest);
        if whole == 0 {
            return Err(format!("{text:?}: expected a number before the unit"));
        }
        let mut number_len = whole;
        if let Some(fraction) = rest[whole..].strip_prefix('.') {
            let fraction_len = digits(fraction);
            if fraction_len == 0 {
                return Err(format!("{text:?}: expected digits after the decimal point"));
            }
            number_len += 1 + fraction_len;
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("{text:?}: {:?} is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let (seconds_per_unit, unit_len) = if rest.starts_with("ns") {
            (1e-9, 2)
        } else if rest.starts_with("us") {
            (1e-6, 2)
        } else if rest.starts_with("ms") {
            (1e-3, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return Err(format!(
                "{text:?}: missing or unknown unit (use ns, us, ms, s, m or h)"
            ));
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 876_000.0 * 3600.0 {
        return Err(format!(
            "{text:?}: duration is out of range (at most {DURATION_MAX})"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// Formats a duration the way Go prints it, rounded to whole seconds (`26h3m0s`), for status.
pub fn format_duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A reference to one key of a Secret in the object's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A reference to a whole Secret in the object's namespace; the keys it must hold are listed
/// where the reference is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret, in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A reference to another tend object in the same namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the referenced object, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How tend reaches the application it operates (fieldbook's ops API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppRef {
    /// Base URL of the application's ops API, e.g. `http://fieldbook.fieldbook.svc:8080/ops/v1`.
    #[schemars(length(min = 1), regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// The Secret key holding the ops API bearer token.
    pub token_secret_ref: SecretKeyRef,
}

/// Severity of an alert, incident or audit finding.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Service down or data at risk; pages people.
    Critical,
    /// Degraded; needs attention during working hours.
    #[default]
    Warning,
    /// For the record; no one is paged.
    Info,
    /// A value this version of tend does not know (written by a newer version).
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// Where a notification goes. Exactly one of `email`, `slack`, `teams` or `webhook` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, kube::KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.email) ? 1 : 0) + (has(self.slack) ? 1 : 0) + (has(self.teams) ? 1 : 0) + (has(self.webhook) ? 1 : 0) == 1"
).message("exactly one of email, slack, teams or webhook must be set"))]
pub struct NotificationRoute {
    /// A name for this route, shown in status and events (e.g. `ops-mail`, `oncall-slack`).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Send e-mail through an SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailRoute>,
    /// Post to a Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<WebhookRoute>,
    /// Post to a Microsoft Teams incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<WebhookRoute>,
    /// POST a JSON document to any HTTP endpoint: the Alertmanager v4 webhook body, so existing
    /// receivers can read it, plus tend's own fields under `tend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookRoute>,
    /// Language of the messages: `ja` (default) or `en`.
    #[serde(default)]
    pub language: Language,
    /// Also tell this route when the condition resolves. Defaults to `true`.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
}

fn default_true() -> bool {
    true
}

/// Language of messages to people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Language {
    /// Japanese.
    #[default]
    Ja,
    /// English.
    En,
    /// A value this version of tend does not know (written by a newer version).
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// E-mail delivery settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailRoute {
    /// Recipient addresses, e.g. `ops@example.com` (no display names).
    #[schemars(schema_with = "email_list_schema")]
    pub to: Vec<String>,
    /// Secret with the SMTP settings: keys `host`, `port`, `from`, and optionally `username`,
    /// `password` and `tls` (`none`, `starttls` or `tls`).
    pub smtp_secret_ref: SecretRef,
}

/// A webhook whose URL is a secret (Slack and Teams URLs carry their credential).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRoute {
    /// The Secret key holding the webhook URL.
    pub url_secret_ref: SecretKeyRef,
}

/// An S3 (or S3-compatible) location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Key prefix inside the bucket, without a leading slash (e.g. `tend/fieldbook`).
    #[serde(default)]
    pub prefix: String,
    /// Endpoint URL for S3-compatible stores (MinIO, Garage, Ceph...). Empty means AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Region, e.g. `ap-northeast-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Use path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores.
    #[serde(default)]
    pub force_path_style: bool,
    /// Secret with the keys `accessKeyId` and `secretAccessKey` (and optionally
    /// `sessionToken`). When absent, the controller's ambient credentials are used (IRSA etc.).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// A directory on a filesystem the controller (or app) can reach, e.g. a mounted volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilesystemLocation {
    /// Absolute path of the directory.
    #[schemars(length(min = 1), regex(pattern = r"^/"))]
    pub path: String,
}

/// Where data is stored: exactly one of `s3` or `filesystem`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, kube::KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.s3) != has(self.filesystem)")
    .message("exactly one of s3 or filesystem must be set"))]
pub struct StorageLocation {
    /// An S3 bucket and prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Location>,
    /// A local or mounted directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemLocation>,
}

/// Notice shown on the application's public status page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicNotice {
    /// Short title users see, e.g. `Photo uploads are failing`.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// What users should know, in plain words.
    #[schemars(length(max = 4000))]
    #[serde(default)]
    pub message: String,
    /// Impact shown on the status page.
    #[serde(default)]
    pub impact: NoticeImpact,
    /// Affected parts of the service (e.g. `photos`, `sign-in`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub components: Vec<String>,
}

/// Impact levels of a public notice (Statuspage's vocabulary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NoticeImpact {
    None,
    #[default]
    Minor,
    Major,
    Critical,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// A recovery time for status: tenths of a second below a minute (small restores finish in
/// less than one), else `1m12s`. Both forms parse as durations.
pub fn format_rto(rto: std::time::Duration) -> String {
    if rto < std::time::Duration::from_secs(60) {
        format!("{:.1}s", rto.as_secs_f64())
    } else {
        format_duration(rto)
    }
}

#[cfg(test)]
mod rto_tests {
    use super::*;

    #[test]
    fn rtos_keep_tenths_below_a_minute_and_parse_back() {
        for (rto, text) in [
            (std::time::Duration::from_millis(430), "0.4s"),
            (std::time::Duration::from_millis(12_340), "12.3s"),
            (std::time::Duration::from_secs(72), "1m12s"),
        ] {
            assert_eq!(format_rto(rto), text);
            let parsed = parse_duration(text).unwrap();
            assert!(
                parsed.abs_diff(rto) < std::time::Duration::from_millis(100),
                "{text}"
            );
        }
    }
}
