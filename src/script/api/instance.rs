//! Whole-instance verbs in the `oic` module: `oic::instance_archive` (OIC's own clone) and
//! `oic::migrate_instance` (ferry's per-artifact path). Bindings of [`crate::ops::instance_archive`]
//! and [`crate::ops::instance`].

use rhai::plugin::*;
use rhai::{Map, Module};

use super::args::{RhaiResultOf, map_of, options};
use super::oic::Instance;
use crate::ops::{instance, instance_archive};

// The functions added to the `oic` module (no module doc: it would be appended to `oic`'s).
#[export_module]
mod instance_api {
    use super::*;

    /// Clones a whole instance with OIC's own instance archive: `exportServiceInstanceArchive` on `source` into an Object Storage bucket, then `importServiceInstanceArchive` on `target`, each job polled to its end and recorded as one step.
    /// All or nothing: every integration version, project, connection, lookup, library, package and schedule definition; it drops role grants and project ACLs (users, roles and access policies), which `oic::migrate_instance` carries.
    /// Options: `storage` (required: `#{ url, user, password }`, the password as `env:VAR` or `file:PATH`), `job_name`, `description`, `security` (credentials and certificates, default true), `mode` (`"import_only"` default, `"import_activate"`, `"activate_only"`), `start_schedules`, `schedule_params`, `archive` (import this archive, already in the bucket, instead of exporting first), `poll_seconds` (10), `timeout` (seconds, 7200).
    /// Returns `#{ source, target, export_job, import_job, coverage }` (`export_job` is `()` with `archive`): each job's `status`, `job_id`, `archive`, `resources`, `seconds`, and per item whether the clone `carried` it, with a `note`.
    ///
    /// # Example
    /// ```rhai
    /// let r = oic::instance_archive(oic::instance("gen2"), oic::instance("oic3"), #{
    ///     storage: #{ url: "https://swiftobjectstorage.eu-frankfurt-1.oraclecloud.com/v1/ns/clone", user: "me@example.com", password: "env:OCI_AUTH_TOKEN" },
    /// });
    /// for c in r.coverage { if !c.carried { print(`not carried: ${c.item} (${c.note})`); } }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn instance_archive(source: Instance, target: Instance, options: Map) -> RhaiResultOf<Map> {
        let o = super::options("instance_archive", &options)?;
        map_of(&source.run(|h, s| instance_archive::clone_instance(h, s, &target.client, &o))?)
    }

    /// Moves everything `source` holds to `target` by ferry's per-artifact path, in dependency order: libraries, lookups, projects, packages and integrations (each exported, checked against the target and imported; unchanged archives skipped), then the connections they use (the source's properties and security policy, per-environment `connections` settings and credentials over them, each tested), then activations, project ACLs and role grants (in the identity domain, principals mapped by e-mail or group name).
    /// Every change is a recorded step: `ferry plan` shows them, `--resume` continues a stopped run.
    /// Options (unknown keys refused): `include` and `exclude` (arrays of rules `#{ kind, code, status, project, updated_since }`; `kind` one of integration project connection lookup library package grant acl certificate, or an array; `code` a glob), `versions` (`"all"` default, `"latest"`), `overwrite` (true), `activate` (`"keep"`, true, false), `connections` (`#{ CODE: #{ properties, security_policy, security, agent_group } }`, security values as `env:VAR`/`file:PATH`), `copy_connection_properties` (true), `test_connections` (true), `acls` (true), `grants` (true), `concurrency`, `activation_concurrency`, `async_activation` (true), `activation_timeout` (300), `stop_on_error` (false).
    /// Returns `#{ source, target, selected, excluded: [#{ id, reason }], imports, activations (of integrations that came in packages), connections, access, certificates, failed, coverage, archive_coverage }`; `coverage` says what this path carries and drops, `archive_coverage` the same for `oic::instance_archive`.
    /// Certificates are listed, not carried (OIC's API gives no certificate file or private key back): `certificates` has one `#{ id, oic_id, name, type, category, expires, carried: false, on_target, reason }` per certificate uploaded to `source` that the rules select, to upload on `target` by hand; only their metadata is read.
    ///
    /// # Example
    /// ```rhai
    /// let r = oic::migrate_instance(oic::instance("old"), oic::instance("new"), #{
    ///     exclude: [#{ code: "TEST_*" }, #{ kind: "integration", status: "INPROGRESS" }],
    ///     connections: #{ ERP: #{ properties: #{ connectionUrl: "https://erp.example.com" }, security: #{ password: "env:ERP_PASSWORD" } } },
    /// });
    /// print(`${r.failed} failure(s); left out: ${r.excluded.len()}`);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn migrate_instance(source: Instance, target: Instance, options: Map) -> RhaiResultOf<Map> {
        let o = super::options("migrate_instance", &options)?;
        map_of(&source.run(|h, s| instance::migrate_instance(h, s, &target.client, &o))?)
    }
}

/// Adds the whole-instance functions to the `oic` module.
pub fn register_in_oic(m: &mut Module) {
    m.combine_flatten(exported_module!(instance_api));
}
