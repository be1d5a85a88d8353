//! The `oic` module: instances, integrations and artifacts, export and import. Bindings of
//! [`crate::ops`]: options in with `from_dynamic` (unknown keys refused), a call, results out.

use crate::script::api::OrUnit;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};
use serde::de::DeserializeOwned;

use super::{getter, global, in_module, static_module};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Failure};
use crate::ledger::Stage;
use crate::oic::{Integration, IntegrationId, OicClient};
use crate::ops::export::Exportable;
use crate::ops::{OpsError, import::ImportOptions};
use crate::script::errors::{self, Ctx};
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
}

impl crate::ops::Ctx for Host {
    fn exec(&self) -> &crate::effect::Executor {
        &self.exec
    }
    fn config(&self) -> &Arc<crate::config::Config> {
        &self.config
    }
    fn client(&self, name: &str) -> Result<OicClient, OpsError> {
        if let Some(c) = self.clients.lock().expect("clients lock").get(name) {
            return Ok(c.clone());
        }
        let client =
            OicClient::new(self.config.instance(name)?).map_err(|e| OpsError::oic(name, e))?;
        self.clients
            .lock()
            .expect("clients lock")
            .insert(name.to_string(), client.clone());
        Ok(client)
    }
    fn bar(&self, len: usize, label: &str) -> indicatif::ProgressBar {
        Host::bar(self, len, label)
    }
    fn shell(&self) -> &crate::shell::Shell {
        &self.out
    }
    fn rollback_sink(&self) -> Arc<dyn crate::ops::RollbackSink> {
        super::ledger::sink_for(self)
    }
    fn resume_grace(&self) -> std::time::Duration {
        self.run.opts.resume_grace
    }
    fn bounds(&self) -> crate::ops::Bounds {
        crate::ops::Bounds {
            exports: self.concurrency.exports,
            imports: self.concurrency.imports,
            activations: self.concurrency.activations,
            stores: self.concurrency.stores,
        }
    }
}

/// Opens (or reuses) the client of a configured instance.
pub fn instance(host: &Arc<Host>, name: &str) -> Result<Instance, Box<EvalAltResult>> {
    let client = crate::ops::Ctx::client(&**host, name).map_err(ops_err)?;
    Ok(Instance {
        host: host.clone(),
        client,
    })
}

pub fn oic_err(e: crate::oic::OicError, ctx: Ctx) -> Box<EvalAltResult> {
    let f = Failure::from(e);
    errors::script_error(
        crate::effect::Classify::kind(&f),
        crate::effect::Classify::status(&f),
        f.to_string(),
        ctx,
    )
}

/// An error of the `ops` layer as a script error.
pub fn ops_err(e: OpsError) -> Box<EvalAltResult> {
    match e {
        OpsError::Usage(m) => errors::usage(m),
        OpsError::Cancelled => errors::cancelled(),
        OpsError::Effect(e) => errors::from_effect(*e),
        OpsError::Oic { at, source } => oic_err(*source, Ctx::instance(&at)),
        OpsError::Config(c) => errors::from_config(*c),
        OpsError::Ledger(m) => errors::script_error("ledger", None, m, Ctx::default()),
        OpsError::Connection { at, message } => errors::script_error(
            "connection",
            None,
            message,
            Ctx::instance(&at).stage("connection"),
        ),
        OpsError::Vault { at, message } => {
            errors::script_error("vault", None, message, Ctx::instance(&at))
        }
    }
}

/// The options map of `verb` as its option type; an unknown key is refused with one message
/// that names the key and the verb.
pub fn options<T: DeserializeOwned>(verb: &str, m: &Map) -> Result<T, Box<EvalAltResult>> {
    rhai::serde::from_dynamic(&Dynamic::from_map(m.clone())).map_err(|e| {
        let msg = match *e {
            EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
            other => other.to_string(),
        };
        // serde's own words start at "unknown field", "invalid type"...: drop Rhai's prefix.
        let msg = [
            "unknown field",
            "invalid type",
            "invalid value",
            "missing field",
        ]
        .iter()
        .find_map(|w| msg.find(w).map(|i| msg[i..].to_string()))
        .unwrap_or(msg);
        errors::usage(format!(
            "{verb}: {}",
            msg.replace("unknown field", "unknown option")
        ))
    })
}

