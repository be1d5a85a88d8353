//! Whole-instance verbs in the `oic` module: `oic::instance_archive` (OIC's own clone) and
//! `oic::migrate_instance` (ferry's per-artifact path). Bindings of [`crate::ops::instance_archive`]
//! and [`crate::ops::instance`].

use rhai::{Dynamic, EvalAltResult, Map, Module};

use super::in_module;
use super::oic::{Instance, ops_err, options};
use crate::ops::instance_archive::{self, CloneOptions};

/// `oic::instance_archive(source, target, options)`.
pub fn instance_archive(
    src: &Instance,
    dst: &Instance,
    opts: &Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let o: CloneOptions = options("instance_archive", opts)?;
    let host = &*src.host;
    let r = host
        .block_on(instance_archive::clone_instance(
            host,
            &src.client,
            &dst.client,
            &o,
        ))?
        .map_err(ops_err)?;
    host.exec
        .record()
        .add_report_section(&instance_archive::coverage_html(
            "OIC instance archive",
            &r.coverage,
        ));
    rhai::serde::to_dynamic(&r)
}

/// Adds the whole-instance functions to the `oic` module.
pub fn register_in_oic(m: &mut Module) {
    in_module("instance_archive", &["source: Instance", "target: Instance", "options: Map", "Map"], "Clones a whole instance with OIC's own instance archive: `exportServiceInstanceArchive` on `source` into an Object Storage bucket, then `importServiceInstanceArchive` on `target`, each job polled to its end and recorded as one step.\nAll or nothing: every integration version, project, connection, lookup, library, package and schedule definition; it drops role grants and project ACLs (users, roles and access policies), which `oic::migrate_instance` carries.\nOptions: `storage` (required: `#{ url, user, password }`, the password as `env:VAR` or `file:PATH`), `job_name`, `description`, `security` (credentials and certificates, default true), `mode` (`\"import_only\"` default, `\"import_activate\"`, `\"activate_only\"`), `start_schedules`, `schedule_params`, `archive` (import this archive, already in the bucket, instead of exporting first), `poll_seconds` (10), `timeout` (seconds, 7200).\nReturns `#{ source, target, export, import, coverage }` (`export` is `()` with `archive`): each job's `status`, `job_id`, `archive`, `resources`, `seconds`, and per item whether the clone `carried` it, with a `note`.\n\n# Example\n```rhai\nlet r = oic::instance_archive(oic::instance(\"gen2\"), oic::instance(\"oic3\"), #{\n    storage: #{ url: \"https://swiftobjectstorage.eu-frankfurt-1.oraclecloud.com/v1/ns/clone\", user: \"me@example.com\", password: \"env:OCI_AUTH_TOKEN\" },\n});\nfor c in r.coverage { if !c.carried { print(`not carried: ${c.item} (${c.note})`); } }\n```")
        .set_into_module(m, |src: Instance, dst: Instance, o: Map| instance_archive(&src, &dst, &o));
}
