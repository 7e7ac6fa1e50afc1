//! A repository in an S3 bucket (AWS or any S3-compatible store: endpoint, region and path-style
//! addressing are configurable).
//!
//! Bodies of unknown length are sent as multipart uploads: parts of `part_size` bytes are read
//! one at a time and at most `max_parallel_parts` are in flight, so memory stays below
//! `(max_parallel_parts + 1) × part_size` whatever the object's size. Any failure aborts the
//! upload; an upload orphaned by a crash is found by [`Repository::list_uploads`] and aborted by
//! retention. Every put and part carries `x-amz-checksum-sha256` (unless disabled for servers
//! that reject it), so a server that checks it refuses corrupted bodies.
//!
//! TLS uses rustls with the *ring* provider — the one kube uses — so a binary holding both has
//! a single CryptoProvider and aws-lc-rs is never built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{ByteReader, ObjectMeta, PendingUpload, Repository, check_key};
use crate::{Error, Result};

/// S3's smallest allowed part (except the last).
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Installs rustls' *ring* CryptoProvider as the process default. Call it once at start-up of a
/// binary that links both kube and this crate, before creating any client; calling it again is
/// harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Static credentials. `Debug` never prints the secret parts.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where and how to reach a bucket (mirrors the `S3Location` of the API).
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing slash; may be empty.
    pub prefix: String,
    /// Endpoint URL of an S3-compatible store; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub force_path_style: bool,
    /// `None`: the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN` environment variables.
    pub credentials: Option<S3Credentials>,
    /// Multipart part size (≥ 5 MiB).
    pub part_size: usize,
    /// Parts uploaded at once (≥ 1).
    pub max_parallel_parts: usize,
    /// Send `x-amz-checksum-sha256` with every put and part.
    pub checksum_sha256: bool,
    /// Connect timeout, and the limit for one attempt of one request.
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
}

impl S3Config {
    /// Defaults for everything but the location: 8 MiB parts, 4 in flight, SHA-256 checksums.
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: region.into(),
            force_path_style: false,
            credentials: None,
            part_size: 8 * 1024 * 1024,
            max_parallel_parts: 4,
            checksum_sha256: true,
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(300),
        }
    }
}

/// A repository in an S3 bucket under a prefix.
#[derive(Clone)]
pub struct S3Repository {
    client: Client,
    config: Arc<S3Config>,
}

impl fmt::Debug for S3Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn sdk_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    if let SdkError::ServiceError(service) = err {
        let inner = service.err();
        match (inner.code(), inner.message()) {
            (Some(code), Some(message)) => return format!("{code}: {message}"),
            (Some(code), None) => return code.to_owned(),
            _ => {}
        }
    }
    // The Display of each error in the chain, without the Debug dump of the raw response.
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn status_of<E, R: HasStatus>(err: &SdkError<E, R>) -> Option<u16> {
    err.raw_response().map(HasStatus::status_code)
}

trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

