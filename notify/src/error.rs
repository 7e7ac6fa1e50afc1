//! The one error of a delivery: a reason for Kubernetes conditions, a label for metrics, and a
//! message that never carries a secret (it is built from redacted text only).

use std::fmt;

/// Why a delivery failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The destination cannot be used as written (bad URL, scheme, address, no recipients).
    InvalidDestination,
    /// No connection could be made (refused, unreachable, DNS) or it broke mid-request.
    ConnectFailed,
    /// The peer did not answer in time.
    Timeout,
    /// The TLS handshake failed (untrusted certificate, wrong host name, no TLS on the port).
    TlsFailed,
    /// The SMTP server refused the credentials (or offered no usable AUTH mechanism).
    AuthFailed,
    /// The peer refused the message for good (HTTP 4xx, SMTP 5xx).
    Rejected,
    /// The peer kept answering 429 until the attempts ran out.
    RateLimited,
    /// The peer kept failing (HTTP 5xx, SMTP 4xx, garbled replies) until the attempts ran out.
    ServerError,
    /// The notifier itself could not be built or could not build the message.
    Internal,
}

impl ErrorKind {
    /// CamelCase, stable: for condition and status reasons.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::InvalidDestination => "InvalidDestination",
            ErrorKind::ConnectFailed => "ConnectFailed",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::TlsFailed => "TlsFailed",
            ErrorKind::AuthFailed => "AuthFailed",
            ErrorKind::Rejected => "Rejected",
            ErrorKind::RateLimited => "RateLimited",
            ErrorKind::ServerError => "ServerError",
            ErrorKind::Internal => "Internal",
        }
    }

    /// snake_case, stable: for metric labels.
    pub fn metric_label(self) -> &'static str {
        match self {
            ErrorKind::InvalidDestination => "invalid_destination",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TlsFailed => "tls_failed",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether trying again later without a change to the destination cannot help.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidDestination
                | ErrorKind::TlsFailed
                | ErrorKind::AuthFailed
                | ErrorKind::Rejected
                | ErrorKind::Internal
        )
    }
}

/// A failed delivery. `Display` and `Debug` are secret-free: the detail is redacted when the
/// error is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyError {
    kind: ErrorKind,
    attempts: u32,
    detail: String,
}

impl NotifyError {
    /// `detail` must already be secret-free (see `redact`).
    pub(crate) fn new(kind: ErrorKind, attempts: u32, detail: impl Into<String>) -> Self {
        NotifyError {
            kind,
            attempts,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        NotifyError::new(ErrorKind::InvalidDestination, 0, detail)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// CamelCase, for Kubernetes condition/status reasons ("InvalidDestination", "AuthFailed" …).
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// snake_case, for metric labels.
    pub fn metric_label(&self) -> &'static str {
        self.kind.metric_label()
    }

    /// How many attempts were made (0 when the destination was refused before any).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }

    /// The secret-free detail, without the reason.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.reason(), self.detail)?;
        match self.attempts {
            0 => Ok(()),
            1 => write!(f, " (1 attempt)"),
            n => write!(f, " ({n} attempts)"),
        }
    }
}

impl std::error::Error for NotifyError {}
