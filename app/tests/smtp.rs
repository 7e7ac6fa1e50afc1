//! The inquiry acknowledgement goes out by e-mail through a real SMTP server
//! (aiosmtpd's Mailbox handler writes each message to a Maildir).

use std::time::Duration;

use axum::http::StatusCode;
use fieldbook::auth::Role;
use fieldbook::config::SmtpConfig;
use tend_testkit::SmtpSink;
use tend_testkit::fieldbook::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_acknowledgement_is_emailed_through_smtp() {
    let sink = SmtpSink::start().await;
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        c.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.port,
            from: "support@fieldbook.test".into(),
        })
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