impl S3Repository {
    /// A client for `config`. Validates the configuration; contacts nothing.
    pub fn new(config: S3Config) -> Result<Self> {
        if config.bucket.len() < 3 || config.bucket.len() > 63 {
            return Err(Error::config("s3.bucket", "must be 3 to 63 characters"));
        }
        if config.part_size < MIN_PART_SIZE {
            return Err(Error::config("s3.partSize", "must be at least 5 MiB"));
        }
        if config.max_parallel_parts == 0 {
            return Err(Error::config("s3.maxParallelParts", "must be at least 1"));
        }
        if let Some(endpoint) = &config.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::config(
                "s3.endpoint",
                "must start with http:// or https://",
            ));
        }
        let credentials = match &config.credentials {
            Some(c) => Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                c.session_token.clone(),
                None,
                "tend",
            ),
            None => {
                let id = std::env::var("AWS_ACCESS_KEY_ID").ok();
                let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
                match (id, secret) {
                    (Some(id), Some(secret)) => Credentials::new(
                        id,
                        secret,
                        std::env::var("AWS_SESSION_TOKEN").ok(),
                        None,
                        "environment",
                    ),
                    _ => {
                        return Err(Error::config(
                            "s3.credentialsSecretRef",
                            "no credentials given and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set",
                        ));
                    }
                }
            }
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(config.force_path_style)
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .build(),
            )
            // We send our own SHA-256 where wanted; no extra CRC32 on top.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            config: Arc::new(config),
        })
    }

    /// The underlying client (tests create buckets with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    fn full_key(&self, key: &str) -> String {
        let prefix = self.config.prefix.trim_matches('/');
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}/{key}")
        }
    }

    fn full_prefix(&self, prefix: &str) -> String {
        let base = self.config.prefix.trim_matches('/');
        if base.is_empty() {
            prefix.to_owned()
        } else {
            format!("{base}/{prefix}")
        }
    }

    fn relative(&self, full: &str) -> String {
        let base = self.config.prefix.trim_matches('/');
        if base.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(base)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }

    async fn read_part(body: &mut ByteReader, size: usize, key: &str) -> Result<Bytes> {
        let mut buf = BytesMut::with_capacity(size);
        while buf.len() < size {
            let n = body
                .read_buf(&mut buf)
                .await
                .map_err(|e| Error::repo("put", key, format!("reading the data: {e}")))?;
            if n == 0 {
                break;
            }
        }
        Ok(buf.freeze())
    }

    async fn put_single(&self, key: &str, full: &str, data: Bytes) -> Result<u64> {
        let len = data.len() as u64;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(full);
        if self.config.checksum_sha256 {
            req = req.checksum_sha256(sha256_b64(&data));
        }
        req.body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| Error::repo("put", key, sdk_message(&e)))?;
        Ok(len)
    }

    async fn put_inner(&self, key: &str, mut body: ByteReader) -> Result<u64> {
        check_key(key)?;
        let full = self.full_key(key);
        let part_size = self.config.part_size;
        let first = Self::read_part(&mut body, part_size, key).await?;
        if first.len() < part_size {
            return self.put_single(key, &full, first).await;
        }
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.config.bucket)
            .key(&full);
        if self.config.checksum_sha256 {
            create = create.checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        let created = create.send().await.map_err(|e| {
            Error::repo("put", key, format!("starting upload: {}", sdk_message(&e)))
        })?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::repo("put", key, "the server returned no upload id"))?
            .to_owned();
        let result = self
            .upload_parts(key, &full, &upload_id, first, &mut body)
            .await;
        match result {
            Ok(total) => Ok(total),
            Err(e) => {
                let pending = PendingUpload {
                    key: full.clone(),
                    upload_id,
                    initiated: None,
                };
                if let Err(abort) = self.abort_full(&pending).await {
                    tracing::warn!(key, error = %abort, "aborting a failed multipart upload failed; retention will abort it");
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        first: Bytes,
        body: &mut ByteReader,
    ) -> Result<u64> {
        let part_size = self.config.part_size;
        let mut in_flight = FuturesUnordered::new();
        let mut done: Vec<CompletedPart> = Vec::new();
        let mut total = 0u64;
        let mut number = 0i32;
        // `ready` is a whole part waiting for a free slot; `pending` fills with the next one
        // while parts upload. Reading and uploading overlap, and memory stays below
        // (max_parallel_parts + 1) parts plus what is being read.
        let mut ready: Option<Bytes> = Some(first);
        let mut pending = BytesMut::new();
        let mut eof = false;
        loop {
            if in_flight.len() < self.config.max_parallel_parts
                && let Some(data) = ready.take()
            {
                number += 1;
                total += data.len() as u64;
                in_flight.push(self.upload_one(key, full, upload_id, number, data));
            }
            if ready.is_none() && (pending.len() >= part_size || (eof && !pending.is_empty())) {
                ready = Some(pending.split().freeze());
                continue;
            }
            if eof && ready.is_none() && in_flight.is_empty() {
                break;
            }
            let can_read = !eof && ready.is_none();
            if can_read && pending.capacity() == 0 {
                pending.reserve(part_size);
            }
            let want = (part_size - pending.len()) as u64;
            let mut limited = (&mut *body).take(want);
            tokio::select! {
                part = in_flight.next(), if !in_flight.is_empty() => {
                    done.push(part.expect("a part was in flight")?);
                }
                // Cancel-safe: if an upload finishes first, nothing was read.
                n = limited.read_buf(&mut pending), if can_read => {
                    let n = n.map_err(|e| Error::repo("put", key, format!("reading the data: {e}")))?;
                    if n == 0 {
                        eof = true;
                    }
                }
                else => return Err(Error::repo("put", key, "upload stalled (internal error)")),
            }
        }
        done.sort_by_key(|p| p.part_number());
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.config.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(total),
            // Some S3-compatible servers (moto 5.2) answer 200 with a body the SDK cannot
            // parse. The upload may well be complete: believe it only if the object is there
            // with the size we sent (keys are never reused, so it cannot be an older object).
            Err(e) if status_of(&e) == Some(200) => match self.head(key).await? {
                Some(meta) if meta.size == total => Ok(total),
                _ => Err(Error::repo(
                    "put",
                    key,
                    format!("completing upload: {}", sdk_message(&e)),
                )),
            },
            Err(e) => Err(Error::repo(
                "put",
                key,
                format!("completing upload: {}", sdk_message(&e)),
            )),
        }
    }

    async fn upload_one(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> Result<CompletedPart> {
        let checksum = self.config.checksum_sha256.then(|| sha256_b64(&data));
        let mut req = self
            .client
            .upload_part()
            .bucket(&self.config.bucket)
            .key(full)
            .upload_id(upload_id)
            .part_number(number);
        if let Some(c) = &checksum {
            req = req.checksum_sha256(c);
        }
        let out = req.body(ByteStream::from(data)).send().await.map_err(|e| {
            Error::repo(
                "put",
                key,
                format!("uploading part {number}: {}", sdk_message(&e)),
            )
        })?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .set_checksum_sha256(checksum)
            .build())
    }

    async fn abort_full(&self, upload: &PendingUpload) -> Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.config.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(Error::repo("abort upload", &upload.key, sdk_message(&e))),
        }
    }
}

