//! tend: the GitOps controller that runs the day-2 operations of a web service.
//!
//! The binary is thin (`main.rs`); this library holds the runtime: one kube-runtime
//! `Controller` per kind sharing a [`context::Context`], leader election on a `Lease`, the
//! HTTP endpoints for probes and metrics, and the reconcile pipeline every kind follows
//! (`validate → resolve references → operate → write status`). Engine code that needs no
//! Kubernetes (scheduling, retention, alert evaluation...) lives in modules with no kube types.
#![forbid(unsafe_code)]

pub mod alert;
pub mod backup;
pub mod context;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod restore;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod status;

pub use error::Error;
