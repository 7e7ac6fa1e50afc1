//! Where a restore writes: the database target (scratch PostgreSQL database, the app's own
//! database, or the app's SQLite through its ops API) and the object store, and writing the
//! parts into them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tend_backup::postgres::{self as pg, PgRestoreMode};
use tend_backup::restore::{ObjectsTarget, restore_postgres};
use tend_backup::{
    Decryption, Manifest, PolicyLocation, PostgresConnection, Repository, restore_part,
};
use tend_crds::backup_policy::BackupPolicy;
use tend_crds::types::StorageLocation;

use super::run::{Plan, Run};
use super::scratch::{scratch_database_name, scratch_dir_name, scratch_store_location};
use crate::ops_api::OpsApi;
use crate::secrets::Secrets;
use crate::setup;

/// What the database restore left for the checks.
pub(super) enum RestoredDatabase {
    Postgres(PostgresConnection),
    Sqlite {
        file: PathBuf,
        /// Counts the app reported after an in-place restore.
        app_tables: Option<BTreeMap<String, u64>>,
    },
}

impl Run<'_> {
    pub(super) async fn database_target(
        &self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
        manifest: &Manifest,
    ) -> Result<DatabaseTarget, String> {
        let plan = self.plan;
        let engine = manifest
            .database
            .as_ref()
            .map(|d| d.engine.as_str())
            .unwrap_or_default();
        match (engine, &self.scratch) {
            ("postgresql", Some(scratch)) => {
                let pg = scratch.postgres.as_ref().ok_or_else(|| {
                    "spec.target.scratch.postgres is required to restore a PostgreSQL database into a scratch target".to_string()
                })?;
                let admin = setup::postgres_connection(
                    secrets,
                    "spec.target.scratch.postgres.connectionSecretRef",
                    &pg.connection_secret_ref.name,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(DatabaseTarget::ScratchPostgres {
                    name: scratch_database_name(&plan.uid),
                    admin,
                })
            }
            ("postgresql", None) => {
                let pg = policy
                    .spec
                    .targets
                    .database
                    .as_ref()
                    .and_then(|d| d.postgres.as_ref())
                    .ok_or_else(|| {
                        "the restore point holds a PostgreSQL dump but the BackupPolicy's database target is not PostgreSQL".to_string()
                    })?;
                let conn = setup::postgres_connection(
                    secrets,
                    "spec.targets.database.postgres.connectionSecretRef",
                    &pg.connection_secret_ref.name,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(DatabaseTarget::Postgres(conn))
            }
            ("sqlite", Some(scratch)) => {
                let fs = scratch.filesystem.as_ref().ok_or_else(|| {
                    "spec.target.scratch.filesystem is required to restore a SQLite database into a scratch target".to_string()
                })?;
                let dir =
                    PathBuf::from(&fs.path).join(scratch_dir_name(&plan.namespace, &plan.name));
                Ok(DatabaseTarget::ScratchSqlite(dir.join("database.sqlite")))
            }
            ("sqlite", None) => Ok(DatabaseTarget::AppSqlite),
            (other, _) => Err(format!("unknown database engine {other:?} in the manifest")),
        }
    }

    pub(super) async fn objects_target(
        &self,
        policy: &BackupPolicy,
        secrets: &mut Secrets,
    ) -> Result<ObjectsTarget, String> {
        let plan = self.plan;
        match &self.scratch {
            None => {
                let location = policy.spec.targets.objects.as_ref().ok_or_else(|| {
                    "the BackupPolicy has no spec.targets.objects to restore objects into"
                        .to_string()
                })?;
                let store = restore_store("spec.targets.objects", location, secrets).await?;
                Ok(ObjectsTarget {
                    store,
                    prefix: String::new(),
                })
            }
            Some(scratch) => {
                let dir = scratch_dir_name(&plan.namespace, &plan.name);
                let location = scratch_store_location(scratch).ok_or_else(|| {
                    "spec.target.scratch needs s3 or filesystem to restore objects into".to_string()
                })?;
                let store = restore_store("spec.target.scratch", &location, secrets).await?;
                Ok(ObjectsTarget {
                    store,
                    prefix: format!("{dir}/objects/"),
                })
            }
        }
    }
}

pub(super) enum DatabaseTarget {
    Postgres(PostgresConnection),
    ScratchPostgres {
        name: String,
        admin: PostgresConnection,
    },
    AppSqlite,
    ScratchSqlite(PathBuf),
}

impl DatabaseTarget {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "in place",
            Self::ScratchPostgres { .. } => "into a scratch database",
            Self::AppSqlite => "in place through the app's ops API",
            Self::ScratchSqlite(_) => "into a scratch file",
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn restore_database(
    plan: &Plan,
    target: &DatabaseTarget,
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    decryption: &Decryption,
    ops: Option<&OpsApi>,
    progress: &tend_backup::Progress,
    sqlite_temp: &std::path::Path,
) -> Result<(RestoredDatabase, u64), String> {
    let part = &manifest.database.as_ref().expect("checked").part;
    match target {
        DatabaseTarget::Postgres(conn) => {
            let bytes = restore_postgres(
                repo,
                location,
                manifest,
                decryption,
                &plan.tools,
                conn,
                PgRestoreMode::Replace,
                progress,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok((RestoredDatabase::Postgres(conn.clone()), bytes))
        }
        DatabaseTarget::ScratchPostgres { name, admin } => {
            // A leftover of an earlier attempt with this uid cannot exist (the uid is new),
            // but a half-created one of this very request might.
            pg::drop_database(&plan.tools, admin, name)
                .await
                .map_err(|e| e.to_string())?;
            pg::create_database(&plan.tools, admin, name)
                .await
                .map_err(|e| e.to_string())?;
            let conn = PostgresConnection {
                dbname: name.clone(),
                ..admin.clone()
            };
            let bytes = restore_postgres(
                repo,
                location,
                manifest,
                decryption,
                &plan.tools,
                &conn,
                PgRestoreMode::IntoEmpty,
                progress,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok((RestoredDatabase::Postgres(conn), bytes))
        }
        DatabaseTarget::ScratchSqlite(file) => {
            let bytes = write_part(repo, location, manifest, part, decryption, file).await?;
            Ok((
                RestoredDatabase::Sqlite {
                    file: file.clone(),
                    app_tables: None,
                },
                bytes,
            ))
        }
        DatabaseTarget::AppSqlite => {
            let ops = ops.ok_or("a SQLite database is restored through the app's ops API, but the BackupPolicy has no spec.app")?;
            let bytes = write_part(repo, location, manifest, part, decryption, sqlite_temp).await?;
            let answer = ops
                .restore_snapshot(sqlite_temp)
                .await
                .map_err(|e| e.to_string())?;
            let tables = answer
                .get("tables")
                .and_then(|t| serde_json::from_value(t.clone()).ok());
            Ok((
                RestoredDatabase::Sqlite {
                    file: sqlite_temp.to_path_buf(),
                    app_tables: tables,
                },
                bytes,
            ))
        }
    }
}

/// Restores one part into a new file (its directory is created).
pub(super) async fn write_part(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    part: &str,
    decryption: &Decryption,
    file: &std::path::Path,
) -> Result<u64, String> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| format!("creating {}: {e}", file.display()))?;
    let bytes = restore_part(repo, location, manifest, part, decryption, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    use tokio::io::AsyncWriteExt;
    out.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    out.sync_all()
        .await
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(bytes)
}

/// A store objects are restored into. A directory is not fsynced object by object but once
/// when the restore is done (thousands of small photos otherwise cost more than the data).
pub(super) async fn restore_store(
    field: &str,
    location: &StorageLocation,
    secrets: &mut Secrets,
) -> Result<Arc<dyn Repository>, String> {
    if let Some(fs) = &location.filesystem {
        let repo = tend_backup::LocalRepository::new(&fs.path)
            .map_err(|e| format!("{field}.filesystem: {e}"))?
            .with_deferred_sync();
        return Ok(Arc::new(repo));
    }
    setup::storage(field, location, secrets, false)
        .await
        .map_err(|e| e.to_string())
}
