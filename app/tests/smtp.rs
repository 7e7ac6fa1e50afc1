//! The inquiry acknowledgement goes out by e-mail through a real SMTP server
//! (aiosmtpd's Mailbox handler writes each message to a Maildir).

use std::time::Duration;

use axum::http::StatusCode;
use fieldbook::auth::Role;
use fieldbook::config::{SmtpConfig, SmtpTls};
use tend_testkit::SmtpSink;
use tend_testkit::fieldbook::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_acknowledgement_is_emailed_through_smtp() {
    let sink = SmtpSink::start().await;
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        c.smtp = Some(SmtpConfig::plain(
            "127.0.0.1",
            sink.port,
            "support@fieldbook.test",
        ))
    })
    .await;
    let mut user = app.user("hanako@example.com", Role::User).await;
    let r = user
        .post_multipart(
            "/support/inquiries",
            &[
                ("category", "Account"),
                ("subject", "Cannot change e-mail"),
                ("message", "Hello.\n.\nA line with a dot."),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    if !r.text.contains("A copy was sent to hanako@example.com") {
        let errors = sqlx::query("SELECT data FROM logs WHERE category = 'error'")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
        let errors: Vec<String> = errors.iter().map(|r| sqlx::Row::get(r, "data")).collect();
        panic!("no e-mail acknowledgement; error log: {errors:?}");
    }

    let message = sink.first_message(Duration::from_secs(30)).await;
    assert!(message.contains("To: hanako@example.com"), "{message}");
    assert!(
        message.contains("Subject: We received your inquiry [#"),
        "{message}"
    );
    assert!(
        message.contains("Your message: Cannot change e-mail"),
        "{message}"
    );
    drop(sink);

    // With the relay gone the inquiry is still stored and acknowledged on
    // the page; the failure goes to the error log.
    let r = user
        .post_multipart(
            "/support/inquiries",
            &[
                ("category", "Account"),
                ("subject", "Second"),
                ("message", "m"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("id=\"acknowledgement\"") && !r.text.contains("A copy was sent"));
    assert_eq!(app.log_count("error", "auto_reply_mail_failed").await, 1);
}

/// Headers of a stored message, unfolded, and its body.
fn split_message(message: &str) -> (Vec<String>, String) {
    let message = message.replace("\r\n", "\n");
    let (head, body) = message
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no header/body separator in\n{message}"));
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        match (line.starts_with([' ', '\t']), headers.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => headers.push(line.to_string()),
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    headers
        .iter()
        .find(|h| h.to_ascii_lowercase().starts_with(&prefix))
        .map(|h| h[prefix.len()..].trim())
}

fn quoted_printable(text: &str, underscore_is_space: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'_' if underscore_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); the
/// whitespace between two adjacent encoded words is dropped, as RFC 2047 says.
fn decode_rfc2047(value: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_encoded = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(last_was_encoded && between.trim().is_empty()) {
            out.push_str(between);
        }
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let charset = parts.next().unwrap();
        let encoding = parts.next().unwrap();
        let tail = parts.next().unwrap();
        let end = tail.find("?=").expect("an encoded word ends with ?=");
        assert!(charset.eq_ignore_ascii_case("utf-8"), "charset {charset}");
        let bytes = match encoding {
            "b" | "B" => base64::engine::general_purpose::STANDARD
                .decode(&tail[..end])
                .unwrap(),
            "q" | "Q" => quoted_printable(&tail[..end], true),
            other => panic!("unknown encoded-word encoding {other}"),
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &tail[end + 2..];
        last_was_encoded = true;
    }
    out.push_str(rest);
    out
}

fn decode_body(headers: &[String], body: &str) -> String {
    use base64::Engine;
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .unwrap(),
        "quoted-printable" => quoted_printable(body, false),
        "7bit" | "8bit" => body.as_bytes().to_vec(),
        other => panic!("unexpected Content-Transfer-Encoding {other}"),
    };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn japanese_subject_arrives_rfc2047_encoded_without_injected_lines() {
    let sink = SmtpSink::start().await;
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        c.smtp = Some(SmtpConfig::plain(
            "127.0.0.1",
            sink.port,
            "フィールドブック <support@fieldbook.test>",
        ))
    })
    .await;
    // An operator-written subject with a header-injection attempt: a bare
    // CR, a CRLF with a header, and an empty line that would start the body.
    let subject = "お問い合わせを受け付けました\rX-Injected: cr\r\nBcc: evil@example.com\r\n\r\nINJECTED-BODY";
    let r = app
        .ops(
            "PUT",
            "/ops/v1/support-content",
            Some(serde_json::json!({
                "revision": 1,
                "faq": [],
                "guides": [],
                "troubleshooting": [],
                "forms": {"inquiryCategories": ["Account"]},
                "autoReply": {"subject": subject, "body": "1営業日以内にご連絡します。\n.\n以上です。"},
                "nps": {"enabled": false, "intervalDays": 30, "question": "おすすめしますか?"}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut user = app.user("hanako@example.com", Role::User).await;
    let r = user
        .post_multipart(
            "/support/inquiries",
            &[
                ("category", "Account"),
                ("subject", "収穫記録が消えた"),
                ("message", "助けてください"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("A copy was sent to hanako@example.com"),
        "no e-mail sent: {}",
        r.text
    );

    let message = sink.first_message(Duration::from_secs(30)).await;
    let (headers, body) = split_message(&message);
    for line in &headers {
        assert!(line.is_ascii(), "a raw 8-bit header: {line:?}\n{message}");
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.starts_with("bcc:") && !lower.starts_with("x-injected:"),
            "injected header {line:?}\n{message}"
        );
    }
    let raw_subject = header(&headers, "Subject").expect("a Subject header");
    assert!(
        raw_subject.to_ascii_lowercase().starts_with("=?utf-8?"),
        "subject not RFC 2047-encoded: {raw_subject}"
    );
    let inquiry_id = sqlx::query_scalar::<_, i64>("SELECT MAX(id) FROM inquiries")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        decode_rfc2047(raw_subject),
        format!(
            "お問い合わせを受け付けました X-Injected: cr  Bcc: evil@example.com    INJECTED-BODY [#{inquiry_id}]"
        )
    );
    assert!(
        decode_rfc2047(header(&headers, "From").unwrap()).contains("フィールドブック"),
        "{message}"
    );
    let message_id = header(&headers, "Message-ID").expect("a Message-ID header");
    assert!(
        message_id.starts_with('<') && message_id.ends_with('>') && message_id.contains('@'),
        "{message_id}"
    );
    let date = header(&headers, "Date").expect("a Date header");
    chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("Date {date:?}: {e}"));
    assert!(
        header(&headers, "Content-Type")
            .unwrap()
            .to_ascii_lowercase()
            .contains("charset=utf-8"),
        "{message}"
    );
    assert_eq!(header(&headers, "MIME-Version"), Some("1.0"), "{message}");
    let text = decode_body(&headers, &body);
    assert_eq!(
        text.replace("\r\n", "\n"),
        "1営業日以内にご連絡します。\n.\n以上です。\n\nYour message: 収穫記録が消えた\n"
    );
    assert!(!body.contains("INJECTED-BODY"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_mode_refuses_a_server_without_starttls() {
    // aiosmtpd without a certificate offers no STARTTLS: with `starttls` the
    // message must not go out in clear text.
    let sink = SmtpSink::start().await;
    let mut config = SmtpConfig::plain("127.0.0.1", sink.port, "support@fieldbook.test");
    config.tls = SmtpTls::Starttls;
    let sent = fieldbook::mail::send(&config, "hanako@example.com", "s", "b").await;
    assert!(sent.is_err(), "sent without TLS");
    config.tls = SmtpTls::None;
    fieldbook::mail::send(&config, "hanako@example.com", "s", "b")
        .await
        .expect("plain SMTP to the sink");
    let message = sink.first_message(Duration::from_secs(30)).await;
    assert!(message.contains("Subject: s"), "{message}");
}
