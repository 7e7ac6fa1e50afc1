//! Validation the reconcilers run on every spec, on top of admission. Admission (schema + CEL)
//! catches shapes; this catches meaning that schemas cannot express — cron field ranges, time
//! zones that exist, durations that parse and are positive, values written by a newer tend — and
//! it protects clusters where admission was bypassed. Errors name the field like the apiserver.

use std::fmt;

use crate::alert_rule::AlertRuleSpec;
use crate::backup_policy::BackupPolicySpec;
use crate::cron::Schedule;
use crate::escalation_policy::EscalationPolicySpec;
use crate::incident_record::{IncidentRecordSpec, IncidentState};
use crate::log_policy::{AuditRuleType, LogPolicySpec};
use crate::restore_request::{CheckType, Component, RestoreCheck, RestoreMode, RestoreRequestSpec};
use crate::support_channel::SupportChannelSpec;
use crate::types::{CronSchedule, Duration, NotificationRoute, Severity, TimeZone};

/// One problem with a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.drill.schedule`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins errors into one message for a condition.
pub fn summarize(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Implemented by every spec.
pub trait Validate {
    /// All problems found; empty when valid.
    fn validate(&self) -> Vec<FieldError>;
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn cron(&mut self, field: &str, schedule: &CronSchedule) {
        if let Err(e) = Schedule::parse(schedule.as_str()) {
            self.push(
                field,
                format!("invalid cron schedule {:?}: {e}", schedule.as_str()),
            );
        }
    }

    /// The same list admission checks ([`crate::types::time_zone_names`]), spelled exactly.
    fn time_zone(&mut self, field: &str, tz: &TimeZone) {
        if !tz.is_known() {
            self.push(
                field,
                format!(
                    "unknown time zone {:?} (use an IANA name such as Asia/Tokyo, spelled exactly)",
                    tz.as_str()
                ),
            );
        }
    }

    /// A duration that must parse and be at least `min`, a duration literal shared with the
    /// field's admission rule ([`crate::types::duration_rule`]).
    fn duration(&mut self, field: &str, d: &Duration, min: &str) {
        let least = crate::types::parse_duration(min).expect("minimums are valid durations");
        match d.parse() {
            Err(e) => self.push(field, format!("invalid duration: {e}")),
            Ok(v) if v < least => self.push(
                field,
                format!("{:?} is too short: must be at least {min}", d.as_str()),
            ),
            Ok(_) => {}
        }
    }

    /// Recipient addresses, with the test admission runs on each, and the language.
    fn email_routes(&mut self, field: &str, routes: &[NotificationRoute]) {
        for (i, route) in routes.iter().enumerate() {
            self.known(
                &format!("{field}[{i}].language"),
                route.language,
                crate::types::Language::Unknown,
            );
            let Some(email) = &route.email else { continue };
            for (j, address) in email.to.iter().enumerate() {
                if !crate::types::is_email_address(address) {
                    self.push(
                        format!("{field}[{i}].email.to[{j}]"),
                        format!("{address:?} is not an e-mail address such as ops@example.com"),
                    );
                }
            }
        }
    }

    fn known<T: PartialEq>(&mut self, field: &str, value: T, unknown: T) {
        if value == unknown {
            self.push(field, "unsupported value (written by a newer tend?)");
        }
    }
}

use crate::types::min_duration::{HOUR, MINUTE, PROBE_TIMEOUT, SECOND, ZERO};

impl Validate for BackupPolicySpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.cron("spec.schedule", &self.schedule);
        e.time_zone("spec.timeZone", &self.time_zone);
        e.duration("spec.startingDeadline", &self.starting_deadline, SECOND);
        if let Some(objectives) = &self.objectives {
            if let Some(rpo) = &objectives.rpo {
                e.duration("spec.objectives.rpo", rpo, MINUTE);
            }
            if let Some(rto) = &objectives.rto {
                e.duration("spec.objectives.rto", rto, SECOND);
            }
        }
        if let Some(drill) = &self.drill {
            e.cron("spec.drill.schedule", &drill.schedule);
            if drill.scratch.postgres.is_none()
                && drill.scratch.filesystem.is_none()
                && drill.scratch.s3.is_none()
            {
                e.push(
                    "spec.drill.scratch",
                    "a drill needs a scratch target (postgres, filesystem or s3)",
                );
            }
            if self.encryption.identity_secret_ref.is_none() {
                e.push(
                    "spec.encryption.identitySecretRef",
                    "drills need the age identity to decrypt backups",
                );
            }
            check_list(&mut e, "spec.drill.checks", &drill.checks, true);
            let database_is_postgres = self
                .targets
                .database
                .as_ref()
                .is_some_and(|d| d.postgres.is_some());
            if database_is_postgres && drill.scratch.postgres.is_none() {
                e.push(
                    "spec.drill.scratch.postgres",
                    "the database target is PostgreSQL: a drill needs a scratch PostgreSQL server",
                );
            }
        }
        e.0
    }
}

