//! # ops: the migration verbs in plain Rust
//!
//! This layer sits between the Rhai host ([`crate::script`]) and the domains ([`crate::oic`],
//! [`crate::vault`], [`crate::rbac`], [`crate::notify`]). Each verb a recipe or a command uses
//! (list/select, export, store, verify, import, activate/deactivate, configure connections,
//! restore, rollback, prune, diff, grant, copy ACL, notify) is a Rust function here that takes a
//! serde option type (unknown keys refused) and returns a serde result type, so it can be called
//! and tested without a Rhai engine, and called directly by the command line.
//!
//! Bindings in `script::api` are a few lines each: options in with `rhai::serde::from_dynamic`,
//! a call into `ops`, results out with `rhai::serde::to_dynamic`. Every side effect still goes
//! through the effect executor ([`crate::effect`]), so it is recorded, retried, skipped on resume
//! and described in a dry run.
//!
//! Dependencies point one way: `cli` -> `script` -> `ops` -> domains -> `effect`, `ledger`,
//! `config`. Nothing here names `crate::script` or `crate::cli`.

pub mod activate;
pub mod backup;
pub mod compare;
pub mod connections;
pub mod ctx;
pub mod cutover;
pub mod error;
pub mod export;
pub mod grant;
pub mod import;
pub mod instance;
pub mod instance_archive;
pub mod job;
pub mod kinds;
pub mod notify;
pub mod plan;
pub mod planfile;
pub mod reads;
pub mod rollback;
pub mod run;
pub mod schedules;
pub mod select;
pub mod vault_diff;
pub mod vault_prune;
pub mod vault_restore;
pub mod view;

pub use ctx::{Bounds, Ctx, RollbackSink};
pub use error::OpsError;
