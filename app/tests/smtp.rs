//! The inquiry acknowledgement goes out by e-mail through a real SMTP server
//! (aiosmtpd's Mailbox handler writes each message to a Maildir).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::postgres::free_port;
use common::procs::{ChildGuard, python_with_aiosmtpd, wait_for_port};
use common::{Backend, TestApp};
use fieldbook::auth::Role;
use fieldbook::config::SmtpConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_acknowledgement_is_emailed_through_smtp() {
    let python = python_with_aiosmtpd();
    let maildir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut sink = ChildGuard::spawn(
        Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            // Maildir creates its tmp/new/cur only for a directory that does not exist yet.
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "smtp service",
    );
    wait_for_port(port, &mut sink, "aiosmtpd", Duration::from_secs(60)).await;
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        c.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
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

    let started = Instant::now();
    let message = loop {
        let found = std::fs::read_dir(maildir.path().join("mail").join("new"))
            .ok()
            .and_then(|mut rd| rd.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read_to_string(e.path()).ok());
        if let Some(m) = found {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no message arrived in the SMTP sink"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
