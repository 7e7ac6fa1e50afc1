//! One error type for the engine. Messages name the step and the object involved and never carry
//! secret material (passwords, S3 keys, age identities): callers may put them in status and events.

use std::io;

/// Result of the backup engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository (S3 or local directory) refused or failed an operation.
    #[error("repository: {operation} {key}: {message}")]
    Repository {
        operation: &'static str,
        key: String,
        message: String,
    },
    /// A configuration value is unusable; `field` names it.
    #[error("invalid {field}: {message}")]
    Config { field: String, message: String },
    /// A data source (database dump, snapshot stream, object store) failed.
    #[error("source {component}: {message}")]
    Source { component: String, message: String },
    /// Encryption or decryption failed (bad recipient, wrong identity, corrupted data).
    #[error("encryption: {0}")]
    Encryption(String),
    /// Stored data does not match what its manifest promises.
    #[error("integrity: {0}")]
    Integrity(String),
    /// A manifest is missing, unreadable or of an unknown format.
    #[error("manifest {key}: {message}")]
    Manifest { key: String, message: String },
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// A short, stable label for metrics (`failures_total{reason=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Repository { .. } => "repository",
            Error::Config { .. } => "config",
            Error::Source { .. } => "source",
            Error::Encryption(_) => "encryption",
            Error::Integrity(_) => "integrity",
            Error::Manifest { .. } => "manifest",
            Error::Io { .. } => "io",
        }
    }

    pub(crate) fn repo(operation: &'static str, key: &str, message: impl ToString) -> Self {
        Error::Repository {
            operation,
            key: key.to_owned(),
            message: message.to_string(),
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn source(component: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Source {
            component: component.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
