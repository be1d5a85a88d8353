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
        $crate::script::api::global(stringify!($n), &[concat!(stringify!($v), ": ", stringify!($T)), stringify!($R)],
            props!(@doc $doc, concat!("print(", stringify!($v), ");") $(, $ex)?))
            .register_into_engine($e, |$v: &mut $T| -> $R { $body });
        props!($e, $v: $T { $($rest)* });
    };
    ($e:expr, $v:ident: $T:ty { $p:ident -> $R:ty: $doc:literal $(=> $ex:literal)?, $body:expr; $($rest:tt)* }) => {
        $crate::script::api::getter(stringify!($p), &[concat!(stringify!($v), ": ", stringify!($T)), stringify!($R)],
            props!(@doc $doc, concat!("print(", stringify!($v), ".", stringify!($p), ");") $(, $ex)?))
            .register_into_engine($e, |$v: &mut $T| -> $R { $body });
        props!($e, $v: $T { $($rest)* });
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

use std::sync::Arc;

use rhai::{Engine, FnNamespace, FuncRegistration, Module};

use super::host::Host;

/// Turns a doc text into Rhai's doc-comment form (`/// ` on every line).
pub fn doc(text: &str) -> String {
    text.trim_matches('\n')
        .lines()
        .map(|l| {
            if l.is_empty() {
                "///".to_string()
            } else {
                format!("/// {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    FuncRegistration::new_getter(prop)
        .with_namespace(FnNamespace::Global)
        .with_params_info(params.iter().copied())
        .with_comments([doc(text)])
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
    e.set_default_tag(rhai::Dynamic::from(host.clone()));
    util::register(e);
    oic::register(e, host.clone());
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
pub fn host_of(ctx: &rhai::NativeCallContext) -> Result<Arc<Host>, Box<rhai::EvalAltResult>> {
    ctx.tag()
        .and_then(|t| t.read_lock::<Arc<Host>>().map(|h| h.clone()))
        .ok_or_else(|| crate::script::errors::usage("this engine has no ferry host"))
}

/// Registers a plugin module (`#[export_module]`: the doc comments of the `mod` item and of its
/// functions, and the functions' real parameter and return types, feed `ferry docs`) under
/// `name`.
pub fn register_plugin(e: &mut Engine, name: &str, m: Module) {
    e.register_static_module(name, m.into());
}

/// Builds a static module with `f` and registers it under `name`.
pub fn static_module(e: &mut Engine, name: &str, doc_text: &str, f: impl FnOnce(&mut Module)) {
    let mut m = Module::new();
    m.set_doc(doc(doc_text));
    f(&mut m);
    e.register_static_module(name, m.into());
}

/// An instance's list read (recorded, retried) as a script array; failures name the instance.
pub fn listed<T, Fut>(
    i: &oic::Instance,
    what: &str,
    f: impl FnMut() -> Fut,
) -> Result<rhai::Array, Box<rhai::EvalAltResult>>
where
    T: rhai::Variant + Clone,
    Fut: std::future::Future<Output = Result<Vec<T>, crate::oic::OicError>>,
{
    let ctx = crate::script::errors::Ctx::instance(&i.name());
    let list = i.host.read(what, f)?.map_err(|e| oic::oic_err(e, ctx))?;
    Ok(list.into_iter().map(rhai::Dynamic::from).collect())
}

/// One `kind` read by `id` from an instance: the error of the read, or one with `status` 404
/// when it does not exist (both with `ctx`, which names the instance).
pub fn found<T>(
    read: Result<Option<T>, crate::oic::OicError>,
    kind: &str,
    id: &str,
    ctx: crate::script::errors::Ctx,
) -> Result<T, Box<rhai::EvalAltResult>> {
    let on = ctx.instance.clone().unwrap_or_default();
    let missing = format!("{kind} {id} does not exist on {on}");
    read.map_err(|e| oic::oic_err(e, ctx.clone()))?
        .ok_or_else(|| crate::script::errors::script_error("http", Some(404), missing, ctx))
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
