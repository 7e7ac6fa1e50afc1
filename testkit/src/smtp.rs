//! An SMTP sink: aiosmtpd on a free loopback port, writing each message it accepts to a
//! Maildir the test reads. [`SmtpSink::start`] runs aiosmtpd's CLI; [`SmtpSink::start_with`]
//! runs a small script on aiosmtpd (`smtp_server.py`) for what the CLI cannot do — STARTTLS or
//! implicit TLS with a certificate made by `openssl` at test time (signed by a throwaway CA the
//! client is given as [`SmtpSink::ca_pem`]), and AUTH with one user.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::process::ChildGuard;
use crate::tools::{python_with_aiosmtpd, require};

/// How the sink secures its port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain text.
    #[default]
    None,
    /// STARTTLS offered and required before MAIL.
    StartTls,
    /// TLS from the first byte (as on port 465).
    Implicit,
}

/// Options for [`SmtpSink::start_with`].
#[derive(Clone, Debug, Default)]
pub struct SmtpSinkOptions {
    pub tls: SinkTls,
    /// When set, AUTH (PLAIN/LOGIN) with this user and password is required before MAIL.
    pub auth: Option<(String, String)>,
}

/// A message as Python's `email` package reads it (RFC 2047 headers decoded).
#[derive(Clone, Debug)]
pub struct ParsedMail {
    /// Every header, in order, decoded.
    pub headers: Vec<(String, String)>,
    /// The top-level content type, e.g. `multipart/alternative`.
    pub content_type: String,
    /// The leaf parts: (content type, decoded text).
    pub parts: Vec<(String, String)>,
}

impl ParsedMail {
    /// The first header called `name` (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first part of `content_type` (e.g. `text/html`).
    pub fn part(&self, content_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(t, _)| t == content_type)
            .map(|(_, b)| b.as_str())
    }
}

/// A running aiosmtpd with the Mailbox handler; stopped on drop.
pub struct SmtpSink {
    pub port: u16,
    /// The Maildir (its `new/` holds delivered messages).
    pub maildir: PathBuf,
    /// With TLS: the PEM of the CA that signed the server's certificate (for `localhost` and
    /// 127.0.0.1), for the client to trust.
    pub ca_pem: Option<String>,
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
            ca_pem: None,
            _server: server,
            _dir: dir,
        }
    }

    /// Starts a sink with TLS and/or AUTH and waits until it listens.
    pub async fn start_with(options: SmtpSinkOptions) -> Self {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().expect("a temp dir for the Maildir");
        let maildir = dir.path().join("mail");
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, include_str!("smtp_server.py")).expect("write smtp_server.py");
        let port = free_port();
        let tls = match options.tls {
            SinkTls::None => "none",
            SinkTls::StartTls => "starttls",
            SinkTls::Implicit => "implicit",
        };
        let mut settings = serde_json::json!({
            "port": port,
            "maildir": maildir.to_string_lossy(),
            "tls": tls,
        });
        let mut ca_pem = None;
        if options.tls != SinkTls::None {
            let (ca, cert, key) = make_certificates(dir.path());
            ca_pem = Some(ca);
            settings["cert"] = cert.to_string_lossy().into();
            settings["key"] = key.to_string_lossy().into();
        }
        if let Some((user, password)) = &options.auth {
            settings["user"] = user.as_str().into();
            settings["password"] = password.as_str().into();
        }
        let log = dir.path().join("smtp.log");
        let mut command = Command::new(python);
        command.arg(&script).arg(settings.to_string());
        let mut server = ChildGuard::spawn_logged(command, &log).expect("start smtp_server.py");
        server
            .wait_for_port(port, "smtp_server.py (aiosmtpd)", Duration::from_secs(60))
            .await;
        Self {
            port,
            maildir,
            ca_pem,
            _server: server,
            _dir: dir,
        }
    }

    /// Every delivered message so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut found: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(self.maildir.join("new"))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| {
                            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                            Some((modified, std::fs::read_to_string(e.path()).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, m)| m).collect()
    }

    /// Parses `raw` with Python's `email` package (`parse_mail.py`).
    pub fn parse(raw: &str) -> ParsedMail {
        parse_mail(raw)
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

/// Parses one message with Python's `email` package, RFC 2047 headers decoded.
pub fn parse_mail(raw: &str) -> ParsedMail {
    use std::io::Write;
    let python = python_with_aiosmtpd();
    let mut child = Command::new(python)
        .args(["-c", include_str!("parse_mail.py")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python to parse a message");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(raw.as_bytes())
        .expect("write the message to python");
    let out = child.wait_with_output().expect("python parsing a message");
    assert!(
        out.status.success(),
        "parse_mail.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("parse_mail.py prints JSON");
    let pairs = |v: &serde_json::Value| -> Vec<(String, String)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p[0].as_str().unwrap_or_default().to_string(),
                    p[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    ParsedMail {
        headers: pairs(&v["headers"]),
        content_type: v["content_type"].as_str().unwrap_or_default().to_string(),
        parts: v["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["content_type"].as_str().unwrap_or_default().to_string(),
                    p["body"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    }
}

/// A throwaway CA and a server certificate it signs for `localhost` and 127.0.0.1, made with
/// the `openssl` CLI: (CA PEM, certificate path, key path). A self-signed leaf would not do:
/// rustls refuses a CA certificate as the server's own.
fn make_certificates(dir: &std::path::Path) -> (String, PathBuf, PathBuf) {
    let openssl = require("openssl", "apt-get install -y openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3",
            "-subj",
            "/CN=tend test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "3",
        "-extfile",
        "server.ext",
    ]);
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("read ca.pem");
    (ca, dir.join("server.pem"), dir.join("server.key"))
}
