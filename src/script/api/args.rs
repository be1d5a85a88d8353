//! Arguments of bindings: option maps read with serde (unknown keys refused), result lists out,
//! and the script objects a verb accepts (integrations, artifacts, ids) read from a `Dynamic`.

use rhai::{Array, Dynamic, EvalAltResult, Map};
use serde::de::DeserializeOwned;

use crate::artifact::Artifact;
use crate::oic::{Integration, IntegrationId};
use crate::ops::export::Exportable;
use crate::script::errors;

/// A binding's result. Rhai's metadata reads this name (as text) as `Result<T, Box<EvalAltResult>>`,
/// so `ferry docs` shows the `T` as the return type.
pub type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;

/// The options map of `verb` as its option type; an unknown key is refused with one message
/// that names the key and the verb.
pub fn options<T: DeserializeOwned>(verb: &str, m: &Map) -> RhaiResultOf<T> {
    rhai::serde::from_dynamic(&Dynamic::from_map(m.clone())).map_err(|e| {
        let msg = match *e {
            EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
            other => other.to_string(),
        };
        // serde's own words start at "unknown field", "invalid type"...: drop Rhai's prefix.
        let words = [
            "unknown field",
            "invalid type",
            "invalid value",
            "missing field",
        ];
        let msg = &msg[words.iter().find_map(|w| msg.find(w)).unwrap_or(0)..];
        let msg = msg.replace("unknown field", "unknown option");
        errors::usage(format!("{verb}: {msg}"))
    })
}

/// Results of a verb as an array of maps.
pub fn results<T: serde::Serialize>(items: Vec<T>) -> RhaiResultOf<Array> {
    items.iter().map(rhai::serde::to_dynamic).collect()
}

/// A result (a serde struct) as a script map.
pub fn map_of(r: &impl serde::Serialize) -> RhaiResultOf<Map> {
    let d = rhai::serde::to_dynamic(r)?;
    let ty = d.type_name();
    d.try_cast::<Map>()
        .ok_or_else(|| errors::usage(format!("expected a map, found a {ty}")))
}

/// Script objects (integrations, artifacts...) as an array. Collected into a new buffer: an
/// in-place collect would keep the buffer of the `T`s (hundreds of bytes each) behind an array of
/// 16-byte values for as long as the script holds it (3.5 MB for 10,000 artifacts).
pub fn objects<T: Clone + Send + Sync + 'static>(items: Vec<T>) -> Array {
    let mut out = Array::with_capacity(items.len());
    out.extend(items.into_iter().map(Dynamic::from));
    out
}

/// One item, or each item of an array, read by `one`; `each` and `whole` name what is expected
/// in the two refusals.
fn one_or_many<T>(
    items: &Dynamic,
    (each, whole): (&str, &str),
    one: impl Fn(&Dynamic) -> Option<T>,
) -> RhaiResultOf<Vec<T>> {
    let found = |x: &Dynamic, what: &str| {
        errors::usage(format!("expected {what}, found a {}", x.type_name()))
    };
    match items.read_lock::<Array>() {
        Some(a) => a
            .iter()
            .map(|x| one(x).ok_or_else(|| found(x, each)))
            .collect(),
        None => one(items)
            .map(|x| vec![x])
            .ok_or_else(|| found(items, whole)),
    }
}

/// Integrations, projects, lookups, libraries or packages (one, or an array of them).
pub fn as_exportables(items: &Dynamic) -> RhaiResultOf<Vec<Exportable>> {
    let what = (
        "integrations, projects, lookups, libraries or packages",
        "an integration (or project, lookup, library, package) or an array of them",
    );
    one_or_many(items, what, |x| {
        let e = x.clone().try_cast().map(Exportable::Integration);
        e.or_else(|| x.clone().try_cast().map(Box::new).map(Exportable::Project))
            .or_else(|| x.clone().try_cast().map(Box::new).map(Exportable::Lookup))
            .or_else(|| x.clone().try_cast().map(Box::new).map(Exportable::Library))
            .or_else(|| x.clone().try_cast().map(Box::new).map(Exportable::Package))
    })
}

/// Artifacts (one, or an array of them).
pub fn as_artifacts(items: &Dynamic) -> RhaiResultOf<Vec<Artifact>> {
    let what = ("artifacts", "an artifact or an array of artifacts");
    one_or_many(items, what, |x| x.clone().try_cast::<Artifact>())
}

/// Integration ids: an Integration, an Artifact, a map with `id` or `"CODE|VERSION"`, or an
/// array of them.
pub fn ids_from(v: &Dynamic) -> RhaiResultOf<Vec<IntegrationId>> {
    match v.read_lock::<Array>() {
        Some(a) => a.iter().map(id_from).collect(),
        None => Ok(vec![id_from(v)?]),
    }
}

/// One integration id: an Integration, an Artifact, a map with `id` or `"CODE|VERSION"`.
pub fn id_from(v: &Dynamic) -> RhaiResultOf<IntegrationId> {
    if let Some(i) = v.read_lock::<Integration>() {
        return Ok(IntegrationId::new(i.code.clone(), i.version.clone()));
    }
    if let Some(a) = v.read_lock::<Artifact>() {
        let k = &a.key;
        return Ok(IntegrationId::new(k.code.clone(), k.version.clone()));
    }
    let text = match v.read_lock::<Map>() {
        Some(m) if m.contains_key("id") => m["id"].to_string(),
        _ => v.to_string(),
    };
    IntegrationId::parse(&text).map_err(|e| errors::usage(e.to_string()))
}
