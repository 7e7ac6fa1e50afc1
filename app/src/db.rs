//! Database access: one `sqlx::Any` pool over SQLite (default) or PostgreSQL.
//!
//! All SQL in fieldbook is written once with `$N` placeholders (SQLite binds
//! `$N` by number too) and only BIGINT/TEXT/DOUBLE columns, so the same
//! statements and the same migration run on both backends. Timestamps are
//! Unix milliseconds; calendar days are `YYYY-MM-DD` text, which sorts.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor};

use crate::metrics::Metrics;

/// Which engine sits behind the pool; a few features (snapshots) exist on one only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The tables `verify` counts, in dependency order.
pub const TABLES: &[&str] = &[
    "users",
    "sessions",
    "fields",
    "crops",
    "records",
    "photos",
    "inquiries",
    "inquiry_messages",
    "feedback",
    "nps_responses",
    "support_content",
    "incidents",
    "incident_updates",
    "settings",
    "logs",
    "log_checkpoints",
];

const SCHEMA_V1: &str = include_str!("../migrations/0001_init.sql");
const SCHEMA_V2: &str = include_str!("../migrations/0002_screenshot_type.sql");

/// Normalises what a user may pass as `--database-url`: a `postgres://` URL,
/// a `sqlite:` URL, or a plain file path (SQLite, created when missing).
pub fn normalize_url(raw: &str) -> (Backend, String) {
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        (Backend::Postgres, raw.to_string())
    } else if raw.starts_with("sqlite:") {
        (Backend::Sqlite, raw.to_string())
    } else {
        (Backend::Sqlite, format!("sqlite://{raw}?mode=rwc"))
    }
}

/// The pool plus the metrics every query reports its latency to.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    metrics: Option<std::sync::Arc<Metrics>>,
}

impl Db {
    pub async fn connect(raw_url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(raw_url);
        let max = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open database: {}", redact(&e.to_string())))?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; the setting is
            // stored in the file, so running it once per start is enough.
            pool.execute("PRAGMA journal_mode=WAL").await?;
        }
        Ok(Db {
            pool,
            backend,
            metrics: None,
        })
    }

    pub fn with_metrics(mut self, metrics: std::sync::Arc<Metrics>) -> Db {
        self.metrics = Some(metrics);
        self
    }

    pub fn migrator(&self) -> Migrator {
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let migrations = [(1, "init", SCHEMA_V1), (2, "screenshot type", SCHEMA_V2)]
            .into_iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Owned(sql.replace("@ID@", id)),
                    false,
                )
            })
            .collect::<Vec<_>>();
        let mut migrator = Migrator::DEFAULT;
        migrator.migrations = Cow::Owned(migrations);
        migrator
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    fn observe(&self, op: &'static str, started: Instant) {
        if let Some(m) = &self.metrics {
            m.observe_db(op, started.elapsed());
        }
    }

    pub async fn all<'q, 'c, E>(
        &self,
        executor: E,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> sqlx::Result<Vec<AnyRow>>
    where
        E: Executor<'c, Database = Any>,
    {
        let started = Instant::now();
        let out = query.fetch_all(executor).await;
        self.observe("fetch_all", started);
        out
    }

    pub async fn optional<'q, 'c, E>(
        &self,
        executor: E,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> sqlx::Result<Option<AnyRow>>
    where
        E: Executor<'c, Database = Any>,
    {
        let started = Instant::now();
        let out = query.fetch_optional(executor).await;
        self.observe("fetch_optional", started);
        out
    }

    pub async fn one<'q, 'c, E>(
        &self,
        executor: E,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> sqlx::Result<AnyRow>
    where
        E: Executor<'c, Database = Any>,
    {
        let started = Instant::now();
        let out = query.fetch_one(executor).await;
        self.observe("fetch_one", started);
        out
    }

    pub async fn exec<'q, 'c, E>(
        &self,
        executor: E,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> sqlx::Result<u64>
    where
        E: Executor<'c, Database = Any>,
    {
        let started = Instant::now();
        let out = query.execute(executor).await.map(|r| r.rows_affected());
        self.observe("execute", started);
        out
    }

    pub async fn setting(&self, name: &str) -> sqlx::Result<Option<String>> {
        use sqlx::Row;
        let row = self
            .optional(
                &self.pool,
                sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name.to_string()),
            )
            .await?;
        Ok(row.map(|r| r.get::<String, _>("value")))
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        self.exec(
            &mut *tx,
            sqlx::query("DELETE FROM settings WHERE name = $1").bind(name.to_string()),
        )
        .await?;
        self.exec(
            &mut *tx,
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                .bind(name.to_string())
                .bind(value.to_string()),
        )
        .await?;
        tx.commit().await
    }
}

/// Removes a password from anything that looks like a connection URL, so a
/// failing connect never prints the credential.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(' ') {
        if !out.is_empty() {
            out.push(' ');
        }
        match (word.find("://"), word.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                out.push_str(&word[..scheme + 3]);
                out.push_str("***");
                out.push_str(&word[at..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

/// Current time as Unix milliseconds, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Parses `YYYY-MM-DD`, the only day format fieldbook stores.
pub fn parse_day(field: &'static str, text: &str) -> Result<String, crate::error::AppError> {
    chrono::NaiveDate::from_str(text.trim())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| crate::error::AppError::field(field, "must be a date like 2024-05-01"))
}

pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_connection_urls_are_redacted() {
        assert_eq!(
            redact("error connecting to postgres://app:s3cret@db:5432/fb: refused"),
            "error connecting to postgres://***@db:5432/fb: refused"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn database_urls_pick_the_backend() {
        assert_eq!(normalize_url("postgres://h/db").0, Backend::Postgres);
        assert_eq!(
            normalize_url("/var/lib/fb.db"),
            (Backend::Sqlite, "sqlite:///var/lib/fb.db?mode=rwc".into())
        );
        assert_eq!(normalize_url("sqlite::memory:").0, Backend::Sqlite);
    }

    #[test]
    fn days_are_normalised_or_named_in_the_error() {
        assert_eq!(parse_day("day", " 2024-05-01 ").unwrap(), "2024-05-01");
        let err = parse_day("from", "05/01/2024").unwrap_err();
        assert!(err.to_string().starts_with("from:"));
    }
}
