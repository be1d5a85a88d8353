//! The one engine factory, used by `run`, `check`, `repl`, `docs` and the tests.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Dynamic, Engine};

use super::api;
use super::host::Host;
use super::resolver::Resolver;

/// Engine settings that do not come from the host.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Module folders searched after the importing file's folder (`--lib`, `$FERRY_PATH`, config).
    pub lib_paths: Vec<PathBuf>,
    /// Operation limit (0 = unlimited; Ctrl-C still stops a runaway loop).
    pub max_operations: u64,
}

impl EngineOptions {
    /// `--lib` folders, then `$FERRY_PATH` (colon-separated), then the config's `lib_paths`.
    pub fn with_paths(cli_libs: &[PathBuf], config_libs: &[PathBuf]) -> EngineOptions {
        let mut lib_paths: Vec<PathBuf> = cli_libs.to_vec();
        if let Ok(p) = std::env::var("FERRY_PATH") {
            lib_paths.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
        }
        lib_paths.extend(config_libs.iter().cloned());
        EngineOptions {
            lib_paths,
            max_operations: 0,
        }
    }
}

/// Builds the engine: limits, strict variables, no `eval`, output through the host, the module
/// resolver, and every ferry module.
pub fn build_engine(host: Arc<Host>, opts: &EngineOptions) -> Engine {
    let mut e = Engine::new();
    e.set_max_call_levels(64)
        .set_max_expr_depths(64, 32)
        .set_max_operations(opts.max_operations)
        .set_max_string_size(64 << 20)
        .set_max_array_size(1_000_000)
        .set_max_map_size(100_000)
        .set_strict_variables(true);
    e.disable_symbol("eval");

    let out = host.out.clone();
    e.on_print(move |s| out.line(s));
    e.on_debug(
        |s, src, pos| tracing::debug!(target: "script", src = src.unwrap_or("-"), %pos, "{s}"),
    );
    let weak = Arc::downgrade(&host);
    e.on_progress(move |ops| {
        if ops % 512 == 0 && weak.upgrade().is_some_and(|h| h.is_cancelled()) {
            Some(Dynamic::from("cancelled by the user"))
        } else {
            None
        }
    });
    e.set_module_resolver(Resolver::new(opts.lib_paths.clone(), host.sources.clone()));

    api::register_all(&mut e, host);
    e
}
