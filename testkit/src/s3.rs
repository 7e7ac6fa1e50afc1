//! An S3-compatible server for the tests: `moto_server` on a free loopback port, or the server
//! a developer already runs.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::net::free_port;
use crate::process::ChildGuard;
use crate::tools::require;

/// Credentials the tests sign with (moto accepts any).
pub const S3_KEY_ID: &str = "testing-key-id";
pub const S3_SECRET: &str = "testing-secret-key-do-not-log";

/// How long moto may take to listen: it imports a lot of Python on two busy cores.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// `moto_server` on a free port — or, when `TEND_TEST_S3_PORT` is set, an S3-compatible server
/// the developer already runs on that loopback port (to run the same tests against another
/// implementation; buckets are created as needed, state is not reset). Stopped on drop.
pub struct S3Server {
    _child: Option<ChildGuard>,
    pub port: u16,
}

impl S3Server {
    pub fn start() -> Self {
        if let Some(port) = std::env::var("TEND_TEST_S3_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
        {
            return Self { _child: None, port };
        }
        let port = free_port();
        let bin = require(
            "moto_server",
            "pip install 'moto[server]' (PyPI package moto with the server extra)",
        );
        let mut child = ChildGuard::spawn(
            Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "moto_server",
        );
        child.wait_for_port_blocking(port, "moto_server", START_TIMEOUT);
        Self {
            _child: Some(child),
            port,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[cfg(feature = "backup")]
mod backup {
    use std::time::Duration;

    use tend_backup::{S3Config, S3Credentials, S3Repository};

    use super::{S3_KEY_ID, S3_SECRET};

    /// An S3 config for `endpoint` with small parts so multipart is exercised.
    pub fn s3_config(endpoint: &str, bucket: &str, prefix: &str) -> S3Config {
        let mut config = S3Config::new(bucket, "us-east-1");
        config.endpoint = Some(endpoint.to_owned());
        config.prefix = prefix.to_owned();
        config.force_path_style = true;
        config.credentials = Some(S3Credentials {
            access_key_id: S3_KEY_ID.into(),
            secret_access_key: S3_SECRET.into(),
            session_token: None,
        });
        config.part_size = 5 * 1024 * 1024;
        config.max_parallel_parts = 2;
        config.connect_timeout = Duration::from_secs(5);
        config.attempt_timeout = Duration::from_secs(60);
        config
    }

    /// The repository `prefix` in `bucket` on `endpoint`, creating the bucket if needed.
    pub async fn s3_repo(endpoint: &str, bucket: &str, prefix: &str) -> S3Repository {
        let repo = S3Repository::new(s3_config(endpoint, bucket, prefix)).expect("S3 repository");
        match repo.client().create_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e) => {
                let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e));
                assert!(text.contains("BucketAlready"), "create bucket: {text}");
            }
        }
        repo
    }
}

#[cfg(feature = "backup")]
pub use backup::{s3_config, s3_repo};
