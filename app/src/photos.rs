//! Photo and screenshot objects, content-addressed, on local disk or in an
//! S3 bucket.
//!
//! Uploads are streamed chunk by chunk into a temporary file under the photo
//! directory while their SHA-256 is computed; the finished file then becomes
//! the object `sha256/<xx>/<hash>` (a rename on disk, or a streamed PutObject
//! from the file to S3). Nothing is buffered whole, a partial upload never
//! appears under a final key, and identical photos are stored once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::multipart::Field;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::config::S3Config;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;

pub struct PhotoStore {
    /// Local objects live here; with S3 it only stages uploads in `tmp/`.
    root: PathBuf,
    s3: Option<S3Store>,
    metrics: Arc<Metrics>,
}

struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    fn new(config: &S3Config) -> anyhow::Result<S3Store> {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        if config.bucket.trim().is_empty() {
            anyhow::bail!("--photo-s3-bucket must not be empty");
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.path_style)
            .http_client(http);
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder.credentials_provider(Credentials::new(
                    id,
                    secret,
                    None,
                    None,
                    "fieldbook",
                ));
            }
            _ => anyhow::bail!(
                "photo storage on S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ),
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.trim_matches('/').to_string(),
        })
    }

    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(anyhow::anyhow!(
                "S3 HeadObject failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )),
        }
    }
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
    pub fn open(
        root: PathBuf,
        s3: Option<&S3Config>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<PhotoStore> {
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| {
            anyhow::anyhow!("cannot create photo directory {}: {e}", root.display())
        })?;
        let s3 = s3.map(S3Store::new).transpose()?;
        Ok(PhotoStore { root, s3, metrics })
    }

    pub fn describe(&self) -> String {
        match &self.s3 {
            Some(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
            None => self.root.display().to_string(),
        }
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
        if let Some(s3) = &self.s3 {
            // The temp file is deleted when `tmp_path` drops, after the upload.
            if !s3.exists(&key).await? {
                let body = aws_sdk_s3::primitives::ByteStream::from_path(&tmp_path)
                    .await
                    .map_err(|e| {
                        AppError::Internal(anyhow::anyhow!("reading the staged upload: {e}"))
                    })?;
                s3.client
                    .put_object()
                    .bucket(&s3.bucket)
                    .key(s3.object_key(&key))
                    .content_type(content_type.unwrap_or("application/octet-stream"))
                    .content_length(size as i64)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        AppError::Internal(anyhow::anyhow!(
                            "S3 PutObject failed: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        ))
                    })?;
            }
            drop(tmp_path);
            self.metrics.observe_photo("put", started.elapsed());
            return Ok(Some(StoredObject {
                key,
                size: size as i64,
                content_type: content_type.unwrap_or("application/octet-stream"),
            }));
        }
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

    /// The object's bytes as a streaming response body.
    pub async fn open_object(&self, key: &str) -> AppResult<Body> {
        let started = Instant::now();
        if !valid_key(key) {
            return Err(AppError::NotFound);
        }
        let body = match &self.s3 {
            Some(s3) => {
                let object = s3
                    .client
                    .get_object()
                    .bucket(&s3.bucket)
                    .key(s3.object_key(key))
                    .send()
                    .await
                    .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                        Some(404) => AppError::NotFound,
                        _ => AppError::Internal(anyhow::anyhow!(
                            "S3 GetObject failed: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        )),
                    })?;
                Body::from_stream(ReaderStream::new(object.body.into_async_read()))
            }
            None => {
                let file = tokio::fs::File::open(self.root.join(key))
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => AppError::NotFound,
                        _ => AppError::Internal(e.into()),
                    })?;
                Body::from_stream(ReaderStream::new(file))
            }
        };
        self.metrics.observe_photo("get", started.elapsed());
        Ok(body)
    }

    /// Whether the object is present; errors of the store count as absent
    /// and are returned so `verify` can report them.
    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        let started = Instant::now();
        let found = if !valid_key(key) {
            Ok(false)
        } else {
            match &self.s3 {
                Some(s3) => s3.exists(key).await.map_err(|e| e.to_string()),
                None => Ok(tokio::fs::try_exists(self.root.join(key))
                    .await
                    .unwrap_or(false)),
            }
        };
        self.metrics.observe_photo("head", started.elapsed());
        found
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_address_keys_are_valid() {
        let hash = "ab".repeat(32);
        assert!(valid_key(&format!("sha256/ab/{hash}")));
        assert!(!valid_key(&format!("sha256/cd/{hash}")));
        assert!(!valid_key("sha256/ab/../../etc/passwd"));
        assert!(!valid_key(&format!("sha256/AB/{}", "AB".repeat(32))));
    }

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<svg onload=alert(1)>"), None);
    }
}
