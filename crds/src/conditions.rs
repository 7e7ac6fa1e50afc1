//! kstatus conditions shared by every kind: the condition types, their stable reasons, and
//! helpers to set them without losing `lastTransitionTime` when nothing changed.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Condition types. `Ready`, `Reconciling` and `Stalled` follow kstatus; the rest are
/// kind-specific.
pub mod types {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    /// BackupPolicy: the newest restore point is younger than `objectives.rpo`.
    pub const RPO_MET: &str = "RPOMet";
    /// BackupPolicy: the last drill passed.
    pub const DRILL_PASSED: &str = "DrillPassed";
    /// BackupPolicy: the last drill's measured RTO is within `objectives.rto`.
    pub const RTO_MET: &str = "RTOMet";
    /// SupportChannel: the content is published to the app.
    pub const PUBLISHED: &str = "Published";
    /// IncidentRecord: the postmortem is complete.
    pub const POSTMORTEM_COMPLETE: &str = "PostmortemComplete";
}

/// Reasons: CamelCase, stable, machine-readable. Messages carry the human detail.
pub mod reasons {
    /// Everything the object declares is valid and its references resolve.
    pub const VALID: &str = "Valid";
    /// The spec is invalid in a way admission could not catch (e.g. cron field ranges).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A referenced Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A referenced Secret exists but lacks a key the spec names.
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    /// A referenced tend object (EscalationPolicy, BackupPolicy, AlertRule) does not exist.
    pub const REFERENCE_NOT_FOUND: &str = "ReferenceNotFound";
    /// The controller is checking the object after a spec change.
    pub const PROGRESSING: &str = "Progressing";
    /// The spec is valid but the engine that acts on it is not part of this build yet.
    pub const ENGINE_NOT_IMPLEMENTED: &str = "EngineNotImplemented";
    /// A transient error (API unreachable...); tend retries with backoff.
    pub const TRANSIENT_ERROR: &str = "TransientError";
    /// The object is suspended by its spec.
    pub const SUSPENDED: &str = "Suspended";
    /// Not enough data yet to judge (e.g. no backup has run).
    pub const NO_DATA: &str = "NoData";
    /// The controller was handed an older copy of the object than the API server holds; it
    /// wrote nothing and looks again (never written to status; named for logs).
    pub const STALE_READ: &str = "StaleRead";
    /// The object is being deleted (`deletionTimestamp` set): nothing new starts.
    pub const DELETING: &str = "Deleting";
}

/// Builds a condition stamped with `now`.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: jiff::Timestamp,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation,
        last_transition_time: Time(now),
    }
}

/// Inserts or replaces the condition of the same type. `lastTransitionTime` is kept when the
/// status did not change, as kstatus and `kubectl wait` expect.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
        }
        None => conditions.push(new),
    }
}

/// Removes the condition of the given type, if present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Finds the condition of the given type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition exists with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}
