//! Notifications (SMTP server on loopback, chat webhooks), role grants from scripts, and the
//! dashboard (`ferry serve`) on its ledger.
//!
//! One test binary with a module per area (as cargo's own `tests/testsuite`): run one area with
//! `cargo test --test services MODULE::`.

#[path = "../support/mod.rs"]
mod support;

mod notify_channels;
mod notify_script;
mod notify_smtp;
mod rbac_script;
mod serve_dashboard;
