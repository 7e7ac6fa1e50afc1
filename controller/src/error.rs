//! The controller's error type. Every variant maps to a stable metric label.

/// Errors a reconcile can return; all of them are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be serialised for a patch (a bug, never user input).
    #[error("serialisation error: {0}")]
    Serialization(#[from] serde_json::Error),
}

impl Error {
    /// Label for the `tend_reconcile_errors_total` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            _ if self.is_conflict() => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::Serialization(_) => "serialization",
        }
    }

    /// The object changed since it was read (409 on a write with a resourceVersion
    /// precondition): not a failure, the reconcile runs again on the newer object.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(e)) if e.code == 409)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a kind's own step (a backup, a restore, an alert evaluation, a drill) failed. Each
/// variant is a stable `reason` label of the failure counters, so failures of every kind are
/// counted by cause the same way. Messages name fields and endpoints, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The spec, or a Secret it names, cannot be used as written (the message names the field).
    #[error("{0}")]
    Setup(String),
    /// The backup engine failed (repository, database tools, encryption...).
    #[error(transparent)]
    Engine(#[from] tend_backup::Error),
    /// The backup engine failed while doing something the message names.
    #[error("{doing}: {source}")]
    EngineWhile {
        doing: String,
        #[source]
        source: tend_backup::Error,
    },
    /// Writing into a restore target (database, object store, config objects) failed.
    #[error("{0}")]
    Target(String),
    /// The application's ops API failed or refused.
    #[error(transparent)]
    OpsApi(#[from] crate::ops_api::OpsApiError),
    /// The Kubernetes API refused or failed a request the step made.
    #[error("{0}")]
    Kube(String),
    /// A signal (metrics page, HTTP check) could not be read.
    #[error("{0}")]
    Probe(String),
    /// A signal has no value yet (an alert window still filling, an empty query result): not a
    /// failure, so no Warning Event; the alert's state stays as it was.
    #[error("{0}")]
    NoData(String),
    /// Restored data did not pass a verification check.
    #[error("{0}")]
    Check(String),
    /// The step's task stopped unexpectedly (a bug): reported, never hidden.
    #[error("{0}")]
    Internal(String),
}

impl StepError {
    /// Label for the `reason` of failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StepError::Setup(_) => "setup",
            StepError::Engine(e) | StepError::EngineWhile { source: e, .. } => e.metric_label(),
            StepError::Target(_) => "target",
            StepError::OpsApi(_) => "ops_api",
            StepError::Kube(_) => "kubernetes",
            StepError::Probe(_) => "probe",
            StepError::NoData(_) => "no_data",
            StepError::Check(_) => "check",
            StepError::Internal(_) => "internal",
        }
    }

    /// A backup engine failure, with what was being done.
    pub fn engine(doing: impl Into<String>, source: tend_backup::Error) -> Self {
        StepError::EngineWhile {
            doing: doing.into(),
            source,
        }
    }

    /// A Kubernetes API failure, with what was being done.
    pub fn kube(doing: impl std::fmt::Display, error: &kube::Error) -> Self {
        StepError::Kube(format!("{doing}: {}", kube_reason(error)))
    }
}

/// A Kubernetes API error in a few words (the API's own message when it has one).
pub fn kube_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => format!("{} ({})", response.message, response.reason),
        other => other.to_string(),
    }
}
