//! Comparing instances: `source.diff(target)` and `target.verify(expected)` (bindings of
//! [`crate::ops::compare`]).

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::global;
use super::oic::{Instance, ops_err, options};
use crate::artifact::Artifact;
use crate::oic::Integration;
use crate::ops::compare::{self, DiffOptions, Expected};
use crate::script::errors;
use crate::script::host::Host;

/// What is missing, different or extra on `dst` compared with `src`.
pub fn diff(src: &Instance, dst: &Instance, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    let o: DiffOptions = options("diff", opts)?;
    let host = &*src.host;
    let d = host
        .block_on(compare::diff(host, &src.client, &dst.client, &o))?
        .map_err(ops_err)?;
    Ok(rhai::serde::to_dynamic(&d)?.cast::<Map>())
}

/// The expectations of `verify`: artifacts, integrations, result maps, ids, or a map of ids to
/// statuses.
fn expected(x: &Dynamic) -> Result<Expected, Box<EvalAltResult>> {
    let mut want = Expected::new();
    if let Some(m) = x.read_lock::<Map>() {
        for (k, v) in m.iter() {
            want.insert(k.to_string(), (!v.is_unit()).then(|| v.to_string()));
        }
        return Ok(want);
    }
    let items: Vec<Dynamic> = match x.read_lock::<Array>() {
        Some(a) => a.clone(),
        None => vec![x.clone()],
    };
    for x in items {
        // Schedules travel beside their integrations; `verify` checks the integrations.
        if x.read_lock::<Artifact>()
            .is_some_and(|a| a.key.kind == crate::artifact::ArtifactKind::Schedule)
            || x.read_lock::<Map>().is_some_and(|m| {
                m.get("kind").is_some_and(|k| {
                    k.to_string() == crate::artifact::ArtifactKind::Schedule.as_str()
                })
            })
        {
            continue;
        }
        if let Some(a) = x.read_lock::<Artifact>() {
            let st = match a.source_status.as_deref() {
                Some("ACTIVATED") => Some("ACTIVATED".to_string()),
                Some(_) => Some("CONFIGURED".to_string()),
                None => None,
            };
            want.insert(a.key.id(), st);
        } else if let Some(i) = x.read_lock::<Integration>() {
            want.insert(format!("{}|{}", i.code, i.version), Some(i.status.clone()));
        } else if let Some(m) = x.read_lock::<Map>() {
            let id = m
                .get("id")
                .map(|v| v.to_string())
                .ok_or_else(|| errors::usage("a result map without `id`"))?;
            let st = m
                .get("status")
                .filter(|v| !v.is_unit())
                .map(|v| v.to_string());
            want.insert(id, st);
        } else if x.is_string() {
            want.insert(x.to_string(), None);
        } else {
            return Err(errors::usage(format!(
                "verify expects artifacts, integrations, result maps or ids, found a {}",
                x.type_name()
            )));
        }
    }
    Ok(want)
}

/// Checks that `expected` landed on the instance.
pub fn verify(inst: &Instance, x: &Dynamic) -> Result<Map, Box<EvalAltResult>> {
    let want = expected(x)?;
    let host = &*inst.host;
    let v = host
        .block_on(compare::verify(host, &inst.client, &want))?
        .map_err(ops_err)?;
    Ok(rhai::serde::to_dynamic(&v)?.cast::<Map>())
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    let _ = host;
    let doc = "Compares two instances' integrations: `#{ missing: [ids on source only], extra: [ids on target only],\ndifferent: [#{ id, field: \"version\"|\"status\"|\"checksum\", source, target }], same: n }`.\nOptions: `filter` (a filter map as for `integrations`), `checksums` (true: export both sides and compare the archives' content digests: entry names and contents, export time stamps left out), `all` (true: everything the instances hold: projects and their ACLs, connections with their status, security policy and non-secret properties, lookups, libraries, packages; ids then carry a kind prefix, `integration:CODE|VERSION`, `connection:CODE`, `acl:PROJECT`...).\n\n# Example\n```rhai\nlet d = oic::instance(\"dev\").diff(oic::instance(\"prod\"), #{ filter: #{ code: \"HR_*\" } });\nprint(d.missing);\n```";
    global(
        "diff",
        &["source: Instance", "target: Instance", "Map"],
        doc,
    )
    .register_into_engine(e, |a: &mut Instance, b: Instance| diff(a, &b, &Map::new()));
    global(
        "diff",
        &[
            "source: Instance",
            "target: Instance",
            "options: Map",
            "Map",
        ],
        doc,
    )
    .register_into_engine(e, |a: &mut Instance, b: Instance, o: Map| diff(a, &b, &o));
    global(
        "verify",
        &["inst: Instance", "expected: Dynamic", "Map"],
        "Checks that a migration landed: `expected` is an array of artifacts (expects ACTIVATED where they were active on the source, else CONFIGURED),\nintegrations (their status), import result maps (their `status`), ids (existence only), or a map `#{ \"CODE|VERSION\": \"STATUS\" }`.\nReturns `#{ ok, checked, missing: [ids], wrong_status: [#{ id, expected, actual }] }`.\n\n# Example\n```rhai\nlet v = prod.verify(job.artifacts());\nif !v.ok { throw `migration incomplete: ${v}`; }\n```",
    )
    .register_into_engine(e, |i: &mut Instance, x: Dynamic| verify(i, &x));
}
