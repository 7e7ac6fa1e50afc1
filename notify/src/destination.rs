//! Where a notification goes, with the checks that run before any network attempt. Types that
//! hold a credential (a webhook URL, an SMTP password) print it nowhere: `Debug` is written by
//! hand and `describe()` names only the host.

use std::fmt;

use crate::error::NotifyError;
use crate::redact::url_origin;

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SmtpTls {
    /// Plain text, no TLS at all (a relay on the same node or in the cluster).
    None,
    /// STARTTLS, required: the send fails if the server does not offer it (port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// An SMTP server and the sender's identity on it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// The From address, e.g. `tend <alerts@example.com>`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: SmtpTls,
    /// Extra trusted root certificates (PEM, one or more), beside the system's: a private CA,
    /// or a test's self-signed one. Verification is never switched off.
    pub extra_root_pem: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            from: String::new(),
            username: None,
            password: None,
            tls: SmtpTls::StartTls,
            extra_root_pem: None,
        }
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("extra_root_pem", &self.extra_root_pem.is_some())
            .finish()
    }
}

/// One place to deliver to.
#[derive(Clone, PartialEq, Eq)]
pub enum Destination {
    Email {
        smtp: SmtpSettings,
        to: Vec<String>,
    },
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`).
    Slack {
        url: String,
    },
    /// A Microsoft Teams Workflows webhook.
    Teams {
        url: String,
    },
    /// Any receiver of Alertmanager's webhook (v4) body.
    Webhook {
        url: String,
    },
}

impl Destination {
    /// `"email"`, `"slack"`, `"teams"` or `"webhook"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Email { .. } => "email",
            Destination::Slack { .. } => "slack",
            Destination::Teams { .. } => "teams",
            Destination::Webhook { .. } => "webhook",
        }
    }

    /// Secret-free, for logs, events and status: "slack hooks.slack.com",
    /// "email smtp.example:587 → 2 recipients".
    pub fn describe(&self) -> String {
        match self {
            Destination::Email { smtp, to } => {
                let n = to.len();
                let noun = if n == 1 { "recipient" } else { "recipients" };
                format!("email {}:{} → {n} {noun}", smtp.host, smtp.port)
            }
            Destination::Slack { url }
            | Destination::Teams { url }
            | Destination::Webhook { url } => {
                let host = match url.parse::<http::Uri>() {
                    Ok(uri) => match (uri.host(), uri.port_u16()) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h.to_string(),
                        _ => "<invalid URL>".to_string(),
                    },
                    Err(_) => "<invalid URL>".to_string(),
                };
                format!("{} {host}", self.kind())
            }
        }
    }

    /// The URL of an HTTP destination.
    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Destination::Email { .. } => None,
            Destination::Slack { url }
            | Destination::Teams { url }
            | Destination::Webhook { url } => Some(url),
        }
    }

    /// The strings that must never show: the URL's path and query, the SMTP password.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Destination::Email { smtp, .. } => smtp.password.as_deref().into_iter().collect(),
            Destination::Slack { url }
            | Destination::Teams { url }
            | Destination::Webhook { url } => {
                let mut secrets = vec![url.as_str()];
                if let Ok(uri) = url.parse::<http::Uri>()
                    && let Some(pq) = uri.path_and_query()
                    && pq.as_str() != "/"
                    && let Some(i) = url.find(pq.as_str())
                {
                    secrets.push(&url[i..]);
                }
                secrets
            }
        }
    }

    /// Checks what can be checked without a network: URL shape and scheme, addresses,
    /// recipients, credentials given in pairs.
    pub fn validate(&self) -> Result<(), NotifyError> {
        match self {
            Destination::Email { smtp, to } => validate_email(smtp, to),
            Destination::Slack { url }
            | Destination::Teams { url }
            | Destination::Webhook { url } => validate_url(self.kind(), url).map(|_| ()),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Email { smtp, to } => f
                .debug_struct("Email")
                .field("smtp", smtp)
                .field("to", to)
                .finish(),
            Destination::Slack { url } => f
                .debug_struct("Slack")
                .field("url", &url_origin(url))
                .finish(),
            Destination::Teams { url } => f
                .debug_struct("Teams")
                .field("url", &url_origin(url))
                .finish(),
            Destination::Webhook { url } => f
                .debug_struct("Webhook")
                .field("url", &url_origin(url))
                .finish(),
        }
    }
}