/// Results of a verb as an array of maps.
pub fn results<T: serde::Serialize>(items: Vec<T>) -> Result<Array, Box<EvalAltResult>> {
    items.iter().map(rhai::serde::to_dynamic).collect()
}

/// Filters a list by a filter map (see [`crate::ops::select::Filter`]).
pub fn apply_filter(
    list: Vec<Integration>,
    f: &Map,
) -> Result<Vec<Integration>, Box<EvalAltResult>> {
    let f: crate::ops::select::Filter = options("filter", f)?;
    crate::ops::select::select(list, &f).map_err(ops_err)
}

fn one_exportable(x: &Dynamic) -> Option<Exportable> {
    if let Some(i) = x.read_lock::<Integration>() {
        return Some(Exportable::Integration(i.clone()));
    }
    if let Some(p) = x.read_lock::<crate::oic::Project>() {
        return Some(Exportable::Project(p.clone()));
    }
    if let Some(l) = x.read_lock::<crate::oic::Lookup>() {
        return Some(Exportable::Lookup(l.clone()));
    }
    if let Some(l) = x.read_lock::<crate::oic::Library>() {
        return Some(Exportable::Library(l.clone()));
    }
    if let Some(p) = x.read_lock::<crate::oic::Package>() {
        return Some(Exportable::Package(p.clone()));
    }
    None
}

/// Integrations, projects, lookups, libraries or packages (one, or an array of them).
pub fn as_exportables(items: &Dynamic) -> Result<Vec<Exportable>, Box<EvalAltResult>> {
    if let Some(e) = one_exportable(items) {
        return Ok(vec![e]);
    }
    if let Some(a) = items.read_lock::<Array>() {
        return a
            .iter()
            .map(|x| {
                one_exportable(x).ok_or_else(|| {
                    errors::usage(format!(
                        "expected integrations, projects, lookups, libraries or packages, found a {}",
                        x.type_name()
                    ))
                })
            })
            .collect();
    }
    Err(errors::usage(format!(
        "expected an integration (or project, lookup, library, package) or an array of them, found a {}",
        items.type_name()
    )))
}

/// Artifacts (one, or an array of them).
pub fn as_artifacts(items: &Dynamic) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    if let Some(a) = items.read_lock::<Artifact>() {
        return Ok(vec![a.clone()]);
    }
    if let Some(arr) = items.read_lock::<Array>() {
        return arr
            .iter()
            .map(|x| {
                x.read_lock::<Artifact>().map(|a| a.clone()).ok_or_else(|| {
                    errors::usage(format!("expected artifacts, found a {}", x.type_name()))
                })
            })
            .collect();
    }
    Err(errors::usage(format!(
        "expected an artifact or an array of artifacts, found a {}",
        items.type_name()
    )))
}

/// `export_archives`: see [`crate::ops::export::export`].
pub fn export(inst: &Instance, items: &Dynamic, opts: &Map) -> Result<Array, Box<EvalAltResult>> {
    let o = options("export_archives", opts)?;
    let items = as_exportables(items)?;
    let r = inst.host.block_on(crate::ops::export::export(
        &*inst.host,
        &inst.client,
        items,
        &o,
    ))?;
    Ok(r.map_err(ops_err)?.into_iter().map(Dynamic::from).collect())
}

/// `cutover`: see [`crate::ops::cutover`].
pub fn cutover(
    inst: &Instance,
    items: &Dynamic,
    opts: &Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let o: crate::ops::cutover::CutoverOpts = options("cutover", opts)?;
    let host = &*inst.host;
    let clock = crate::ops::cutover::SystemClock;
    let r = host
        .block_on(crate::ops::cutover::cutover(
            host,
            &host.run,
            &inst.name(),
            as_artifacts(items)?,
            &o,
            &clock,
        ))?
        .map_err(ops_err)?;
    rhai::serde::to_dynamic(&r)
}

