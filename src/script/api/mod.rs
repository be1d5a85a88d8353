//! Script-visible modules. Each binding is a thin wrapper over a plain Rust API; every function is
//! registered with its parameter names and a doc comment (with an example), which feed
//! `ferry docs` and the REPL's `:help`.

/// Registers the read-only properties (and `fn` methods without arguments, like `to_string`) of a
/// script type, each with its doc comment and an example (`print(v.prop);` or `print(v);`, or the
/// one given after `=>`); the signature comes from the closure's real types:
/// `props!(e, p: Project { code -> String: "The project code.", p.code.clone(); })`.
macro_rules! props {
    ($e:expr, $v:ident: $T:ty {}) => {};
    ($e:expr, $v:ident: $T:ty { fn $n:ident -> $R:ty: $doc:literal $(=> $ex:literal)?, $body:expr; $($rest:tt)* }) => {
        props!(@reg $e, rhai::FuncRegistration::new(stringify!($n)).with_volatility(true), $v: $T, $R,
            props!(@doc $doc, concat!("print(", stringify!($v), ");") $(, $ex)?), $body);
        props!($e, $v: $T { $($rest)* });
    };
    ($e:expr, $v:ident: $T:ty { $p:ident -> $R:ty: $doc:literal $(=> $ex:literal)?, $body:expr; $($rest:tt)* }) => {
        props!(@reg $e, rhai::FuncRegistration::new_getter(stringify!($p)), $v: $T, $R,
            props!(@doc $doc, concat!("print(", stringify!($v), ".", stringify!($p), ");") $(, $ex)?), $body);
        props!($e, $v: $T { $($rest)* });
    };
    (@reg $e:expr, $f:expr, $v:ident: $T:ty, $R:ty, $doc:expr, $body:expr) => {
        $f.with_namespace(rhai::FnNamespace::Global)
            .with_params_info([concat!(stringify!($v), ": ", stringify!($T)), stringify!($R)])
            .with_comments([$crate::script::api::doc($doc)])
            .register_into_engine($e, |$v: &mut $T| -> $R { $body });
    };
    (@doc $doc:literal, $default:expr) => { concat!($doc, "\n\n# Example\n```rhai\n", $default, "\n```") };
    (@doc $doc:literal, $default:expr, $ex:literal) => { concat!($doc, "\n\n# Example\n```rhai\n", $ex, "\n```") };
}

pub mod args;
pub mod compare;
pub mod connections;
pub mod instance;
pub mod ledger;
pub mod notify;
pub mod oic;
pub mod projects;
pub mod rbac;
pub mod types;
pub mod util;
pub mod vault;

use std::future::Future;
use std::sync::Arc;

use rhai::{Engine, Module};

use self::args::RhaiResultOf;
use super::host::Host;
use crate::ops::OpsError;

/// Turns a doc text into Rhai's doc-comment form (`/// ` on every line).
pub fn doc(text: &str) -> String {
    let lines = text.trim_matches('\n').lines();
    lines
        .map(|l| format!("/// {l}").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registers every module.
pub fn register_all(e: &mut Engine, host: Arc<Host>) {
    e.set_default_tag(rhai::Dynamic::from(host));
    util::register(e);
    oic::register(e);
    connections::register(e);
    projects::register(e);
    compare::register(e);
    ledger::register(e);
    vault::register(e);
    rbac::register(e);
    notify::register(e);
}

/// The host of the engine a plugin-module function is called from: [`register_all`] sets it as
/// the engine's default tag (plugin functions cannot capture it as closures do).
pub fn host_of(ctx: &rhai::NativeCallContext) -> RhaiResultOf<Arc<Host>> {
    ctx.tag()
        .and_then(|t| t.read_lock::<Arc<Host>>().map(|h| h.clone()))
        .ok_or_else(|| crate::script::errors::usage("this engine has no ferry host"))
}

/// Runs a verb of `ops` on `host` to its end (or the run's cancellation); its error as a script
/// error.
pub fn call<T>(host: &Host, verb: impl Future<Output = Result<T, OpsError>>) -> RhaiResultOf<T> {
    host.block_on(verb)?.map_err(crate::script::errors::ops_err)
}

/// Registers a plugin module (`#[export_module]`: the doc comments of the `mod` item and of its
/// functions, and the functions' real parameter and return types, feed `ferry docs`) under
/// `name`.
pub fn register_plugin(e: &mut Engine, name: &str, m: Module) {
    e.register_static_module(name, m.into());
}

/// How optional fields reach scripts: `Some(v)` as the value, `None` as `()`.
pub trait OrUnit {
    fn or_unit(self) -> rhai::Dynamic;
}

impl<T: rhai::Variant + Clone> OrUnit for Option<T> {
    fn or_unit(self) -> rhai::Dynamic {
        self.map(rhai::Dynamic::from).unwrap_or(rhai::Dynamic::UNIT)
    }
}
