//! A repository in a local (or mounted) directory. Writes go to a hidden temporary file in the
//! target directory, are fsynced, then renamed into place and the directory fsynced: a crash
//! leaves either nothing or the complete object under its final name, plus at worst a temporary
//! file that [`Repository::list_uploads`] reports.

use std::io;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::io::AsyncWriteExt;

use super::{ByteReader, ObjectMeta, PendingUpload, Repository, check_key};
use crate::{Error, Result};

const TEMP_MARKER: &str = ".tmp-";

/// A repository rooted at a directory.
#[derive(Clone, Debug)]
pub struct LocalRepository {
    root: PathBuf,
    /// fsync every object and its directory on put (the default). Restores of many small
    /// objects turn it off and call [`Repository::sync`] once at the end instead.
    sync_each: bool,
}

impl LocalRepository {
    /// A repository at `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(Error::config(
                "filesystem.path",
                format!("{} is not an absolute path", root.display()),
            ));
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
        Ok(Self {
            root,
            sync_each: true,
        })
    }

    /// The same repository, but puts are not fsynced one by one: [`Repository::sync`] makes
    /// everything written durable at once (one `syncfs` of the file system). A put is still
    /// atomic (temporary file, then rename).
    pub fn with_deferred_sync(mut self) -> Self {
        self.sync_each = false;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn put_inner(&self, key: &str, mut body: ByteReader) -> Result<u64> {
        let path = self.path_of(key)?;
        let dir = path.parent().expect("a key has a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::repo("put", key, e))?;
        let name = path
            .file_name()
            .expect("a key has a name")
            .to_string_lossy();
        let temp = dir.join(format!(
            ".{name}{TEMP_MARKER}{:016x}",
            rand::random::<u64>()
        ));
        let sync_each = self.sync_each;
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            let n = tokio::io::copy(&mut body, &mut file).await?;
            file.flush().await?;
            if sync_each {
                file.sync_all().await?;
            }
            drop(file);
            tokio::fs::rename(&temp, &path).await?;
            if sync_each {
                sync_dir(dir.clone()).await?;
            }
            io::Result::Ok(n)
        }
        .await;
        match written {
            Ok(n) => Ok(n),
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(Error::repo("put", key, e))
            }
        }
    }

    fn walk(&self, prefix: &str, want_temp: bool) -> io::Result<Vec<(String, std::fs::Metadata)>> {
        // Start at the deepest directory the prefix names, so listing one backup does not walk
        // the whole repository.
        let start_rel = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if start_rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(start_rel)
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                let path = entry.path();
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&self.root)
                    .expect("walk stays under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_temp = name.starts_with('.') && name.contains(TEMP_MARKER);
                if is_temp != want_temp {
                    continue;
                }
                let logical = if is_temp {
                    // `.name.tmp-XXXX` would become `name`.
                    let dir_rel = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let base = &name[1..name.find(TEMP_MARKER).expect("checked")];
                    if dir_rel.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{dir_rel}/{base}")
                    }
                } else {
                    rel.clone()
                };
                if logical.starts_with(prefix) {
                    out.push((if is_temp { rel } else { logical }, meta));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

fn modified(meta: &std::fs::Metadata) -> Option<Timestamp> {
    meta.modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
}

impl Repository for LocalRepository {
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
            let path = self.path_of(key)?;
            // Open and size the file in one trip to the blocking pool; the read buffer is no
            // larger than the file (a photo of a few KiB does not get 256 KiB zero-filled).
            let (file, len) = tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path)?;
                let len = file.metadata()?.len();
                io::Result::Ok((file, len))
            })
            .await
            .map_err(|e| Error::repo("get", key, e))?
            .map_err(|e| Error::repo("get", key, e))?;
            let capacity = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .clamp(8 * 1024, 256 * 1024);
            Ok(Box::pin(tokio::io::BufReader::with_capacity(
                capacity,
                tokio::fs::File::from_std(file),
            )) as ByteReader)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move {
            let path = self.path_of(key)?;
            match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                    key: key.to_owned(),
                    size: meta.len(),
                    modified: modified(&meta),
                    etag: None,
                })),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::repo("head", key, e)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectMeta>>> {
        Box::pin(async move {
            let this = self.clone();
            let owned = prefix.to_owned();
            let found = tokio::task::spawn_blocking(move || this.walk(&owned, false))
                .await
                .map_err(|e| Error::repo("list", prefix, e))?
                .map_err(|e| Error::repo("list", prefix, e))?;
            Ok(found
                .into_iter()
                .map(|(key, meta)| ObjectMeta {
                    key,
                    size: meta.len(),
                    modified: modified(&meta),
                    etag: None,
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let path = self.path_of(key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::repo("delete", key, e)),
            }
            // Remove directories left empty, up to the root, so deleted backups leave no trace.
            let mut dir = path.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
            Ok(())
        })
    }

    fn list_uploads<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<PendingUpload>>> {
        Box::pin(async move {
            let this = self.clone();
            let owned = prefix.to_owned();
            let found = tokio::task::spawn_blocking(move || this.walk(&owned, true))
                .await
                .map_err(|e| Error::repo("list uploads", prefix, e))?
                .map_err(|e| Error::repo("list uploads", prefix, e))?;
            Ok(found
                .into_iter()
                .map(|(temp_rel, meta)| PendingUpload {
                    key: temp_rel.clone(),
                    upload_id: temp_rel,
                    initiated: modified(&meta),
                })
                .collect())
        })
    }

    fn abort_upload<'a>(&'a self, upload: &'a PendingUpload) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_key(&upload.upload_id)?;
            match tokio::fs::remove_file(self.root.join(&upload.upload_id)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::repo("abort upload", &upload.key, e)),
            }
        })
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn sync(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.sync_each {
                return Ok(());
            }
            // One syncfs(2) of the file system holding the directory (coreutils `sync -f`).
            let out = tokio::process::Command::new("sync")
                .arg("-f")
                .arg(&self.root)
                .output()
                .await
                .map_err(|e| Error::io(format!("running sync -f {}", self.root.display()), e))?;
            if !out.status.success() {
                return Err(Error::repo(
                    "sync",
                    &self.root.display().to_string(),
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ));
            }
            Ok(())
        })
    }
}
