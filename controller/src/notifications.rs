//! The notification adapter every kind that tells people something shares (AlertRule routes;
//! later incidents' escalation targets and support channels): a declared route plus its Secret
//! becomes a [`Destination`] of the notify engine, and one process-wide [`Notifier`] sends —
//! one, so its per-destination rate limits hold across every object that names the same
//! webhook or SMTP server. Deliveries are counted in `tend_notifications_total{type,result}`
//! and timed in `tend_notification_delivery_seconds{type}`.

use std::sync::OnceLock;

use tend_crds::types::{Language, NotificationRoute};
use tend_notify::{
    Delivery, Destination, Lang, Notification, Notifier, NotifierConfig, NotifyError, SmtpSettings,
    SmtpTls,
};

use crate::error::StepError;
use crate::metrics::{Metrics, NotificationLabels, NotificationTypeLabels};
use crate::secrets::Secrets;

/// Keys of the Secret an e-mail route's `smtpSecretRef` names.
pub mod smtp_keys {
    pub const HOST: &str = "host";
    pub const PORT: &str = "port";
    pub const FROM: &str = "from";
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    /// `none`, `starttls` (the default) or `tls` (implicit TLS, usually port 465).
    pub const TLS: &str = "tls";
    /// Optional PEM of a CA to trust besides the system's (a private relay).
    pub const CA: &str = "ca.crt";
}

/// The process's one notifier.
pub fn notifier() -> Result<&'static Notifier, StepError> {
    static NOTIFIER: OnceLock<Result<Notifier, String>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| Notifier::new(NotifierConfig::default()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| StepError::Internal(format!("cannot set up notifications: {e}")))
}

pub fn language(language: Language) -> Lang {
    match language {
        Language::En => Lang::En,
        _ => Lang::Ja,
    }
}

/// The destination `route` (declared at `field`) names, with its Secret read.
pub async fn destination(
    secrets: &mut Secrets,
    field: &str,
    route: &NotificationRoute,
) -> Result<Destination, StepError> {
    if let Some(email) = &route.email {
        let field = format!("{field}.email.smtpSecretRef");
        let name = &email.smtp_secret_ref.name;
        let host = secrets.required(&field, name, smtp_keys::HOST).await?;
        let port = secrets.required(&field, name, smtp_keys::PORT).await?;
        let port = port.trim().parse::<u16>().map_err(|_| {
            StepError::Setup(format!(
                "{field}: key {:?} of Secret {name:?} is not a port number",
                smtp_keys::PORT
            ))
        })?;
        let from = secrets.required(&field, name, smtp_keys::FROM).await?;
        let username = secrets.value(&field, name, smtp_keys::USERNAME).await?;
        let password = secrets.value(&field, name, smtp_keys::PASSWORD).await?;
        let tls = match secrets
            .value(&field, name, smtp_keys::TLS)
            .await?
            .as_deref()
            .map(str::trim)
        {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(other) => {
                return Err(StepError::Setup(format!(
                    "{field}: key {:?} of Secret {name:?} is {other:?}; use none, starttls or tls",
                    smtp_keys::TLS
                )));
            }
        };
        let extra_root_pem = secrets.value(&field, name, smtp_keys::CA).await?;
        return Ok(Destination::Email {
            smtp: SmtpSettings {
                host: host.trim().to_owned(),
                port,
                from: from.trim().to_owned(),
                username: username.filter(|u| !u.is_empty()),
                password: password.filter(|p| !p.is_empty()),
                tls,
                extra_root_pem,
            },
            to: email.to.clone(),
        });
    }
    let hooks = [
        ("slack", &route.slack),
        ("teams", &route.teams),
        ("webhook", &route.webhook),
    ];
    for (kind, hook) in hooks {
        let Some(hook) = hook else { continue };
        let url = secrets
            .key_ref(
                &format!("{field}.{kind}.urlSecretRef"),
                &hook.url_secret_ref,
            )
            .await?
            .trim()
            .to_owned();
        return Ok(match kind {
            "slack" => Destination::Slack { url },
            "teams" => Destination::Teams { url },
            _ => Destination::Webhook { url },
        });
    }
    Err(StepError::Setup(format!(
        "{field}: set exactly one of email, slack, teams or webhook"
    )))
}

/// Sends `notification` to `destination` with `notifier` (see [`notifier`]), counting the
/// result.
pub async fn send(
    metrics: &Metrics,
    notifier: &Notifier,
    destination: &Destination,
    lang: Lang,
    notification: &Notification,
) -> Result<Delivery, NotifyError> {
    let r#type = destination.kind();
    let result = notifier.send(destination, lang, notification).await;
    let label = match &result {
        Ok(delivery) => {
            metrics
                .notifications
                .delivery_seconds
                .get_or_create(&NotificationTypeLabels { r#type })
                .observe(delivery.latency.as_secs_f64());
            "delivered"
        }
        Err(error) => error.metric_label(),
    };
    metrics
        .notifications
        .sent
        .get_or_create(&NotificationLabels {
            r#type,
            result: label,
        })
        .inc();
    result
}
