//! E-mail against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS and implicit TLS
//! with a certificate made at test time and trusted through `extra_root_pem`, AUTH, and the
//! message as Python's `email` package reads it.

mod common;

use std::time::{Duration, Instant};

use common::{fast_config, notification, notifier};
use tend_notify::{Destination, Lang, SmtpSettings, SmtpTls};
use tend_testkit::{SinkTls, SmtpSink, SmtpSinkOptions, free_port, parse_mail};

fn email(port: u16, host: &str, tls: SmtpTls) -> (SmtpSettings, Vec<String>) {
    (
        SmtpSettings {
            host: host.into(),
            port,
            from: "tend <alerts@tend.example>".into(),
            tls,
            ..Default::default()
        },
        vec![
            "oncall@fieldbook.example".into(),
            "二人目 <second@fieldbook.example>".into(),
        ],
    )
}

fn dest((smtp, to): (SmtpSettings, Vec<String>)) -> Destination {
    Destination::Email { smtp, to }
}

const JA_TITLE: &str = "API エラー率が 5% を超えました";

#[tokio::test]
async fn plain_smtp_delivers_japanese_multipart_mail_with_encoded_subject() {
    let sink = SmtpSink::start().await;
    let notifier = notifier(fast_config());
    let mut n = notification();
    n.title = JA_TITLE.into();
    let delivery = notifier
        .send(
            &dest(email(sink.port, "127.0.0.1", SmtpTls::None)),
            Lang::Ja,
            &n,
        )
        .await
        .expect("delivered");
    assert_eq!(delivery.attempts, 1);

    let raw = sink.first_message(Duration::from_secs(10)).await;
    let subject_line = raw
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .expect("a Subject header");
    assert!(
        subject_line.to_ascii_lowercase().contains("=?utf-8?"),
        "the subject is not RFC 2047-encoded on the wire: {subject_line}"
    );
    assert!(raw.is_ascii(), "8-bit bytes on the wire");

    let mail = parse_mail(&raw);
    assert_eq!(
        mail.header("Subject"),
        Some(&*format!("[発生中 重大] {JA_TITLE}"))
    );
    let message_id = mail.header("Message-ID").expect("a Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.contains('@'),
        "{message_id}"
    );
    assert!(mail.header("Date").is_some(), "no Date header");
    assert!(mail.header("From").unwrap().contains("alerts@tend.example"));
    let to = mail.header("To").unwrap();
    assert!(
        to.contains("oncall@fieldbook.example") && to.contains("二人目"),
        "{to}"
    );
    assert_eq!(mail.content_type, "multipart/alternative");
    let text = mail.part("text/plain").expect("a text/plain part");
    assert!(text.contains("重要度: 重大"), "{text}");
    assert!(text.contains("観測値: 0.073"));
    assert!(text.contains("条件: > 0.05"));
    assert!(text.contains("発生時刻: 2025-01-02 12:04:05 JST (2025-01-02 03:04:05 UTC)"));
    assert!(text.contains("対応手順: https://runbooks.example/api-errors"));
    assert!(text.contains("kubectl describe alertrule/api-errors -n fieldbook"));
    let html = mail.part("text/html").expect("a text/html part");
    assert!(
        html.contains("Errors &amp; timeouts on &lt;b&gt;/api/records&lt;/b&gt;."),
        "{html}"
    );
    assert!(html.contains(JA_TITLE));
}

#[tokio::test]
async fn no_header_can_be_injected_through_the_title() {
    let sink = SmtpSink::start().await;
    let notifier = notifier(fast_config());
    let mut n = notification();
    n.title = "boom\r\nBcc: evil@attacker.example\r\nX-Injected: yes".into();
    notifier
        .send(
            &dest(email(sink.port, "127.0.0.1", SmtpTls::None)),
            Lang::En,
            &n,
        )
        .await
        .expect("delivered");
    let raw = sink.first_message(Duration::from_secs(10)).await;
    let mail = parse_mail(&raw);
    assert!(
        mail.header("Bcc").is_none() && mail.header("X-Injected").is_none(),
        "{raw}"
    );
    let subject = mail.header("Subject").unwrap();
    assert!(subject.starts_with("[FIRING critical] boom"), "{subject}");
    assert!(!subject.contains('\n'));
}

