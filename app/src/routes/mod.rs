//! HTTP handlers, one module per area.

pub mod account;
pub mod admin;
pub mod admin_audit;
pub mod farm;
pub mod feedback;
pub mod health;
pub mod help;
pub mod inquiries;
pub mod ops;
pub mod record_edit;
pub mod records;
pub mod status;
