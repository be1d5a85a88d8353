//! Backup vaults: the store-generic suite (`vault_suite`) on file, SFTP (loopback sshd) and S3
//! (Garage), and the vault commands. `vault_nightly` is a benchmark, run by hand:
//! `cargo test --release --test vault vault_nightly -- --ignored --nocapture`.
//!
//! One test binary with a module per area (as cargo's own `tests/testsuite`): run one area with
//! `cargo test --test vault MODULE::`.

#[path = "../support/mod.rs"]
mod support;

mod vault_cli;
mod vault_diff;
mod vault_file;
mod vault_nightly;
mod vault_restore_one;
mod vault_s3;
mod vault_sftp;
mod vault_suite;
