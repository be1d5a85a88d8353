//! Whole `ferry` runs against the emulator: the run ledger (SQLite and PostgreSQL), plan and
//! apply, resume after kill, rollback, cutover, chaos (signals at exact points), backups.
//!
//! One test binary with a module per area (as cargo's own `tests/testsuite`): run one area with
//! `cargo test --test runs MODULE::`.

#[path = "../support/mod.rs"]
mod support;

mod backup_truth;
mod chaos;
mod cutover;
mod ledger_pg;
mod ledger_schema;
mod ledger_steps;
mod plan_apply;
mod plan_emulator;
mod resume_kill;
mod rollback_migration;
mod schedules_migrate;
mod validate_early;
