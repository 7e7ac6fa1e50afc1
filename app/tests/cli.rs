//! The `fieldbook` binary: `serve` with the README's dev command line (and a
//! bootstrap admin), `migrate`, `create-admin`, and clear errors on bad input.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tend_testkit::{ChildGuard, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_fieldbook");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_from_the_readme_command_line_with_a_bootstrap_admin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops-token"), "dev-ops-token-change-me\n").unwrap();
    std::fs::write(dir.path().join("admin-password"), "first admin password\n").unwrap();
    let port = free_port();
    let mut server = ChildGuard::spawn(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database-url")
            .arg(dir.path().join("fieldbook.db"))
            .arg("--photo-dir")
            .arg(dir.path().join("photos"))
            .arg("--ops-token-file")
            .arg(dir.path().join("ops-token"))
            .args([
                "--bootstrap-admin-email",
                "admin@example.com",
                "--bootstrap-admin-password-file",
            ])
            .arg(dir.path().join("admin-password"))
            .arg("--quiet")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "cli service",
    );
    // Poll /readyz with a raw request until the server answers 200.
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait() {
            panic!("fieldbook exited with {status}");
        }
        if get(port, "/readyz", None)
            .await
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "fieldbook never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let verify = get(port, "/ops/v1/verify", Some("dev-ops-token-change-me"))
        .await
        .unwrap();
    assert!(verify.starts_with("HTTP/1.1 200"), "{verify}");
    assert!(
        verify.contains("\"users\":1"),
        "bootstrap admin created: {verify}"
    );
    let denied = get(port, "/ops/v1/verify", Some("not-the-token-at-all"))
        .await
        .unwrap();
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    // The periodic self-check (default 10m) runs once at start.
    let started = Instant::now();
    loop {
        let metrics = get(port, "/metrics", None).await.unwrap();
        if metrics.contains("\nfieldbook_verify_ok 1\n") {
            assert!(metrics.contains("\nfieldbook_verify_missing_objects 0\n"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no self-check result in /metrics: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    // Running migrate again on the same file is a no-op; create-admin refuses a bad e-mail.
    let out = Command::new(BIN)
        .arg("migrate")
        .arg("--database-url")
        .arg(dir.path().join("fieldbook.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["create-admin", "--email", "not-an-email", "--password-file"])
        .arg(dir.path().join("admin-password"))
        .arg("--database-url")
        .arg(dir.path().join("fieldbook.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("email"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A missing token file is a clear start-up error.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-token-file",
            "/nonexistent/token",
        ])
        .arg("--database-url")
        .arg(dir.path().join("fieldbook.db"))
        .arg("--photo-dir")
        .arg(dir.path().join("photos"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ops token file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A malformed self-check interval names its variable.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(dir.path().join("fieldbook.db"))
        .env("FIELDBOOK_VERIFY_INTERVAL", "every ten minutes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FIELDBOOK_VERIFY_INTERVAL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn get(port: u16, path: &str, token: Option<&str>) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
