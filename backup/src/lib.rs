//! The backup engine of tend: streaming, encrypted, verifiable backups of a database, objects
//! (photos) and config into a [`Repository`] (S3 or a local directory), and GFS retention.
//!
//! It knows nothing of Kubernetes: the BackupPolicy reconciler maps the spec onto the plain
//! config types here and calls [`run_backup`], [`restore_points`], [`restore_part`] and
//! [`apply_retention`]. The repository layout is documented in `docs/backup-repository.md`.
#![forbid(unsafe_code)]

mod error;
pub mod repository;

pub use error::{Error, Result};
pub use repository::{
    ByteReader, LocalRepository, ObjectMeta, PendingUpload, Repository, S3Config, S3Credentials,
    S3Repository, install_crypto_provider,
};
pub mod pipeline;
pub use pipeline::{Compression, Decryption, Encryption, Progress};
pub mod manifest;
pub use manifest::{Manifest, PolicyLocation};
pub mod postgres;
pub use postgres::{PostgresConnection, PostgresSource, PostgresTools};
pub mod objects;
pub use objects::ObjectsSource;
pub mod engine;
pub use engine::{
    BackupJob, ConfigSource, DatabaseSource, RestorePoint, load_manifest, restore_object,
    restore_part, restore_points, run_backup, verify_backup,
};
pub mod retention;
pub use retention::{
    RetentionOptions, RetentionPlan, RetentionReport, RetentionRules, apply_retention,
    plan_retention,
};
