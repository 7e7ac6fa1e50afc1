//! An SMTP sink: aiosmtpd on a free loopback port, writing each message it accepts to a
//! Maildir the test reads.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::process::ChildGuard;
use crate::tools::python_with_aiosmtpd;

/// A running aiosmtpd with the Mailbox handler; stopped on drop.
pub struct SmtpSink {
    pub port: u16,
    /// The Maildir (its `new/` holds delivered messages).
    pub maildir: PathBuf,
    // Dropped before `dir`: the server stops before its Maildir goes.
    _server: ChildGuard,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink and waits until it listens.
    pub async fn start() -> Self {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().expect("a temp dir for the Maildir");
        // Maildir creates its tmp/new/cur only for a directory that does not exist yet.
        let maildir = dir.path().join("mail");
        let port = free_port();
        let mut server = ChildGuard::spawn(
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
                .arg(&maildir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "smtp service",
        );
        server
            .wait_for_port(port, "aiosmtpd", Duration::from_secs(60))
            .await;
        Self {
            port,
            maildir,
            _server: server,
            _dir: dir,
        }
    }

    /// The first delivered message; panics if none arrives within `timeout`.
    pub async fn first_message(&self, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let found = std::fs::read_dir(self.maildir.join("new"))
                .ok()
                .and_then(|mut rd| rd.next())
                .and_then(|e| e.ok())
                .and_then(|e| std::fs::read_to_string(e.path()).ok());
            if let Some(m) = found {
                return m;
            }
            assert!(
                started.elapsed() < timeout,
                "no message arrived in the SMTP sink"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
