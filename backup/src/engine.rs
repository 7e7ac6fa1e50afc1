//! One backup run, restore points, and restores: the calls the BackupPolicy reconciler makes.
//!
//! A run writes the database part, then the objects, then the config part, and finally the
//! manifest. The database goes first so that every photo its rows reference is in the same
//! backup. If anything fails, the run deletes the parts it wrote (best effort; retention removes
//! what a crash leaves) and writes no manifest, so it never becomes a restore point.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;

use crate::manifest::{
    DatabaseEntry, MANIFEST_FORMAT, MANIFEST_NAME, Manifest, PartEntry, PolicyLocation,
    new_backup_id,
};
use crate::objects::{ObjectsSource, backup_objects};
use crate::pipeline::{self, Compression, Decryption, Encryption, ExpectedPart, Progress};
use crate::postgres::PostgresSource;
use crate::repository::{ByteReader, Repository};
use crate::{Error, Result};

/// The database to back up.
pub enum DatabaseSource {
    Postgres(PostgresSource),
    /// A consistent snapshot stream of a SQLite database (the app's ops API).
    Sqlite {
        name: String,
        snapshot: ByteReader,
        /// Rows per table in this snapshot, when the source reports them (empty otherwise).
        row_counts: BTreeMap<String, u64>,
    },
}

/// Config to archive: a stream the caller builds (ConfigMaps, Secrets, app settings as JSON).
/// It is always encrypted, like every part.
pub struct ConfigSource {
    pub archive: ByteReader,
    /// What the archive is, e.g. `json`.
    pub content: String,
}

/// Everything one run needs.
pub struct BackupJob {
    pub repository: Arc<dyn Repository>,
    pub location: PolicyLocation,
    pub encryption: Encryption,
    pub database: Option<DatabaseSource>,
    pub objects: Option<ObjectsSource>,
    pub config: Option<ConfigSource>,
    /// `Schedule`, `Manual`, `Drill`... recorded in the manifest.
    pub trigger: Option<String>,
    /// zstd level for dumps and config.
    pub zstd_level: i32,
    /// Bytes stored so far, for status while the run is going.
    pub progress: Progress,
    /// The run's start time; `None` means now. Injected by tests.
    pub started_at: Option<Timestamp>,
    /// The backup id; `None` derives one from the start time. The controller chooses it so it
    /// can record the run (and clean up after a crash) before any byte is written.
    pub id: Option<String>,
}

impl BackupJob {
    pub fn new(
        repository: Arc<dyn Repository>,
        location: PolicyLocation,
        encryption: Encryption,
    ) -> Self {
        Self {
            repository,
            location,
            encryption,
            database: None,
            objects: None,
            config: None,
            trigger: None,
            zstd_level: 3,
            progress: Progress::default(),
            started_at: None,
            id: None,
        }
    }
}

/// Runs one backup. On success the returned manifest is committed: the backup is a restore
/// point. On failure nothing of this run is a restore point.
pub async fn run_backup(mut job: BackupJob) -> Result<Manifest> {
    let started_at = job.started_at.unwrap_or_else(Timestamp::now);
    let id = job.id.take().unwrap_or_else(|| new_backup_id(started_at));
    let repo = job.repository.clone();
    let location = job.location.clone();
    let result = write_backup(&mut job, &id, started_at).await;
    match result {
        Ok(manifest) => {
            tracing::info!(backup = %id, bytes = manifest.stored_bytes(), "backup committed");
            Ok(manifest)
        }
        Err(error) => {
            tracing::warn!(backup = %id, %error, "backup failed; removing its parts");
            if let Err(cleanup) = remove_backup_parts(repo.as_ref(), &location, &id).await {
                tracing::warn!(backup = %id, error = %cleanup, "cleanup failed; retention will remove the parts");
            }
            Err(error)
        }
    }
}