/// `import_archives`: see [`crate::ops::import::import_archives`].
pub fn import(inst: &Instance, items: &Dynamic, opts: &Map) -> Result<Array, Box<EvalAltResult>> {
    let o: ImportOptions = options("import_archives", opts)?;
    let (host, client) = (&*inst.host, &inst.client);
    let r = host.block_on(crate::ops::import::import_archives(
        host,
        client,
        as_artifacts(items)?,
        &o,
    ))?;
    results(r.map_err(ops_err)?)
}

/// `activate` / `deactivate`: see [`crate::ops::activate::set_active`].
pub fn set_active(
    inst: &Instance,
    items: &Dynamic,
    activate: bool,
    opts: &Map,
) -> Result<Array, Box<EvalAltResult>> {
    let o = options(if activate { "activate" } else { "deactivate" }, opts)?;
    let ids = ids_from(items)?;
    let r = inst.host.block_on(crate::ops::activate::set_active(
        &*inst.host,
        &inst.client,
        ids,
        activate,
        &o,
    ))?;
    results(r.map_err(ops_err)?)
}

fn ids_from(v: &Dynamic) -> Result<Vec<IntegrationId>, Box<EvalAltResult>> {
    match v.read_lock::<Array>() {
        Some(a) => a.iter().map(id_from).collect(),
        None => Ok(vec![id_from(v)?]),
    }
}

fn id_from(v: &Dynamic) -> Result<IntegrationId, Box<EvalAltResult>> {
    if let Some(i) = v.read_lock::<Integration>() {
        return Ok(IntegrationId::new(i.code.clone(), i.version.clone()));
    }
    if let Some(a) = v.read_lock::<Artifact>() {
        return Ok(IntegrationId::new(
            a.key.code.clone(),
            a.key.version.clone(),
        ));
    }
    if let Some(m) = v.read_lock::<Map>()
        && let Some(id) = m.get("id")
    {
        return IntegrationId::parse(&id.to_string()).map_err(|e| errors::usage(e.to_string()));
    }
    let s = v.to_string();
    IntegrationId::parse(&s).map_err(|e| errors::usage(e.to_string()))
}

/// `Integration` as a short block of text.
pub fn integration_text(i: &Integration) -> String {
    format!(
        "{}|{}  {}  {}{}{}",
        i.code,
        i.version,
        i.status,
        i.name,
        if i.locked { "  [locked]" } else { "" },
        if i.schedule_defined {
            "  [scheduled]"
        } else {
            ""
        }
    )
}

/// `Integration` as a map (for `to_json` and tables).
pub fn integration_map(i: &Integration) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), format!("{}|{}", i.code, i.version).into());
    m.insert("code".into(), i.code.clone().into());
    m.insert("version".into(), i.version.clone().into());
    m.insert("name".into(), i.name.clone().into());
    m.insert("status".into(), i.status.clone().into());
    m.insert("locked".into(), i.locked.into());
    m.insert("scheduled".into(), i.schedule_defined.into());
    m.insert("project_type".into(), i.project_type.clone().into());
    m.insert("project".into(), i.project_code.clone().or_unit());
    m.insert("last_updated".into(), i.last_updated.clone().into());
    m.insert("last_updated_by".into(), i.last_updated_by.clone().into());
    m.insert(
        "connections".into(),
        i.connections
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m.insert(
        "lookups".into(),
        i.lookups
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m
}

/// `Artifact` as a map.
pub fn artifact_map(a: &Artifact) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), a.key.kind.as_str().into());
    m.insert("id".into(), a.key.id().into());
    m.insert("code".into(), a.key.code.clone().into());
    m.insert("version".into(), a.key.version.clone().into());
    m.insert("size".into(), (a.size as i64).into());
    m.insert("sha256".into(), a.sha256.clone().into());
    m.insert("source".into(), a.source.clone().into());
    m.insert("source_status".into(), a.source_status.clone().or_unit());
    m
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    e.register_type_with_name::<Instance>("Instance");
    e.register_type_with_name::<Integration>("Integration");
    e.register_type_with_name::<Artifact>("Artifact");

    let h = host.clone();
    static_module(
        e,
        "oic",
        "Oracle Integration instances: list, export, import and activate integrations.",
        move |m| {
            let h1 = h.clone();
            in_module("instance", &["name: string", "Instance"], "Connects to the instance profile `name` from the config file (`[instances.NAME]`).\nThe token is fetched on first use, cached, and renewed before it expires.\n\n# Example\n```rhai\nlet dev = oic::instance(\"dev\");\n```")
            .set_into_module(m, move |name: ImmutableString| instance(&h1, &name));
            let h2 = h.clone();
            in_module("instances", &["Array"], "The names of the configured instance profiles.\n\n# Example\n```rhai\nprint(oic::instances());   // [\"dev\", \"prod\"]\n```")
            .set_into_module(m, move || -> Array { h2.config.instances.keys().cloned().map(Dynamic::from).collect() });
            super::instance::register_in_oic(m);
        },
    );

    register_instance(e);
    register_integration(e);
    register_artifact(e);
}

