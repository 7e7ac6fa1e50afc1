//! Real peers for the integration tests: a throwaway PostgreSQL cluster, a moto S3 server, a
//! TCP proxy that can cut the connection to it, and the age key pair backups use. Every service
//! binds a free loopback port and stops when its guard is dropped. A missing tool fails the test
//! with the package to install; nothing is skipped.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use tend_backup::{Decryption, Encryption, S3Config, S3Credentials, S3Repository};

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Finds `tool` on PATH or panics naming what to install.
pub fn require(tool: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{tool}` is needed by this test and is not installed: {install}");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh age key pair.
pub struct Keys {
    pub identity: String,
    pub recipient: String,
}

impl Keys {
    pub fn new() -> Self {
        let identity = age::x25519::Identity::generate();
        Self {
            recipient: identity.to_public().to_string(),
            identity: identity.to_string().expose_secret().to_owned(),
        }
    }
    pub fn encryption(&self) -> Encryption {
        Encryption::from_recipients(&self.recipient).unwrap()
    }
    pub fn decryption(&self) -> Decryption {
        Decryption::from_identities(&self.identity).unwrap()
    }
}

/// `moto_server` on a free port — or, when `TEND_TEST_S3_PORT` is set, an S3-compatible server
/// the developer already runs on that loopback port (to run the same tests against another
/// implementation; buckets are created as needed, state is not reset).
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

pub const S3_KEY_ID: &str = "testing-key-id";
pub const S3_SECRET: &str = "testing-secret-key-do-not-log";

impl Moto {
    pub fn start() -> Self {
        if let Some(port) = std::env::var("TEND_TEST_S3_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
        {
            return Self { child: None, port };
        }
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let bin = require(
            "moto_server",
            "pip install 'moto[server]' (PyPI package moto with the server extra)",
        );
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(port, "moto_server");
        Self {
            child: Some(child),
            port,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

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

pub async fn s3_repo(endpoint: &str, bucket: &str, prefix: &str) -> S3Repository {
    let repo = S3Repository::new(s3_config(endpoint, bucket, prefix)).unwrap();
    match repo.client().create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e));
            assert!(text.contains("BucketAlready"), "create bucket: {text}");
        }
    }
    repo
}

/// A TCP proxy to `target` that can be cut (all connections dropped, new ones refused) and
/// restored: the S3 server "goes away" while keeping its state.
pub struct CutProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl CutProxy {
    pub async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let addr: SocketAddr = ([127, 0, 0, 1], target).into();
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(addr).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port, stopped on drop.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub bin: PathBuf,
    pub password: String,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").is_file());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries are needed: apt-get install postgresql")
    })
}

fn is_root() -> bool {
    // Asking `id` keeps the crate free of unsafe (no geteuid call).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL server tool, as `postgres` when we are root (initdb refuses root).
fn pg_tool(bin: &Path, tool: &str) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        cmd
    } else {
        Command::new(bin.join(tool))
    }
}

impl Postgres {
    pub fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("tend-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the PostgreSQL test directory failed");
        }
        let data = dir.path().join("data");
        let password = "pg-secret-never-logged".to_owned();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status()
                .unwrap();
        }
        let out = pg_tool(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let pg = Self {
            dir,
            port,
            bin,
            password,
        };
        pg.pg_ctl_start();
        pg
    }

    pub fn pg_ctl_start(&self) {
        let out = pg_tool(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&self) {
        let _ = pg_tool(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// A connection over TCP as the superuser, with the password.
    pub fn connection(&self, dbname: &str) -> tend_backup::PostgresConnection {
        tend_backup::PostgresConnection {
            host: "127.0.0.1".into(),
            port: self.port,
            dbname: dbname.into(),
            user: "postgres".into(),
            password: self.password.clone(),
        }
    }

    /// The same over the Unix socket (small buffers: a dump cannot run far ahead).
    pub fn socket_connection(&self, dbname: &str) -> tend_backup::PostgresConnection {
        let mut c = self.connection(dbname);
        c.host = self.dir.path().display().to_string();
        c
    }

    /// Runs SQL with psql as the superuser; returns stdout (unaligned, tuples only).
    pub fn psql(&self, dbname: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", dbname, "-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it is true or the timeout passes.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
