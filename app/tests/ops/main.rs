//! The ops API (`/ops/v1`): every endpoint with a good token, a bad token,
//! and bad input; plus the log hash chain across tampering and pruning.
//!
//! One test binary with a module per area; the harness is `tend_testkit::fieldbook`.

mod endpoints;
mod fixtures;
mod logs;
mod maintenance;
mod settings;
mod snapshot;
mod support;
mod verify;