/// The parsed URL of an HTTP destination: http or https, with a host.
pub(crate) fn validate_url(kind: &str, url: &str) -> Result<http::Uri, NotifyError> {
    if url.trim().is_empty() {
        return Err(NotifyError::invalid(format!("the {kind} URL is empty")));
    }
    if !url.contains("://") {
        return Err(NotifyError::invalid(format!(
            "the {kind} URL has no scheme (it must start with https://)"
        )));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| NotifyError::invalid(format!("the {kind} URL is not a valid absolute URL")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            let other: String = other.chars().take(20).collect();
            return Err(NotifyError::invalid(format!(
                "the {kind} URL has scheme \"{other}\"; only http and https are supported"
            )));
        }
        None => {
            return Err(NotifyError::invalid(format!(
                "the {kind} URL has no scheme (it must start with https://)"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(NotifyError::invalid(format!("the {kind} URL has no host")));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(NotifyError::invalid(format!(
            "the {kind} URL carries user info (user:password@), which is not supported"
        )));
    }
    Ok(uri)
}

fn validate_email(smtp: &SmtpSettings, to: &[String]) -> Result<(), NotifyError> {
    if smtp.host.trim().is_empty() || smtp.host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(NotifyError::invalid("the SMTP host is empty or malformed"));
    }
    if smtp.port == 0 {
        return Err(NotifyError::invalid("the SMTP port is 0"));
    }
    if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(NotifyError::invalid(format!(
            "the From address {:?} is not a valid address",
            crate::redact::one_line(&smtp.from)
        )));
    }
    if to.is_empty() {
        return Err(NotifyError::invalid(
            "the e-mail destination has no recipients",
        ));
    }
    for (i, address) in to.iter().enumerate() {
        if address.parse::<lettre::message::Mailbox>().is_err() {
            return Err(NotifyError::invalid(format!(
                "recipient {} ({:?}) is not a valid address",
                i + 1,
                crate::redact::one_line(address)
            )));
        }
    }
    match (&smtp.username, &smtp.password) {
        (Some(_), None) => Err(NotifyError::invalid(
            "the SMTP username is set but the password is not",
        )),
        (None, Some(_)) => Err(NotifyError::invalid(
            "the SMTP password is set but the username is not",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack(url: &str) -> Destination {
        Destination::Slack { url: url.into() }
    }

    #[test]
    fn describe_names_only_the_host() {
        let d = slack("https://hooks.slack.com/services/T0/B0/SECRETXYZ");
        assert_eq!(d.describe(), "slack hooks.slack.com");
        assert!(!format!("{d:?}").contains("SECRETXYZ"), "{d:?}");
        let e = Destination::Email {
            smtp: SmtpSettings {
                host: "smtp.example".into(),
                port: 587,
                from: "tend <alerts@example.com>".into(),
                username: Some("alerts".into()),
                password: Some("hunter2-pass".into()),
                ..Default::default()
            },
            to: vec!["a@example.com".into(), "b@example.com".into()],
        };
        assert_eq!(e.describe(), "email smtp.example:587 → 2 recipients");
        assert!(!format!("{e:?}").contains("hunter2-pass"), "{e:?}");
        assert!(e.validate().is_ok());
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        let cases = [
            (slack(""), "empty"),
            (slack("hooks.slack.com/services/x"), "no scheme"),
            (slack("ftp://hooks.slack.com/services/x"), "scheme \"ftp\""),
            (slack("https:///services/x"), "not a valid"),
            (slack("http://u:p@host/x"), "user info"),
            (
                Destination::Webhook {
                    url: "https://exa mple.com/x".into(),
                },
                "not a valid",
            ),
        ];
        for (dest, expected) in cases {
            let err = dest.validate().unwrap_err();
            assert_eq!(err.reason(), "InvalidDestination");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        let mut smtp = SmtpSettings {
            host: "smtp.example".into(),
            from: "alerts@example.com".into(),
            ..Default::default()
        };
        let no_rcpt = Destination::Email {
            smtp: smtp.clone(),
            to: vec![],
        };
        assert!(
            no_rcpt
                .validate()
                .unwrap_err()
                .to_string()
                .contains("no recipients")
        );
        let bad_rcpt = Destination::Email {
            smtp: smtp.clone(),
            to: vec!["ok@example.com".into(), "not-an-address".into()],
        };
        assert!(
            bad_rcpt
                .validate()
                .unwrap_err()
                .to_string()
                .contains("recipient 2")
        );
        smtp.password = Some("pw".into());
        let half_auth = Destination::Email {
            smtp,
            to: vec!["ok@example.com".into()],
        };
        assert!(
            half_auth
                .validate()
                .unwrap_err()
                .to_string()
                .contains("username is not")
        );
    }
}
