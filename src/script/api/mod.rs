//! Script-visible modules. Each binding is a thin wrapper over a plain Rust API; every function is
//! registered with its parameter names and a doc comment (with an example), which feed
//! `ferry docs` and the REPL's `:help`.

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
pub mod vault_diff;

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
    compare::register(e, host.clone());
    ledger::register(e);
    vault::register(e, host.clone());
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

/// A value as the REPL shows it: our objects as short blocks, arrays of them as aligned tables,
/// everything else as Rhai prints it.
pub fn display_value(v: &rhai::Dynamic) -> String {
    use crate::artifact::Artifact;
    use crate::oic::Integration;
    if let Some(i) = v.read_lock::<Integration>() {
        return oic::integration_text(&i);
    }
    if let Some(a) = v.read_lock::<Artifact>() {
        return oic::artifact_text(&a);
    }
    if let Some(i) = v.read_lock::<oic::Instance>() {
        return format!(
            "Instance({}, OIC {}, {})",
            i.name(),
            i.client.generation().number(),
            i.client.base_url()
        );
    }
    if let Some(arr) = v.read_lock::<rhai::Array>()
        && !arr.is_empty()
    {
        let table = if arr.iter().all(|x| x.is::<Integration>()) {
            Some(integration_table(&arr))
        } else if arr.iter().all(|x| x.is::<Artifact>()) {
            Some(artifact_table(&arr))
        } else if arr.iter().all(|x| x.is_map()) {
            map_table(&arr)
        } else {
            None
        };
        if let Some(t) = table {
            return t;
        }
    }
    if v.is_string() {
        return format!("{:?}", v.to_string());
    }
    v.to_string()
}

fn integration_table(arr: &rhai::Array) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "STATUS".into(),
        "NAME".into(),
        "UPDATED BY".into(),
    ]];
    for x in arr.iter() {
        if let Some(i) = x.read_lock::<crate::oic::Integration>() {
            rows.push(vec![
                format!("{}|{}", i.code, i.version),
                i.status.clone(),
                i.name.clone(),
                i.last_updated_by.clone(),
            ]);
        }
    }
    format!(
        "{}({} integrations)",
        crate::ledger::report::render_table(&rows),
        arr.len()
    )
}

fn artifact_table(arr: &rhai::Array) -> String {
    let mut rows = vec![vec![
        "KIND".to_string(),
        "ID".into(),
        "SIZE".into(),
        "SHA256".into(),
        "SOURCE".into(),
    ]];
    for x in arr.iter() {
        if let Some(a) = x.read_lock::<crate::artifact::Artifact>() {
            rows.push(vec![
                a.key.kind.to_string(),
                a.key.id(),
                a.size.to_string(),
                a.sha256.chars().take(16).collect(),
                a.source.clone(),
            ]);
        }
    }
    format!(
        "{}({} artifacts)",
        crate::ledger::report::render_table(&rows),
        arr.len()
    )
}

/// Result maps: a table over the keys of the first map (at most 12 columns).
fn map_table(arr: &rhai::Array) -> Option<String> {
    let keys: Vec<String> = arr[0]
        .read_lock::<rhai::Map>()
        .map(|m| m.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    if keys.is_empty() || keys.len() > 12 {
        return None;
    }
    let cell = |m: &rhai::Map, k: &str| match m.get(k) {
        Some(v) if v.is_unit() => "-".to_string(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let mut rows = vec![keys.iter().map(|k| k.to_uppercase()).collect::<Vec<_>>()];
    for x in arr.iter() {
        if let Some(m) = x.read_lock::<rhai::Map>() {
            rows.push(keys.iter().map(|k| cell(&m, k)).collect());
        }
    }
    Some(
        crate::ledger::report::render_table(&rows)
            .trim_end()
            .to_string(),
    )
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
