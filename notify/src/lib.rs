//! The notification engine of tend: renders a [`Notification`] for a destination (e-mail,
//! Slack, Microsoft Teams, an Alertmanager-shaped webhook) in Japanese or English and delivers
//! it politely — timeouts, retries with backoff, `Retry-After`, a per-destination rate limit —
//! with errors that never carry a secret. It knows nothing of Kubernetes.
//!
//! ```text
//! Notification ──render (pure)──> subject/text/html | Slack JSON | Teams JSON | webhook v4 JSON
//!              ──Notifier::send──> validate → pace → attempt → classify → backoff/Retry-After → …
//! ```

#![forbid(unsafe_code)]

mod deliver;
mod destination;
mod error;
mod http;
mod model;
pub mod redact;
mod render;

pub use deliver::{Delivery, MinIntervals, Notifier, NotifierConfig};
pub use destination::{Destination, SmtpSettings, SmtpTls};
pub use error::{ErrorKind, NotifyError};
pub use http::{Https, http_client};
pub use model::{Lang, Notification, ObjectRef, Status};
pub use render::{
    EmailContent, TEAMS_MAX_BYTES, WebhookContext, render_email, render_email_html,
    render_email_subject, render_email_text, render_slack, render_teams, render_webhook,
};