#[tokio::test]
async fn starttls_with_auth_delivers_and_a_wrong_password_is_auth_failed() {
    let sink = SmtpSink::start_with(SmtpSinkOptions {
        tls: SinkTls::StartTls,
        auth: Some(("alerts".into(), "s3cret-Pa55".into())),
    })
    .await;
    let notifier = notifier(fast_config());
    let (mut smtp, to) = email(sink.port, "localhost", SmtpTls::StartTls);
    smtp.extra_root_pem = sink.ca_pem.clone();
    smtp.username = Some("alerts".into());
    smtp.password = Some("s3cret-Pa55".into());
    let delivery = notifier
        .send(&dest((smtp.clone(), to.clone())), Lang::En, &notification())
        .await
        .expect("delivered over STARTTLS with AUTH");
    assert_eq!(delivery.attempts, 1);
    let mail = parse_mail(&sink.first_message(Duration::from_secs(10)).await);
    assert_eq!(
        mail.header("Subject"),
        Some("[FIRING critical] API error rate above 5%")
    );

    smtp.password = Some("wrong-Pa55word".into());
    let err = notifier
        .send(&dest((smtp, to)), Lang::En, &notification())
        .await
        .expect_err("a wrong password fails");
    assert_eq!(err.reason(), "AuthFailed", "{err}");
    assert_eq!(err.metric_label(), "auth_failed");
    assert!(err.is_permanent());
    assert_eq!(err.attempts(), 1, "an auth failure is not retried: {err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("wrong-Pa55word"), "{shown}");
    }
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn implicit_tls_delivers_and_an_untrusted_certificate_is_refused() {
    let sink = SmtpSink::start_with(SmtpSinkOptions {
        tls: SinkTls::Implicit,
        auth: Some(("alerts".into(), "pw-465".into())),
    })
    .await;
    let notifier = notifier(fast_config());
    let (mut smtp, to) = email(sink.port, "localhost", SmtpTls::Tls);
    smtp.username = Some("alerts".into());
    smtp.password = Some("pw-465".into());

    // Verification is on: without the test CA the handshake fails, for good.
    let err = notifier
        .send(&dest((smtp.clone(), to.clone())), Lang::En, &notification())
        .await
        .expect_err("an unknown CA is refused");
    assert_eq!(err.reason(), "TlsFailed", "{err}");
    assert_eq!(err.attempts(), 1);

    smtp.extra_root_pem = sink.ca_pem.clone();
    notifier
        .send(&dest((smtp, to)), Lang::Ja, &notification())
        .await
        .expect("delivered over implicit TLS");
    let mail = parse_mail(&sink.first_message(Duration::from_secs(10)).await);
    assert!(mail.header("Subject").unwrap().starts_with("[発生中 重大]"));
}

#[tokio::test]
async fn required_starttls_that_the_server_lacks_is_refused() {
    let sink = SmtpSink::start().await;
    let notifier = notifier(fast_config());
    let err = notifier
        .send(
            &dest(email(sink.port, "127.0.0.1", SmtpTls::StartTls)),
            Lang::En,
            &notification(),
        )
        .await
        .expect_err("no STARTTLS on offer");
    assert_eq!(err.reason(), "TlsFailed", "{err}");
    assert!(
        sink.messages().is_empty(),
        "a message went out in clear text"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_connect_failed_quickly() {
    let port = free_port();
    let notifier = notifier(tend_notify::NotifierConfig {
        max_attempts: 3,
        ..fast_config()
    });
    let started = Instant::now();
    let err = notifier
        .send(
            &dest(email(port, "127.0.0.1", SmtpTls::None)),
            Lang::En,
            &notification(),
        )
        .await
        .expect_err("nothing listens");
    assert_eq!(err.reason(), "ConnectFailed", "{err}");
    assert_eq!(err.attempts(), 3, "connect errors are retried: {err}");
    assert!(!err.is_permanent());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_empty_recipient_list_is_refused_before_any_connection() {
    let port = free_port();
    let (smtp, _) = email(port, "127.0.0.1", SmtpTls::None);
    let err = notifier(fast_config())
        .send(
            &Destination::Email { smtp, to: vec![] },
            Lang::En,
            &notification(),
        )
        .await
        .expect_err("no recipients");
    assert_eq!(err.reason(), "InvalidDestination");
    assert_eq!(err.attempts(), 0);
    assert!(err.to_string().contains("no recipients"), "{err}");
}
