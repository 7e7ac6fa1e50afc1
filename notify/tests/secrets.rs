//! Secrets stay out of every error, `Debug`, `describe()` and log line: the webhook URL's path
//! and query (Slack and Teams put the credential there) and the SMTP password — including the
//! errors hyper and lettre produce, and the server's own answer.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{fast_config, notification, notifier};
use tend_notify::{Destination, Lang, NotifierConfig, SmtpSettings, SmtpTls};
use tend_testkit::{Reply, SinkTls, SmtpSink, SmtpSinkOptions, WebhookSink, free_port};

const PATH_SECRET: &str = "T0SECRET/B0SECRET/xoxSECRETtoken";
const PASSWORD: &str = "Pa55-SECRET-word";

/// Every tracing event, at every level, into a string.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_secret_free(shown: &str) {
    for secret in [PATH_SECRET, "xoxSECRETtoken", PASSWORD, "sig=SIGSECRET"] {
        assert!(!shown.contains(secret), "{secret:?} leaked in: {shown}");
    }
}

#[tokio::test]
async fn no_secret_in_errors_debug_describe_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The server echoes the path back in its error body, as some do.
    let sink = WebhookSink::start_scripted(vec![
        Reply::status(500).body(&format!("no route for /services/{PATH_SECRET}")),
        Reply::status(404).body(&format!("hook /services/{PATH_SECRET} not found")),
    ])
    .await;
    let notifier = notifier(NotifierConfig {
        max_attempts: 3,
        min_interval: tend_notify::MinIntervals {
            slack: std::time::Duration::ZERO,
            teams: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..fast_config()
    });
    let refused = free_port();
    let mut shown = Vec::new();
    let destinations = [
        Destination::Slack {
            url: sink.url(&format!("/services/{PATH_SECRET}")),
        },
        Destination::Slack {
            url: format!("http://127.0.0.1:{refused}/services/{PATH_SECRET}"),
        },
        Destination::Teams {
            url: format!("https://127.0.0.1:{refused}/workflows/x?sig=SIGSECRET"),
        },
        Destination::Webhook {
            url: format!("ftp://example.com/services/{PATH_SECRET}"),
        },
    ];
    for dest in &destinations {
        shown.push(dest.describe());
        shown.push(format!("{dest:?}"));
        let err = notifier
            .send(dest, Lang::En, &notification())
            .await
            .expect_err("every one of these fails");
        eprintln!("{}: {err}", dest.describe());
        shown.push(err.to_string());
        shown.push(format!("{err:?}"));
    }
    assert!(shown.iter().any(|s| s.contains("404")), "{shown:?}");

    let smtp = SmtpSink::start_with(SmtpSinkOptions {
        tls: SinkTls::StartTls,
        auth: Some(("alerts".into(), "the-right-one".into())),
    })
    .await;
    let email = Destination::Email {
        smtp: SmtpSettings {
            host: "localhost".into(),
            port: smtp.port,
            from: "alerts@tend.example".into(),
            username: Some("alerts".into()),
            password: Some(PASSWORD.into()),
            tls: SmtpTls::StartTls,
            extra_root_pem: smtp.ca_pem.clone(),
        },
        to: vec!["oncall@fieldbook.example".into()],
    };
    shown.push(email.describe());
    shown.push(format!("{email:?}"));
    let err = notifier
        .send(&email, Lang::Ja, &notification())
        .await
        .expect_err("wrong password");
    assert_eq!(err.reason(), "AuthFailed");
    eprintln!("{}: {err}", email.describe());
    shown.push(err.to_string());
    shown.push(format!("{err:?}"));
    shown.push(format!("{notifier:?}"));

    let logs = logs.text();
    assert!(
        logs.contains("retrying"),
        "the retries were not logged: {logs}"
    );
    shown.push(logs);
    for s in &shown {
        assert_secret_free(s);
    }
}
