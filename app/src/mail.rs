//! Acknowledgement e-mails over SMTP, built and sent with lettre.
//!
//! lettre writes a proper RFC 5322 message: non-ASCII headers (a Japanese
//! subject) as RFC 2047 encoded words, a `Message-ID` and a `Date`, and the
//! text body in 7bit, quoted-printable or base64, whichever fits. The
//! connection is plain SMTP to a relay, STARTTLS or implicit TLS (rustls with
//! the system's roots), with optional AUTH, as [`SmtpConfig`] says.

use std::time::Duration;

use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};

/// The whole exchange (connect, TLS, AUTH, DATA) must finish within this.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// Per SMTP command, so a silent server fails before the overall limit.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that `address` is a mailbox lettre can put in a header
/// (`a@example.com` or `Name <a@example.com>`).
pub fn check_address(address: &str) -> anyhow::Result<()> {
    address
        .parse::<Mailbox>()
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{address:?} is not an e-mail address: {e}"))
}

/// A subject is one line: line breaks and other control characters (a
/// header-injection attempt, or a stray CR from a form) become spaces.
/// lettre would encode them safely, but a decoded subject with a line break
/// in it is not what anyone meant.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The message as it goes on the wire; separate from [`send`] so its shape
/// can be tested without a server.
pub fn build_message(
    config: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
) -> anyhow::Result<Message> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("sender {:?}: {e}", config.from))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| anyhow::anyhow!("recipient {to:?}: {e}"))?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(one_line(subject))
        .message_id(None)
        // A charset in Content-Type means MIME (RFC 2045); lettre adds the
        // version header only for multipart bodies.
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        // lettre writes CRLF line ends and picks the transfer encoding.
        .body(body.replace("\r\n", "\n"))?)
}

fn transport(config: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match config.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?,
    };
    let builder = builder.port(config.port).timeout(Some(COMMAND_TIMEOUT));
    let builder = match &config.credentials {
        Some((user, password)) => {
            builder.credentials(Credentials::new(user.clone(), password.clone()))
        }
        None => builder,
    };
    Ok(builder.build())
}

/// Sends one plain-text e-mail. Errors name the step that failed and never
/// carry the password.
pub async fn send(config: &SmtpConfig, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
    let message = build_message(config, to, subject, body)?;
    let transport = transport(config)?;
    tokio::time::timeout(SEND_TIMEOUT, transport.send(message))
        .await
        .map_err(|_| anyhow::anyhow!("SMTP timed out after {}s", SEND_TIMEOUT.as_secs()))?
        .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(subject: &str, body: &str) -> String {
        let config = SmtpConfig::plain("127.0.0.1", 25, "Support <support@fieldbook.test>");
        let message = build_message(&config, "hanako@example.com", subject, body).unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    fn headers(message: &str) -> &str {
        message.split("\r\n\r\n").next().unwrap()
    }

    #[test]
    fn japanese_subject_is_rfc2047_encoded_and_injection_stays_in_it() {
        let message = formatted(
            "お問い合わせを受け付けました\r\nBcc: evil@example.com\r\n\r\n偽の本文",
            "本文です。\n",
        );
        let head = headers(&message);
        assert!(head.contains("Subject: =?utf-8?"), "{message}");
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{message}");
        assert!(head.is_ascii(), "headers must be 7-bit: {message}");
        assert!(head.contains("\r\nMessage-ID: <"), "{message}");
        assert!(head.contains("\r\nDate: "), "{message}");
        assert!(head.contains("\r\nMIME-Version: 1.0"), "{message}");
        assert!(!message.contains("偽の本文"), "{message}");
    }

    #[test]
    fn control_characters_in_a_subject_become_spaces() {
        assert_eq!(one_line("a\rb\nc\r\nd\te"), "a b c  d e");
    }

    #[test]
    fn bad_addresses_are_rejected_before_sending() {
        let config = SmtpConfig::plain("127.0.0.1", 25, "support@fieldbook.test");
        assert!(build_message(&config, "not an address", "s", "b").is_err());
        assert!(build_message(&config, "a@b.test\r\nBcc: x@y.test", "s", "b").is_err());
        assert!(check_address("Support <support@fieldbook.test>").is_ok());
        assert!(check_address("nobody").is_err());
    }
}
