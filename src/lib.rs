//! # ferry
//!
//! ferry moves Oracle Integration Cloud (OIC) artifacts between instances. A Rust runtime exposes
//! OIC, backup-vault, access and notification primitives to Rhai scripts ("recipes"), which run in
//! batch (`ferry run`) or interactively (`ferry repl`).
//!
//! Layers, one folder each:
//!
//! * [`cli`]: the command line (clap), one file per subcommand; thin wrappers over the library.
//! * [`script`]: the Rhai host: the one engine factory, module registration, error rendering, REPL.
//! * [`ops`]: the migration verbs as plain Rust functions with serde options and results, called
//!   by the script bindings and the command line.
//! * [`oic`]: the OIC REST client (OAuth 2.0 client credentials, integrations, archives).
//! * [`vault`]: backup vaults (`file://`, `sftp://`), the dated job tree and its manifest.
//! * [`effect`]: the effect layer: every side effect goes through one executor that records it,
//!   retries it and, in a dry run, describes it instead.
//! * [`ledger`]: the run record and its reports.
//! * [`sim`]: the OIC emulator, written from the API reference independently of [`oic`].
//! * [`shell`]: the one output (cargo's model): verbosity, `--json`, progress bars, warnings,
//!   secret scrubbing, exit codes.
//! * [`net`]: HTTP helpers and the one OAuth 2.0 token source (OIC and identity-domain clients).
//! * [`config`]: the configuration file and secret references.
//! * [`artifact`]: local archives with their identity and checksum.
//! * [`shared`]: the copy-on-write handle of artifacts and integrations.

// The Rhai host (`script::Host`, the `Engine`) lives on the script thread: Rhai is built without
// its `sync` feature, so script values are not `Send`. `Arc` is used for shared ownership between
// the closures registered with Rhai and the futures the script thread drives with `block_on`,
// never to move a host to another thread.
#![allow(clippy::arc_with_non_send_sync)]

pub mod artifact;
pub mod cli;
pub mod config;
pub mod effect;
pub mod ledger;
pub mod net;
pub mod notify;
pub mod oic;
pub mod ops;
pub mod rbac;
pub mod script;
pub mod serve;
pub mod shared;
pub mod shell;
pub mod sim;
pub mod vault;
