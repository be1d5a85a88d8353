//! Comparing instances: `source.diff(target)` and `target.verify(expected)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::global;
use super::oic::{Instance, apply_filter, oic_err};
use crate::artifact::Artifact;
use crate::oic::{Integration, IntegrationId};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

fn ids(list: &[Integration]) -> BTreeMap<String, &Integration> {
    list.iter()
        .map(|i| (format!("{}|{}", i.code, i.version), i))
        .collect()
}

fn strings(v: impl IntoIterator<Item = String>) -> Dynamic {
    v.into_iter().map(Dynamic::from).collect::<Array>().into()
}

/// What is missing, different or extra on `dst` compared with `src`.
pub fn diff(src: &Instance, dst: &Instance, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    for k in opts.keys() {
        if !["checksums", "filter"].contains(&k.as_str()) {
            return Err(errors::usage(format!(
                "unknown diff option `{k}` (known: checksums, filter)"
            )));
        }
    }
    let host = src.host.clone();
    let mut a = host
        .read("list_integrations", || src.client.list_integrations(None))?
        .map_err(|e| oic_err(e, Ctx::instance(&src.name())))?;
    let mut b = host
        .read("list_integrations", || dst.client.list_integrations(None))?
        .map_err(|e| oic_err(e, Ctx::instance(&dst.name())))?;
    if let Some(f) = opts
        .get("filter")
        .and_then(|f| f.read_lock::<Map>().map(|m| m.clone()))
    {
        a = apply_filter(a, &f)?;
        b = apply_filter(b, &f)?;
    }
    let (ia, ib) = (ids(&a), ids(&b));
    let missing: Vec<String> = ia
        .keys()
        .filter(|k| !ib.contains_key(*k))
        .cloned()
        .collect();
    let extra: Vec<String> = ib
        .keys()
        .filter(|k| !ia.contains_key(*k))
        .cloned()
        .collect();
    let mut different: Array = vec![];
    let mut push = |id: &str, field: &str, s: String, t: String| {
        let mut m = Map::new();
        m.insert("id".into(), id.into());
        m.insert("field".into(), field.into());
        m.insert("source".into(), s.into());
        m.insert("target".into(), t.into());
        different.push(m.into());
    };
    // The highest version of each code, when the two sides differ.
    let latest = |l: &[Integration]| -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for i in l {
            let e = m.entry(i.code.clone()).or_default();
            if *e < i.version {
                *e = i.version.clone();
            }
        }
        m
    };
    let (la, lb) = (latest(&a), latest(&b));
    for (code, va) in &la {
        if let Some(vb) = lb.get(code)
            && va != vb
        {
            push(code, "version", va.clone(), vb.clone());
        }
    }
    let both: Vec<String> = ia.keys().filter(|k| ib.contains_key(*k)).cloned().collect();
    for id in &both {
        if ia[id].status != ib[id].status {
            push(id, "status", ia[id].status.clone(), ib[id].status.clone());
        }
    }
    if opts
        .get("checksums")
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false)
    {
        let pairs = super::bulk::run_bulk(
            &host,
            "compare",
            host.concurrency.exports,
            both.clone(),
            |id| {
                let (ca, cb) = (src.client.clone(), dst.client.clone());
                async move {
                    let iid = IntegrationId::parse(&id).map_err(|e| e.to_string())?;
                    let x = ca
                        .export_integration(&iid)
                        .await
                        .map_err(|e| e.to_string())?;
                    let y = cb
                        .export_integration(&iid)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>((id, x.sha256, y.sha256))
                }
            },
        )?;
        for p in pairs {
            let (id, x, y) =
                p.map_err(|m| errors::script_error("http", None, m, Ctx::default().stage("diff")))?;
            if x != y {
                push(&id, "checksum", x, y);
            }
        }
    }
    let same = both.len() as i64
        - different
            .iter()
            .filter(|d| {
                d.read_lock::<Map>()
                    .is_some_and(|m| m.get("field").is_some_and(|f| f.to_string() != "version"))
            })
            .count() as i64;
    let mut out = Map::new();
    out.insert("source".into(), src.name().into());
    out.insert("target".into(), dst.name().into());
    out.insert("missing".into(), strings(missing));
    out.insert("extra".into(), strings(extra));
    out.insert("different".into(), different.into());
    out.insert("same".into(), same.max(0).into());
    Ok(out)
}

/// Checks that `expected` landed on the instance: each `CODE|VERSION` exists and, where a status
/// is expected, has it.
pub fn verify(inst: &Instance, expected: &Dynamic) -> Result<Map, Box<EvalAltResult>> {
    let mut want: BTreeMap<String, Option<String>> = BTreeMap::new();
    let items: Vec<Dynamic> = if let Some(m) = expected.read_lock::<Map>() {
        for (k, v) in m.iter() {
            want.insert(
                k.to_string(),
                if v.is_unit() {
                    None
                } else {
                    Some(v.to_string())
                },
            );
        }
        vec![]
    } else if let Some(a) = expected.read_lock::<Array>() {
        a.clone()
    } else {
        vec![expected.clone()]
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
    let list = inst
        .host
        .read("list_integrations", || inst.client.list_integrations(None))?
        .map_err(|e| oic_err(e, Ctx::instance(&inst.name())))?;
    let have: BTreeMap<String, String> = list
        .into_iter()
        .map(|i| (format!("{}|{}", i.code, i.version), i.status))
        .collect();
    let mut missing = vec![];
    let mut wrong: Array = vec![];
    for (id, st) in &want {
        match have.get(id) {
            None => missing.push(id.clone()),
            Some(actual) => {
                if let Some(s) = st
                    && s != actual
                {
                    let mut m = Map::new();
                    m.insert("id".into(), id.clone().into());
                    m.insert("expected".into(), s.clone().into());
                    m.insert("actual".into(), actual.clone().into());
                    wrong.push(m.into());
                }
            }
        }
    }
    let mut out = Map::new();
    out.insert("ok".into(), (missing.is_empty() && wrong.is_empty()).into());
    out.insert("checked".into(), (want.len() as i64).into());
    out.insert("missing".into(), strings(missing));
    out.insert("wrong_status".into(), wrong.into());
    Ok(out)
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    let _ = host;
    let doc = "Compares two instances' integrations: `#{ missing: [ids on source only], extra: [ids on target only],\ndifferent: [#{ id, field: \"version\"|\"status\"|\"checksum\", source, target }], same: n }`.\nOptions: `filter` (a filter map as for `integrations`), `checksums` (true: export both sides and compare archive sha256).\n\n# Example\n```rhai\nlet d = oic::instance(\"dev\").diff(oic::instance(\"prod\"), #{ filter: #{ code: \"HR_*\" } });\nprint(d.missing);\n```";
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