fn timestamp(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<Timestamp> {
    t.and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok())
}

impl Repository for S3Repository {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteReader,
        _size_hint: Option<u64>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.put_inner(key, body))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ByteReader>> {
        Box::pin(async move {
            check_key(key)?;
            let out = self
                .client
                .get_object()
                .bucket(&self.config.bucket)
                .key(self.full_key(key))
                .send()
                .await
                .map_err(|e| Error::repo("get", key, sdk_message(&e)))?;
            Ok(Box::pin(out.body.into_async_read()) as ByteReader)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move {
            check_key(key)?;
            match self
                .client
                .head_object()
                .bucket(&self.config.bucket)
                .key(self.full_key(key))
                .send()
                .await
            {
                Ok(out) => Ok(Some(ObjectMeta {
                    key: key.to_owned(),
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    modified: timestamp(out.last_modified()),
                    etag: out.e_tag().map(|e| e.trim_matches('"').to_owned()),
                })),
                Err(e) if status_of(&e) == Some(404) => Ok(None),
                Err(e) => Err(Error::repo("head", key, sdk_message(&e))),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectMeta>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.config.bucket)
                    .prefix(self.full_prefix(prefix))
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| Error::repo("list", prefix, sdk_message(&e)))?;
                for object in page.contents() {
                    let Some(full) = object.key() else { continue };
                    out.push(ObjectMeta {
                        key: self.relative(full),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        modified: timestamp(object.last_modified()),
                        etag: object.e_tag().map(|e| e.trim_matches('"').to_owned()),
                    });
                }
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_owned())
                    }
                    _ => break,
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_key(key)?;
            match self
                .client
                .delete_object()
                .bucket(&self.config.bucket)
                .key(self.full_key(key))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if status_of(&e) == Some(404) => Ok(()),
                Err(e) => Err(Error::repo("delete", key, sdk_message(&e))),
            }
        })
    }

    fn list_uploads<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<PendingUpload>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut key_marker: Option<String> = None;
            let mut id_marker: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_multipart_uploads()
                    .bucket(&self.config.bucket)
                    .prefix(self.full_prefix(prefix))
                    .set_key_marker(key_marker.take())
                    .set_upload_id_marker(id_marker.take())
                    .send()
                    .await
                    .map_err(|e| Error::repo("list uploads", prefix, sdk_message(&e)))?;
                for upload in page.uploads() {
                    if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                        out.push(PendingUpload {
                            key: key.to_owned(),
                            upload_id: id.to_owned(),
                            initiated: timestamp(upload.initiated()),
                        });
                    }
                }
                if page.is_truncated() == Some(true) {
                    key_marker = page.next_key_marker().map(str::to_owned);
                    id_marker = page.next_upload_id_marker().map(str::to_owned);
                    if key_marker.is_none() {
                        break;
                    }
                } else {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn abort_upload<'a>(&'a self, upload: &'a PendingUpload) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.abort_full(upload))
    }

    fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.config.bucket,
            self.config.prefix.trim_matches('/'),
            self.config.endpoint.as_deref().unwrap_or("AWS")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        let mut c = S3Config::new("backups", "us-east-1");
        c.credentials = Some(S3Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
            session_token: Some("token-value".into()),
        });
        c
    }

    #[test]
    fn crypto_provider_installs_once_and_again_harmlessly() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn debug_output_hides_credentials() {
        let text = format!("{:?}", config());
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("very-secret-value") && !text.contains("token-value"));
        let repo = S3Repository::new(config()).unwrap();
        assert!(!format!("{repo:?}").contains("very-secret-value"));
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let mut c = config();
        c.part_size = 1024;
        let err = S3Repository::new(c).unwrap_err().to_string();
        assert!(err.contains("s3.partSize"), "{err}");
        let mut c = config();
        c.endpoint = Some("minio:9000".into());
        let err = S3Repository::new(c).unwrap_err().to_string();
        assert!(err.contains("s3.endpoint"), "{err}");
        let mut c = config();
        c.bucket = "x".into();
        let err = S3Repository::new(c).unwrap_err().to_string();
        assert!(err.contains("s3.bucket"), "{err}");
    }

    #[test]
    fn keys_are_placed_under_the_prefix() {
        let mut c = config();
        c.prefix = "/tend/prod/".into();
        let repo = S3Repository::new(c).unwrap();
        assert_eq!(repo.full_key("ns/p/x"), "tend/prod/ns/p/x");
        assert_eq!(repo.relative("tend/prod/ns/p/x"), "ns/p/x");
    }
}