async fn write_backup(job: &mut BackupJob, id: &str, started_at: Timestamp) -> Result<Manifest> {
    let repo = job.repository.as_ref();
    let loc = &job.location;
    let mut tools = BTreeMap::new();
    tools.insert(
        "tend-backup".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    tools.insert(
        "age".to_owned(),
        "age-encryption.org/v1 (x25519)".to_owned(),
    );
    tools.insert("zstd".to_owned(), format!("level {}", job.zstd_level));
    let mut parts = Vec::new();
    let mut database = None;
    let zstd = Compression::Zstd(job.zstd_level);

    match job.database.take() {
        Some(DatabaseSource::Postgres(source)) => {
            let dump = source.start().await?;
            let name = "database.pgdump.zst.age";
            let stored = pipeline::store(
                repo,
                &loc.part_key(id, name),
                "database",
                dump.stream,
                &job.encryption,
                zstd,
                Some(&job.progress),
            )
            .await?;
            tools.insert("pg_dump".to_owned(), dump.pg_dump_version);
            tools.insert("postgresql".to_owned(), dump.server.version.clone());
            parts.push(part_entry(
                name,
                "database",
                "pg_dump-custom",
                "zstd",
                stored,
            ));
            database = Some(DatabaseEntry {
                engine: "postgresql".to_owned(),
                part: name.to_owned(),
                server_version: Some(dump.server.version),
                row_counts: dump.row_counts,
            });
        }
        Some(DatabaseSource::Sqlite {
            name: db,
            snapshot,
            row_counts,
        }) => {
            let name = "database.sqlite.zst.age";
            let stored = pipeline::store(
                repo,
                &loc.part_key(id, name),
                "database",
                snapshot,
                &job.encryption,
                zstd,
                Some(&job.progress),
            )
            .await?;
            parts.push(part_entry(name, "database", "sqlite", "zstd", stored));
            database = Some(DatabaseEntry {
                engine: "sqlite".to_owned(),
                part: name.to_owned(),
                server_version: Some(db),
                row_counts,
            });
        }
        None => {}
    }

    let objects = match &job.objects {
        Some(source) => {
            let previous = restore_points(repo, loc)
                .await?
                .into_iter()
                .find_map(|p| p.manifest.objects);
            Some(
                backup_objects(
                    repo,
                    loc,
                    source,
                    previous.as_ref(),
                    &job.encryption,
                    &job.progress,
                )
                .await?,
            )
        }
        None => None,
    };

    if let Some(config) = job.config.take() {
        let name = format!("config.{}.zst.age", config.content);
        let stored = pipeline::store(
            repo,
            &loc.part_key(id, &name),
            "config",
            config.archive,
            &job.encryption,
            zstd,
            Some(&job.progress),
        )
        .await?;
        parts.push(part_entry(&name, "config", &config.content, "zstd", stored));
    }

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: id.to_owned(),
        namespace: loc.namespace.clone(),
        policy: loc.policy.clone(),
        trigger: job.trigger.clone(),
        started_at,
        finished_at: Timestamp::now().max(started_at),
        tools,
        recipients: job.encryption.recipients(),
        parts,
        database,
        objects,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let len = json.len() as u64;
    repo.put(
        &loc.manifest_key(id),
        Box::pin(std::io::Cursor::new(json)),
        Some(len),
    )
    .await?;
    Ok(manifest)
}

fn part_entry(
    name: &str,
    component: &str,
    content: &str,
    compression: &str,
    stored: pipeline::StoredPart,
) -> PartEntry {
    PartEntry {
        name: name.to_owned(),
        component: component.to_owned(),
        content: content.to_owned(),
        compression: compression.to_owned(),
        encryption: "age".to_owned(),
        source_bytes: stored.source_bytes,
        stored_bytes: stored.stored_bytes,
        sha256: stored.sha256,
    }
}

/// Deletes everything under `backups/<id>/`, the manifest first, so a half-deleted backup is
/// never mistaken for a restore point.
pub async fn remove_backup_parts(
    repo: &dyn Repository,
    location: &PolicyLocation,
    id: &str,
) -> Result<()> {
    repo.delete(&location.manifest_key(id)).await?;
    for object in repo.list(&location.backup_prefix(id)).await? {
        repo.delete(&object.key).await?;
    }
    Ok(())
}

/// What [`remove_uncommitted_backup`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Uncommitted {
    /// The backup had no manifest: its parts (if any) were deleted.
    Removed { parts: usize },
    /// The backup's manifest exists: it is a restore point, and nothing was deleted.
    Committed(Box<Manifest>),
}

/// Cleans up after a run that did not report its end (the controller stopped, or the record of
/// its end was lost). The manifest is the commit point, so a backup that has one is a restore
/// point and is kept: its manifest is returned for the caller to record. Only the parts of a
/// backup without a manifest are deleted. A manifest that exists but cannot be read is an error
/// and deletes nothing.
pub async fn remove_uncommitted_backup(
    repo: &dyn Repository,
    location: &PolicyLocation,
    id: &str,
) -> Result<Uncommitted> {
    if repo.head(&location.manifest_key(id)).await?.is_some() {
        let manifest = load_manifest(repo, location, id).await?;
        return Ok(Uncommitted::Committed(Box::new(manifest)));
    }
    let parts = repo.list(&location.backup_prefix(id)).await?;
    for object in &parts {
        repo.delete(&object.key).await?;
    }
    Ok(Uncommitted::Removed { parts: parts.len() })
}

/// A committed backup.
#[derive(Clone, Debug, PartialEq)]
pub struct RestorePoint {
    pub id: String,
    pub manifest: Manifest,
}

