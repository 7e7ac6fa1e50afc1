//! Incremental, content-addressed backup of objects (photos) from a local directory or an S3
//! bucket — any [`Repository`] serves as the source.
//!
//! Each object's content is stored once, age-encrypted, under `blobs/sha256/<xx>/<sha256 of the
//! plaintext>`. The previous restore point's key → (size, version stamp, hash) map is the index:
//! an object whose size and ETag/mtime are unchanged is not read again, and a blob the
//! repository already has is not uploaded again, so a backup costs in proportion to what
//! changed (plus one listing of the source and one of the blobs).

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::stream::{self, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::manifest::{ObjectEntry, ObjectsEntry, PolicyLocation};
use crate::pipeline::{self, Compression, Encryption, Progress};
use crate::repository::{ObjectMeta, Repository};
use crate::{Error, Result};

/// Where the objects come from.
#[derive(Clone)]
pub struct ObjectsSource {
    pub store: Arc<dyn Repository>,
    /// Only keys under this prefix (e.g. `photos/`); keys in the manifest are relative to it.
    pub prefix: String,
    /// Objects processed at once.
    pub parallelism: usize,
    /// Objects up to this size are read once into memory (hash, then encrypt from memory);
    /// larger ones are streamed twice. Memory ≤ `parallelism × small_object_limit`.
    pub small_object_limit: u64,
}

impl ObjectsSource {
    pub fn new(store: Arc<dyn Repository>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            parallelism: 8,
            small_object_limit: 8 * 1024 * 1024,
        }
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Arc<Mutex<(Sha256, u64)>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let mut h = this.hasher.lock().expect("hash lock");
            h.0.update(&buf.filled()[before..]);
            h.1 += (buf.filled().len() - before) as u64;
        }
        result
    }
}

enum Outcome {
    Reused(ObjectEntry),
    Read {
        entry: ObjectEntry,
        uploaded_bytes: Option<u64>,
    },
}

/// Backs up every object under the source prefix. `previous` is the objects map of the newest
/// restore point (the index). Blobs uploaded before a failure stay: they are valid content,
/// reused by the next run or collected by retention.
pub async fn backup_objects(
    repo: &dyn Repository,
    location: &PolicyLocation,
    source: &ObjectsSource,
    previous: Option<&ObjectsEntry>,
    encryption: &Encryption,
    progress: &Progress,
) -> Result<ObjectsEntry> {
    let listed = source
        .store
        .list(&source.prefix)
        .await
        .map_err(|e| Error::source("objects", e.to_string()))?;
    // Blobs the repository has, plus those this run has claimed: two keys with the same content
    // upload one blob.
    let present: HashSet<String> = repo
        .list(&location.blobs_prefix())
        .await?
        .iter()
        .filter_map(|m| location.blob_hash(&m.key).map(str::to_owned))
        .collect();
    let present = &Mutex::new(present);
    let outcomes: Vec<(String, Outcome)> = stream::iter(listed.into_iter().map(Ok))
        .map_ok(|meta: ObjectMeta| async move {
            let rel = meta
                .key
                .strip_prefix(&source.prefix)
                .unwrap_or(&meta.key)
                .to_owned();
            let version = meta.version_stamp();
            if let Some(prev) = previous.and_then(|p| p.entries.get(&rel))
                && prev.size == meta.size
                && prev.version == version
                && present.lock().expect("blob set").contains(&prev.sha256)
            {
                return Ok((rel, Outcome::Reused(prev.clone())));
            }
            let outcome = read_and_store(
                repo, location, source, &meta, version, present, encryption, progress,
            )
            .await?;
            Ok((rel, outcome))
        })
        .try_buffer_unordered(source.parallelism.max(1))
        .try_collect()
        .await?;
    let mut entry = ObjectsEntry {
        source: source.store.describe(),
        count: 0,
        bytes: 0,
        uploaded: 0,
        uploaded_bytes: 0,
        read: 0,
        entries: BTreeMap::new(),
    };
    for (key, outcome) in outcomes {
        let object = match outcome {
            Outcome::Reused(object) => object,
            Outcome::Read {
                entry: object,
                uploaded_bytes,
            } => {
                entry.read += 1;
                if let Some(bytes) = uploaded_bytes {
                    entry.uploaded += 1;
                    entry.uploaded_bytes += bytes;
                }
                object
            }
        };
        entry.count += 1;
        entry.bytes += object.size;
        entry.entries.insert(key, object);
    }
    Ok(entry)
}

#[allow(clippy::too_many_arguments)]
async fn read_and_store(
    repo: &dyn Repository,
    location: &PolicyLocation,
    source: &ObjectsSource,
    meta: &ObjectMeta,
    version: String,
    present: &Mutex<HashSet<String>>,
    encryption: &Encryption,
    progress: &Progress,
) -> Result<Outcome> {
    let fail = |e: Error| Error::source("objects", format!("{}: {e}", meta.key));
    if meta.size <= source.small_object_limit {
        let mut data = Vec::with_capacity(meta.size as usize);
        source
            .store
            .get(&meta.key)
            .await
            .map_err(fail)?
            .take(source.small_object_limit + 1)
            .read_to_end(&mut data)
            .await
            .map_err(|e| fail(Error::io("reading", e)))?;
        let sha256 = hex::encode(Sha256::digest(&data));
        let size = data.len() as u64;
        let claimed = present.lock().expect("blob set").insert(sha256.clone());
        let uploaded_bytes = if !claimed {
            None
        } else {
            let stored = pipeline::store(
                repo,
                &location.blob_key(&sha256),
                "objects",
                io::Cursor::new(data),
                encryption,
                Compression::None,
                Some(progress),
            )
            .await?;
            Some(stored.stored_bytes)
        };
        return Ok(Outcome::Read {
            entry: ObjectEntry {
                sha256,
                size,
                version,
            },
            uploaded_bytes,
        });
    }
    // Large object: hash in one pass, then (if new) store in a second pass that hashes again,
    // so a blob never holds content other than what its name says.
    let first = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let mut reader = HashingReader {
        inner: source.store.get(&meta.key).await.map_err(fail)?,
        hasher: first.clone(),
    };
    tokio::io::copy(&mut reader, &mut tokio::io::sink())
        .await
        .map_err(|e| fail(Error::io("reading", e)))?;
    let (hasher, size) = std::mem::take(&mut *first.lock().expect("hash lock"));
    let sha256 = hex::encode(hasher.finalize());
    if !present.lock().expect("blob set").insert(sha256.clone()) {
        return Ok(Outcome::Read {
            entry: ObjectEntry {
                sha256,
                size,
                version,
            },
            uploaded_bytes: None,
        });
    }
    let second = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let reader = HashingReader {
        inner: source.store.get(&meta.key).await.map_err(fail)?,
        hasher: second.clone(),
    };
    let blob_key = location.blob_key(&sha256);
    let stored = pipeline::store(
        repo,
        &blob_key,
        "objects",
        reader,
        encryption,
        Compression::None,
        Some(progress),
    )
    .await?;
    let (hasher, _) = std::mem::take(&mut *second.lock().expect("hash lock"));
    if hex::encode(hasher.finalize()) != sha256 {
        repo.delete(&blob_key).await?;
        return Err(Error::source(
            "objects",
            format!("{} changed while it was being backed up", meta.key),
        ));
    }
    Ok(Outcome::Read {
        entry: ObjectEntry {
            sha256,
            size,
            version,
        },
        uploaded_bytes: Some(stored.stored_bytes),
    })
}
