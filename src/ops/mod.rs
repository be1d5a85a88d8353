//! ops: the migration verbs in plain Rust.
pub mod vault_diff;