/// Restore points of a policy, newest first. Reads manifests only; a backup without a readable
/// manifest is not a restore point (it is logged and skipped).
pub async fn restore_points(
    repo: &dyn Repository,
    location: &PolicyLocation,
) -> Result<Vec<RestorePoint>> {
    let prefix = location.backups_prefix();
    let mut points = Vec::new();
    for object in repo.list(&prefix).await? {
        let Some(id) = object
            .key
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(&format!("/{MANIFEST_NAME}")))
        else {
            continue;
        };
        if id.contains('/') {
            continue;
        }
        match load_manifest(repo, location, id).await {
            Ok(manifest) => points.push(RestorePoint {
                id: id.to_owned(),
                manifest,
            }),
            Err(error) => tracing::warn!(backup = id, %error, "unreadable manifest skipped"),
        }
    }
    points.sort_by(|a, b| (b.manifest.started_at, &b.id).cmp(&(a.manifest.started_at, &a.id)));
    Ok(points)
}

/// Reads and checks one manifest.
pub async fn load_manifest(
    repo: &dyn Repository,
    location: &PolicyLocation,
    id: &str,
) -> Result<Manifest> {
    use tokio::io::AsyncReadExt;
    let key = location.manifest_key(id);
    let mut text = Vec::new();
    repo.get(&key)
        .await?
        .take(256 * 1024 * 1024)
        .read_to_end(&mut text)
        .await
        .map_err(|e| Error::repo("get", &key, e))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| Error::Manifest {
        key: key.clone(),
        message: e.to_string(),
    })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(Error::Manifest {
            key,
            message: format!("unknown format {}", manifest.format),
        });
    }
    if manifest.id != id {
        return Err(Error::Manifest {
            key,
            message: format!("names backup {} but is stored under {id}", manifest.id),
        });
    }
    Ok(manifest)
}

/// Checks that every part of a restore point is stored with the size and SHA-256 its manifest
/// records and that every blob it references exists. Needs no identity.
pub async fn verify_backup(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
) -> Result<()> {
    for part in &manifest.parts {
        let key = location.part_key(&manifest.id, &part.name);
        pipeline::verify(
            repo,
            &ExpectedPart {
                key: &key,
                stored: Some((part.stored_bytes, &part.sha256)),
            },
        )
        .await?;
    }
    if let Some(objects) = &manifest.objects {
        let present: std::collections::HashSet<String> = repo
            .list(&location.blobs_prefix())
            .await?
            .iter()
            .filter_map(|m| location.blob_hash(&m.key).map(str::to_owned))
            .collect();
        if let Some((key, _)) = objects
            .entries
            .iter()
            .find(|(_, o)| !present.contains(&o.sha256))
        {
            return Err(Error::Integrity(format!(
                "backup {}: the blob of object {key} is missing",
                manifest.id
            )));
        }
    }
    Ok(())
}

/// Restores one part (e.g. the database dump) into `sink`: plain bytes, as the source produced
/// them (a `pg_dump` custom archive, a SQLite file, the config JSON).
pub async fn restore_part<W: AsyncWrite + Unpin>(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    part_name: &str,
    decryption: &Decryption,
    sink: &mut W,
) -> Result<u64> {
    let part = manifest.part(part_name).ok_or_else(|| Error::Manifest {
        key: location.manifest_key(&manifest.id),
        message: format!("has no part {part_name}"),
    })?;
    let compression = match part.compression.as_str() {
        "zstd" => Compression::Zstd(0),
        "none" => Compression::None,
        other => {
            return Err(Error::Manifest {
                key: location.manifest_key(&manifest.id),
                message: format!("part {part_name}: unknown compression {other}"),
            });
        }
    };
    let key = location.part_key(&manifest.id, part_name);
    pipeline::restore(
        repo,
        &ExpectedPart {
            key: &key,
            stored: Some((part.stored_bytes, &part.sha256)),
        },
        decryption,
        compression,
        sink,
    )
    .await
}

struct DigestWriter<'w, W> {
    inner: &'w mut W,
    hasher: Sha256,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for DigestWriter<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.hasher.update(&buf[..n]);
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Restores one object (by its key in the manifest) into `sink` and checks its SHA-256.
pub async fn restore_object<W: AsyncWrite + Unpin>(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    object_key: &str,
    decryption: &Decryption,
    sink: &mut W,
) -> Result<u64> {
    let entry = manifest
        .objects
        .as_ref()
        .and_then(|o| o.entries.get(object_key))
        .ok_or_else(|| Error::Manifest {
            key: location.manifest_key(&manifest.id),
            message: format!("has no object {object_key}"),
        })?;
    let blob = location.blob_key(&entry.sha256);
    let mut writer = DigestWriter {
        inner: sink,
        hasher: Sha256::new(),
    };
    let n = pipeline::restore(
        repo,
        &ExpectedPart {
            key: &blob,
            stored: None,
        },
        decryption,
        Compression::None,
        &mut writer,
    )
    .await?;
    let actual = hex::encode(writer.hasher.finalize());
    if actual != entry.sha256 || n != entry.size {
        return Err(Error::Integrity(format!(
            "object {object_key}: restored content does not match the manifest"
        )));
    }
    Ok(n)
}
