//! Where backups are stored. A [`Repository`] is a flat key space of immutable objects with
//! atomic puts: an object is either absent or complete under its final key, never half-written.
//! Two implementations: [`LocalRepository`] (a directory) and [`S3Repository`] (any
//! S3-compatible store). Interrupted writes leave *pending uploads* (S3 multipart uploads, or
//! temporary files in a directory) that [`Repository::list_uploads`] finds and retention aborts.

mod local;
mod s3;

use std::pin::Pin;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::io::AsyncRead;

use crate::Result;

pub use local::LocalRepository;
pub use s3::{S3Config, S3Credentials, S3Repository, install_crypto_provider};

/// A stream of bytes read from or written to a repository.
pub type ByteReader = Pin<Box<dyn AsyncRead + Send>>;

/// One stored object, as a listing reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the repository root.
    pub key: String,
    pub size: u64,
    pub modified: Option<Timestamp>,
    /// S3 ETag (quotes removed); `None` on a local directory.
    pub etag: Option<String>,
}

impl ObjectMeta {
    /// A stamp that changes whenever the object's content may have changed without its key
    /// changing: the ETag where there is one, otherwise size and modification time.
    pub fn version_stamp(&self) -> String {
        match (&self.etag, self.modified) {
            (Some(etag), _) => format!("etag:{etag}"),
            (None, Some(modified)) => format!("mtime:{}:{}", modified.as_nanosecond(), self.size),
            (None, None) => format!("size:{}", self.size),
        }
    }
}

/// An upload that was started and neither completed nor aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The key the upload would have created.
    pub key: String,
    /// The S3 upload id, or the temporary file name on a local directory.
    pub upload_id: String,
    pub initiated: Option<Timestamp>,
}

/// Storage for backups. All keys are relative, `/`-separated, without `..` or empty segments.
pub trait Repository: Send + Sync {
    /// Stores `body` under `key`, atomically: readers see the old state or the complete object.
    /// `size_hint` is the exact length when known (it lets S3 skip multipart for small bodies).
    /// Returns the number of bytes stored. If `body` fails, nothing is stored.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteReader,
        size_hint: Option<u64>,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Opens `key` for reading.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ByteReader>>;

    /// Metadata of `key`, or `None` when it does not exist.
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>>;

    /// Every object whose key starts with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectMeta>>>;

    /// Deletes `key`; deleting a missing key succeeds.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Uploads under `prefix` that were started and never completed or aborted.
    fn list_uploads<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<PendingUpload>>>;

    /// Aborts a pending upload, freeing what it stored; aborting a finished one succeeds.
    fn abort_upload<'a>(&'a self, upload: &'a PendingUpload) -> BoxFuture<'a, Result<()>>;

    /// Where this repository is, for messages (no credentials).
    fn describe(&self) -> String;

    /// Makes everything stored so far durable. Stores that are durable on every put (S3, a
    /// local directory by default) have nothing to do.
    fn sync(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Rejects keys that could escape the repository root or alias another key.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(crate::Error::repo(
            "check",
            key,
            "invalid key (empty segment, leading or trailing slash, or . / ..)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_or_alias_are_rejected() {
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", ".."] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b", "ns/p/backups/1/manifest.json", "a/.b"] {
            check_key(good).unwrap();
        }
    }
}