/// Restore checks: known types, a query for `sql`, and no `appVerify` on scratch targets (the
/// app serves production, not the scratch copy, so its report would say nothing about it).
fn check_list(e: &mut Errors, field: &str, checks: &[RestoreCheck], scratch: bool) {
    for (i, check) in checks.iter().enumerate() {
        let at = format!("{field}[{i}]");
        e.known(&format!("{at}.type"), check.type_, CheckType::Unknown);
        if check.type_ == CheckType::Sql
            && check.query.as_deref().is_none_or(|q| q.trim().is_empty())
        {
            e.push(format!("{at}.query"), "a sql check needs a query");
        }
        if check.type_ == CheckType::AppVerify && scratch {
            e.push(
                format!("{at}.type"),
                "appVerify checks the running app, which does not serve a scratch restore; use it with inPlace restores",
            );
        }
    }
}

impl Validate for RestoreRequestSpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.known("spec.target.mode", self.target.mode, RestoreMode::Unknown);
        if self.target.mode == RestoreMode::InPlace && !self.target.confirm {
            e.push(
                "spec.target.confirm",
                "an inPlace restore overwrites production data: set confirm: true",
            );
        }
        if self.target.mode == RestoreMode::Scratch && self.target.scratch.is_none() {
            e.push(
                "spec.target.scratch",
                "a scratch restore needs target.scratch",
            );
        }
        for (i, c) in self.components.iter().enumerate() {
            e.known(&format!("spec.components[{i}]"), *c, Component::Unknown);
        }
        let scratch = self.target.mode == RestoreMode::Scratch;
        check_list(&mut e, "spec.checks", &self.checks, scratch);
        let selectors = usize::from(self.restore_point.id.is_some())
            + usize::from(self.restore_point.latest == Some(true))
            + usize::from(self.restore_point.before.is_some());
        if selectors != 1 {
            e.push(
                "spec.restorePoint",
                "set exactly one of id, latest: true, or before",
            );
        }
        e.0
    }
}

impl Validate for AlertRuleSpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.duration("spec.interval", &self.interval, SECOND);
        e.duration("spec.for", &self.for_, ZERO);
        e.duration("spec.repeatInterval", &self.repeat_interval, MINUTE);
        e.email_routes("spec.routes", &self.routes);
        e.known("spec.severity", self.severity, Severity::Unknown);
        e.known(
            "spec.condition.operator",
            self.condition.operator,
            crate::alert_rule::Operator::Unknown,
        );
        if !self.condition.threshold.is_finite() {
            e.push("spec.condition.threshold", "must be a finite number");
        }
        let s = &self.source;
        let sources = [
            s.http.is_some(),
            s.metrics.is_some(),
            s.prometheus.is_some(),
            s.postgres.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            e.push(
                "spec.source",
                "exactly one of http, metrics, prometheus or postgres must be set",
            );
        }
        if let Some(http) = &s.http {
            e.duration("spec.source.http.timeout", &http.timeout, PROBE_TIMEOUT);
        }
        if let Some(pg) = &s.postgres {
            e.duration("spec.source.postgres.timeout", &pg.timeout, PROBE_TIMEOUT);
        }
        if let Some(metrics) = &s.metrics {
            if let Some(window) = &metrics.window {
                e.duration("spec.source.metrics.window", window, SECOND);
            }
            use crate::alert_rule::Aggregation::*;
            if matches!(metrics.aggregation, Rate | Increase | ErrorRatio | Quantile)
                && metrics.window.is_none()
            {
                e.push(
                    "spec.source.metrics.window",
                    "this aggregation needs a window",
                );
            }
            if metrics.aggregation == Quantile && metrics.quantile.is_none() {
                e.push(
                    "spec.source.metrics.quantile",
                    "the quantile aggregation needs quantile (e.g. 0.99)",
                );
            }
            e.known(
                "spec.source.metrics.aggregation",
                metrics.aggregation,
                Unknown,
            );
        }
        for (i, silence) in self.silences.iter().enumerate() {
            let field = format!("spec.silences[{i}]");
            let forms = [
                silence.from.is_some() || silence.until.is_some(),
                silence.schedule.is_some() || silence.duration.is_some(),
                silence.during_in_place_restores_of.is_some(),
            ];
            if forms.iter().filter(|set| **set).count() != 1 {
                e.push(
                    &field,
                    "set exactly one of from+until, schedule+duration or duringInPlaceRestoresOf",
                );
            }
            match (&silence.from, &silence.until) {
                (Some(from), Some(until)) if from.0 >= until.0 => {
                    e.push(format!("{field}.until"), "must be after from")
                }
                (Some(_), None) => e.push(format!("{field}.until"), "from needs until"),
                (None, Some(_)) => e.push(format!("{field}.from"), "until needs from"),
                _ => {}
            }
            match (&silence.schedule, &silence.duration) {
                (Some(schedule), Some(duration)) => {
                    e.cron(&format!("{field}.schedule"), schedule);
                    e.duration(&format!("{field}.duration"), duration, MINUTE);
                }
                (Some(_), None) => e.push(format!("{field}.duration"), "schedule needs duration"),
                (None, Some(_)) => e.push(format!("{field}.schedule"), "duration needs schedule"),
                _ => {}
            }
            e.time_zone(&format!("{field}.timeZone"), &silence.time_zone);
        }
        if let Some(restore) = self.remediation.as_ref().and_then(|r| r.restore.as_ref()) {
            for err in restore.validate() {
                e.push(
                    err.field.replacen("spec", "spec.remediation.restore", 1),
                    err.message,
                );
            }
        }
        e.0
    }
}