/// The `Instance` type: its properties, lists, export, import and activation.
fn register_instance(e: &mut Engine) {
    getter(
        "name",
        &["inst: Instance", "string"],
        "The profile name of the instance.\n\n# Example\n```rhai\nprint(dev.name);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| i.name());
    getter("generation", &["inst: Instance", "int"], "2 for OIC Gen2, 3 for OIC 3.\n\n# Example\n```rhai\nif dev.generation == 3 { print(\"OIC 3\"); }\n```")
        .register_into_engine(e, |i: &mut Instance| i.client.generation().number());
    getter(
        "url",
        &["inst: Instance", "string"],
        "The instance's Developer API base URL.\n\n# Example\n```rhai\nprint(dev.url);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| i.client.base_url().to_string());
    global(
        "to_string",
        &["inst: Instance", "string"],
        "`Instance(name, url)`.\n\n# Example\n```rhai\nprint(dev);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| {
        format!(
            "Instance({}, OIC {}, {})",
            i.name(),
            i.client.generation().number(),
            i.client.base_url()
        )
    });
    global("integrations", &["inst: Instance", "Array"], "Every integration of the instance (all pages of the list).\n\n# Example\n```rhai\nlet all = dev.integrations();\nlet hr = all.filter(|i| i.code.starts_with(\"HR_\"));\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_integrations", || i.client.list_integrations(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
    global(
        "integrations",
        &["inst: Instance", "filter: Map", "Array"],
        "The integrations matching a filter map: `status` (string or array), `code` (glob: `\"HR_*\"`), `name` (glob, or `\"/regex/\"`),\n`project`, `updated_since` (`\"2026-01-01\"`), `locked` (bool), `latest` (true: only the highest version of each code).\n\n# Example\n```rhai\nlet live = dev.integrations(#{ status: \"ACTIVATED\", code: \"HR_*\", latest: true });\n```",
    )
    .register_into_engine(e, |i: &mut Instance, f: Map| -> Result<Array, Box<EvalAltResult>> {
        let list = i.host.read("list_integrations", || i.client.list_integrations(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
        Ok(apply_filter(list, &f)?.into_iter().map(Dynamic::from).collect())
    });
    global("integration", &["inst: Instance", "id: string", "Integration"], "One integration by `\"CODE|VERSION\"`; an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet i = dev.integration(\"HR_SYNC|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, id: ImmutableString| get_one(i, IntegrationId::parse(&id).map_err(|e| errors::usage(e.to_string()))?));
    global("integration", &["inst: Instance", "code: string", "version: string", "Integration"], "One integration by code and version; an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet i = dev.integration(\"HR_SYNC\", \"01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString, version: ImmutableString| get_one(i, IntegrationId::new(code.to_string(), version.to_string())));
    global("export_archives", &["inst: Instance", "items: Dynamic", "Array"], "Exports integrations, projects, lookups, libraries or packages (one or an array) to local archives, in parallel, each streamed to disk while its sha256 is computed.\nA scheduled integration with a schedule also gives its schedule (definition and state) as an artifact of kind `schedule` (`Schedules/CODE_VERSION.json` in a backup job).\nReturns the artifacts that were exported; failures are recorded in the run (exit code 1) and the rest go on.\n\n# Example\n```rhai\nlet artifacts = dev.export_archives(dev.integrations(#{ code: \"HR_*\" }));\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> {
            export(i, &items, &Map::new())
        });
    global("export_archives", &["inst: Instance", "items: Dynamic", "options: Map", "Array"], "Exports with options: `concurrency` (a hard cap; default: adaptive, found per instance from latency and 429/503 answers), `stop_on_error` (default false: raise the first failure), `label` (for projects: the deployment whose integration versions go into the archive).\n\n# Example\n```rhai\nlet artifacts = dev.export_archives(list, #{ concurrency: 8, stop_on_error: true });\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> {
            export(i, &items, &o)
        });
    global(
        "import_archives",
        &["inst: Instance", "artifacts: Dynamic", "options: Map", "Array"],
        "Imports artifacts into the instance, each checked against its sha256 first (a corrupt archive is refused before it is sent),\nin dependency order: libraries, lookups, projects, packages, then integrations; then configures `connections` if given; then activates.\nExisting items are replaced with `overwrite: true` (integrations have their schedules stopped and are deactivated first, each a step of its own; what a replace loses is saved for `ferry rollback`), else skipped; an item whose archive the target already holds (same sha256) is skipped.\nOptions: `overwrite` (false), `activate` (`\"keep\"`: what was active on the source; true; false), `concurrency` (a hard cap; default adaptive),\n`activation_concurrency` (a hard cap; default adaptive), `async_activation` (true), `activation_timeout` (seconds, 300), `tracing`, `payload_tracing`,\n`connections` (a map or TOML file, as for `configure_connections`), `stop_on_error` (false),\n`schedules` (`\"keep\"`: after the activations, create or replace each schedule artifact's schedule and start, pause or stop it as it was on the source; `\"create\"`: the definition only; `\"skip\"`: leave schedules alone; each change is a step, saved for `ferry rollback`).\nReturns one map per artifact: `id`, `kind`, `action` (created, replaced, skipped, failed, planned), `status` (the OIC status after the activation, or `()`), `error`, and `code`, `version`, `sha256`, `source`, `source_status`, `activated`, `previous_status`, `reason`, `stage`, `status_code`.
Unknown option keys are refused.\n\n# Example\n```rhai\nlet results = prod.import_archives(job.artifacts(), #{ overwrite: true, activate: \"keep\" });\n```",
    )
    .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> { import(i, &items, &o) });
    global(
        "cutover",
        &["inst: Instance", "artifacts: Dynamic", "options: Map", "Map"],
        "Releases artifacts into this (protected) instance and watches them, rolling everything back by itself when they misbehave:\n1. imports everything inactive (libraries and lookups first; replaced archives saved for rollback);\n2. configures `connections` (a map or TOML file, as for `configure_connections`) and tests every connection the integrations use; one failing test stops the cutover before any activation (`outcome: \"connections_failed\"`, `failed_connections` with OIC's message);\n3. activates callees before their callers (who calls whom is read from the archives: local invokes and calls to REST endpoints), then starts their schedules;\n4. smoke-checks each activated integration for `smoke.window_secs`: its instances since its activation and their error rate (monitoring), optional test calls to REST triggers;\n5. when an activation or the smoke check fails, rolls the whole cutover back (previous versions, activation states, schedules) and mails the cause to `notify` (default: the `[mail] admins`).\nOptions: `activate` (`\"keep\"`: what was active on the source; true; false), `activation_timeout` (300), `start_schedules` (true), `rollback` (true), `notify` (e-mails), `connections`,\n`smoke: #{ window_secs (300), poll_secs (30), max_error_rate (0.0), min_instances (0), calls: [#{ path, method (\"POST\"), body }] }`. Unknown keys are refused.\nReturns `#{ target, outcome, cause, imported, tested, failed_connections, activated, order, schedules_started, schedules_restored, smoke, rollback }`; `outcome` is `completed`, `planned`, `import_failed`, `connections_failed`, `rolled_back` or `failed`. Every step is a recorded effect: `ferry plan` shows the sequence, `--resume` continues it.\n\n# Example\n```rhai\nlet r = prod.cutover(job.artifacts(), #{\n    connections: \"connections/prod.toml\",\n    smoke: #{ window_secs: 600, max_error_rate: 0.05 },\n});\nif r.outcome != \"completed\" { throw r.cause; }\n```",
    )
    .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Dynamic, Box<EvalAltResult>> { cutover(i, &items, &o) });
    global("import_archives", &["inst: Instance", "artifacts: Dynamic", "Array"], "Imports artifacts with the default options (no overwrite; activate what was active on the source).\n\n# Example\n```rhai\nlet results = prod.import_archives(artifacts);\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { import(i, &items, &Map::new()) });
    global("activate", &["inst: Instance", "items: Dynamic", "Array"], "Activates integrations (an Integration, Artifact or `\"CODE|VERSION\"`, or an array of them), in parallel (2 at a time),\nwaiting for each to be active. Returns `#{ id, kind, action, status, error }` per item (`action`: activated, planned, failed; `status`: the OIC status); failures are recorded and the rest go on.\n\n# Example\n```rhai\nprod.activate([\"HR_SYNC|01.00.0000\", \"FIN_GL|02.00.0000\"]);\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { set_active(i, &items, true, &Map::new()) });
    global("activate", &["inst: Instance", "items: Dynamic", "options: Map", "Array"], "Activates with options: `concurrency` (a hard cap; default adaptive), `async_activation` (true), `activation_timeout` (seconds, 300), `stop_on_error` (false).\n\n# Example\n```rhai\nprod.activate(list, #{ concurrency: 1, stop_on_error: true });\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> { set_active(i, &items, true, &o) });
    global("deactivate", &["inst: Instance", "items: Dynamic", "Array"], "Deactivates integrations (one or an array); already inactive is fine. Returns `#{ id, kind, action, status, error }` per item (`action`: deactivated, planned, failed).\n\n# Example\n```rhai\nprod.deactivate(\"HR_SYNC|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { set_active(i, &items, false, &Map::new()) });
    global("delete", &["inst: Instance", "item: Dynamic"], "Deletes an integration (Integration, Artifact or `\"CODE|VERSION\"`). OIC refuses an active (412) or locked (423) one: deactivate first.\n\n# Example\n```rhai\nprod.deactivate(\"OLD_FLOW|01.00.0000\");\nprod.delete(\"OLD_FLOW|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let id = id_from(&item)?;
            let key = ArtifactKey::new(ArtifactKind::Integration, id.code.clone(), id.version.clone());
            let client = i.client.clone();
            let r = i.host.block_on(i.host.exec.run(Effect::new(Stage::Delete, key, i.name(), "delete"), || async { client.delete_integration(&id).await.map_err(Failure::from) }))?;
            r.map(|_| ()).map_err(errors::from_effect)
        });
    global("status", &["inst: Instance", "item: Dynamic", "string"], "The current status of an integration (`ACTIVATED`, `CONFIGURED`, ...), or `\"MISSING\"` when it does not exist.\n\n# Example\n```rhai\nif prod.status(\"HR_SYNC|01.00.0000\") != \"ACTIVATED\" { print(\"not live\"); }\n```")
        .register_into_engine(e, |i: &mut Instance, item: Dynamic| -> Result<String, Box<EvalAltResult>> {
            let id = id_from(&item)?;
            let r = i.host.read("get_integration", || i.client.get_integration(&id))?.map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(id.to_string())))?;
            Ok(r.map(|x| x.status).unwrap_or_else(|| "MISSING".into()))
        });
}

/// The `Integration` type: its properties and views.
fn register_integration(e: &mut Engine) {
    macro_rules! int_get {
        ($prop:literal, $ty:literal, $doc:literal, $f:expr) => {
            getter(
                $prop,
                &["i: Integration", $ty],
                concat!($doc, "\n\n# Example\n```rhai\nprint(i.", $prop, ");\n```"),
            )
            .register_into_engine(e, $f);
        };
    }
    int_get!(
        "code",
        "string",
        "The integration code (`HR_SYNC`).",
        |i: &mut Integration| i.code.clone()
    );
    int_get!(
        "version",
        "string",
        "The version, `MM.mm.pppp` (`01.00.0000`).",
        |i: &mut Integration| i.version.clone()
    );
    int_get!(
        "id",
        "string",
        "`CODE|VERSION`.",
        |i: &mut Integration| format!("{}|{}", i.code, i.version)
    );
    int_get!(
        "name",
        "string",
        "The display name.",
        |i: &mut Integration| i.name.clone()
    );
    int_get!(
        "status",
        "string",
        "`CONFIGURED`, `ACTIVATED`, `ACTIVATION_INPROGRESS`, `FAILEDACTIVATION` or `INPROGRESS` (incomplete draft).",
        |i: &mut Integration| i.status.clone()
    );
    int_get!(
        "locked",
        "bool",
        "True while someone edits it (OIC refuses to export it).",
        |i: &mut Integration| i.locked
    );
    int_get!(
        "scheduled",
        "bool",
        "True when a schedule is defined.",
        |i: &mut Integration| i.schedule_defined
    );
    int_get!(
        "project_type",
        "string",
        "`DEVELOPED`, `CUSTOM` or `PREBUILT` (accelerators cannot be exported).",
        |i: &mut Integration| i.project_type.clone()
    );
    int_get!(
        "project",
        "Dynamic",
        "The OIC 3 project code, or `()` for a global integration.",
        |i: &mut Integration| i.project_code.clone().or_unit()
    );
    int_get!(
        "last_updated",
        "string",
        "When it was last changed (as OIC reports it).",
        |i: &mut Integration| i.last_updated.clone()
    );
    int_get!(
        "last_updated_by",
        "string",
        "Who changed it last (an e-mail or user name): the owner notified about failures.",
        |i: &mut Integration| i.last_updated_by.clone()
    );
    int_get!(
        "connections",
        "Array",
        "The codes of the connections it uses (on the items of `inst.integrations()`, those of its endpoints).",
        |i: &mut Integration| -> Array {
            i.connections.iter().cloned().map(Dynamic::from).collect()
        }
    );
    int_get!(
        "lookups",
        "Array",
        "The names of the lookups it uses; empty on the items of `inst.integrations()` (OIC's list does not carry them): `inst.integration(id)` has them.",
        |i: &mut Integration| -> Array { i.lookups.iter().cloned().map(Dynamic::from).collect() }
    );
    register_views(
        e,
        "Integration",
        "i",
        "integration",
        "`CODE|VERSION  STATUS  Name`.",
        integration_text,
        integration_map,
    );
}

/// The `Artifact` type: its properties, views and `verify`.
fn register_artifact(e: &mut Engine) {
    macro_rules! art_get {
        ($prop:literal, $ty:literal, $doc:literal, $f:expr) => {
            getter(
                $prop,
                &["a: Artifact", $ty],
                concat!($doc, "\n\n# Example\n```rhai\nprint(a.", $prop, ");\n```"),
            )
            .register_into_engine(e, $f);
        };
    }
    art_get!(
        "kind",
        "string",
        "`integration`, `project`, `lookup`, `library` or `package`.",
        |a: &mut Artifact| a.key.kind.as_str().to_string()
    );
    art_get!(
        "code",
        "string",
        "The code of what the archive holds.",
        |a: &mut Artifact| a.key.code.clone()
    );
    art_get!(
        "version",
        "string",
        "The version (empty for kinds without one).",
        |a: &mut Artifact| a.key.version.clone()
    );
    art_get!("id", "string", "`CODE|VERSION`.", |a: &mut Artifact| a
        .key
        .id());
    art_get!("size", "int", "Size in bytes.", |a: &mut Artifact| a.size
        as i64);
    art_get!(
        "sha256",
        "string",
        "The sha256 of the archive (hex).",
        |a: &mut Artifact| a.sha256.clone()
    );
    art_get!(
        "source",
        "string",
        "Where it came from: the instance it was exported from.",
        |a: &mut Artifact| a.source.clone()
    );
    art_get!(
        "source_status",
        "Dynamic",
        "Its status on the source (`ACTIVATED`, ...), or `()`.",
        |a: &mut Artifact| a.source_status.clone().or_unit()
    );
    art_get!(
        "file_name",
        "string",
        "The conventional file name (`CODE_VERSION.iar`).",
        |a: &mut Artifact| a.file_name()
    );
    register_views(
        e,
        "Artifact",
        "a",
        "artifact",
        "`kind CODE|VERSION (size bytes, sha256 prefix)`.",
        artifact_text,
        artifact_map,
    );
    global("verify", &["a: Artifact", "bool"], "Re-reads the file and checks its size and sha256; raises an `integrity` error on a mismatch.\n\n# Example\n```rhai\na.verify();\n```")
        .register_into_engine(e, |a: &mut Artifact| -> Result<bool, Box<EvalAltResult>> {
            if a.is_planned() {
                return Ok(true);
            }
            a.verify().map(|_| true).map_err(|ie| errors::script_error("integrity", None, ie.to_string(), Ctx::default().artifact(a.key.id())))
        });
}

/// Registers the four views of a script type — `to_string`, `to_debug` (the same text), `to_map`
/// and `to_json` (the map as JSON) — from its text and map functions.
fn register_views<T: Clone + Send + Sync + 'static>(
    e: &mut Engine,
    ty: &str,
    var: &str,
    noun: &str,
    text_doc: &str,
    text: fn(&T) -> String,
    map: fn(&T) -> Map,
) {
    let this = format!("{var}: {ty}");
    global(
        "to_string",
        &[&this, "string"],
        &format!("{text_doc}\n\n# Example\n```rhai\nprint({var});\n```"),
    )
    .register_into_engine(e, move |x: &mut T| text(x));
    global(
        "to_debug",
        &[&this, "string"],
        &format!("Same as `to_string`.\n\n# Example\n```rhai\ndebug({var});\n```"),
    )
    .register_into_engine(e, move |x: &mut T| text(x));
    global(
        "to_map",
        &[&this, "Map"],
        &format!(
            "The {noun}'s fields as a map.\n\n# Example\n```rhai\nlet m = {var}.to_map();\n```"
        ),
    )
    .register_into_engine(e, move |x: &mut T| map(x));
    global(
        "to_json",
        &[&this, "string"],
        &format!(
            "The {noun}'s fields as JSON.\n\n# Example\n```rhai\nprint({var}.to_json());\n```"
        ),
    )
    .register_into_engine(e, move |x: &mut T| {
        super::util::to_json(&Dynamic::from_map(map(x)))
    });
}

/// `kind CODE|VERSION (size, sha256 prefix)`.
pub fn artifact_text(a: &Artifact) -> String {
    if a.is_planned() {
        return format!("{} {} (planned, from {})", a.key.kind, a.key.id(), a.source);
    }
    format!(
        "{} {} ({} bytes, sha256 {}…, from {})",
        a.key.kind,
        a.key.id(),
        a.size,
        &a.sha256[..a.sha256.len().min(12)],
        a.source
    )
}

fn get_one(i: &mut Instance, id: IntegrationId) -> Result<Integration, Box<EvalAltResult>> {
    let r = i
        .host
        .read("get_integration", || i.client.get_integration(&id))?
        .map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(id.to_string())))?;
    r.ok_or_else(|| {
        errors::script_error(
            "http",
            Some(404),
            format!("integration {id} does not exist on {}", i.name()),
            Ctx::instance(&i.name()).artifact(id.to_string()),
        )
    })
}
