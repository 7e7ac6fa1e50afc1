//! Incremental, content-addressed backup of objects (photos) from a local directory or an S3
//! bucket — any [`Repository`] serves as the source.
//!
//! Each object's content is stored once, age-encrypted, under `blobs/sha256/<xx>/<sha256 of the
//! plaintext>`. The previous restore point's key → (size, version stamp, hash) map is the index:
//! an object whose size and ETag/mtime are unchanged is not read again, and a blob the
//! repository already has is not uploaded again, so a backup costs in proportion to what
//! changed, plus one listing of the source (see [`backup_objects`]).

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
    /// List every blob of the repository and read again an unchanged object whose blob is
    /// missing (deleted by hand, lost by the store). Off by default: the previous restore point
    /// is trusted, so a backup costs in proportion to what changed; drills
    /// ([`verify_backup`](crate::verify_backup)) find a missing blob.
    pub check_all_blobs: bool,
}

impl ObjectsSource {
    pub fn new(store: Arc<dyn Repository>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            parallelism: 8,
            small_object_limit: 8 * 1024 * 1024,
            check_all_blobs: false,
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

/// An object that was read: its entry, and the stored size of its blob if this run uploaded it.
struct ReadObject {
    entry: ObjectEntry,
    uploaded_bytes: Option<u64>,
}

/// Which blobs the repository holds, as far as this run needs to know.
struct Blobs<'a> {
    /// Hashes known to be stored: the previous restore point's blobs (or, without one, the whole
    /// listing), plus those this run has claimed — two keys with the same content upload one
    /// blob.
    known: Mutex<HashSet<String>>,
    /// `false`: `known` is the complete listing, so an unknown hash is absent. `true`: ask the
    /// repository about an unknown hash (one HEAD per new content, not per object).
    ask: bool,
    repo: &'a dyn Repository,
    location: &'a PolicyLocation,
}

impl Blobs<'_> {
    /// Claims `sha256` for this run: `true` when the caller must upload it, `false` when it is
    /// stored already or another object of this run is uploading it.
    async fn claim(&self, sha256: &str) -> Result<bool> {
        if self.known.lock().expect("blob set").contains(sha256) {
            return Ok(false);
        }
        if self.ask
            && self
                .repo
                .head(&self.location.blob_key(sha256))
                .await?
                .is_some()
        {
            self.known
                .lock()
                .expect("blob set")
                .insert(sha256.to_owned());
            return Ok(false);
        }
        Ok(self
            .known
            .lock()
            .expect("blob set")
            .insert(sha256.to_owned()))
    }
}

/// Backs up every object under the source prefix. `previous` is the objects map of the newest
/// restore point (the index). Blobs uploaded before a failure stay: they are valid content,
/// reused by the next run or collected by retention.
///
/// Cost: one listing of the source; then only the objects that are new or whose size or version
/// stamp changed are read, hashed and (if their content is new) uploaded, `parallelism` at a
/// time. An unchanged object is taken from the index without any request: its blob was stored
/// when that restore point was committed, and retention never deletes a blob a kept restore
/// point references. The repository's blobs are listed only when there is no index, when most
/// objects must be read, or when [`ObjectsSource::check_all_blobs`] is set; otherwise a new
/// content hash costs one HEAD.
pub async fn backup_objects(
    repo: &dyn Repository,
    location: &PolicyLocation,
    source: &ObjectsSource,
    previous: Option<&ObjectsEntry>,
    encryption: &Encryption,
    progress: &Progress,
) -> Result<ObjectsEntry> {
    let blobs_prefix = location.blobs_prefix();
    let list_blobs = previous.is_none() || source.check_all_blobs;
    // The two listings overlap (a directory walk each, or paged S3 requests).
    let (listed, mut stored_blobs) = futures::try_join!(
        async {
            source
                .store
                .list(&source.prefix)
                .await
                .map_err(|e| Error::source("objects", e.to_string()))
        },
        async {
            if list_blobs {
                repo.list(&blobs_prefix).await.map(Some)
            } else {
                Ok(None)
            }
        },
    )?;

    let mut entry = ObjectsEntry {
        source: source.store.describe(),
        count: 0,
        bytes: 0,
        uploaded: 0,
        uploaded_bytes: 0,
        read: 0,
        entries: BTreeMap::new(),
    };
    // Unchanged objects come straight from the index; only the rest go to the parallel stage, so
    // that `parallelism` objects are really read at once however sparse the changes are.
    let present = stored_blobs.as_ref().map(|listing| {
        listing
            .iter()
            .filter_map(|m| location.blob_hash(&m.key))
            .collect::<HashSet<&str>>()
    });
    let mut to_read = Vec::new();
    for meta in listed {
        let rel = meta
            .key
            .strip_prefix(&source.prefix)
            .unwrap_or(&meta.key)
            .to_owned();
        let version = meta.version_stamp();
        match previous.and_then(|p| p.entries.get(&rel)) {
            Some(prev)
                if prev.size == meta.size
                    && prev.version == version
                    && present
                        .as_ref()
                        .is_none_or(|p| p.contains(prev.sha256.as_str())) =>
            {
                entry.count += 1;
                entry.bytes += prev.size;
                entry.entries.insert(rel, prev.clone());
            }
            _ => to_read.push((rel, meta, version)),
        }
    }
    drop(present);

    // What the repository holds: the listing when there is one, or else the index's blobs —
    // then an unknown hash is asked about, unless most objects are read anyway and one listing
    // is cheaper than a HEAD each.
    if stored_blobs.is_none() && to_read.len() > entry.entries.len() {
        stored_blobs = Some(repo.list(&blobs_prefix).await?);
    }
    let blobs = Blobs {
        known: Mutex::new(match &stored_blobs {
            Some(listing) => listing
                .iter()
                .filter_map(|m| location.blob_hash(&m.key).map(str::to_owned))
                .collect(),
            None => previous
                .into_iter()
                .flat_map(|p| p.entries.values().map(|e| e.sha256.clone()))
                .collect(),
        }),
        ask: stored_blobs.is_none(),
        repo,
        location,
    };
    drop(stored_blobs);
    let blobs = &blobs;

    let outcomes: Vec<(String, ReadObject)> = stream::iter(to_read.into_iter().map(Ok))
        .map_ok(
            |(rel, meta, version): (String, ObjectMeta, String)| async move {
                let outcome = read_and_store(
                    repo, location, source, &meta, version, blobs, encryption, progress,
                )
                .await?;
                Ok((rel, outcome))
            },
        )
        .try_buffer_unordered(source.parallelism.max(1))
        .try_collect()
        .await?;
    for (key, read) in outcomes {
        entry.read += 1;
        if let Some(bytes) = read.uploaded_bytes {
            entry.uploaded += 1;
            entry.uploaded_bytes += bytes;
        }
        entry.count += 1;
        entry.bytes += read.entry.size;
        entry.entries.insert(key, read.entry);
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
    blobs: &Blobs<'_>,
    encryption: &Encryption,
    progress: &Progress,
) -> Result<ReadObject> {
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
        let claimed = blobs.claim(&sha256).await?;
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
        return Ok(ReadObject {
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
    if !blobs.claim(&sha256).await? {
        return Ok(ReadObject {
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
    Ok(ReadObject {
        entry: ObjectEntry {
            sha256,
            size,
            version,
        },
        uploaded_bytes: Some(stored.stored_bytes),
    })
}
