//! The `oic` module and the `Instance` type: instances, their integrations, export, import,
//! cutover and activation. Bindings of [`crate::ops`]: options in with `from_dynamic` (unknown
//! keys refused), a call, results out. The `Integration` and `Artifact` types are in
//! [`super::types`], argument readers in [`super::args`].

use std::future::Future;
use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::args::{RhaiResultOf, id_from, ids_from};
use super::args::{as_artifacts, as_exportables, map_of, objects};
pub use super::args::{options, results};
use super::{call, host_of};
use crate::oic::{Integration, IntegrationId, OicClient};
use crate::ops::{self, OpsError, activate, cutover, export, import, reads, select};
use crate::script::errors;
pub use crate::script::errors::ops_err;
use crate::script::host::Host;

/// An OIC instance from the config (script type `Instance`).
#[derive(Clone)]
pub struct Instance {
    pub host: Arc<Host>,
    pub client: OicClient,
}

impl Instance {
    pub fn name(&self) -> String {
        self.client.name().to_string()
    }

    /// Runs a verb of `ops` on the host and this instance's client (see [`call`]).
    pub(super) fn run<'a, T, F>(
        &'a self,
        verb: impl FnOnce(&'a Host, &'a OicClient) -> F,
    ) -> RhaiResultOf<T>
    where
        F: Future<Output = Result<T, OpsError>>,
    {
        call(&self.host, verb(&self.host, &self.client))
    }
}

/// `activate` (true) or `deactivate` (false) with options.
fn set_active(inst: &Instance, items: &Dynamic, on: bool, o: &Map) -> RhaiResultOf<Array> {
    let o = options(if on { "activate" } else { "deactivate" }, o)?;
    let ids = ids_from(items)?;
    results(inst.run(|h, c| activate::set_active(h, c, ids, on, &o))?)
}

/// Oracle Integration instances: list, export, import and activate integrations.
#[export_module]
mod oic_api {
    use super::*;

    /// Connects to the instance profile `name` from the config file (`[instances.NAME]`).
    /// The token is fetched on first use, cached, and renewed before it expires.
    ///
    /// # Example
    /// ```rhai
    /// let dev = oic::instance("dev");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn instance(ctx: NativeCallContext, name: ImmutableString) -> RhaiResultOf<Instance> {
        let host = host_of(&ctx)?;
        let client = ops::Ctx::client(&*host, &name).map_err(ops_err)?;
        Ok(Instance { host, client })
    }

    /// The names of the configured instance profiles.
    ///
    /// # Example
    /// ```rhai
    /// print(oic::instances());   // ["dev", "prod"]
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn instances(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        Ok(objects(reads::instance_names(&host_of(&ctx)?.config)))
    }
}

#[export_module]
mod instance_api {
    use super::*;

