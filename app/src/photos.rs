//! Photo and screenshot objects on local disk, content-addressed.
//!
//! Uploads are streamed chunk by chunk into a temporary file in the store
//! while their SHA-256 is computed, then renamed to `sha256/<xx>/<hash>`:
//! nothing is buffered whole, a partial upload never appears under a final
//! key, and identical photos are stored once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::multipart::Field;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;

pub struct PhotoStore {
    root: PathBuf,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: String,
    pub size: i64,
    pub content_type: &'static str,
}

/// Recognises the image formats we accept from their first bytes; the
/// client's Content-Type is not trusted.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

pub fn valid_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    parts.len() == 3
        && parts[0] == "sha256"
        && parts[1].len() == 2
        && parts[2].len() == 64
        && parts[2].starts_with(parts[1])
        && parts[2]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl PhotoStore {
    pub fn open(root: PathBuf, metrics: Arc<Metrics>) -> anyhow::Result<PhotoStore> {
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| {
            anyhow::anyhow!("cannot create photo directory {}: {e}", root.display())
        })?;
        Ok(PhotoStore { root, metrics })
    }

    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        valid_key(key).then(|| self.root.join(key))
    }

    /// Streams one multipart file field into the store. `field_name` names
    /// the form field in errors. Returns None for an empty file input.
    pub async fn put_stream(
        &self,
        field_name: &'static str,
        field: &mut Field<'_>,
        limit: usize,
    ) -> AppResult<Option<StoredObject>> {
        let started = Instant::now();
        let tmp = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        let mut size = 0usize;
        let mut content_type = None;
        while let Some(chunk) = field.chunk().await.map_err(|e| {
            AppError::field(field_name, format!("upload interrupted: {}", e.body_text()))
        })? {
            if size == 0 && !chunk.is_empty() {
                content_type = Some(sniff(&chunk).ok_or_else(|| {
                    AppError::field(field_name, "must be a JPEG, PNG, GIF or WebP image")
                })?);
            }
            size += chunk.len();
            if size > limit {
                return Err(AppError::field(
                    field_name,
                    format!("is larger than {} MiB", limit / (1024 * 1024)),
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        if size == 0 {
            return Ok(None);
        }
        file.sync_all().await?;
        drop(file);
        let hash = hex::encode(hasher.finalize());
        let key = format!("sha256/{}/{}", &hash[..2], hash);
        let dest = self.root.join(&key);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Same content already stored: the temp file is dropped (deleted).
        if tokio::fs::try_exists(&dest).await? {
            drop(tmp_path);
        } else {
            tmp_path
                .persist(&dest)
                .map_err(|e| AppError::Internal(e.error.into()))?;
        }
        self.metrics.observe_photo("put", started.elapsed());
        Ok(Some(StoredObject {
            key,
            size: size as i64,
            content_type: content_type.unwrap_or("application/octet-stream"),
        }))
    }

    pub async fn open_object(&self, key: &str) -> AppResult<tokio::fs::File> {
        let started = Instant::now();
        let path = self.path_of(key).ok_or(AppError::NotFound)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => AppError::NotFound,
                _ => AppError::Internal(e.into()),
            })?;
        self.metrics.observe_photo("get", started.elapsed());
        Ok(file)
    }

    pub async fn exists(&self, key: &str) -> bool {
        let started = Instant::now();
        let found = match self.path_of(key) {
            Some(p) => tokio::fs::try_exists(&p).await.unwrap_or(false),
            None => false,
        };
        self.metrics.observe_photo("head", started.elapsed());
        found
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
