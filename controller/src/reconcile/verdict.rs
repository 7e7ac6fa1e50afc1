//! What a kind's own step concludes ([`Verdict`]) and the Events it asks for ([`Note`]).

use std::time::Duration;

use tend_crds::conditions::reasons;

/// What a kind's own step concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `Ready` status.
    pub ready: bool,
    /// Stable CamelCase reason.
    pub reason: &'static str,
    /// Human message.
    pub message: String,
    /// When to look again even if nothing changes (schedules, timeouts).
    pub requeue_after: Option<Duration>,
    /// Events about what this step did (a backup started, failed...). When there are any,
    /// they replace the generic Event on a `Ready` transition.
    pub notes: Vec<Note>,
    /// The step found that the object it was given is older than the API server's (a lagging
    /// watch or a stale list): nothing is written and the object is reconciled again soon.
    pub stale: bool,
    /// Work toward the object's purpose is in progress (kstatus `Reconciling=True`, with the
    /// verdict's reason and message); `Ready` is False meanwhile.
    pub reconciling: bool,
    /// The object's purpose failed for good and only a change can help (kstatus
    /// `Stalled=True`): a failed one-shot restore.
    pub stalled: bool,
}

impl Verdict {
    pub fn new(ready: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready,
            reason,
            message: message.into(),
            requeue_after: None,
            notes: Vec::new(),
            stale: false,
            reconciling: false,
            stalled: false,
        }
    }

    /// Work in progress: `Ready=False` and `Reconciling=True` with this reason and message.
    pub fn reconciling(reason: &'static str, message: impl Into<String>) -> Self {
        let mut verdict = Self::new(false, reason, message);
        verdict.reconciling = true;
        verdict
    }

    /// Failed for good: `Ready=False` and `Stalled=True` with this reason and message.
    pub fn stalled(reason: &'static str, message: impl Into<String>) -> Self {
        let mut verdict = Self::new(false, reason, message);
        verdict.stalled = true;
        verdict
    }

    /// The spec is valid and its references resolve, but `what` is not part of this build: never
    /// a fake success (`Ready=False`, reason `EngineNotImplemented`, not `Stalled`).
    pub fn engine_not_implemented(what: &str) -> Self {
        Self::new(
            false,
            reasons::ENGINE_NOT_IMPLEMENTED,
            format!(
                "spec is valid and its references resolve, but {what} is not part of this build yet"
            ),
        )
    }

    /// The object this reconcile was given is older than the API server's copy: write nothing,
    /// look again soon (the watch delivers the newer copy).
    pub fn stale(why: impl Into<String>) -> Self {
        let mut verdict = Self::new(false, reasons::STALE_READ, why);
        verdict.stale = true;
        verdict
    }
}

/// An Event a kind's step asks the pipeline to record after the status is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, action: &'static str, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            action,
            message: message.into(),
        }
    }

    pub fn warning(reason: &'static str, action: &'static str, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            action,
            message: message.into(),
        }
    }
}