    /// Every integration of the instance (all pages of the list).
    ///
    /// # Example
    /// ```rhai
    /// let all = dev.integrations();
    /// let hr = all.filter(|i| i.code.starts_with("HR_"));
    /// ```
    #[rhai_fn(name = "integrations", pure, volatile, return_raw)]
    pub fn integrations(inst: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(inst.run(|h, c| select::integrations(h, c, None))?))
    }

    /// The integrations matching a filter map: `status` (string or array), `code` (glob: `"HR_*"`), `name` (glob, or `"/regex/"`),
    /// `project`, `updated_since` (`"2026-01-01"`), `locked` (bool), `latest` (true: only the highest version of each code).
    ///
    /// # Example
    /// ```rhai
    /// let live = dev.integrations(#{ status: "ACTIVATED", code: "HR_*", latest: true });
    /// ```
    #[rhai_fn(name = "integrations", pure, volatile, return_raw)]
    pub fn integrations_matching(inst: &mut Instance, filter: Map) -> RhaiResultOf<Array> {
        let f = options("filter", &filter)?;
        let listed = inst.run(|h, c| select::integrations(h, c, Some(&f)))?;
        Ok(objects(listed))
    }

    /// One integration by `"CODE|VERSION"`; an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let i = dev.integration("HR_SYNC|01.00.0000");
    /// ```
    #[rhai_fn(name = "integration", pure, volatile, return_raw)]
    pub fn integration(inst: &mut Instance, id: ImmutableString) -> RhaiResultOf<Integration> {
        let id = IntegrationId::parse(&id).map_err(|e| errors::usage(e.to_string()))?;
        inst.run(|h, c| select::integration(h, c, &id))
    }

    /// One integration by code and version; an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let i = dev.integration("HR_SYNC", "01.00.0000");
    /// ```
    #[rhai_fn(name = "integration", pure, volatile, return_raw)]
    pub fn integration_version(
        inst: &mut Instance,
        code: ImmutableString,
        version: ImmutableString,
    ) -> RhaiResultOf<Integration> {
        let id = IntegrationId::new(code.as_str(), version.as_str());
        inst.run(|h, c| select::integration(h, c, &id))
    }

    /// Exports integrations, projects, lookups, libraries or packages (one or an array) to local archives, in parallel, each streamed to disk while its sha256 is computed.
    /// A scheduled integration with a schedule also gives its schedule (definition and state) as an artifact of kind `schedule` (`Schedules/CODE_VERSION.json` in a backup job).
    /// Returns the artifacts that were exported; failures are recorded in the run (exit code 1) and the rest go on.
    ///
    /// # Example
    /// ```rhai
    /// let artifacts = dev.export_archives(dev.integrations(#{ code: "HR_*" }));
    /// ```
    #[rhai_fn(name = "export_archives", pure, volatile, return_raw)]
    pub fn export_archives(inst: &mut Instance, items: Dynamic) -> RhaiResultOf<Array> {
        export_archives_with(inst, items, Map::new())
    }

    /// Exports with options: `concurrency` (a hard cap; default: adaptive, found per instance from latency and 429/503 answers), `stop_on_error` (default false: raise the first failure), `label` (for projects: the deployment whose integration versions go into the archive).
    ///
    /// # Example
    /// ```rhai
    /// let artifacts = dev.export_archives(list, #{ concurrency: 8, stop_on_error: true });
    /// ```
    #[rhai_fn(name = "export_archives", pure, volatile, return_raw)]
    pub fn export_archives_with(
        inst: &mut Instance,
        items: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Array> {
        let o = super::options("export_archives", &options)?;
        let items = as_exportables(&items)?;
        Ok(objects(inst.run(|h, c| export::export(h, c, items, &o))?))
    }

    /// Imports artifacts with the default options (no overwrite; activate what was active on the source).
    ///
    /// # Example
    /// ```rhai
    /// let results = prod.import_archives(artifacts);
    /// ```
    #[rhai_fn(name = "import_archives", pure, volatile, return_raw)]
    pub fn import_archives(inst: &mut Instance, artifacts: Dynamic) -> RhaiResultOf<Array> {
        import_archives_with(inst, artifacts, Map::new())
    }

    /// Imports artifacts into the instance, each checked against its sha256 first (a corrupt archive is refused before it is sent),
    /// in dependency order: libraries, lookups, projects, packages, then integrations; configures `connections` if given; activates.
    /// Each integration is activated as soon as its own import is done and the connections its archive uses are configured (each
    /// connection once, as soon as the first import that brings it is done); never more requests together than the larger of the
    /// two concurrencies. With `stop_on_error` (and in a dry run) these are phases: every import, then every connection (a failing
    /// one stops there), then the activations. The schedules follow the activations.
    /// Existing items are replaced with `overwrite: true` (integrations have their schedules stopped and are deactivated first, each a step of its own; what a replace loses is saved for `ferry rollback`), else skipped; an item whose archive the target already holds (same sha256) is skipped.
    /// Options: `overwrite` (false), `activate` (`"keep"`: what was active on the source; true; false), `concurrency` (a hard cap; default adaptive),
    /// `activation_concurrency` (a hard cap; default adaptive), `async_activation` (true), `activation_timeout` (seconds, 300), `tracing`, `payload_tracing`,
    /// `connections` (a map or TOML file, as for `configure_connections`), `stop_on_error` (false),
    /// `schedules` (`"keep"`: after the activations, create or replace each schedule artifact's schedule and start, pause or stop it as it was on the source; `"create"`: the definition only; `"skip"`: leave schedules alone; each change is a step, saved for `ferry rollback`).
    /// Returns one map per artifact: `id`, `kind`, `action` (created, replaced, skipped, failed, planned), `status` (the OIC status after the activation, or `()`), `error`, and `code`, `version`, `sha256`, `source`, `source_status`, `activated`, `previous_status`, `reason`, `stage`, `status_code`.
    /// Unknown option keys are refused.
    ///
    /// # Example
    /// ```rhai
    /// let results = prod.import_archives(job.artifacts(), #{ overwrite: true, activate: "keep" });
    /// ```
    #[rhai_fn(name = "import_archives", pure, volatile, return_raw)]
    pub fn import_archives_with(
        inst: &mut Instance,
        artifacts: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Array> {
        let o = super::options("import_archives", &options)?;
        let items = as_artifacts(&artifacts)?;
        results(inst.run(|h, c| import::import_archives(h, c, items, &o))?)
    }

    /// Releases artifacts into this (protected) instance and watches them, rolling everything back by itself when they misbehave:
    /// 1. imports everything inactive (libraries and lookups first; replaced archives saved for rollback);
    /// 2. configures `connections` (a map or TOML file, as for `configure_connections`) and tests every connection the integrations use; one failing test stops the cutover before any activation (`outcome: "connections_failed"`, `failed_connections` with OIC's message);
    /// 3. activates callees before their callers (who calls whom is read from the archives: local invokes and calls to REST endpoints), then starts their schedules;
    /// 4. smoke-checks each activated integration for `smoke.window_secs`: its instances since its activation and their error rate (monitoring), optional test calls to REST triggers;
    /// 5. when an activation or the smoke check fails, rolls the whole cutover back (previous versions, activation states, schedules) and mails the cause to `notify` (default: the `[mail] admins`).
    /// Options: `activate` (`"keep"`: what was active on the source; true; false), `activation_timeout` (300), `start_schedules` (true), `rollback` (true), `notify` (e-mails), `connections`,
    /// `smoke: #{ window_secs (300), poll_secs (30), max_error_rate (0.0), min_instances (0), calls: [#{ path, method ("POST"), body }] }`. Unknown keys are refused.
    /// Returns `#{ target, outcome, cause, imported, tested, failed_connections, activated, order, schedules_started, schedules_restored, smoke, rollback }`; `outcome` is `completed`, `planned`, `import_failed`, `connections_failed`, `rolled_back` or `failed`. Every step is a recorded effect: `ferry plan` shows the sequence, `--resume` continues it.
    ///
    /// # Example
    /// ```rhai
    /// let r = prod.cutover(job.artifacts(), #{
    ///     connections: "connections/prod.toml",
    ///     smoke: #{ window_secs: 600, max_error_rate: 0.05 },
    /// });
    /// if r.outcome != "completed" { throw r.cause; }
    /// ```
    #[rhai_fn(name = "cutover", pure, volatile, return_raw)]
    pub fn cutover(inst: &mut Instance, artifacts: Dynamic, options: Map) -> RhaiResultOf<Map> {
        let o = super::options("cutover", &options)?;
        let items = as_artifacts(&artifacts)?;
        let clock = cutover::SystemClock;
        map_of(&inst.run(|h, c| cutover::cutover(h, &h.run, c.name(), items, &o, &clock))?)
    }

    /// Activates integrations (an Integration, Artifact or `"CODE|VERSION"`, or an array of them), in parallel (2 at a time),
    /// waiting for each to be active. Returns `#{ id, kind, action, status, error }` per item (`action`: activated, planned, failed; `status`: the OIC status); failures are recorded and the rest go on.
    ///
    /// # Example
    /// ```rhai
    /// prod.activate(["HR_SYNC|01.00.0000", "FIN_GL|02.00.0000"]);
    /// ```
    #[rhai_fn(name = "activate", pure, volatile, return_raw)]
    pub fn activate(inst: &mut Instance, items: Dynamic) -> RhaiResultOf<Array> {
        set_active(inst, &items, true, &Map::new())
    }

    /// Activates with options: `concurrency` (a hard cap; default adaptive), `async_activation` (true), `activation_timeout` (seconds, 300), `stop_on_error` (false).
    ///
    /// # Example
    /// ```rhai
    /// prod.activate(list, #{ concurrency: 1, stop_on_error: true });
    /// ```
    #[rhai_fn(name = "activate", pure, volatile, return_raw)]
    pub fn activate_with(inst: &mut Instance, items: Dynamic, options: Map) -> RhaiResultOf<Array> {
        set_active(inst, &items, true, &options)
    }

    /// Deactivates integrations (one or an array); already inactive is fine. Returns `#{ id, kind, action, status, error }` per item (`action`: deactivated, planned, failed).
    ///
    /// # Example
    /// ```rhai
    /// prod.deactivate("HR_SYNC|01.00.0000");
    /// ```
    #[rhai_fn(name = "deactivate", pure, volatile, return_raw)]
    pub fn deactivate(inst: &mut Instance, items: Dynamic) -> RhaiResultOf<Array> {
        set_active(inst, &items, false, &Map::new())
    }

    /// Deletes an integration (Integration, Artifact or `"CODE|VERSION"`). OIC refuses an active (412) or locked (423) one: deactivate first.
    ///
    /// # Example
    /// ```rhai
    /// prod.deactivate("OLD_FLOW|01.00.0000");
    /// prod.delete("OLD_FLOW|01.00.0000");
    /// ```
    #[rhai_fn(name = "delete", pure, volatile, return_raw)]
    pub fn delete(inst: &mut Instance, item: Dynamic) -> RhaiResultOf<()> {
        let id = id_from(&item)?;
        inst.run(|h, c| activate::delete(h, c, &id))
    }

    /// The current status of an integration (`ACTIVATED`, `CONFIGURED`, ...), or `"MISSING"` when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// if prod.status("HR_SYNC|01.00.0000") != "ACTIVATED" { print("not live"); }
    /// ```
    #[rhai_fn(name = "status", pure, volatile, return_raw)]
    pub fn status(inst: &mut Instance, item: Dynamic) -> RhaiResultOf<String> {
        let id = id_from(&item)?;
        inst.run(|h, c| select::status(h, c, &id))
    }
}

/// Registers the `oic` module (with the whole-instance verbs of [`super::instance`]), the
/// `Instance` type and its methods, and the `Integration` and `Artifact` types.
pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Instance>("Instance");
    let mut m = exported_module!(oic_api);
    super::instance::register_in_oic(&mut m);
    super::register_plugin(e, "oic", m);
    e.register_global_module(exported_module!(instance_api).into());
    props!(e, dev: Instance {
        name -> String: "The profile name of the instance.", dev.name();
        generation -> i64: "2 for OIC Gen2, 3 for OIC 3." => "if dev.generation == 3 { print(\"OIC 3\"); }",
            dev.client.generation().number();
        url -> String: "The instance's Developer API base URL.", dev.client.base_url().to_string();
        fn to_string -> String: "`Instance(name, OIC n, url)`.", reads::instance_text(&dev.client);
    });
    super::types::register(e);
}
