//! The test kit every crate's tests share: real peers on free loopback ports (a throwaway
//! PostgreSQL, an S3-compatible server, an SMTP sink, a webhook sink, Prometheus and
//! node_exporter), child processes that are killed when their guard drops, polling helpers, and
//! a movable clock. It knows nothing of Kubernetes; the end-to-end crate (`tend-e2e`) builds its
//! cluster fixtures on it.
//!
//! A test that needs a tool the machine lacks fails with a message that says what to install;
//! nothing is skipped. `scripts/test.sh` installs every tool the kit starts.
//!
//! With the `backup` feature the kit also speaks the backup engine's types (age keys as
//! `Encryption`, an `S3Repository` on the S3 server, a `PostgresConnection` to the server); with
//! the `fieldbook` feature it runs the web app in-process ([`fieldbook::TestApp`]). The crates
//! these features name depend on the kit only as a dev-dependency, for their integration tests.

#![forbid(unsafe_code)]

pub mod bench;
pub mod clock;
pub mod data;
#[cfg(feature = "fieldbook")]
pub mod fieldbook;
#[cfg(feature = "backup")]
mod keys;
pub mod net;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod s3;
pub mod smtp;
pub mod tools;
pub mod wait;
pub mod webhook;

pub use data::pseudo_random;
#[cfg(feature = "backup")]
pub use keys::Keys;
pub use net::{CutProxy, free_port, wait_for_port};
pub use postgres::Postgres;
pub use process::ChildGuard;
pub use prometheus::{NodeExporter, Prometheus};
pub use s3::{S3_KEY_ID, S3_SECRET, S3Server};
#[cfg(feature = "backup")]
pub use s3::{s3_config, s3_repo};
pub use smtp::{ParsedMail, SinkTls, SmtpSink, SmtpSinkOptions, parse_mail};
pub use tools::require;
pub use wait::{TIMEOUT, TimedOut, eventually, until};
pub use webhook::{Recorded, Reply, WebhookSink};
