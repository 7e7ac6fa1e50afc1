//! Command line and environment configuration of the `fieldbook` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fieldbook",
    version,
    about = "Crop records for farmers, operated by tend"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (migrates the database first).
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(DbArgs),
    /// Check the hash chains of the stored logs; exit code 1 when broken.
    VerifyLogs(DbArgs),
    /// Create an admin account (password read from a file or stdin).
    CreateAdmin(CreateAdminArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// SQLite file path or `sqlite://` URL (default), or a `postgres://` URL.
    #[arg(long, env = "FIELDBOOK_DATABASE_URL", default_value = "fieldbook.db")]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "FIELDBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory where photos and screenshots are stored.
    #[arg(long, env = "FIELDBOOK_PHOTO_DIR", default_value = "photos")]
    pub photo_dir: PathBuf,
    /// File holding the bearer token of the ops API; without it the ops API answers 401.
    #[arg(long, env = "FIELDBOOK_OPS_TOKEN_FILE")]
    pub ops_token_file: Option<PathBuf>,
    /// SMTP server for acknowledgement e-mails; without it no e-mail is sent.
    #[arg(long, env = "FIELDBOOK_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// Port of the SMTP server; by default 25 (`none`), 587 (`starttls`) or 465 (`tls`).
    #[arg(long, env = "FIELDBOOK_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// Transport security: `none` (plain SMTP to a local relay), `starttls`
    /// (required upgrade) or `tls` (implicit TLS). Certificates are checked
    /// against the system's roots.
    #[arg(long, env = "FIELDBOOK_SMTP_TLS", value_enum, default_value_t = SmtpTls::None)]
    pub smtp_tls: SmtpTls,
    /// Sender address (`support@example.com` or `Support <support@example.com>`).
    #[arg(
        long,
        env = "FIELDBOOK_SMTP_FROM",
        default_value = "support@fieldbook.invalid"
    )]
    pub smtp_from: String,
    /// User name for SMTP AUTH (PLAIN or LOGIN); needs a password.
    #[arg(long, env = "FIELDBOOK_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// File holding the SMTP password (e.g. a mounted Secret).
    #[arg(long, env = "FIELDBOOK_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// The SMTP password may also come from the environment, never the command line.
    #[arg(skip = std::env::var("FIELDBOOK_SMTP_PASSWORD").ok())]
    pub smtp_password: Option<String>,
    /// Mark cookies `Secure` (set when fieldbook is served over TLS).
    #[arg(long, env = "FIELDBOOK_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// E-mail of an admin created at start-up when no admin exists yet.
    #[arg(long, env = "FIELDBOOK_BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,
    /// File holding that admin's initial password.
    #[arg(long, env = "FIELDBOOK_BOOTSTRAP_ADMIN_PASSWORD_FILE")]
    pub bootstrap_admin_password_file: Option<PathBuf>,
    /// Store photos in this S3 bucket instead of the photo directory.
    #[arg(long, env = "FIELDBOOK_PHOTO_S3_BUCKET")]
    pub photo_s3_bucket: Option<String>,
    /// Key prefix inside the bucket.
    #[arg(long, env = "FIELDBOOK_PHOTO_S3_PREFIX", default_value = "photos")]
    pub photo_s3_prefix: String,
    #[arg(long, env = "FIELDBOOK_PHOTO_S3_REGION", default_value = "us-east-1")]
    pub photo_s3_region: String,
    /// Endpoint of an S3-compatible server (MinIO, Garage, …).
    #[arg(long, env = "FIELDBOOK_PHOTO_S3_ENDPOINT")]
    pub photo_s3_endpoint: Option<String>,
    /// Path-style addressing (needed by most S3-compatible servers).
    #[arg(long, env = "FIELDBOOK_PHOTO_S3_PATH_STYLE")]
    pub photo_s3_path_style: bool,
    /// Credentials come from the environment only, never the command line.
    #[arg(skip = std::env::var("AWS_ACCESS_KEY_ID").ok())]
    pub aws_access_key_id: Option<String>,
    #[arg(skip = std::env::var("AWS_SECRET_ACCESS_KEY").ok())]
    pub aws_secret_access_key: Option<String>,
    /// Do not print log entries on stdout (they are still stored).
    #[arg(long, env = "FIELDBOOK_QUIET")]
    pub quiet: bool,
    /// How often the self-check behind `GET /ops/v1/verify` runs in the
    /// background (`30s`, `10m`, `1h`; `0` or `off` disables it).
    #[arg(long, env = "FIELDBOOK_VERIFY_INTERVAL", default_value = "10m")]
    pub verify_interval: String,
}

#[derive(Debug, Clone, Args)]
pub struct CreateAdminArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub email: String,
    /// File holding the password; stdin when absent.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Settings the running app needs, independent of where they came from.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub photo_dir: PathBuf,
    /// Photos in an S3 bucket instead of `photo_dir` (which then only stages uploads).
    pub photo_s3: Option<S3Config>,
    /// SHA-256 of the ops token; the token itself is not kept.
    pub ops_token_sha256: Option<[u8; 32]>,
    pub smtp: Option<SmtpConfig>,
    pub secure_cookies: bool,
    pub log_stdout: bool,
    pub argon2: Argon2Cost,
    /// Failed sign-ins per e-mail or address before throttling.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    pub session_ttl_secs: i64,
    pub upload_limit_bytes: usize,
    /// Period of the background self-check; None disables it.
    pub verify_interval: Option<std::time::Duration>,
}

#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    // The secret key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain SMTP, for a relay or sidecar on a trusted network.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS; fails when the server does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: SmtpTls,
    /// User name and password for SMTP AUTH; none for an open relay.
    pub credentials: Option<(String, String)>,
}

impl SmtpConfig {
    /// Plain SMTP without authentication, e.g. to a local relay.
    pub fn plain(host: impl Into<String>, port: u16, from: impl Into<String>) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            from: from.into(),
            tls: SmtpTls::None,
            credentials: None,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

/// argon2id cost. Production uses the OWASP-recommended 19 MiB, t=2; tests
/// lower it because debug builds hash slowly.
#[derive(Debug, Clone, Copy)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Argon2Cost {
    pub const PRODUCTION: Argon2Cost = Argon2Cost {
        memory_kib: 19 * 1024,
        iterations: 2,
    };
}

impl AppConfig {
    pub fn new(photo_dir: PathBuf) -> AppConfig {
        AppConfig {
            photo_dir,
            photo_s3: None,
            ops_token_sha256: None,
            smtp: None,
            secure_cookies: false,
            log_stdout: true,
            argon2: Argon2Cost::PRODUCTION,
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            session_ttl_secs: 14 * 24 * 3600,
            upload_limit_bytes: 20 * 1024 * 1024,
            verify_interval: Some(std::time::Duration::from_secs(600)),
        }
    }

    pub fn with_ops_token(mut self, token: &str) -> AppConfig {
        use sha2::Digest;
        self.ops_token_sha256 = Some(sha2::Sha256::digest(token.trim().as_bytes()).into());
        self
    }
}
