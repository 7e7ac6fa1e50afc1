//! HTTP-level tests through `app()` + `oneshot`, each run on SQLite and on a
//! throwaway PostgreSQL.
//!
//! One test binary with a module per area; the harness is `tend_testkit::fieldbook`.

mod accounts;
mod language;
mod metrics;
mod records;
mod status;
mod support;