impl Validate for EscalationPolicySpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if self.levels.is_empty() {
            e.push("spec.levels", "at least one level is required");
        }
        for (i, level) in self.levels.iter().enumerate() {
            e.duration(
                &format!("spec.levels[{i}].ackTimeout"),
                &level.ack_timeout,
                MINUTE,
            );
            e.email_routes(&format!("spec.levels[{i}].targets"), &level.targets);
            if level.targets.is_empty() {
                e.push(
                    format!("spec.levels[{i}].targets"),
                    "at least one target is required",
                );
            }
        }
        e.0
    }
}

impl Validate for IncidentRecordSpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.known("spec.state", self.state, IncidentState::Unknown);
        e.known("spec.severity", self.severity, Severity::Unknown);
        if self.state != IncidentState::Open && self.acknowledged_by.is_none() {
            e.push(
                "spec.acknowledgedBy",
                "required once the incident is acknowledged, resolved or closed",
            );
        }
        if self.state >= IncidentState::Resolved && self.resolution.is_none() {
            e.push(
                "spec.resolution",
                "a resolved or closed incident needs a resolution",
            );
        }
        if self.state == IncidentState::Closed {
            for missing in self.postmortem_gaps() {
                e.push(
                    format!("spec.postmortem.{missing}"),
                    "required to close the incident",
                );
            }
        }
        e.0
    }
}

impl IncidentRecordSpec {
    /// Postmortem fields still empty (all of them when there is no postmortem).
    pub fn postmortem_gaps(&self) -> Vec<&'static str> {
        let Some(pm) = &self.postmortem else {
            return vec!["summary", "impact", "rootCause", "actionItems", "lessons"];
        };
        let mut gaps = Vec::new();
        for (name, empty) in [
            ("summary", pm.summary.trim().is_empty()),
            ("impact", pm.impact.trim().is_empty()),
            ("rootCause", pm.root_cause.trim().is_empty()),
            ("actionItems", pm.action_items.is_empty()),
            ("lessons", pm.lessons.trim().is_empty()),
        ] {
            if empty {
                gaps.push(name);
            }
        }
        gaps
    }
}

impl Validate for SupportChannelSpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.duration(
            "spec.inquiryForm.firstResponseSla",
            &self.inquiry_form.first_response_sla,
            MINUTE,
        );
        e.duration("spec.nps.interval", &self.nps.interval, HOUR);
        e.email_routes("spec.inquiryForm.routes", &self.inquiry_form.routes);
        e.known(
            "spec.helpButton.position",
            self.help_button.position,
            crate::support_channel::ButtonPosition::Unknown,
        );
        if self.inquiry_form.categories.is_empty() {
            e.push(
                "spec.inquiryForm.categories",
                "at least one category is required",
            );
        }
        e.0
    }
}

impl Validate for LogPolicySpec {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.cron("spec.schedule", &self.schedule);
        e.time_zone("spec.timeZone", &self.time_zone);
        let c = &self.categories;
        for (name, category) in [
            ("access", &c.access),
            ("operation", &c.operation),
            ("error", &c.error),
            ("auth", &c.auth),
        ] {
            e.duration(
                &format!("spec.categories.{name}.retention"),
                &category.retention,
                HOUR,
            );
            if category.archive && self.archive.is_none() {
                e.push(
                    "spec.archive",
                    format!("required because categories.{name}.archive is true"),
                );
            }
        }
        if let Some(audit) = &self.audit {
            e.cron("spec.audit.schedule", &audit.schedule);
            for (i, rule) in audit.rules.iter().enumerate() {
                e.known(
                    &format!("spec.audit.rules[{i}].type"),
                    rule.type_,
                    AuditRuleType::Unknown,
                );
                e.duration(
                    &format!("spec.audit.rules[{i}].window"),
                    &rule.window,
                    MINUTE,
                );
                e.email_routes(&format!("spec.audit.rules[{i}].routes"), &rule.routes);
                if rule.type_ == AuditRuleType::OffHoursAdminAccess && rule.office_hours.is_none() {
                    e.push(
                        format!("spec.audit.rules[{i}].officeHours"),
                        "offHoursAdminAccess needs officeHours",
                    );
                }
            }
        }
        e.0
    }
}
