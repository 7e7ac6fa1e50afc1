//! E-mail through lettre (no SMTP of our own): the message is built once, then each attempt
//! opens a connection — plain, STARTTLS (required) or implicit TLS, with AUTH PLAIN/LOGIN when
//! credentials are given — and sends it. SMTP 4xx replies are retried, 5xx are final.

use std::error::Error as _;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Failure, Retry};
use crate::destination::{SmtpSettings, SmtpTls};
use crate::error::{ErrorKind, NotifyError};
use crate::model::{Lang, Notification};
use crate::redact::redact;
use crate::render::render_email;

/// A message and the transport that will carry it.
pub(crate) struct Prepared {
    message: Message,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Builds the message and the transport; errors here are the destination's fault.
pub(crate) fn prepare(
    smtp: &SmtpSettings,
    to: &[String],
    lang: Lang,
    n: &Notification,
    secrets: &[&str],
    timeout: Duration,
) -> Result<Prepared, NotifyError> {
    let content = render_email(lang, n);
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|_| NotifyError::invalid("the From address is not a valid address"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(content.subject)
        .message_id(None);
    for (i, address) in to.iter().enumerate() {
        let mailbox: Mailbox = address.parse().map_err(|_| {
            NotifyError::invalid(format!("recipient {} is not a valid address", i + 1))
        })?;
        builder = builder.to(mailbox);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            content.text,
            content.html,
        ))
        .map_err(|e| {
            NotifyError::new(
                ErrorKind::Internal,
                0,
                redact(&format!("cannot build the e-mail: {e}"), secrets),
            )
        })?;

    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .timeout(Some(timeout));
    if smtp.tls != SmtpTls::None {
        let mut params = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.extra_root_pem {
            let cert = Certificate::from_pem(pem.as_bytes()).map_err(|_| {
                NotifyError::invalid("the extra root certificate is not a valid PEM certificate")
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().map_err(|e| {
            NotifyError::new(
                ErrorKind::TlsFailed,
                0,
                redact(&format!("cannot set up TLS: {e}"), secrets),
            )
        })?;
        transport = transport.tls(match smtp.tls {
            SmtpTls::StartTls => Tls::Required(params),
            _ => Tls::Wrapper(params),
        });
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport
            .credentials(Credentials::new(user.clone(), password.clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(Prepared {
        message,
        transport: transport.build(),
    })
}

/// One SMTP transaction, bounded by `timeout`.
pub(crate) async fn send_once(
    prepared: &Prepared,
    timeout: Duration,
    secrets: &[&str],
) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, prepared.transport.send(prepared.message.clone())).await {
        Ok(Ok(_response)) => Ok(()),
        Ok(Err(e)) => Err(classify(&e, secrets)),
        Err(_) => Err(Failure {
            kind: ErrorKind::Timeout,
            detail: format!(
                "the SMTP server did not finish within {} ms",
                timeout.as_millis()
            ),
            retry: Retry::Yes,
        }),
    }
}

fn classify(e: &lettre::transport::smtp::Error, secrets: &[&str]) -> Failure {
    let mut text = e.to_string();
    let mut source = e.source();
    let mut tls_cause = false;
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        if cause.is::<rustls::Error>()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            tls_cause = true;
        }
        source = cause.source();
    }
    let detail = redact(&format!("SMTP: {text}"), secrets);
    let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
    let (kind, retry) = if e.is_timeout() {
        (ErrorKind::Timeout, Retry::Yes)
    } else if e.is_tls() || tls_cause {
        (ErrorKind::TlsFailed, Retry::No)
    } else if let Some(code) = code {
        match code {
            // Authentication required / too weak / credentials invalid / encryption required.
            530 | 534 | 535 | 538 => (ErrorKind::AuthFailed, Retry::No),
            500..=599 => (ErrorKind::Rejected, Retry::No),
            _ => (ErrorKind::ServerError, Retry::Yes),
        }
    } else if e.is_client() {
        let lower = text.to_lowercase();
        if lower.contains("authentication") {
            (ErrorKind::AuthFailed, Retry::No)
        } else if lower.contains("starttls") || lower.contains("tls") {
            (ErrorKind::TlsFailed, Retry::No)
        } else {
            (ErrorKind::Internal, Retry::No)
        }
    } else if e.is_response() {
        (ErrorKind::ServerError, Retry::Yes)
    } else {
        (ErrorKind::ConnectFailed, Retry::Yes)
    };
    Failure {
        kind,
        detail,
        retry,
    }
}
