//! Script-visible modules. Each binding is a thin wrapper over a plain Rust API; every function is
//! registered with its parameter names and a doc comment (with an example), which feed
//! `ferry docs` and the REPL's `:help`.

pub mod oic;
pub mod util;
pub mod vault;

use std::sync::Arc;

use rhai::{Engine, FnNamespace, FuncRegistration, Module};

use super::host::Host;

/// Turns a doc text into Rhai's doc-comment form (`/// ` on every line).
pub fn doc(text: &str) -> String {
    text.trim_matches('\n').lines().map(|l| if l.is_empty() { "///".to_string() } else { format!("/// {l}") }).collect::<Vec<_>>().join("\n")
}

/// A registration in the global namespace (methods, getters, global helpers).
pub fn global(name: &str, params: &[&str], text: &str) -> FuncRegistration {
    FuncRegistration::new(name)
        .with_namespace(FnNamespace::Global)
        .with_volatility(true)
        .with_params_info(params.iter().copied())
        .with_comments([doc(text)])
}

/// A registration of a property getter.
pub fn getter(prop: &str, params: &[&str], text: &str) -> FuncRegistration {
    FuncRegistration::new_getter(prop).with_namespace(FnNamespace::Global).with_params_info(params.iter().copied()).with_comments([doc(text)])
}

/// A registration inside a static module (`oic::instance`).
pub fn in_module(name: &str, params: &[&str], text: &str) -> FuncRegistration {
    FuncRegistration::new(name)
        .with_namespace(FnNamespace::Internal)
        .with_volatility(true)
        .with_params_info(params.iter().copied())
        .with_comments([doc(text)])
}

/// Registers every module.
pub fn register_all(e: &mut Engine, host: Arc<Host>) {
    util::register(e, host.clone());
    oic::register(e, host.clone());
    vault::register(e, host);
}

/// Builds a static module with `f` and registers it under `name`.
pub fn static_module(e: &mut Engine, name: &str, doc_text: &str, f: impl FnOnce(&mut Module)) {
    let mut m = Module::new();
    m.set_doc(doc(doc_text));
    f(&mut m);
    e.register_static_module(name, m.into());
}
