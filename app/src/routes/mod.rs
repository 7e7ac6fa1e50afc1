//! HTTP handlers, one module per area.

pub mod account;
pub mod admin;
pub mod farm;
pub mod health;
pub mod help;
pub mod inquiries;
pub mod ops;
pub mod records;
pub mod status;
