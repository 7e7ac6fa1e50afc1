//! fieldbook, the app tend operates, as a child process of the tests: on SQLite or PostgreSQL,
//! with photos in a directory or an S3 bucket, and its ops API behind a bearer token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tend_testkit::{ChildGuard, free_port};

use crate::tend::workspace_binary;

/// The `fieldbook` binary, built like `tend` (`FIELDBOOK_BIN` overrides).
pub fn fieldbook_binary() -> PathBuf {
    workspace_binary("fieldbook", "FIELDBOOK_BIN")
}

/// Where fieldbook keeps photos.
pub enum PhotoStore {
    Dir(PathBuf),
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

/// A running fieldbook.
pub struct Fieldbook {
    pub proc: ChildGuard,
    pub port: u16,
    pub token: String,
    pub database_url: String,
}

impl Fieldbook {
    /// Starts fieldbook with its files under `dir` and waits until `/readyz` answers.
    pub async fn start(dir: &Path, database_url: &str, photos: PhotoStore) -> anyhow::Result<Self> {
        Self::start_with_env(dir, database_url, photos, &[]).await
    }

    /// [`Fieldbook::start`] with extra environment (e.g. `FIELDBOOK_VERIFY_INTERVAL`).
    pub async fn start_with_env(
        dir: &Path,
        database_url: &str,
        photos: PhotoStore,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let bin = tokio::task::spawn_blocking(fieldbook_binary).await?;
        std::fs::create_dir_all(dir)?;
        let token = format!("ops-token-for-tests-{}", free_port());
        let token_file = dir.join("ops-token");
        std::fs::write(&token_file, &token)?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .arg("--ops-token-file")
            .arg(&token_file)
            .arg("--quiet")
            .envs(env.iter().copied());
        match photos {
            PhotoStore::Dir(path) => {
                cmd.arg("--photo-dir").arg(path);
            }
            PhotoStore::S3 {
                endpoint,
                bucket,
                prefix,
                access_key_id,
                secret_access_key,
            } => {
                cmd.arg("--photo-dir")
                    .arg(dir.join("staging"))
                    .args(["--photo-s3-bucket", &bucket])
                    .args(["--photo-s3-prefix", &prefix])
                    .args(["--photo-s3-endpoint", &endpoint])
                    .arg("--photo-s3-path-style")
                    .env("AWS_ACCESS_KEY_ID", access_key_id)
                    .env("AWS_SECRET_ACCESS_KEY", secret_access_key);
            }
        }
        let mut proc = ChildGuard::spawn_logged(cmd, &dir.join("fieldbook.log"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if crate::http_get(&format!("127.0.0.1:{port}"), "/readyz").is_ok_and(|b| !b.is_empty())
            {
                break;
            }
            if !proc.is_running() || Instant::now() > deadline {
                anyhow::bail!("fieldbook did not become ready:\n{}", proc.log_text());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self {
            proc,
            port,
            token,
            database_url: database_url.to_owned(),
        })
    }

    /// The ops API base URL, as a BackupPolicy's `spec.app.endpoint` names it.
    pub fn ops_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/ops/v1", self.port)
    }

    /// GETs an ops API path (e.g. `verify`, `maintenance`) with the bearer token, as JSON.
    pub fn ops_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        use std::io::{Read, Write};
        let addr = format!("127.0.0.1:{}", self.port);
        let mut s = std::net::TcpStream::connect(&addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "GET /ops/v1/{path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.token
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        anyhow::ensure!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "GET /ops/v1/{path}: {head}\n{body}"
        );
        Ok(serde_json::from_str(body)?)
    }

    /// Creates an admin account with the real CLI (a row in the users table).
    pub fn create_admin(&self, dir: &Path, email: &str) -> anyhow::Result<()> {
        let password = dir.join("admin-password");
        std::fs::write(&password, "correct horse battery staple")?;
        let out = Command::new(fieldbook_binary())
            .args(["create-admin", "--database-url", &self.database_url])
            .args(["--email", email])
            .arg("--password-file")
            .arg(&password)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "fieldbook create-admin: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}
