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
