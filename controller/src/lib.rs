//! tend: the GitOps controller that runs the day-2 operations of a web service.
//!
//! The binary is thin (`main.rs`); this library holds the runtime: one kube-runtime
//! `Controller` per kind sharing a [`context::Context`], leader election on a `Lease`, the
//! HTTP endpoints for probes and metrics, and the reconcile pipeline every kind follows
//! (`validate → resolve references → operate → write status`). Engine code that needs no
//! Kubernetes (scheduling, retention, alert evaluation...) lives in modules with no kube types.
#![forbid(unsafe_code)]

// The framework: no module here names a kind.
pub mod children;
pub mod clock;
pub mod context;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod notifications;
pub mod ops_api;
pub mod reconcile;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod setup;
pub mod status;
pub mod tasks;

// The kinds, each in its own folder: `mod.rs` ties the kind to the pipeline, its siblings do
// the work. `run.rs` is the only place that lists them.
pub mod alert_rule;
pub mod backup_policy;
pub mod escalation_policy;
pub mod incident_record;
pub mod log_policy;
pub mod restore_request;
pub mod support_channel;

pub use error::Error;
