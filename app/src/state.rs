//! Shared application state handed to every handler as `State<AppState>`.

use std::sync::{Arc, RwLock};

use crate::auth::LoginLimiter;
use crate::config::AppConfig;
use crate::db::Db;
use crate::logs::{Category, LogStore};
use crate::metrics::Metrics;
use crate::photos::PhotoStore;

pub const MAINTENANCE_SETTING: &str = "maintenance_message";

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<AppConfig>,
    pub logs: Arc<LogStore>,
    pub metrics: Arc<Metrics>,
    pub photos: Arc<PhotoStore>,
    pub limiter: Arc<LoginLimiter>,
    /// Message shown while maintenance mode is on; None when off. Cached here
    /// because every request consults it; the ops API updates DB and cache.
    pub maintenance: Arc<RwLock<Option<String>>>,
}

impl AppState {
    pub async fn new(db: Db, config: AppConfig) -> anyhow::Result<AppState> {
        let metrics = Arc::new(Metrics::new());
        let db = db.with_metrics(metrics.clone());
        let photos = PhotoStore::open(
            config.photo_dir.clone(),
            config.photo_s3.as_ref(),
            metrics.clone(),
        )?;
        let maintenance = db.setting(MAINTENANCE_SETTING).await?;
        Ok(AppState {
            logs: Arc::new(LogStore::new(db.clone(), config.log_stdout)),
            db,
            config: Arc::new(config),
            metrics,
            photos: Arc::new(photos),
            limiter: Arc::new(LoginLimiter::default()),
            maintenance: Arc::new(RwLock::new(maintenance)),
        })
    }

    /// Writes an audit entry. A failing log store must not fail the request
    /// that caused the entry; `append` already reported it on stderr.
    pub async fn audit(&self, category: Category, entry: serde_json::Value) {
        let _ = self.logs.append(category, entry).await;
    }

    pub fn maintenance_message(&self) -> Option<String> {
        self.maintenance
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
