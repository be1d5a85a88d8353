//! The Rhai host: the engine factory, the script-visible modules, error mapping and rendering,
//! module resolution, output, and the REPL.
//!
//! Rhai is synchronous: a script runs on a thread that is not a tokio worker, and native functions
//! block on futures through [`Host::block_on`], while bulk primitives fan out on the runtime with a
//! bound on concurrency.

pub mod api;
pub mod display;
pub mod docs;
pub mod engine;
pub mod errors;
pub mod host;
pub mod render;
pub mod repl;
pub mod resolver;
pub mod runner;
pub mod values;

pub use crate::shell::Shell as Output;
pub use engine::{EngineOptions, build_engine};
pub use host::Host;
