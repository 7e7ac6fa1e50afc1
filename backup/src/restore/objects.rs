//! Objects (photos) back to a store, and a check that a store holds what a manifest lists.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::manifest::{Manifest, ObjectEntry, PolicyLocation};
use crate::pipeline::{self, Decryption, Progress};
use crate::repository::{ByteReader, ObjectMeta, Repository};
use crate::{Error, Result};

/// Keys of each kind a check reports by name (the counts are complete).
const NAMED_KEYS: usize = 20;

/// Where objects are restored: a store and a key prefix (`""` or ending in `/`) under which each
/// manifest key is written.
#[derive(Clone)]
pub struct ObjectsTarget {
    pub store: Arc<dyn Repository>,
    pub prefix: String,
}

impl ObjectsTarget {
    fn check_prefix(&self) -> Result<()> {
        if !(self.prefix.is_empty() || self.prefix.ends_with('/')) || self.prefix.starts_with('/') {
            return Err(Error::config(
                "objects target prefix",
                format!(
                    "{:?} must be empty or end with '/' (and not start with one)",
                    self.prefix
                ),
            ));
        }
        Ok(())
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Everything under the prefix, by full key.
    async fn listing(&self) -> Result<HashMap<String, ObjectMeta>> {
        Ok(self
            .store
            .list(&self.prefix)
            .await?
            .into_iter()
            .map(|m| (m.key.clone(), m))
            .collect())
    }
}

#[derive(Clone, Debug)]
pub struct ObjectsRestoreOptions {
    /// Objects restored at once (default 8).
    pub parallelism: usize,
    /// Skip objects already present at the target with the manifest's size and version stamp
    /// (`ObjectMeta::version_stamp` == `ObjectEntry.version`): unchanged since the backup.
    /// An object of the right size whose stamp differs (a restored copy has a new mtime or ETag)
    /// is read and hashed, and skipped too if its content is the manifest's. Default true.
    pub skip_unchanged: bool,
}

impl Default for ObjectsRestoreOptions {
    fn default() -> Self {
        Self {
            parallelism: 8,
            skip_unchanged: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectsRestoreReport {
    /// Objects written.
    pub restored: u64,
    /// Objects left alone because the target already held their content.
    pub unchanged: u64,
    /// Plaintext bytes written.
    pub bytes: u64,
}

enum Outcome {
    Restored(u64),
    Unchanged,
    /// Not started: an earlier object failed.
    Cancelled,
}

/// Restores every object of the manifest to the target under its original key (relative to
/// `target.prefix`).
///
/// Each object is written atomically and only if its content matches the manifest's SHA-256:
/// the bytes go straight from the blob (decrypted) to `target.store.put` — no temporary file, no
/// whole object in memory — and if the hash or size turns out wrong, the body fails instead of
/// ending, so the store keeps nothing of it. Objects at the target that are not in the manifest
/// are left alone (never deleted). The first failure stops the restore (objects already being
/// written finish) and the error names the object key. `progress` counts plaintext bytes
/// written. A manifest without objects restores nothing.
pub async fn restore_objects(
    repo: Arc<dyn Repository>,
    location: &PolicyLocation,
    manifest: &Manifest,
    decryption: &Decryption,
    target: &ObjectsTarget,
    options: &ObjectsRestoreOptions,
    progress: &Progress,
) -> Result<ObjectsRestoreReport> {
    target.check_prefix()?;
    let Some(objects) = &manifest.objects else {
        return Ok(ObjectsRestoreReport::default());
    };
    let present = if options.skip_unchanged {
        target.listing().await?
    } else {
        HashMap::new()
    };
    let failed = AtomicBool::new(false);
    let (present, failed, repo) = (&present, &failed, repo.as_ref());
    // Owned items: a stream over borrowed map entries makes the future not provably `Send`
    // (rust-lang/rust#102211), and callers spawn it.
    let items: Vec<(String, ObjectEntry)> = objects
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    let results: Vec<Result<Outcome>> = stream::iter(items)
        .map(|(key, entry)| async move {
            let (key, entry) = (&key, &entry);
            if failed.load(Ordering::Acquire) {
                return Ok(Outcome::Cancelled);
            }
            let target_key = target.key(key);
            let result = async {
                if let Some(meta) = present.get(&target_key)
                    && holds(target, meta, entry).await?
                {
                    return Ok(Outcome::Unchanged);
                }
                restore_one(
                    repo,
                    location,
                    decryption,
                    target,
                    &target_key,
                    entry,
                    progress,
                )
                .await
                .map(Outcome::Restored)
            }
            .await
            .map_err(|e| name_object(key, e));
            if result.is_err() {
                failed.store(true, Ordering::Release);
            }
            result
        })
        .buffer_unordered(options.parallelism.max(1))
        .collect()
        .await;
    let mut report = ObjectsRestoreReport::default();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(Outcome::Restored(n)) => {
                report.restored += 1;
                report.bytes += n;
            }
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Ok(Outcome::Cancelled) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            // Stores that defer durability (a local directory restored into) sync once here.
            target.store.sync().await?;
            Ok(report)
        }
    }
}

/// Whether the target object `meta` already holds `entry`'s content: same size and version
/// stamp, or same size and same SHA-256.
async fn holds(target: &ObjectsTarget, meta: &ObjectMeta, entry: &ObjectEntry) -> Result<bool> {
    if meta.size != entry.size {
        return Ok(false);
    }
    if meta.version_stamp() == entry.version {
        return Ok(true);
    }
    // An object that cannot be read now is simply restored (the put reports a store that is
    // really broken).
    let Ok(body) = target.store.get(&meta.key).await else {
        return Ok(false);
    };
    Ok(match hash_of(body, &meta.key).await {
        Ok((sha256, size)) => size == entry.size && sha256 == entry.sha256,
        Err(_) => false,
    })
}

async fn hash_of(mut body: ByteReader, key: &str) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut body, &mut buf)
            .await
            .map_err(|e| Error::repo("get", key, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

async fn restore_one(
    repo: &dyn Repository,
    location: &PolicyLocation,
    decryption: &Decryption,
    target: &ObjectsTarget,
    target_key: &str,
    entry: &ObjectEntry,
    progress: &Progress,
) -> Result<u64> {
    let blob = location.blob_key(&entry.sha256);
    let plain = pipeline::decrypting_reader(repo.get(&blob).await?, decryption, &blob).await?;
    let failure = Arc::new(Mutex::new(None));
    let body = Verifying {
        inner: plain,
        hasher: Sha256::new(),
        size: 0,
        expected_size: entry.size,
        expected_sha256: entry.sha256.clone(),
        blob: blob.clone(),
        failure: failure.clone(),
        progress: progress.clone(),
    };
    let put = target
        .store
        .put(target_key, Box::pin(body), Some(entry.size))
        .await;
    // Our own verdict on the content is the root cause of a failed put.
    if let Some(message) = failure.lock().expect("failure lock").take() {
        return Err(Error::Integrity(message));
    }
    let stored = put?;
    if stored != entry.size {
        return Err(Error::Integrity(format!(
            "{target_key}: {stored} bytes stored, manifest says {}",
            entry.size
        )));
    }
    Ok(stored)
}

/// Adds the object key to an error that does not name it yet.
fn name_object(key: &str, error: Error) -> Error {
    match error {
        Error::Integrity(m) => Error::Integrity(format!("object {key}: {m}")),
        Error::Encryption(m) => Error::Encryption(format!("object {key}: {m}")),
        Error::Repository {
            operation,
            key: k,
            message,
        } => Error::Repository {
            operation,
            key: k,
            message: format!("{message} (restoring object {key})"),
        },
        other => other,
    }
}

/// The decrypted content on its way to the target: hashed and counted, and failing — instead
/// of ending — when it is not exactly what the manifest lists, so the put stores nothing.
struct Verifying {
    inner: ByteReader,
    hasher: Sha256,
    size: u64,
    expected_size: u64,
    expected_sha256: String,
    blob: String,
    failure: Arc<Mutex<Option<String>>>,
    progress: Progress,
}

impl Verifying {
    fn fail(&self, message: String) -> Poll<io::Result<()>> {
        *self.failure.lock().expect("failure lock") = Some(message.clone());
        Poll::Ready(Err(io::Error::other(message)))
    }
}

impl AsyncRead for Verifying {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match this.inner.as_mut().poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                let message = format!("decrypting blob {}: {e}", this.blob);
                this.fail(message)
            }
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    let actual = hex::encode(std::mem::take(&mut this.hasher).finalize());
                    if this.size != this.expected_size {
                        let message = format!(
                            "blob {} holds {} bytes, manifest says {}",
                            this.blob, this.size, this.expected_size
                        );
                        return this.fail(message);
                    }
                    if actual != this.expected_sha256 {
                        let message = format!(
                            "blob {} decrypts to content with SHA-256 {actual}, not the manifest's",
                            this.blob
                        );
                        return this.fail(message);
                    }
                    return Poll::Ready(Ok(()));
                }
                this.hasher.update(new);
                this.size += new.len() as u64;
                this.progress.add(new.len() as u64);
                if this.size > this.expected_size {
                    let message = format!(
                        "blob {} holds more than the {} bytes the manifest says",
                        this.blob, this.expected_size
                    );
                    return this.fail(message);
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectsCheck {
    /// Objects of the manifest looked at.
    pub checked: u64,
    /// Total missing / wrong, and the first few keys of each (at most 20, in key order) for
    /// messages.
    pub missing: u64,
    pub mismatched: u64,
    pub missing_keys: Vec<String>,
    pub mismatched_keys: Vec<String>,
}

impl ObjectsCheck {
    /// Every object is present with the manifest's size and SHA-256.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.mismatched == 0
    }
}

enum Found {
    Ok,
    Missing,
    Mismatched,
}

/// Reads every manifest object back from the target and compares size and SHA-256 (one listing,
/// then `parallelism` objects streamed at once; an object of the wrong size is not read). A
/// manifest without objects passes with nothing checked.
pub async fn check_objects(
    target: &ObjectsTarget,
    manifest: &Manifest,
    parallelism: usize,
) -> Result<ObjectsCheck> {
    target.check_prefix()?;
    let Some(objects) = &manifest.objects else {
        return Ok(ObjectsCheck::default());
    };
    let present = target.listing().await?;
    let present = &present;
    // Owned items, as in restore_objects: the future stays provably `Send`.
    let items: Vec<(String, ObjectEntry)> = objects
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    let mut results: Vec<(String, Result<Found>)> = stream::iter(items)
        .map(|(key, entry)| async move {
            let found = async {
                let (key, entry) = (&key, &entry);
                let Some(meta) = present.get(&target.key(key)) else {
                    return Ok(Found::Missing);
                };
                if meta.size != entry.size {
                    return Ok(Found::Mismatched);
                }
                let (sha256, size) = hash_of(target.store.get(&meta.key).await?, &meta.key).await?;
                Ok(if sha256 == entry.sha256 && size == entry.size {
                    Found::Ok
                } else {
                    Found::Mismatched
                })
            }
            .await;
            (key, found)
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut check = ObjectsCheck::default();
    for (key, found) in results {
        check.checked += 1;
        match found.map_err(|e| name_object(&key, e))? {
            Found::Ok => {}
            Found::Missing => {
                check.missing += 1;
                if check.missing_keys.len() < NAMED_KEYS {
                    check.missing_keys.push(key.clone());
                }
            }
            Found::Mismatched => {
                check.mismatched += 1;
                if check.mismatched_keys.len() < NAMED_KEYS {
                    check.mismatched_keys.push(key.clone());
                }
            }
        }
    }
    Ok(check)
}
