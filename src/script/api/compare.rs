//! Comparing instances: `source.diff(target)` and `target.verify(expected)` (bindings of
//! [`crate::ops::compare`]).

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, Map};

use super::args::{RhaiResultOf, map_of, options};
use super::oic::{Instance, ops_err};
use crate::artifact::Artifact;
use crate::oic::Integration;
use crate::ops::compare::{self, ExpectItem, Expected};
use crate::script::errors;

/// One thing `verify` is given: an artifact, an integration, a result map or an id.
fn expect_item(x: &Dynamic) -> RhaiResultOf<ExpectItem> {
    if let Some(a) = x.read_lock::<Artifact>() {
        let (key, source_status) = (a.key.clone(), a.source_status.clone());
        Ok(ExpectItem::Exported { key, source_status })
    } else if let Some(i) = x.read_lock::<Integration>() {
        let (id, status) = (format!("{}|{}", i.code, i.version), i.status.clone());
        Ok(ExpectItem::Listed { id, status })
    } else if let Some(m) = x.read_lock::<Map>() {
        let text = |k: &str| m.get(k).map(|v| v.to_string());
        let status = m.get("status").filter(|v| !v.is_unit());
        let (id, kind, status) = (text("id"), text("kind"), status.map(|v| v.to_string()));
        Ok(ExpectItem::Result { id, kind, status })
    } else if x.is_string() {
        Ok(ExpectItem::Id(x.to_string()))
    } else {
        let t = x.type_name();
        let m = format!("verify expects artifacts, integrations, result maps or ids, found a {t}");
        Err(errors::usage(m))
    }
}

/// The expectations of `verify`: a map of ids to statuses, or items (one or an array).
fn expected(x: &Dynamic) -> RhaiResultOf<Expected> {
    if let Some(m) = x.read_lock::<Map>() {
        let status = |v: &Dynamic| (!v.is_unit()).then(|| v.to_string());
        return Ok(m.iter().map(|(k, v)| (k.to_string(), status(v))).collect());
    }
    let items = match x.read_lock::<Array>() {
        Some(a) => a.iter().map(expect_item).collect::<Result<_, _>>()?,
        None => vec![expect_item(x)?],
    };
    compare::expected(items).map_err(ops_err)
}

/// Comparing instances and checking that a migration landed.
#[export_module]
mod compare_api {
    use super::*;

    /// Compares two instances' integrations: `#{ missing: [ids on source only], extra: [ids on target only],
    /// different: [#{ id, field: "version"|"status"|"checksum", source, target }], same: n }`.
    ///
    /// # Example
    /// ```rhai
    /// let d = oic::instance("dev").diff(oic::instance("prod"));
    /// print(d.missing);
    /// ```
    #[rhai_fn(name = "diff", volatile, pure, return_raw)]
    pub fn diff_all(source: &mut Instance, target: Instance) -> RhaiResultOf<Map> {
        diff_with(source, target, Map::new())
    }

    /// `diff` with options: `filter` (a filter map as for `integrations`), `checksums` (true: export both sides and compare the archives' content digests: entry names and contents, export time stamps left out), `all` (true: everything the instances hold: projects and their ACLs, connections with their status, security policy and non-secret properties, lookups, libraries, packages; ids then carry a kind prefix, `integration:CODE|VERSION`, `connection:CODE`, `acl:PROJECT`...).
    ///
    /// # Example
    /// ```rhai
    /// let d = oic::instance("dev").diff(oic::instance("prod"), #{ filter: #{ code: "HR_*" } });
    /// print(d.missing);
    /// ```
    #[rhai_fn(name = "diff", volatile, pure, return_raw)]
    pub fn diff_with(source: &mut Instance, target: Instance, options: Map) -> RhaiResultOf<Map> {
        let o = super::options("diff", &options)?;
        map_of(&source.run(|h, c| compare::diff(h, c, &target.client, &o))?)
    }

    /// Checks that a migration landed: `expected` is an array of artifacts (expects ACTIVATED where they were active on the source, else CONFIGURED),
    /// integrations (their status), import result maps (their `status`), ids (existence only), or a map `#{ "CODE|VERSION": "STATUS" }`.
    /// Returns `#{ ok, checked, missing: [ids], wrong_status: [#{ id, expected, actual }] }`.
    ///
    /// # Example
    /// ```rhai
    /// let v = prod.verify(job.artifacts());
    /// if !v.ok { throw `migration incomplete: ${v}`; }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn verify(inst: &mut Instance, expected: Dynamic) -> RhaiResultOf<Map> {
        let want = super::expected(&expected)?;
        map_of(&inst.run(|h, c| compare::verify(h, c, &want))?)
    }
}

pub fn register(e: &mut Engine) {
    e.register_global_module(exported_module!(compare_api).into());
}
