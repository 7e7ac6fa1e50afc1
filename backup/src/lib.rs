//! The backup engine of tend: streaming, encrypted, verifiable backups of a database, objects
//! (photos) and config into a [`Repository`] (S3 or a local directory), and GFS retention.
//!
//! It knows nothing of Kubernetes. The BackupPolicy reconciler maps the spec onto the plain
//! types here and calls:
//!
//! - [`install_crypto_provider`] once at start-up (kube and the S3 client share rustls/ring);
//! - [`S3Repository::new`] / [`LocalRepository::new`] for `spec.repository`;
//! - [`Encryption::from_recipients`] (and [`Decryption::from_identities`] for restores);
//! - [`run_backup`] with a [`BackupJob`] — its [`Progress`] shows bytes so far — which returns
//!   the committed [`Manifest`] or an [`Error`] whose `metric_label()` and message go to
//!   metrics and status;
//! - [`restore_points`] for the status list and the current RPO;
//! - [`apply_retention`] after each run (its report is `status.lastRetention`);
//! - [`verify_backup`], [`restore_part`], [`restore_object`] for drills and restores;
//! - for a RestoreRequest: [`verify_backup`] first, then [`restore_postgres`] (into a scratch
//!   database from [`create_database`], or in place with [`PgRestoreMode::Replace`]) and
//!   [`restore_objects`] into an [`ObjectsTarget`], and the checks [`table_row_counts`] (against
//!   the manifest's), [`check_query`] and [`check_objects`]; [`drop_database`] cleans up.
//!
//! The repository layout is documented in `docs/backup-repository.md`.
#![forbid(unsafe_code)]

pub mod engine;
mod error;
pub mod manifest;
pub mod objects;
pub mod pipeline;
pub mod postgres;
pub mod repository;
pub mod restore;
pub mod retention;

pub use engine::{
    BackupJob, ConfigSource, DatabaseSource, RestorePoint, Uncommitted, load_manifest,
    remove_backup_parts, remove_uncommitted_backup, restore_object, restore_part, restore_points,
    run_backup, verify_backup,
};
pub use error::{Error, Result};
pub use manifest::{Manifest, PolicyLocation};
pub use objects::ObjectsSource;
pub use pipeline::{Compression, Decryption, Encryption, Progress};
pub use postgres::{
    PgRestoreMode, PostgresConnection, PostgresSource, PostgresTools, check_query, create_database,
    drop_database, table_row_counts,
};
pub use repository::{
    ByteReader, LocalRepository, ObjectMeta, PendingUpload, Repository, S3Config, S3Credentials,
    S3Repository, install_crypto_provider,
};
pub use restore::{
    ObjectsCheck, ObjectsRestoreOptions, ObjectsRestoreReport, ObjectsTarget, check_objects,
    restore_objects, restore_postgres,
};
pub use retention::{
    Candidate, KeepReason, RetentionOptions, RetentionPlan, RetentionReport, RetentionRules,
    apply_retention, plan_retention,
};
